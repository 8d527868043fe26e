"""SimDriver: walks a strategy and the matching engine along straight price segments, filling resting orders in
price order and waking the strategy exactly at its wake prices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from gridfleet.engine.config import parse_config
from gridfleet.engine.strategies.grid import GridStrategy
from gridfleet.engine.strategy import Strategy
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
from gridfleet.sim.driver import FillRecord, SimDriver
from gridfleet.sim.matching import MatchingEngine

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
RULES = MarketRules.unrestricted("BTC/USDT")


class _Cfg(BaseModel):
    pass


class Probe(Strategy):
    """A scripted strategy that records every hook call."""

    name: ClassVar[str] = "probe"
    config_model: ClassVar[type[BaseModel]] = _Cfg

    def __init__(self, start: list[Intent] | None = None, wake: tuple[Any, Any] = (None, None)) -> None:
        super().__init__(_Cfg())
        self.start = start or []
        self.wake = (None if wake[0] is None else D(wake[0]), None if wake[1] is None else D(wake[1]))
        self.calls: list[tuple[str, Any]] = []
        self.on_fill_do: dict[str, list[Intent]] = {}
        self.on_tick_do: dict[Decimal, tuple[list[Intent], tuple[Any, Any]]] = {}
        self.stopped_with: bool | None = None

    def on_start(self, price: Decimal, timestamp: int) -> list[Intent]:
        self.calls.append(("start", price))
        return self.start

    def on_tick(self, tick: Tick) -> list[Intent]:
        self.calls.append(("tick", tick.price))
        intents, wake = self.on_tick_do.pop(tick.price, ([], self.wake))
        self.wake = wake
        return intents

    def on_order_filled(self, fill: Fill) -> list[Intent]:
        self.calls.append(("fill", (fill.client_id, fill.price)))
        return self.on_fill_do.pop(fill.client_id, [])

    def on_order_update(self, update: OrderUpdate) -> list[Intent]:
        self.calls.append(("update", (update.client_id, update.status)))
        return []

    def on_stop(self, price: Decimal, timestamp: int, *, sell_all: bool = False) -> list[Intent]:
        self.stopped_with = sell_all
        return [BotEvent("state", "stopped")]

    def wake_prices(self) -> tuple[Decimal | None, Decimal | None]:
        return self.wake


def limit(cid: str, side: Side, price: Any, amount: Any = 1, level: int | None = None, tag: str = "") -> PlaceOrder:
    return PlaceOrder(cid, side, OrderType.LIMIT, D(amount), D(price), level, tag)


def market(cid: str, side: Side, amount: Any = 1) -> PlaceOrder:
    return PlaceOrder(cid, side, OrderType.MARKET, D(amount))


def drive(probe: Probe, p0: Any = 100, **kw: Any) -> tuple[SimDriver, MatchingEngine]:
    eng = MatchingEngine(RULES, maker_fee=D(0), taker_fee=D(0), balances={"USDT": D(100000), "BTC": D(100)}, **kw)
    drv = SimDriver(probe, eng)
    drv.start(D(p0), 0)
    return drv, eng


def fills_of(drv: SimDriver) -> list[tuple[str, Decimal]]:
    return [(r.fill.client_id, r.fill.price) for r in drv.fills]


def test_resting_orders_fill_in_price_order() -> None:
    probe = Probe([limit("b1", BUY, 95), limit("b2", BUY, 90), limit("b3", BUY, 97), limit("s1", SELL, 105),
                   limit("s2", SELL, 103)])
    drv, eng = drive(probe)
    drv.move_to(D(90), 1)  # down: highest buy first, the one at the target too
    assert fills_of(drv) == [("b3", D(97)), ("b1", D(95)), ("b2", D(90))]
    drv.move_to(D(104), 2)  # up: lowest sell first, 105 not reached
    assert fills_of(drv)[3:] == [("s2", D(103))]
    assert [o.client_id for o in eng.open_orders()] == ["s1"]
    assert drv.price == D(104) and drv.timestamp == 2
    assert [c for c in probe.calls if c[0] == "tick"] == []  # no wake prices: never ticked


def test_the_hook_runs_at_the_fill_price_and_its_orders_execute_there() -> None:
    probe = Probe([limit("b1", BUY, 95)])
    probe.on_fill_do["b1"] = [market("m1", SELL)]
    drv, _eng = drive(probe)
    drv.move_to(D(80), 1)
    assert fills_of(drv) == [("b1", D(95)), ("m1", D(95))]  # the market sell fills at 95, not at 80


def test_counter_order_placed_on_the_way_fills_later_on_the_same_segment() -> None:
    probe = Probe([limit("b1", BUY, 95)])
    probe.on_fill_do["b1"] = [limit("b2", BUY, 92)]
    drv, _eng = drive(probe)
    drv.move_to(D(90), 1)
    assert fills_of(drv) == [("b1", D(95)), ("b2", D(92))]


def test_counter_order_above_the_path_waits_for_the_next_segment() -> None:
    probe = Probe([limit("b1", BUY, 95)])
    probe.on_fill_do["b1"] = [limit("s1", SELL, 98)]
    drv, _eng = drive(probe)
    drv.move_to(D(90), 1)
    assert fills_of(drv) == [("b1", D(95))]
    drv.move_to(D(99), 2)
    assert fills_of(drv) == [("b1", D(95)), ("s1", D(98))]


def test_wakes_exactly_at_wake_prices_and_at_the_segment_end() -> None:
    probe = Probe(wake=("96.5", "104.25"))
    drv, _eng = drive(probe)
    drv.move_to(D(90), 1)
    assert probe.calls[1:] == [("tick", D("96.5")), ("tick", D(90))]
    probe.calls.clear()
    drv.move_to(D(95), 2)  # 104.25 not reached: only the end-of-segment tick
    assert probe.calls == [("tick", D(95))]
    probe.calls.clear()
    drv.move_to(D(110), 3)
    assert probe.calls == [("tick", D("104.25")), ("tick", D(110))]


def test_wake_prices_set_by_a_tick_are_used_on_the_same_segment() -> None:
    probe = Probe(wake=(98, None))
    probe.on_tick_do[D(98)] = ([], (95, None))
    probe.on_tick_do[D(95)] = ([], (None, None))
    drv, _eng = drive(probe)
    drv.move_to(D(90), 1)
    assert probe.calls[1:] == [("tick", D(98)), ("tick", D(95))]  # no end tick: no wake price left


def test_a_fill_at_the_wake_price_comes_before_the_wake() -> None:
    probe = Probe([limit("b1", BUY, 95)], wake=(95, None))
    drv, _eng = drive(probe)
    drv.move_to(D(94), 1)
    assert probe.calls[1:3] == [("fill", ("b1", D(95))), ("tick", D(95))]


def test_orders_placed_at_a_wake_execute_at_the_wake_price() -> None:
    probe = Probe(wake=(None, 103))
    probe.on_tick_do[D(103)] = ([market("m", BUY, 2)], (None, None))
    drv, _eng = drive(probe, slippage=D(0))
    drv.move_to(D(110), 1)
    assert fills_of(drv) == [("m", D(103))]


def test_rejections_and_cancels_are_reported_back() -> None:
    probe = Probe([limit("b1", BUY, 95), limit("b1", BUY, 96), CancelOrder("b1"), CancelOrder("nope")])
    _drv, eng = drive(probe)
    assert ("update", ("b1", OrderStatus.REJECTED)) in probe.calls  # duplicate id
    assert ("update", ("b1", OrderStatus.CANCELED)) in probe.calls
    assert [c for c in probe.calls if c[0] == "update"] == [("update", ("b1", OrderStatus.REJECTED)),
                                                             ("update", ("b1", OrderStatus.CANCELED))]
    assert eng.open_orders() == []


def test_events_fill_records_and_callbacks() -> None:
    seen_fills: list[FillRecord] = []
    seen_events: list[tuple[int, BotEvent]] = []
    probe = Probe([BotEvent("state", "hello"), limit("b1", BUY, 95, level=3, tag="grid"), market("m", BUY)])
    eng = MatchingEngine(RULES, maker_fee=D(0), taker_fee=D(0), balances={"USDT": D(1000)})
    drv = SimDriver(probe, eng, on_fill=seen_fills.append, on_event=lambda t, e: seen_events.append((t, e)))
    drv.start(D(100), 7)
    drv.move_to(D(90), 8)
    assert drv.events == [(7, BotEvent("state", "hello"))] == seen_events
    assert [(r.fill.client_id, r.level, r.tag) for r in drv.fills] == [("m", None, ""), ("b1", 3, "grid")]
    assert seen_fills == drv.fills and drv.fills[1].fill.timestamp == 8
    assert drv.orders["b1"].level == 3


def test_stop_passes_sell_all() -> None:
    probe = Probe()
    drv, _eng = drive(probe)
    drv.stop(sell_all=True)
    assert probe.stopped_with is True and drv.events[-1][1].message == "stopped"


def test_exhausted_participation_budget_stops_resting_fills() -> None:
    probe = Probe([limit("b1", BUY, 95, amount=2), limit("b2", BUY, 94)])
    drv, eng = drive(probe, participation=D(1))
    eng.begin_volume(D("2.5"))
    drv.move_to(D(90), 1)
    assert [(r.fill.client_id, r.fill.amount) for r in drv.fills] == [("b1", D(2)), ("b2", D("0.5"))]
    drv.move_to(D(95), 2)
    eng.begin_volume(D(10))
    drv.move_to(D(93), 3)
    assert [(r.fill.client_id, r.fill.amount) for r in drv.fills][2:] == [("b2", D("0.5"))]


def test_no_move_no_fill() -> None:
    probe = Probe([limit("b1", BUY, 100), limit("s1", SELL, 101)])
    drv, _eng = drive(probe, p0="100.5")
    drv.move_to(D("100.5"), 1)
    assert drv.fills == []


# ---------------------------------------------------------------------------------------------- grid parity


def _grid(trailing: dict[str, Any]) -> tuple[GridStrategy, MatchingEngine, SimDriver]:
    c = parse_config({"symbol": "BTC/USDT", "grid": {"lower": 100, "upper": 140, "levels": 9}, "qty_per_order": 1,
                      "slippage": "0.0005", "fees": {"maker": "0.001", "taker": "0.002"}, "trailing": trailing})
    s = GridStrategy(c, bot_id="b")
    eng = MatchingEngine(RULES, maker_fee=c.fees.maker, taker_fee=c.fees.taker, balances={"USDT": D(100000)},
                         slippage=c.slippage)
    drv = SimDriver(s, eng)
    drv.start(D(121), 0)
    return s, eng, drv


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(88, 152), min_size=1, max_size=25), st.integers(2, 5),
       st.sampled_from([{}, {"rebound_pct": 1}, {"pullback_pct": "0.7"}, {"rebound_pct": 3, "pullback_pct": 2}]))
def test_splitting_segments_does_not_change_the_fills(path: list[int], parts: int, trailing: dict[str, Any]) -> None:
    """A straight move and the same move in several pieces give the same fills (the parity that lets candles and
    trades, backtests and paper trading, see the same thing)."""
    _s1, e1, d1 = _grid(trailing)
    _s2, e2, d2 = _grid(trailing)
    for t, p in enumerate(path, 1):
        target = D(p)
        d1.move_to(target, t)
        start = d2.price
        for k in range(1, parts + 1):
            d2.move_to(start + (target - start) * k / parts, t)
    key = [(r.fill.client_id, r.fill.side, r.fill.price, r.fill.amount, r.tag) for r in d1.fills]
    assert key == [(r.fill.client_id, r.fill.side, r.fill.price, r.fill.amount, r.tag) for r in d2.fills]
    assert (e1.total("USDT"), e1.total("BTC")) == (e2.total("USDT"), e2.total("BTC"))


def test_wake_at_the_price_of_a_fill_is_not_lost() -> None:
    """Regression: after a fill at a price equal to a wake price the wake was skipped. Here a pullback sell whose
    trigger (120) is the price of another layer's resting buy never fired, and then disarmed at 100."""
    c = parse_config({"symbol": "BTC/USDT", "grid": {"lower": 100, "upper": 140, "levels": 5}, "qty_per_order": 1,
                      "slippage": 0, "fees": {"maker": 0, "taker": 0}, "layers": [{"level": 1, "pullback_pct": 20}]})
    s = GridStrategy(c, bot_id="b")
    eng = MatchingEngine(RULES, maker_fee=D(0), taker_fee=D(0), balances={"USDT": D(100000)})
    drv = SimDriver(s, eng)
    drv.start(D(115), 0)  # tie between 110 and 120: level 1 stays empty; layer 1 waits to sell at 120
    drv.move_to(D(150), 1)  # layer 1 arms at 120 and tracks the high 150; its trigger is 150 x 0.8 = 120
    assert s.wake_prices()[0] == D(120)
    drv.move_to(D(100), 2)
    assert [(r.fill.client_id, r.fill.price, r.tag) for r in drv.fills[3:]] == [
        ("b-3-2b", D(130), "grid"), ("b-2-2b", D(120), "grid"), ("b-1-1s", D(120), "pullback"),
        ("b-1-2b", D(110), "grid"), ("b-0-1b", D(100), "grid")]


def test_a_hooks_intents_run_before_the_rest_of_the_batch() -> None:
    probe = Probe([market("m1", BUY), BotEvent("state", "after m1")])
    probe.on_fill_do["m1"] = [BotEvent("state", "m1 filled")]
    drv, _eng = drive(probe)
    assert [e.message for _, e in drv.events] == ["m1 filled", "after m1"]


def test_a_cancel_of_an_order_still_in_the_batch_drops_it() -> None:
    """Regression: an order the strategy canceled while it was still queued was sent anyway and filled."""
    probe = Probe([limit("s1", SELL, 99), limit("s2", SELL, 98)])  # both marketable at 100
    probe.on_fill_do["s1"] = [CancelOrder("s2"), market("s3", SELL)]
    drv, eng = drive(probe)
    assert fills_of(drv) == [("s1", D(100)), ("s3", D(100))]
    assert "s2" not in eng.orders and "s2" not in drv.orders
    assert ("update", ("s2", OrderStatus.CANCELED)) in probe.calls
