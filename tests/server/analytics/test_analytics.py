"""Bot and user analytics against hand-computed figures; scoping of users and bots."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from gridfleet.backtest.metrics import YEAR_MS
from gridfleet.server.trading.models import EquitySnapshot
from gridfleet.server.users.models import User
from tests.server.trading_api.factories import (
    DAY,
    HOUR,
    T0,
    add_snapshot,
    make_bot,
    populate_client_bot,
    populate_other_bot,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(agent_user: User, client_user: User, stranger_user: User) -> dict[str, Any]:
    """The hand-computed client bot plus unrelated bots of the agent and the stranger."""
    client_bot = make_bot(client_user, "client-eth")
    populate_client_bot(client_bot)
    agent_bot = make_bot(agent_user, "agent-btc", "BTC/USDT")
    populate_other_bot(agent_bot, "agent")
    stranger_bot = make_bot(stranger_user, "stranger-btc", "BTC/USDT")
    populate_other_bot(stranger_bot, "stranger")
    return {"client_bot": client_bot, "agent_bot": agent_bot, "stranger_bot": stranger_bot}


def _sharpe(returns: list[float]) -> float:
    mean = sum(returns) / len(returns)
    var = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    return mean / math.sqrt(var) * math.sqrt(365)


def test_bot_analytics_hand_computed(world: dict[str, Any], client_api: APIClient) -> None:
    bot = world["client_bot"]
    response = client_api.get(f"/api/v1/analytics/bots/{bot.pk}/")
    assert response.status_code == 200
    a = response.json()
    assert (a["bot"], a["symbol"], a["currency"]) == (bot.pk, "ETH/USDT", "USDT")
    assert a["grid_profit"] == "5.5"
    assert a["realized_pnl"] == "7.2075"
    assert a["unrealized_pnl"] == "2.4525"
    assert a["base_held"] == "0.5" and a["avg_entry_price"] == "95.095" and a["last_price"] == "100"
    assert a["fees"] == {"USDT": "0.34"} and (a["buy_fills"], a["sell_fills"]) == (2, 2)
    assert (a["initial_equity"], a["final_equity"], a["total_pnl"]) == ("1000", "1030", "30")
    assert a["total_return_pct"] == pytest.approx(3.0)
    elapsed = 2 * DAY + HOUR
    assert a["annualized_return_pct"] == pytest.approx((1.03 ** (YEAR_MS / elapsed) - 1) * 100)
    assert a["max_drawdown_pct"] == pytest.approx(20 / 1010 * 100)
    assert a["sharpe"] == pytest.approx(_sharpe([0.01, 990 / 1010 - 1, 1030 / 990 - 1]))
    assert a["win_rate"] == pytest.approx(50.0) and a["closing_sells"] == 2
    assert a["duration_days"] == pytest.approx(elapsed / DAY)
    assert a["snapshots"] == 5 and (a["first_ts"], a["last_ts"]) == (T0, T0 + 2 * DAY + HOUR)
    assert a["equity_curve"] == [[T0, "1000"], [T0 + 12 * HOUR, "1010"], [T0 + DAY, "990"], [T0 + 2 * DAY, "1020"],
                                 [T0 + 2 * DAY + HOUR, "1030"]]
    assert a["daily"] == [
        {"date": "2024-01-01", "equity": "1010", "profit": "10", "realized": "0"},
        {"date": "2024-01-02", "equity": "990", "profit": "-20", "realized": "14.795"},
        {"date": "2024-01-03", "equity": "1030", "profit": "40", "realized": "-7.5875"},
    ]


def test_bot_without_data(client_user: User, client_api: APIClient) -> None:
    bot = make_bot(client_user, "empty")
    a = client_api.get(f"/api/v1/analytics/bots/{bot.pk}/").json()
    assert a["realized_pnl"] == "0" and a["unrealized_pnl"] is None and a["grid_profit"] == "0"
    assert a["total_return_pct"] is None and a["win_rate"] is None
    assert a["equity_curve"] == [] and a["daily"] == []


def test_equity_curve_is_resampled(client_user: User, client_api: APIClient) -> None:
    bot = make_bot(client_user, "long")
    EquitySnapshot.objects.bulk_create([
        EquitySnapshot(bot=bot, ts=T0 + i * 60_000, price=Decimal(100), equity=Decimal(1000 + i % 7),
                       grid_profit=0, realized_pnl=0, unrealized_pnl=0, base=0, quote_flow=0)
        for i in range(5000)
    ])
    a = client_api.get(f"/api/v1/analytics/bots/{bot.pk}/").json()
    curve = a["equity_curve"]
    assert 2 <= len(curve) <= 2000
    assert curve[0] == [T0, "1000"] and curve[-1] == [T0 + 4999 * 60_000, str(1000 + 4999 % 7)]
    assert a["snapshots"] == 5000 and len(a["daily"]) == 4  # 5000 minutes span 4 UTC days


def test_bot_scoping(world: dict[str, Any], api_for: Callable[[User | None], APIClient], admin_user: User,
                     agent_user: User, client_user: User, stranger_user: User) -> None:
    cb, sb = world["client_bot"].pk, world["stranger_bot"].pk
    assert api_for(agent_user).get(f"/api/v1/analytics/bots/{cb}/").status_code == 200
    assert api_for(admin_user).get(f"/api/v1/analytics/bots/{sb}/").status_code == 200
    assert api_for(client_user).get(f"/api/v1/analytics/bots/{sb}/").status_code == 404
    assert api_for(agent_user).get(f"/api/v1/analytics/bots/{sb}/").status_code == 404
    assert api_for(stranger_user).get(f"/api/v1/analytics/bots/{cb}/").status_code == 404
    assert api_for(None).get(f"/api/v1/analytics/bots/{cb}/").status_code == 401


def test_user_scoping(world: dict[str, Any], api_for: Callable[[User | None], APIClient], admin_user: User,
                      agent_user: User, client_user: User, stranger_user: User) -> None:
    def code(who: User, whom: User) -> int:
        return api_for(who).get(f"/api/v1/analytics/users/{whom.pk}/").status_code

    assert code(client_user, client_user) == 200
    assert code(agent_user, client_user) == 200 and code(agent_user, agent_user) == 200
    assert code(admin_user, stranger_user) == 200
    assert code(agent_user, stranger_user) == 404 and code(client_user, agent_user) == 404
    assert code(stranger_user, client_user) == 404 and code(client_user, stranger_user) == 404
    assert api_for(None).get("/api/v1/analytics/me/").status_code == 401


def test_user_analytics_matches_single_bot(world: dict[str, Any], agent_api: APIClient, client_user: User,
                                           client_api: APIClient) -> None:
    mine = client_api.get("/api/v1/analytics/me/").json()
    theirs = agent_api.get(f"/api/v1/analytics/users/{client_user.pk}/").json()
    assert mine == theirs
    assert mine["user"] == client_user.pk and mine["bots"] == 1 and mine["currencies"] == ["USDT"]
    bot = client_api.get(f"/api/v1/analytics/bots/{world['client_bot'].pk}/").json()
    for key in ("grid_profit", "realized_pnl", "unrealized_pnl", "total_pnl", "total_return_pct", "sharpe",
                "max_drawdown_pct", "win_rate", "equity_curve", "daily"):
        assert mine[key] == bot[key], key
    agent = agent_api.get("/api/v1/analytics/me/").json()  # the agent's own bots only
    assert agent["bots"] == 1 and agent["per_bot"][0]["bot"] == world["agent_bot"].pk
    assert agent["realized_pnl"] == "8.99"


def test_user_analytics_aggregates_bots(world: dict[str, Any], client_user: User, client_api: APIClient) -> None:
    second = make_bot(client_user, "client-second")
    add_snapshot(second, T0 + DAY, "200", grid_profit="1")
    add_snapshot(second, T0 + 2 * DAY + HOUR, "220", grid_profit="2")
    a = client_api.get("/api/v1/analytics/me/").json()
    assert a["bots"] == 2
    assert a["grid_profit"] == "7.5" and a["realized_pnl"] == "7.2075"
    # the second bot's capital counts from the start (its first equity carried back)
    assert [e for _, e in a["equity_curve"]] == ["1200", "1210", "1190", "1220", "1250"]
    assert a["total_pnl"] == "50" and a["total_return_pct"] == pytest.approx(50 / 1200 * 100)
    assert a["max_drawdown_pct"] == pytest.approx(20 / 1210 * 100)
    assert [d["profit"] for d in a["daily"]] == ["10", "-20", "60"]
    assert [p["equity"] for p in a["per_bot"]] == ["1030", "220"]
