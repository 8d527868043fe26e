"""The balance guard: warn → pause (buys cancelled, sells kept) → top-up → resume only what it paused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from gridfleet.server.bots.models import Bot, BotStatus
from gridfleet.server.fees.guard import PAUSE_MESSAGE, after_balance_change, check_all, check_user
from gridfleet.server.fees.models import BotFeeState, GuardState, UserFeeProfile
from gridfleet.server.fees.services import run_settlement
from gridfleet.server.realtime.models import Notification
from gridfleet.server.users.models import User
from tests.server.fees.conftest import FakeRuntime, add_snapshot, day, fund, make_priced_bot

D = Decimal


def _kinds(user: User) -> list[str]:
    return list(Notification.objects.filter(user=user).order_by("id").values_list("kind", flat=True))


def test_unpaid_fee_warns_pauses_and_top_up_resumes_only_guard_paused_bots(
        make_user: Callable[..., User], runtime: FakeRuntime, settings: Any) -> None:
    alice = make_user("alice")
    bob = make_user("bob")
    UserFeeProfile.objects.create(user=alice, rate=D("0.1"))
    fund(alice, "1")
    fund(bob, "1")
    earner = make_priced_bot(alice, "earner")
    other = make_priced_bot(alice, "other")
    mine_paused = make_priced_bot(alice, "paused by me", status=BotStatus.PAUSED)
    bobs = make_priced_bot(bob, "bob's")
    add_snapshot(earner, day(1), "120")  # fee 20 > balance 1: due
    settings.GRIDFLEET_BILLING_GUARD_GRACE_SECONDS = "3600"
    run_settlement("2026-01-06", earner.pk)
    state = GuardState.objects.get(user=alice)
    assert state.status == "warned" and "due" in state.reason
    assert _kinds(alice) == ["billing_warning"]
    assert Bot.objects.get(pk=earner.pk).status == BotStatus.RUNNING  # warned first, not paused yet
    # the grace period passes: the periodic check pauses the running bots
    check_all(now=timezone.now() + timedelta(hours=2))
    assert GuardState.objects.get(user=alice).status == "paused"
    for bot in (earner, other):
        bot.refresh_from_db()
        assert (bot.status, bot.status_message) == (BotStatus.PAUSED, PAUSE_MESSAGE)
        assert ("command", bot.pk, "stop_buying") in runtime.calls  # buys cancelled, sells kept
        assert BotFeeState.objects.get(bot=bot).guard_paused_at is not None
    assert not [c for c in runtime.calls if c[1] in (mine_paused.pk, bobs.pk)]  # nothing else is touched
    assert Bot.objects.get(pk=bobs.pk).status == BotStatus.RUNNING
    assert _kinds(alice) == ["billing_warning", "billing_paused"]
    paused_note = Notification.objects.get(user=alice, kind="billing_paused")
    assert sorted(paused_note.data["bots"]) == sorted([earner.pk, other.pk])
    assert _kinds(bob) == []
    # a top-up that is not enough changes nothing
    fund(alice, "5")
    assert GuardState.objects.get(user=alice).status == "paused"
    # enough: the due fee is collected and exactly the guard-paused bots resume
    fund(alice, "30")
    assert GuardState.objects.get(user=alice).status == "ok"
    for bot in (earner, other):
        bot.refresh_from_db()
        assert bot.status == BotStatus.RUNNING and bot.status_message == ""
        assert ("command", bot.pk, "resume_buying") in runtime.calls
    assert Bot.objects.get(pk=mine_paused.pk).status == BotStatus.PAUSED
    assert _kinds(alice) == ["billing_warning", "billing_paused", "billing_resumed"]
    resumed = Notification.objects.get(user=alice, kind="billing_resumed")
    assert sorted(resumed.data["bots"]) == sorted([earner.pk, other.pk])


def test_minimum_balance_with_no_grace_warns_then_pauses_at_once(make_user: Callable[..., User],
                                                                 runtime: FakeRuntime, settings: Any) -> None:
    settings.GRIDFLEET_BILLING_MIN_BALANCE = "10"
    alice = make_user("alice")
    bot = make_priced_bot(alice)
    assert check_user(alice) == "paused"
    assert _kinds(alice) == ["billing_warning", "billing_paused"]
    bot.refresh_from_db()
    assert bot.status == BotStatus.PAUSED
    # the user resumes by hand while still short: the periodic check pauses it again
    Bot.objects.filter(pk=bot.pk).update(status=BotStatus.RUNNING, status_message="")
    check_all()
    assert Bot.objects.get(pk=bot.pk).status == BotStatus.PAUSED
    # a per-user minimum override of 0 lets them run after the next balance change
    UserFeeProfile.objects.create(user=alice, min_balance_units=0)
    assert after_balance_change(alice) == "ok"
    assert Bot.objects.get(pk=bot.pk).status == BotStatus.RUNNING
    assert _kinds(alice)[-1] == "billing_resumed"


def test_user_without_active_bots_is_not_bothered(make_user: Callable[..., User], settings: Any) -> None:
    settings.GRIDFLEET_BILLING_MIN_BALANCE = "10"
    alice = make_user("alice")
    make_priced_bot(alice, status=BotStatus.STOPPED)
    assert check_user(alice) == "ok"
    assert _kinds(alice) == []


def test_guard_events_reach_the_websocket(make_user: Callable[..., User], runtime: FakeRuntime, settings: Any,
                                          monkeypatch: Any) -> None:
    from gridfleet.server.realtime import alerts

    sent: list[tuple[int, dict[str, Any]]] = []
    monkeypatch.setattr(alerts, "publish", lambda user_id, event, **kw: sent.append((user_id, event)))
    settings.GRIDFLEET_BILLING_MIN_BALANCE = "10"
    alice = make_user("alice")
    make_priced_bot(alice)
    check_user(alice)
    kinds = [e["data"]["kind"] for uid, e in sent if uid == alice.pk and e["type"] == "notification"]
    assert kinds == ["billing_warning", "billing_paused"]


def test_a_credit_through_the_ledger_api_resumes_the_guard_paused_bots(
        make_user: Callable[..., User], admin_user: User, api_for: Callable[..., Any], runtime: FakeRuntime,
        settings: Any, django_capture_on_commit_callbacks: Any) -> None:
    settings.GRIDFLEET_BILLING_MIN_BALANCE = "10"
    alice = make_user("alice")
    bot = make_priced_bot(alice)
    assert check_user(alice) == "paused"
    with django_capture_on_commit_callbacks(execute=True):
        response = api_for(admin_user).post("/api/v1/billing/credit/", {
            "user": "alice", "amount": "25", "reason": "top-up", "idempotency_key": "t1"}, format="json")
    assert response.status_code in (200, 201), response.content
    assert GuardState.objects.get(user=alice).status == "ok"
    assert Bot.objects.get(pk=bot.pk).status == BotStatus.RUNNING
    assert _kinds(alice)[-1] == "billing_resumed"


def test_payout_is_limited_to_cleared_commission(make_user: Callable[..., User]) -> None:
    """The ledger's payout check asks the fees app: only commission out of its clearing window is withdrawable."""
    from gridfleet.server.billing import services as billing_services
    from gridfleet.server.fees.models import AgentProfile

    agent = make_user("agent", role="agent")
    AgentProfile.objects.create(agent=agent, commission_rate=D("0.5"))
    client = make_user("client", agent=agent)
    UserFeeProfile.objects.create(user=client, rate=D("0.1"))
    fund(client, "100")
    bot = make_priced_bot(client)
    add_snapshot(bot, day(1), "120")
    run_settlement("2026-01-06")
    assert billing_services._withdrawable(agent) == 0  # 10 earned, still in the clearing window


def test_a_collected_fee_that_leaves_the_balance_under_the_minimum_warns(make_user: Callable[..., User],
                                                                         runtime: FakeRuntime,
                                                                         settings: Any) -> None:
    settings.GRIDFLEET_BILLING_MIN_BALANCE = "10"
    settings.GRIDFLEET_BILLING_GUARD_GRACE_SECONDS = "3600"
    alice = make_user("alice")
    UserFeeProfile.objects.create(user=alice, rate=D("0.1"))
    fund(alice, "25")
    bot = make_priced_bot(alice)
    add_snapshot(bot, day(1), "120")
    line = run_settlement("2026-01-06").settled[0].settlement
    assert line is not None and line.status == "paid"  # 25 − 20 = 5 < 10
    assert GuardState.objects.get(user=alice).status == "warned"
    assert _kinds(alice) == ["billing_warning"]
    assert Bot.objects.get(pk=bot.pk).status == BotStatus.RUNNING
