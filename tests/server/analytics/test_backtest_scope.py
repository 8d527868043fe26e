"""Who reads which backtest jobs: the owner; an agent its own and its clients' (read-only); an admin all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from gridfleet.server.analytics.models import BacktestJob
from gridfleet.server.users.models import User

pytestmark = pytest.mark.django_db
URL = "/api/v1/backtests/"
CONFIG: dict[str, Any] = {"symbol": "ETH/USDT", "grid": {"type": "arithmetic", "lower": 3100, "upper": 3400,
                                                         "levels": 31}, "investment": 5000}


def _ids(api: APIClient, query: str = "") -> set[int]:
    response = api.get(URL + query)
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_scope_of_backtest_jobs(admin_user: User, agent_user: User, client_user: User, stranger_user: User,
                                api_for: Callable[[User | None], APIClient]) -> None:
    jobs = {u.username: BacktestJob.objects.create(owner=u, config=CONFIG, data={"file": "x.csv"}, status="done",
                                                   summary={"total_return": "0.1"})
            for u in (admin_user, agent_user, client_user, stranger_user)}
    every = {j.pk for j in jobs.values()}
    expected = {"admin": every, "agent": {jobs["agent"].pk, jobs["client"].pk}, "client": {jobs["client"].pk},
                "stranger": {jobs["stranger"].pk}}
    users = {"admin": admin_user, "agent": agent_user, "client": client_user, "stranger": stranger_user}
    for name, user in users.items():
        api = api_for(user)
        assert _ids(api) == expected[name], name
        for owner, job in jobs.items():
            detail = api.get(f"{URL}{job.pk}/")
            if job.pk in expected[name]:
                assert detail.status_code == 200 and detail.json()["owner"] == users[owner].pk
                assert detail.json()["summary"] == {"total_return": "0.1"}
            else:
                assert detail.status_code == 404, (name, owner)
        # only their own with ?mine=1; ?owner= narrows inside the scope, someone else's id is like a missing one
        assert _ids(api, "?mine=1") == {jobs[name].pk}
        assert _ids(api, f"?owner={client_user.pk}") == ({jobs["client"].pk} if name != "stranger" else set())
        assert _ids(api, "?owner=987654321") == set()
    assert api_for(admin_user).get(URL + "?owner=abc").status_code == 400
    assert api_for(None).get(URL).status_code == 401


def test_agents_and_admins_cannot_change_others_jobs(agent_user: User, client_user: User, admin_user: User,
                                                     api_for: Callable[[User | None], APIClient]) -> None:
    job = BacktestJob.objects.create(owner=client_user, config=CONFIG, data={"file": "x.csv"})
    for user in (agent_user, admin_user):
        api = api_for(user)
        for method in ("put", "patch", "delete"):
            assert getattr(api, method)(f"{URL}{job.pk}/", {}, format="json").status_code == 405
    job.refresh_from_db()
    assert job.owner_id == client_user.pk and job.status == "queued"
