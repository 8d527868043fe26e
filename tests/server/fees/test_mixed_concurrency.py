"""50 parallel settlements, top-ups and voucher redemptions for the same user and the same bot on PostgreSQL, each
thread on its own database connection, released together by a barrier.

The bot (10 ETH bought at 100, rate 10 %, an agent at 30 %) is marked at 120, 110 and 130 at the ends of three
daily periods: whatever order the settlements commit in, the HWM rule charges 10 % of the final peak net profit
(+300), i.e. 30 in total (20 + 10, or 10 + 20, or 30 at once when the last period is settled first and the earlier
ones are refused as "already settled through ..."). The expected end state is computed from that, independently
of the code under test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.models import Count, Sum

from gridfleet.server.billing import ledger, services
from gridfleet.server.billing.audit import run_audit
from gridfleet.server.billing.models import Entry, Transaction, Voucher
from gridfleet.server.bots.models import Bot
from gridfleet.server.fees.models import AgentProfile, CommissionLine, Settlement, StatementStatus, UserFeeProfile
from gridfleet.server.fees.services import ledger_key, run_settlement, settle_bot
from gridfleet.server.users.models import User
from tests.server.billing.test_concurrency import parallel
from tests.server.fees.conftest import DAY0, add_snapshot, day, fund, make_priced_bot, wallet_balance

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrency tests need PostgreSQL "
                       "(SQLite serializes all writers)"),
]
D = Decimal
UNITS = 10**8
PERIODS = ["2026-01-06", "2026-01-07", "2026-01-08"]
PRICES = ["120", "110", "130"]  # net profit +200, +100, +300 at the ends of the three periods


def _as_of(n: int) -> Any:
    return DAY0 + timedelta(days=n + 2) - timedelta(microseconds=1)


def test_parallel_settlements_topups_and_redemptions_same_user_and_bot(
        client_user: User, agent_user: User, admin_user: User) -> None:
    UserFeeProfile.objects.create(user=client_user, rate=D("0.1"))
    AgentProfile.objects.create(agent=agent_user, commission_rate=D("0.3"))
    fund(client_user, "100")
    bot = make_priced_bot(client_user)
    for n, price in enumerate(PRICES, start=1):
        add_snapshot(bot, day(n), price)
    codes = [v.code for v in services.create_vouchers(actor=admin_user, amount=D("3.5"), count=9)]
    revenue0 = D(ledger.balance(ledger.system_account("platform_revenue")))

    def settle(n: int) -> Any:
        return ("settle", settle_bot(Bot.objects.get(pk=bot.pk), PERIODS[n], _as_of(n)))

    def scheduled(n: int) -> Any:
        return ("scheduled", run_settlement(PERIODS[n], bot.pk))

    tasks: list[Callable[[], Any]] = []
    tasks += [lambda n=n: settle(n) for n in [0] * 8 + [1] * 6 + [2] * 8]  # 22 settlements of 3 periods
    tasks += [lambda: scheduled(2) for _ in range(3)]  # 3 scheduled runs of the last period
    credit_keys = [f"top-up-{i}" for i in range(8)] + [f"top-up-{i}" for i in range(4)]  # 4 keys sent twice
    tasks += [lambda k=k: ("credit", services.credit(actor=admin_user, user_ref=client_user.pk, amount=D("2.25"),
                                                     reason="top-up", idempotency_key=k)) for k in credit_keys]
    redeemed = codes + codes[:4]  # 4 codes redeemed twice at the same moment
    tasks += [lambda c=c: ("redeem", services.redeem(user=client_user, code=c)) for c in redeemed]
    assert len(tasks) == 50
    results = parallel(tasks)

    # every thread succeeded or got a documented refusal; no deadlock or serialization failure escaped
    errors = [exc for kind, exc in results if kind == "error"]
    assert all(isinstance(exc, services.BillingError) and str(exc) == services.INVALID_CODE for exc in errors), errors
    assert len(errors) == 4  # exactly the second redemption of each doubled code
    outcomes = [value for kind, value in results if kind == "ok"]
    settle_results = [r for what, r in outcomes if what == "settle"]
    settle_results += [r for what, report in outcomes if what == "scheduled" for r in report.results]
    assert len(settle_results) == 25
    refusals = {r.skipped.split(" (")[0].split(" 20")[0] for r in settle_results if not r.created}
    assert refusals <= {"already settled", "already settled through"}, refusals
    assert not any(r.skipped.startswith("failed") for r in settle_results)
    credits = [t for what, t in outcomes if what == "credit"]
    assert len(credits) == 12 and sum(1 for t in credits if not t.replayed) == 8

    # exactly one statement and at most one fee per (bot, period); the last period is always settled
    statements = list(Settlement.objects.filter(bot=bot).order_by("as_of"))
    assert len({s.period for s in statements}) == len(statements) >= 1
    assert statements[-1].period == PERIODS[-1]
    assert sum(1 for r in settle_results if r.created) == len(statements)
    assert all(s.status in (StatementStatus.PAID, StatementStatus.NO_FEE) for s in statements)
    charged = [s for s in statements if s.fee_units > 0]
    fees = Transaction.objects.filter(kind="fee", key__startswith=f"fee:{bot.pk}:")
    assert sorted(fees.values_list("key", flat=True)) == sorted(ledger_key(bot.pk, s.period) for s in charged)
    assert sum(s.fee_units for s in statements) == 30 * UNITS  # 10 % of the peak net profit, +300
    assert statements[-1].hwm_after_units == 300 * UNITS
    assert CommissionLine.objects.filter(settlement__in=charged).aggregate(s=Sum("amount_units"))["s"] == 9 * UNITS
    assert Transaction.objects.filter(kind="credit", user=client_user).count() == 1 + 8  # the seed + 8 keys
    assert Transaction.objects.filter(kind="voucher").count() == 9
    assert Voucher.objects.filter(redeemed_at__isnull=False).count() == 9

    # exact balances, computed by hand: 100 + 8 × 2.25 + 9 × 3.5 − 30 fees; the agent 30 % of the fees
    assert wallet_balance(client_user) == D(100) + 8 * D("2.25") + 9 * D("3.5") - D(30) == D("119.5")
    assert D(ledger.balance(ledger.agent_payable(agent_user))) == D(9)
    assert D(ledger.balance(ledger.system_account("platform_revenue"))) == revenue0 + D(21)
    # no duplicate entry, no negative balance anywhere, and the ledger invariants hold
    assert not Entry.objects.values("transaction_id", "account_id").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert not Entry.objects.filter(account__kind="wallet", balance_after_units__lt=0).exists()
    report = run_audit()
    assert report.ok, report.failures


def _fail_first_postings(monkeypatch: pytest.MonkeyPatch, *causes: BaseException) -> list[BaseException]:
    """Make the next ledger postings fail with ``causes`` (as Django raises them), then post normally."""
    from django.db import OperationalError

    real, left = ledger._post_once, list(causes)

    def flaky(*args: Any) -> Any:
        if left:
            cause = left.pop(0)
            raise OperationalError(str(cause)) from cause
        return real(*args)

    monkeypatch.setattr(ledger, "_post_once", flaky)
    monkeypatch.setattr(ledger, "BASE_DELAY", 0.001)
    return left


def test_deadlock_or_serialization_failure_inside_a_settlement_is_retried(
        client_user: User, agent_user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fee is posted inside the settlement's transaction, where the ledger cannot retry on its own: the whole
    settlement (and each collection of a due fee) is retried, never half-done, never reported as failed."""
    import psycopg.errors

    UserFeeProfile.objects.create(user=client_user, rate=D("0.1"))
    AgentProfile.objects.create(agent=agent_user, commission_rate=D("0.3"))
    fund(client_user, "100")
    bot = make_priced_bot(client_user)
    for n, price in enumerate(PRICES, start=1):
        add_snapshot(bot, day(n), price)
    left = _fail_first_postings(monkeypatch, psycopg.errors.DeadlockDetected("deadlock detected"),
                                psycopg.errors.SerializationFailure("could not serialize access"))
    result = settle_bot(bot, PERIODS[0], _as_of(0))
    assert left == [] and result.created and result.settlement is not None
    assert result.settlement.status == StatementStatus.PAID and result.settlement.fee_units == 20 * UNITS
    assert Settlement.objects.filter(bot=bot).count() == 1
    assert Transaction.objects.filter(key=ledger_key(bot.pk, PERIODS[0])).count() == 1
    assert CommissionLine.objects.count() == 1 and wallet_balance(client_user) == D(80)

    # a due fee collected after a top-up: its posting fails once too, and is retried
    other = make_priced_bot(client_user, name="second")
    add_snapshot(other, day(1), "120")
    ledger.post(key="drain", kind="fee", lines=[(ledger.wallet(client_user), D(-80)),
                                                (ledger.system_account("platform_revenue"), D(80))])
    assert settle_bot(other, PERIODS[0], _as_of(0)).settlement.status == StatementStatus.DUE
    fund(client_user, "50", notify=False)
    left = _fail_first_postings(monkeypatch, psycopg.errors.DeadlockDetected("deadlock detected"))
    from gridfleet.server.fees.guard import after_balance_change

    assert after_balance_change(client_user) == "ok"  # collects the due fee after the top-up, as the ledger does
    assert left == []
    assert Settlement.objects.get(bot=other).status == StatementStatus.PAID
    assert wallet_balance(client_user) == D(30)
    report = run_audit()
    assert report.ok, report.failures
