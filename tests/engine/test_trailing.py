"""Rebound buys and pullback sells: arm at the level, track the extreme, fire after the rebound/pullback, disarm
past the opposite target; gaps through several levels; r = 0 means resting limits. Exact fill prices through the
SimDriver, which wakes the strategy exactly at its wake prices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from gridfleet.engine.config import parse_config
from gridfleet.engine.strategies.grid import GridStrategy, LayerState
from gridfleet.engine.types import Fill, Intent, OrderType, PlaceOrder, Side, Tick
from gridfleet.markets import MarketRules
from gridfleet.sim.driver import SimDriver
from gridfleet.sim.matching import MatchingEngine

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
WAITING, ARMED, RESTING = LayerState.WAITING, LayerState.ARMED, LayerState.RESTING


def make(p0: Any = 121, *, market: MarketRules | None = None, rebound: Any = 1, pullback: Any = 1,
         order_type: str = "market", slippage: Any = 0, **kw: Any) -> tuple[GridStrategy, MatchingEngine, SimDriver,
                                                                             list[Decimal]]:
    """Grid 100..140 (5 levels), qty 1, no fees; returns the strategy, engine, driver and the list of tick prices."""
    c = parse_config({"symbol": "BTC/USDT", "grid": {"lower": 100, "upper": 140, "levels": 5}, "qty_per_order": 1,
                      "fees": {"maker": 0, "taker": 0}, "slippage": slippage,
                      "trailing": {"rebound_pct": rebound, "pullback_pct": pullback, "order_type": order_type}, **kw})
    rules = market or MarketRules.unrestricted(c.symbol)
    s = GridStrategy(c, market=market, bot_id="b")
    eng = MatchingEngine(rules, maker_fee=D(0), taker_fee=D(0), balances={"USDT": D(10000)}, slippage=c.slippage)
    ticks: list[Decimal] = []
    on_tick = s.on_tick

    def spy(tick: Tick) -> list[Intent]:
        ticks.append(tick.price)
        return on_tick(tick)

    s.on_tick = spy  # type: ignore[method-assign]
    drv = SimDriver(s, eng)
    drv.start(D(p0), 0)
    return s, eng, drv, ticks


def trades(drv: SimDriver, start: int = 1) -> list[tuple[str, Side, Decimal, str, int | None]]:
    return [(r.fill.client_id, r.fill.side, r.fill.price, r.tag, r.level) for r in drv.fills[start:]]


def states(s: GridStrategy) -> list[tuple[Side, LayerState]]:
    return [(lay.side, lay.state) for lay in s.layers]


def test_trailing_layers_wait_instead_of_resting() -> None:
    s, eng, _drv, _ = make()
    assert eng.open_orders() == []
    assert states(s) == [(BUY, WAITING), (BUY, WAITING), (SELL, WAITING), (SELL, WAITING)]
    assert s.wake_prices() == (D(110), D(130))  # the nearest buy level below, the nearest sell target above


def test_rebound_buy_and_pullback_sell_fire_at_exact_prices() -> None:
    s, _eng, drv, ticks = make()
    drv.move_to(D(105), 1)
    assert ticks == [D(110), D(105)]  # woken at the level (arms), then at the end of the segment (tracks the low)
    assert (s.layers[1].state, s.layers[1].extreme) == (ARMED, D(105))
    assert s.layers[0].state is WAITING  # 100 not reached
    assert s.wake_prices() == (D(105), D("106.05"))  # a new low, or low x 1.01
    drv.move_to(D(108), 2)
    assert trades(drv) == [("b-1-1b", BUY, D("106.05"), "rebound", 1)]
    assert drv.fills[-1].fill.is_maker is False  # a market order
    assert drv.orders["b-1-1b"].type is OrderType.MARKET
    assert states(s)[1] == (SELL, WAITING) and s.layers[1].entry_price == D("106.05")
    # the pullback sell: arms at the sell target 120, tracks the high, fires 1 % below it
    drv.move_to(D(125), 3)
    assert (s.layers[1].state, s.layers[1].extreme) == (ARMED, D(125))
    assert s.wake_prices() == (D("123.75"), D(125))
    drv.move_to(D(123), 4)
    assert trades(drv)[1:] == [("b-1-2s", SELL, D("123.75"), "pullback", 1)]
    (trip,) = s.portfolio.round_trips
    assert trip.profit == D("17.70") and (trip.buy_price, trip.sell_price) == (D("106.05"), D("123.75"))
    assert states(s)[1] == (BUY, WAITING)


def test_new_lows_move_the_trigger_down() -> None:
    s, _eng, drv, _ticks = make(rebound=2)
    for t, p in enumerate(["109", "108", "108.5", "104", "106", "103"], 1):
        drv.move_to(D(p), t)
    assert trades(drv) == []
    assert s.layers[1].extreme == D(103)
    drv.move_to(D(110), 9)
    assert trades(drv) == [("b-1-1b", BUY, D("105.06"), "rebound", 1)]  # 103 x 1.02


def test_trigger_reached_exactly_fires() -> None:
    _s, _eng, drv, _ = make()
    drv.move_to(D(100), 1)
    drv.move_to(D(101), 2)  # both layers armed at 100: 100 x 1.01 = 101 exactly
    assert {t[0] for t in trades(drv)} == {"b-0-1b", "b-1-1b"}
    assert {t[2] for t in trades(drv)} == {D(101)}


def test_slippage_moves_the_market_fill() -> None:
    _s, _eng, drv, _ = make(slippage="0.001")
    drv.move_to(D(105), 1)
    drv.move_to(D(108), 2)
    assert trades(drv) == [("b-1-1b", BUY, D("106.05") * D("1.001"), "rebound", 1)]


def test_limit_order_type_places_a_marketable_limit() -> None:
    """Regression: the limit was rounded to the nearest tick, so a buy could land below the market and rest."""
    rules = MarketRules("BTC/USDT", "BTC", "USDT", tick_size=D("0.01"), step_size=D("0.001"))
    _s, eng, drv, _ = make(market=rules, order_type="limit")
    drv.move_to(D("104.37"), 1)
    drv.move_to(D(108), 2)
    order = drv.orders["b-1-1b"]
    assert (order.type, order.price, order.tag) == (OrderType.LIMIT, D("105.42"), "rebound")  # 105.4137 rounded up
    fill = drv.fills[-1].fill
    assert (fill.price, fill.is_maker) == (D("105.4137"), False)  # filled at once at the market as taker
    assert eng.open_orders() == []
    # the pullback sell limit is rounded down
    drv.move_to(D("125.55"), 3)
    drv.move_to(D(120), 4)
    order = drv.orders["b-1-2s"]
    assert (order.type, order.price) == (OrderType.LIMIT, D("124.29"))  # 125.55 x 0.99 = 124.2945 rounded down
    assert drv.fills[-1].fill.price == D("124.2945")


def test_rebound_disarms_when_the_price_runs_past_the_sell_target() -> None:
    s, _eng, drv, ticks = make(rebound=20)
    drv.move_to(D(105), 1)
    assert s.layers[1].state is ARMED
    assert s.wake_prices()[1] == D(120)  # 105 x 1.2 = 126 is beyond the sell target: wake there to disarm
    drv.move_to(D(130), 2)
    assert trades(drv) == [] and s.layers[1].state is WAITING and s.layers[1].side is BUY
    assert D(120) in ticks
    drv.move_to(D(109), 3)  # back at the level: armed again, with a fresh low
    assert (s.layers[1].state, s.layers[1].extreme) == (ARMED, D(109))


def test_pullback_disarms_when_the_price_falls_back_to_the_buy_level() -> None:
    s, _eng, drv, _ = make(pullback=20)
    drv.move_to(D(135), 1)
    assert (s.layers[2].state, s.layers[2].extreme) == (ARMED, D(135))
    assert s.wake_prices()[0] == D(120)  # 135 x 0.8 = 108 is below the buy level: wake there to disarm
    drv.move_to(D(119), 2)
    assert [t for t in trades(drv) if t[1] is SELL] == []
    assert states(s)[2] == (SELL, WAITING) and s.layers[2].held == 1  # keeps holding, waits for 130 again


def test_gap_down_and_up_each_layer_decides_alone() -> None:
    """A tick far below two levels arms both at the same low; a tick above the trigger buys only where the sell
    target is still above that price, the other layer disarms."""
    s, _eng, _drv, _ = make(rebound=20)
    assert s.on_tick(Tick(1, D(95))) == []
    assert [(lay.state, lay.extreme) for lay in s.layers[:2]] == [(ARMED, D(95)), (ARMED, D(95))]
    out = [i for i in s.on_tick(Tick(2, D(115))) if isinstance(i, PlaceOrder)]  # trigger 95 x 1.2 = 114
    assert [(p.client_id, p.side, p.type, p.tag, p.level) for p in out] == [
        ("b-1-1b", BUY, OrderType.MARKET, "rebound", 1)]  # sell target 120 > 115: buys
    assert s.layers[0].state is WAITING and s.layers[0].side is BUY  # sell target 110 <= 115: disarmed


def test_gap_above_every_sell_target_disarms_all() -> None:
    s, _eng, _drv, _ = make(rebound=20)
    s.on_tick(Tick(1, D(95)))
    assert s.on_tick(Tick(2, D(125))) == []
    assert [lay.state for lay in s.layers[:2]] == [WAITING, WAITING]


def test_gap_through_sell_levels() -> None:
    s, _eng, _drv, _ = make(p0=99, pullback=10)  # level 0 empty: four sell layers
    assert [lay.side for lay in s.layers] == [SELL] * 4
    s.on_tick(Tick(1, D(145)))
    assert [(lay.state, lay.extreme) for lay in s.layers] == [(ARMED, D(145))] * 4
    out = [i for i in s.on_tick(Tick(2, D(125))) if isinstance(i, PlaceOrder)]  # trigger 145 x 0.9 = 130.5
    assert [(p.client_id, p.side, p.tag) for p in out] == [("b-0-1s", SELL, "pullback"), ("b-1-1s", SELL, "pullback"),
                                                             ("b-2-1s", SELL, "pullback")]
    assert states(s)[3] == (SELL, WAITING)  # its buy level 130 >= 125: disarmed, keeps holding


def test_gap_through_the_driver_fills_at_the_wake_prices() -> None:
    s, _eng, drv, ticks = make(rebound=20, pullback=0)
    drv.move_to(D(95), 1)
    assert ticks == [D(110), D(95)]  # 100 is not a separate wake: the armed layer already wakes on any new low
    assert [(lay.state, lay.extreme) for lay in s.layers[:2]] == [(ARMED, D(95)), (ARMED, D(95))]
    drv.move_to(D(125), 2)
    assert ticks[2:4] == [D(110), D(114)]  # layer 0 disarms at its sell target 110, layer 1 fires at 114
    assert trades(drv)[0] == ("b-1-1b", BUY, D(114), "rebound", 1)
    # layer 1 then rests a plain sell at 120 (pullback 0), which the same segment fills
    assert trades(drv)[1] == ("b-1-2s", SELL, D(120), "grid", 1)
    assert s.layers[0].state is WAITING and s.layers[0].side is BUY
    assert s.portfolio.round_trips[0].profit == 6


def test_zero_rebound_and_pullback_are_plain_resting_limits() -> None:
    s, eng, drv, ticks = make(rebound=0, pullback=0)
    assert sorted((o.side, o.price) for o in eng.open_orders()) == [(BUY, D(100)), (BUY, D(110)), (SELL, D(130)),
                                                                       (SELL, D(140))]
    assert s.wake_prices() == (None, None)
    drv.move_to(D(105), 1)
    assert ticks == [] and trades(drv) == [("b-1-1b", BUY, D(110), "grid", 1)]
    assert drv.fills[-1].fill.is_maker


def test_per_layer_trailing_override() -> None:
    s, eng, _drv, _ = make(rebound=1, pullback=0, layers=[{"level": 0, "rebound_pct": 0}])
    assert sorted((o.client_id, o.price) for o in eng.open_orders() if o.side is BUY) == [("b-0-1b", D(100))]
    assert s.layers[1].state is WAITING
    assert s.wake_prices() == (D(110), None)  # sells rest (pullback 0), layer 1 waits for 110


def test_rebound_only_buys_then_rests_a_plain_sell() -> None:
    _s, eng, drv, _ = make(rebound=1, pullback=0)
    drv.move_to(D(105), 1)
    drv.move_to(D(108), 2)
    assert [(o.client_id, o.side, o.price) for o in eng.open_orders() if o.client_id.startswith("b-1")] == [
        ("b-1-2s", SELL, D(120))]


def test_armed_layer_is_tracked_at_the_end_of_every_segment() -> None:
    s, _eng, drv, ticks = make(rebound=5)
    drv.move_to(D(108), 1)
    drv.move_to(D(109), 2)
    drv.move_to(D(107), 3)
    assert ticks == [D(110), D(108), D(109), D(108), D(107)]
    assert s.layers[1].extreme == D(107)


def test_take_profit_with_pullback_arms_at_the_take_profit_price() -> None:
    s, _eng, drv, _ = make(rebound=0, pullback=1, layers=[{"level": 1, "take_profit_pct": 5}])
    drv.move_to(D(109), 1)  # plain buy at 110; take-profit target 115.5
    assert s.layers[1].side is SELL and s.layers[1].state is WAITING
    assert s.wake_prices()[1] == D("115.5")
    drv.move_to(D(117), 2)
    drv.move_to(D(115), 3)
    assert trades(drv)[-1] == ("b-1-2s", SELL, D("115.83"), "pullback", 1)  # 117 x 0.99


def test_paused_bot_has_no_wake_prices_and_resume_re_arms() -> None:
    s, _eng, drv, _ = make()
    drv.move_to(D(105), 1)
    drv.execute(s.pause())
    assert s.wake_prices() == (None, None)
    drv.move_to(D(95), 2)
    drv.execute(s.resume())
    assert s.layers[1].state is WAITING  # the trail starts again
    drv.move_to(D(94), 3)
    assert [(lay.state, lay.extreme) for lay in s.layers[:2]] == [(ARMED, D(94)), (ARMED, D(94))]


@pytest.mark.parametrize("order_type", ["market", "limit"])
def test_balances_after_a_trailing_round_trip(order_type: str) -> None:
    _s, eng, drv, _ = make(order_type=order_type)
    for t, p in enumerate([105, 108, 125, 123], 1):
        drv.move_to(D(p), t)
    fills: list[Fill] = [r.fill for r in drv.fills]
    assert eng.total("USDT") == 10000 - 2 * 121 - D("106.05") + D("123.75")
    assert eng.total("BTC") == sum((f.amount if f.side is BUY else -f.amount for f in fills), D(0)) == 2
