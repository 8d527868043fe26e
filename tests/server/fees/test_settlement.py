"""Settlements through the database: the worked example, marking, idempotency, stop, capital, unpaid fees."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from gridfleet.server.bots.models import Bot, BotStatus
from gridfleet.server.fees.models import BotFeeState, CapitalMovement, Settlement, StatementStatus, UserFeeProfile
from gridfleet.server.fees.services import (
    FeeError,
    mark_bot,
    move_capital,
    run_settlement,
    settle_bot,
)
from gridfleet.server.users.models import User
from tests.server.fees.conftest import (
    DAY0,
    FakeRuntime,
    add_fill,
    add_snapshot,
    day,
    fund,
    make_priced_bot,
    wallet_balance,
)

D = Decimal


def _rate(user: User, rate: str) -> None:
    UserFeeProfile.objects.update_or_create(user=user, defaults={"rate": D(rate)})


def _transactions(key_prefix: str) -> int:
    from gridfleet.server.billing.models import Transaction

    return Transaction.objects.filter(key__startswith=key_prefix).count()


def test_worked_example_end_to_end(make_user: Callable[..., User]) -> None:
    """10 %: +200 → 20 (HWM 200); −150 (net 50) → 0; +100 (net 150) → 0; +150 (net 300) → 10 (HWM 300)."""
    from gridfleet.server.billing import ledger

    alice = make_user("alice")
    _rate(alice, "0.1")
    fund(alice, "100")
    bot = make_priced_bot(alice)
    for n, price in enumerate(["120", "105", "115", "130"], start=1):
        add_snapshot(bot, day(n), price)
    fees = []
    for n in range(1, 5):
        report = run_settlement((DAY0 + timedelta(days=n)).date().isoformat())
        assert len(report.settled) == 1
        fees.append(report.settled[0].settlement)
    assert [s.fee_units for s in fees] == [20 * 10**8, 0, 0, 10 * 10**8]
    assert [s.net_profit_units // 10**8 for s in fees] == [200, 50, 150, 300]
    assert [(s.hwm_before_units // 10**8, s.hwm_after_units // 10**8) for s in fees] == [
        (0, 200), (200, 200), (200, 200), (200, 300)]
    assert [s.status for s in fees] == ["paid", "no_fee", "no_fee", "paid"]
    assert [s.mark_source for s in fees] == ["snapshot"] * 4
    assert fees[0].equity_units == 1200 * 10**8 and fees[0].capital_units == 1000 * 10**8
    assert fees[0].period == "2026-01-06" and fees[0].ledger_key == f"fee:{bot.pk}:2026-01-06"
    assert wallet_balance(alice) == D(70)
    assert D(ledger.balance(ledger.system_account("platform_revenue"))) >= D(30)
    assert BotFeeState.objects.get(bot=bot).hwm_units == 300 * 10**8
    assert _transactions(f"fee:{bot.pk}:") == 2  # the no-fee settlements post nothing


def test_settling_the_same_period_twice_charges_once(make_user: Callable[..., User]) -> None:
    alice = make_user("alice")
    _rate(alice, "0.2")
    fund(alice, "100")
    bot = make_priced_bot(alice)
    add_snapshot(bot, day(1), "110")
    first = run_settlement("2026-01-06")
    again = run_settlement("2026-01-06")
    assert len(first.settled) == 1 and not again.settled and again.results[0].skipped == "already settled"
    assert Settlement.objects.filter(bot=bot).count() == 1
    assert wallet_balance(alice) == D(80)  # 0.2 × 100 once
    assert _transactions(f"fee:{bot.pk}:") == 1
    # an earlier period after a later one is refused: the HWM only moves forward in time
    earlier = run_settlement("2026-01-05")
    assert not earlier.settled and "already settled through" in earlier.results[0].skipped


def test_trading_fees_and_mark_fallback_to_the_last_fill(make_user: Callable[..., User]) -> None:
    alice = make_user("alice")
    _rate(alice, "0.1")
    fund(alice, "100")
    bot = make_priced_bot(alice)
    add_fill(bot, "sell", "150", "4", "0.6", day(1))  # quote fee 0.6; no snapshot: the fill marks the rest
    mark = mark_bot(bot, day(2))
    assert (mark.price, mark.source, mark.base) == (D(150), "fill", D(6))
    result = settle_bot(bot, "p1", day(2))
    assert result.settlement is not None
    # equity = 1000 − 1000 + 600 − 0.6 + 6 × 150 = 1499.4; net 499.4; fee 49.94
    assert result.settlement.net_profit_units == D("499.4") * 10**8
    assert result.settlement.fee_units == D("49.94") * 10**8
    # a snapshot newer than the last fill wins
    add_snapshot(bot, day(3), "140")
    assert mark_bot(bot, day(4)).source == "snapshot"
    # a fill newer than the snapshot wins again
    add_fill(bot, "buy", "90", "1", "0", day(5))
    assert (mark_bot(bot, day(6)).price, mark_bot(bot, day(6)).source) == (D(90), "fill")


def test_fee_rounds_down_to_8_places(make_user: Callable[..., User]) -> None:
    alice = make_user("alice")
    _rate(alice, "0.333333")
    fund(alice, "100")
    bot = make_priced_bot(alice)
    add_snapshot(bot, day(1), "100.00000007")  # net 0.0000007 → fee 0.00000023333331 → 0.00000023
    result = settle_bot(bot, "p1", day(2))
    assert result.settlement is not None and result.settlement.fee_units == 23


def test_unpaid_fee_is_due_then_collected_after_top_up(make_user: Callable[..., User], runtime: FakeRuntime) -> None:
    alice = make_user("alice")
    _rate(alice, "0.1")
    fund(alice, "5")
    bot = make_priced_bot(alice)
    add_snapshot(bot, day(1), "120")
    line = run_settlement("2026-01-06").settled[0].settlement
    assert line is not None and line.status == StatementStatus.DUE and line.fee_units == 20 * 10**8
    assert wallet_balance(alice) == D(5)  # nothing partial was taken
    assert _transactions(f"fee:{bot.pk}:") == 0
    # the HWM moved: the fee is owed, so the same gain is never charged twice
    assert BotFeeState.objects.get(bot=bot).hwm_units == 200 * 10**8
    fund(alice, "20")  # the ledger calls after_balance_change: the due fee is collected
    line.refresh_from_db()
    assert line.status == StatementStatus.PAID and line.collected_at is not None
    assert wallet_balance(alice) == D(5)
    assert _transactions(f"fee:{bot.pk}:") == 1


def test_settlement_on_stop_through_the_api(make_user: Callable[..., User], api_for: Callable[..., Any],
                                            runtime: FakeRuntime) -> None:
    alice = make_user("alice")
    _rate(alice, "0.1")
    fund(alice, "100")
    bot = make_priced_bot(alice)
    add_snapshot(bot, day(1), "110")
    response = api_for(alice).post(f"/api/v1/bots/{bot.pk}/stop/", {}, format="json")
    assert response.status_code == 200, response.content
    line = Settlement.objects.get(bot=bot)
    assert (line.period, line.reason, line.fee_units) == ("stop", "stop", 10 * 10**8)
    state = BotFeeState.objects.get(bot=bot)
    assert state.closed
    # a stopped and settled bot is not settled again by the schedule
    assert not run_settlement("2026-01-07").settled


def test_capital_add_creates_no_fee_and_withdrawal_settles_first(make_user: Callable[..., User],
                                                                 runtime: FakeRuntime) -> None:
    alice = make_user("alice")
    _rate(alice, "0.1")
    fund(alice, "100")
    bot = make_priced_bot(alice)
    add_snapshot(bot, day(1), "100")  # flat: net 0
    assert run_settlement("2026-01-06").settled[0].settlement.fee_units == 0  # type: ignore[union-attr]
    movement, settled = move_capital(bot, D(500), withdraw=False, key="k-add", by=alice)
    assert settled is None and movement.capital_after_units == 1500 * 10**8
    # the bot uses the new capital: buys 5 ETH at 100 (equity unchanged by the purchase)
    add_fill(bot, "buy", "100", "5", "0", day(1, hours=13))
    add_snapshot(bot, day(2), "100")
    line = run_settlement("2026-01-07").settled[0].settlement
    assert line is not None and line.fee_units == 0 and line.equity_units == 1500 * 10**8
    assert line.net_profit_units == 0
    # idempotent by key
    again, _ = move_capital(bot, D(500), withdraw=False, key="k-add", by=alice)
    assert again.pk == movement.pk and BotFeeState.objects.get(bot=bot).capital_units == 1500 * 10**8
    # a withdrawal settles first (at the runtime's live price when the bot runs)
    add_fill(bot, "sell", "110", "5", "0", day(3))  # frees 550 of quote
    runtime.prices[bot.pk] = "110"  # net = 1500 − 1500 + 550 + 10 × 110 − 1500 = 150 → fee 15
    movement, settled = move_capital(bot, D(100), withdraw=True, key="k-w", by=alice)
    assert settled is not None and settled.settlement is not None
    assert settled.settlement.reason == "withdrawal" and settled.settlement.mark_source == "runtime"
    assert settled.settlement.fee_units == 15 * 10**8
    assert movement.amount_units == -100 * 10**8 and movement.capital_after_units == 1400 * 10**8
    # withdrawing more than the bot holds in quote is refused, nothing recorded
    with pytest.raises(FeeError):
        move_capital(bot, D(100000), withdraw=True, key="k-w2", by=alice)
    assert not CapitalMovement.objects.filter(key="k-w2").exists()


def test_bot_without_investment_has_zero_capital(make_user: Callable[..., User]) -> None:
    alice = make_user("alice")
    bot = make_priced_bot(alice, investment=None)
    add_snapshot(bot, day(1), "100")
    line = settle_bot(bot, "p", day(2)).settlement
    assert line is not None and line.capital_units == 0 and line.net_profit_units == 0
    assert line.equity_units == 0


@pytest.mark.django_db(transaction=True)
def test_50_concurrent_settlements_post_exactly_one_fee(make_user: Callable[..., User]) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrency needs PostgreSQL")
    alice = make_user("alice")
    _rate(alice, "0.1")
    fund(alice, "1000")
    bot = make_priced_bot(alice)
    add_snapshot(bot, day(1), "120")
    results: list[Any] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(50)

    def worker() -> None:
        from django.db import connections

        try:
            barrier.wait()
            results.append(settle_bot(Bot.objects.get(pk=bot.pk), "2026-01-06", day(1, hours=23)))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert sum(1 for r in results if r.created) == 1 and len(results) == 50
    assert Settlement.objects.filter(bot=bot).count() == 1
    assert _transactions(f"fee:{bot.pk}:") == 1
    assert wallet_balance(alice) == D(980)


def test_stopped_status_without_api_is_settled_by_the_schedule(make_user: Callable[..., User]) -> None:
    alice = make_user("alice")
    _rate(alice, "0.1")
    fund(alice, "100")
    bot = make_priced_bot(alice, status=BotStatus.STOPPED)
    add_snapshot(bot, day(1), "110")
    report = run_settlement("2026-01-06")
    assert len(report.settled) == 1 and BotFeeState.objects.get(bot=bot).closed
    assert not run_settlement("2026-01-07").settled


def test_a_settlement_that_dies_half_way_leaves_nothing_and_a_rerun_finishes_it(
        make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch) -> None:
    alice = make_user("alice")
    _rate(alice, "0.1")
    fund(alice, "100")
    bot = make_priced_bot(alice)
    add_snapshot(bot, day(1), "120")
    original = BotFeeState.save

    def crash(self: BotFeeState, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("update_fields") and "hwm_units" in kwargs["update_fields"]:
            raise RuntimeError("worker killed")  # after the fee was posted, before the state was saved
        original(self, *args, **kwargs)

    monkeypatch.setattr(BotFeeState, "save", crash)
    report = run_settlement("2026-01-06")
    assert not report.settled and report.results[0].skipped.startswith("failed")
    assert not Settlement.objects.exists() and _transactions(f"fee:{bot.pk}:") == 0
    assert wallet_balance(alice) == D(100)
    assert not BotFeeState.objects.filter(bot=bot, hwm_units__gt=0).exists()
    monkeypatch.setattr(BotFeeState, "save", original)
    assert run_settlement("2026-01-06").settled[0].settlement.fee_units == 20 * 10**8  # type: ignore[union-attr]
    assert wallet_balance(alice) == D(80) and _transactions(f"fee:{bot.pk}:") == 1


def test_a_restarted_bot_keeps_its_cumulative_net_profit_and_hwm(make_user: Callable[..., User],
                                                                  api_for: Callable[..., Any],
                                                                  runtime: FakeRuntime,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    alice = make_user("alice")
    _rate(alice, "0.1")
    fund(alice, "100")
    bot = make_priced_bot(alice)
    add_snapshot(bot, day(1), "110")  # run 1: net 100
    api = api_for(alice)
    assert api.post(f"/api/v1/bots/{bot.pk}/stop/", {}, format="json").status_code == 200
    first = Settlement.objects.get(bot=bot)
    assert (first.period, first.fee_units) == ("stop", 10 * 10**8)
    assert api.post(f"/api/v1/bots/{bot.pk}/start/", {}, format="json").status_code == 200, "restart"
    bot.refresh_from_db()
    # run 2 buys 5 at 110 with a fresh investment: the old run's leftovers are not its position
    from django.utils import timezone

    now = timezone.now()
    add_fill(bot, "buy", "110", "5", "0", now + timedelta(minutes=1), run=2)
    add_snapshot(bot, now + timedelta(minutes=2), "100")  # run 2 net −50: cumulative 50, under the HWM 100
    line = settle_bot(bot, "later-1", now + timedelta(minutes=3)).settlement
    assert line is not None and (line.net_profit_units, line.fee_units) == (50 * 10**8, 0)
    assert line.capital_units == 1000 * 10**8 and line.hwm_before_units == 100 * 10**8
    add_snapshot(bot, now + timedelta(minutes=4), "140")  # run 2 net 150: cumulative 250 → fee 10 % × 150
    line = settle_bot(bot, "later-2", now + timedelta(minutes=5)).settlement
    assert line is not None and (line.net_profit_units, line.fee_units) == (250 * 10**8, 15 * 10**8)
    from gridfleet.server.fees import services

    later = now + timedelta(minutes=6)
    monkeypatch.setattr(services.timezone, "now", lambda: later)  # the stop comes after the settlements above
    assert api.post(f"/api/v1/bots/{bot.pk}/stop/", {}, format="json").status_code == 200
    last = Settlement.objects.get(bot=bot, reason="stop", period__startswith="stop:")
    assert last.period == "stop:run2" and BotFeeState.objects.get(bot=bot).closed
    assert CapitalMovement.objects.filter(bot=bot, kind="initial").count() == 2


def test_initial_capital_is_the_investment_the_run_started_with(make_user: Callable[..., User]) -> None:
    from gridfleet.server.trading.runs import current_run as record_run

    alice = make_user("alice")
    bot = make_priced_bot(alice)
    record_run(bot)  # the runtime records run 1 with the config it started with (investment 1000)
    Bot.objects.filter(pk=bot.pk).update(config={**bot.config, "investment": "5000"})  # a later live edit
    bot.refresh_from_db()
    add_snapshot(bot, day(1), "100")
    line = settle_bot(bot, "p", day(2)).settlement
    assert line is not None and line.capital_units == 1000 * 10**8 and line.net_profit_units == 0
