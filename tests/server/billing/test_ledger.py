"""Unit tests of :mod:`gridfleet.server.billing.ledger`: posting, replay, reversal, overdraw, immutability."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from gridfleet.server.billing import ledger
from gridfleet.server.billing.audit import run_audit
from gridfleet.server.billing.models import Account, AccountKind, Entry, ImmutableError, Transaction
from gridfleet.server.users.models import User

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def alice(make_user: Callable[..., User]) -> User:
    return make_user("alice")


def _credit(user: User, amount: str, key: str) -> Transaction:
    return ledger.post(key=key, kind="credit", lines=[(ledger.wallet(user), D(amount)),
                                                       (ledger.system_account("deposits"), -D(amount))], user=user)


def test_post_moves_cached_balance_and_entries(alice: User) -> None:
    txn = _credit(alice, "10.5", "k1")
    assert ledger.balance(ledger.wallet(alice)) == D("10.5")
    assert ledger.balance(ledger.system_account("deposits")) == D("-10.5")
    assert ledger.entries_total(ledger.wallet(alice)) == D("10.5")
    amounts = sorted(txn.entries.values_list("amount_units", flat=True))
    assert amounts == [-1_050_000_000, 1_050_000_000]
    entry = txn.entries.get(account=ledger.wallet(alice))
    assert entry.balance_after_units == 1_050_000_000
    assert txn.user == alice and txn.kind == "credit"


def test_replay_returns_first_and_conflict_raises(alice: User) -> None:
    first = _credit(alice, "3", "same")
    again = _credit(alice, "3", "same")
    assert again.pk == first.pk
    assert Transaction.objects.count() == 1 and Entry.objects.count() == 2
    assert ledger.balance(ledger.wallet(alice)) == D(3)
    with pytest.raises(ledger.IdempotencyConflict):
        _credit(alice, "4", "same")
    assert ledger.balance(ledger.wallet(alice)) == D(3)


@pytest.mark.parametrize("lines_spec, message", [
    ([("w", "1")], "at least two"),
    ([("w", "1"), ("d", "-0.5")], "do not balance"),
    ([("w", "0"), ("d", "0")], "zero"),
    ([("w", "0.000000001"), ("d", "-0.000000001")], "decimal places"),
])
def test_malformed_lines_refused(alice: User, lines_spec: list[tuple[str, str]], message: str) -> None:
    accounts = {"w": ledger.wallet(alice), "d": ledger.system_account("deposits")}
    with pytest.raises(ledger.LedgerError, match=message):
        ledger.post(key="bad", kind="credit", lines=[(accounts[a], D(v)) for a, v in lines_spec])
    assert not Transaction.objects.exists()


def test_overdraw_refused_and_nothing_written(alice: User) -> None:
    _credit(alice, "5", "k1")
    revenue = ledger.system_account("platform_revenue")
    with pytest.raises(ledger.InsufficientFunds, match=r"holds 5\.00000000"):
        ledger.post(key="fee", kind="fee", lines=[(ledger.wallet(alice), D(-6)), (revenue, D(6))])
    assert ledger.balance(ledger.wallet(alice)) == D(5)
    assert not Transaction.objects.filter(key="fee").exists()
    ledger.post(key="fee", kind="fee", lines=[(ledger.wallet(alice), D(-5)), (revenue, D(5))])
    assert ledger.balance(ledger.wallet(alice)) == D(0)


def test_check_constraint_keeps_wallet_non_negative(alice: User) -> None:
    account = ledger.wallet(alice)
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=account.pk).update(balance_units=-1)
    agent_acc = ledger.agent_payable(alice)
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=agent_acc.pk).update(balance_units=-1)


def test_reverse_full_and_fraction(alice: User, make_user: Callable[..., User]) -> None:
    agent = make_user("agentx", role="agent")
    _credit(alice, "100", "dep")
    fee = ledger.post(key="fee:1", kind="fee", lines=[
        (ledger.wallet(alice), D(-10)), (ledger.system_account("platform_revenue"), D(7)),
        (ledger.agent_payable(agent), D(3))], user=alice)
    third = ledger.reverse(fee, key="refund:1", fraction=D(1) / 3)
    wallet_line = third.entries.get(account=ledger.wallet(alice)).amount_units
    agent_line = third.entries.get(account=ledger.agent_payable(agent)).amount_units
    assert wallet_line == 333_333_333  # 3.33333333 back to the user (rounded down)
    assert agent_line == -99_999_999  # 0.99999999 clawed back (rounded down too)
    revenue_line = third.entries.get(account=ledger.system_account("platform_revenue")).amount_units
    assert revenue_line == -233_333_334  # the rounding residue stays with the platform
    assert sum(third.entries.values_list("amount_units", flat=True)) == 0
    assert third.reverses == fee and third.kind == "reversal"
    with pytest.raises(ledger.LedgerError, match="already reversed"):
        ledger.reverse(fee, key="refund:2")
    rest = ledger.reverse(fee, key="refund:2", fraction=D("0.6"))
    assert rest.entries.get(account=ledger.wallet(alice)).amount_units == 600_000_000
    assert ledger.reverse(fee, key="refund:2", fraction=D("0.6")).pk == rest.pk  # replay
    assert ledger.balance(ledger.wallet(alice)) == D("99.33333333")
    assert run_audit().ok


def test_full_reverse_restores(alice: User) -> None:
    txn = _credit(alice, "2", "c")
    ledger.reverse(txn, key="c:rev")
    assert ledger.balance(ledger.wallet(alice)) == D(0)
    assert ledger.balance(ledger.system_account("deposits")) == D(0)
    with pytest.raises(ledger.LedgerError, match="already reversed"):
        ledger.reverse(txn, key="c:rev2")


def test_reverse_refused_when_it_would_overdraw(alice: User) -> None:
    txn = _credit(alice, "2", "c")
    ledger.post(key="spend", kind="fee", lines=[(ledger.wallet(alice), D(-2)),
                                                (ledger.system_account("platform_revenue"), D(2))])
    with pytest.raises(ledger.InsufficientFunds):
        ledger.reverse(txn, key="c:rev")
    assert not Transaction.objects.filter(key="c:rev").exists()


def test_entries_and_transactions_are_immutable(alice: User) -> None:
    txn = _credit(alice, "1", "c")
    entry = txn.entries.first()
    assert entry is not None
    entry.amount_units = 5
    with pytest.raises(ImmutableError):
        entry.save()
    with pytest.raises(ImmutableError):
        entry.delete()
    with pytest.raises(ImmutableError):
        Entry.objects.all().update(amount_units=1)
    with pytest.raises(ImmutableError):
        Entry.objects.all().delete()
    txn.memo = "edited"
    with pytest.raises(ImmutableError):
        txn.save()
    with pytest.raises(ImmutableError):
        Transaction.objects.filter(pk=txn.pk).delete()
    assert abs(Entry.objects.get(pk=entry.pk).amount_units) == 100_000_000


@pytest.mark.skipif(connection.vendor != "postgresql", reason="database triggers are PostgreSQL-only")
def test_postgres_triggers_refuse_raw_update_and_unbalanced_commit(alice: User) -> None:
    txn = _credit(alice, "1", "c")
    with pytest.raises(IntegrityError, match="immutable"), transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE billing_entry SET amount_units = 5 WHERE transaction_id = %s", [txn.pk])
    with pytest.raises(IntegrityError, match="immutable"), transaction.atomic(), connection.cursor() as cur:
        cur.execute("DELETE FROM billing_transaction WHERE id = %s", [txn.pk])
    wallet = ledger.wallet(alice)
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic(), \
            connection.cursor() as cur:
        cur.execute("INSERT INTO billing_transaction (key, kind, memo, data, created_at) "
                    "VALUES ('raw', 'x', '', '{}', now()) RETURNING id")
        raw_id = cur.fetchone()[0]
        cur.execute("INSERT INTO billing_entry (transaction_id, account_id, amount_units) VALUES (%s, %s, 7)",
                    [raw_id, wallet.pk])
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # what COMMIT does to the deferred trigger
    assert not Transaction.objects.filter(key="raw").exists()
    # a balanced raw transaction passes the same deferred check
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("INSERT INTO billing_transaction (key, kind, memo, data, created_at) "
                    "VALUES ('raw2', 'x', '', '{}', now()) RETURNING id")
        raw_id = cur.fetchone()[0]
        deposits = ledger.system_account("deposits")
        cur.execute("INSERT INTO billing_entry (transaction_id, account_id, amount_units) VALUES (%s, %s, 7), "
                    "(%s, %s, -7)", [raw_id, deposits.pk, raw_id, ledger.system_account("adjustments").pk])
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert Transaction.objects.filter(key="raw2").exists()


def test_system_account_kinds(alice: User) -> None:
    assert ledger.system_account("deposits").pk == ledger.system_account("deposits").pk
    with pytest.raises(ledger.LedgerError):
        ledger.system_account("wallet")
    assert ledger.wallet(alice).kind == AccountKind.WALLET
    assert ledger.wallet(alice).pk == ledger.wallet(alice).pk


def test_exception_between_writes_leaves_nothing_and_rerun_finishes(alice: User,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _credit(alice, "10", "dep")

    def crash(changes: dict[int, int]) -> None:
        raise RuntimeError("worker died after writing the entries")

    revenue = ledger.system_account("platform_revenue")
    lines = [(ledger.wallet(alice), D(-4)), (revenue, D(4))]
    monkeypatch.setattr(ledger, "_apply_balances", crash)
    with pytest.raises(RuntimeError):
        ledger.post(key="fee:x", kind="fee", lines=lines)
    assert not Transaction.objects.filter(key="fee:x").exists()
    assert Entry.objects.count() == 2
    assert ledger.balance(ledger.wallet(alice)) == D(10)
    monkeypatch.undo()
    ledger.post(key="fee:x", kind="fee", lines=lines)
    assert ledger.balance(ledger.wallet(alice)) == D(6)
    assert run_audit().ok


def test_data_may_hold_decimals_and_replay_flag(alice: User) -> None:
    txn = ledger.post(key="d", kind="credit", data={"rate": D("0.1")},
                      lines=[(ledger.wallet(alice), D(1)), (ledger.system_account("deposits"), D(-1))])
    assert txn.replayed is False
    assert Transaction.objects.get(pk=txn.pk).data == {"rate": "0.1"}
    assert ledger.post(key="d", kind="credit", lines=[(ledger.wallet(alice), D(1)),
                                                      (ledger.system_account("deposits"), D(-1))]).replayed
