"""Fees API: every endpoint for user, agent, admin, stranger and anonymous; exports; refusals without data."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from gridfleet.server.fees.models import AgentProfile, CommissionLine, FeeSettings, Settlement, UserFeeProfile
from gridfleet.server.fees.services import settle_bot
from gridfleet.server.users.models import User
from tests.server.fees.conftest import FakeRuntime, add_snapshot, day, fund, make_priced_bot

D = Decimal


@pytest.fixture
def setup(client_user: User, agent_user: User, stranger_user: User, admin_user: User) -> dict[str, Any]:
    AgentProfile.objects.create(agent=agent_user, commission_rate=D("0.2"))
    UserFeeProfile.objects.create(user=client_user, rate=D("0.1"))
    fund(client_user, "100")
    bot = make_priced_bot(client_user)
    add_snapshot(bot, day(1), "120")
    line = settle_bot(bot, "2026-01-06", day(1, hours=23)).settlement
    assert line is not None and line.fee_units == 20 * 10**8
    fund(stranger_user, "100")
    sbot = make_priced_bot(stranger_user, "stranger bot")
    add_snapshot(sbot, day(1), "110")
    sline = settle_bot(sbot, "2026-01-06", day(1, hours=23)).settlement
    return {"bot": bot, "line": line, "sbot": sbot, "sline": sline}


def _ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.content
    return sorted(row["id"] for row in response.json()["results"])


def _refused(response: Any, code: int) -> None:
    assert response.status_code == code, response.content
    body = response.json()
    assert set(body) <= {"detail", "code"}, body  # no data in a refusal


def test_statements_are_scoped(setup: dict[str, Any], client_api: APIClient, agent_api: APIClient,
                               stranger_api: APIClient, admin_api: APIClient, anon_api: APIClient) -> None:
    line, sline = setup["line"], setup["sline"]
    assert _ids(client_api.get("/api/v1/billing/statements/")) == [line.pk]
    assert _ids(agent_api.get("/api/v1/billing/statements/")) == [line.pk]
    assert _ids(stranger_api.get("/api/v1/billing/statements/")) == [sline.pk]
    assert _ids(admin_api.get("/api/v1/billing/statements/")) == sorted([line.pk, sline.pk])
    assert _ids(admin_api.get(f"/api/v1/billing/statements/?user={sline.user_id}")) == [sline.pk]
    assert _ids(admin_api.get(f"/api/v1/billing/statements/?bot={line.bot_id}&period=2026-01-06")) == [line.pk]
    _refused(anon_api.get("/api/v1/billing/statements/"), 401)
    _refused(stranger_api.get(f"/api/v1/billing/statements/{line.pk}/"), 404)
    row = client_api.get(f"/api/v1/billing/statements/{line.pk}/").json()
    assert (row["fee"], row["net_profit"], row["hwm_before"], row["hwm_after"], row["rate"], row["equity"]) == (
        "20", "200", "0", "200", "0.1", "1200")
    assert row["commission"] == "4" and row["status"] == "paid" and row["mark_source"] == "snapshot"


def test_statement_exports(setup: dict[str, Any], client_api: APIClient) -> None:
    response = client_api.get("/api/v1/billing/statements/?format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    header, first = text.splitlines()[:2]
    assert header.startswith("id,bot,bot_name,symbol,user,username,period")
    assert ",20," in first and "2026-01-06" in first
    response = client_api.get("/api/v1/billing/statements/?format=xlsx")
    assert response.status_code == 200
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "id" and "20" in rows[1]


def test_refund_endpoint(setup: dict[str, Any], client_api: APIClient, agent_api: APIClient,
                         stranger_api: APIClient, admin_api: APIClient) -> None:
    line = setup["line"]
    url = f"/api/v1/billing/statements/{line.pk}/refund/"
    body = {"fraction": "0.5", "reason": "support ticket 7"}
    _refused(client_api.post(url, body, format="json"), 403)
    _refused(agent_api.post(url, body, format="json"), 403)
    _refused(stranger_api.post(url, body, format="json"), 404)
    assert admin_api.post(url, {"reason": "x"}, format="json").status_code == 400
    assert admin_api.post(url, {"fraction": "0.5", "amount": "1", "reason": "x"}, format="json").status_code == 400
    assert admin_api.post(url, {"amount": "0.000000001", "reason": "x"}, format="json").status_code == 400
    response = admin_api.post(url, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["refund"]["amount"] == "10" and response.json()["statement"]["refunded"] == "10"
    assert CommissionLine.objects.get(settlement=line).clawed_back_units == 2 * 10**8
    response = admin_api.post(url, {"amount": "11", "reason": "too much"}, format="json")
    assert response.status_code == 400 and "at most 10" in response.json()["detail"]


def test_settle_endpoint(setup: dict[str, Any], client_api: APIClient, agent_api: APIClient,
                         stranger_api: APIClient, admin_api: APIClient, runtime: FakeRuntime) -> None:
    for api in (client_api, agent_api, stranger_api):
        _refused(api.post("/api/v1/billing/settle/", {}, format="json"), 403)
    bot = setup["bot"]
    add_snapshot(bot, day(2), "130")
    response = admin_api.post("/api/v1/billing/settle/", {"period": "2026-01-07", "bot": bot.pk}, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["period"], data["settled"], data["fees"]) == ("2026-01-07", 1, "10")
    again = admin_api.post("/api/v1/billing/settle/", {"period": "2026-01-07", "bot": bot.pk}, format="json").json()
    assert again["settled"] == 0 and again["results"][0]["skipped"] == "already settled"
    bad = admin_api.post("/api/v1/billing/settle/", {"period": "yesterday"}, format="json")
    assert bad.status_code == 400 and "period" in bad.json()
    assert admin_api.post("/api/v1/billing/settle/", {"bot": 999999}, format="json").status_code == 404


def test_fee_settings_and_rates(setup: dict[str, Any], client_user: User, stranger_user: User, agent_user: User,
                                client_api: APIClient, agent_api: APIClient, stranger_api: APIClient,
                                admin_api: APIClient) -> None:
    for api in (client_api, agent_api, stranger_api):
        _refused(api.get("/api/v1/billing/fee-settings/"), 403)
        _refused(api.put("/api/v1/billing/fee-settings/", {"default_rate": "0.1"}, format="json"), 403)
    response = admin_api.put("/api/v1/billing/fee-settings/", {"default_rate": "0.15", "min_rate": "0.05",
                                                                "max_rate": "0.3"}, format="json")
    assert response.status_code == 200 and response.json()["default_rate"] == "0.15"
    bad = admin_api.put("/api/v1/billing/fee-settings/", {"default_rate": "0.4"}, format="json")
    assert bad.status_code == 400 and "default_rate" in bad.json()
    assert FeeSettings.current().default_rate == D("0.15")
    # reading: the user itself, its agent, admins; nobody else
    url = f"/api/v1/billing/fee-rates/{client_user.pk}/"
    assert client_api.get(url).json()["rate"] == "0.1"
    assert agent_api.get(url).status_code == 200 and admin_api.get(url).status_code == 200
    _refused(stranger_api.get(url), 404)
    assert stranger_api.get(f"/api/v1/billing/fee-rates/{stranger_user.pk}/").json()["rate"] == "0.15"
    # writing: the agent within the bounds, admins; not the user, not strangers
    _refused(client_api.put(url, {"rate": "0.05"}, format="json"), 403)
    _refused(stranger_api.put(url, {"rate": "0.05"}, format="json"), 404)
    out = agent_api.put(url, {"rate": "0.5"}, format="json")
    assert out.status_code == 400 and "rate" in out.json()
    _refused(agent_api.put(url, {"rate": "0.2", "min_balance": "5"}, format="json"), 403)
    assert agent_api.put(url, {"rate": "0.2"}, format="json").json()["rate"] == "0.2"
    _refused(agent_api.put(f"/api/v1/billing/fee-rates/{stranger_user.pk}/", {"rate": "0.2"}, format="json"), 404)
    _refused(agent_api.put(f"/api/v1/billing/fee-rates/{agent_user.pk}/", {"rate": "0.05"}, format="json"), 403)
    done = admin_api.put(url, {"rate": "0.9", "min_balance": "5"}, format="json").json()
    assert (done["rate"], done["min_balance"]) == ("0.9", "5")
    assert admin_api.put(url, {"rate": None}, format="json").json()["rate"] == "0.15"
    assert admin_api.put(url, {"rate": "1.5"}, format="json").status_code == 400


def test_commission_rates(setup: dict[str, Any], agent_user: User, client_user: User, client_api: APIClient,
                          agent_api: APIClient, stranger_api: APIClient, admin_api: APIClient) -> None:
    url = f"/api/v1/billing/agent-commissions/{agent_user.pk}/"
    assert agent_api.get(url).json()["commission_rate"] == "0.2"
    _refused(agent_api.put(url, {"commission_rate": "0.9"}, format="json"), 403)
    _refused(client_api.get(url), 404)
    _refused(stranger_api.put(url, {"commission_rate": "0.9"}, format="json"), 404)
    assert admin_api.put(url, {"commission_rate": "0.25"}, format="json").json()["commission_rate"] == "0.25"
    assert admin_api.put(url, {"commission_rate": "2"}, format="json").status_code == 400
    _refused(admin_api.get(f"/api/v1/billing/agent-commissions/{client_user.pk}/"), 404)


def test_agent_summary(setup: dict[str, Any], agent_user: User, client_user: User, client_api: APIClient,
                       agent_api: APIClient, admin_api: APIClient, stranger_api: APIClient,
                       anon_api: APIClient) -> None:
    for api in (client_api, admin_api, stranger_api):
        _refused(api.get("/api/v1/agents/me/"), 403)
    _refused(anon_api.get("/api/v1/agents/me/"), 401)
    data = agent_api.get("/api/v1/agents/me/").json()
    assert [c["username"] for c in data["clients"]] == ["client"]
    assert data["clients"][0]["fees"] == "20" and data["clients"][0]["running_bots"] == 1
    assert [b["id"] for b in data["running_bots"]] == [setup["bot"].pk]
    assert data["fees_generated"] == "20"
    assert data["commission"] == {"earned": "4", "pending": "4", "withdrawable": "0", "paid": "0"}
    assert data["periods"] == [{"period": "2026-01-06", "fees": "20", "commission": "4"}]
    CommissionLine.objects.update(created_at=setup["line"].created_at - timedelta(days=30))
    assert agent_api.get("/api/v1/agents/me/").json()["commission"]["withdrawable"] == "4"


def test_revenue(setup: dict[str, Any], client_api: APIClient, agent_api: APIClient, stranger_api: APIClient,
                 admin_api: APIClient) -> None:
    for api in (client_api, agent_api, stranger_api):
        _refused(api.get("/api/v1/billing/revenue/"), 403)
    data = admin_api.get("/api/v1/billing/revenue/").json()
    # client: fee 20, commission 4; stranger: net 100 at the default 0.2 → fee 20, no agent
    assert (data["fees_collected"], data["commission"], data["platform_revenue"]) == ("40", "4", "36")
    assert data["periods"][0]["period"] == "2026-01-06"
    assert admin_api.get("/api/v1/billing/revenue/?period_from=2026-02-01").json()["fees_collected"] == "0"


def test_capital_endpoint(setup: dict[str, Any], client_api: APIClient, agent_api: APIClient,
                          stranger_api: APIClient, admin_api: APIClient, runtime: FakeRuntime) -> None:
    bot = setup["bot"]
    url = f"/api/v1/billing/bots/{bot.pk}/capital/"
    assert client_api.get(url).json()["capital"] == "1000"
    assert agent_api.get(url).status_code == 200
    _refused(stranger_api.get(url), 404)
    body = {"action": "add", "amount": "250.5", "idempotency_key": "add-1"}
    _refused(agent_api.post(url, body, format="json"), 403)
    _refused(stranger_api.post(url, body, format="json"), 404)
    response = client_api.post(url, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["capital"] == "1250.5" and response.json()["settlement"] is None
    assert client_api.post(url, body, format="json").json()["capital"] == "1250.5"  # idempotent
    assert client_api.post(url, {"action": "add", "amount": "-1"}, format="json").status_code == 400
    assert client_api.post(url, {"action": "add", "amount": "1.123456789"}, format="json").status_code == 400
    assert client_api.post(url, {"action": "steal", "amount": "1"}, format="json").status_code == 400
    # the bot holds 250.5 of free quote (capital 1250.5 − 1000 spent)
    too_much = client_api.post(url, {"action": "withdraw", "amount": "300"}, format="json")
    assert too_much.status_code == 400 and "holds" in too_much.json()["detail"]
    done = admin_api.post(url, {"action": "withdraw", "amount": "50"}, format="json")
    assert done.status_code == 201 and done.json()["settlement"]["reason"] == "withdrawal"
    assert done.json()["capital"] == "1200.5"
    assert Settlement.objects.filter(bot=bot, reason="withdrawal").count() == 1


def test_guard_standing(setup: dict[str, Any], client_api: APIClient, anon_api: APIClient) -> None:
    data = client_api.get("/api/v1/billing/guard/").json()
    assert (data["balance"], data["fees_due"], data["guard"]) == ("80", "0", "ok")
    _refused(anon_api.get("/api/v1/billing/guard/"), 401)


def test_decimal_strings_never_floats(setup: dict[str, Any], admin_api: APIClient) -> None:
    rows = admin_api.get("/api/v1/billing/statements/").json()["results"]
    for row in rows:
        for key in ("equity", "net_profit", "fee", "hwm_after", "rate"):
            assert isinstance(row[key], str)


def test_stranger_cannot_probe(make_user: Callable[..., User], api_for: Callable[..., APIClient]) -> None:
    other = make_user("other")
    api = api_for(other)
    _refused(api.get("/api/v1/billing/bots/999999/capital/"), 404)
    _refused(api.get("/api/v1/billing/statements/999999/"), 404)


def test_export_with_an_out_of_range_filter_is_a_400_not_a_broken_stream(setup: dict[str, Any],
                                                                         admin_api: APIClient) -> None:
    response = admin_api.get("/api/v1/billing/statements/?user=-1.6e42&format=csv")
    if response.status_code == 200:  # PostgreSQL: an out-of-range id matches nothing
        assert len(b"".join(response.streaming_content).decode().splitlines()) == 1
    else:  # SQLite: the value cannot be bound; refused before the body starts
        assert response.status_code == 400


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/api/v1/billing/statements/"), ("get", "/api/v1/billing/statements/1/"),
    ("post", "/api/v1/billing/statements/1/refund/"), ("post", "/api/v1/billing/settle/"),
    ("get", "/api/v1/billing/fee-settings/"), ("put", "/api/v1/billing/fee-settings/"),
    ("get", "/api/v1/billing/fee-rates/1/"), ("put", "/api/v1/billing/fee-rates/1/"),
    ("get", "/api/v1/billing/agent-commissions/1/"), ("put", "/api/v1/billing/agent-commissions/1/"),
    ("get", "/api/v1/billing/bots/1/capital/"), ("post", "/api/v1/billing/bots/1/capital/"),
    ("get", "/api/v1/billing/revenue/"), ("get", "/api/v1/billing/guard/"), ("get", "/api/v1/agents/me/"),
])
def test_anonymous_is_refused_everywhere(anon_api: APIClient, method: str, path: str, db: None) -> None:
    _refused(getattr(anon_api, method)(path, {}, format="json"), 401)
