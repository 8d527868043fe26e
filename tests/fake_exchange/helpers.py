"""Shared helpers of the fake-exchange tests: run a scenario, start server + real ccxt client, find prices."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, TypeVar

from gridfleet.backtest.data import Candles
from gridfleet.fake_exchange.replay import POINTS_PER_CANDLE, candle_path
from gridfleet.fake_exchange.testing import FakeExchangeHandle, running_fake_exchange

T = TypeVar("T")
TICK = Decimal("0.01")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one async scenario in a fresh event loop."""
    return asyncio.run(coro)


@asynccontextmanager
async def fake_and_ccxt(
    candles: Candles, *, pro: bool = False, api_key: str = "test", secret: str = "test", load: bool = True,
    ccxt_extra: dict[str, Any] | None = None, **config: Any,
) -> AsyncIterator[tuple[FakeExchangeHandle, Any]]:
    """Start a manual-clock fake exchange and a REAL ccxt binance client (async or pro) pointed at it."""
    config.setdefault("speed", 0)
    async with running_fake_exchange(candles=candles, **config) as fx:
        extra = {"enableRateLimit": False, **(ccxt_extra or {})}
        ex = fx.ccxt_pro(api_key, secret, **extra) if pro else fx.ccxt_async(api_key, secret, **extra)
        try:
            if load:
                await ex.load_markets()
            yield fx, ex
        finally:
            await ex.close()


def path_prices(candles: Candles, first: int, last: int) -> list[Decimal]:
    """Return the replayed prices of candles first … last (inclusive), point by point."""
    out: list[Decimal] = []
    for i in range(first, last + 1):
        path = candle_path(float(candles.open[i]), float(candles.high[i]), float(candles.low[i]),
                           float(candles.close[i]))
        out.extend(Decimal(repr(p)).quantize(TICK) for p in path)
    assert len(out) == (last - first + 1) * POINTS_PER_CANDLE
    return out


def first_point_at_or_below(candles: Candles, price: Decimal, start_seq: int) -> int:
    """Return the first point number > start_seq whose price is <= price."""
    prices = path_prices(candles, 0, len(candles) - 1)
    for seq in range(start_seq + 1, len(prices)):
        if prices[seq] <= price:
            return seq
    raise AssertionError(f"price {price} is never reached")


def buy_price_reached_later(candles: Candles, within_candles: int = 60) -> Decimal:
    """Return a limit buy price below the start price that the path reaches within ``within_candles``."""
    prices = path_prices(candles, 0, within_candles)
    low = min(prices[1:])
    assert low < prices[0], "the data should dip below its first price"
    return (low + (prices[0] - low) / 4).quantize(TICK, ROUND_CEILING)


def sell_price_reached_later(candles: Candles, within_candles: int = 60) -> Decimal:
    """Return a limit sell price above the start price that the path reaches within ``within_candles``."""
    prices = path_prices(candles, 0, within_candles)
    high = max(prices[1:])
    assert high > prices[0], "the data should rise above its first price"
    return (high - (high - prices[0]) / 4).quantize(TICK, ROUND_FLOOR)


async def watch_after(
    watch: Callable[[], Awaitable[list[Any]]], action: Callable[[], Awaitable[Any]], timeout: float = 5.0
) -> list[Any]:
    """Start a ccxt ``watch_*`` call, then run ``action`` (e.g. advance the clock), and return what it resolves to.

    ccxt resolves a pending watch with the updates received since the previous call; starting the watch before
    the action makes sure the action's events resolve *this* call.
    """
    task = asyncio.ensure_future(watch())
    await asyncio.sleep(0.05)
    await action()
    return await asyncio.wait_for(task, timeout)
