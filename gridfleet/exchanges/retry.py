"""Retry transient failures of idempotent async calls (reads) with exponential backoff and jitter.

Only *reads* are decorated: an order placement is never retried blindly (its answer may have been lost, so a
second request could buy twice); the caller resolves an ambiguous placement by client id instead.

Usage::

    @retrying
    async def fetch_balance() -> dict[str, Balance]: ...

    @retrying(attempts=3, sleep=fake_sleep)
    async def fetch_order(symbol: str, client_id: str) -> OrderInfo | None: ...
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, overload

from gridfleet.exchanges.base import NetworkError, RateLimitError

__all__ = ["backoff_delay", "retrying"]

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[Any]]


def backoff_delay(
    retry: int,
    *,
    base_delay: float = 0.2,
    max_delay: float = 10.0,
    jitter: float = 0.2,
    rand: Callable[[], float] = random.random,
) -> float:
    """Return the wait before retry number ``retry`` (1 for the first retry).

    ``base_delay * 2 ** (retry - 1)`` capped at ``max_delay``, then multiplied by a random factor in
    ``[1 - jitter, 1 + jitter]`` so that many clients failing together do not retry in lockstep.
    """
    if retry < 1:
        raise ValueError(f"retry must be >= 1, got {retry}")
    delay = min(max_delay, base_delay * 2.0 ** min(retry - 1, 60))
    factor: float = 1.0 + jitter * (2.0 * rand() - 1.0)
    return max(0.0, delay * factor)


@overload
def retrying(func: Callable[P, Awaitable[R]], /) -> Callable[P, Coroutine[Any, Any, R]]: ...


@overload
def retrying(
    func: None = None,
    /,
    *,
    attempts: int = 5,
    base_delay: float = 0.2,
    max_delay: float = 10.0,
    jitter: float = 0.2,
    retry_on: tuple[type[BaseException], ...] = (NetworkError,),
    sleep: Sleep = asyncio.sleep,
    rand: Callable[[], float] = random.random,
    redact: Callable[[str], str] | None = None,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Coroutine[Any, Any, R]]]: ...


def retrying(
    func: Callable[P, Awaitable[R]] | None = None,
    /,
    *,
    attempts: int = 5,
    base_delay: float = 0.2,
    max_delay: float = 10.0,
    jitter: float = 0.2,
    retry_on: tuple[type[BaseException], ...] = (NetworkError,),
    sleep: Sleep = asyncio.sleep,
    rand: Callable[[], float] = random.random,
    redact: Callable[[str], str] | None = None,
) -> Any:
    """Retry an async function on transient errors; use bare (``@retrying``) or configured (``@retrying(...)``).

    * ``attempts``: total number of calls (1 = no retry). The last error is re-raised unchanged.
    * Delay before retry ``n``: :func:`backoff_delay` (exponential from ``base_delay``, capped at ``max_delay``,
      ± ``jitter`` fraction).
    * A :class:`RateLimitError` with ``retry_after`` waits at least that long (it is not capped by
      ``max_delay``: retrying earlier than the venue asks gets an IP ban on Binance).
    * Only exceptions in ``retry_on`` are retried; anything else (invalid order, insufficient funds,
      authentication, cancellation) propagates at once.
    * Each retry is logged at WARNING with the function name, the error type and its message passed through
      ``redact`` (error messages from the adapter are already free of secrets; ``redact`` is a second guard).
    * ``sleep`` and ``rand`` are injectable for tests.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        name = getattr(fn, "__qualname__", repr(fn))

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            retry = 0
            while True:
                try:
                    return await fn(*args, **kwargs)
                except retry_on as exc:
                    retry += 1
                    if retry >= attempts:
                        raise
                    delay = backoff_delay(retry, base_delay=base_delay, max_delay=max_delay, jitter=jitter, rand=rand)
                    if isinstance(exc, RateLimitError) and exc.retry_after is not None:
                        delay = max(delay, exc.retry_after)
                    message = str(exc)
                    if redact is not None:
                        message = redact(message)
                    logger.warning(
                        "%s failed (%s: %s); retry %d/%d in %.2fs",
                        name, type(exc).__name__, message, retry, attempts - 1, delay,
                    )
                    await sleep(delay)

        return wrapper

    if func is not None:
        return decorate(func)
    return decorate
