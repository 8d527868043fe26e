"""The grid bot: independent layers, rebound buys, pullback sells, live edits that return an order plan.

Model: with ``n`` levels there are ``n − 1`` *layers*; layer ``i`` is the interval between level ``i`` and
``i + 1``. A layer is always on exactly one side: BUY (it wants to buy ``qty`` at level ``i``) or SELL (it holds
what it bought and wants to sell it at level ``i + 1``, or at its take-profit price). A buy fill turns the layer
to SELL, a sell fill turns it back to BUY. That is the classic grid (a filled buy at level ``i`` places a sell at
``i + 1``; a filled sell at ``i + 1`` places a buy at ``i``), and it is the invariant the tests check: every
interval holds exactly one order intent, and at most one live order.

A layer's order is in one of these states:

* ``RESTING`` — a limit order is live at the venue (``client_id`` set);
* ``WAITING`` — trailing is on: nothing is live, the layer waits for the price to reach its level;
* ``ARMED`` — the price reached the level; the layer tracks the extreme and fires a market (or marketable
  limit) order after a rebound of ``rebound_pct`` off the low (buy) or a pullback of ``pullback_pct`` off the
  high (sell). It disarms, without trading, when the price runs past the opposite target (see docs/engine.md);
* ``SUSPENDED`` — the layer is disabled, buying is stopped, the bot is paused, or the venue rejected the order.

See ``docs/engine.md`` for the exact semantics, including price gaps through several levels.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Literal, TypeVar, cast

from pydantic import BaseModel

from gridfleet.engine.accounting import Portfolio, RoundTrip
from gridfleet.engine.config import GridConfig, GridSpec, GridType, LayerOverride
from gridfleet.engine.levels import level_prices, nearest_level, order_quantity
from gridfleet.engine.risk import LayerContext, RiskAction, RiskContext, RiskEngine, RiskFiring
from gridfleet.engine.strategy import Strategy, register_strategy
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
    Side,
    Tick,
)
from gridfleet.markets import MarketRules, OrderRuleViolation

ZERO = Decimal(0)
HUNDRED = Decimal(100)
AWAITING_BASE = "awaiting base"


class LayerState(StrEnum):
    """Where a layer's order stands."""

    RESTING = "resting"
    WAITING = "waiting"
    ARMED = "armed"
    SUSPENDED = "suspended"


class BotState(StrEnum):
    """Whole-bot state."""

    NEW = "new"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


@dataclass(slots=True)
class Layer:
    """One grid interval and its order intent."""

    index: int
    buy_price: Decimal
    sell_level_price: Decimal
    qty: Decimal
    enabled: bool
    rebound: Decimal  # fraction
    pullback: Decimal  # fraction
    take_profit: Decimal | None  # fraction
    side: Side = Side.BUY
    state: LayerState = LayerState.WAITING
    client_id: str | None = None
    cycle: int = 0
    held: Decimal = ZERO  # base bought by this layer and not yet sold
    entry_cost: Decimal = ZERO  # quote paid for ``held`` (fees in quote included)
    entry_notional: Decimal = ZERO  # price × amount of the buys behind ``held`` (fees excluded)
    bought: Decimal = ZERO  # amount bought (before base fees)
    extreme: Decimal = ZERO  # tracked low (armed buy) or high (armed sell)
    filled: Decimal = ZERO  # amount filled of the current live order
    proceeds: Decimal = ZERO  # quote received so far from the current sell (after quote fees)
    sell_fees: Decimal = ZERO
    suspend_reason: str = ""

    @property
    def entry_price(self) -> Decimal:
        """Return the average buy price of what this layer holds (0 when it holds nothing)."""
        return self.entry_notional / self.bought if self.bought > 0 else ZERO

    @property
    def sell_price(self) -> Decimal:
        """Return the price this layer sells at: the next level, or entry × (1 + take-profit)."""
        if self.take_profit is not None and self.entry_price > 0:
            return self.entry_price * (1 + self.take_profit)
        return self.sell_level_price

    @property
    def target(self) -> Decimal:
        """Return the price of this layer's current order intent."""
        return self.buy_price if self.side is Side.BUY else self.sell_price


@dataclass(frozen=True, slots=True)
class OrderPlan:
    """What a live config change does: orders to cancel, orders to place, orders kept as they are."""

    cancels: tuple[CancelOrder, ...]
    places: tuple[PlaceOrder, ...]
    kept: tuple[str, ...]
    summary: str

    def intents(self) -> list[Intent]:
        """Return the plan as intents: an event describing it, then cancels, then placements."""
        event = BotEvent("plan", self.summary, {"cancel": len(self.cancels), "place": len(self.places),
                                                 "keep": len(self.kept)})
        return [event, *self.cancels, *self.places]


_F = TypeVar("_F", bound=Callable[..., list[Intent]])


def _state_changing(method: _F) -> _F:
    """Mark a hook that can change layer states: it drops the cached wake prices."""

    @functools.wraps(method)
    def wrapper(self: GridStrategy, *args: Any, **kwargs: Any) -> list[Intent]:
        self._wake = None
        try:
            return method(self, *args, **kwargs)
        finally:
            self._wake = None

    return cast(_F, wrapper)


@register_strategy
class GridStrategy(Strategy):
    """Spot grid bot with independent layers, rebound buys, pullback sells and risk rules."""

    name: ClassVar[str] = "grid"
    config_model: ClassVar[type[BaseModel]] = GridConfig

    def __init__(self, config: BaseModel, market: MarketRules | None = None, bot_id: str = "bot") -> None:
        if not isinstance(config, GridConfig):
            raise TypeError("GridStrategy needs a GridConfig")
        super().__init__(config, market, bot_id)
        self.config: GridConfig = config
        self.rules = market or MarketRules.unrestricted(config.symbol)
        self.portfolio = Portfolio(self.rules.base, self.rules.quote)
        self.prices: list[Decimal] = level_prices(config.grid, market)
        self.layers: list[Layer] = []
        self.state = BotState.NEW
        self.buying = True
        self._buy_stopped: set[int] = set()  # layers whose buying is stopped on their own
        self.reserve = ZERO  # base held by the bot but allocated to no layer
        self.price = ZERO
        self.timestamp = 0
        self.peak_equity = ZERO
        self.events: list[BotEvent] = []
        self.risk = RiskEngine(list(config.risk))
        self.wants_candles = self.risk.needs_candles or bool(config.risk)
        self._risk_layers = any(rule.is_layer_scoped for rule in config.risk)
        self._orders: dict[str, int] = {}  # live client id -> layer index
        self._init_id: str | None = None
        self._oneoffs: dict[str, str] = {}  # client id -> purpose of market orders that belong to no layer
        self._oneoff_cost: dict[str, Decimal] = {}  # quote spent by one-off buys (for their cost per unit)
        # canceled by us -> the layer it belonged to (None after a layout change): a late sell fill is booked on
        # that layer when it still holds the base, anything else goes to / from the reserve
        self._retired: dict[str, int | None] = {}
        self._in_flight: set[str] = set()  # live market (or marketable trailing) orders of layers: never canceled
        self._cycles: dict[int, int] = {}  # per layer index: the last cycle used in a client id
        self._seq = 0
        self._wake: tuple[Decimal | None, Decimal | None] | None = None

    # ------------------------------------------------------------------ queries
    @property
    def gap_index(self) -> int | None:
        """Return the level with no order when the layers form a classic ladder, else None."""
        sides = [lay.side for lay in self.layers]
        buys = sides.count(Side.BUY)
        if sides == [Side.BUY] * buys + [Side.SELL] * (len(sides) - buys):
            return buys
        return None

    def live_orders(self) -> dict[str, Layer]:
        """Return the live orders by client id."""
        return {cid: self.layers[i] for cid, i in self._orders.items()}

    def equity(self, price: Decimal) -> Decimal:
        """Return the bot's equity change in quote at ``price`` (quote flow + base marked at ``price``)."""
        return self.portfolio.quote_flow + self.portfolio.base * price

    def status(self) -> dict[str, Any]:
        """Return a JSON-able summary for status tables and the API."""
        p = self.portfolio
        return {
            "state": self.state.value,
            "buying": self.buying,
            "price": str(self.price),
            "levels": [str(x) for x in self.prices],
            "layers": [
                {"index": lay.index, "side": lay.side.value, "state": lay.state.value, "price": str(lay.target),
                 "qty": str(lay.qty), "held": str(lay.held), "enabled": lay.enabled, "client_id": lay.client_id}
                for lay in self.layers
            ],
            "base": str(p.base),
            "reserve": str(self.reserve),
            "avg_entry_price": None if p.avg_entry_price is None else str(p.avg_entry_price),
            "grid_profit": str(p.grid_profit),
            "realized_pnl": str(p.realized_pnl),
            "unrealized_pnl": str(p.unrealized_pnl(self.price)) if self.price else "0",
            "fees": {k: str(v) for k, v in p.fees.items()},
            "buy_fills": p.buy_fills,
            "sell_fills": p.sell_fills,
        }

    def wake_prices(self) -> tuple[Decimal | None, Decimal | None]:
        """Return the nearest prices at which a waiting or armed layer needs a tick (cached between hooks)."""
        if self._wake is None:
            self._wake = self._compute_wake_prices()
        return self._wake

    def _compute_wake_prices(self) -> tuple[Decimal | None, Decimal | None]:
        below: Decimal | None = None
        above: Decimal | None = None
        if self.state is not BotState.RUNNING or not any(lay.rebound or lay.pullback for lay in self.layers):
            return (None, None)
        for lay in self.layers:
            if lay.state is LayerState.WAITING:
                if lay.side is Side.BUY:
                    below = lay.buy_price if below is None else max(below, lay.buy_price)
                else:
                    above = lay.sell_price if above is None else min(above, lay.sell_price)
            elif lay.state is LayerState.ARMED:
                if lay.side is Side.BUY:
                    trigger = min(lay.extreme * (1 + lay.rebound), lay.sell_price)
                    below = lay.extreme if below is None else max(below, lay.extreme)
                    above = trigger if above is None else min(above, trigger)
                else:
                    trigger = max(lay.extreme * (1 - lay.pullback), lay.buy_price)
                    above = lay.extreme if above is None else min(above, lay.extreme)
                    below = trigger if below is None else max(below, trigger)
        return (below, above)

    # ------------------------------------------------------------------ life cycle
    @_state_changing
    def on_start(self, price: Decimal, timestamp: int) -> list[Intent]:
        """Lay out the grid at ``price``: buys below the level nearest it, sells above, one market buy."""
        if self.state is not BotState.NEW:
            raise RuntimeError("the bot has already started")
        self.price, self.timestamp = price, timestamp
        self.state = BotState.RUNNING
        qty = order_quantity(self.config, self.prices, price, self.market)
        self.layers = self._build_layers(self.prices, self.config, qty)
        gap = nearest_level(self.prices, price)
        out: list[Intent] = []
        need = ZERO
        for lay in self.layers:
            if lay.index >= gap:
                lay.side = Side.SELL
                lay.state, lay.suspend_reason = LayerState.SUSPENDED, AWAITING_BASE
                need += lay.qty
        if need > 0:
            amount = self.rules.floor_amount(need) if self.rules.step_size else need
            self._init_id = f"{self.bot_id}-init"
            self._oneoffs[self._init_id] = "initial"
            out.append(PlaceOrder(self._init_id, Side.BUY, OrderType.MARKET, amount, None, None, "initial"))
        for lay in self.layers:
            if lay.side is Side.BUY:
                out.extend(self._arm_or_place(lay))
        self.peak_equity = ZERO
        out.append(BotEvent("state", f"grid started at {price}: {len(self.prices)} levels, qty {qty}, "
                                     f"level {gap} empty", {"gap": gap, "qty": str(qty)}))
        return out

    @_state_changing
    def on_stop(self, price: Decimal, timestamp: int, *, sell_all: bool = False) -> list[Intent]:
        """Cancel every live order; with ``sell_all`` also sell the bot's base at market."""
        self.price, self.timestamp = price, timestamp
        out = self._cancel_all("stop")
        self.state = BotState.STOPPED
        if sell_all:
            out.extend(self._sell_everything("stop"))
        out.append(BotEvent("state", "grid stopped" + (" and position sold" if sell_all else "")))
        return out

    @_state_changing
    def pause(self) -> list[Intent]:
        """Cancel every live order and stop reacting until :meth:`resume`."""
        if self.state is not BotState.RUNNING:
            return []
        out = self._cancel_all("pause")
        self.state = BotState.PAUSED
        out.append(BotEvent("state", "grid paused"))
        return out

    @_state_changing
    def resume(self) -> list[Intent]:
        """Re-place the orders of every enabled layer after a pause."""
        if self.state is not BotState.PAUSED:
            return []
        self.state = BotState.RUNNING
        out: list[Intent] = [BotEvent("state", "grid resumed")]
        for lay in self.layers:
            if lay.state is LayerState.RESTING:
                continue  # a market order still in flight
            if lay.state is LayerState.SUSPENDED and lay.suspend_reason == AWAITING_BASE:
                continue  # its base is still being bought
            if lay.state is LayerState.SUSPENDED and lay.suspend_reason in ("pause", "stop"):
                lay.state = LayerState.WAITING
            out.extend(self._arm_or_place(lay))
        return out

    @_state_changing
    def stop_buying(self, layer: int | None = None) -> list[Intent]:
        """Cancel buys (of one layer, or all) and place no new ones until :meth:`resume_buying`."""
        out: list[Intent] = []
        targets = self.layers if layer is None else [self.layers[layer]]
        if layer is None:
            self.buying = False
        else:  # a layer that is selling now must not buy again after its sell either
            self._buy_stopped.add(layer)
        for lay in targets:
            if lay.side is Side.BUY:
                partly_filled = lay.client_id is not None and lay.filled > 0
                out.extend(self._suspend(lay, "buying stopped"))
                if partly_filled and lay.client_id is None:  # the layer turned to SELL with what its buy got: sell it
                    lay.state = LayerState.WAITING
                    out.extend(self._arm_or_place(lay))
        return out

    @_state_changing
    def resume_buying(self) -> list[Intent]:
        """Allow buys again and re-place the suspended ones."""
        self.buying = True
        self._buy_stopped.clear()
        out: list[Intent] = []
        for lay in self.layers:
            if lay.side is Side.BUY and lay.state is LayerState.SUSPENDED and lay.suspend_reason == "buying stopped":
                lay.state = LayerState.WAITING
                out.extend(self._arm_or_place(lay))
        return out

    # ------------------------------------------------------------------ market events
    @_state_changing
    def on_tick(self, tick: Tick) -> list[Intent]:
        """Arm, track and fire trailing layers at the new price; evaluate risk rules."""
        self.price, self.timestamp = tick.price, tick.timestamp
        if self.state is not BotState.RUNNING:
            return []
        out: list[Intent] = []
        p = tick.price
        for lay in self.layers:
            reached = p <= lay.buy_price if lay.side is Side.BUY else p >= lay.sell_price
            if lay.state is LayerState.WAITING and reached:
                lay.state, lay.extreme = LayerState.ARMED, p
            if lay.state is LayerState.ARMED:
                out.extend(self._track(lay, p))
        out.extend(self._check_risk())
        return out

    @_state_changing
    def on_candle(self, candle: Candle) -> list[Intent]:
        """Feed indicators and evaluate the risk rules at the candle close."""
        self.risk.update_candle(candle)
        self.price, self.timestamp = candle.close, candle.open_time
        return self._check_risk()

    @_state_changing
    def on_order_filled(self, fill: Fill) -> list[Intent]:
        """Book the fill and move its layer to the other side (placing the counter-order)."""
        self.timestamp = fill.timestamp
        if not self.portfolio.apply_fill(fill):
            return []
        self.price = fill.price  # the latest market price known (risk rules and market orders read it)
        if fill.order_complete:
            self._in_flight.discard(fill.client_id)
        fee_base = fill.fee if fill.fee_currency == self.rules.base else ZERO
        fee_quote = fill.fee if fill.fee_currency == self.rules.quote else ZERO
        received = fill.amount - fee_base if fill.side is Side.BUY else ZERO
        index = self._orders.get(fill.client_id)
        if index is None:
            # a one-off market order, or a late fill of an order we canceled: base goes to / from the reserve
            out_of_layer: list[Intent] = []
            if fill.side is Side.BUY:
                self.reserve += received
                cid = fill.client_id
                spent = self._oneoff_cost.get(cid, ZERO) + fill.price * fill.amount + fee_quote
                self._oneoff_cost[cid] = spent
                if fill.order_complete and cid in self._oneoffs:
                    spent = self._oneoff_cost.pop(cid)
                    unit_cost = spent / self.reserve if self.reserve else fill.price
                    out_of_layer = self._allocate_reserve(fill.price, unit_cost)
            elif (late := self._late_sell_layer(fill)) is not None:
                late.filled += fill.amount  # the canceled sell did sell the layer's base: book it there
                late.proceeds += fill.price * fill.amount - fee_quote
                late.sell_fees += fee_quote
                self._settle_partial_sell(late)
            else:
                self.reserve -= fill.amount + fee_base
                if self.reserve < 0:
                    message = f"late fill of {fill.client_id} sold base that a layer holds"
                    out_of_layer.append(BotEvent("warning", message, {"reserve": str(self.reserve)}))
            out_of_layer.extend(self._check_risk())
            return out_of_layer
        lay = self.layers[index]
        lay.filled += fill.amount
        out: list[Intent] = []
        if fill.side is Side.BUY:
            lay.entry_cost += fill.price * fill.amount + fee_quote
            lay.entry_notional += fill.price * fill.amount
            lay.bought += fill.amount
            lay.held += received
            if fill.order_complete:
                self._orders.pop(fill.client_id, None)
                lay.client_id, lay.filled = None, ZERO
                lay.side = Side.SELL
                lay.state = LayerState.WAITING
                out.extend(self._arm_or_place(lay))
        else:
            lay.proceeds += fill.price * fill.amount - fee_quote
            lay.sell_fees += fee_quote
            if fill.order_complete:
                self._orders.pop(fill.client_id, None)
                out.extend(self._close_round_trip(lay, fill))
        out.extend(self._check_risk())
        return out

    @_state_changing
    def on_order_update(self, update: OrderUpdate) -> list[Intent]:
        """Handle a cancel/reject/expiry reported by the venue."""
        if update.client_id == self._init_id and update.status in (OrderStatus.REJECTED, OrderStatus.EXPIRED):
            out = self._cancel_all("stop")  # the grid's limit orders must not trade for a stopped bot
            self.state = BotState.STOPPED
            out.append(BotEvent("alert", f"initial market buy {update.status.value}: {update.reason}; grid stopped"))
            return out
        if update.status.is_final:
            self._in_flight.discard(update.client_id)
        index = self._orders.pop(update.client_id, None)
        if index is None or not update.status.is_final:
            return []
        lay = self.layers[index]
        lay.client_id = None
        if lay.side is Side.BUY and lay.filled > 0:
            # a partially filled buy that ended: sell what it got
            lay.filled = ZERO
            lay.side, lay.state = Side.SELL, LayerState.WAITING
            return self._arm_or_place(lay)
        self._settle_partial_sell(lay)
        lay.filled = ZERO
        if update.status is OrderStatus.CANCELED and lay.state is LayerState.SUSPENDED:
            return []
        lay.state, lay.suspend_reason = LayerState.SUSPENDED, f"{update.status.value}: {update.reason}"
        return [BotEvent("warning", f"layer {lay.index} {lay.side.value} order {update.status.value}: "
                                    f"{update.reason}; the layer waits for a retry", {"layer": lay.index})]

    @_state_changing
    def retry_suspended(self) -> list[Intent]:
        """Re-place orders of layers suspended by the venue (rejected, expired or canceled there)."""
        out: list[Intent] = []
        for lay in self.layers:
            if lay.state is LayerState.SUSPENDED and lay.suspend_reason.startswith(("rejected", "expired", "canceled")):
                lay.state = LayerState.WAITING
                out.extend(self._arm_or_place(lay))
        return out

    # ------------------------------------------------------------------ live edits
    def plan_config_change(self, config: GridConfig, price: Decimal, *,
                           surplus: Literal["keep", "sell"] = "keep") -> tuple[OrderPlan, list[Layer], Decimal]:
        """Compute (without applying) the plan that moves the running grid to ``config`` at ``price``.

        Same level prices: every layer keeps its side, holding and live order; only layers whose settings
        (qty, enabled, trailing, take-profit) changed get a cancel and/or a placement. A layout change (range,
        level count, spacing, added/removed levels) re-lays the grid around ``price`` like a start, hands the
        base the bot holds to the new sell layers (lowest first, whole layers), keeps every live order whose
        side, price and amount still match, and adds a market buy for the base still missing
        (``surplus="sell"`` also sells base no layer needs; by default it stays in the bot's reserve).
        Returns the plan, the new layers and the new reserve.
        """
        if config.symbol != self.config.symbol:
            raise ValueError("symbol: a running bot cannot change its symbol")
        new_prices = level_prices(config.grid, self.market)
        same_layout = new_prices == self.prices
        qty = order_quantity(config, new_prices, price, self.market)
        new_layers = self._build_layers(new_prices, config, qty)
        reserve = self.reserve
        places: list[PlaceOrder] = []
        if same_layout:
            for old, new in zip(self.layers, new_layers, strict=True):
                new.side, new.held, new.entry_cost = old.side, old.held, old.entry_cost
                new.entry_notional, new.bought, new.cycle = old.entry_notional, old.bought, old.cycle
                new.proceeds, new.sell_fees, new.filled = old.proceeds, old.sell_fees, old.filled
                trailing_same = (old.rebound, old.pullback) == (new.rebound, new.pullback)
                if old.state is LayerState.ARMED and trailing_same:
                    new.state, new.extreme = LayerState.ARMED, old.extreme
                elif old.state is LayerState.SUSPENDED and old.suspend_reason == AWAITING_BASE:
                    new.state, new.suspend_reason = old.state, old.suspend_reason
                else:
                    new.state = LayerState.WAITING
        else:
            pool = sum((lay.held - (lay.filled if lay.side is Side.SELL else ZERO) for lay in self.layers), ZERO)
            pool += self.reserve
            avg_cost = self.portfolio.avg_entry_price or price
            gap = nearest_level(new_prices, price)
            deficit = ZERO
            for new in new_layers:
                if new.index < gap:
                    continue
                new.side = Side.SELL
                if pool >= new.qty:
                    pool -= new.qty
                    new.held = new.bought = new.qty
                    new.entry_notional, new.entry_cost = avg_cost * new.qty, avg_cost * new.qty
                else:
                    new.state, new.suspend_reason = LayerState.SUSPENDED, AWAITING_BASE
                    deficit += new.qty
            reserve = pool
            if deficit > reserve:
                amount = self.rules.floor_amount(deficit - reserve) if self.rules.step_size else deficit - reserve
                if amount > 0:
                    places.append(PlaceOrder(f"{self.bot_id}-rebal", Side.BUY, OrderType.MARKET, amount, None,
                                             None, "rebalance"))
            elif surplus == "sell" and reserve > deficit:
                amount = reserve - deficit
                amount = self.rules.floor_amount(amount) if self.rules.step_size else amount
                if amount > 0:
                    places.append(PlaceOrder(f"{self.bot_id}-rebal", Side.SELL, OrderType.MARKET, amount, None,
                                             None, "rebalance"))
        cancels: list[CancelOrder] = []
        kept: list[str] = []
        live = self.live_orders()
        claimed: set[str] = set()
        running = self.state is BotState.RUNNING
        for new in new_layers:
            if new.state is not LayerState.WAITING:
                continue
            want = self._desired_order(new) if running else None
            if want is None:
                continue
            for cid, old in live.items():
                if cid in claimed or old.side is not new.side:
                    continue
                old_amount = old.qty if old.side is Side.BUY else self._sell_amount(old)
                if self._order_price(old) == want[0] and old_amount == want[1]:
                    claimed.add(cid)
                    kept.append(cid)
                    new.client_id, new.state = cid, LayerState.RESTING
                    break
        for new in new_layers:
            if new.client_id is None and new.side is Side.BUY and new.filled > 0:
                new.side, new.filled = Side.SELL, ZERO  # its partly filled buy is canceled: sell what it got
        for cid in live:
            if cid not in claimed:
                cancels.append(CancelOrder(cid, "config change"))
        summary = (f"config change: {len(cancels)} cancel, {len(kept)} kept"
                   + ("" if same_layout else f"; levels {len(self.prices)} -> {len(new_prices)}")
                   + (f"; {places[0].side.value} {places[0].amount} at market to rebalance" if places else ""))
        return OrderPlan(tuple(cancels), tuple(places), tuple(kept), summary), new_layers, reserve

    @_state_changing
    def on_config_change(self, config: BaseModel, price: Decimal, timestamp: int, *,
                         surplus: Literal["keep", "sell"] = "keep") -> list[Intent]:
        """Apply a new config while running; return the plan's intents (a diff, never a blanket restart).

        ``surplus`` is passed to :meth:`plan_config_change`, so the plan applied is the plan previewed.
        """
        if not isinstance(config, GridConfig):
            raise TypeError("GridStrategy needs a GridConfig")
        for lay in self.layers:  # a partly filled sell holds less than ``held``: book the sold part first
            self._settle_partial_sell(lay)
        if level_prices(config.grid, self.market) != self.prices:
            self._buy_stopped.clear()  # the layers are re-laid: per-layer buy stops do not carry over
        plan, layers, reserve = self.plan_config_change(config, price, surplus=surplus)
        self.price, self.timestamp = price, timestamp
        same_layout = level_prices(config.grid, self.market) == self.prices
        if not same_layout:
            self._retired = dict.fromkeys(self._retired)  # layer indices change
        for cancel in plan.cancels:
            index = self._orders.pop(cancel.client_id, None)
            self._retired[cancel.client_id] = index if same_layout else None
        self.config, self.layers, self.reserve = config, layers, reserve
        self.prices = [lay.buy_price for lay in layers] + [layers[-1].sell_level_price]  # the plan's levels
        self._orders = {lay.client_id: lay.index for lay in layers if lay.client_id is not None}
        self.risk = RiskEngine(list(config.risk))
        self.wants_candles = self.risk.needs_candles or bool(config.risk)
        self._risk_layers = any(rule.is_layer_scoped for rule in config.risk)
        out: list[Intent] = [BotEvent("plan", plan.summary, {"cancel": [c.client_id for c in plan.cancels],
                                                             "keep": list(plan.kept)})]
        out.extend(plan.cancels)
        for order in plan.places:  # rebalance market order: give it a fresh one-off id
            out.append(PlaceOrder(self._next_oneoff("rebal"), order.side, order.type, order.amount, None, None,
                                  order.tag))
        for lay in layers:
            if lay.state is LayerState.WAITING:
                out.extend(self._arm_or_place(lay))
        return out

    def with_layer_added(self, price: Decimal, override: LayerOverride | None = None) -> GridConfig:
        """Return a config with one more level at ``price`` (the grid becomes custom)."""
        if price in self.prices:
            raise ValueError(f"price: a level at {price} exists already")
        prices = sorted([*self.prices, price])
        at = prices.index(price)
        layers = [lo.model_copy(update={"level": lo.level + 1}) if lo.level >= at else lo for lo in self.config.layers]
        if override is not None:
            new = min(at, len(prices) - 2)  # a level added above the top opens the layer below it
            layers = [lo for lo in layers if lo.level != new] + [override.model_copy(update={"level": new})]
        return self.config.model_copy(update={"grid": GridSpec(type=GridType.CUSTOM, prices=prices),
                                              "layers": layers})

    def with_level_removed(self, level: int) -> GridConfig:
        """Return a config without level ``level`` (the grid becomes custom)."""
        if not 0 <= level < len(self.prices):
            raise ValueError(f"level: no level {level} (levels are 0..{len(self.prices) - 1})")
        if len(self.prices) <= 2:
            raise ValueError("level: a grid needs at least 2 levels")
        prices = self.prices[:level] + self.prices[level + 1:]
        layers = [lo.model_copy(update={"level": lo.level - 1}) if lo.level > level else lo
                  for lo in self.config.layers if lo.level != level and lo.level - (lo.level > level) < len(prices) - 1]
        return self.config.model_copy(update={"grid": GridSpec(type=GridType.CUSTOM, prices=prices),
                                              "layers": layers})

    # ------------------------------------------------------------------ internals
    def _build_layers(self, prices: list[Decimal], config: GridConfig, qty: Decimal) -> list[Layer]:
        trailing = config.trailing
        layers = []
        for i in range(len(prices) - 1):
            o = config.layer(i)
            rebound = o.rebound_pct if o is not None and o.rebound_pct is not None else trailing.rebound_pct
            pullback = o.pullback_pct if o is not None and o.pullback_pct is not None else trailing.pullback_pct
            lay_qty = o.qty if o is not None and o.qty is not None else qty
            if self.market is not None:
                lay_qty = self.rules.floor_amount(lay_qty)
            layers.append(Layer(
                index=i, buy_price=prices[i], sell_level_price=prices[i + 1], qty=lay_qty,
                enabled=o.enabled if o is not None else True,
                rebound=rebound / HUNDRED, pullback=pullback / HUNDRED,
                take_profit=(o.take_profit_pct / HUNDRED) if o is not None and o.take_profit_pct else None,
            ))
        return layers

    def _new_client_id(self, lay: Layer) -> str:
        """Return the next deterministic client id of a layer: bot id, layer, cycle, side."""
        cycle = self._cycles.get(lay.index, 0) + 1
        self._cycles[lay.index] = lay.cycle = cycle
        return f"{self.bot_id}-{lay.index}-{cycle}{'b' if lay.side is Side.BUY else 's'}"

    def _next_oneoff(self, kind: str) -> str:
        self._seq += 1
        cid = f"{self.bot_id}-{kind}{self._seq}"
        self._oneoffs[cid] = kind
        return cid

    def _sell_amount(self, lay: Layer) -> Decimal:
        return self.rules.floor_amount(lay.held) if self.rules.step_size else lay.held

    def _order_price(self, lay: Layer) -> Decimal:
        """Return the limit price of a layer's resting order (a take-profit is rounded up to the tick)."""
        if lay.side is Side.BUY:
            return lay.buy_price
        return self.rules.ceil_price(lay.sell_price) if lay.take_profit is not None else lay.sell_price

    def _desired_order(self, lay: Layer) -> tuple[Decimal, Decimal] | None:
        """Return (price, amount) of the resting limit this layer wants now, or None."""
        if lay.side is Side.BUY:
            if not lay.enabled or not self._may_buy(lay) or lay.rebound > 0:
                return None
            return (lay.buy_price, lay.qty)
        if lay.pullback > 0 or lay.held <= 0:
            return None
        return (self._order_price(lay), self._sell_amount(lay))

    def _may_buy(self, lay: Layer) -> bool:
        return self.buying and lay.index not in self._buy_stopped

    def _arm_or_place(self, lay: Layer) -> list[Intent]:
        """Put a layer whose order is not live into the right state; return the placement if any."""
        if self.state is not BotState.RUNNING:
            lay.state, lay.suspend_reason = LayerState.SUSPENDED, self.state.value
            return []
        if lay.side is Side.BUY and (not lay.enabled or not self._may_buy(lay)):
            lay.state = LayerState.SUSPENDED
            lay.suspend_reason = "disabled" if not lay.enabled else "buying stopped"
            return []
        trailing = lay.rebound if lay.side is Side.BUY else lay.pullback
        if trailing > 0:
            lay.state = LayerState.WAITING
            return []
        want = self._desired_order(lay)
        if want is None:
            lay.state, lay.suspend_reason = LayerState.SUSPENDED, "nothing to sell"
            return []
        return self._place(lay, OrderType.LIMIT, want[0], want[1], "grid")

    def _place(self, lay: Layer, kind: OrderType, price: Decimal | None, amount: Decimal, tag: str) -> list[Intent]:
        ref = price if price is not None else self.price
        try:
            self.rules.check_order(amount, ref if ref else None, is_market=kind is OrderType.MARKET)
        except OrderRuleViolation as exc:
            lay.state, lay.suspend_reason = LayerState.SUSPENDED, f"rejected: {exc}"
            return [BotEvent("warning", f"layer {lay.index} {lay.side.value} not placed: {exc}",
                             {"layer": lay.index, "code": exc.code})]
        cid = self._new_client_id(lay)
        lay.client_id, lay.state, lay.filled = cid, LayerState.RESTING, ZERO
        self._orders[cid] = lay.index
        if kind is OrderType.MARKET or tag in ("rebound", "pullback"):
            self._in_flight.add(cid)
        return [PlaceOrder(cid, lay.side, kind, amount, price, lay.index, tag)]

    def _track(self, lay: Layer, p: Decimal) -> list[Intent]:
        """Update an armed layer's extreme at price ``p`` and fire or disarm it."""
        if lay.side is Side.BUY:
            if p >= lay.sell_price:
                lay.state = LayerState.WAITING  # ran past the sell target: the rebound entry is gone
                return []
            lay.extreme = min(lay.extreme, p)
            if p >= lay.extreme * (1 + lay.rebound):
                return self._fire(lay, p, "rebound")
            return []
        if p <= lay.buy_price:
            lay.state = LayerState.WAITING  # fell back to the buy level: keep holding, wait for the target again
            return []
        lay.extreme = max(lay.extreme, p)
        if p <= lay.extreme * (1 - lay.pullback):
            return self._fire(lay, p, "pullback")
        return []

    def _fire(self, lay: Layer, p: Decimal, tag: str) -> list[Intent]:
        amount = lay.qty if lay.side is Side.BUY else self._sell_amount(lay)
        if self.config.trailing.order_type == "limit":
            # round towards the market so the limit stays marketable: a buy up, a sell down
            price = self.rules.ceil_price(p) if lay.side is Side.BUY else self.rules.floor_price(p)
            return self._place(lay, OrderType.LIMIT, price, amount, tag)
        return self._place(lay, OrderType.MARKET, None, amount, tag)

    def _close_round_trip(self, lay: Layer, fill: Fill) -> list[Intent]:
        sold = lay.filled
        share = sold / lay.held if lay.held > 0 else ZERO
        cost = lay.entry_cost * share
        buy_fees = (lay.entry_cost - lay.entry_notional) * share
        profit = lay.proceeds - cost
        sell_price = (lay.proceeds + lay.sell_fees) / sold if sold > 0 else fill.price
        self.portfolio.book_round_trip(RoundTrip(lay.index, sold, lay.entry_price, sell_price,
                                                 buy_fees + lay.sell_fees, profit, fill.timestamp))
        leftover = lay.held - sold
        if leftover > 0:
            self.reserve += leftover  # dust below the step size stays with the bot
        self._clear_holding(lay)
        lay.proceeds = lay.sell_fees = lay.filled = ZERO
        lay.client_id = None
        lay.side, lay.state = Side.BUY, LayerState.WAITING
        return self._arm_or_place(lay)

    def _allocate_reserve(self, price: Decimal, cost_per_unit: Decimal) -> list[Intent]:
        """Give reserve base to the sell layers waiting for it (lowest first) and place their sells."""
        out: list[Intent] = []
        for lay in self.layers:
            if self.reserve <= 0:
                break
            if lay.side is Side.SELL and lay.state is LayerState.SUSPENDED and lay.suspend_reason == AWAITING_BASE:
                take = min(self.reserve, lay.qty)
                self.reserve -= take
                lay.held = lay.bought = take
                lay.entry_notional, lay.entry_cost = price * take, cost_per_unit * take
                lay.state, lay.suspend_reason = LayerState.WAITING, ""
                out.extend(self._arm_or_place(lay))
        return out

    @staticmethod
    def _clear_holding(lay: Layer) -> None:
        lay.held = lay.entry_cost = lay.entry_notional = lay.bought = ZERO

    def _suspend(self, lay: Layer, reason: str) -> list[Intent]:
        out: list[Intent] = []
        if lay.state is LayerState.SUSPENDED and lay.suspend_reason == AWAITING_BASE:
            return out  # no order; keep waiting so the market buy's fill still reaches this layer
        if lay.client_id in self._in_flight:
            return out  # a market order cannot be taken back: the layer settles on its fill, then suspends
        if lay.client_id is not None:
            out.append(CancelOrder(lay.client_id, reason))
            self._orders.pop(lay.client_id, None)
            self._retired[lay.client_id] = lay.index
            lay.client_id = None
            self._settle_partial_sell(lay)
            if lay.side is Side.BUY and lay.filled > 0:  # a partly filled buy: the layer now sells what it got
                lay.side, lay.filled = Side.SELL, ZERO
        lay.state, lay.suspend_reason = LayerState.SUSPENDED, reason
        return out

    def _late_sell_layer(self, fill: Fill) -> Layer | None:
        """Return the layer a late fill of a canceled sell sold from, when it still holds that base."""
        index = self._retired.get(fill.client_id)
        if index is None or index >= len(self.layers):
            return None
        lay = self.layers[index]
        fee_base = fill.fee if fill.fee_currency == self.rules.base else ZERO
        if lay.side is not Side.SELL or lay.client_id is not None or lay.held < fill.amount + fee_base:
            return None
        return lay

    def _settle_partial_sell(self, lay: Layer) -> None:
        """Book the filled part of a sell order that ends early; the layer keeps (and later sells) the rest.

        Without this the next sell of the layer would be for its whole holding again and sell base that the
        partial fills already sold.
        """
        sold = lay.filled
        if lay.side is not Side.SELL or sold <= 0:
            return
        share = sold / lay.held if lay.held > sold else Decimal(1)
        cost = lay.entry_cost * share
        buy_fees = (lay.entry_cost - lay.entry_notional) * share
        self.portfolio.book_round_trip(RoundTrip(lay.index, sold, lay.entry_price,
                                                 (lay.proceeds + lay.sell_fees) / sold, buy_fees + lay.sell_fees,
                                                 lay.proceeds - cost, self.timestamp))
        lay.held -= sold
        lay.entry_cost -= cost
        lay.entry_notional -= lay.entry_notional * share
        lay.bought -= lay.bought * share
        lay.proceeds = lay.sell_fees = lay.filled = ZERO
        if lay.held <= 0:
            self._clear_holding(lay)
            lay.side = Side.BUY

    def _cancel_all(self, reason: str) -> list[Intent]:
        out: list[Intent] = []
        for lay in self.layers:
            out.extend(self._suspend(lay, reason))
        return out

    def _sell_everything(self, reason: str) -> list[Intent]:
        # a layer with a market order in flight settles on its fill (a sell in flight is selling already)
        settled = [lay for lay in self.layers if lay.client_id not in self._in_flight]
        total = sum((lay.held for lay in settled), ZERO) + self.reserve
        amount = self.rules.floor_amount(total) if self.rules.step_size else total
        if amount <= 0:
            return []
        cid = self._next_oneoff("close")
        for lay in settled:
            self._clear_holding(lay)
            if lay.side is Side.SELL:
                lay.side = Side.BUY
        self.reserve = total
        return [PlaceOrder(cid, Side.SELL, OrderType.MARKET, amount, None, None, f"close:{reason}")]

    def _take_profit(self, layer: int | None, reason: str) -> list[Intent]:
        targets = self.layers if layer is None else [self.layers[layer]]
        out: list[Intent] = []
        for lay in targets:
            if lay.side is not Side.SELL or lay.held <= 0 or lay.client_id in self._in_flight:
                continue  # nothing to sell, or already selling at market
            if lay.enabled and self._may_buy(lay) and self.price <= lay.buy_price:
                # the layer would buy the same base back at once (its buy level is not below the price)
                out.append(BotEvent("warning", f"layer {lay.index} take-profit skipped: price {self.price} is not "
                                               f"above its buy level {lay.buy_price}", {"layer": lay.index}))
                continue
            out.extend(self._suspend(lay, reason))
            amount = self._sell_amount(lay)
            lay.state = LayerState.WAITING
            try:
                self.rules.check_order(amount, self.price, is_market=True)
            except OrderRuleViolation as exc:
                out.append(BotEvent("warning", f"layer {lay.index} take-profit not placed: {exc}"))
                out.extend(self._arm_or_place(lay))
                continue
            # the market sell is tracked as this layer's order so the round trip is booked on its fill
            out.extend(self._place(lay, OrderType.MARKET, None, amount, f"risk:{reason}"))
        return out

    # ------------------------------------------------------------------ risk
    def risk_context(self) -> RiskContext:
        """Return the values the risk rules read now."""
        p = self.portfolio
        price = self.price
        equity = self.equity(price)
        self.peak_equity = max(self.peak_equity, equity)
        layers = {} if not self._risk_layers else {
            lay.index: LayerContext(
                index=lay.index, level_price=lay.buy_price, position_amount=lay.held,
                avg_entry_price=lay.entry_price if lay.held > 0 else None,
                unrealized_pnl=lay.held * price - lay.entry_cost,
            )
            for lay in self.layers
        }
        return RiskContext(
            timestamp=self.timestamp, price=price, lower=self.prices[0], upper=self.prices[-1],
            position_amount=p.base, avg_entry_price=p.avg_entry_price, realized_pnl=p.realized_pnl,
            unrealized_pnl=p.unrealized_pnl(price), equity=self._equity_total(price),
            peak_equity=self._peak_total(), layers=layers,
        )

    def _equity_total(self, price: Decimal) -> Decimal:
        return (self.config.investment or ZERO) + self.equity(price)

    def _peak_total(self) -> Decimal:
        return (self.config.investment or ZERO) + self.peak_equity

    def _check_risk(self) -> list[Intent]:
        if not self.config.risk or self.state is not BotState.RUNNING or not self.price:
            return []
        out: list[Intent] = []
        for firing in self.risk.evaluate(self.risk_context()):
            out.extend(self._apply_risk(firing))
        return out

    def _apply_risk(self, firing: RiskFiring) -> list[Intent]:
        data = {"rule": firing.rule, "action": firing.action.value, "layer": firing.layer, "values": firing.values}
        out: list[Intent] = [BotEvent("risk", firing.explanation, data)]
        action, layer = firing.action, firing.layer
        if action is RiskAction.ALERT:
            return out
        if action is RiskAction.STOP_BUYING:
            out.extend(self.stop_buying(layer))
        elif action is RiskAction.PAUSE:
            if layer is None:
                out.extend(self.pause())
            else:
                out.extend(self._suspend(self.layers[layer], "pause"))
        elif action is RiskAction.TAKE_PROFIT:
            out.extend(self._take_profit(layer, firing.rule))
        elif action in (RiskAction.STOP, RiskAction.STOP_AND_SELL):
            if layer is None:
                out.extend(self.on_stop(self.price, self.timestamp, sell_all=action is RiskAction.STOP_AND_SELL))
            else:
                lay = self.layers[layer]
                lay.enabled = False
                out.extend(self._suspend(lay, "stopped by risk rule"))
                if action is RiskAction.STOP_AND_SELL and lay.client_id is None:
                    lay.state = LayerState.WAITING
                    out.extend(self._take_profit(layer, firing.rule))
        return out


