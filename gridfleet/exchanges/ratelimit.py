"""Request-weight rate limiting shared by every adapter that talks to one venue from one account/IP.

Venues count request *weight* per IP (Binance: REQUEST_WEIGHT per minute) and ban an IP that keeps going after
a 429 (418 "I'm a teapot" = banned). Every :class:`~gridfleet.exchanges.ccxt_adapter.CcxtExchange` therefore
takes its limiter from a :class:`RateLimiterRegistry` keyed by ``(exchange_id, api_url or "default")``, so that
all the bots of a process draw from one bucket, and a 429 seen by one bot makes *all* of them wait
(:meth:`RateLimiter.back_off`).

**One process only.** :class:`TokenBucket` lives in memory: two in-memory buckets in two processes each allow
the full rate, so together they exceed it. A deployment that runs several processes against the same venue from
the same IP uses :class:`gridfleet.exchanges.redis_ratelimit.RedisTokenBucket` (the same arithmetic in a Lua
script on a Redis hash, Redis ``TIME`` as the clock): :func:`~gridfleet.exchanges.redis_ratelimit.
install_redis_rate_limits` sets a :meth:`RateLimiterRegistry.use_backend` so that every limiter the registry
creates is a Redis bucket of the rate the adapter asked for (``gridfleet serve`` with ``REDIS_URL`` and
``gridfleet worker`` do this at start-up).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

__all__ = ["DEFAULT_REGISTRY", "Backend", "RateLimiter", "RateLimiterRegistry", "TokenBucket", "shared_limiter"]


@runtime_checkable
class RateLimiter(Protocol):
    """What an adapter needs from a rate limiter (in-memory here; a Redis-backed one fits the same protocol)."""

    async def acquire(self, weight: float = 1.0) -> None:
        """Wait until a request of this ``weight`` may be sent, then consume the weight."""

    async def back_off(self, seconds: float) -> None:
        """Make every caller wait at least ``seconds`` from now (after a 429/418 from the venue)."""


class TokenBucket:
    """An async token bucket: ``capacity`` weight per ``window`` seconds, refilled continuously.

    Callers are served first come, first served: :meth:`acquire` reserves the weight at once (the balance may go
    negative) and sleeps until the bucket has refilled enough. No lock is needed, so one bucket can serve
    several event loops one after the other (tests). A cancelled waiter gives its reservation back.
    ``clock`` (monotonic seconds) and ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        capacity: float,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if capacity <= 0 or window <= 0:
            raise ValueError(f"capacity and window must be positive, got {capacity} per {window}s")
        self.capacity = float(capacity)
        self.window = float(window)
        self.rate = self.capacity / self.window
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._updated = clock()  # refill is accounted up to this time (in the future during a back-off)
        self._blocked_until = float("-inf")

    @classmethod
    def per_second(
        cls,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> TokenBucket:
        """Return a bucket refilling ``rate`` weight per second that holds at most ``burst`` (default ``rate``)."""
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        capacity = burst if burst is not None else max(rate, 1.0)
        return cls(capacity, capacity / rate, clock=clock, sleep=sleep)

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now

    @property
    def available(self) -> float:
        """Return the weight that could be spent right now (negative while callers are queued)."""
        self._refill(self._clock())
        return self._tokens

    @property
    def blocked_until(self) -> float | None:
        """Return the clock time until which every caller waits after a back-off, or None."""
        return self._blocked_until if self._blocked_until > self._clock() else None

    async def acquire(self, weight: float = 1.0) -> None:
        """Wait until ``weight`` is available (and any back-off is over), then consume it.

        A request heavier than the capacity is allowed: it waits until the bucket has repaid its deficit.
        """
        if weight <= 0:
            return
        self._refill(self._clock())
        self._tokens -= weight
        # refilling runs from ``_updated`` (now, or the end of a back-off): our turn comes once the deficit is repaid
        ready_at = self._updated + max(0.0, -self._tokens) / self.rate
        try:
            while True:
                # a back-off announced while we slept applies to us too
                wait = max(ready_at, self._blocked_until) - self._clock()
                if wait <= 0:
                    return
                await self._sleep(wait)
        except BaseException:
            self._tokens += weight
            raise

    async def back_off(self, seconds: float) -> None:
        """Block every caller for ``seconds``; the bucket restarts empty when the back-off ends."""
        if seconds <= 0:
            return
        now = self._clock()
        self._refill(now)
        self._blocked_until = max(self._blocked_until, now + seconds)
        self._tokens = min(self._tokens, 0.0)
        self._updated = max(self._updated, self._blocked_until)

    def __repr__(self) -> str:
        return f"TokenBucket(capacity={self.capacity:g}, window={self.window:g}s)"


Backend = Callable[[str, "str | None", RateLimiter], RateLimiter]
"""Builds the limiter of ``(exchange_id, api_url)`` from the in-memory bucket the adapter asked for."""


class RateLimiterRegistry:
    """Rate limiters by ``(exchange_id, api_url or "default")``: one per venue endpoint (and IP) in a process.

    A server creates one registry at start-up (or uses :data:`DEFAULT_REGISTRY`); tests make their own.
    """

    def __init__(self) -> None:
        self._limiters: dict[tuple[str, str], RateLimiter] = {}
        self._origin: dict[tuple[str, str], tuple[str, str | None]] = {}
        self._backend: Backend | None = None

    @staticmethod
    def key(exchange_id: str, api_url: str | None = None) -> tuple[str, str]:
        """Return the registry key of a venue endpoint."""
        return (exchange_id.lower(), (api_url or "default").rstrip("/"))

    def get(
        self,
        exchange_id: str,
        api_url: str | None = None,
        factory: Callable[[], RateLimiter] | None = None,
    ) -> RateLimiter:
        """Return the limiter of this venue endpoint, creating it with ``factory`` on first use.

        The default factory is a bucket of 10 weight per second; the ccxt adapter passes one derived from
        ccxt's own per-exchange rate limit.
        """
        key = self.key(exchange_id, api_url)
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = factory() if factory is not None else TokenBucket.per_second(10.0)
            if self._backend is not None:
                limiter = self._backend(exchange_id, api_url, limiter)
            self._limiters[key] = limiter
            self._origin[key] = (exchange_id, api_url)
        return limiter

    def use_backend(self, backend: Backend | None) -> None:
        """Build every limiter through ``backend(exchange_id, api_url, in_memory_bucket)`` from now on (e.g. a
        Redis bucket shared by all processes); limiters already made are rebuilt the same way. None: in-memory."""
        self._backend = backend
        if backend is None:
            return
        for key, limiter in list(self._limiters.items()):
            exchange_id, api_url = self._origin.get(key, key)
            self._limiters[key] = backend(exchange_id, api_url, limiter)

    def set(self, exchange_id: str, api_url: str | None, limiter: RateLimiter) -> None:
        """Install ``limiter`` for this venue endpoint (e.g. a Redis-backed one at server start)."""
        self._limiters[self.key(exchange_id, api_url)] = limiter

    def clear(self) -> None:
        """Forget every limiter (the backend stays)."""
        self._limiters.clear()
        self._origin.clear()


DEFAULT_REGISTRY = RateLimiterRegistry()
"""The registry of this process, used when an adapter is not given a limiter."""


def shared_limiter(
    exchange_id: str,
    api_url: str | None = None,
    *,
    factory: Callable[[], RateLimiter] | None = None,
    registry: RateLimiterRegistry | None = None,
) -> RateLimiter:
    """Return the process-wide limiter of ``exchange_id`` at ``api_url`` (see :meth:`RateLimiterRegistry.get`)."""
    return (registry or DEFAULT_REGISTRY).get(exchange_id, api_url, factory)
