"""A base for test venues that only provide prices: every account call is refused, the trade stream is silent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from gridfleet.engine.types import PlaceOrder
from gridfleet.exchanges.base import Balance, ExchangeAdapter, OrderInfo, TradeInfo
from gridfleet.markets import MarketRules


class PriceOnlyVenue(ExchangeAdapter):
    """Subclasses implement ``fetch_price`` and ``watch_prices``; markets have no precision or limits."""

    async def market(self, symbol: str) -> MarketRules:
        return MarketRules.unrestricted(symbol)

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
