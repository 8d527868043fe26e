"""Shared helpers of the runtime-integration tests: a scripted price source and bot configs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from gridfleet.exchanges.base import PriceUpdate
from tests.price_only_venue import PriceOnlyVenue

GRID: dict[str, Any] = {"symbol": "BTC/USDT", "grid": {"type": "arithmetic", "lower": "90", "upper": "110",
                                                        "levels": 11},
                        "qty_per_order": "1", "investment": "5000", "slippage": "0"}


def zigzag(n: int = 6) -> list[Decimal]:
    """A path crossing the 90–110 grid back and forth (fills on both sides)."""
    out: list[Decimal] = []
    for _ in range(n):
        out += [Decimal(p) for p in ("100", "93.5", "96", "91.2", "104.5", "108.3", "101", "97")]
    return out


class ScriptedPrices(PriceOnlyVenue):
    """A read-only venue that yields a fixed list of prices, then goes quiet (sets ``done``)."""

    id = "scripted"

    def __init__(self, prices: list[Decimal], symbol: str = "BTC/USDT", delay: float = 0.0) -> None:
        self.prices, self.symbol, self.delay = prices, symbol, delay
        self.done = asyncio.Event()
        self.start_price = prices[0]

    async def fetch_price(self, symbol: str) -> PriceUpdate:
        return PriceUpdate(symbol, self.start_price, 1_000)

    async def watch_prices(self, symbol: str) -> AsyncIterator[PriceUpdate]:  # type: ignore[override]
        for i, price in enumerate(self.prices):
            if self.delay:
                await asyncio.sleep(self.delay)
            yield PriceUpdate(symbol, price, 2_000 + i * 1_000)
        self.done.set()
        await asyncio.Event().wait()
