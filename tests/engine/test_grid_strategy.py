"""The grid bot: start layout, counter-orders, client ids, fills (idempotent, partial), rejections, pause/stop,
stop_buying, disabled layers, per-layer qty, take-profit; the layer invariant under random paths and edits
(hypothesis); one end-to-end run on real candles."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridfleet.backtest.data import Candles
from gridfleet.backtest.runner import run_backtest
from gridfleet.engine.config import GridConfig, GridSpec, LayerOverride, parse_config
from gridfleet.engine.strategies.grid import AWAITING_BASE, BotState, GridStrategy, LayerState
from gridfleet.engine.strategy import available_strategies, create_strategy
from gridfleet.engine.types import (
    BotEvent,
    CancelOrder,
    Fill,
    Intent,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PlaceOrder,
    Side,
    Tick,
)
from gridfleet.markets import MarketRules
from gridfleet.sim.driver import SimDriver
from gridfleet.sim.matching import MatchingEngine

D = Decimal
ZERO = D(0)
BUY, SELL = Side.BUY, Side.SELL


# ---------------------------------------------------------------------------------------------- helpers


def config(**kw: Any) -> GridConfig:
    data: dict[str, Any] = {"symbol": "BTC/USDT", "grid": {"lower": 100, "upper": 140, "levels": 5},
                            "qty_per_order": "1", "slippage": 0, "fees": {"maker": 0, "taker": 0}}
    data.update(kw)
    return parse_config(data)


def bot(market: MarketRules | None = None, **kw: Any) -> GridStrategy:
    return GridStrategy(config(**kw), market=market, bot_id="b")


def fill(cid: str, side: Side, price: Any, amount: Any, *, fee: Any = 0, ccy: str = "USDT", trade: str | None = None,
         complete: bool = True, ts: int = 1) -> Fill:
    return Fill(cid, side, D(price), D(amount), D(fee), ccy, ts, trade or f"t-{cid}-{amount}-{price}", True, complete)


def places(intents: list[Intent]) -> list[PlaceOrder]:
    return [i for i in intents if isinstance(i, PlaceOrder)]


def cancels(intents: list[Intent]) -> list[str]:
    return [i.client_id for i in intents if isinstance(i, CancelOrder)]


def events(intents: list[Intent], kind: str | None = None) -> list[BotEvent]:
    return [i for i in intents if isinstance(i, BotEvent) and (kind is None or i.kind == kind)]


def limits(intents: list[Intent]) -> list[tuple[str, Side, Decimal | None, Decimal]]:
    return [(p.client_id, p.side, p.price, p.amount) for p in places(intents)]


def started(p0: Any = 121, **kw: Any) -> GridStrategy:
    """A bot started at p0 whose initial market buy has filled."""
    s = bot(**kw)
    out = s.on_start(D(p0), 0)
    init = [p for p in places(out) if p.tag == "initial"]
    if init:
        s.on_order_filled(fill(init[0].client_id, BUY, p0, init[0].amount))
    return s


def simulate(p0: Any = 121, *, quote: Any = 100000, market: MarketRules | None = None, fee_currency: str = "quote",
             participation: Any = None, **kw: Any) -> tuple[GridStrategy, MatchingEngine, SimDriver]:
    c = config(**kw)
    rules = market or MarketRules.unrestricted(c.symbol)
    s = GridStrategy(c, market=market, bot_id="b")
    eng = MatchingEngine(rules, maker_fee=c.fees.maker, taker_fee=c.fees.taker, balances={rules.quote: D(quote)},
                         slippage=c.slippage, participation=None if participation is None else D(participation),
                         fee_currency=fee_currency)
    drv = SimDriver(s, eng)
    drv.start(D(p0), 0)
    return s, eng, drv


def resting(eng: MatchingEngine) -> list[tuple[str, Side, Decimal | None, Decimal]]:
    return sorted((o.client_id, o.side, o.price, o.remaining) for o in eng.open_orders())


def check_invariant(s: GridStrategy, eng: MatchingEngine) -> None:
    """Every interval holds one layer on one side, at most one live order each, every venue order is a layer's."""
    base, quote = s.rules.base, s.rules.quote
    assert len(s.layers) == len(s.prices) - 1
    live: dict[int, list[str]] = {}
    for cid, index in s._orders.items():
        live.setdefault(index, []).append(cid)
    for i, lay in enumerate(s.layers):
        assert lay.index == i
        assert (lay.buy_price, lay.sell_level_price) == (s.prices[i], s.prices[i + 1])
        assert lay.side in (BUY, SELL)
        assert len(live.get(i, [])) <= 1
        if lay.state is LayerState.RESTING:
            assert live[i] == [lay.client_id]
        else:
            assert lay.client_id is None and i not in live
        assert lay.held >= 0 and lay.filled >= 0
        if lay.side is BUY and lay.client_id is None:  # a buy layer without a live order holds nothing
            assert lay.filled == 0 and lay.held == 0
    for order in eng.open_orders():  # resting at the venue: a layer's live order, on the layer's side
        assert order.client_id in s._orders, f"orphan order {order.client_id}"
        assert s.layers[s._orders[order.client_id]].side is order.side
    for order in eng.orders.values():  # one-off market orders are filled at once
        if order.type is OrderType.MARKET:
            assert order.status is OrderStatus.FILLED
    for ccy in (base, quote):
        assert eng.free[ccy] >= 0 and eng.locked[ccy] >= 0
    assert s.reserve >= 0 and s.portfolio.base >= 0
    # the strategy's holdings are exactly the account's base (a partly filled sell already sold `filled`)
    unsold = sum((lay.held - (lay.filled if lay.side is SELL else ZERO) for lay in s.layers), ZERO)
    assert unsold + s.reserve == eng.total(base)
    assert s.portfolio.base == eng.total(base)


# ---------------------------------------------------------------------------------------------- registry


def test_grid_is_registered() -> None:
    assert "grid" in available_strategies()
    s = create_strategy("grid", {"symbol": "a/b", "grid": {"lower": 1, "upper": 2, "levels": 3}, "qty_per_order": 1})
    assert isinstance(s, GridStrategy) and s.config.symbol == "A/B"
    with pytest.raises(TypeError):
        GridStrategy({"symbol": "A/B"})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- start layout


def test_start_layout() -> None:
    s = bot()
    out = s.on_start(D(121), 0)
    # first the one market buy for the sells' base, then a buy limit at every level below the empty one
    assert places(out)[0] == PlaceOrder("b-init", BUY, OrderType.MARKET, D(2), None, None, "initial")
    assert limits(out)[1:] == [("b-0-1b", BUY, D(100), D(1)), ("b-1-1b", BUY, D(110), D(1))]
    assert [(p.level, p.tag, p.type) for p in places(out)[1:]] == [(0, "grid", OrderType.LIMIT)] * 1 + [
        (1, "grid", OrderType.LIMIT)]
    (state,) = events(out, "state")
    assert state.data == {"gap": 2, "qty": "1"} and "level 2 empty" in state.message
    assert s.gap_index == 2 and s.state is BotState.RUNNING
    assert [(lay.side, lay.state) for lay in s.layers] == [
        (BUY, LayerState.RESTING), (BUY, LayerState.RESTING),
        (SELL, LayerState.SUSPENDED), (SELL, LayerState.SUSPENDED)]
    assert s.layers[2].suspend_reason == AWAITING_BASE
    # the market buy's fill hands the base to the sell layers and places their sells one level up
    out = s.on_order_filled(fill("b-init", BUY, 121, 2))
    assert limits(out) == [("b-2-1s", SELL, D(130), D(1)), ("b-3-1s", SELL, D(140), D(1))]
    assert [lay.held for lay in s.layers] == [0, 0, 1, 1]
    assert s.layers[2].entry_price == D(121) and s.reserve == 0
    with pytest.raises(RuntimeError):
        s.on_start(D(121), 0)


@pytest.mark.parametrize(
    ("p0", "gap", "buys", "sells"),
    [("99", 0, [], [110, 120, 130, 140]), ("100", 0, [], [110, 120, 130, 140]),
     ("105", 0, [], [110, 120, 130, 140]),  # tie between 100 and 110 -> the lower level stays empty
     ("105.01", 1, [100], [120, 130, 140]), ("121", 2, [100, 110], [130, 140]),
     ("125", 2, [100, 110], [130, 140]), ("139", 4, [100, 110, 120, 130], []),
     ("500", 4, [100, 110, 120, 130], [])],
)
def test_start_layout_table(p0: str, gap: int, buys: list[int], sells: list[int]) -> None:
    s, eng, drv = simulate(p0)
    assert s.gap_index == gap
    assert sorted(o.price for o in eng.open_orders() if o.side is BUY) == [D(x) for x in buys]
    assert sorted(o.price for o in eng.open_orders() if o.side is SELL) == [D(x) for x in sells]
    init = [r.fill for r in drv.fills if r.tag == "initial"]
    if sells:
        assert [(f.price, f.amount, f.is_maker) for f in init] == [(D(p0), D(len(sells)), False)]
    else:
        assert init == [] and "b-init" not in eng.orders
    check_invariant(s, eng)


def test_start_with_investment_sizes_the_orders() -> None:
    _s, eng, drv = simulate(121, qty_per_order=None, investment=1000, quote=1000)
    q = D("2.212389380530")  # 1000 / (100 + 110 + 2 x 121), 12 decimals down
    assert {o.amount for o in eng.open_orders()} == {q}
    assert drv.fills[0].fill.amount == 2 * q
    assert eng.total("USDT") == 1000 - 2 * q * 121  # the buys' funds are locked, not spent
    assert eng.free["USDT"] == 1000 - 2 * q * 121 - (100 + 110) * q


def test_start_awaits_base_from_reserve_in_partial_fills() -> None:
    s = bot()
    s.on_start(D(121), 0)
    assert places(s.on_order_filled(fill("b-init", BUY, 121, "0.5", complete=False))) == []
    assert s.reserve == D("0.5")  # nothing handed out before the market buy completes
    out = s.on_order_filled(fill("b-init", BUY, "121.2", "1.5", trade="t2"))
    assert limits(out) == [("b-2-1s", SELL, D(130), D(1)), ("b-3-1s", SELL, D(140), D(1))]
    assert s.layers[2].entry_cost == (D("60.5") + D("181.8")) / 2  # cost per unit of the whole market buy


# ---------------------------------------------------------------------------------------------- counter-orders


def test_buy_fill_places_sell_one_level_up_and_sell_fill_buy_one_level_down() -> None:
    s = started(121, fees={"maker": "0.001", "taker": "0.001"})
    out = s.on_order_filled(fill("b-1-1b", BUY, 110, 1, fee="0.11"))
    assert limits(out) == [("b-1-2s", SELL, D(120), D(1))]
    lay = s.layers[1]
    assert (lay.side, lay.held, lay.entry_price, lay.entry_cost) == (SELL, D(1), D(110), D("110.11"))
    assert s.gap_index == 1
    out = s.on_order_filled(fill("b-1-2s", SELL, 120, 1, fee="0.12"))
    assert limits(out) == [("b-1-3b", BUY, D(110), D(1))]
    (trip,) = s.portfolio.round_trips
    assert (trip.level, trip.amount, trip.buy_price, trip.sell_price) == (1, D(1), D(110), D(120))
    assert trip.fees == D("0.23") and trip.profit == D("9.77")  # 120 - 0.12 - 110.11
    assert s.portfolio.grid_profit == D("9.77")
    assert (lay.side, lay.held) == (BUY, 0)
    # the top layer: a sell at 140 turns it into a buy at 130
    out = s.on_order_filled(fill("b-3-1s", SELL, 140, 1, fee="0.14"))
    assert limits(out) == [("b-3-2b", BUY, D(130), D(1))]
    assert s.portfolio.round_trips[-1].profit == D("140") - D("0.14") - D(121)  # initial base cost P0, no fee


def test_client_ids_are_deterministic_and_unique_over_a_run() -> None:
    s, eng, drv = simulate(121)
    placed: list[str] = []
    orig = eng.place

    def spy(order: PlaceOrder, price_now: Decimal, ts: int) -> Any:
        placed.append(order.client_id)
        return orig(order, price_now, ts)

    eng.place = spy  # type: ignore[method-assign]
    path = [95, 145, 95, 145, 105, 135, 115, 125, 99, 141]
    for t, p in enumerate(path * 3, 1):
        drv.move_to(D(p), t)
    assert len(placed) == len(set(placed)) and len(placed) > 40
    assert not [e for _, e in drv.events if "DUPLICATE" in e.message]
    # bot id, layer, cycle, side
    assert placed[:4] == ["b-1-2s", "b-0-2s", "b-0-3b", "b-1-3b"]
    check_invariant(s, eng)
    # the same run twice gives the same ids
    _s2, eng2, drv2 = simulate(121)
    for t, p in enumerate(path * 3, 1):
        drv2.move_to(D(p), t)
    assert list(eng2.orders) == list(eng.orders)


def test_same_fill_twice_books_once() -> None:
    s = started(121)
    f = fill("b-1-1b", BUY, 110, 1, trade="T9")
    assert limits(s.on_order_filled(f)) == [("b-1-2s", SELL, D(120), D(1))]
    before = (s.portfolio.base, s.portfolio.quote_flow, s.portfolio.buy_fills, s.layers[1].held)
    assert s.on_order_filled(f) == []
    assert (s.portfolio.base, s.portfolio.quote_flow, s.portfolio.buy_fills, s.layers[1].held) == before
    g = fill("b-1-2s", SELL, 120, 1, trade="T10")
    s.on_order_filled(g)
    assert s.on_order_filled(g) == []
    assert len(s.portfolio.round_trips) == 1 and s.portfolio.sell_fills == 1


def test_partial_buy_fills() -> None:
    s = started(121)
    assert s.on_order_filled(fill("b-1-1b", BUY, 110, "0.3", complete=False, trade="p1")) == []
    lay = s.layers[1]
    assert (lay.side, lay.state, lay.held, lay.filled) == (BUY, LayerState.RESTING, D("0.3"), D("0.3"))
    assert s.on_order_filled(fill("b-1-1b", BUY, 110, "0.3", complete=False, trade="p2")) == []
    out = s.on_order_filled(fill("b-1-1b", BUY, 110, "0.4", trade="p3"))
    assert limits(out) == [("b-1-2s", SELL, D(120), D(1))]
    assert (lay.held, lay.filled, lay.bought) == (D(1), 0, D(1))


def test_partial_sell_fills_book_one_round_trip() -> None:
    s = started(121)
    s.on_order_filled(fill("b-1-1b", BUY, 110, 1))
    assert s.on_order_filled(fill("b-1-2s", SELL, 120, "0.25", complete=False, trade="s1")) == []
    assert s.layers[1].held == 1 and s.portfolio.round_trips == []
    out = s.on_order_filled(fill("b-1-2s", SELL, 120, "0.75", trade="s2"))
    assert limits(out) == [("b-1-3b", BUY, D(110), D(1))]
    (trip,) = s.portfolio.round_trips
    assert (trip.amount, trip.profit, trip.sell_price) == (D(1), D(10), D(120))


def test_venue_cancel_of_partly_filled_buy_sells_what_it_got() -> None:
    s = started(121)
    s.on_order_filled(fill("b-1-1b", BUY, 110, "0.4", complete=False))
    out = s.on_order_update(OrderUpdate("b-1-1b", OrderStatus.EXPIRED, "IOC"))
    assert limits(out) == [("b-1-2s", SELL, D(120), D("0.4"))]
    assert s.layers[1].side is SELL


def test_partly_filled_sell_canceled_by_pause_sells_only_the_rest() -> None:
    """Regression: the re-placed sell used to be for the whole holding again (selling base twice)."""
    s = started(121)
    s.on_order_filled(fill("b-1-1b", BUY, 110, 1))
    s.on_order_filled(fill("b-1-2s", SELL, 120, "0.4", complete=False))
    assert cancels(s.pause()) == ["b-0-1b", "b-1-2s", "b-2-1s", "b-3-1s"]
    (trip,) = s.portfolio.round_trips  # the sold part is booked at once
    assert (trip.amount, trip.profit) == (D("0.4"), D("0.4") * 10)
    assert (s.layers[1].held, s.layers[1].entry_price, s.layers[1].filled) == (D("0.6"), D(110), 0)
    out = s.resume()
    assert ("b-1-3s", SELL, D(120), D("0.6")) in limits(out)
    s.on_order_filled(fill("b-1-3s", SELL, 120, "0.6"))
    assert [t.amount for t in s.portfolio.round_trips] == [D("0.4"), D("0.6")]
    assert s.portfolio.grid_profit == D(10) and s.layers[1].side is BUY


def test_partly_filled_sell_then_pause_through_the_matching_engine() -> None:
    s, eng, drv = simulate(121, participation=1)
    eng.begin_volume(D("0.4"))  # this candle can fill 0.4 base in total
    drv.move_to(D(131), 1)
    assert [(r.fill.client_id, r.fill.amount) for r in drv.fills[1:]] == [("b-2-1s", D("0.4"))]
    drv.execute(s.pause())
    eng.begin_volume(None)
    drv.execute(s.resume())
    assert ("b-2-2s", SELL, D(130), D("0.6")) in resting(eng) or any(
        r.fill.client_id == "b-2-2s" and r.fill.amount == D("0.6") for r in drv.fills)
    drv.move_to(D(145), 2)
    assert not events([e for _, e in drv.events], "warning")
    assert eng.total("BTC") == 0 and s.portfolio.base == 0
    check_invariant(s, eng)


# ---------------------------------------------------------------------------------------------- rejections


def test_venue_rejection_suspends_the_layer_until_retry() -> None:
    s = started(121)
    out = s.on_order_update(OrderUpdate("b-0-1b", OrderStatus.REJECTED, "INSUFFICIENT_BALANCE: no money"))
    (warning,) = events(out, "warning")
    assert "layer 0 buy order rejected: INSUFFICIENT_BALANCE" in warning.message and warning.data == {"layer": 0}
    lay = s.layers[0]
    assert (lay.state, lay.client_id) == (LayerState.SUSPENDED, None)
    assert lay.suspend_reason.startswith("rejected: INSUFFICIENT_BALANCE")
    assert "b-0-1b" not in s.live_orders()
    out = s.retry_suspended()
    assert limits(out) == [("b-0-2b", BUY, D(100), D(1))]
    assert s.retry_suspended() == []


def test_venue_cancel_is_retried_too() -> None:
    s = started(121)
    out = s.on_order_update(OrderUpdate("b-2-1s", OrderStatus.CANCELED, "canceled by user"))
    assert events(out, "warning")
    assert limits(s.retry_suspended()) == [("b-2-2s", SELL, D(130), D(1))]


def test_non_final_update_and_unknown_order_are_ignored() -> None:
    s = started(121)
    assert s.on_order_update(OrderUpdate("b-0-1b", OrderStatus.OPEN)) == []
    assert s.on_order_update(OrderUpdate("nope", OrderStatus.REJECTED, "x")) == []
    assert s.layers[0].state is LayerState.RESTING


def test_rule_violation_is_caught_before_placing() -> None:
    rules = MarketRules("BTC/USDT", "BTC", "USDT", tick_size=D("0.01"), step_size=D("0.001"), min_notional=D(105))
    s = bot(rules)
    out = s.on_start(D(121), 0)
    (warning,) = events(out, "warning")
    assert warning.data == {"layer": 0, "code": "MIN_NOTIONAL"}
    assert "layer 0 buy not placed" in warning.message
    assert [p.client_id for p in places(out)] == ["b-init", "b-1-1b"]
    assert s.layers[0].state is LayerState.SUSPENDED and s.layers[0].suspend_reason.startswith("rejected: ")


def test_rejected_initial_buy_stops_the_grid_and_cancels_its_orders() -> None:
    """Regression: the grid used to say "stopped" while its buy limits stayed live and kept trading."""
    s, eng, drv = simulate(121, quote=220)  # 2 x 121 does not fit
    assert s.state is BotState.STOPPED
    (alert,) = [e for _, e in drv.events if e.kind == "alert"]
    assert alert.message.startswith("initial market buy rejected: INSUFFICIENT_BALANCE")
    assert eng.open_orders() == [] and s.live_orders() == {}
    drv.move_to(D(95), 1)
    assert [r.fill for r in drv.fills] == [] and eng.total("USDT") == 220


# ---------------------------------------------------------------------------------------------- pause / stop


def test_pause_and_resume() -> None:
    s = started(121)
    out = s.pause()
    assert cancels(out) == ["b-0-1b", "b-1-1b", "b-2-1s", "b-3-1s"]
    assert events(out, "state")[0].message == "grid paused"
    assert s.state is BotState.PAUSED and s.live_orders() == {}
    assert all(lay.state is LayerState.SUSPENDED and lay.suspend_reason == "pause" for lay in s.layers)
    assert s.pause() == [] and s.on_tick(Tick(2, D(90))) == []
    out = s.resume()
    assert limits(out) == [("b-0-2b", BUY, D(100), D(1)), ("b-1-2b", BUY, D(110), D(1)),
                           ("b-2-2s", SELL, D(130), D(1)), ("b-3-2s", SELL, D(140), D(1))]
    assert s.state is BotState.RUNNING and s.resume() == []


def test_pause_while_the_initial_buy_is_in_flight_keeps_the_sells_waiting_for_base() -> None:
    s = bot()
    s.on_start(D(121), 0)
    s.pause()
    s.resume()
    assert s.layers[3].suspend_reason == AWAITING_BASE
    out = s.on_order_filled(fill("b-init", BUY, 121, 2))
    assert limits(out) == [("b-2-1s", SELL, D(130), D(1)), ("b-3-1s", SELL, D(140), D(1))]


def test_stop_cancels_everything() -> None:
    s = started(121)
    out = s.on_stop(D(118), 5)
    assert cancels(out) == ["b-0-1b", "b-1-1b", "b-2-1s", "b-3-1s"] and places(out) == []
    assert events(out, "state")[0].message == "grid stopped"
    assert s.state is BotState.STOPPED and s.wake_prices() == (None, None)
    assert s.on_tick(Tick(6, D(90))) == [] and s.resume() == []


def test_stop_and_sell_all_through_the_engine() -> None:
    s, eng, drv = simulate(121, fees={"maker": "0.001", "taker": "0.002"}, slippage="0.001")
    drv.move_to(D(105), 1)  # buy at 110 fills
    drv.price = D(115)
    drv.stop(sell_all=True)
    close = [r for r in drv.fills if r.tag == "close:stop"]
    assert [(r.fill.side, r.fill.amount, r.fill.price) for r in close] == [(SELL, D(3), D("114.885"))]
    assert eng.total("BTC") == 0 and eng.open_orders() == [] and s.reserve == 0
    assert s.state is BotState.STOPPED
    assert events([e for _, e in drv.events], "state")[-1].message == "grid stopped and position sold"
    init = drv.fills[0].fill
    assert init.price == D("121.121")  # P0 moved against the taker by the slippage
    # money is conserved exactly: what the account has = what the fills say
    assert eng.total("USDT") == 100000 + s.portfolio.quote_flow


# ---------------------------------------------------------------------------------------------- buying


def test_stop_buying_and_resume_buying() -> None:
    s = started(121)
    out = s.stop_buying()
    assert cancels(out) == ["b-0-1b", "b-1-1b"] and not s.buying
    assert [lay.state for lay in s.layers[2:]] == [LayerState.RESTING] * 2  # sells stay
    out = s.on_order_filled(fill("b-2-1s", SELL, 130, 1))
    assert places(out) == [] and s.layers[2].side is BUY
    assert s.layers[2].suspend_reason == "buying stopped"
    out = s.resume_buying()
    assert limits(out) == [("b-0-2b", BUY, D(100), D(1)), ("b-1-2b", BUY, D(110), D(1)),
                           ("b-2-2b", BUY, D(120), D(1))]


def test_stop_buying_one_layer_also_after_its_sell() -> None:
    """Regression: stopping a selling layer's buying used to do nothing (it bought again after its sell)."""
    s = started(121)
    assert cancels(s.stop_buying(0)) == ["b-0-1b"] and s.buying
    assert s.stop_buying(2) == []  # selling now
    out = s.on_order_filled(fill("b-2-1s", SELL, 130, 1))
    assert places(out) == [] and s.layers[2].suspend_reason == "buying stopped"
    s.on_order_filled(fill("b-1-1b", BUY, 110, 1))
    out = s.on_order_filled(fill("b-1-2s", SELL, 120, 1))
    assert limits(out) == [("b-1-3b", BUY, D(110), D(1))]  # other layers are not affected
    assert limits(s.resume_buying()) == [("b-0-2b", BUY, D(100), D(1)), ("b-2-2b", BUY, D(120), D(1))]


# ---------------------------------------------------------------------------------------------- layer settings


def test_disabled_layer_places_no_buy() -> None:
    s = bot(layers=[{"level": 1, "enabled": False}])
    out = s.on_start(D(121), 0)
    assert limits(out)[1:] == [("b-0-1b", BUY, D(100), D(1))]
    assert (s.layers[1].state, s.layers[1].suspend_reason) == (LayerState.SUSPENDED, "disabled")
    assert s.status()["layers"][1]["enabled"] is False


def test_per_layer_qty_override() -> None:
    s, eng, drv = simulate(121, layers=[{"level": 0, "qty": 3}, {"level": 3, "qty": "2.5"}])
    assert resting(eng) == [("b-0-1b", BUY, D(100), D(3)), ("b-1-1b", BUY, D(110), D(1)),
                            ("b-2-1s", SELL, D(130), D(1)), ("b-3-1s", SELL, D(140), D("2.5"))]
    assert drv.fills[0].fill.amount == D("3.5")
    drv.move_to(D(95), 1)
    assert ("b-0-2s", SELL, D(110), D(3)) in resting(eng)
    check_invariant(s, eng)


def test_per_layer_qty_is_floored_to_the_step() -> None:
    rules = MarketRules("BTC/USDT", "BTC", "USDT", step_size=D("0.01"))
    s = bot(rules, layers=[{"level": 0, "qty": "0.129"}])
    assert s.on_start(D(121), 0) and s.layers[0].qty == D("0.12")


def test_take_profit_layer_sells_at_entry_plus_tp_rounded_up() -> None:
    rules = MarketRules("BTC/USDT", "BTC", "USDT", tick_size=D("0.01"), step_size=D("0.001"))
    s = bot(rules, grid={"type": "custom", "prices": ["100.03", "110", "120", "130"]},
            layers=[{"level": 0, "take_profit_pct": 1}])
    s.on_start(D(121), 0)
    s.on_order_filled(fill("b-init", BUY, 121, 1))
    out = s.on_order_filled(fill("b-0-1b", BUY, "100.03", 1))
    assert limits(out) == [("b-0-2s", SELL, D("101.04"), D(1))]  # 100.03 x 1.01 = 101.0303 -> 101.04
    assert s.layers[0].sell_price == D("101.0303")
    out = s.on_order_filled(fill("b-0-2s", SELL, "101.04", 1))
    assert limits(out) == [("b-0-3b", BUY, D("100.03"), D(1))]
    assert s.portfolio.round_trips[0].profit == D("1.01")


def test_take_profit_uses_the_average_of_partial_buys() -> None:
    s = started(121, layers=[{"level": 1, "take_profit_pct": 2}])
    s.on_order_filled(fill("b-1-1b", BUY, 110, "0.5", complete=False))
    out = s.on_order_filled(fill("b-1-1b", BUY, 108, "0.5", trade="x"))
    assert limits(out) == [("b-1-2s", SELL, D("111.18"), D(1))]  # 109 x 1.02


def test_status_is_json_able() -> None:
    import json

    s = started(121, fees={"maker": "0.001", "taker": "0.001"})
    s.on_order_filled(fill("b-1-1b", BUY, 110, 1, fee="0.11"))
    st_ = s.status()
    json.dumps(st_)
    assert st_["state"] == "running" and st_["levels"] == ["100", "110", "120", "130", "140"]
    assert [x["side"] for x in st_["layers"]] == ["buy", "sell", "sell", "sell"]
    assert st_["base"] == "3" and st_["buy_fills"] == 2 and st_["fees"] == {"USDT": "0.11"}


def test_no_wake_prices_without_trailing() -> None:
    s = started(121)
    assert s.wake_prices() == (None, None)


# ---------------------------------------------------------------------------------------------- paths


def test_down_and_up_through_the_engine() -> None:
    fees = {"maker": "0.001", "taker": "0.002"}
    s, eng, drv = simulate(121, fees=fees)
    drv.move_to(D(95), 1)
    assert [(r.fill.client_id, r.fill.price, r.fill.is_maker) for r in drv.fills[1:]] == [
        ("b-1-1b", D(110), True), ("b-0-1b", D(100), True)]  # highest buy first
    assert resting(eng) == [("b-0-2s", SELL, D(110), D(1)), ("b-1-2s", SELL, D(120), D(1)),
                            ("b-2-1s", SELL, D(130), D(1)), ("b-3-1s", SELL, D(140), D(1))]
    drv.move_to(D(145), 2)
    assert [(r.fill.client_id, r.fill.price) for r in drv.fills[3:]] == [
        ("b-0-2s", D(110)), ("b-1-2s", D(120)), ("b-2-1s", D(130)), ("b-3-1s", D(140))]  # lowest sell first
    assert resting(eng) == [("b-0-3b", BUY, D(100), D(1)), ("b-1-3b", BUY, D(110), D(1)),
                            ("b-2-2b", BUY, D(120), D(1)), ("b-3-2b", BUY, D(130), D(1))]
    # exact money: initial buy 2 x 121 (taker), buys 110 + 100, sells 110 + 120 + 130 + 140 (maker)
    spent = D(242) * D("1.002") + D(210) * D("1.001")
    got = D(500) * D("0.999")
    assert eng.total("USDT") == 100000 - spent + got
    assert eng.total("BTC") == 0
    assert s.portfolio.grid_profit == sum((t.profit for t in s.portfolio.round_trips), ZERO)
    assert [t.profit for t in s.portfolio.round_trips] == [
        D(110) * D("0.999") - D(100) * D("1.001"), D(120) * D("0.999") - D(110) * D("1.001"),
        D(130) * D("0.999") - D(121) * D("1.002"), D(140) * D("0.999") - D(121) * D("1.002")]
    check_invariant(s, eng)


def test_counter_order_fills_later_on_the_same_candle_path() -> None:
    s, _eng, drv = simulate(121)
    for t, p in enumerate([D(119), D(109), D(121), D(120)], 1):  # open, low, high, close
        drv.move_to(p, t)
    assert [(r.fill.client_id, r.fill.price) for r in drv.fills[1:]] == [("b-1-1b", D(110)), ("b-1-2s", D(120))]
    assert s.portfolio.grid_profit == 10


def test_fee_in_received_currency() -> None:
    s, eng, drv = simulate(121, fees={"maker": "0.001", "taker": "0.001"}, fee_currency="received")
    init = drv.fills[0].fill
    assert (init.fee, init.fee_currency) == (D("0.002"), "BTC")
    # the layers got what was received: the first sell layer a full qty, the last one the rest
    assert [lay.held for lay in s.layers] == [0, 0, D(1), D("0.998")]
    assert resting(eng)[-1] == ("b-3-1s", SELL, D(140), D("0.998"))
    drv.move_to(D(105), 1)
    sell = resting(eng)[1]
    assert sell == ("b-1-2s", SELL, D(120), D("0.999"))
    drv.move_to(D(145), 2)
    assert eng.total("BTC") == 0
    check_invariant(s, eng)


# ---------------------------------------------------------------------------------------------- invariant


RISK_SETS: list[list[dict[str, Any]]] = [
    [],
    [{"name": "tp", "scope": {"layers": "all"}, "when": {"metric": "position_amount", "op": ">", "value": 0},
      "action": "take_profit"}],
    [{"name": "tp", "scope": {"layers": "all"}, "when": {"metric": "unrealized_pnl", "op": ">", "value": "0.5"},
      "action": "take_profit"},
     {"name": "sl", "scope": {"layers": "all"}, "when": {"metric": "unrealized_pnl", "op": "<", "value": -3},
      "action": "stop_and_sell"},
     {"name": "nb", "when": {"metric": "price", "op": "<", "value": 101}, "action": "stop_buying"}],
    [{"name": "lb", "scope": {"layers": [0, 2]}, "when": {"metric": "price", "op": "<", "value": 103},
      "action": "stop_buying"},
     {"name": "ps", "scope": {"layers": [1]}, "when": {"metric": "price", "op": ">", "value": 104},
      "action": "pause"},
     {"name": "tp", "when": {"metric": "unrealized_pnl", "op": ">", "value": 1}, "action": "take_profit"}],
]


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(3, 8))
    spacing = draw(st.sampled_from([D(1), D(5), D("2.5")]))
    lower = D(100)
    steps = draw(st.lists(st.one_of(
        st.tuples(st.just("move"), st.integers(-3, (n - 1) * 8 + 3), st.just(0)),
        st.tuples(st.sampled_from(["toggle", "qty", "add", "remove", "range", "pause", "stop_buying", "tp",
                                   "retry", "trailing"]),
                  st.integers(0, 100), st.integers(0, 100)),
    ), min_size=1, max_size=30))
    return {
        "n": n, "spacing": spacing, "lower": lower, "steps": steps,
        "p0": lower + draw(st.integers(-2, (n - 1) * 4 + 2)) * spacing / 4,
        "rebound": draw(st.sampled_from([D(0), D("0.5"), D(3)])),
        "pullback": draw(st.sampled_from([D(0), D("0.5"), D(3)])),
        "order_type": draw(st.sampled_from(["market", "limit"])),
        "fee_currency": draw(st.sampled_from(["quote", "received"])),
        "slippage": draw(st.sampled_from([D(0), D("0.001")])),
        "participation": draw(st.booleans()),
        "tick": draw(st.booleans()),
        "quote": draw(st.sampled_from([10**7, 10**7, 700])),
        "stop": draw(st.sampled_from([None, None, "stop", "sell_all"])),
        "risk": draw(st.sampled_from(RISK_SETS)),
    }


def _edit(s: GridStrategy, kind: str, a: int, b: int, spacing: Decimal) -> GridConfig | None:
    c = s.config
    k = len(s.layers)
    i = a % k
    old = c.layer(i)
    others = [x for x in c.layers if x.level != i]
    if kind == "toggle":
        enabled = not (old.enabled if old else True)
        return c.model_copy(update={"layers": [*others, LayerOverride(level=i, enabled=enabled)]})
    if kind == "qty":
        return c.model_copy(update={"layers": [*others, LayerOverride(level=i, qty=D(1 + b % 3) / 2)]})
    if kind == "tp":
        return c.model_copy(update={"layers": [*others, LayerOverride(level=i, take_profit_pct=D(1 + b % 5) / 2)]})
    if kind == "trailing":
        return c.model_copy(update={"layers": [*others, LayerOverride(level=i, rebound_pct=D(b % 3),
                                                                      pullback_pct=D(a % 3))]})
    if kind == "add":
        price = s.prices[0] - spacing + (s.prices[-1] - s.prices[0] + 2 * spacing) * D(a) / 100
        price = price.quantize(D("0.01"))
        if price in s.prices or price <= 0:
            return None
        return s.with_layer_added(price, LayerOverride(level=0, qty=D(1)) if b % 2 else None)
    if kind == "remove":
        return s.with_level_removed(a % len(s.prices)) if len(s.prices) > 3 else None
    assert kind == "range"
    lower = D(100) + spacing * (a % 5 - 2)
    grid = GridSpec(lower=lower, upper=lower + spacing * (2 + b % 8), levels=2 + b % 6)
    return c.model_copy(update={"grid": grid, "layers": []})


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_layer_invariant_under_random_paths_and_edits(sc: dict[str, Any]) -> None:
    spacing, lower = sc["spacing"], sc["lower"]
    rules = (MarketRules("BTC/USDT", "BTC", "USDT", tick_size=D("0.01"), step_size=D("0.001")) if sc["tick"]
             else MarketRules.unrestricted("BTC/USDT"))
    s, eng, drv = simulate(
        sc["p0"], quote=sc["quote"], market=rules if sc["tick"] else None, fee_currency=sc["fee_currency"],
        participation=1 if sc["participation"] else None,
        grid={"lower": lower, "upper": lower + spacing * (sc["n"] - 1), "levels": sc["n"]},
        slippage=sc["slippage"], fees={"maker": "0.001", "taker": "0.002"},
        trailing={"rebound_pct": sc["rebound"], "pullback_pct": sc["pullback"], "order_type": sc["order_type"]},
        risk=sc["risk"],
    )
    check_invariant(s, eng)
    for t, (kind, a, b) in enumerate(sc["steps"], 1):
        if kind == "move":
            if sc["participation"]:
                eng.begin_volume(D("0.37"))  # partial fills
            drv.move_to(lower + a * spacing / 8, t)
        elif kind == "pause":
            drv.execute(s.pause() if s.state is BotState.RUNNING else s.resume())
        elif kind == "stop_buying":
            drv.execute(s.stop_buying(None if b % 2 else a % len(s.layers)) if s.buying else s.resume_buying())
        elif kind == "retry":
            drv.execute(s.retry_suspended())
        else:
            new = _edit(s, kind, a, b, spacing)
            if new is not None:
                drv.execute(s.on_config_change(new, drv.price, t))
        check_invariant(s, eng)
    assert not [e for _, e in drv.events if "DUPLICATE" in e.message]
    if sc["stop"] is not None:
        drv.stop(sell_all=sc["stop"] == "sell_all")
        assert eng.open_orders() == []
        check_invariant(s, eng)
        if sc["stop"] == "sell_all" and not sc["tick"]:
            assert eng.total("BTC") == 0


# ---------------------------------------------------------------------------------------------- real data

ETH_FILE = "binance_spot_ETHUSDT_1m_2020-05-21_2020-06-20.csv.gz"


def test_real_eth_path_with_trailing(shared_data_dir: Path) -> None:
    path = shared_data_dir / "ohlcv" / ETH_FILE
    if not path.is_file():
        pytest.skip(f"real data file not found: {path}")
    df = pd.read_csv(path, nrows=5000)
    candles = Candles.from_arrays(df["open_time"].to_numpy(np.int64), df["open"].to_numpy(float),
                                  df["high"].to_numpy(float), df["low"].to_numpy(float), df["close"].to_numpy(float),
                                  df["volume"].to_numpy(float))
    assert len(candles) == 5000
    lo, hi = float(df["low"].min()), float(df["high"].max())
    cfg = parse_config({
        "symbol": "ETH/USDT", "grid": {"type": "geometric", "lower": round(lo * 0.99, 2), "upper": round(hi * 1.01, 2),
                                       "levels": 30},
        "investment": 10000, "fees": {"maker": "0.001", "taker": "0.001"}, "slippage": "0.0002",
        "trailing": {"rebound_pct": "0.2", "pullback_pct": "0.15"},
    })
    rules = MarketRules("ETH/USDT", "ETH", "USDT", tick_size=D("0.01"), step_size=D("0.00001"), min_notional=D(10))
    strat = GridStrategy(cfg, market=rules, bot_id="bt")
    result = run_backtest(cfg, candles, market=rules, strategy=strat)
    fills = [r.fill for r in result.fills]
    tags = {r.tag for r in result.fills}
    assert {"initial", "rebound", "pullback"} <= tags  # trailing entries and exits happened
    assert result.summary["sell_fills"] > 20 and result.summary["buy_fills"] > 20
    assert all(not f.is_maker for f in fills)  # every trailing order is a market order
    # the balances are exactly the sum over the fills
    quote = D(10000) + sum(((f.notional - f.fee) if f.side is SELL else -(f.notional + f.fee) for f in fills), ZERO)
    base = sum((f.amount if f.side is BUY else -f.amount for f in fills), ZERO)
    assert D(result.summary["final_quote"]) == quote
    assert D(result.summary["final_base"]) == base
    assert base == strat.portfolio.base and quote == D(10000) + strat.portfolio.quote_flow
    assert base == sum((lay.held for lay in strat.layers), ZERO) + strat.reserve
    # the layer invariant at the end
    assert len(strat.layers) == 29 and strat.state is BotState.RUNNING
    assert strat.live_orders() == {} and result.summary["open_orders"] == 0  # trailing both sides: nothing rests
    assert {lay.state for lay in strat.layers} <= {LayerState.WAITING, LayerState.ARMED, LayerState.SUSPENDED}
    for lay in strat.layers:
        assert (lay.held > 0) == (lay.side is SELL) or lay.state is LayerState.SUSPENDED
    # every rebound buy happened above the level it was armed at, every pullback sell at/above the sell level
    levels = strat.prices
    for r in result.fills:
        assert r.level is not None or r.tag == "initial"
        if r.tag == "rebound":
            assert r.fill.price < levels[r.level + 1]  # bought below the layer's sell target
        if r.tag == "pullback":
            assert r.fill.price > levels[r.level] * D("0.999")


# ---------------------------------------------------------------------------------------------- risk actions


def _rule(action: str, when: dict[str, Any], scope: Any = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"name": "r", "when": when, "action": action}
    if scope is not None:
        rule["scope"] = scope
    return rule


def _tick(s: GridStrategy, drv: SimDriver, price: int, t: int) -> None:
    drv.move_to(D(price), t)
    drv.execute(s.on_tick(Tick(t, D(price))))


PRICE_BELOW_105 = {"metric": "price", "op": "<", "value": 105}
AFTER_BUY_AT_110 = [("b-0-1b", BUY, D(100), D(1)), ("b-1-2s", SELL, D(120), D(1)), ("b-2-1s", SELL, D(130), D(1)),
                    ("b-3-1s", SELL, D(140), D(1))]


def test_risk_alert_only_reports() -> None:
    s, eng, drv = simulate(risk=[_rule("alert", PRICE_BELOW_105)])
    _tick(s, drv, 104, 1)
    (risk,) = [e for _, e in drv.events if e.kind == "risk"]
    assert risk.message == "r: price 104 < 105 (when)"
    assert risk.data["action"] == "alert" and risk.data["layer"] is None
    assert resting(eng) == AFTER_BUY_AT_110 and s.state is BotState.RUNNING


def test_risk_global_actions() -> None:
    s, eng, drv = simulate(risk=[_rule("stop_buying", PRICE_BELOW_105)])
    _tick(s, drv, 104, 1)
    assert resting(eng) == AFTER_BUY_AT_110[1:] and not s.buying
    s, eng, drv = simulate(risk=[_rule("pause", PRICE_BELOW_105)])
    _tick(s, drv, 104, 1)
    assert resting(eng) == [] and s.state is BotState.PAUSED
    s, eng, drv = simulate(risk=[_rule("stop", PRICE_BELOW_105)])
    _tick(s, drv, 104, 1)
    assert resting(eng) == [] and s.state is BotState.STOPPED and eng.total("BTC") == 3
    s, eng, drv = simulate(risk=[_rule("stop_and_sell", PRICE_BELOW_105)])
    _tick(s, drv, 104, 1)
    assert resting(eng) == [] and s.state is BotState.STOPPED and eng.total("BTC") == 0
    assert [(r.fill.client_id, r.fill.amount, r.fill.price, r.tag) for r in drv.fills[-1:]] == [
        ("b-close1", D(3), D(104), "close:stop")]


def test_risk_layer_take_profit_sells_the_layer_and_it_buys_again_at_its_level() -> None:
    s, eng, drv = simulate(risk=[_rule("take_profit", {"metric": "unrealized_pnl", "op": ">", "value": 5},
                                       {"layers": [1]})])
    _tick(s, drv, 105, 1)  # layer 1 bought at 110
    _tick(s, drv, 117, 2)  # layer 1: 117 - 110 = 7 > 5
    assert [(r.fill.client_id, r.fill.side, r.fill.price, r.tag) for r in drv.fills[2:]] == [
        ("b-1-3s", SELL, D(117), "risk:r")]
    assert s.portfolio.round_trips[-1].profit == 7
    assert ("b-1-4b", BUY, D(110), D(1)) in resting(eng) and s.layers[1].side is BUY
    check_invariant(s, eng)


def test_risk_layer_actions() -> None:
    losing = {"metric": "unrealized_pnl", "op": "<", "value": -5}
    s, eng, drv = simulate(risk=[_rule("stop", losing, {"layers": [1]})])
    _tick(s, drv, 104, 1)
    assert resting(eng) == [AFTER_BUY_AT_110[0], *AFTER_BUY_AT_110[2:]]
    assert (s.layers[1].enabled, s.layers[1].suspend_reason, s.layers[1].held) == (False, "stopped by risk rule", 1)
    s, eng, drv = simulate(risk=[_rule("stop_and_sell", losing, {"layers": [1]})])
    _tick(s, drv, 104, 1)
    assert [(r.fill.client_id, r.fill.price, r.tag) for r in drv.fills[2:]] == [("b-1-3s", D(104), "risk:r")]
    assert (s.layers[1].side, s.layers[1].enabled, s.layers[1].held) == (BUY, False, 0)
    assert resting(eng) == [AFTER_BUY_AT_110[0], *AFTER_BUY_AT_110[2:]]
    s, eng, drv = simulate(risk=[_rule("pause", losing, {"layers": [1]})])
    _tick(s, drv, 104, 1)
    assert (s.layers[1].state, s.layers[1].suspend_reason) == (LayerState.SUSPENDED, "pause")
    assert s.state is BotState.RUNNING and len(resting(eng)) == 3
    s, eng, drv = simulate(risk=[_rule("stop_buying", losing, {"layers": [1]})])
    _tick(s, drv, 104, 1)
    assert resting(eng) == AFTER_BUY_AT_110  # selling: nothing to cancel now
    drv.move_to(D(125), 2)
    assert ("b-1-2s", D(120)) in [(r.fill.client_id, r.fill.price) for r in drv.fills]
    assert all(o.client_id != "b-1-3b" for o in eng.open_orders())  # ... but no buy after its sell
    assert s.layers[1].suspend_reason == "buying stopped"


def test_risk_sees_the_fill_price() -> None:
    """Regression: on a fill the rules read the price of the last tick (here the start price 121)."""
    _s, _eng, drv = simulate(risk=[_rule("alert", {"metric": "price", "op": "<", "value": 111})])
    drv.move_to(D(109), 1)  # no tick (no trailing): only the fill at 110 evaluates the rules
    assert [e.message for _, e in drv.events if e.kind == "risk"] == ["r: price 110 < 111 (when)"]


def test_take_profit_that_would_buy_back_at_once_is_skipped() -> None:
    """Regression: a take-profit at or below the layer's buy level sold and bought back in a loop (a rule true
    while the layer holds base never stopped firing)."""
    s, eng, drv = simulate(risk=[_rule("take_profit", {"metric": "position_amount", "op": ">", "value": 0},
                                       {"layers": [1]})])
    drv.move_to(D(105), 1)
    (warning,) = [e for _, e in drv.events if e.kind == "warning"]
    assert warning.message == "layer 1 take-profit skipped: price 110 is not above its buy level 110"
    assert [r.tag for r in drv.fills] == ["initial", "grid"] and s.layers[1].held == 1
    check_invariant(s, eng)


def test_stop_and_sell_of_a_layer_sells_below_its_buy_level() -> None:
    s, _eng, drv = simulate(risk=[_rule("stop_and_sell", {"metric": "price", "op": "<", "value": 105},
                                       {"layers": [2]})])
    _tick(s, drv, 104, 1)  # layer 2 (bought at P0 121, buy level 120) is sold although 104 < 120
    assert [(r.fill.client_id, r.fill.price, r.tag) for r in drv.fills[2:]] == [("b-2-2s", D(104), "risk:r")]
    assert (s.layers[2].side, s.layers[2].enabled) == (BUY, False)


def test_a_market_order_in_flight_is_never_canceled_or_sold_twice() -> None:
    """Regression: a pullback market sell and a take-profit of the same layer in one tick sold its base twice."""
    s, eng, drv = simulate(100, grid={"lower": 100, "upper": 102, "levels": 3}, trailing={"pullback_pct": "0.5"},
                           risk=[_rule("take_profit", {"metric": "position_amount", "op": ">", "value": 0},
                                       {"layers": "all"})])
    drv.move_to(D(101), 1)  # layer 0 arms at its target 101 (no take-profit: 100 and 101 are not above the levels)
    disabled = s.config.model_copy(update={"layers": [LayerOverride(level=0, enabled=False)]})
    drv.execute(s.on_config_change(disabled, D(101), 2))  # fresh rules: the next evaluation is a rising edge
    drv.move_to(D(100), 3)  # fires at 100.495; the take-profit on the same tick must not sell it again
    sells = [(r.fill.client_id, r.fill.price, r.tag) for r in drv.fills if r.fill.side is SELL]
    assert sells == [("b-0-1s", D("100.495"), "pullback")]
    assert not [e for _, e in drv.events if e.message.startswith("late fill")]
    check_invariant(s, eng)


def test_late_fill_of_a_canceled_sell_is_booked_on_its_layer() -> None:
    s = started(121)
    s.pause()  # cancels b-2-1s ... which the venue had filled already
    out = s.on_order_filled(fill("b-2-1s", SELL, 130, 1))
    assert not events(out, "warning") and s.reserve == 0
    assert (s.layers[2].side, s.layers[2].held) == (BUY, 0)
    assert [(t.level, t.profit) for t in s.portfolio.round_trips] == [(2, D(9))]
    assert ("b-2-2b", BUY, D(120), D(1)) in limits(s.resume())


def test_late_fill_of_a_canceled_buy_goes_to_the_reserve() -> None:
    s = started(121)
    s.pause()
    s.on_order_filled(fill("b-1-1b", BUY, 110, 1))
    assert s.reserve == 1 and s.layers[1].held == 0 and s.portfolio.base == 3
