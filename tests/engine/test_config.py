"""GridConfig: exact loading from YAML/JSON, every invalid input refused with the field named, JSON Schema."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest
import yaml

from gridfleet.engine.config import (
    ConfigError,
    GridConfig,
    GridType,
    config_from_text,
    config_to_dict,
    parse_config,
)

D = Decimal

BASE: dict[str, Any] = {
    "symbol": "BTC/USDT",
    "grid": {"lower": 100, "upper": 140, "levels": 5},
    "qty_per_order": "1",
}

YAML_TEXT = """
symbol: btc/usdt
grid:
  type: geometric
  lower: 25000.5
  upper: 31000
  levels: 12
investment: 1000.10
qty_per_order: 0.002
fees: {maker: 0.00075, taker: 0.001}
trailing: {rebound_pct: 0.3, pullback_pct: 0.25, order_type: limit}
slippage: 0.0003
participation: 0.1
layers:
  - {level: 0, qty: 0.004, take_profit_pct: 1.5}
  - {level: 3, enabled: false, rebound_pct: 0}
"""


def cfg(**changes: Any) -> dict[str, Any]:
    """Return BASE with top-level keys replaced (None removes the key)."""
    data = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


# ---------------------------------------------------------------------------------------------- loading


def test_yaml_is_read_exactly() -> None:
    c = config_from_text(YAML_TEXT)
    assert c.symbol == "BTC/USDT"  # upper-cased
    assert c.grid.type is GridType.GEOMETRIC
    assert c.grid.lower == D("25000.5") and str(c.grid.lower) == "25000.5"
    assert c.grid.upper == D(31000) and c.grid.levels == 12
    assert str(c.investment) == "1000.10"
    assert str(c.qty_per_order) == "0.002"  # not 0.00200000000000000004163336342344337026588618755340576171875
    assert (str(c.fees.maker), str(c.fees.taker)) == ("0.00075", "0.001")
    assert (str(c.trailing.rebound_pct), str(c.trailing.pullback_pct)) == ("0.3", "0.25")
    assert c.trailing.order_type == "limit"
    assert str(c.slippage) == "0.0003" and str(c.participation) == "0.1"
    tp_layer, off_layer = c.layer(0), c.layer(3)
    assert tp_layer is not None and off_layer is not None
    assert str(tp_layer.qty) == "0.004" and str(tp_layer.take_profit_pct) == "1.5"
    assert off_layer.enabled is False and off_layer.rebound_pct == 0
    assert c.layer(1) is None
    assert c.level_count == 12


def test_json_is_read_exactly() -> None:
    text = json.dumps({"symbol": "eth/usdt", "grid": {"lower": 1500, "upper": 2000, "levels": 11},
                       "investment": 1000}).replace("1000}", "1000.10, \"qty_per_order\": 0.002}")
    c = config_from_text(text, fmt="json")
    assert c.symbol == "ETH/USDT"
    assert str(c.investment) == "1000.10"
    assert c.qty_per_order == D("0.002") and str(c.qty_per_order) == "0.002"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.002", "0.002"), (".5", "0.5"), ("1.5e-3", "0.0015"), ("1_000.25", "1000.25"), ("3", "3")],
)
def test_yaml_number_forms(text: str, expected: str) -> None:
    c = config_from_text(f"symbol: a/b\ngrid: {{lower: 1, upper: 2, levels: 3}}\nqty_per_order: {text}\n")
    assert c.qty_per_order == D(expected)


@pytest.mark.parametrize("text", [".inf", "-.inf", ".nan", ".NaN"])
def test_yaml_infinity_and_nan_are_refused_as_config_errors(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^qty_per_order: .*finite"):
        config_from_text(f"symbol: a/b\ngrid: {{lower: 1, upper: 2, levels: 3}}\nqty_per_order: {text}\n")


@pytest.mark.parametrize("text", ["NaN", "Infinity"])
def test_json_infinity_and_nan_are_refused(text: str) -> None:
    doc = '{"symbol": "a/b", "grid": {"lower": 1, "upper": 2, "levels": 3}, "qty_per_order": ' + text + "}"
    with pytest.raises(ConfigError, match=r"^qty_per_order: .*finite"):
        config_from_text(doc, fmt="json")


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("[1, 2]", "yaml", "the config must be a mapping"),
        ("a: [", "yaml", "not valid YAML"),
        ('{"symbol": "A/B",', "json", "not valid JSON"),
        ("42", "json", "the config must be a mapping"),
    ],
)
def test_unparsable_text(text: str, fmt: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_text(text, fmt=fmt)  # type: ignore[arg-type]


def test_round_trip_through_dict_json_and_yaml() -> None:
    c = config_from_text(YAML_TEXT)
    data = config_to_dict(c)
    assert data["qty_per_order"] == "0.002"  # decimals as strings
    assert data["grid"]["lower"] == "25000.5"
    assert parse_config(data) == c
    assert config_from_text(json.dumps(data), fmt="json") == c
    assert config_from_text(yaml.safe_dump(data)) == c


def test_defaults() -> None:
    c = parse_config(BASE)
    assert c.grid.type is GridType.ARITHMETIC
    assert c.fees.maker == D("0.001") and c.fees.taker == D("0.001")
    assert c.trailing.rebound_pct == 0 and c.trailing.pullback_pct == 0 and c.trailing.order_type == "market"
    assert c.slippage == D("0.0005") and c.participation is None
    assert c.layers == [] and c.risk == [] and c.investment is None


def test_config_is_frozen() -> None:
    c = parse_config(BASE)
    with pytest.raises(Exception, match="frozen"):
        c.qty_per_order = D(2)  # type: ignore[misc]


def test_custom_grid() -> None:
    c = parse_config(cfg(grid={"type": "custom", "prices": ["0.5", 1, "1.25"]}))
    assert c.grid.prices == [D("0.5"), D(1), D("1.25")]
    assert c.level_count == 3


def test_investment_alone_is_enough() -> None:
    c = parse_config(cfg(qty_per_order=None, investment="1000"))
    assert c.investment == D(1000) and c.qty_per_order is None


def test_risk_rules_are_part_of_the_config() -> None:
    rule = {"name": "floor", "when": {"metric": "price", "op": "<", "value": 95}, "action": "stop_buying"}
    c = parse_config(cfg(risk=[rule]))
    assert [r.name for r in c.risk] == ["floor"]
    with pytest.raises(ConfigError, match=r"risk\.0"):
        parse_config(cfg(risk=[{**rule, "colour": "red"}]))


# ---------------------------------------------------------------------------------------------- refusals

INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("lower above upper", {"grid": {"lower": 140, "upper": 100, "levels": 5}},
     r"^grid\.lower: lower \(140\) must be below upper \(100\)$"),
    ("lower equals upper", {"grid": {"lower": 100, "upper": 100, "levels": 5}}, r"^grid\.lower: .*below upper"),
    ("one level", {"grid": {"lower": 100, "upper": 140, "levels": 1}}, r"^grid\.levels: .*greater than or equal to 2"),
    ("zero levels", {"grid": {"lower": 100, "upper": 140, "levels": 0}}, r"^grid\.levels: "),
    ("too many levels", {"grid": {"lower": 100, "upper": 140, "levels": 1001}}, r"^grid\.levels: .*1000"),
    ("negative lower", {"grid": {"lower": -1, "upper": 140, "levels": 5}}, r"^grid\.lower: .*greater than 0"),
    ("zero lower", {"grid": {"lower": 0, "upper": 140, "levels": 5}}, r"^grid\.lower: .*greater than 0"),
    ("missing upper", {"grid": {"lower": 100, "levels": 5}}, r"^grid\.upper: required for a arithmetic grid"),
    ("missing levels", {"grid": {"type": "geometric", "lower": 1, "upper": 2}}, r"^grid\.levels: required"),
    ("unknown grid type", {"grid": {"type": "log", "lower": 1, "upper": 2, "levels": 3}}, r"^grid\.type: "),
    ("negative qty", {"qty_per_order": "-1"}, r"^qty_per_order: Input should be greater than 0$"),
    ("zero qty", {"qty_per_order": 0}, r"^qty_per_order: Input should be greater than 0$"),
    ("zero investment", {"investment": 0}, r"^investment: Input should be greater than 0$"),
    ("negative investment", {"investment": "-5", "qty_per_order": None}, r"^investment: .*greater than 0"),
    ("missing sizing", {"qty_per_order": None}, r"^investment: give investment \(quote\) and/or qty_per_order"),
    ("text qty", {"qty_per_order": "lots"}, r"^qty_per_order: "),
    ("custom out of order", {"grid": {"type": "custom", "prices": [1, 3, 2]}},
     r"^grid\.prices: prices must be strictly increasing"),
    ("custom duplicated", {"grid": {"type": "custom", "prices": [1, 2, 2]}},
     r"^grid\.prices: prices must be strictly increasing \(sorted, no duplicates\)"),
    ("custom single price", {"grid": {"type": "custom", "prices": [1]}}, r"^grid\.prices: .*at least 2"),
    ("custom empty", {"grid": {"type": "custom", "prices": []}}, r"^grid\.prices: .*at least 2"),
    ("custom without prices", {"grid": {"type": "custom"}}, r"^grid\.prices: "),
    ("custom negative price", {"grid": {"type": "custom", "prices": [-1, 2]}}, r"^grid\.prices\.0: .*greater than 0"),
    ("custom with bounds", {"grid": {"type": "custom", "prices": [1, 2], "lower": 1}},
     r"^grid: a custom grid takes 'prices' only"),
    ("arithmetic with prices", {"grid": {"lower": 1, "upper": 2, "levels": 3, "prices": [1, 2]}},
     r"^grid\.prices: only a custom grid takes 'prices'"),
    ("unknown top-level key", {"foo": 1}, r"^foo: unknown key$"),
    ("unknown grid key", {"grid": {"lower": 100, "upper": 140, "levels": 5, "step": 10}}, r"^grid\.step: unknown key$"),
    ("unknown fees key", {"fees": {"maker": "0.001", "makr": 1}}, r"^fees\.makr: unknown key$"),
    ("unknown trailing key", {"trailing": {"rebound": 1}}, r"^trailing\.rebound: unknown key$"),
    ("unknown layer key", {"layers": [{"level": 0, "qtty": 1}]}, r"^layers\.0\.qtty: unknown key$"),
    ("layer out of range", {"layers": [{"level": 4}]},
     r"^layers\.0\.level: layer 4 does not exist \(a 5-level grid has layers 0\.\.3\)$"),
    ("layer duplicated", {"layers": [{"level": 1}, {"level": 2}, {"level": 1}]},
     r"^layers\.2\.level: layer 1 is configured twice$"),
    ("layer negative", {"layers": [{"level": -1}]}, r"^layers\.0\.level: .*greater than or equal to 0"),
    ("layer zero qty", {"layers": [{"level": 0, "qty": 0}]}, r"^layers\.0\.qty: .*greater than 0"),
    ("layer negative qty", {"layers": [{"level": 0, "qty": "-0.1"}]}, r"^layers\.0\.qty: .*greater than 0"),
    ("layer zero take-profit", {"layers": [{"level": 0, "take_profit_pct": 0}]}, r"^layers\.0\.take_profit_pct: "),
    ("layer negative rebound", {"layers": [{"level": 0, "rebound_pct": -1}]}, r"^layers\.0\.rebound_pct: "),
    ("rebound 100 %", {"trailing": {"rebound_pct": 100}}, r"^trailing\.rebound_pct: .*less than 100"),
    ("negative pullback", {"trailing": {"pullback_pct": "-0.1"}}, r"^trailing\.pullback_pct: "),
    ("bad trailing order type", {"trailing": {"order_type": "stop"}},
     r"^trailing\.order_type: Input should be 'market' or 'limit'$"),
    ("fee of 100 %", {"fees": {"maker": 1}}, r"^fees\.maker: .*less than 1"),
    ("negative fee", {"fees": {"taker": "-0.001"}}, r"^fees\.taker: "),
    ("slippage of 100 %", {"slippage": 1}, r"^slippage: .*less than 1"),
    ("zero participation", {"participation": 0}, r"^participation: .*greater than 0"),
    ("participation above 1", {"participation": "1.5"}, r"^participation: .*less than or equal to 1"),
    ("symbol without slash", {"symbol": "BTCUSDT"}, r"^symbol: String should match pattern"),
    ("missing symbol", {"symbol": None}, r"^symbol: Field required$"),
    ("missing grid", {"grid": None}, r"^grid: Field required$"),
]


@pytest.mark.parametrize(("changes", "message"), [(c, m) for _, c, m in INVALID], ids=[n for n, _, _ in INVALID])
def test_invalid_config_is_refused_naming_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(cfg(**changes))


def test_several_errors_are_all_reported() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(cfg(foo=1, slippage=2, fees={"maker": 2}))
    text = str(info.value)
    assert "foo: unknown key" in text and "slippage: " in text and "fees.maker: " in text


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown key"):
        parse_config(cfg(bar=2))


# ---------------------------------------------------------------------------------------------- schema


def test_json_schema_describes_the_fields() -> None:
    schema = GridConfig.model_json_schema()
    assert set(schema["properties"]) == {"symbol", "grid", "investment", "qty_per_order", "fees", "trailing",
                                         "layers", "risk", "slippage", "participation"}
    assert set(schema["required"]) == {"symbol", "grid"}
    assert schema["additionalProperties"] is False
    defs = schema["$defs"]
    assert set(defs["GridSpec"]["properties"]) == {"type", "lower", "upper", "levels", "prices"}
    assert defs["GridSpec"]["additionalProperties"] is False
    assert set(defs["LayerOverride"]["properties"]) == {"level", "qty", "enabled", "rebound_pct", "pullback_pct",
                                                       "take_profit_pct"}
    assert set(defs["Trailing"]["properties"]) == {"rebound_pct", "pullback_pct", "order_type"}
    assert set(defs["Fees"]["properties"]) == {"maker", "taker"}
    assert set(defs["GridType"]["enum"]) == {"arithmetic", "geometric", "custom"}
    assert "RiskRule" in defs
    json.dumps(schema)  # JSON-able


def test_strategy_schema_is_the_config_schema() -> None:
    from gridfleet.engine.strategies.grid import GridStrategy

    assert GridStrategy.config_schema() == GridConfig.model_json_schema()
