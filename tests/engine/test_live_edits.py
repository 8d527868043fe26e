"""Live config edits: plans that cancel and place only what changed, range changes with a rebalance order,
added and removed levels, and a preview that does not touch the running bot."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from gridfleet.engine.config import GridConfig, GridSpec, GridType, LayerOverride, parse_config
from gridfleet.engine.strategies.grid import AWAITING_BASE, GridStrategy, LayerState
from gridfleet.engine.types import BotEvent, CancelOrder, Intent, OrderType, PlaceOrder, Side
from gridfleet.markets import MarketRules
from gridfleet.sim.driver import SimDriver
from gridfleet.sim.matching import MatchingEngine

D = Decimal
BUY, SELL = Side.BUY, Side.SELL


def simulate(p0: Any = 121, **kw: Any) -> tuple[GridStrategy, MatchingEngine, SimDriver]:
    data: dict[str, Any] = {"symbol": "BTC/USDT", "grid": {"lower": 100, "upper": 140, "levels": 5},
                            "qty_per_order": 1, "slippage": 0, "fees": {"maker": 0, "taker": 0}}
    data.update(kw)
    c = parse_config(data)
    s = GridStrategy(c, bot_id="b")
    eng = MatchingEngine(MarketRules.unrestricted(c.symbol), maker_fee=c.fees.maker, taker_fee=c.fees.taker,
                         balances={"USDT": D(100000)}, slippage=c.slippage)
    drv = SimDriver(s, eng)
    drv.start(D(p0), 0)
    return s, eng, drv


def with_layers(c: GridConfig, *layers: LayerOverride) -> GridConfig:
    return c.model_copy(update={"layers": list(layers)})


def with_grid(c: GridConfig, **grid: Any) -> GridConfig:
    return c.model_copy(update={"grid": GridSpec.model_validate(grid), "layers": []})


def resting(eng: MatchingEngine) -> list[tuple[str, Side, Decimal | None, Decimal]]:
    return sorted((o.client_id, o.side, o.price, o.remaining) for o in eng.open_orders())


def split(intents: list[Intent]) -> tuple[list[BotEvent], list[str], list[PlaceOrder]]:
    return ([i for i in intents if isinstance(i, BotEvent)],
            [i.client_id for i in intents if isinstance(i, CancelOrder)],
            [i for i in intents if isinstance(i, PlaceOrder)])


def snapshot(s: GridStrategy) -> Any:
    return (copy.deepcopy(s.layers), dict(s._orders), s.reserve, s.prices, s.config, dict(s._cycles), s.status())


INITIAL = [("b-0-1b", BUY, D(100), D(1)), ("b-1-1b", BUY, D(110), D(1)), ("b-2-1s", SELL, D(130), D(1)),
           ("b-3-1s", SELL, D(140), D(1))]


# ---------------------------------------------------------------------------------------------- same layout


def test_qty_change_on_one_layer_replaces_only_its_order() -> None:
    s, eng, drv = simulate()
    new = with_layers(s.config, LayerOverride(level=1, qty=D(2)))
    plan, _layers, _reserve = s.plan_config_change(new, D(121))
    assert [c.client_id for c in plan.cancels] == ["b-1-1b"]
    assert plan.kept == ("b-0-1b", "b-2-1s", "b-3-1s") and plan.places == ()
    assert plan.summary == "config change: 1 cancel, 3 kept"
    out = s.on_config_change(new, D(121), 5)
    events, cancels, places = split(out)
    assert events[0].kind == "plan" and events[0].data == {"cancel": ["b-1-1b"], "keep": ["b-0-1b", "b-2-1s", "b-3-1s"]}
    assert cancels == ["b-1-1b"]
    assert [(p.client_id, p.side, p.price, p.amount) for p in places] == [("b-1-2b", BUY, D(110), D(2))]
    assert out.index(next(i for i in out if isinstance(i, CancelOrder))) < out.index(places[0])  # cancel first
    drv.execute(out)
    assert resting(eng) == [INITIAL[0], ("b-1-2b", BUY, D(110), D(2)), *INITIAL[2:]]
    assert s.config == new and s.layers[1].qty == 2


def test_qty_change_on_a_selling_layer_keeps_its_sell() -> None:
    s, eng, drv = simulate()
    out = s.on_config_change(with_layers(s.config, LayerOverride(level=2, qty=D(3))), D(121), 5)
    _, cancels, places = split(out)
    assert cancels == [] and places == []  # it sells what it holds; the new qty applies to its next buy
    drv.execute(out)
    drv.move_to(D(135), 6)
    assert ("b-2-2b", BUY, D(120), D(3)) in resting(eng)


def test_disable_and_enable_a_layer() -> None:
    s, eng, drv = simulate()
    drv.execute(s.on_config_change(with_layers(s.config, LayerOverride(level=0, enabled=False)), D(121), 1))
    assert resting(eng) == INITIAL[1:]
    assert (s.layers[0].state, s.layers[0].suspend_reason) == (LayerState.SUSPENDED, "disabled")
    drv.execute(s.on_config_change(with_layers(s.config), D(121), 2))
    assert resting(eng) == [("b-0-2b", BUY, D(100), D(1)), *INITIAL[1:]]


def test_take_profit_change_moves_the_sell() -> None:
    s, _eng, _drv = simulate()
    out = s.on_config_change(with_layers(s.config, LayerOverride(level=3, take_profit_pct=D(10))), D(121), 1)
    _, cancels, places = split(out)
    assert cancels == ["b-3-1s"]
    assert [(p.client_id, p.price, p.amount) for p in places] == [("b-3-2s", D("133.1"), D(1))]  # 121 x 1.1


def test_trailing_change_turns_a_resting_buy_into_a_waiting_one() -> None:
    s, _eng, _drv = simulate()
    out = s.on_config_change(with_layers(s.config, LayerOverride(level=0, rebound_pct=D(1))), D(121), 1)
    _, cancels, places = split(out)
    assert cancels == ["b-0-1b"] and places == []
    assert s.layers[0].state is LayerState.WAITING and s.wake_prices() == (D(100), None)


def test_armed_layer_stays_armed_when_its_trailing_is_unchanged() -> None:
    s, _eng, drv = simulate(trailing={"rebound_pct": 2})
    drv.move_to(D(105), 1)
    assert (s.layers[1].state, s.layers[1].extreme) == (LayerState.ARMED, D(105))
    drv.execute(s.on_config_change(with_layers(s.config, LayerOverride(level=3, qty=D(2))), D(105), 2))
    assert (s.layers[1].state, s.layers[1].extreme) == (LayerState.ARMED, D(105))
    drv.execute(s.on_config_change(with_layers(s.config, LayerOverride(level=1, rebound_pct=D(3))), D(105), 3))
    assert s.layers[1].state is LayerState.WAITING  # new trailing: the trail starts again


def test_holdings_survive_a_same_layout_change() -> None:
    s, _eng, drv = simulate()
    drv.move_to(D(105), 1)
    held = [lay.held for lay in s.layers]
    drv.execute(s.on_config_change(with_layers(s.config, LayerOverride(level=0, qty=D(2))), D(105), 2))
    assert [lay.held for lay in s.layers] == held == [0, 1, 1, 1]
    assert s.layers[1].entry_price == D(110)
    drv.move_to(D(125), 3)
    assert s.portfolio.round_trips[0].profit == 10


def test_symbol_cannot_change() -> None:
    s, _eng, _drv = simulate()
    with pytest.raises(ValueError, match=r"^symbol: "):
        s.plan_config_change(s.config.model_copy(update={"symbol": "ETH/USDT"}), D(121))
    with pytest.raises(TypeError):
        s.on_config_change({"symbol": "BTC/USDT"}, D(121), 1)  # type: ignore[arg-type]


def test_risk_rules_are_replaced() -> None:
    s, eng, drv = simulate()
    rule = {"name": "floor", "when": {"metric": "price", "op": "<", "value": 95}, "action": "stop_buying"}
    new = parse_config({**s.config.model_dump(mode="json"), "risk": [rule]})
    drv.execute(s.on_config_change(new, D(121), 1))
    assert [r.name for r in s.risk.rules] == ["floor"] and s.wants_candles
    assert resting(eng) == INITIAL  # nothing else changed


# ---------------------------------------------------------------------------------------------- layout changes


def test_range_widened_keeps_orders_and_buys_the_missing_base() -> None:
    s, eng, drv = simulate()
    new = with_grid(s.config, lower=100, upper=160, levels=7)
    plan, layers, reserve = s.plan_config_change(new, D(121))
    assert plan.cancels == () and plan.kept == ("b-0-1b", "b-1-1b", "b-2-1s", "b-3-1s")
    assert plan.places == (PlaceOrder("b-rebal", BUY, OrderType.MARKET, D(2), None, None, "rebalance"),)
    assert plan.summary == "config change: 0 cancel, 4 kept; levels 5 -> 7; buy 2 at market to rebalance"
    assert [(lay.side, lay.held) for lay in layers] == [(BUY, 0), (BUY, 0), (SELL, 1), (SELL, 1), (SELL, 0),
                                                          (SELL, 0)]
    assert [lay.suspend_reason for lay in layers[4:]] == [AWAITING_BASE, AWAITING_BASE] and reserve == 0
    n = len(drv.fills)
    drv.execute(s.on_config_change(new, D(121), 1))
    assert [(r.fill.client_id, r.fill.side, r.fill.amount, r.tag) for r in drv.fills[n:]] == [
        ("b-rebal1", BUY, D(2), "rebalance")]
    assert resting(eng) == [*INITIAL, ("b-4-1s", SELL, D(150), D(1)), ("b-5-1s", SELL, D(160), D(1))]
    assert s.prices == [D(100 + 10 * k) for k in range(7)]


def test_range_shrunk_keeps_the_surplus_by_default_or_sells_it() -> None:
    s, eng, drv = simulate()
    new = with_grid(s.config, lower=100, upper=130, levels=4)
    keep, _, reserve = s.plan_config_change(new, D(121))
    assert [c.client_id for c in keep.cancels] == ["b-3-1s"] and keep.places == () and reserve == 1
    sell, _, reserve = s.plan_config_change(new, D(121), surplus="sell")
    assert sell.places == (PlaceOrder("b-rebal", SELL, OrderType.MARKET, D(1), None, None, "rebalance"),)
    assert sell.summary.endswith("; sell 1 at market to rebalance")
    n = len(drv.fills)
    drv.execute(s.on_config_change(new, D(121), 1, surplus="sell"))
    assert [(r.fill.side, r.fill.amount, r.fill.price) for r in drv.fills[n:]] == [(SELL, D(1), D(121))]
    assert resting(eng) == INITIAL[:3]
    assert s.reserve == 0 and eng.total("BTC") == 1


def test_range_moved_down_re_lays_the_grid_around_the_price() -> None:
    s, eng, drv = simulate()
    drv.execute(s.on_config_change(with_grid(s.config, lower=90, upper=150, levels=7), D(121), 1))
    assert resting(eng) == [("b-0-1b", BUY, D(100), D(1)), ("b-0-2b", BUY, D(90), D(1)),
                            ("b-1-1b", BUY, D(110), D(1)), ("b-2-1s", SELL, D(130), D(1)),
                            ("b-3-1s", SELL, D(140), D(1)), ("b-5-1s", SELL, D(150), D(1))]
    assert s.gap_index == 3 and [lay.held for lay in s.layers] == [0, 0, 0, 1, 1, 1]


def test_add_a_layer() -> None:
    s, eng, drv = simulate(layers=[{"level": 3, "qty": 2}])
    new = s.with_layer_added(D(125))
    assert new.grid.type is GridType.CUSTOM
    assert new.grid.prices == [D(100), D(110), D(120), D(125), D(130), D(140)]
    assert [(lo.level, lo.qty) for lo in new.layers] == [(4, D(2))]  # the override moved up with its layer
    drv.execute(s.on_config_change(new, D(121), 1))
    assert [(lay.buy_price, lay.sell_level_price, lay.side) for lay in s.layers] == [
        (D(100), D(110), BUY), (D(110), D(120), BUY), (D(120), D(125), SELL), (D(125), D(130), SELL),
        (D(130), D(140), SELL)]
    assert sorted((o.side, o.price, o.amount) for o in eng.open_orders()) == [
        (BUY, D(100), D(1)), (BUY, D(110), D(1)), (SELL, D(125), D(1)), (SELL, D(130), D(1)), (SELL, D(140), D(2))]
    assert eng.total("BTC") == 4


def test_add_a_layer_with_override() -> None:
    s, eng, drv = simulate()
    new = s.with_layer_added(D(95), LayerOverride(level=99, qty=D(3)))
    assert new.grid.prices == [D(95), *s.prices] and [(lo.level, lo.qty) for lo in new.layers] == [(0, D(3))]
    drv.execute(s.on_config_change(new, D(121), 1))
    assert ("b-0-2b", BUY, D(95), D(3)) in resting(eng)
    with pytest.raises(ValueError, match=r"^price: a level at 110 exists already"):
        s.with_layer_added(D(110))


def test_add_a_level_above_the_top_gives_the_override_to_the_new_top_layer() -> None:
    """Regression: the override got layer index n (which does not exist) and was silently ignored."""
    s, eng, drv = simulate()
    new = s.with_layer_added(D(150), LayerOverride(level=0, qty=D(3)))
    assert [(lo.level, lo.qty) for lo in new.layers] == [(4, D(3))]
    assert parse_config(new.model_dump(mode="json")) == new  # a valid config
    drv.execute(s.on_config_change(new, D(121), 1))
    assert ("b-4-1s", SELL, D(150), D(3)) in resting(eng)


def test_remove_a_level() -> None:
    s, eng, drv = simulate(layers=[{"level": 0, "qty": 2}, {"level": 1, "qty": 3}, {"level": 3, "qty": 1}])
    new = s.with_level_removed(1)
    assert new.grid.prices == [D(100), D(120), D(130), D(140)]
    assert [(lo.level, lo.qty) for lo in new.layers] == [(0, D(2)), (2, D(1))]  # layer 1 merged away, 3 -> 2
    drv.execute(s.on_config_change(new, D(121), 1))
    assert [(lay.buy_price, lay.sell_level_price) for lay in s.layers] == [(D(100), D(120)), (D(120), D(130)),
                                                                          (D(130), D(140))]
    assert resting(eng) == [("b-0-1b", BUY, D(100), D(2)), ("b-2-1s", SELL, D(130), D(1)),
                            ("b-3-1s", SELL, D(140), D(1))]
    assert eng.total("BTC") == 2 and s.reserve == 0


def test_remove_the_top_level_and_refusals() -> None:
    s, _eng, _drv = simulate(layers=[{"level": 3, "qty": 2}])
    new = s.with_level_removed(4)
    assert new.grid.prices == [D(100), D(110), D(120), D(130)] and new.layers == []
    with pytest.raises(ValueError, match=r"^level: no level 5 \(levels are 0\.\.4\)"):
        s.with_level_removed(5)
    two = simulate(grid={"lower": 100, "upper": 110, "levels": 2})[0]
    with pytest.raises(ValueError, match=r"^level: a grid needs at least 2 levels"):
        two.with_level_removed(0)


def test_layout_change_of_a_selling_layer_moves_its_base_to_the_new_sells() -> None:
    s, eng, drv = simulate()
    drv.move_to(D(105), 1)  # buy at 110 filled: three sells now
    drv.execute(s.on_config_change(with_grid(s.config, lower=100, upper=140, levels=9), D(105), 2))
    # levels every 5; gap at 105 (index 1): seven sell layers need 7, the bot holds 3: buy 4
    assert [r.fill.amount for r in drv.fills if r.tag == "rebalance"] == [D(4)]
    assert sorted(o.price for o in eng.open_orders() if o.side is SELL) == [D(110 + 5 * k) for k in range(7)]
    assert sorted(o.price for o in eng.open_orders() if o.side is BUY) == [D(100)]
    assert eng.total("BTC") == 7


# ---------------------------------------------------------------------------------------------- preview


@pytest.mark.parametrize("edit", ["qty", "range", "add", "remove", "trailing", "surplus"])
def test_plan_preview_does_not_mutate_the_strategy(edit: str) -> None:
    s, eng, drv = simulate(trailing={"pullback_pct": 1})
    drv.move_to(D(105), 1)
    new = {
        "qty": lambda: with_layers(s.config, LayerOverride(level=0, qty=D(5))),
        "range": lambda: with_grid(s.config, lower=90, upper=200, levels=12),
        "add": lambda: s.with_layer_added(D(117)),
        "remove": lambda: s.with_level_removed(2),
        "trailing": lambda: s.config.model_copy(update={"trailing": s.config.trailing.model_copy(
            update={"pullback_pct": D(0)})}),
        "surplus": lambda: with_grid(s.config, lower=100, upper=120, levels=3),
    }[edit]()
    before = snapshot(s)
    orders_before = resting(eng)
    plan, layers, _ = s.plan_config_change(new, D(105), surplus="sell")
    assert snapshot(s) == before and resting(eng) == orders_before
    assert all(lay is not old for lay in layers for old in s.layers)
    assert plan.intents()[0].kind == "plan"  # type: ignore[union-attr]


def test_plan_intents_order() -> None:
    s, _eng, _drv = simulate()
    plan, _, _ = s.plan_config_change(with_grid(s.config, lower=100, upper=130, levels=4), D(121), surplus="sell")
    intents = plan.intents()
    assert isinstance(intents[0], BotEvent) and intents[0].data == {"cancel": 1, "place": 1, "keep": 3}
    assert isinstance(intents[1], CancelOrder) and isinstance(intents[2], PlaceOrder)


def test_config_change_while_paused_places_nothing_until_resume() -> None:
    s, eng, drv = simulate()
    drv.execute(s.pause())
    drv.execute(s.on_config_change(with_layers(s.config, LayerOverride(level=1, qty=D(2))), D(121), 1))
    assert resting(eng) == []
    drv.execute(s.resume())
    assert sorted((o.price, o.amount) for o in eng.open_orders()) == [(D(100), D(1)), (D(110), D(2)),
                                                                       (D(130), D(1)), (D(140), D(1))]


def test_partly_filled_orders_across_a_config_change() -> None:
    """A partly filled sell is booked before the plan; a partly filled buy that is canceled sells what it got."""
    s, eng, drv = simulate()
    eng.participation = D(1)
    eng.begin_volume(D("0.25"))
    drv.move_to(D(131), 1)  # the sell at 130 fills 0.25 of 1
    eng.begin_volume(D("0.5"))
    drv.move_to(D(108), 2)  # the buy at 110 fills 0.5 of 1
    eng.begin_volume(None)
    new = with_layers(s.config, LayerOverride(level=1, qty=D(2)), LayerOverride(level=2, take_profit_pct=D(10)))
    drv.execute(s.on_config_change(new, D(108), 3))
    assert s.portfolio.round_trips[0].amount == D("0.25")
    assert (s.layers[1].side, s.layers[1].held) == (SELL, D("0.5"))
    assert (s.layers[2].side, s.layers[2].held) == (SELL, D("0.75"))
    assert sorted((o.side, o.price, o.remaining) for o in eng.open_orders()) == [
        (BUY, D(100), D(1)), (SELL, D(120), D("0.5")), (SELL, D("133.1"), D("0.75")), (SELL, D(140), D(1))]
    assert eng.total("BTC") == D("0.5") + D("0.75") + 1
