"""Concurrency and crash safety of the ledger on PostgreSQL: 50 threads, each with its own database connection.

Skipped (with the reason) when the test database is not PostgreSQL: SQLite serializes every writer, so these
races cannot happen there. Every test ends with the full audit.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connection, connections

from gridfleet.server.billing import ledger, services
from gridfleet.server.billing.audit import run_audit
from gridfleet.server.billing.models import Entry, Transaction, Voucher
from gridfleet.server.users.models import Role, User

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrency tests need PostgreSQL "
                       "(SQLite serializes all writers)"),
]
D = Decimal
N = 50


def parallel(tasks: list[Callable[[], Any]]) -> list[tuple[str, Any]]:
    """Run every task at once (a barrier releases them together), each thread on its own connection."""
    barrier = threading.Barrier(len(tasks))

    def run(task: Callable[[], Any]) -> tuple[str, Any]:
        try:
            barrier.wait(timeout=60)
            return "ok", task()
        except Exception as exc:
            return "error", exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
        return list(pool.map(run, tasks))


def _audit_ok() -> None:
    report = run_audit()
    assert report.ok, report.failures


def _no_duplicate_entries() -> None:
    assert Entry.objects.values("transaction_id", "account_id").distinct().count() == Entry.objects.count()


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("alice", password="x-Very-long-1", role=Role.USER)


@pytest.fixture
def boss() -> User:
    return User.objects.create_user("boss", password="x-Very-long-1", role=Role.ADMIN)


def test_parallel_credits_each_key_once(alice: User, boss: User) -> None:
    # 25 keys, each submitted twice at the same moment: 50 threads
    keys = [f"k{i}" for i in range(N // 2)]
    tasks = [lambda k=k: services.credit(actor=boss, user_ref="alice", amount=D("1.00000001"), reason="r",
                                         idempotency_key=k) for k in keys * 2]
    results = parallel(tasks)
    assert [r for r in results if r[0] == "error"] == []
    assert sum(1 for _, txn in results if not txn.replayed) == len(keys)
    assert Transaction.objects.filter(kind="credit").count() == len(keys)
    assert ledger.balance(ledger.wallet(alice)) == D("1.00000001") * len(keys)
    _no_duplicate_entries()
    _audit_ok()


def test_parallel_debits_never_overdraw(alice: User) -> None:
    ledger.post(key="seed", kind="credit", lines=[(ledger.wallet(alice), D(30)),
                                                 (ledger.system_account("deposits"), D(-30))])
    wallet, revenue = ledger.wallet(alice), ledger.system_account("platform_revenue")
    tasks = [lambda i=i: ledger.post(key=f"fee:{i}", kind="fee", lines=[(wallet, D(-1)), (revenue, D(1))])
             for i in range(N)]
    results = parallel(tasks)
    ok = [r for r in results if r[0] == "ok"]
    refused = [r for r in results if r[0] == "error"]
    assert len(ok) == 30 and len(refused) == 20
    assert all(isinstance(exc, ledger.InsufficientFunds) for _, exc in refused)
    assert ledger.balance(wallet) == D(0)
    assert Transaction.objects.filter(kind="fee").count() == 30
    _no_duplicate_entries()
    _audit_ok()


def test_parallel_redemptions_one_winner_per_code(boss: User) -> None:
    users = [User.objects.create_user(f"u{i}", password="x-Very-long-1") for i in range(N)]
    codes = [v.code for v in services.create_vouchers(actor=boss, amount=D("2.5"), count=N // 2)]
    # every code is redeemed by two different users at the same instant
    tasks = [lambda u=u, c=codes[i // 2]: services.redeem(user=u, code=c) for i, u in enumerate(users)]
    results = parallel(tasks)
    won = [r for r in results if r[0] == "ok"]
    lost = [r for r in results if r[0] == "error"]
    assert len(won) == N // 2 and len(lost) == N // 2
    assert all(isinstance(exc, services.BillingError) and str(exc) == services.INVALID_CODE for _, exc in lost)
    assert Voucher.objects.filter(redeemed_at__isnull=False).count() == N // 2
    assert Transaction.objects.filter(kind="voucher").count() == N // 2
    total = sum((ledger.balance(ledger.wallet(u)) for u in users), D(0))
    assert total == D("2.5") * (N // 2)
    _audit_ok()


def test_mixed_credits_redemptions_debits_same_user(alice: User, boss: User) -> None:
    codes = [v.code for v in services.create_vouchers(actor=boss, amount=D(3), count=10)]
    wallet, revenue = ledger.wallet(alice), ledger.system_account("platform_revenue")
    tasks: list[Callable[[], Any]] = []
    tasks += [lambda i=i: services.credit(actor=boss, user_ref=alice.pk, amount=D(2), reason="top-up",
                                          idempotency_key=f"c{i % 10}") for i in range(20)]  # 10 keys, twice
    tasks += [lambda c=c: services.redeem(user=alice, code=c) for c in codes]  # 30
    tasks += [lambda c=c: services.redeem(user=alice, code=c) for c in codes[:5]]  # the same codes again
    tasks += [lambda i=i: ledger.post(key=f"fee:{i}", kind="fee", lines=[(wallet, D(-4)), (revenue, D(4))])
              for i in range(15)]  # up to 60 asked, at most 50 can come in
    results = parallel(tasks)
    assert len(tasks) == N
    fees = Transaction.objects.filter(kind="fee").count()
    assert Transaction.objects.filter(kind="credit").count() == 10
    assert Transaction.objects.filter(kind="voucher").count() == 10
    assert ledger.balance(wallet) == D(20) + D(30) - D(4) * fees
    assert ledger.balance(wallet) >= 0
    unexpected = [exc for kind, exc in results if kind == "error"
                  and not isinstance(exc, ledger.InsufficientFunds | services.BillingError)]
    assert unexpected == []
    _no_duplicate_entries()
    _audit_ok()


def test_opposite_transfers_do_not_deadlock(make_user: Callable[..., User]) -> None:
    a, b = make_user("a"), make_user("b")
    for user in (a, b):
        ledger.post(key=f"seed:{user.pk}", kind="credit", lines=[(ledger.wallet(user), D(100)),
                                                                 (ledger.system_account("deposits"), D(-100))])
    wa, wb = ledger.wallet(a), ledger.wallet(b)
    tasks = [lambda i=i: ledger.post(key=f"t{i}", kind="transfer",
                                     lines=[(wa, D(-1)), (wb, D(1))] if i % 2 else [(wb, D(-1)), (wa, D(1))])
             for i in range(N)]
    results = parallel(tasks)
    assert [r for r in results if r[0] == "error"] == []
    assert ledger.balance(wa) == D(100) and ledger.balance(wb) == D(100)
    _audit_ok()


def test_serialization_failure_and_deadlock_are_retried(alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg.errors

    real = ledger._post_once
    failures = [psycopg.errors.SerializationFailure("could not serialize access"),
                psycopg.errors.DeadlockDetected("deadlock detected")]

    def flaky(*args: Any) -> Any:
        if failures:
            cause = failures.pop(0)
            raise OperationalError(str(cause)) from cause
        return real(*args)

    monkeypatch.setattr(ledger, "_post_once", flaky)
    monkeypatch.setattr(ledger, "BASE_DELAY", 0.001)
    txn = ledger.post(key="retry", kind="credit", lines=[(ledger.wallet(alice), D(1)),
                                                         (ledger.system_account("deposits"), D(-1))])
    assert failures == [] and txn.pk
    assert ledger.balance(ledger.wallet(alice)) == D(1)

    def always(*args: Any) -> Any:
        cause = psycopg.errors.SerializationFailure("again")
        raise OperationalError(str(cause)) from cause

    monkeypatch.setattr(ledger, "_post_once", always)
    with pytest.raises(OperationalError):
        ledger.post(key="never", kind="credit", lines=[(ledger.wallet(alice), D(1)),
                                                       (ledger.system_account("deposits"), D(-1))])

    def other(*args: Any) -> Any:
        raise OperationalError("connection refused")

    calls = []
    monkeypatch.setattr(ledger, "_post_once", lambda *a: calls.append(1) or other())
    with pytest.raises(OperationalError):
        ledger.post(key="never2", kind="credit", lines=[(ledger.wallet(alice), D(1)),
                                                        (ledger.system_account("deposits"), D(-1))])
    assert calls == [1]  # not a serialization failure: not retried


CHILD = textwrap.dedent("""
    import os, sys, time
    from decimal import Decimal
    import django
    django.setup()
    from gridfleet.server.billing import ledger
    from gridfleet.server.users.models import User

    def hang(changes):
        print("ENTRIES-WRITTEN", flush=True)
        time.sleep(600)

    ledger._apply_balances = hang  # the worker dies after the entries are written, before the balances and COMMIT
    user = User.objects.get(pk=int(sys.argv[1]))
    ledger.post(key=sys.argv[2], kind="fee", lines=[(ledger.wallet(user), Decimal("-4")),
                                                    (ledger.system_account("platform_revenue"), Decimal("4"))])
""")


def test_worker_killed_mid_posting_leaves_nothing_and_rerun_finishes(alice: User, tmp_path: Path) -> None:
    wallet = ledger.wallet(alice)
    ledger.post(key="seed", kind="credit", lines=[(wallet, D(10)), (ledger.system_account("deposits"), D(-10))])
    settings_dict = connection.settings_dict
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="gridfleet.server.settings",
               DATABASE_URL=f"postgres://{settings_dict['USER']}@{settings_dict['HOST']}:{settings_dict['PORT']}/"
                            f"{settings_dict['NAME']}", GRIDFLEET_DB=str(tmp_path / "unused.sqlite3"))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen([sys.executable, str(script), str(alice.pk), "fee:bot1:2026-01-05"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[3])
    try:
        ready, _, _ = select.select([child.stdout], [], [], 60)
        assert ready, "the child did not reach the middle of the posting"
        assert child.stdout.readline().strip() == "ENTRIES-WRITTEN"
        # mid-posting: nothing is visible from outside
        assert not Transaction.objects.filter(key="fee:bot1:2026-01-05").exists()
        assert ledger.balance(wallet) == D(10)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
    deadline = time.monotonic() + 30
    while Transaction.objects.filter(key="fee:bot1:2026-01-05").exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # (never: the dead backend's transaction is rolled back)
    assert not Transaction.objects.filter(key="fee:bot1:2026-01-05").exists()
    assert Entry.objects.count() == 2 and ledger.balance(wallet) == D(10)
    _audit_ok()
    # the re-run (same key) finishes the posting, once
    txn = ledger.post(key="fee:bot1:2026-01-05", kind="fee",
                      lines=[(wallet, D(-4)), (ledger.system_account("platform_revenue"), D(4))])
    assert not txn.replayed
    again = ledger.post(key="fee:bot1:2026-01-05", kind="fee",
                        lines=[(wallet, D(-4)), (ledger.system_account("platform_revenue"), D(4))])
    assert again.pk == txn.pk and again.replayed
    assert ledger.balance(wallet) == D(6)
    _audit_ok()


def test_parallel_payout_approvals_pay_once(make_user: Callable[..., User], boss: User,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    agent = make_user("agent7", role=Role.AGENT)
    ledger.post(key="earn", kind="commission", lines=[(ledger.agent_payable(agent), D(100)),
                                                     (ledger.system_account("platform_revenue"), D(-100))])
    try:
        import gridfleet.server.fees.commission as commission

        monkeypatch.setattr(commission, "withdrawable", lambda a: ledger.balance(ledger.agent_payable(a)))
    except ImportError:
        pass
    requests = parallel([lambda: services.request_payout(agent=agent, amount=D(10)) for _ in range(N // 5 * 2)])
    filed = [p for kind, p in requests if kind == "ok"]
    assert len(filed) == 10  # 20 asked for 10 each: only 100 is payable
    payout = filed[0]
    results = parallel([lambda: services.decide_payout(payout_id=payout.pk, actor=boss, approve=True)
                        for _ in range(N)])
    assert sum(1 for kind, _ in results if kind == "ok") == 1
    assert all(isinstance(exc, services.BillingError) and exc.status == 409 for kind, exc in results if kind == "error")
    assert ledger.balance(ledger.agent_payable(agent)) == D(90)
    assert Transaction.objects.filter(kind="payout").count() == 1
    _audit_ok()
