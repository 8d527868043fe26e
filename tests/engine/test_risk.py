"""Risk rules: validation, metrics, operators, scopes, edge triggering, explanations, templates."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gridfleet.engine.indicators import IndicatorSpec
from gridfleet.engine.risk import (
    AllOf,
    AnyOf,
    Compare,
    LayerContext,
    LayerScope,
    Metric,
    MetricRef,
    Not,
    Op,
    RiskAction,
    RiskContext,
    RiskEngine,
    RiskFiring,
    RiskRule,
    RiskTemplate,
    builtin_templates,
    load_rules,
)
from gridfleet.engine.types import Candle

D = Decimal


def ctx(**kw: Any) -> RiskContext:
    """Return a context with neutral defaults (price in the middle of 80..120, no position)."""
    base: dict[str, Any] = {
        "timestamp": 0,
        "price": D(100),
        "lower": D(80),
        "upper": D(120),
        "position_amount": D(0),
        "avg_entry_price": None,
        "realized_pnl": D(0),
        "unrealized_pnl": D(0),
        "equity": D(1000),
        "peak_equity": D(1000),
        "layers": {},
    }
    for k, v in kw.items():
        base[k] = D(v) if isinstance(v, int | str) and k != "timestamp" else v
    return RiskContext(**base)


def layer(
    index: int, level: str = "90", amount: str = "0", avg: str | None = None, upnl: str = "0"
) -> LayerContext:
    """Return a layer context."""
    return LayerContext(index, D(level), D(amount), None if avg is None else D(avg), D(upnl))


def rule(when: Any, name: str = "r", **kw: Any) -> RiskRule:
    """Validate a rule from plain data."""
    return RiskRule.model_validate({"name": name, "when": when, **kw})


def truth(when: Any, c: RiskContext, **kw: Any) -> bool:
    """Return the current truth of a global condition on a fresh engine."""
    (status,) = RiskEngine([rule(when, **kw)]).status(c)
    return status.active


def leaf(metric: str, op: str, value: Any) -> dict[str, Any]:
    """Return a metric leaf."""
    return {"metric": metric, "op": op, "value": value}


def candle(close: str | int, t: int) -> Candle:
    """Return a flat candle."""
    x = D(close)
    return Candle(t, x, x, x, x, D(1))


SPEC_EXAMPLE = """
- name: stop-loss-below-range
  scope: global            # or: {layers: [0, 3, 5]} or: {layers: all}
  when:                    # condition tree, any depth
    any:
      - {metric: price, op: "<", value: {metric: lower}}
      - all:
          - {metric: drawdown_pct, op: ">=", value: 15}
          - {indicator: {name: rsi, period: 14}, op: "<", value: 30}
  action: stop_and_sell    # alert | stop_buying | pause | stop | stop_and_sell | take_profit
  cooldown_s: 0            # optional; min seconds between two firings
  once: false              # optional; fire at most once per run
"""


# ---------------------------------------------------------------- parsing


def test_spec_example_parses_to_the_expected_tree() -> None:
    (r,) = load_rules(SPEC_EXAMPLE)
    assert r.name == "stop-loss-below-range"
    assert r.scope == "global" and not r.is_layer_scoped
    assert r.action is RiskAction.STOP_AND_SELL and r.cooldown_s == 0 and r.once is False
    assert isinstance(r.when, AnyOf)
    first, second = r.when.any_
    assert first == Compare(metric=Metric.PRICE, op=Op.LT, value=MetricRef(metric=Metric.LOWER))
    assert isinstance(second, AllOf)
    dd, rsi = second.all_
    assert isinstance(dd, Compare) and dd.metric is Metric.DRAWDOWN_PCT and dd.value == D(15)
    assert isinstance(rsi, Compare) and rsi.indicator is not None and rsi.indicator.key == "rsi(14)"
    assert [s.key for s in r.indicator_specs] == ["rsi(14)"]


def test_spec_example_fires_with_the_documented_explanation() -> None:
    engine = RiskEngine(load_rules(SPEC_EXAMPLE))
    c = ctx(price="29950.1", lower="30000", upper="40000", equity="9000", peak_equity="10000")
    (f,) = engine.evaluate(c)
    assert f == RiskFiring(
        rule="stop-loss-below-range",
        action=RiskAction.STOP_AND_SELL,
        layer=None,
        explanation="stop-loss-below-range: price 29950.1 < lower 30000 (any[0])",
        values={"price": "29950.1", "lower": "30000", "drawdown_pct": "10", "rsi(14)": "undefined"},
    )


def test_numbers_strings_and_refs_are_accepted_as_value() -> None:
    assert rule(leaf("price", "<", 5)).when == Compare(metric=Metric.PRICE, op=Op.LT, value=D(5))
    assert rule(leaf("price", "<", "5.10")).when.value == D("5.10")  # type: ignore[union-attr]
    assert rule(leaf("price", "<", 0.1)).when.value == D("0.1")  # type: ignore[union-attr]
    ind = rule(leaf("price", "<", {"indicator": {"name": "ema", "period": 9}})).when
    assert ind.value.indicator.key == "ema(9)"  # type: ignore[union-attr]


def test_python_construction_with_field_names() -> None:
    tree = AnyOf(any=[Not(not_=Compare(metric=Metric.PRICE, op=Op.GT, value=D(1)))])  # type: ignore[call-arg]
    r = RiskRule(name="py", when=AllOf(all=[tree]))
    assert r.model_dump(mode="json", exclude_none=True)["when"] == {
        "all": [{"any": [{"not": {"metric": "price", "op": ">", "value": "1"}}]}]
    }
    assert RiskRule.model_validate(r.model_dump()) == r  # a default dump validates back


def test_default_dumps_validate_back() -> None:
    """A plain model_dump() (as a containing config would produce) is valid input again."""
    for t in [*builtin_templates().values(), make_template()]:
        for r in t.rules:
            assert RiskRule.model_validate(r.model_dump()) == r
            assert RiskRule.model_validate_json(r.model_dump_json()) == r
        assert RiskTemplate.model_validate(t.model_dump()) == t


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"name": "x", "when": leaf("pricee", "<", 1)}, "when.metric"),
        ({"name": "x", "when": leaf("price", "<>", 1)}, "when.op"),
        ({"name": "x", "when": leaf("price", "<", "abc")}, "when.value"),
        ({"name": "x", "when": leaf("price", "<", True)}, "when.value"),
        ({"name": "x", "when": leaf("price", "<", "NaN")}, "when.value"),
        ({"name": "x", "when": leaf("price", "<", {"metric": "nope"})}, "when.value.metric"),
        ({"name": "x", "when": leaf("price", "<", {"foo": 1})}, "when.value.metric"),
        ({"name": "x", "when": {"op": "<", "value": 1}}, "exactly one of 'metric' or 'indicator'"),
        (
            {
                "name": "x",
                "when": {"metric": "price", "indicator": {"name": "rsi", "period": 3}, "op": "<", "value": 1},
            },
            "exactly one of 'metric' or 'indicator'",
        ),
        ({"name": "x", "when": {"all": []}}, "when.all"),
        (
            {"name": "x", "when": {"any": [leaf("price", "<", 1), {"all": [{"not": {"metric": "p"}}]}]}},
            "when.any.1.all.0.not",
        ),
        (
            {"name": "x", "when": {"all": [leaf("price", "<", 1)], "any": [leaf("price", "<", 1)]}},
            "exactly one of all/any/not",
        ),
        ({"name": "x", "when": 5}, "a condition is a mapping"),
        (
            {"name": "x", "when": {"indicator": {"name": "rsi", "period": 0}, "op": "<", "value": 1}},
            "when.indicator.period",
        ),
        ({"name": "x", "when": leaf("price", "<", 1), "action": "sell"}, "action"),
        ({"name": "x", "when": leaf("price", "<", 1), "cooldown_s": -1}, "cooldown_s"),
        ({"name": "x", "when": leaf("price", "<", 1), "scope": "layers"}, "scope"),
        ({"name": "x", "when": leaf("price", "<", 1), "scope": {"layers": []}}, "layers must not be empty"),
        ({"name": "x", "when": leaf("price", "<", 1), "scope": {"layers": [1, 1]}}, "distinct"),
        ({"name": "x", "when": leaf("price", "<", 1), "scope": {"layers": [-1]}}, ">= 0"),
        ({"name": "x", "when": leaf("price", "<", 1), "colldown_s": 5}, "colldown_s"),
        ({"name": "", "when": leaf("price", "<", 1)}, "name"),
        ({"name": " x", "when": leaf("price", "<", 1)}, "name"),
        ({"name": "x", "when": leaf("level_price", "<", 1)}, "'level_price' needs a layer scope"),
        ({"when": leaf("price", "<", 1)}, "name"),
    ],
)
def test_invalid_rules_are_rejected_naming_the_field(data: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError) as exc:  # pydantic's ValidationError is a ValueError
        RiskRule.model_validate(data)
    # pydantic's own message also shows union tags in the location, e.g. "when.<leaf>.metric"
    assert needle.split(".")[-1] in str(exc.value)
    with pytest.raises(ValueError) as exc2:
        load_rules(yaml.safe_dump([data]))
    message = str(exc2.value)
    assert message.startswith("invalid rule 0:\n") and needle in message
    assert "<" + "leaf>" not in message and "<number>" not in message


def test_load_rules_error_messages_show_clean_paths() -> None:
    text = """
- name: ok
  when: {metric: price, op: "<", value: 1}
- name: bad
  when:
    any:
      - {metric: price, op: "<", value: 1}
      - all:
          - not: {metric: price, op: "~", value: 1}
"""
    with pytest.raises(ValueError) as exc:
        load_rules(text)
    assert "invalid rule 1:\n  when.any.1.all.0.not.op: Input should be '<'" in str(exc.value)
    with pytest.raises(ValueError, match="expected a list of rules"):
        load_rules("name: x")
    with pytest.raises(ValueError, match="invalid YAML"):
        load_rules("- {name: [")
    with pytest.raises(ValueError, match="duplicate rule name 'a'"):
        load_rules(
            "[{name: a, when: {metric: price, op: '<', value: 1}},\n"
            " {name: a, when: {metric: price, op: '<', value: 2}}]"
        )


def test_rules_are_frozen() -> None:
    r = rule(leaf("price", "<", 1))
    with pytest.raises(ValidationError):
        r.name = "other"


# ---------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("op", "expected"),  # expected truth for price 99 / 100 / 101 against 100
    [
        ("<", (True, False, False)),
        ("<=", (True, True, False)),
        (">", (False, False, True)),
        (">=", (False, True, True)),
        ("==", (False, True, False)),
        ("!=", (True, False, True)),
    ],
)
def test_comparison_operators(op: str, expected: tuple[bool, bool, bool]) -> None:
    got = tuple(truth(leaf("price", op, 100), ctx(price=p)) for p in (99, 100, 101))
    assert got == expected
    # the same against a metric reference and a string number with trailing zeros
    got_ref = tuple(
        truth(leaf("price", op, {"metric": "upper"}), ctx(price=p, upper=100)) for p in (99, 100, 101)
    )
    assert got_ref == expected
    assert truth(leaf("price", op, "100.000"), ctx(price=100)) is expected[1]


def test_crosses_above_and_below() -> None:
    up = RiskEngine([rule(leaf("price", "crosses_above", 100), name="up")])
    down = RiskEngine([rule(leaf("price", "crosses_below", {"metric": "lower"}), name="down")])
    prices = [105, 99, 100, 101, 102, 98, 101]
    fired_up = [bool(up.evaluate(ctx(price=p, timestamp=i))) for i, p in enumerate(prices)]
    # first evaluation has no previous value: never a cross, even though 105 > 100
    assert fired_up == [
        False,
        False,
        False,
        True,
        False,
        False,
        True,
    ]  # 100 -> 101 crosses (touch then above)
    lows = ["85", "81", "80", "79", "79", "81", "79"]
    fired_down = [bool(down.evaluate(ctx(price=p, lower=80, timestamp=i))) for i, p in enumerate(lows)]
    assert fired_down == [False, False, False, True, False, False, True]


def test_crosses_explanation_and_previous_values() -> None:
    engine = RiskEngine([rule(leaf("price", "crosses_above", {"metric": "upper"}), name="breakout")])
    assert engine.evaluate(ctx(price=119)) == []
    (f,) = engine.evaluate(ctx(price="120.5"))
    assert f.explanation == "breakout: price 120.5 crosses_above upper 120 [was 119 vs 120] (when)"
    assert f.values == {"price": "120.5", "upper": "120", "price (prev)": "119", "upper (prev)": "120"}


def test_crosses_against_a_moving_reference() -> None:
    engine = RiskEngine([rule(leaf("price", "crosses_below", {"metric": "avg_entry_price"}))])
    seq = [
        ctx(price=100, avg_entry_price=D(95), position_amount=1),
        ctx(price=100, avg_entry_price=D(101), position_amount=1),  # the reference moved above the price
        ctx(price=100, avg_entry_price=D(101), position_amount=1),
    ]
    assert [len(engine.evaluate(c)) for c in seq] == [0, 1, 0]


def test_crosses_needs_defined_previous_values() -> None:
    engine = RiskEngine([rule(leaf("avg_entry_price", "crosses_above", 100))])
    assert engine.evaluate(ctx(avg_entry_price=None)) == []  # undefined now
    assert engine.evaluate(ctx(avg_entry_price=D(101), position_amount=1)) == []  # previous was undefined
    assert engine.evaluate(ctx(avg_entry_price=D(99), position_amount=1)) == []
    assert len(engine.evaluate(ctx(avg_entry_price=D(101), position_amount=1))) == 1


# ---------------------------------------------------------------- metrics


def metric_values(c: RiskContext, names: list[str], scope: Any = "global") -> dict[str, str]:
    """Return the values an engine reads for the given metric names (one leaf each)."""
    when = {"all": [leaf(n, ">", -(10**9)) for n in names]}
    statuses = RiskEngine([rule(when, scope=scope)]).status(c)
    return statuses[0].values


def test_global_metrics() -> None:
    c = ctx(
        price=90,
        lower=80,
        upper=120,
        position_amount="2",
        avg_entry_price=D(100),
        realized_pnl=5,
        unrealized_pnl=-20,
        equity=980,
        peak_equity=1000,
    )
    got = metric_values(c, [m.value for m in Metric if m is not Metric.LEVEL_PRICE])
    assert {k: D(v) for k, v in got.items()} == {
        "price": D(90),
        "lower": D(80),
        "upper": D(120),
        "position_amount": D(2),
        "position_notional": D(180),
        "avg_entry_price": D(100),
        "avg_price_deviation_pct": D(-10),
        "realized_pnl": D(5),
        "unrealized_pnl": D(-20),
        "total_pnl": D(-15),
        "equity": D(980),
        "peak_equity": D(1000),
        "drawdown_pct": D(2),
        "range_position_pct": D(25),
    }


def test_metric_thresholds_fire_as_expected() -> None:
    c = ctx(price=90, equity=850, peak_equity=1000, position_amount=1, avg_entry_price=D(100))
    assert truth(leaf("drawdown_pct", ">=", 15), c) is True
    assert truth(leaf("drawdown_pct", ">", 15), c) is False
    assert truth(leaf("avg_price_deviation_pct", "==", -10), c) is True
    assert truth(leaf("range_position_pct", "==", 25), c) is True
    assert truth(leaf("position_notional", "==", 90), c) is True


@pytest.mark.parametrize(
    ("metric", "c", "reason"),
    [
        ("avg_entry_price", ctx(), "avg_entry_price undefined (no position)"),
        ("avg_price_deviation_pct", ctx(), "avg_price_deviation_pct undefined (no position)"),
        (
            "avg_price_deviation_pct",
            ctx(avg_entry_price=D(0), position_amount=1),
            "avg_price_deviation_pct undefined (avg_entry_price is 0)",
        ),
        ("drawdown_pct", ctx(peak_equity=0, equity=0), "drawdown_pct undefined (peak_equity <= 0)"),
        ("range_position_pct", ctx(lower=100, upper=100), "range_position_pct undefined (upper <= lower)"),
    ],
)
def test_undefined_metrics_make_the_leaf_false_and_say_so(metric: str, c: RiskContext, reason: str) -> None:
    for op in ["<", "<=", ">", ">=", "==", "!="]:
        (s,) = RiskEngine([rule(leaf(metric, op, 0))]).status(c)
        assert s.active is False
        assert s.explanation == f"r: {reason} (when)"
        assert s.values[metric] == "undefined"
    # on the right-hand side as well
    (s,) = RiskEngine([rule(leaf("price", "!=", {"metric": metric}))]).status(c)
    assert s.active is False and s.explanation == f"r: {reason} (when)"
    # `not` of an undefined leaf is true (the leaf is false), and the firing explains why
    engine = RiskEngine([rule({"not": leaf(metric, ">", 0)})])
    (f,) = engine.evaluate(c)
    assert f.explanation == f"r: {reason} (not)"


def test_undefined_indicator_says_not_warmed_up() -> None:
    engine = RiskEngine([rule({"indicator": {"name": "rsi", "period": 3}, "op": "<", "value": 30})])
    for t in range(2):
        engine.update_candle(candle(100 - t, t))
    (s,) = engine.status(ctx())
    assert s.active is False
    assert s.explanation == "r: rsi(3) undefined (not warmed up: 2/4 candles) (when)"
    assert s.values == {"rsi(3)": "undefined"}


# ---------------------------------------------------------------- trees


def test_nested_tree_depth_four_and_paths() -> None:
    when = {
        "all": [
            leaf("price", "<", 200),
            {
                "any": [
                    leaf("price", ">", 1000),
                    {
                        "not": {
                            "all": [
                                leaf("equity", ">=", 500),
                                {"any": [leaf("price", "==", 1), leaf("lower", ">", 90)]},
                            ]
                        }
                    },
                ]
            },
        ]
    }
    c = ctx(price=100, equity=1000, lower=80)
    # all[0] true; any[0] false; inner all: equity>=500 true, any(price==1 false, lower>90 false) false
    #   -> inner all false -> not true -> any true -> root true
    (s,) = RiskEngine([rule(when, name="deep")]).status(c)
    assert s.active is True
    assert s.explanation == (
        "deep: price 100 < 200 (all[0]); not (price 100 == 1) (all[1].any[1].not.all[1].any[0]); "
        "not (lower 80 > 90) (all[1].any[1].not.all[1].any[1])"
    )
    assert s.values == {"price": "100", "equity": "1000", "lower": "80"}
    # flip the deepest leaf: inner all true -> not false -> any false -> root false
    (s2,) = RiskEngine([rule(when, name="deep")]).status(ctx(price=100, equity=1000, lower=95))
    assert s2.active is False
    assert s2.explanation == (
        "deep: not (price 100 > 1000) (all[1].any[0]); equity 1000 >= 500 (all[1].any[1].not.all[0]); "
        "lower 95 > 90 (all[1].any[1].not.all[1].any[1])"
    )


def test_any_explains_only_the_true_children_and_all_false_explains_the_false_ones() -> None:
    when = {"any": [leaf("price", ">", 1000), leaf("price", "<", 200), leaf("equity", ">", 1)]}
    (s,) = RiskEngine([rule(when)]).status(ctx())
    assert s.explanation == "r: price 100 < 200 (any[1]); equity 1000 > 1 (any[2])"
    when2 = {"all": [leaf("price", ">", 1000), leaf("price", "<", 200), leaf("equity", "<", 1)]}
    (s2,) = RiskEngine([rule(when2)]).status(ctx())
    assert s2.active is False
    assert s2.explanation == "r: not (price 100 > 1000) (all[0]); not (equity 1000 < 1) (all[2])"


# ---------------------------------------------------------------- edge trigger


def test_edge_triggered_first_evaluation_counts_as_rising() -> None:
    engine = RiskEngine([rule(leaf("price", "<", 90), action="stop")])
    seq = [80, 85, 95, 85, 85, 95, 95, 70]
    fired = [len(engine.evaluate(ctx(price=p, timestamp=i * 1000))) for i, p in enumerate(seq)]
    assert fired == [1, 0, 0, 1, 0, 0, 0, 1]


def test_status_does_not_change_state() -> None:
    engine = RiskEngine([rule(leaf("price", "crosses_above", 100))])
    engine.evaluate(ctx(price=99))
    for _ in range(3):
        assert engine.status(ctx(price=101))[0].active is True
    assert len(engine.evaluate(ctx(price=101))) == 1
    assert engine.status(ctx(price=102))[0].active is False  # previous is now 101


def test_cooldown_holds_back_a_rising_edge_until_it_expires() -> None:
    engine = RiskEngine([rule(leaf("price", "<", 90), cooldown_s=60)])

    def step(price: int, t_s: float) -> int:
        return len(engine.evaluate(ctx(price=price, timestamp=int(t_s * 1000))))

    assert step(80, 0) == 1
    assert step(95, 10) == 0
    assert step(80, 20) == 0  # rising edge within 60 s: held back
    assert step(80, 59.999) == 0
    assert step(80, 60) == 1  # cooldown over and still true: fires now
    assert step(80, 61) == 0  # no new edge
    assert step(95, 70) == 0
    assert step(80, 80) == 0  # held back again ...
    assert step(95, 90) == 0  # ... and dropped because the condition went false
    assert step(95, 200) == 0
    assert step(80, 210) == 1  # a fresh edge after the cooldown fires at once


def test_once_fires_at_most_once() -> None:
    engine = RiskEngine([rule(leaf("price", "<", 90), once=True)])
    fired = [len(engine.evaluate(ctx(price=p, timestamp=i))) for i, p in enumerate([80, 95, 80, 95, 80])]
    assert fired == [1, 0, 0, 0, 0]
    engine.reset()
    assert len(engine.evaluate(ctx(price=80))) == 1


def test_firings_are_in_rule_order_and_rules_are_independent() -> None:
    rules = [
        rule(leaf("price", ">", 0), name="b", action="alert"),
        rule(leaf("price", "<", 90), name="a", action="stop_buying"),
        rule(leaf("price", ">", 1000), name="c"),
        rule(leaf("equity", ">", 0), name="d", action="take_profit"),
    ]
    engine = RiskEngine(rules)
    assert [(f.rule, f.action) for f in engine.evaluate(ctx(price=80))] == [
        ("b", RiskAction.ALERT),
        ("a", RiskAction.STOP_BUYING),
        ("d", RiskAction.TAKE_PROFIT),
    ]
    assert engine.evaluate(ctx(price=80)) == []
    assert [f.rule for f in engine.evaluate(ctx(price=2000))] == ["c"]


def test_duplicate_rule_names_are_rejected_by_the_engine() -> None:
    with pytest.raises(ValueError, match="duplicate rule name 'x'"):
        RiskEngine([rule(leaf("price", "<", 1), name="x"), rule(leaf("price", ">", 1), name="x")])


# ---------------------------------------------------------------- layer scope


def layered_ctx(**kw: Any) -> RiskContext:
    """Return a context at price 100 with three layers: 0 (in profit), 3 (under water), 5 (empty)."""
    layers = {
        0: layer(0, level="80", amount="1", avg="80", upnl="20"),
        3: layer(3, level="110", amount="2", avg="110", upnl="-20"),
        5: layer(5, level="120"),
    }
    return ctx(layers=layers, position_amount=3, avg_entry_price=D("100"), unrealized_pnl=0, **kw)


def test_layer_metrics_resolve_to_the_layer_and_others_fall_back_to_global() -> None:
    names = [
        "position_amount",
        "position_notional",
        "avg_entry_price",
        "avg_price_deviation_pct",
        "unrealized_pnl",
        "level_price",
        "price",
        "equity",
    ]
    statuses = RiskEngine(
        [rule({"all": [leaf(n, ">", -(10**9)) for n in names]}, scope={"layers": "all"})]
    ).status(layered_ctx())
    assert [s.layer for s in statuses] == [0, 3, 5]
    v0, v3, v5 = (s.values for s in statuses)
    assert {k: D(x) for k, x in v0.items()} == {
        "position_amount": D(1),
        "position_notional": D(100),
        "avg_entry_price": D(80),
        "avg_price_deviation_pct": D(25),
        "unrealized_pnl": D(20),
        "level_price": D(80),
        "price": D(100),
        "equity": D(1000),
    }
    assert D(v3["avg_price_deviation_pct"]) == D(100 - 110) / 110 * 100
    assert v3["position_notional"] == "200" and v3["unrealized_pnl"] == "-20"
    assert v5["avg_entry_price"] == "undefined" and v5["position_amount"] == "0"
    assert statuses[2].active is False
    assert "avg_entry_price undefined (no position in layer 5)" in statuses[2].explanation
    # the same metric names in a global rule read the global values
    glob = metric_values(layered_ctx(), ["position_amount", "avg_entry_price", "unrealized_pnl"])
    assert glob == {"position_amount": "3", "avg_entry_price": "100", "unrealized_pnl": "0"}


def test_layer_scoped_rule_fires_per_layer_with_layer_in_the_explanation() -> None:
    tp = rule(
        leaf("avg_price_deviation_pct", ">=", 5),
        name="layer-tp",
        scope={"layers": "all"},
        action="take_profit",
    )
    under = rule(leaf("unrealized_pnl", "<", 0), name="under", scope={"layers": [3, 5, 7]})
    engine = RiskEngine([tp, under])
    fs = engine.evaluate(layered_ctx())
    assert [(f.rule, f.layer, f.action) for f in fs] == [
        ("layer-tp", 0, RiskAction.TAKE_PROFIT),
        ("under", 3, RiskAction.ALERT),
    ]
    assert fs[0].explanation == "layer-tp [layer 0]: avg_price_deviation_pct 25 >= 5 (when)"
    assert fs[1].explanation == "under [layer 3]: unrealized_pnl -20 < 0 (when)"
    assert engine.evaluate(layered_ctx()) == []  # edge-triggered per layer
    # layer 3 recovers, layer 0 goes under water: only the new edges fire
    c2 = replace(
        layered_ctx(),
        layers={
            0: layer(0, level="80", amount="1", avg="80", upnl="-1"),
            3: layer(3, level="110", amount="2", avg="110", upnl="5"),
            5: layer(5, level="120"),
        },
    )
    assert [(f.rule, f.layer) for f in engine.evaluate(c2)] == []  # layer 0 is not in [3, 5, 7]
    c3 = replace(c2, layers={**c2.layers, 5: layer(5, level="120", amount="1", avg="121", upnl="-21")})
    assert [(f.rule, f.layer) for f in engine.evaluate(c3)] == [("under", 5)]


def test_missing_layer_counts_as_false_but_keeps_once() -> None:
    r = rule(leaf("position_amount", ">", 0), scope={"layers": [0, 3]})
    once = rule(leaf("position_amount", ">", 0), name="once", scope={"layers": [0]}, once=True)
    engine = RiskEngine([r, once])
    full = layered_ctx()
    without0 = replace(full, layers={3: full.layers[3]})
    assert [(f.rule, f.layer) for f in engine.evaluate(full)] == [("r", 0), ("r", 3), ("once", 0)]
    assert engine.evaluate(without0) == []
    assert [(f.rule, f.layer) for f in engine.evaluate(full)] == [("r", 0)]  # 0 came back true: a new edge


def test_layer_cooldown_is_per_layer() -> None:
    engine = RiskEngine([rule(leaf("price", "<", 90), scope={"layers": "all"}, cooldown_s=100)])
    one = {0: layer(0)}
    two = {0: layer(0), 1: layer(1)}
    assert [f.layer for f in engine.evaluate(ctx(price=80, layers=one, timestamp=0))] == [0]
    assert [f.layer for f in engine.evaluate(ctx(price=95, layers=two, timestamp=1000))] == []
    # layer 1 has never fired: no cooldown; layer 0 is held back
    assert [f.layer for f in engine.evaluate(ctx(price=80, layers=two, timestamp=2000))] == [1]
    assert [f.layer for f in engine.evaluate(ctx(price=80, layers=two, timestamp=100_000))] == [0]


def test_level_price_rule() -> None:
    r = rule(leaf("price", "<=", {"metric": "level_price"}), name="at-level", scope={"layers": "all"})
    assert [f.layer for f in RiskEngine([r]).evaluate(layered_ctx())] == [3, 5]


# ---------------------------------------------------------------- indicators


def test_engine_feeds_each_indicator_once_and_compares_indicator_values() -> None:
    rsi = {"name": "rsi", "period": 3}
    rules = [
        rule({"indicator": rsi, "op": "<", "value": 30}, name="oversold", action="stop_buying"),
        rule({"indicator": rsi, "op": ">", "value": 70}, name="overbought"),
        rule(
            {
                "indicator": {"name": "ma", "period": 2},
                "op": "crosses_below",
                "value": {"indicator": {"name": "ma", "period": 4}},
            },
            name="ma-cross",
        ),
    ]
    engine = RiskEngine(rules)
    assert engine.needs_candles is True
    assert sorted(engine.indicators) == ["ma(2)", "ma(4)", "rsi(3)"]
    closes = [100, 101, 102, 103, 104, 90, 80]
    fired: list[list[str]] = []
    for t, x in enumerate(closes):
        engine.update_candle(candle(x, t))
        engine.update_candle(candle(x + 1000, t))  # a duplicate candle (same open_time) is ignored
        fired.append([f.rule for f in engine.evaluate(ctx(timestamp=t))])
    assert engine.indicators["rsi(3)"].count == len(closes)
    # rsi(3) first value after 4 candles: all gains -> 100 ("overbought"); ma(2) < ma(4) after the drop
    assert fired == [[], [], [], ["overbought"], [], ["oversold", "ma-cross"], []]
    values = engine.indicator_values()
    assert values["ma(2)"] == D(85) and values["ma(4)"] == D("94.25")  # (103+104+90+80)/4


def test_indicator_firing_values_and_explanation() -> None:
    engine = RiskEngine(
        [rule({"indicator": {"name": "ma", "period": 2}, "op": ">", "value": {"metric": "price"}})]
    )
    engine.update_candle(candle(10, 0))
    engine.update_candle(candle(11, 1))
    (f,) = engine.evaluate(ctx(price=10))
    assert f.explanation == "r: ma(2) 10.5 > price 10 (when)"
    assert f.values == {"ma(2)": "10.5", "price": "10"}


def test_needs_candles_false_without_indicators_and_reset_clears_indicators() -> None:
    assert RiskEngine([rule(leaf("price", "<", 1))]).needs_candles is False
    assert RiskEngine([]).needs_candles is False and RiskEngine([]).evaluate(ctx()) == []
    engine = RiskEngine([rule({"indicator": {"name": "ma", "period": 1}, "op": ">", "value": 0})])
    engine.update_candle(candle(5, 10))
    assert engine.indicator_values() == {"ma(1)": D(5)}
    engine.reset()
    assert engine.indicator_values() == {"ma(1)": None}
    engine.update_candle(candle(6, 0))  # an earlier open_time is accepted after reset
    assert engine.indicator_values() == {"ma(1)": D(6)}


# ---------------------------------------------------------------- templates


def make_template() -> RiskTemplate:
    """Return a template using every kind of node, operand and scope."""
    return RiskTemplate(
        name="everything",
        description="all features",
        rules=[
            *load_rules(SPEC_EXAMPLE),
            rule(
                {
                    "not": {
                        "any": [
                            leaf("avg_price_deviation_pct", "crosses_below", "-2.50"),
                            {
                                "indicator": {"name": "boll", "period": 20, "k": "2.5", "band": "lower"},
                                "op": ">",
                                "value": {"metric": "price"},
                            },
                        ]
                    }
                },
                name="layers",
                scope={"layers": [0, 2]},
                action="pause",
                cooldown_s=30.5,
                once=True,
            ),
            rule(leaf("level_price", "==", 1), name="all-layers", scope={"layers": "all"}),
        ],
    )


def test_template_yaml_and_json_round_trip() -> None:
    t = make_template()
    text = t.to_yaml()
    assert RiskTemplate.from_yaml(text) == t
    assert RiskTemplate.from_json(t.to_json()) == t
    data = yaml.safe_load(text)
    assert data["name"] == "everything" and data["description"] == "all features"
    r0, r1, r2 = data["rules"]
    assert r0["when"]["any"][0] == {"metric": "price", "op": "<", "value": {"metric": "lower"}}
    assert r0["when"]["any"][1]["all"][1]["indicator"] == {"name": "rsi", "period": 14}  # defaults left out
    assert r0["action"] == "stop_and_sell" and "cooldown_s" not in r0 and "once" not in r0
    assert r1["scope"] == {"layers": [0, 2]} and r1["cooldown_s"] == 30.5 and r1["once"] is True
    assert r1["when"]["not"]["any"][0]["value"] == "-2.50"  # decimals are exact strings
    assert r2["scope"] == {"layers": "all"} and r2["action"] == "alert"
    assert json.loads(t.to_json()) == data


def test_template_round_trip_preserves_behaviour() -> None:
    t = make_template()
    back = RiskTemplate.from_json(t.to_json())
    c = layered_ctx(price="29000", lower="30000", upper="40000")
    a = RiskEngine(t.rules).evaluate(c)
    b = RiskEngine(back.rules).evaluate(c)
    assert a == b
    assert [(f.rule, f.layer) for f in a] == [
        ("stop-loss-below-range", None),
        ("layers", 0),
    ]  # layer 2 absent
    assert a[1].explanation == (
        "layers [layer 0]: not (avg_price_deviation_pct 36150 crosses_below -2.50 [no previous values]) "
        "(not.any[0]); boll(20,2.5,lower) undefined (not warmed up: 0/20 candles) (not.any[1])"
    )


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("name: [", "invalid YAML"),
        ("- a\n- b", "expected a mapping, got list"),
        ("name: t\nrules: 3", "rules: Input should be a valid list"),
        ("name: t\nrules: [{name: a}]", "rules.0.when: Field required"),
        ("name: t\nrulez: []", "rulez: Extra inputs are not permitted"),
        (
            "name: t\nrules: [{name: a, when: {metric: price, op: '<', value: x}}]",
            "rules.0.when.value: Input should be a valid decimal",
        ),
        (
            "name: t\nrules: [{name: a, when: {metric: price, op: '<', value: 1}},\n"
            "                {name: a, when: {metric: price, op: '<', value: 1}}]",
            "duplicate rule name 'a'",
        ),
    ],
)
def test_template_errors_are_clear_value_errors(text: str, needle: str) -> None:
    with pytest.raises(ValueError) as exc:
        RiskTemplate.from_yaml(text)
    assert needle in str(exc.value)


def test_template_json_errors() -> None:
    with pytest.raises(ValueError, match="invalid JSON"):
        RiskTemplate.from_json("{")
    with pytest.raises(ValueError, match=r"(?s)invalid risk template.*rules: Field required"):
        RiskTemplate.from_json('{"name": "x"}')


def test_builtin_templates_are_valid_and_round_trip() -> None:
    templates = builtin_templates()
    assert set(templates) == {"conservative", "trend-guard", "layer-take-profit"}
    for t in templates.values():
        assert t.description and t.rules
        assert RiskTemplate.from_yaml(t.to_yaml()) == t
        assert RiskTemplate.from_json(t.to_json()) == t
        RiskEngine(t.rules)  # builds (unique names, indicators)
    assert RiskEngine(templates["trend-guard"].rules).needs_candles is True
    cons = RiskEngine(templates["conservative"].rules)
    fired = cons.evaluate(
        ctx(price=70, lower=80, equity=800, peak_equity=1000, position_amount=1, avg_entry_price=D(100))
    )
    assert [(f.rule, f.action) for f in fired] == [
        ("stop-loss-below-range", RiskAction.STOP_AND_SELL),
        ("max-drawdown", RiskAction.STOP_AND_SELL),
        ("deep-underwater", RiskAction.STOP_BUYING),
    ]


# ---------------------------------------------------------------- properties

METRIC_NAMES = ["price", "lower", "upper", "equity", "realized_pnl", "position_amount"]
SMALL = st.integers(min_value=-3, max_value=3)
OPS = ["<", "<=", ">", ">=", "==", "!="]

leaves = st.builds(
    lambda m, op, v: leaf(m, op, v if not isinstance(v, str) else {"metric": v}),
    st.sampled_from(METRIC_NAMES),
    st.sampled_from(OPS),
    st.one_of(SMALL, st.sampled_from(METRIC_NAMES)),
)
trees = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, children),
    ),
    max_leaves=12,
)
contexts = st.builds(
    lambda p, lo, up, eq, rp, pa, t: ctx(
        price=p, lower=lo, upper=up, equity=eq, realized_pnl=rp, position_amount=pa, timestamp=t
    ),
    SMALL,
    SMALL,
    SMALL,
    SMALL,
    SMALL,
    SMALL,
    st.integers(min_value=0, max_value=10**6),
)


def reference_truth(node: dict[str, Any], c: RiskContext) -> bool:
    """Evaluate a condition tree directly (the obvious interpreter), for comparison with the engine."""
    if "all" in node:
        return all(reference_truth(x, c) for x in node["all"])
    if "any" in node:
        return any(reference_truth(x, c) for x in node["any"])
    if "not" in node:
        return not reference_truth(node["not"], c)
    a = getattr(c, node["metric"])
    v = node["value"]
    b = getattr(c, v["metric"]) if isinstance(v, dict) else D(v)
    return bool(
        {
            "<": a < b,
            "<=": a <= b,
            ">": a > b,
            ">=": a >= b,
            "==": a == b,
            "!=": a != b,
        }[node["op"]]
    )


def status_of(when: dict[str, Any], c: RiskContext) -> bool:
    """Return the engine's truth of a condition."""
    return RiskEngine([rule(when)]).status(c)[0].active


@settings(max_examples=300, deadline=None)
@given(trees, contexts)
def test_engine_agrees_with_reference_interpreter(tree: dict[str, Any], c: RiskContext) -> None:
    assert status_of(tree, c) is reference_truth(tree, c)


@settings(max_examples=200, deadline=None)
@given(trees, contexts)
def test_not_is_negation_and_single_child_combinators_are_identity(
    tree: dict[str, Any], c: RiskContext
) -> None:
    t = status_of(tree, c)
    assert status_of({"not": tree}, c) is (not t)
    assert status_of({"not": {"not": tree}}, c) is t
    assert status_of({"all": [tree]}, c) is t
    assert status_of({"any": [tree]}, c) is t


@settings(max_examples=200, deadline=None)
@given(trees, trees, contexts)
def test_de_morgan(a: dict[str, Any], b: dict[str, Any], c: RiskContext) -> None:
    assert status_of({"not": {"all": [a, b]}}, c) is status_of({"any": [{"not": a}, {"not": b}]}, c)
    assert status_of({"not": {"any": [a, b]}}, c) is status_of({"all": [{"not": a}, {"not": b}]}, c)


@settings(max_examples=100, deadline=None)
@given(st.lists(trees, min_size=1, max_size=4), st.lists(contexts, min_size=1, max_size=8))
def test_evaluation_is_deterministic_and_matches_a_firing_model(
    ts: list[dict[str, Any]], cs: list[RiskContext]
) -> None:
    """Two engines agree; firings match a direct model of edge + cooldown (+ held-back edge) + once."""
    rules = [rule(t, name=f"r{i}", cooldown_s=i * 100, once=i == 3) for i, t in enumerate(ts)]
    e1, e2 = RiskEngine(rules), RiskEngine(rules)
    was = [False] * len(ts)
    pending = [False] * len(ts)
    last: list[int | None] = [None] * len(ts)
    count = [0] * len(ts)
    for c in sorted(cs, key=lambda c: c.timestamp):
        f1, f2 = e1.evaluate(c), e2.evaluate(c)
        assert f1 == f2
        expected = []
        for i, t in enumerate(ts):
            now = reference_truth(t, c)
            if now and (pending[i] or not was[i]):
                t_last = last[i]
                if i == 3 and count[i]:
                    pending[i] = False
                elif t_last is not None and c.timestamp - t_last < i * 100_000:
                    pending[i] = True
                else:
                    pending[i] = False
                    count[i] += 1
                    last[i] = c.timestamp
                    expected.append(f"r{i}")
            elif not now:
                pending[i] = False
            was[i] = now
        assert [f.rule for f in f1] == expected


def test_indicator_spec_is_reused_across_rules() -> None:
    spec = {"name": "ema", "period": 5}
    engine = RiskEngine(
        [
            rule({"indicator": spec, "op": ">", "value": 1}, name="a"),
            rule(
                {"indicator": {**spec, "source": "close"}, "op": "<", "value": {"indicator": spec}}, name="b"
            ),
        ]
    )
    assert list(engine.indicators) == ["ema(5)"]
    assert IndicatorSpec.model_validate(spec).key == "ema(5)"


def test_layer_scope_model() -> None:
    assert LayerScope.model_validate({"layers": "all"}).layers == "all"
    assert LayerScope.model_validate({"layers": [5, 0]}).layers == [5, 0]
    assert rule(leaf("price", "<", 1), scope={"layers": [1]}).is_layer_scoped is True
