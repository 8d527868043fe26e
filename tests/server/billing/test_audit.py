"""The ledger audit (:func:`run_audit`) and ``gridfleet billing audit``: passes on a sound ledger, catches
corrupted cached balances, unbalanced transactions and negative wallets, with the right exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection, transaction
from typer.testing import CliRunner

from gridfleet.cli.main import app
from gridfleet.server.billing import ledger
from gridfleet.server.billing.audit import run_audit
from gridfleet.server.billing.models import Account
from gridfleet.server.users.models import User

pytestmark = pytest.mark.django_db
D = Decimal


class _Undo(Exception):
    """Raised to roll a savepoint back."""


@pytest.fixture
def funded(make_user: Callable[..., User]) -> User:
    user = make_user("alice")
    agent = make_user("agentq", role="agent")
    ledger.post(key="dep", kind="credit", lines=[(ledger.wallet(user), D(50)),
                                                (ledger.system_account("deposits"), D(-50))])
    fee = ledger.post(key="fee", kind="fee", lines=[(ledger.wallet(user), D(-10)),
                                                    (ledger.system_account("platform_revenue"), D(8)),
                                                    (ledger.agent_payable(agent), D(2))])
    ledger.reverse(fee, key="refund", fraction=D("0.5"))
    return user


def test_sound_ledger_passes(funded: User) -> None:
    report = run_audit()
    assert report.ok, report.failures
    counts = {c.name: c.checked for c in report.checks}
    assert counts["each transaction sums to zero"] == 3
    assert counts["the whole ledger sums to zero"] == 8
    assert counts["cached balances equal the sum of their entries"] == 4  # wallet, payable, deposits, revenue
    assert counts["no wallet or agent payable is negative"] == 2
    assert counts["reversals stay within what they reverse"] == 1


def test_corrupted_cached_balance_is_caught(funded: User) -> None:
    account = ledger.wallet(funded)
    Account.objects.filter(pk=account.pk).update(balance_units=account.balance_units + 1)
    report = run_audit()
    assert not report.ok
    assert len(report.failures) == 1
    assert "caches 45.00000001 but its entries sum to 45.00000000" in report.failures[0]


def test_system_account_cache_must_stay_zero(funded: User) -> None:
    Account.objects.filter(kind="deposits").update(balance_units=5)
    assert any("system balances are derived" in f for f in run_audit().failures)


def test_unbalanced_transaction_is_caught(funded: User) -> None:
    # written behind the ledger's back (on PostgreSQL the deferred trigger refuses it at COMMIT; the audit is
    # run before that moment, and on SQLite it is the only guard)
    with pytest.raises(_Undo), transaction.atomic(), connection.cursor() as cur:
        cur.execute("INSERT INTO billing_transaction (key, kind, memo, data, created_at) "
                    "VALUES ('rogue', 'x', '', '{}', CURRENT_TIMESTAMP)")
        cur.execute("SELECT id FROM billing_transaction WHERE key = 'rogue'")
        txn_id = cur.fetchone()[0]
        cur.execute("INSERT INTO billing_entry (transaction_id, account_id, amount_units) VALUES (%s, %s, 7)",
                    [txn_id, ledger.system_account("adjustments").pk])
        failures = run_audit().failures
        raise _Undo  # roll the rogue rows back (PostgreSQL's deferred trigger would refuse them at teardown)
    assert any("each transaction sums to zero" in f and "rogue" in f for f in failures)
    assert any("the whole ledger sums to zero" in f for f in failures)


def test_negative_wallet_is_caught(funded: User) -> None:
    # a balanced transaction written behind the ledger's back that overdraws the wallet (its cache not updated)
    wallet, adjustments = ledger.wallet(funded), ledger.system_account("adjustments")
    with pytest.raises(_Undo), transaction.atomic(), connection.cursor() as cur:
        cur.execute("INSERT INTO billing_transaction (key, kind, memo, data, created_at) "
                    "VALUES ('rogue', 'x', '', '{}', CURRENT_TIMESTAMP)")
        cur.execute("SELECT id FROM billing_transaction WHERE key = 'rogue'")
        txn_id = cur.fetchone()[0]
        cur.execute("INSERT INTO billing_entry (transaction_id, account_id, amount_units) VALUES (%s, %s, %s), "
                    "(%s, %s, %s)", [txn_id, wallet.pk, -100 * 10**8, txn_id, adjustments.pk, 100 * 10**8])
        failures = run_audit().failures
        raise _Undo
    assert any(f.startswith("no wallet or agent payable is negative") and "-55.00000000" in f for f in failures)
    assert any(f.startswith("cached balances equal") for f in failures)
    assert not any(f.startswith("each transaction") for f in failures)


def test_negative_wallet_refused_by_the_database(funded: User) -> None:
    from django.db import IntegrityError

    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=ledger.wallet(funded).pk).update(balance_units=-1)
    assert run_audit().ok


def test_cli_audit_exit_codes(funded: User) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["billing", "audit"])
    assert ok.exit_code == 0, ok.output
    assert "each transaction sums to zero (3 checked)" in ok.output
    assert "ledger audit passed" in ok.output
    as_json = runner.invoke(app, ["billing", "audit", "--json"])
    assert as_json.exit_code == 0 and '"ok": true' in as_json.output
    Account.objects.filter(pk=ledger.wallet(funded).pk).update(balance_units=1)
    bad = runner.invoke(app, ["billing", "audit"])
    assert bad.exit_code == 1
    assert "FAIL cached balances equal the sum of their entries" in bad.output
    assert "caches 0.00000001 but its entries sum to 45.00000000" in bad.output
    assert "Traceback" not in bad.output


def test_cli_audit_on_an_unmigrated_database_fails_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env["GRIDFLEET_DB"] = str(tmp_path / "empty.sqlite3")
    result = subprocess.run([sys.executable, "-m", "gridfleet.cli.main", "billing", "audit"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "cannot read the ledger" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
