"""Paper trading: the venue interface over the shared matching engine, fed by live market prices.

Prices come from a real venue (any :class:`ExchangeAdapter`, e.g. ccxt against Binance or the local fake
exchange); orders, fills and balances stay in this process. Between two observed prices the paper venue walks
the same straight segment as the backtester (:func:`gridfleet.sim.driver.walk`), filling resting orders at their
limit prices and waking the bot exactly at its wake prices, and it hands every fill to the bot *during* the walk
so a counter-order can fill later on the same segment. That is why a paper bot and a backtest on the same
prices produce the same fills.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from gridfleet.engine.types import Fill, OrderType, PlaceOrder, Side
from gridfleet.exchanges.base import (
    Balance,
    ExchangeAdapter,
    InsufficientFunds,
    InvalidOrder,
    OrderInfo,
    PriceUpdate,
    TradeInfo,
)
from gridfleet.markets import MarketRules
from gridfleet.sim.driver import WalkFill, walk
from gridfleet.sim.matching import MatchingEngine, SimOrder

if TYPE_CHECKING:
    from gridfleet.runtime.store import StoredOrder

ZERO = Decimal(0)


class PaperExchange(ExchangeAdapter):
    """A simulated account on one symbol, priced by a real venue."""

    id = "paper"

    def __init__(self, price_source: ExchangeAdapter, symbol: str, *, balances: dict[str, Decimal],
                 maker_fee: Decimal, taker_fee: Decimal, slippage: Decimal = ZERO,
                 participation: Decimal | None = None, fee_currency: str = "quote") -> None:
        self.source = price_source
        self.symbol = symbol
        self.initial = dict(balances)
        self._fees = (maker_fee, taker_fee)
        self._slippage = slippage
        self._participation = participation
        self._fee_currency = fee_currency
        self.engine: MatchingEngine | None = None
        self.rules: MarketRules | None = None
        self.price = ZERO
        self.timestamp = 0
        self._pending: list[TradeInfo] = []
        self._offset: dict[str, Decimal] = {}  # amount an order had filled before a restart

    # ------------------------------------------------------------------ set-up
    async def market(self, symbol: str) -> MarketRules:
        """Return the source venue's rules for ``symbol`` and create the simulated account."""
        self._check_symbol(symbol)
        if self.rules is None:
            self.rules = await self.source.market(symbol)
            self.engine = MatchingEngine(self.rules, maker_fee=self._fees[0], taker_fee=self._fees[1],
                                         balances=self.initial, slippage=self._slippage,
                                         participation=self._participation, fee_currency=self._fee_currency)
        return self.rules

    def restore(self, fills: list[Fill], live_orders: list[StoredOrder]) -> None:
        """Rebuild balances from recorded fills and re-rest the recorded open orders (after a restart)."""
        engine = self._engine()
        rules = engine.rules
        for f in fills:
            fee_quote = f.fee if f.fee_currency == rules.quote else ZERO
            fee_base = f.fee if f.fee_currency == rules.base else ZERO
            sign = 1 if f.side is Side.BUY else -1
            engine.free[rules.base] += sign * f.amount - fee_base
            engine.free[rules.quote] -= sign * f.price * f.amount + fee_quote
        for o in live_orders:
            if o.status == "pending" or o.type != OrderType.LIMIT.value or o.price is None:
                continue  # never reached the venue (reconcile places it) or a market order that already ran
            remaining = o.amount - o.filled
            if remaining <= 0:
                continue
            self._offset[o.client_id] = o.filled
            away = o.price * 2 if o.side is Side.BUY else o.price / 2  # rest it without matching now
            engine.place(PlaceOrder(o.client_id, o.side, OrderType.LIMIT, remaining, o.price, o.level, o.tag),
                         away, self.timestamp)

    # ------------------------------------------------------------------ market data
    async def fetch_price(self, symbol: str) -> PriceUpdate:
        """Return the last price seen (or the source's)."""
        self._check_symbol(symbol)
        if self.price:
            return PriceUpdate(symbol, self.price, self.timestamp)
        update = await self.source.fetch_price(symbol)
        self.price, self.timestamp = update.price, update.timestamp
        return update

    def watch_prices(self, symbol: str) -> AsyncIterator[PriceUpdate]:
        """Yield the source venue's prices."""
        return self.source.watch_prices(symbol)

    async def advance(self, update: PriceUpdate, *, on_fill: Callable[[TradeInfo], Awaitable[None]],
                      on_wake: Callable[[Decimal, int], Awaitable[None]],
                      wake_prices: Callable[[], tuple[Decimal | None, Decimal | None]]) -> None:
        """Walk from the last price to ``update.price``: fill, hand over fills, wake the bot exactly."""
        engine = self._engine()
        if not self.price:
            self.price, self.timestamp = update.price, update.timestamp
            return
        self.timestamp = update.timestamp
        engine.begin_volume(update.volume)
        await self._flush(on_fill)
        for event in walk(engine, self.price, update.price, update.timestamp, wake_prices):
            self.price = event.price
            if isinstance(event, WalkFill):
                await on_fill(self._trade(event.fill))
                await self._flush(on_fill)
            else:
                await on_wake(event.price, update.timestamp)
                await self._flush(on_fill)
        self.price = update.price
        below, above = wake_prices()
        if below is not None or above is not None:
            await on_wake(update.price, update.timestamp)
            await self._flush(on_fill)

    async def _flush(self, on_fill: Callable[[TradeInfo], Awaitable[None]]) -> None:
        while self._pending:
            await on_fill(self._pending.pop(0))

    def take_fills(self) -> list[TradeInfo]:
        """Return (and forget) the fills of orders that executed on arrival (market or marketable)."""
        out, self._pending = self._pending, []
        return out

    # ------------------------------------------------------------------ account
    async def fetch_balances(self) -> dict[str, Balance]:
        """Return the simulated balances."""
        engine = self._engine()
        return {ccy: Balance(engine.free.get(ccy, ZERO), engine.locked.get(ccy, ZERO))
                for ccy in set(engine.free) | set(engine.locked)}

    async def create_order(self, symbol: str, order: PlaceOrder) -> OrderInfo:
        """Match ``order`` at the current price (rest it, fill it, or refuse it like the exchange)."""
        self._check_symbol(symbol)
        engine = self._engine()
        fills, rejection = engine.place(order, self.price, self.timestamp)
        if rejection is not None:
            if rejection.code == "INSUFFICIENT_BALANCE":
                raise InsufficientFunds(rejection.message)
            raise InvalidOrder(f"{rejection.code}: {rejection.message}")
        self._pending.extend(self._trade(f) for f in fills)
        return self._info(engine.orders[order.client_id])

    async def cancel_order(self, symbol: str, client_id: str) -> OrderInfo | None:
        """Cancel a resting order; None when it is not open."""
        engine = self._engine()
        if engine.cancel(client_id, self.timestamp) is None:
            return None
        return self._info(engine.orders[client_id])

    async def fetch_order(self, symbol: str, client_id: str) -> OrderInfo | None:
        """Return the order by client id, or None."""
        sim = self._engine().orders.get(client_id)
        return None if sim is None else self._info(sim)

    async def fetch_open_orders(self, symbol: str) -> list[OrderInfo]:
        """Return the resting orders."""
        return [self._info(o) for o in self._engine().open_orders()]

    async def fetch_my_trades(self, symbol: str, since: int | None = None) -> list[TradeInfo]:
        """Return every simulated execution (oldest first)."""
        trades = [self._trade(f) for o in self._engine().orders.values() for f in o.fills]
        trades = [t for t in trades if since is None or t.timestamp >= since]
        return sorted(trades, key=lambda t: t.timestamp)

    async def watch_my_trades(self, symbol: str) -> AsyncIterator[TradeInfo]:
        """Paper fills are handed over during :meth:`advance`; this stream stays silent."""
        await asyncio.Event().wait()
        yield  # type: ignore[misc]  # pragma: no cover

    async def close(self) -> None:
        """Close the price source."""
        await self.source.close()

    # ------------------------------------------------------------------ helpers
    def _engine(self) -> MatchingEngine:
        if self.engine is None:
            raise RuntimeError("call market() first")
        return self.engine

    def _check_symbol(self, symbol: str) -> None:
        if symbol != self.symbol:
            raise InvalidOrder(f"this paper account trades {self.symbol}, not {symbol}")

    def _trade(self, fill: Fill) -> TradeInfo:
        sim = self._engine().orders[fill.client_id]
        cumulative = self._offset.get(fill.client_id, ZERO) + sum(
            (f.amount for f in sim.fills[: sim.fills.index(fill) + 1]), ZERO)
        return TradeInfo(f"{fill.client_id}@{cumulative}", fill.client_id, sim.exchange_id, self.symbol, fill.side,
                         fill.price, fill.amount, fill.fee, fill.fee_currency, fill.timestamp, fill.is_maker)

    def _info(self, sim: SimOrder) -> OrderInfo:
        offset = self._offset.get(sim.client_id, ZERO)
        return OrderInfo(sim.client_id, sim.exchange_id, self.symbol, sim.side, sim.type, sim.amount + offset,
                         sim.price, sim.filled + offset, sim.status, sim.created_at,
                         sim.cost / sim.filled if sim.filled else None)

