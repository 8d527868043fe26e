"""Start after stop: a new run (fresh runtime id and log, the current config) trades again through the server
runtime; the old run's log stays intact; history and analytics span both runs; a double start runs one runner."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections
from rest_framework.test import APIClient

from gridfleet.server.bots.models import Bot, BotStatus
from gridfleet.server.bots.services import BotOperationError, run_action
from gridfleet.server.trading import models as m
from gridfleet.server.trading.runtime import ServerRuntime
from gridfleet.server.trading.service import set_runtime
from gridfleet.server.users.models import User

from .helpers import GRID
from .test_runtime import scripted_venue, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def owner() -> User:
    return User.objects.create_user("restart-owner", password="x-Pass-12345")


@pytest.fixture
def runtime() -> Iterator[ServerRuntime]:
    rt = ServerRuntime(reconcile_every=3600, venue_factory=scripted_venue(delay=0.005))
    set_runtime(rt)
    yield rt
    set_runtime(None)
    rt.shutdown()


def _api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _settled(bot: Bot) -> int:
    """Wait until the scripted price path is done (no new fill for 0.5 s); return the fill count."""
    last = -1
    while True:
        count = m.Fill.objects.filter(bot=bot).count()
        if count == last:
            return count
        last = count
        time.sleep(0.5)


def _bot(owner: User) -> Bot:
    return Bot.objects.create(owner=owner, name="again", symbol="BTC/USDT", config=GRID)


def test_start_stop_start_trades_again_in_a_new_run(runtime: ServerRuntime, owner: User) -> None:
    api = _api(owner)
    bot = _bot(owner)
    assert api.post(f"/api/v1/bots/{bot.pk}/start/", {}, format="json").status_code == 200
    wait_for(lambda: m.Fill.objects.filter(bot=bot).count() >= 6)
    first_rid = Bot.objects.get(pk=bot.pk).runtime_id
    stopped = api.post(f"/api/v1/bots/{bot.pk}/stop/", {}, format="json")
    assert stopped.status_code == 200, stopped.json()
    assert stopped.json()["status"] == "stopped"
    run1_events = list(m.BotEventLog.objects.filter(bot=bot, run=1).order_by("id").values_list("id", "kind"))
    assert run1_events[-1][1] == "stop"
    run1_fills = m.Fill.objects.filter(bot=bot, run=1).count()
    assert not m.Order.objects.filter(bot=bot, run=1, status__in=["open", "pending"]).exists()  # canceled at stop

    # edit the config while stopped: the new run starts with it
    new_config = {**GRID, "grid": {**GRID["grid"], "levels": 9}}
    edited = api.post(f"/api/v1/bots/{bot.pk}/config/", {"config": new_config}, format="json")
    assert edited.status_code in (200, 201), edited.content
    restarted = api.post(f"/api/v1/bots/{bot.pk}/start/", {}, format="json")
    assert restarted.status_code == 200, restarted.json()
    bot.refresh_from_db()
    assert bot.status == BotStatus.RUNNING and bot.runtime_id != first_rid
    wait_for(lambda: m.Fill.objects.filter(bot=bot, run=2).count() >= 6)
    _settled(bot)

    # run 2: own runtime id as client-id prefix, own log starting with a fresh start, the edited config
    assert runtime.status(bot.pk)["bot_id"] == bot.runtime_id
    assert len(runtime.status(bot.pk)["strategy"]["levels"]) == 9
    run2_kinds = list(m.BotEventLog.objects.filter(bot=bot, run=2).order_by("id").values_list("kind", flat=True))
    assert run2_kinds[0] == "start" and "stop" not in run2_kinds
    assert all(o.startswith(f"{bot.runtime_id}-") for o in
               m.Order.objects.filter(bot=bot, run=2).values_list("client_id", flat=True))
    assert all(o.startswith(f"{first_rid}-") for o in
               m.Order.objects.filter(bot=bot, run=1).values_list("client_id", flat=True))
    # run 1's log and fills are untouched
    assert list(m.BotEventLog.objects.filter(bot=bot, run=1).order_by("id").values_list("id", "kind")) == run1_events
    assert m.Fill.objects.filter(bot=bot, run=1).count() == run1_fills

    # history shows both runs
    runs = api.get(f"/api/v1/bot-runs/?bot={bot.pk}").json()["results"]
    assert [(r["number"], r["runtime_id"]) for r in runs] == [(1, first_rid), (2, bot.runtime_id)]
    assert runs[0]["ended_at"] is not None and runs[1]["ended_at"] is None
    assert runs[0]["config"]["grid"]["levels"] == 11 and runs[1]["config"]["grid"]["levels"] == 9
    fills = api.get(f"/api/v1/fills/?bot={bot.pk}&limit=500").json()
    assert {f["run"] for f in fills["results"]} == {1, 2}
    assert fills["count"] == m.Fill.objects.filter(bot=bot).count()
    only2 = api.get(f"/api/v1/fills/?bot={bot.pk}&run=2&limit=500").json()
    assert only2["count"] == m.Fill.objects.filter(bot=bot, run=2).count()
    assert {f["run"] for f in only2["results"]} == {2}
    assert {o["run"] for o in api.get(f"/api/v1/orders/?bot={bot.pk}&limit=500").json()["results"]} == {1, 2}
    assert {e["run"] for e in api.get(f"/api/v1/events/?bot={bot.pk}&limit=500").json()["results"]} == {1, 2}
    csv = api.get(f"/api/v1/fills/?bot={bot.pk}&format=csv")
    assert csv.status_code == 200
    # analytics span both runs
    analytics = api.get(f"/api/v1/analytics/bots/{bot.pk}/")
    assert analytics.status_code == 200, analytics.content
    assert str(m.Fill.objects.filter(bot=bot).count()) in analytics.content.decode()

    # a server restart resumes run 2 from run 2's log only (run 1's stop is never replayed)
    runtime.hosted.unhost(bot.pk)  # the process goes away: its bots stop being hosted, orders stay
    again = ServerRuntime(reconcile_every=3600, venue_factory=scripted_venue(delay=0.005))
    set_runtime(again)
    try:
        assert again.resume_all() == [bot.pk]
        assert again.status(bot.pk)["state"] == "running" and again.status(bot.pk)["bot_id"] == bot.runtime_id
        n2 = m.BotEventLog.objects.filter(bot=bot, run=2).count()
        assert m.JournalEntry.objects.filter(bot=bot, run=2, message__startswith="resumed from").exists()
        resumed = m.JournalEntry.objects.filter(bot=bot, run=2, message__startswith="resumed from").last()
        assert resumed is not None and int(resumed.message.split()[2]) <= n2
        assert not m.JournalEntry.objects.filter(bot=bot, run=1, message__startswith="resumed from").exists()
    finally:
        again.shutdown()
        set_runtime(runtime)


def test_three_runs_each_with_its_own_log(runtime: ServerRuntime, owner: User) -> None:
    bot = _bot(owner)
    for number in (1, 2, 3):
        run_action(Bot.objects.get(pk=bot.pk), "start")
        wait_for(lambda n=number: m.Fill.objects.filter(bot=bot, run=n).count() >= 2)
        run_action(Bot.objects.get(pk=bot.pk), "stop")
    assert list(m.BotRun.objects.filter(bot=bot).values_list("number", flat=True)) == [1, 2, 3]
    assert m.BotRun.objects.filter(bot=bot, ended_at__isnull=True).count() == 0
    assert len(set(m.BotRun.objects.filter(bot=bot).values_list("runtime_id", flat=True))) == 3
    for number in (1, 2, 3):
        kinds = list(m.BotEventLog.objects.filter(bot=bot, run=number).order_by("id").values_list("kind", flat=True))
        assert kinds[0] == "start" and kinds[-1] == "stop" and kinds.count("stop") == 1


def test_concurrent_starts_of_a_stopped_bot_run_one_runner(runtime: ServerRuntime, owner: User) -> None:
    bot = _bot(owner)
    run_action(bot, "start")
    run_action(Bot.objects.get(pk=bot.pk), "stop")
    barrier = threading.Barrier(4)
    outcomes: list[Any] = []

    def start() -> None:
        try:
            barrier.wait(5)
            outcomes.append(run_action(Bot.objects.get(pk=bot.pk), "start").status)
        except BotOperationError as exc:
            outcomes.append(exc.status)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes, key=str) == sorted([BotStatus.RUNNING, 409, 409, 409], key=str), outcomes
    assert m.BotRun.objects.filter(bot=bot).count() == 2
    bot.refresh_from_db()
    assert list(runtime.hosted.runners) == [bot.pk]
    assert runtime.hosted.runners[bot.pk].bot_id == bot.runtime_id
    assert len(runtime.hosted.host.bots) == 1
    wait_for(lambda: m.Fill.objects.filter(bot=bot, run=2).count() >= 2)
    # one runner: run 2's log has exactly one start
    assert m.BotEventLog.objects.filter(bot=bot, run=2, kind="start").count() == 1
