"""GET /api/v1/bots/{id}/state/ from the in-process runtime and from the database; snapshot diffs as rows."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from gridfleet.exchanges.paper import PaperExchange
from gridfleet.server.bots.models import Bot, BotStatus
from gridfleet.server.trading import models as m
from gridfleet.server.trading.runtime import HostedBots, ServerRuntime
from gridfleet.server.trading.service import set_runtime
from gridfleet.server.users.models import User
from tests.server.trading.helpers import GRID, ScriptedPrices, zigzag
from tests.waiting import wait_for

SOURCES: list[ScriptedPrices] = []


def _venue(prices: list[Decimal]) -> Callable[[Bot, HostedBots], PaperExchange]:
    def make(bot: Bot, hosted: HostedBots) -> PaperExchange:
        SOURCES.append(ScriptedPrices(prices, delay=0.002))
        return PaperExchange(SOURCES[-1], bot.symbol,
                             balances={"USDT": Decimal(5000), "BTC": Decimal(0)},
                             maker_fee=Decimal("0.001"), taker_fee=Decimal("0.001"))
    return make


@pytest.fixture
def runtime_factory() -> Iterator[Callable[[list[Decimal]], ServerRuntime]]:
    made: list[ServerRuntime] = []

    def make(prices: list[Decimal]) -> ServerRuntime:
        rt = ServerRuntime(reconcile_every=3600, venue_factory=_venue(prices))
        set_runtime(rt)
        made.append(rt)
        return rt

    yield make
    set_runtime(None)
    for rt in made:
        rt.shutdown()


@pytest.mark.django_db(transaction=True)
def test_state_of_a_running_bot_and_the_same_profit_from_the_database(
        users: dict[str, User], client_for: Callable[[str | None], APIClient],
        runtime_factory: Callable[[list[Decimal]], ServerRuntime]) -> None:
    runtime = runtime_factory(zigzag(4))
    bot = Bot.objects.create(owner=users["alice"], name="live one", symbol="BTC/USDT", config=GRID)
    api = client_for("alice")
    assert api.post(f"/api/v1/bots/{bot.pk}/start/").status_code == 200
    wait_for(lambda: m.Fill.objects.filter(bot=bot, side="sell").count() >= 6)
    wait_for(lambda: SOURCES[-1].done.is_set())  # every scripted price consumed: the state stands still
    time.sleep(0.2)
    live = api.get(f"/api/v1/bots/{bot.pk}/state/")
    assert live.status_code == 200, live.content
    state = live.json()
    assert state["source"] == "runtime" and state["status"] == "running" and state["strategy_state"] == "running"
    assert state["levels"] == [str(p) for p in range(90, 111, 2)]
    assert len(state["layers"]) == 10
    assert {lay["state"] for lay in state["layers"]} <= {"resting", "waiting", "armed", "suspended"}
    open_orders = state["open_orders"]
    assert open_orders and all(o["status"] in ("open", "pending", "partially_filled") for o in open_orders)
    resting = {lay["client_id"] for lay in state["layers"] if lay["state"] == "resting"}
    assert resting == {o["client_id"] for o in open_orders if o["tag"] == "grid"}
    for order in open_orders:
        assert order["level"] is not None and state["levels"][order["level"]] == order["price"]
    assert Decimal("97") <= Decimal(state["last_price"]) <= Decimal("98")  # the last tick, or the fill it caused
    pnl = state["pnl"]
    assert Decimal(pnl["grid_profit"]) > 0 and pnl["sell_fills"] >= 6
    per_level = state["per_level_profit"]
    assert per_level and sum(Decimal(r["profit"]) for r in per_level) == Decimal(pnl["grid_profit"])
    assert all(r["round_trips"] >= 1 and Decimal(r["sell_price"]) > Decimal(r["buy_price"]) for r in per_level)
    assert Decimal(state["position"]["base"]) >= 0

    # the same bot answered from the database (as when it runs in a worker): same orders, same profit per level
    set_runtime(None)
    stored = api.get(f"/api/v1/bots/{bot.pk}/state/").json()
    assert stored["source"] == "database"
    assert stored["open_orders"] == open_orders
    assert [(r["layer"], r["round_trips"]) for r in stored["per_level_profit"]] == \
        [(r["layer"], r["round_trips"]) for r in per_level]
    for a, b in zip(stored["per_level_profit"], per_level, strict=True):
        assert abs(Decimal(a["profit"]) - Decimal(b["profit"])) < Decimal("1e-9"), (a, b)
    assert stored["position"]["base"] == state["position"]["base"]
    assert {lay["index"] for lay in stored["layers"] if lay["state"] == "resting"} == \
        {lay["index"] for lay in state["layers"] if lay["state"] == "resting"}
    set_runtime(runtime)
    assert client_for("bob").get(f"/api/v1/bots/{bot.pk}/state/").status_code == 404
    assert client_for("agent").get(f"/api/v1/bots/{bot.pk}/state/").status_code == 404  # alice has no agent
    assert client_for(None).get(f"/api/v1/bots/{bot.pk}/state/").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_trailing_layers_show_their_arm_and_trigger_prices(
        users: dict[str, User], client_for: Callable[[str], APIClient],
        runtime_factory: Callable[[list[Decimal]], ServerRuntime]) -> None:
    # start at 100 (levels 90, 92 … 110; level 5 empty), dip to 97.9: layer 4 (buy at 98) arms and tracks the low
    # 97.9; its rebound fires at 97.9 × 1.01 = 98.879; layer 3 waits for 96
    runtime_factory([Decimal(p) for p in ("100", "98.5", "97.9")])
    config = {**GRID, "trailing": {"rebound_pct": "1", "pullback_pct": "1"}}
    bot = Bot.objects.create(owner=users["alice"], name="trailing", symbol="BTC/USDT", config=config)
    api = client_for("alice")
    assert api.post(f"/api/v1/bots/{bot.pk}/start/").status_code == 200

    def armed() -> list[dict[str, Any]]:
        layers = api.get(f"/api/v1/bots/{bot.pk}/state/").json()["layers"]
        return [lay for lay in layers if lay["state"] == "armed"]

    (layer,) = wait_for(armed)
    assert layer["index"] == 4 and layer["side"] == "buy" and layer["extreme"] == "97.9"
    assert Decimal(layer["trigger_price"]) == Decimal("97.9") * Decimal("1.01")
    state = api.get(f"/api/v1/bots/{bot.pk}/state/").json()
    waiting = {lay["index"]: lay for lay in state["layers"] if lay["state"] == "waiting"}
    assert waiting[3]["arm_price"] == "96" and waiting[3]["side"] == "buy" and waiting[3]["rebound_pct"] == "1"
    assert not state["open_orders"] or all(o["tag"] == "initial" for o in state["open_orders"])


@pytest.mark.django_db
def test_state_from_the_database_pairs_layer_sells_with_their_buys(
        users: dict[str, User], client_for: Callable[[str], APIClient]) -> None:
    bot = Bot.objects.create(owner=users["alice"], name="stored", symbol="BTC/USDT", config=GRID,
                             status=BotStatus.STOPPED)
    rid = bot.runtime_id

    def fill(cid: str, side: str, price: str, amount: str, ts: int, fee: str = "0.1") -> None:
        m.Fill.objects.create(bot=bot, trade_id=f"t{ts}", client_id=cid, symbol="BTC/USDT", side=side,
                              price=Decimal(price), amount=Decimal(amount), fee=Decimal(fee), fee_currency="USDT",
                              ts=ts, is_maker=True, order_complete=True)

    fill(f"{rid}-init", "buy", "100", "5", 1, "0.5")  # base for the five sell layers (5..9)
    fill(f"{rid}-5-1s", "sell", "102", "1", 2)  # layer 5 sells initial base bought at 100.1 (fees included)
    fill(f"{rid}-4-1b", "buy", "98", "1", 3)
    fill(f"{rid}-4-2s", "sell", "100", "1", 4)  # layer 4: 100 − 0.1 − (98 + 0.1)
    m.Order.objects.create(bot=bot, client_id=f"{rid}-4-3b", symbol="BTC/USDT", side="buy", type="limit",
                           amount=Decimal("1"), price=Decimal("98"), level=4, tag="grid", status="open")
    m.EquitySnapshot.objects.create(bot=bot, ts=5, price=Decimal("99"), equity=Decimal("1"), grid_profit=0,
                                    realized_pnl=0, unrealized_pnl=0, base=Decimal("4"), quote_flow=0)
    state = client_for("alice").get(f"/api/v1/bots/{bot.pk}/state/").json()
    assert state["source"] == "database" and state["status"] == "stopped" and state["last_price"] == "99"
    assert state["per_level_profit"] == [
        {"layer": 4, "buy_price": "98", "sell_price": "100", "round_trips": 1, "profit": "1.8"},
        {"layer": 5, "buy_price": "100", "sell_price": "102", "round_trips": 1, "profit": "1.8"},
    ]
    assert state["pnl"]["grid_profit"] == "3.6"
    assert state["position"]["base"] == "4" and state["position"]["avg_entry_price"] == "99.7"  # average cost
    assert Decimal(state["pnl"]["unrealized"]) == 4 * (Decimal("99") - Decimal("99.7"))
    (order,) = state["open_orders"]
    assert order["layer"] == 4 and order["level"] == 4 and order["price"] == "98" and order["side"] == "buy"
    assert state["layers"][4]["state"] == "resting" and state["layers"][3]["state"] is None


@pytest.mark.django_db
def test_config_history_has_the_diff_as_rows(users: dict[str, User], client_for: Callable[[str], APIClient]) -> None:
    api = client_for("alice")
    bot = api.post("/api/v1/bots/", {"name": "edited", "symbol": "BTC/USDT", "config": GRID}, format="json").json()
    new = {**GRID, "grid": {**GRID["grid"], "lower": "88"}, "trailing": {"rebound_pct": "0.5"},
           "participation": "0.5"}
    assert api.post(f"/api/v1/bots/{bot['id']}/config/", {"config": new, "note": "wider"},
                    format="json").status_code == 200
    snaps = api.get(f"/api/v1/bots/{bot['id']}/snapshots/").json()
    assert [s["version"] for s in snaps] == [1, 2] and snaps[0]["changes"] == []
    rows = {r["path"]: r for r in snaps[1]["changes"]}
    assert rows["grid.lower"] == {"path": "grid.lower", "kind": "changed", "old": "90", "new": "88"}
    assert rows["trailing.rebound_pct"]["old"] == "0" and rows["trailing.rebound_pct"]["new"] == "0.5"
    assert rows["participation"] == {"path": "participation", "kind": "changed", "old": None, "new": "0.5"}
    assert [r["path"] for r in snaps[1]["changes"]] == sorted(rows)
    assert snaps[1]["note"] == "wider" and snaps[1]["created_by_username"] == "alice"
