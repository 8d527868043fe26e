"""Orders, fills, events and positions: scoping, filters, pagination, ordering, CSV/XLSX exports."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from openpyxl import load_workbook
from rest_framework.test import APIClient

from gridfleet.server.users.models import User
from tests.server.trading_api.factories import (
    DAY,
    HOUR,
    T0,
    exact_values,
    make_bot,
    populate_client_bot,
    populate_other_bot,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(admin_user: User, agent_user: User, client_user: User, stranger_user: User) -> dict[str, Any]:
    """A bot for the client (hand-computed), the agent and the stranger."""
    client_bot = make_bot(client_user, "client-eth")
    rows = populate_client_bot(client_bot)
    agent_bot = make_bot(agent_user, "agent-btc", "BTC/USDT")
    populate_other_bot(agent_bot, "agent")
    stranger_bot = make_bot(stranger_user, "stranger-btc", "BTC/USDT")
    populate_other_bot(stranger_bot, "stranger")
    return {"client_bot": client_bot, "agent_bot": agent_bot, "stranger_bot": stranger_bot, **rows}


def _bots(rows: list[dict[str, Any]]) -> set[int]:
    return {r["bot"] for r in rows}


@pytest.mark.parametrize("endpoint", ["orders", "fills", "events"])
def test_scoping(endpoint: str, world: dict[str, Any], api_for: Callable[[User | None], APIClient],
                 admin_user: User, agent_user: User, client_user: User, stranger_user: User) -> None:
    cb, ab, sb = world["client_bot"].pk, world["agent_bot"].pk, world["stranger_bot"].pk
    expected = {admin_user: {cb, ab, sb}, agent_user: {cb, ab}, client_user: {cb}, stranger_user: {sb}}
    for user, bots in expected.items():
        body = api_for(user).get(f"/api/v1/{endpoint}/?limit=500").json()
        assert _bots(body["results"]) == bots, user.username
    # a single row outside the scope is 404, inside it is 200
    stranger_row = api_for(stranger_user).get(f"/api/v1/{endpoint}/").json()["results"][0]["id"]
    assert api_for(client_user).get(f"/api/v1/{endpoint}/{stranger_row}/").status_code == 404
    assert api_for(agent_user).get(f"/api/v1/{endpoint}/{stranger_row}/").status_code == 404
    assert api_for(admin_user).get(f"/api/v1/{endpoint}/{stranger_row}/").status_code == 200
    assert api_for(None).get(f"/api/v1/{endpoint}/").status_code == 401
    # exports are scoped too
    text = api_for(client_user).get(f"/api/v1/{endpoint}/?format=csv").getvalue().decode()
    assert {int(r["bot"]) for r in csv.DictReader(io.StringIO(text))} == {cb}


def test_read_only(world: dict[str, Any], client_api: APIClient) -> None:
    fill = world["fills"][0]
    assert client_api.post("/api/v1/fills/", {}, format="json").status_code == 405
    assert client_api.delete(f"/api/v1/fills/{fill.pk}/").status_code == 405
    assert client_api.patch(f"/api/v1/orders/{world['orders'][0].pk}/", {"status": "x"}, format="json").status_code \
        == 405


def test_fill_fields_and_exact_decimals(world: dict[str, Any], client_api: APIClient) -> None:
    body = client_api.get("/api/v1/fills/").json()
    assert body["count"] == 4
    first = body["results"][0]
    assert first["price"] == "100" and first["amount"] == "1" and first["fee"] == "0.1"
    assert first["side"] == "buy" and first["ts"] == T0 + HOUR and first["time"] == "2024-01-01T01:00:00.000Z"
    order = client_api.get(f"/api/v1/orders/{world['orders'][4].pk}/").json()
    assert (order["price"], order["amount"]) == exact_values()
    assert order["filled"] == "0"


def test_filters(world: dict[str, Any], agent_api: APIClient) -> None:
    cb = world["client_bot"].pk

    def ids(url: str) -> list[int]:
        response = agent_api.get(url)
        assert response.status_code == 200, response.content
        return [r["id"] for r in response.json()["results"]]

    fills = world["fills"]
    assert ids(f"/api/v1/fills/?bot={cb}") == [f.pk for f in fills]
    assert ids(f"/api/v1/fills/?bot={cb}&side=sell") == [fills[2].pk, fills[3].pk]
    assert ids("/api/v1/fills/?symbol=eth/usdt&side=BUY") == [fills[0].pk, fills[1].pk]
    # from inclusive, to exclusive; ISO and ms
    assert ids(f"/api/v1/fills/?bot={cb}&from={T0 + 2 * HOUR}&to={T0 + 2 * DAY + HOUR}") == [fills[1].pk, fills[2].pk]
    assert ids("/api/v1/fills/?symbol=ETH/USDT&from=2024-01-02&to=2024-01-03T01:00:00Z") == [fills[2].pk]
    assert ids("/api/v1/fills/?symbol=ETH/USDT&from=2024-01-02T00:00:00%2B00:00") == [fills[2].pk, fills[3].pk]
    assert agent_api.get("/api/v1/fills/?from=yesterday").status_code == 400
    orders = world["orders"]
    assert ids(f"/api/v1/orders/?bot={cb}&status=filled") == [o.pk for o in orders[:3]]
    assert ids(f"/api/v1/orders/?bot={cb}&status=open,canceled") == [orders[3].pk, orders[4].pk]
    assert ids(f"/api/v1/orders/?bot={cb}&from=2024-01-02&to=2024-01-04") == [orders[2].pk, orders[3].pk]
    journal = world["journal"]
    assert ids(f"/api/v1/events/?bot={cb}&kind=warning,risk") == [journal[1].pk, journal[2].pk]
    assert ids(f"/api/v1/events/?bot={cb}&from={T0 + DAY}") == [journal[1].pk, journal[2].pk]
    # another user's bot id filters to nothing (not an error, nothing leaks)
    assert ids(f"/api/v1/fills/?bot={world['stranger_bot'].pk}") == []


def test_pagination_and_ordering(world: dict[str, Any], client_api: APIClient) -> None:
    fills = world["fills"]
    page = client_api.get("/api/v1/fills/?limit=2&offset=1").json()
    assert page["count"] == 4 and [r["id"] for r in page["results"]] == [fills[1].pk, fills[2].pk]
    assert page["next"] and page["previous"]
    by_price = client_api.get("/api/v1/fills/?ordering=-price").json()["results"]
    assert [r["price"] for r in by_price] == ["110", "100", "90", "80"]
    by_ts = client_api.get("/api/v1/events/?ordering=-ts").json()["results"]
    assert [r["kind"] for r in by_ts] == ["risk", "warning", "state"]


def test_csv_export(world: dict[str, Any], client_api: APIClient) -> None:
    response = client_api.get("/api/v1/orders/?format=csv&limit=1")  # an export ignores pagination
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="orders-')
    assert response["Content-Disposition"].endswith('.csv"')
    assert response.streaming
    rows = list(csv.DictReader(io.StringIO(response.getvalue().decode())))
    assert len(rows) == 5
    assert (rows[4]["price"], rows[4]["amount"]) == exact_values()
    assert rows[4]["status"] == "open" and rows[0]["created_at"] == "2024-01-01T01:00:00Z"
    fills = list(csv.DictReader(io.StringIO(
        client_api.get("/api/v1/fills/?format=csv&side=sell").getvalue().decode())))
    assert [(r["price"], r["amount"], r["fee"]) for r in fills] == [("110", "1", "0.11"), ("80", "0.5", "0.04")]
    assert fills[0]["time"] == "2024-01-02T01:00:00.000Z" and fills[0]["is_maker"] == "true"
    events = list(csv.DictReader(io.StringIO(
        client_api.get("/api/v1/events/?format=csv&kind=risk").getvalue().decode())))
    assert len(events) == 1 and events[0]["message"] == "drawdown 5 %"
    assert events[0]["data"] == '{"rule": "dd", "value": "5.25"}'


def test_xlsx_export(world: dict[str, Any], client_api: APIClient) -> None:
    response = client_api.get("/api/v1/fills/?format=xlsx")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response["Content-Disposition"].endswith('.xlsx"')
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    header, data = rows[0], rows[1:]
    assert header[:7] == ["id", "bot", "trade_id", "client_id", "symbol", "side", "price"]
    assert len(data) == 4
    record = dict(zip(header, data[3], strict=True))
    assert record["price"] == "80" and record["amount"] == "0.5" and record["fee"] == "0.04"  # text, not floats
    orders = load_workbook(io.BytesIO(client_api.get("/api/v1/orders/?format=xlsx&status=open").content)).active
    values = [list(r) for r in orders.iter_rows(values_only=True)]
    assert dict(zip(values[0], values[1], strict=True))["price"] == exact_values()[0]


def test_positions(world: dict[str, Any], api_for: Callable[[User | None], APIClient], client_user: User,
                   agent_user: User, stranger_user: User) -> None:
    body = api_for(client_user).get("/api/v1/positions/").json()
    assert body["count"] == 1
    pos = body["results"][0]
    assert pos["bot"] == world["client_bot"].pk and pos["symbol"] == "ETH/USDT"
    assert pos["base_held"] == "0.5"
    assert pos["cost_basis"] == "47.5475"
    assert pos["avg_entry_price"] == "95.095"
    assert pos["realized_pnl"] == "7.2075"
    assert pos["grid_profit"] == "5.5"
    assert pos["last_price"] == "100"
    assert pos["unrealized_pnl"] == "2.4525"
    assert pos["fills"] == 4 and pos["last_fill_ts"] == T0 + 2 * DAY + HOUR
    agent = api_for(agent_user).get("/api/v1/positions/").json()["results"]
    assert {p["bot"] for p in agent} == {world["client_bot"].pk, world["agent_bot"].pk}
    agent_pos = next(p for p in agent if p["bot"] == world["agent_bot"].pk)
    assert agent_pos["base_held"] == "0" and agent_pos["avg_entry_price"] is None
    assert agent_pos["realized_pnl"] == "8.99"  # 510 − 0.51 − (500 + 0.5)
    only = api_for(agent_user).get(f"/api/v1/positions/?bot={world['agent_bot'].pk}").json()["results"]
    assert [p["bot"] for p in only] == [world["agent_bot"].pk]
    assert api_for(agent_user).get("/api/v1/positions/?symbol=BTC/USDT").json()["count"] == 1
    stranger = api_for(stranger_user).get("/api/v1/positions/").json()["results"]
    assert [p["bot"] for p in stranger] == [world["stranger_bot"].pk]


def test_position_with_base_fees_and_no_snapshot(client_user: User, client_api: APIClient) -> None:
    from tests.server.trading_api.factories import add_fill

    bot = make_bot(client_user, "base-fees")
    add_fill(bot, 1, "buy", "100", "2", "0.002", T0, fee_ccy="ETH")  # 1.998 ETH for 200 USDT
    add_fill(bot, 2, "sell", "120", "1", "0.12", T0 + HOUR)
    pos = client_api.get(f"/api/v1/positions/?bot={bot.pk}").json()["results"][0]
    assert pos["base_held"] == "0.998"
    # average cost 200 / 1.998; 1 ETH released at that cost
    from decimal import Decimal

    avg = Decimal(200) / Decimal("1.998")
    assert Decimal(pos["realized_pnl"]) == Decimal("119.88") - avg
    assert pos["grid_profit"] is None and pos["last_price"] == "120"  # no snapshot: last fill price
