"""Run one strategy against one venue, crash-safely.

The runner is the only place where a strategy meets a venue. Each strategy input goes through
:meth:`BotRunner._feed`: the strategy decides, then the input and the orders it produced (PENDING) are written
in one transaction, and only then are the orders sent. After a crash, :meth:`BotRunner.start` replays the log
into a fresh strategy (same client ids, deterministic) and :meth:`BotRunner.reconcile` brings the venue and the
records together: pending orders are looked up by client id (and sent only if the venue does not know them),
fills that happened while the runner was down are fetched and applied, vanished orders are handed back to the
strategy, and stray orders carrying this bot's client-id prefix are canceled. Start-up recovery is the same code
as normal operation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from gridfleet.engine.strategy import Strategy, create_strategy
from gridfleet.engine.types import (
    BotEvent,
    CancelOrder,
    Candle,
    Fill,
    Intent,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PlaceOrder,
    Tick,
)
from gridfleet.exchanges.base import (
    AuthenticationError,
    ExchangeAdapter,
    ExchangeError,
    InsufficientFunds,
    InvalidOrder,
    NetworkError,
    OrderInfo,
    PriceUpdate,
    TradeInfo,
)
from gridfleet.runtime.store import SqliteStore, StoredOrder, fill_from_json, fill_to_json

log = logging.getLogger("gridfleet.runtime")

FINAL = {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}


class BotRunner:
    """One bot: a strategy, a venue, a store; every handler runs under the bot's lock."""

    def __init__(self, bot_id: str, strategy_name: str, config: BaseModel, symbol: str, venue: ExchangeAdapter,
                 store: SqliteStore, *, exchange: str = "", on_change: Callable[[BotRunner], None] | None = None,
                 candle_ms: int = 60_000) -> None:
        self.bot_id = bot_id
        self.strategy_name = strategy_name
        self.config = config
        self.symbol = symbol
        self.venue = venue
        self.store = store
        self.exchange = exchange
        self.on_change = on_change
        self.lock = asyncio.Lock()
        self.strategy: Strategy | None = None
        self.state = "new"
        self.error = ""
        self.price = Decimal(0)
        self.corrections = 0
        self._candle_ms = candle_ms
        self._bar: list[Any] | None = None  # open_time, open, high, low, close, volume
        self._lost_orders = False  # a reconcile pass found orders canceled/lost behind our back
        self._trades_cache: list[TradeInfo] | None = None  # the venue's trades, fetched once per reconcile pass

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        """Rebuild the strategy from the log (or start it fresh), then reconcile with the venue."""
        async with self.lock:
            market = await self.venue.market(self.symbol)
            self.store.ensure_bot(self.bot_id, strategy=self.strategy_name, symbol=self.symbol,
                                  exchange=self.exchange, config=self.config.model_dump(mode="json"))
            self.strategy = create_strategy(self.strategy_name, self.config, market, self.bot_id)
            events = self.store.events(self.bot_id)
            if events:
                for event in events:
                    self._apply(event.kind, event.ts, event.payload)
                self.store.log(self.bot_id, "state", f"resumed from {len(events)} logged events")
                last_price = next((e.payload.get("price") for e in reversed(events) if "price" in e.payload), None)
                if last_price is not None:
                    self.price = Decimal(last_price)
                self.state = "stopped" if events[-1].kind == "stop" else "running"
            else:
                update = await self.venue.fetch_price(self.symbol)
                self.price = update.price
                self.state = "running"
                await self._feed("start", update.timestamp, {"price": str(update.price)})
            restore = getattr(self.venue, "restore", None)
            if restore is not None:
                restore(self.store.fills(self.bot_id), self.store.orders(self.bot_id, live_only=True))
            await self._reconcile_locked()
            await self.check_balances()
        self._changed()

    async def stop(self, *, cancel_orders: bool = True, sell_all: bool = False) -> None:
        """Stop the bot; with ``cancel_orders`` the strategy's stop intents (cancels, optional sell) are sent."""
        async with self.lock:
            if self.strategy is None or self.state == "stopped":
                return
            if cancel_orders:
                await self._feed("stop", _now(), {"price": str(self.price), "sell_all": sell_all})
            self.state = "stopped"
        self._changed()

    async def command(self, name: str) -> None:
        """Run a strategy command (pause, resume, stop_buying, resume_buying, retry_suspended) durably."""
        if name not in ("pause", "resume", "stop_buying", "resume_buying", "retry_suspended"):
            raise ValueError(f"unknown command {name!r}")
        async with self.lock:
            await self._feed("command", _now(), {"name": name, "price": str(self.price)})
        self._changed()

    async def change_config(self, config: BaseModel) -> None:
        """Apply a new config while running (the strategy returns a diff plan)."""
        async with self.lock:
            await self._feed("config", _now(), {"config": config.model_dump(mode="json"), "price": str(self.price)})
            self.config = config
            self.store.set_config(self.bot_id, config.model_dump(mode="json"))
        self._changed()

    # ------------------------------------------------------------------ market and venue events
    async def on_price(self, update: PriceUpdate) -> None:
        """Tick the strategy when the price crosses one of its wake prices; build candles when it wants them."""
        if self.strategy is None or self.state != "running":
            return
        async with self.lock:
            prev = self.price
            self.price = update.price
            below, above = self.strategy.wake_prices()
            if (below is not None and update.price <= below) or (above is not None and update.price >= above):
                await self._feed("tick", update.timestamp, {"price": str(update.price), "prev": str(prev)})
            if self.strategy.wants_candles:
                await self._candle(update)
        self._changed()

    async def on_wake(self, price: Decimal, timestamp: int) -> None:
        """Tick the strategy at an exact price (paper trading walks the path and wakes it exactly)."""
        if self.strategy is None or self.state != "running":
            return
        self.price = price
        await self._feed("tick", timestamp, {"price": str(price)})

    def wake_prices(self) -> tuple[Decimal | None, Decimal | None]:
        """Return the strategy's wake prices (for a paper venue that walks the path)."""
        if self.strategy is None or self.state != "running":
            return (None, None)
        return self.strategy.wake_prices()

    async def on_trade(self, trade: TradeInfo, *, locked: bool = False) -> None:
        """Apply one of our executions (from the user stream, a REST sync, or the paper venue), once."""
        if locked:
            await self._apply_trade(trade)
        else:
            async with self.lock:
                await self._apply_trade(trade)
        self._changed()

    async def reconcile(self) -> None:
        """Compare records with the venue and repair every difference (see the module docstring)."""
        async with self.lock:
            await self._reconcile_locked()
        self._changed()

    # ------------------------------------------------------------------ internals
    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    def _apply(self, kind: str, ts: int, payload: dict[str, Any]) -> list[Intent]:
        """Feed one logged input to the strategy; return its intents."""
        s = self.strategy
        assert s is not None
        price = Decimal(payload["price"]) if "price" in payload else self.price
        if kind == "start":
            return s.on_start(price, ts)
        if kind == "tick":
            return s.on_tick(Tick(ts, price))
        if kind == "fill":
            return s.on_order_filled(fill_from_json(payload["fill"]))
        if kind == "update":
            return s.on_order_update(OrderUpdate(payload["client_id"], OrderStatus(payload["status"]),
                                                 payload.get("reason", ""), ts))
        if kind == "candle":
            c = payload["candle"]
            return s.on_candle(Candle(int(c[0]), Decimal(c[1]), Decimal(c[2]), Decimal(c[3]), Decimal(c[4]),
                                      Decimal(c[5])))
        if kind == "config":
            config = type(s.config).model_validate(payload["config"])
            return s.on_config_change(config, price, ts)
        if kind == "command":
            method: Callable[[], list[Intent]] = getattr(s, payload["name"])
            return method()
        if kind == "stop":
            return s.on_stop(price, ts, sell_all=bool(payload.get("sell_all", False)))
        raise ValueError(f"unknown event kind {kind!r}")

    async def _feed(self, kind: str, ts: int, payload: dict[str, Any], fill: Fill | None = None) -> None:
        """Decide, persist (input + PENDING orders + fill, atomically), then send."""
        if fill is not None:
            payload = {**payload, "fill": fill_to_json(fill)}
        intents = self._apply(kind, ts, payload)
        places = [i for i in intents if isinstance(i, PlaceOrder)]
        cancels = [i.client_id for i in intents if isinstance(i, CancelOrder)]
        self.store.record(self.bot_id, kind, ts, payload, new_orders=places, cancels=cancels, fill=fill,
                          symbol=self.symbol)
        for event in (i for i in intents if isinstance(i, BotEvent)):
            self.store.log(self.bot_id, event.kind, event.message, event.data)
        await self._send(intents)

    async def _send(self, intents: list[Intent]) -> None:
        for intent in intents:
            if isinstance(intent, PlaceOrder):
                await self._place(intent)
            elif isinstance(intent, CancelOrder):
                await self._cancel(intent.client_id)
        await self._drain_paper_fills()

    async def _drain_paper_fills(self) -> None:
        take = getattr(self.venue, "take_fills", None)
        if take is None:
            return
        while True:
            trades: list[TradeInfo] = take()
            if not trades:
                return
            for trade in trades:
                await self._apply_trade(trade)

    async def _place(self, order: PlaceOrder) -> None:
        try:
            info = await self.venue.create_order(self.symbol, order)
        except (InsufficientFunds, InvalidOrder) as exc:
            if "duplicate" in str(exc).lower():
                # the venue already has this client id (a retry, or a placement whose answer was lost): adopt it
                await self._adopt(order)
                return
            self.store.update_order(order.client_id, status=OrderStatus.REJECTED.value, reason=str(exc))
            await self._feed("update", _now(), {"client_id": order.client_id, "status": OrderStatus.REJECTED.value,
                                                "reason": str(exc)})
            return
        except AuthenticationError as exc:
            self._fail(f"authentication failed: {exc}")
            return
        except NetworkError as exc:
            # ambiguous: the venue may or may not have it; reconcile looks it up by client id
            self.store.log(self.bot_id, "warning", f"placing {order.client_id} ambiguous ({exc}); will reconcile")
            return
        self._record_info(order.client_id, info)

    async def _adopt(self, order: PlaceOrder) -> None:
        try:
            info = await self.venue.fetch_order(self.symbol, order.client_id)
        except NetworkError as exc:
            self.store.log(self.bot_id, "warning", f"{order.client_id}: duplicate at the venue, lookup failed ({exc})")
            return
        stored = self.store.order(order.client_id)
        if info is not None and stored is not None:
            self._correct(f"{order.client_id} already exists at the venue: adopting it")
            await self._reconcile_order(stored, info)

    async def _cancel(self, client_id: str) -> None:
        try:
            info = await self.venue.cancel_order(self.symbol, client_id)
        except NetworkError as exc:
            self.store.log(self.bot_id, "warning", f"cancel of {client_id} not confirmed ({exc}); will reconcile")
            return
        except ExchangeError as exc:
            self.store.log(self.bot_id, "warning", f"cancel of {client_id} refused: {exc}; will reconcile")
            return
        if info is not None and info.status is OrderStatus.CANCELED and info.filled == 0:
            self.store.update_order(client_id, status=OrderStatus.CANCELED.value, exchange_id=info.exchange_id)

    def _record_info(self, client_id: str, info: OrderInfo) -> None:
        stored = self.store.order(client_id)
        if stored is None:
            return
        status = stored.status
        if stored.status == "pending":
            status = OrderStatus.OPEN.value
        self.store.update_order(client_id, status=status, exchange_id=info.exchange_id)

    async def _apply_trade(self, trade: TradeInfo) -> None:
        if self.strategy is None:
            return
        order = self.store.order(trade.client_id)
        if order is None or order.bot_id != self.bot_id or self.store.has_fill(self.bot_id, trade.trade_id):
            return
        complete = order.filled + trade.amount >= order.amount
        fill = Fill(trade.client_id, trade.side, trade.price, trade.amount, trade.fee, trade.fee_currency,
                    trade.timestamp, trade.trade_id, trade.is_maker, complete)
        self.price = trade.price if order.type == OrderType.LIMIT.value else self.price
        await self._feed("fill", trade.timestamp, {}, fill=fill)

    async def _reconcile_locked(self) -> None:
        """One pass: one open-orders request, then a lookup only for orders that changed or are unknown."""
        if self.strategy is None:
            return
        self._trades_cache = None
        try:
            open_at_venue = {o.client_id: o for o in await self.venue.fetch_open_orders(self.symbol)}
        except NetworkError as exc:
            self.store.log(self.bot_id, "warning", f"reconcile: open orders not fetched ({exc})")
            return
        except AuthenticationError as exc:
            self._fail(f"authentication failed: {exc}")
            return
        for order in self.store.orders(self.bot_id, live_only=True):
            info = open_at_venue.get(order.client_id)
            unchanged = (info is not None and order.status in ("open", "partially_filled")
                         and info.filled == order.filled and order.exchange_id is not None)
            if unchanged:
                continue
            if info is None:
                try:
                    info = await self.venue.fetch_order(self.symbol, order.client_id)
                except NetworkError as exc:
                    self.store.log(self.bot_id, "warning", f"reconcile: {order.client_id} not checked ({exc})")
                    continue
            await self._reconcile_order(order, info)
        await self._cancel_strays(list(open_at_venue.values()))
        if self._lost_orders and self.state == "running":
            # orders the venue canceled or lost without us asking: put those layers back on the book
            self._lost_orders = False
            await self._feed("command", _now(), {"name": "retry_suspended", "price": str(self.price)})

    async def check_balances(self) -> None:
        """Warn when the account holds less base than the bot believes it owns (someone moved funds)."""
        strategy = self.strategy
        portfolio = getattr(strategy, "portfolio", None)
        if strategy is None or portfolio is None or strategy.market is None:
            return
        try:
            balances = await self.venue.fetch_balances()
        except ExchangeError as exc:
            self.store.log(self.bot_id, "warning", f"balances not checked ({exc})")
            return
        base = strategy.market.base
        held = balances[base].total if base in balances else Decimal(0)
        if held < portfolio.base:
            self._correct(f"the account holds {held} {base} but the bot's position is {portfolio.base} {base}: "
                          "its sells may be refused")

    async def _reconcile_order(self, order: StoredOrder, info: OrderInfo | None) -> None:
        cid = order.client_id
        if info is None:
            if order.status == "pending":
                self._correct(f"{cid} was never placed: placing it now")
                await self._place(PlaceOrder(cid, order.side, OrderType(order.type), order.amount, order.price,
                                             order.level, order.tag))
                await self._drain_paper_fills()
            else:
                self._correct(f"{cid} is unknown to the venue: treating it as canceled")
                self._lost_orders = self._lost_orders or order.status != "cancel_requested"
                self.store.update_order(cid, status=OrderStatus.CANCELED.value)
                await self._feed("update", _now(), {"client_id": cid, "status": OrderStatus.CANCELED.value,
                                                    "reason": "unknown to the venue"})
            return
        if order.exchange_id is None and info.exchange_id:
            self.store.update_order(cid, exchange_id=info.exchange_id)
        if info.filled > order.filled:
            await self._sync_trades(order, info.exchange_id)
        order = self.store.order(cid) or order
        if info.status in FINAL:
            if order.status in ("filled", "canceled", "rejected", "expired"):
                return
            if info.status is OrderStatus.FILLED:
                if order.filled < order.amount:
                    self._correct(f"{cid} is filled at the venue but its trades are missing; rechecking later")
                return
            self._correct(f"{cid} was {info.status.value} at the venue")
            self._lost_orders = self._lost_orders or order.status != "cancel_requested"
            self.store.update_order(cid, status=info.status.value, exchange_id=info.exchange_id)
            await self._feed("update", _now(), {"client_id": cid, "status": info.status.value,
                                                "reason": "reported by the venue"})
            return
        if order.status == "pending":
            self._correct(f"{cid} is at the venue: marking it open")
            self.store.update_order(cid, status=OrderStatus.OPEN.value, exchange_id=info.exchange_id)
        elif order.status == "cancel_requested":
            await self._cancel(cid)

    async def _sync_trades(self, order: StoredOrder, exchange_id: str) -> None:
        # venues' clocks are not ours (and Binance's myTrades carries no client id): match by order id, no `since`
        try:
            if self._trades_cache is None:
                self._trades_cache = await self.venue.fetch_my_trades(self.symbol)
            trades = self._trades_cache
        except NetworkError as exc:
            self.store.log(self.bot_id, "warning", f"reconcile: trades of {order.client_id} not fetched ({exc})")
            return
        ours = [t if t.client_id == order.client_id else replace(t, client_id=order.client_id) for t in trades
                if t.client_id == order.client_id or (exchange_id and t.exchange_order_id == exchange_id)]
        missing = [t for t in ours if not self.store.has_fill(self.bot_id, t.trade_id)]
        if missing:
            self._correct(f"{order.client_id}: applying {len(missing)} fill(s) missed while away")
        for trade in missing:
            await self._apply_trade(trade)

    async def _cancel_strays(self, open_orders: list[OrderInfo]) -> None:
        prefix = f"{self.bot_id}-"
        live = {o.client_id for o in self.store.orders(self.bot_id, live_only=True)
                if o.status in ("pending", "open", "partially_filled")}
        for info in open_orders:
            if info.client_id.startswith(prefix) and info.client_id not in live:
                self._correct(f"stray order {info.client_id} at the venue: canceling it")
                await self._cancel(info.client_id)

    async def _candle(self, update: PriceUpdate) -> None:
        start = update.timestamp - update.timestamp % self._candle_ms
        p = update.price
        bar = self._bar
        if bar is not None and start > bar[0]:
            await self._feed("candle", bar[0], {"candle": [bar[0], *map(str, bar[1:])], "price": str(bar[4])})
            bar = None
        if bar is None:
            self._bar = [start, p, p, p, p, update.volume or Decimal(0)]
        else:
            bar[2], bar[3], bar[4] = max(bar[2], p), min(bar[3], p), p
            bar[5] += update.volume or Decimal(0)

    def _correct(self, message: str) -> None:
        self.corrections += 1
        log.info("%s: correction: %s", self.bot_id, message)
        self.store.log(self.bot_id, "correction", message)

    def _fail(self, message: str) -> None:
        self.state, self.error = "error", message
        log.error("%s: %s", self.bot_id, message)
        self.store.log(self.bot_id, "error", message)

    # ------------------------------------------------------------------ views
    def status(self) -> dict[str, Any]:
        """Return the bot's state for status tables and the API."""
        out: dict[str, Any] = {"bot_id": self.bot_id, "state": self.state, "error": self.error,
                               "price": str(self.price), "corrections": self.corrections}
        if self.strategy is not None:
            out["strategy"] = self.strategy.status()
        return out


def _now() -> int:
    return int(time.time() * 1000)

