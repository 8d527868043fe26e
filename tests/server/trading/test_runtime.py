"""ServerRuntime (``gridfleet serve``) and the Celery worker hosting loop, on paper bots with scripted prices."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from gridfleet.exchanges.paper import PaperExchange
from gridfleet.server.bots.models import Bot, BotStatus
from gridfleet.server.trading import leases, tasks
from gridfleet.server.trading import models as m
from gridfleet.server.trading.runtime import HostedBots, ServerRuntime
from gridfleet.server.trading.service import set_runtime
from gridfleet.server.trading.tasks import WorkerHost, snapshot_hosted
from gridfleet.server.users.models import User
from tests.waiting import wait_for

from .helpers import GRID, ScriptedPrices, zigzag

pytestmark = pytest.mark.django_db(transaction=True)


def scripted_venue(delay: float = 0.0, rounds: int = 6) -> Callable[[Bot, HostedBots], PaperExchange]:
    def make(bot: Bot, hosted: HostedBots) -> PaperExchange:
        return PaperExchange(ScriptedPrices(zigzag(rounds), delay=delay), bot.symbol,
                             balances={"USDT": Decimal(5000), "BTC": Decimal(0)},
                             maker_fee=Decimal("0.001"), taker_fee=Decimal("0.001"))
    return make


@pytest.fixture
def owner() -> User:
    return User.objects.create_user("runtime-owner", password="x-Pass-12345")


@pytest.fixture
def runtime() -> Iterator[ServerRuntime]:
    rt = ServerRuntime(reconcile_every=3600, venue_factory=scripted_venue(delay=0.005))
    set_runtime(rt)
    yield rt
    set_runtime(None)
    rt.shutdown()


def _bot(owner: User, name: str = "b", status: str = BotStatus.CREATED) -> Bot:
    return Bot.objects.create(owner=owner, name=name, symbol="BTC/USDT", config=GRID, status=status)


def test_server_runtime_runs_commands_reconfigures_and_stops_a_bot(runtime: ServerRuntime, owner: User) -> None:
    bot = _bot(owner)
    runtime.start(bot.pk)
    bot.refresh_from_db()
    assert bot.status == BotStatus.RUNNING
    assert m.BotEventLog.objects.filter(bot=bot, kind="start").count() == 1
    wait_for(lambda: m.Fill.objects.filter(bot=bot).count() >= 6)
    assert runtime.status(bot.pk)["state"] == "running"
    assert m.Order.objects.filter(bot=bot, status="open").exists()

    runtime.command(bot.pk, "pause")
    assert Bot.objects.get(pk=bot.pk).status == BotStatus.PAUSED
    runtime.command(bot.pk, "resume")
    new = {**GRID, "grid": {**GRID["grid"], "levels": 9}}
    runtime.apply_config(bot.pk, new)
    assert m.BotEventLog.objects.filter(bot=bot, kind="config").count() == 1
    assert Bot.objects.get(pk=bot.pk).config["grid"]["levels"] == 9

    runtime.stop(bot.pk)
    bot.refresh_from_db()
    assert bot.status == BotStatus.STOPPED and runtime.status(bot.pk) is None
    assert not m.Order.objects.filter(bot=bot, status__in=["pending", "open", "partially_filled"]).exists()
    with pytest.raises(LookupError):
        runtime.command(bot.pk, "pause")


def test_config_change_inside_the_api_transaction_applies_after_commit(runtime: ServerRuntime,
                                                                       owner: User) -> None:
    """The API hands configs over while it holds the bot row; the runtime must not deadlock on it."""
    from django.db import transaction

    bot = _bot(owner)
    runtime.start(bot.pk)
    new = {**GRID, "grid": {**GRID["grid"], "levels": 13}}
    started = time.monotonic()
    with transaction.atomic():
        Bot.objects.select_for_update().filter(pk=bot.pk).update(config=new)
        runtime.apply_config(bot.pk, new)
    assert time.monotonic() - started < 5
    wait_for(lambda: m.BotEventLog.objects.filter(bot=bot, kind="config").exists())


def test_running_bots_resume_after_a_restart(owner: User) -> None:
    first = ServerRuntime(reconcile_every=3600, venue_factory=scripted_venue(rounds=2))
    bot = _bot(owner)
    idle = _bot(owner, "idle", BotStatus.STOPPED)
    try:
        first.start(bot.pk)
        wait_for(lambda: m.Fill.objects.filter(bot=bot).count() >= 2)
        last_event = m.BotEventLog.objects.filter(bot=bot).latest("id").pk
    finally:
        first.shutdown()  # the process "dies": the status stays running
    assert Bot.objects.get(pk=bot.pk).status == BotStatus.RUNNING
    second = ServerRuntime(reconcile_every=3600, venue_factory=scripted_venue(rounds=2))
    try:
        assert second.resume_all() == [bot.pk]
        assert second.status(idle.pk) is None
        assert m.JournalEntry.objects.filter(bot=bot, message__startswith="resumed from").exists()
        assert not m.BotEventLog.objects.filter(bot=bot, kind="start", id__gt=last_event).exists()  # replayed
        runner = second.hosted.runners[bot.pk]
        assert runner.strategy is not None and runner.strategy.status()["buy_fills"] >= 1
    finally:
        second.shutdown()


def test_a_failing_start_marks_the_bot_error(owner: User) -> None:
    def broken(bot: Bot, hosted: HostedBots) -> PaperExchange:
        raise RuntimeError("venue unavailable")

    rt = ServerRuntime(venue_factory=broken)
    bot = _bot(owner)
    try:
        with pytest.raises(RuntimeError):
            rt.start(bot.pk)
        bot.refresh_from_db()
        assert bot.status == BotStatus.ERROR and "venue unavailable" in bot.status_message
    finally:
        rt.shutdown()


def test_workers_share_bots_and_take_over_a_dead_workers_bots(owner: User, monkeypatch: pytest.MonkeyPatch) -> None:
    bots = [_bot(owner, f"w{i}", BotStatus.RUNNING) for i in range(4)]
    ttl, every = 1.0, 0.25
    w1 = WorkerHost("w1", capacity=2, ttl=ttl, renew_every=every, reconcile_every=3600,
                    venue_factory=scripted_venue(delay=0.01, rounds=20))
    w2 = WorkerHost("w2", capacity=4, ttl=ttl, renew_every=every, reconcile_every=3600,
                    venue_factory=scripted_venue(delay=0.01, rounds=20))
    try:
        w1.step()
        w2.step()
        assert len(w1.hosted.runners) == 2 and len(w2.hosted.runners) == 2
        assert not set(w1.hosted.runners) & set(w2.hosted.runners)
        wait_for(lambda: m.Fill.objects.filter(bot__in=bots).count() >= 4)
        assert snapshot_hosted(w1.hosted) == 2
        assert m.EquitySnapshot.objects.filter(bot_id__in=list(w1.hosted.runners)).count() == 2
        # w1 dies: its loop stops, its leases are not released
        orphans = set(w1.hosted.runners)
        w1.hosted.shutdown()
        died = time.monotonic()
        while not orphans <= set(w2.hosted.runners):
            assert time.monotonic() - died < ttl + 2 * every + 1
            w2.step()
            time.sleep(every)
        assert {leases.holder(b.pk) for b in bots} == {"w2"}
        # a bot stopped through the database desired state is stopped by its worker
        Bot.objects.filter(pk=bots[0].pk).update(status=BotStatus.STOPPED)
        w2.step()
        assert bots[0].pk not in w2.hosted.runners and leases.holder(bots[0].pk) is None
        # the API's runtime (WorkerRuntime) reaches the runner through a control task (eager here) and reads
        # the status the worker published
        pk = bots[1].pk
        monkeypatch.setattr(tasks, "_current", w2)
        api = tasks.WorkerRuntime()
        assert api.status(pk)["worker"] == "w2"
        api.command(pk, "pause")
        assert w2.hosted.runners[pk].strategy.status()["state"] == "paused"
        api.stop(pk)
        assert pk not in w2.hosted.runners and Bot.objects.get(pk=pk).status == BotStatus.STOPPED
        with pytest.raises(LookupError):
            api.command(pk, "resume")
    finally:
        w2.shutdown()
    assert m.BotLease.objects.filter(worker="w2").count() == 0  # released on a clean shutdown


def test_the_runtime_never_replays_a_stopped_run_into_trading(runtime: ServerRuntime, owner: User) -> None:
    # the runtime alone (resume after a crash between the stop and its status) refuses; the API's start begins a
    # new run instead (tests/server/trading/test_restart_runs.py)
    bot = _bot(owner)
    runtime.start(bot.pk)
    runtime.stop(bot.pk)
    with pytest.raises(RuntimeError, match="start the bot again to begin a new run"):
        runtime.start(bot.pk)
    bot.refresh_from_db()
    assert bot.status == BotStatus.STOPPED and "new run" in bot.status_message
    assert runtime.status(bot.pk) is None
