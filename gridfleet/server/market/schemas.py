"""The registered strategies and a form-friendly JSON Schema of their configs (for the web client's editor).

The schema is the engine's pydantic ``model_json_schema()`` with two changes a form renderer needs:

* a ``Decimal`` field (pydantic writes ``anyOf: [number, string]``) becomes one ``{"type": "string",
  "format": "decimal", "pattern": …}`` field that keeps its bounds (``minimum``, ``exclusiveMinimum``,
  ``maximum``, ``exclusiveMaximum``), its default, title and description; a nullable one gets
  ``"type": ["string", "null"]``. Amounts travel as decimal strings, exactly as the API stores them;
* every property gets a ``title`` and, where the engine has none, a ``description`` (English; the web client
  translates by the property path given in ``x-path``).

``$defs`` and ``$ref`` are kept (the risk condition tree is recursive and cannot be inlined).
"""

from __future__ import annotations

import copy
from typing import Any

from gridfleet.engine.strategy import available_strategies, strategy_class

DECIMAL_PATTERN = r"^-?(\d+(\.\d*)?|\.\d+)$"
_BOUNDS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "multipleOf")

STRATEGY_INFO: dict[str, dict[str, str]] = {
    "grid": {
        "title": "Spot grid",
        "description": "Buys at each level below the price and sells one level higher, over and over, inside a "
                       "price range. Layers can rebound-buy / pullback-sell, take profit, be disabled or sized "
                       "on their own; risk rules stop, pause or close the bot.",
    },
}

# Help for properties the engine models leave undocumented: "<Model>.<property>" -> description.
FIELD_HELP: dict[str, str] = {
    "GridConfig.symbol": "Market as BASE/QUOTE, e.g. BTC/USDT.",
    "GridConfig.grid": "Price range and spacing of the levels.",
    "GridConfig.investment": "Quote to put in (e.g. USDT): sizes every order so the whole grid is funded.",
    "GridConfig.qty_per_order": "Base quantity of every order (instead of, or capped by, the investment).",
    "GridConfig.fees": "Fee rates used for profit estimates and paper trading.",
    "GridConfig.trailing": "Rebound buys and pullback sells for every layer (0 = plain limit orders).",
    "GridConfig.layers": "Per-layer settings: a layer is the interval whose buy level is `level` (0 = lowest).",
    "GridConfig.risk": "Risk rules: a condition tree and an action (alert, stop buying, pause, stop, sell).",
    "GridConfig.slippage": "Expected slippage of market orders, as a fraction (0.0005 = 0.05 %).",
    "GridConfig.participation": "Paper/backtest only: at most this fraction of each candle's volume fills.",
    "GridSpec.type": "arithmetic: equal price steps; geometric: equal percentage steps; custom: your prices.",
    "GridSpec.lower": "Lowest level price.",
    "GridSpec.upper": "Highest level price.",
    "GridSpec.levels": "Number of levels, both bounds included (layers = levels − 1).",
    "GridSpec.prices": "Custom grid only: the level prices, strictly increasing.",
    "Fees.maker": "Maker fee as a fraction (0.001 = 0.1 %).",
    "Fees.taker": "Taker fee as a fraction (0.001 = 0.1 %).",
    "Trailing.rebound_pct": "Buy only after the price rebounds this % off its low below the buy level.",
    "Trailing.pullback_pct": "Sell only after the price pulls back this % off its high above the sell level.",
    "Trailing.order_type": "Order sent when a rebound/pullback fires: market, or a marketable limit.",
    "LayerOverride.level": "The layer: the index of its buy level (0 = lowest).",
    "LayerOverride.qty": "This layer's order quantity (base), instead of the grid's.",
    "LayerOverride.enabled": "A disabled layer does not buy (what it holds is still sold).",
    "LayerOverride.rebound_pct": "This layer's rebound %, instead of the grid's.",
    "LayerOverride.pullback_pct": "This layer's pullback %, instead of the grid's.",
    "LayerOverride.take_profit_pct": "Sell at the entry price + this %, instead of at the next level.",
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "grid": {"symbol": "BTC/USDT", "grid": {"type": "arithmetic", "lower": "90000", "upper": "110000",
                                            "levels": 21},
             "investment": "1000", "fees": {"maker": "0.001", "taker": "0.001"},
             "trailing": {"rebound_pct": "0", "pullback_pct": "0", "order_type": "market"}},
}


def _is_decimal_any_of(options: list[Any]) -> bool:
    types = [o.get("type") for o in options if isinstance(o, dict)]
    return "number" in types and "string" in types and set(types) <= {"number", "string", "null"} \
        and all(isinstance(o, dict) and set(o) - {"type", *_BOUNDS} == set() for o in options)


def _decimal_field(node: dict[str, Any]) -> dict[str, Any]:
    options = node["anyOf"]
    number = next(o for o in options if o.get("type") == "number")
    nullable = any(o.get("type") == "null" for o in options)
    out = {k: v for k, v in node.items() if k != "anyOf"}
    out["type"] = ["string", "null"] if nullable else "string"
    out["format"] = "decimal"
    out["pattern"] = DECIMAL_PATTERN
    for bound in _BOUNDS:
        if bound in number:
            out[bound] = number[bound]
    return out


def _walk(node: Any, model: str | None, path: str) -> Any:
    if isinstance(node, list):
        return [_walk(item, model, path) for item in node]
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("anyOf"), list) and _is_decimal_any_of(node["anyOf"]):
        node = _decimal_field(node)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            props = {}
            for name, prop in value.items():
                prop = _walk(prop, model, f"{path}.{name}" if path else name)
                if isinstance(prop, dict):
                    prop.setdefault("title", name.replace("_", " ").capitalize())
                    help_text = FIELD_HELP.get(f"{model}.{name}")
                    if help_text and "description" not in prop:
                        prop["description"] = help_text
                    prop["x-path"] = f"{model}.{name}"
                props[name] = prop
            out[key] = props
        elif key == "$defs" and isinstance(value, dict):
            out[key] = {name: _walk(sub, name, "") for name, sub in value.items()}
        else:
            out[key] = _walk(value, model, path)
    return out


def form_schema(strategy: str) -> dict[str, Any]:
    """Return the form-friendly JSON Schema of ``strategy``'s config (see the module doc)."""
    raw = copy.deepcopy(strategy_class(strategy).config_schema())
    title = str(raw.get("title", "Config"))
    schema: dict[str, Any] = _walk(raw, title, "")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def example_config(strategy: str) -> dict[str, Any]:
    """Return a valid example config of ``strategy`` with every default filled in (amounts as strings)."""
    model = strategy_class(strategy).config_model
    data = EXAMPLES.get(strategy)
    if data is None:
        return {}
    dumped: dict[str, Any] = model.model_validate(data).model_dump(mode="json")
    return dumped


def strategies() -> list[dict[str, Any]]:
    """Return every registered strategy: name, title, description, config schema and an example config."""
    out = []
    for name in available_strategies():
        cls = strategy_class(name)
        info = STRATEGY_INFO.get(name, {})
        doc = (cls.__doc__ or "").strip().splitlines()
        out.append({
            "name": name,
            "title": info.get("title", name.replace("_", " ").capitalize()),
            "description": info.get("description", doc[0] if doc else ""),
            "supports_preview": name == "grid",
            "supports_live_edit": "on_config_change" in vars(cls),
            "config_schema": form_schema(name),
            "example_config": example_config(name),
        })
    return out
