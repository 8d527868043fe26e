"""A token bucket in Redis, shared by every process (workers, API servers) that talks to one venue from one IP.

:class:`RedisTokenBucket` implements :class:`~gridfleet.exchanges.ratelimit.RateLimiter` with the same arithmetic
as the in-memory :class:`~gridfleet.exchanges.ratelimit.TokenBucket`, done by one Lua script on a Redis hash
(``tokens``, ``updated``, ``blocked``) with Redis ``TIME`` as the clock, so it is atomic and the processes' clocks
do not matter:

* ``acquire(weight)``: refill, reserve the weight at once (the balance may go negative: first come, first
  served), and answer how long to wait until the deficit is repaid (or a back-off ends); the caller sleeps that
  long, then asks again whether a back-off was announced meanwhile. A cancelled waiter gives its weight back.
* ``back_off(seconds)``: every process waits at least ``seconds`` from now (a 429/418 seen by one bot stops all
  of them); the bucket restarts empty afterwards.

Keys: ``<prefix><exchange>:<api host or "default">:<scope>`` where the scope is the egress IP identity
(``ip:<GRIDFLEET_EGRESS_ID>``, default ``ip:default`` = every process using this Redis leaves through one public
IP — the conservative choice) or an account (``account:<id>``) for per-account limits. Hashes expire after two
windows idle.

When Redis cannot be reached, a bucket falls back to an in-process :class:`TokenBucket` of the same rate (and
logs it once), so trading never stops because the limiter's store is down; it returns to Redis on the next call
that succeeds. :func:`install_redis_rate_limits` makes the process's :data:`~gridfleet.exchanges.ratelimit.
DEFAULT_REGISTRY` create Redis buckets (``gridfleet serve`` with ``REDIS_URL``, ``gridfleet worker``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gridfleet.exchanges.ratelimit import DEFAULT_REGISTRY, RateLimiter, RateLimiterRegistry, TokenBucket

__all__ = ["DEFAULT_PREFIX", "RedisTokenBucket", "bucket_key", "install_redis_rate_limits"]

log = logging.getLogger("gridfleet.exchanges.ratelimit")

DEFAULT_PREFIX = "gridfleet:ratelimit:"

# KEYS[1]: the bucket hash; ARGV: op, capacity, rate (weight/s), weight or seconds, idle ttl (ms)
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cap = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local arg = tonumber(ARGV[4])
local h = redis.call('HMGET', KEYS[1], 'tokens', 'updated', 'blocked')
local tokens = tonumber(h[1]) or cap
local updated = tonumber(h[2]) or now
local blocked = tonumber(h[3]) or 0
if now > updated then
  tokens = math.min(cap, tokens + (now - updated) * rate)
  updated = now
end
local wait = 0
local op = ARGV[1]
if op == 'acquire' then
  tokens = tokens - arg
  wait = math.max(updated + math.max(0, -tokens) / rate, blocked) - now
elseif op == 'refund' then
  tokens = math.min(cap, tokens + arg)
elseif op == 'backoff' then
  if now + arg > blocked then blocked = now + arg end
  tokens = math.min(tokens, 0)
  if blocked > updated then updated = blocked end
elseif op == 'check' then
  wait = blocked - now
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.9f', tokens), 'updated', string.format('%.6f', updated),
           'blocked', string.format('%.6f', blocked))
local ttl = tonumber(ARGV[5])
if blocked > now then ttl = ttl + math.ceil((blocked - now) * 1000) end
redis.call('PEXPIRE', KEYS[1], ttl)
return string.format('%.6f', math.max(wait, 0))
"""


def bucket_key(exchange_id: str, api_url: str | None = None, scope: str | None = None, *,
               prefix: str = DEFAULT_PREFIX) -> str:
    """Return the Redis key of a venue endpoint's bucket for one egress IP (default) or account scope."""
    host = (urlsplit(api_url).netloc or api_url) if api_url else "default"
    scope = scope or f"ip:{os.environ.get('GRIDFLEET_EGRESS_ID', 'default')}"
    return f"{prefix}{exchange_id.lower()}:{host}:{scope}"


class RedisTokenBucket:
    """A token bucket of ``capacity`` weight per ``window`` seconds, stored in Redis under ``key``.

    ``redis_url`` (or ``client_factory``, called once per event loop: redis' asyncio connections belong to the
    loop that made them) says where; ``sleep`` is injectable for tests.
    """

    def __init__(
        self,
        key: str,
        capacity: float,
        window: float,
        *,
        redis_url: str | None = None,
        client_factory: Callable[[], Any] | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if capacity <= 0 or window <= 0:
            raise ValueError(f"capacity and window must be positive, got {capacity} per {window}s")
        if redis_url is None and client_factory is None:
            raise ValueError("give redis_url or client_factory")
        self.key = key
        self.capacity = float(capacity)
        self.window = float(window)
        self.rate = self.capacity / self.window
        self._url = redis_url
        self._client_factory = client_factory
        self._sleep = sleep
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._scripts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._ttl_ms = max(1000, int(self.window * 2000))
        self.local = TokenBucket(self.capacity, self.window, sleep=sleep)
        self._degraded = False

    @classmethod
    def like(cls, bucket: TokenBucket, key: str, **kwargs: Any) -> RedisTokenBucket:
        """Return a Redis bucket with the capacity and window of an in-memory one."""
        return cls(key, bucket.capacity, bucket.window, **kwargs)

    def _script(self) -> Any:
        loop = asyncio.get_running_loop()
        script = self._scripts.get(loop)
        if script is None:
            if self._client_factory is not None:
                client = self._client_factory()
            else:
                client = aioredis.Redis.from_url(self._url or "", socket_timeout=2.0, socket_connect_timeout=2.0)
            self._clients[loop] = client
            script = self._scripts[loop] = client.register_script(_SCRIPT)
        return script

    async def _eval(self, op: str, amount: float) -> float | None:
        """Run the script; None when Redis is unreachable (the caller falls back to the local bucket)."""
        try:
            raw = await self._script()(keys=[self.key], args=[op, repr(self.capacity), repr(self.rate),
                                                              repr(float(amount)), self._ttl_ms])
        except (RedisError, OSError) as exc:
            if not self._degraded:
                log.warning("rate limiter %s: Redis unavailable (%s); using an in-process bucket", self.key, exc)
                self._degraded = True
            return None
        if self._degraded:
            log.warning("rate limiter %s: Redis is back; the shared bucket is used again", self.key)
            self._degraded = False
        return float(raw.decode() if isinstance(raw, bytes) else raw)

    async def acquire(self, weight: float = 1.0) -> None:
        """Wait until ``weight`` may be spent across every process sharing the bucket, then spend it."""
        if weight <= 0:
            return
        wait = await self._eval("acquire", weight)
        if wait is None:
            await self.local.acquire(weight)
            return
        try:
            while wait > 0:
                await self._sleep(wait)
                # a back-off announced by any process while we slept applies to us too
                wait = await self._eval("check", 0.0) or 0.0
        except BaseException:
            await asyncio.shield(self._refund(weight))
            raise

    async def _refund(self, weight: float) -> None:
        await self._eval("refund", weight)

    async def back_off(self, seconds: float) -> None:
        """Make every process wait at least ``seconds`` from now; the bucket restarts empty afterwards."""
        if seconds <= 0:
            return
        await self.local.back_off(seconds)
        await self._eval("backoff", seconds)

    async def aclose(self) -> None:
        """Close the connection of the running loop (others close when their loop goes away)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        self._scripts.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def __repr__(self) -> str:
        return f"RedisTokenBucket({self.key!r}, capacity={self.capacity:g}, window={self.window:g}s)"


def install_redis_rate_limits(
    redis_url: str,
    *,
    registry: RateLimiterRegistry | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> RateLimiterRegistry:
    """Make ``registry`` (default: the process's) create Redis buckets from now on; return it.

    Each venue endpoint's bucket gets the capacity and window the adapter asks for (ccxt's calibration) under
    :func:`bucket_key`; limiters already created are replaced when they are in-memory buckets.
    """
    target = registry or DEFAULT_REGISTRY

    def backend(exchange_id: str, api_url: str | None, local: RateLimiter) -> RateLimiter:
        if not isinstance(local, TokenBucket):
            return local
        return RedisTokenBucket.like(local, bucket_key(exchange_id, api_url, prefix=prefix), redis_url=redis_url)

    target.use_backend(backend)
    return target
