"""GET /api/v1/strategies/ and POST /api/v1/grid/preview/ (against the fake Binance's rules and price)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from gridfleet.engine.config import GridConfig
from gridfleet.engine.preview import preview_grid
from gridfleet.markets import MarketRules

pytestmark = pytest.mark.django_db
PREVIEW = "/api/v1/grid/preview/"


def grid(lower: str = "95000", upper: str = "105000", levels: int = 11, **extra: Any) -> dict[str, Any]:
    return {"symbol": "BTC/USDT", "grid": {"type": "arithmetic", "lower": lower, "upper": upper, "levels": levels},
            "investment": "1000", **extra}


# ------------------------------------------------------------------------------------------------ strategies
def _number_or_string(node: Any) -> Any:
    """Yield every ``anyOf`` that still offers both a number and a string."""
    if isinstance(node, dict):
        types = {o.get("type") for o in node.get("anyOf", []) if isinstance(o, dict)}
        if {"number", "string"} <= types:
            yield node
        for value in node.values():
            yield from _number_or_string(value)
    elif isinstance(node, list):
        for value in node:
            yield from _number_or_string(value)


def test_strategies_list_the_grid_with_a_form_friendly_schema(client_for: Callable[[str | None], APIClient]) -> None:
    assert client_for(None).get("/api/v1/strategies/").status_code == 401
    response = client_for("alice").get("/api/v1/strategies/")
    assert response.status_code == 200
    (grid_strategy,) = [s for s in response.json() if s["name"] == "grid"]
    assert grid_strategy["title"] and grid_strategy["description"] and grid_strategy["supports_preview"]
    schema = grid_strategy["config_schema"]
    assert schema["required"] == ["symbol", "grid"] and schema["additionalProperties"] is False
    investment = schema["properties"]["investment"]
    assert investment["type"] == ["string", "null"] and investment["format"] == "decimal"
    assert investment["exclusiveMinimum"] == 0 and investment["description"] and investment["title"]
    defs = schema["$defs"]
    assert defs["GridType"]["enum"] == ["arithmetic", "geometric", "custom"]
    levels = defs["GridSpec"]["properties"]["levels"]
    assert {"type": "integer", "minimum": 2, "maximum": 1000} in levels["anyOf"]
    maker = defs["Fees"]["properties"]["maker"]
    assert maker["type"] == "string" and maker["default"] == "0.001" and maker["exclusiveMaximum"] == 1
    assert defs["Trailing"]["properties"]["order_type"]["enum"] == ["market", "limit"]
    assert "RiskRule" in defs and schema["properties"]["risk"]["items"] == {"$ref": "#/$defs/RiskRule"}
    assert not list(_number_or_string(schema))  # every Decimal field became one decimal-string field
    # the example is a valid config: a bot can be created from it as is
    created = client_for("alice").post("/api/v1/bots/", {"name": "from example", "symbol": "BTC/USDT",
                                                        "config": grid_strategy["example_config"]}, format="json")
    assert created.status_code == 201, created.content
    GridConfig.model_validate(grid_strategy["example_config"])


# ------------------------------------------------------------------------------------------------ preview
def test_preview_uses_the_venues_price_and_rules(client_for: Callable[[str], APIClient],
                                                 make_account: Callable[..., Any], fake_exchange_url: str) -> None:
    account = make_account("alice", fake_exchange_url)
    response = client_for("alice").post(PREVIEW, {"exchange_account": account.pk, "config": grid(levels=21)},
                                        format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["price_source"] == "ticker" and body["exchange"] == "binance" and body["symbol"] == "BTC/USDT"
    price = Decimal(body["price"])
    assert Decimal("99000") < price < Decimal("102000")
    market = body["market"]
    assert market["tick_size"] == "0.01" and market["step_size"] == "0.00001"
    step, tick = Decimal(market["step_size"]), Decimal(market["tick_size"])
    levels = body["levels"]
    assert len(levels) == 21 and len(body["layers"]) == 20
    assert [lv["level"] for lv in levels] == list(range(21))
    empty = [lv for lv in levels if lv["side"] == "empty"]
    assert len(empty) == 1 and empty[0]["level"] == body["empty_level"]
    for lv in levels:
        assert Decimal(lv["price"]) % tick == 0
        if lv["side"] in ("buy", "sell"):
            qty = Decimal(lv["qty"])
            assert qty % step == 0 and qty == Decimal(body["qty_per_order"])
            assert Decimal(lv["notional"]) == Decimal(lv["price"]) * qty
            assert (lv["side"] == "buy") == (lv["level"] < body["empty_level"]) and lv["order"] == "limit"
            assert lv["refused"] is None
    inv = body["investment"]
    buys = sum(Decimal(lv["notional"]) for lv in levels if lv["side"] == "buy")
    sells = sum(Decimal(lv["qty"]) for lv in levels if lv["side"] == "sell")
    assert Decimal(inv["quote_for_buys"]) == buys.quantize(Decimal("1e-8"))
    assert Decimal(inv["base_for_sells"]) == sells
    total = Decimal(inv["quote_for_buys"]) + Decimal(inv["initial_buy_quote"]) + Decimal(inv["fee_reserve"])
    assert abs(Decimal(inv["total_quote"]) - total) < Decimal("1e-7")
    assert Decimal(inv["total_quote"]) <= Decimal("1000") * Decimal("1.002")  # the investment sizes the orders
    assert body["buy_orders"] + body["sell_orders"] == 20
    # 500 USDT steps at ~100k: 0.5 % apart, a profit after 0.1 % + 0.1 % fees
    assert all(Decimal(lay["profit"]) > 0 for lay in body["layers"])
    assert Decimal(body["profit_per_grid_pct"]["min"]) > Decimal("0.2")
    assert body["warnings"] == []
    assert body["config"]["fees"] == {"maker": "0.001", "taker": "0.001"}  # the validated config, defaults filled


def test_preview_warns_about_dense_levels_small_orders_and_a_range_that_misses_the_price(
        client_for: Callable[[str], APIClient], make_account: Callable[..., Any], fake_exchange_url: str) -> None:
    account = make_account("alice", fake_exchange_url)
    api = client_for("alice")

    def codes(config: dict[str, Any], **extra: Any) -> dict[str, dict[str, Any]]:
        response = api.post(PREVIEW, {"exchange_account": account.pk, "config": config, **extra}, format="json")
        assert response.status_code == 200, response.content
        return {w["code"]: w for w in response.json()["warnings"]}

    dense = codes(grid("99900", "100100", 41))  # 0.005 % apart: fees exceed every grid profit
    assert dense["levels_too_dense"]["severity"] == "error"
    thin = codes(grid("99000", "101000", 11, fees={"maker": "0.0002", "taker": "0.002"}))  # 0.2 % < 2 × taker
    assert thin["levels_too_dense"]["severity"] == "warning"
    small = api.post(PREVIEW, {"exchange_account": account.pk, "config": grid(levels=11, investment=None,
                                                                              qty_per_order="0.00002")},
                     format="json").json()
    refused = [lv for lv in small["levels"] if lv["refused"]]
    assert refused and {lv["refused"] for lv in refused} == {"MIN_NOTIONAL"}
    assert any(w["code"] == "order_refused" and w["level"] == refused[0]["level"] for w in small["warnings"])
    outside = codes(grid("50000", "60000", 11))
    assert "price_outside_range" in outside
    short = codes(grid(qty_per_order="0.01"))  # 10 orders of ~1,000 USDT with 1,000 USDT
    assert short["investment_short"]["severity"] == "error"
    given = api.post(PREVIEW, {"exchange_account": account.pk, "config": grid(), "price": "97000"},
                     format="json").json()
    assert given["price_source"] == "given" and given["price"] == "97000" and given["empty_level"] == 2


def test_preview_errors_are_400_with_field_messages(client_for: Callable[[str], APIClient],
                                                    make_account: Callable[..., Any], fake_exchange_url: str) -> None:
    account = make_account("alice", fake_exchange_url)
    api = client_for("alice")

    def post(body: dict[str, Any]) -> Any:
        response = api.post(PREVIEW, {"exchange_account": account.pk, **body}, format="json")
        assert response.status_code == 400, response.content
        return response.json()

    assert post({"config": grid("110000", "100000")})["config"] == {
        "grid.lower": ["lower (110000) must be below upper (100000)"]}
    assert "grid.levels" in post({"config": grid(levels=1)})["config"]
    assert post({"config": {**grid(), "typo": 1}})["config"] == {"typo": ["unknown key"]}
    assert "investment" in post({"config": {**grid(), "investment": "-5"}})["config"]
    assert "config" in post({})
    assert "symbol" in post({"config": grid(), "symbol": "ETH/USDT"})["config"]
    unknown = post({"config": {**grid(), "symbol": "DOGE/EUR"}})
    assert "symbol" in unknown
    assert "exchange" in post({"config": grid(), "exchange": "okx"})  # the account is on binance
    assert "price" in post({"config": grid(), "price": "0"})
    assert "mode" in post({"config": grid(), "mode": "margin"})
    collapse = post({"config": grid("100000", "100000.05", 11)})  # 11 levels inside 5 ticks
    assert "grid" in collapse["config"] and "collapse" in collapse["config"]["grid"][0]
    assert "strategy" in post({"config": grid(), "strategy": "dca"})


def test_preview_scoping_and_an_unreachable_venue(client_for: Callable[[str | None], APIClient],
                                                  make_account: Callable[..., Any], dead_url: str,
                                                  fake_exchange_url: str) -> None:
    theirs = make_account("bob", fake_exchange_url)
    assert client_for(None).post(PREVIEW, {"config": grid()}, format="json").status_code == 401
    foreign = client_for("alice").post(PREVIEW, {"exchange_account": theirs.pk, "config": grid()}, format="json")
    missing = client_for("alice").post(PREVIEW, {"exchange_account": 987654321, "config": grid()}, format="json")
    assert foreign.status_code == missing.status_code == 404 and foreign.content == missing.content
    down = make_account("alice", dead_url)
    response = client_for("alice").post(PREVIEW, {"exchange_account": down.pk, "config": grid(), "mode": "live"},
                                        format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["market"] is None and body["price_source"] == "mid_range" and body["price"] == "100000"
    codes = {w["code"] for w in body["warnings"]}
    assert "market_unavailable" in codes and "live_without_account" not in codes
    offline = client_for("alice").post(PREVIEW, {"config": grid(), "offline": True, "mode": "live"},
                                       format="json").json()
    assert offline["market"] is None and {w["code"] for w in offline["warnings"]} == {"live_without_account"}
    synthetic = client_for("alice").post(PREVIEW, {"config": grid(), "exchange": "synthetic", "price": "100020"},
                                         format="json").json()
    assert synthetic["market"]["tick_size"] == "0.01" and synthetic["price"] == "100020"


# ------------------------------------------------------------------------------------------------ engine
def test_engine_preview_matches_the_strategy_start() -> None:
    """The preview's orders are exactly the ones GridStrategy.on_start places."""
    from gridfleet.engine.strategies.grid import GridStrategy
    from gridfleet.engine.types import PlaceOrder

    rules = MarketRules(symbol="BTC/USDT", base="BTC", quote="USDT", tick_size=Decimal("0.01"),
                        step_size=Decimal("0.00001"), min_notional=Decimal("5"))
    config = GridConfig.model_validate({**grid(levels=15), "layers": [{"level": 3, "qty": "0.0004"},
                                                                      {"level": 1, "enabled": False},
                                                                      {"level": 11, "take_profit_pct": "2"}]})
    price = Decimal("100321.37")
    preview = preview_grid(config, price, rules)
    strategy = GridStrategy(config, market=rules)
    places = [i for i in strategy.on_start(price, 0) if isinstance(i, PlaceOrder)]
    initial = [p for p in places if p.tag == "initial"]
    resting = sorted((p.price, p.amount, p.side.value) for p in places if p.tag != "initial")
    shown_buys = sorted((r.price, r.qty, r.side) for r in preview.levels if r.side == "buy")
    assert resting == shown_buys  # sells wait for the initial buy's base
    assert initial[0].amount == preview.base_for_sells
    assert [r.side for r in preview.levels].count("off") == 1
    tiny = preview_grid(GridConfig.model_validate({**grid(levels=5), "investment": None, "qty_per_order": "0.00001"}),
                        Decimal("100000"), rules)
    assert tiny.base_for_sells == Decimal("0.00002")  # 2 USDT: below the 5 USDT minimum of the initial buy
    assert {w.code for w in tiny.warnings} >= {"order_refused", "initial_buy_refused"}
    layer = preview.layers[11]
    assert layer.take_profit_pct == Decimal("2") and layer.sell_price == Decimal("104914.29")  # 102857.14 × 1.02 up


def test_the_cli_preview_uses_the_same_engine_function(tmp_path: Any) -> None:
    import json

    from typer.testing import CliRunner

    from gridfleet.cli.main import app

    path = tmp_path / "grid.json"
    path.write_text(json.dumps(grid(levels=11)))
    result = CliRunner().invoke(app, ["grid", "preview", "-c", str(path), "-p", "100400", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    engine = preview_grid(GridConfig.model_validate(grid(levels=11)), Decimal("100400"))
    assert shown["empty_level_index"] == engine.empty_level == 5
    assert [row["side"] for row in shown["levels"]] == [r.side for r in engine.levels]
    assert Decimal(shown["qty_per_order"]) == engine.qty_per_order
    assert Decimal(shown["quote_needed"]) == engine.total_quote.quantize(Decimal("0.01"))


def test_a_live_preview_checks_the_owners_balances(client_for: Callable[[str], APIClient],
                                                   make_account: Callable[..., Any], fake_exchange_url: str) -> None:
    """The fake exchange's account ``test`` holds 1,000,000 USDT and 10 BTC."""
    account = make_account("client", fake_exchange_url)
    api = client_for("client")
    ok = api.post(PREVIEW, {"exchange_account": account.pk, "config": grid(), "mode": "live"}, format="json").json()
    assert Decimal(ok["balances"]["quote"]) == 1_000_000 and Decimal(ok["balances"]["base"]) == 10
    assert Decimal(ok["balances"]["needed_quote"]) == Decimal(ok["investment"]["quote_with_base"])  # holds the base
    assert not [w for w in ok["warnings"] if w["code"].startswith(("insufficient", "balance"))]
    big = api.post(PREVIEW, {"exchange_account": account.pk, "mode": "live",
                             "config": grid(investment=None, qty_per_order="100")}, format="json").json()
    (short,) = [w for w in big["warnings"] if w["code"] == "insufficient_balance"]
    assert short["severity"] == "error" and "1000000 USDT free" in short["message"]
    assert "BTC needed" in short["message"]  # 10 BTC held, 500 needed: everything counted in quote
    assert Decimal(big["balances"]["needed_quote"]) == Decimal(big["investment"]["total_quote"])
    # the agent may preview with its client's account, but never reads the client's balances with its keys
    agent = client_for("agent").post(PREVIEW, {"exchange_account": account.pk, "config": grid(), "mode": "live"},
                                     format="json").json()
    assert agent["balances"] is None and agent["market"] is not None
    paper = api.post(PREVIEW, {"exchange_account": account.pk, "config": grid()}, format="json").json()
    assert paper["balances"] is None
    wrong = make_account("client", fake_exchange_url)
    wrong.set_credentials("no-such-key-123456", "wrong-secret-987")
    wrong.save()
    refused = api.post(PREVIEW, {"exchange_account": wrong.pk, "config": grid(), "mode": "live"},
                       format="json").json()
    (warning,) = [w for w in refused["warnings"] if w["code"] == "balance_unavailable"]
    assert "no-such-key-123456" not in str(refused) and "wrong-secret-987" not in str(refused)
    assert refused["balances"] is None and "API key" in warning["message"]
