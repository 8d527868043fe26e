"""Shared helpers of the runtime-integration tests: a scripted price source and bot configs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from gridfleet.engine.types import PlaceOrder
from gridfleet.exchanges.base import Balance, ExchangeAdapter, OrderInfo, PriceUpdate, TradeInfo
from gridfleet.markets import MarketRules

GRID: dict[str, Any] = {"symbol": "BTC/USDT", "grid": {"type": "arithmetic", "lower": "90", "upper": "110",
                                                        "levels": 11},
                        "qty_per_order": "1", "investment": "5000", "slippage": "0"}


def zigzag(n: int = 6) -> list[Decimal]:
    """A path crossing the 90–110 grid back and forth (fills on both sides)."""
    out: list[Decimal] = []
    for _ in range(n):
        out += [Decimal(p) for p in ("100", "93.5", "96", "91.2", "104.5", "108.3", "101", "97")]
    return out


class ScriptedPrices(ExchangeAdapter):
    """A read-only venue that yields a fixed list of prices, then goes quiet (sets ``done``)."""

    id = "scripted"

    def __init__(self, prices: list[Decimal], symbol: str = "BTC/USDT", delay: float = 0.0) -> None:
        self.prices, self.symbol, self.delay = prices, symbol, delay
        self.done = asyncio.Event()
        self.start_price = prices[0]

    async def market(self, symbol: str) -> MarketRules:
        return MarketRules.unrestricted(symbol)

    async def fetch_price(self, symbol: str) -> PriceUpdate:
        return PriceUpdate(symbol, self.start_price, 1_000)

    async def watch_prices(self, symbol: str) -> AsyncIterator[PriceUpdate]:  # type: ignore[override]
        for i, price in enumerate(self.prices):
            if self.delay:
                await asyncio.sleep(self.delay)
            yield PriceUpdate(symbol, price, 2_000 + i * 1_000)
        self.done.set()
        await asyncio.Event().wait()

    async def fetch_balances(self) -> dict[str, Balance]:
        raise NotImplementedError

    async def create_order(self, symbol: str, order: PlaceOrder) -> OrderInfo:
        raise NotImplementedError

    async def cancel_order(self, symbol: str, client_id: str) -> OrderInfo | None:
        raise NotImplementedError

    async def fetch_order(self, symbol: str, client_id: str) -> OrderInfo | None:
        raise NotImplementedError

    async def fetch_open_orders(self, symbol: str) -> list[OrderInfo]:
        raise NotImplementedError

    async def fetch_my_trades(self, symbol: str, since: int | None = None) -> list[TradeInfo]:
        raise NotImplementedError

    async def watch_my_trades(self, symbol: str) -> AsyncIterator[TradeInfo]:  # type: ignore[override]
        await asyncio.Event().wait()
        yield  # pragma: no cover

    async def close(self) -> None:
        return None
