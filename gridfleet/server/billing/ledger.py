"""Posting to the double-entry ledger: the only code that writes transactions, entries and cached balances.

* :func:`post` writes one balanced transaction (its lines sum to zero) atomically under an idempotency key: a
  replay of a key returns the first transaction unchanged, the same key with other lines raises
  :class:`IdempotencyConflict`.
* The cached balances of the wallets and agent payables it touches are locked (``SELECT … FOR UPDATE``, in
  account-id order so two postings never wait on each other in a cycle), checked (:class:`InsufficientFunds`
  before anything is written) and updated in the same database transaction; a CHECK constraint backs this up.
* Corrections are new transactions (:func:`reverse`); nothing is ever edited or deleted.
* Serialization failures and deadlocks (SQLSTATE 40001 / 40P01) are retried with jittered exponential backoff
  when :func:`post` owns the transaction; inside a caller's ``atomic`` block they propagate (the caller's
  transaction is lost and only the caller can run it again).

Sign convention: a positive amount increases the account's balance (a wallet credited 10: wallet +10,
deposits −10). See docs/billing-ledger.md.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F, Sum

from gridfleet.server.billing.models import (
    SYSTEM_KINDS,
    USER_KINDS,
    Account,
    AccountKind,
    Entry,
    Transaction,
)
from gridfleet.server.billing.money import floor_amount, fmt, from_units, to_units

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = [
    "AccountKind", "IdempotencyConflict", "InsufficientFunds", "LedgerError", "agent_payable", "balance",
    "entries_total", "post", "reverse", "system_account", "wallet", "with_retries",
]

RETRY_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
MAX_ATTEMPTS = 10
BASE_DELAY = 0.01
MAX_DELAY = 0.5


class LedgerError(Exception):
    """A posting was refused; nothing was written."""


class InsufficientFunds(LedgerError):
    """A wallet or agent payable would go negative."""

    def __init__(self, account: Account, available: int, change: int) -> None:
        self.account, self.available, self.change = account, from_units(available), from_units(change)
        owner = f" of {account.user}" if account.user_id else ""
        super().__init__(f"insufficient funds: the {account.get_kind_display()}{owner} holds {fmt(available)}, "
                         f"{fmt(-change)} is needed")


class IdempotencyConflict(LedgerError):
    """The key was already posted with different lines."""


# ------------------------------------------------------------------------------------------------ accounts
def _user_account(kind: str, user: Any) -> Account:
    if user is None or getattr(user, "pk", None) is None:
        raise LedgerError(f"a {kind} account needs a saved user")
    account, _ = Account.objects.get_or_create(kind=kind, user_id=user.pk)
    return account


def wallet(user: Any) -> Account:
    """Return the user's wallet (prepaid balance), creating it on first use."""
    return _user_account(AccountKind.WALLET, user)


def agent_payable(agent: Any) -> Account:
    """Return the agent's payable account (commission owed to it), creating it on first use."""
    return _user_account(AccountKind.AGENT_PAYABLE, agent)


def system_account(kind: str) -> Account:
    """Return the platform's account of ``kind`` (platform_revenue, deposits, payouts, adjustments)."""
    if kind not in SYSTEM_KINDS:
        raise LedgerError(f"{kind!r} is not a system account kind ({', '.join(SYSTEM_KINDS)})")
    account, _ = Account.objects.get_or_create(kind=kind, user=None)
    return account


def entries_total(account: Account) -> Decimal:
    """Return the sum of the account's entries (the derived balance)."""
    return from_units(Entry.objects.filter(account=account).aggregate(s=Sum("amount_units"))["s"])


def balance(account: Account) -> Decimal:
    """Return the account's balance: the cached, row-locked balance of a wallet/agent payable (read fresh from the
    database), the sum of the entries of a system account."""
    if account.kind in USER_KINDS:
        return from_units(Account.objects.values_list("balance_units", flat=True).get(pk=account.pk))
    return entries_total(account)


# ------------------------------------------------------------------------------------------------ retries
def _sqlstate(exc: BaseException) -> str | None:
    for err in (exc, exc.__cause__, exc.__context__):
        if err is None:
            continue
        code = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if code:
            return str(code)
    return None


def is_retryable(exc: BaseException) -> bool:
    """Return True for a serialization failure or deadlock (PostgreSQL) or a busy database (SQLite)."""
    if not isinstance(exc, OperationalError):
        return False
    return _sqlstate(exc) in RETRY_SQLSTATES or "database is locked" in str(exc)


def with_retries(fn: Callable[[], T], *, attempts: int = MAX_ATTEMPTS) -> T:
    """Run ``fn`` (which opens its own transaction), again after a serialization failure or deadlock, with
    jittered exponential backoff. Inside a caller's ``atomic`` block it runs once: the caller must retry."""
    if connection.in_atomic_block:
        return fn()
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except OperationalError as exc:
            if not is_retryable(exc) or attempt == attempts:
                raise
            delay = min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1)) * (0.5 + random.random())
            log.info("ledger: %s (attempt %d), retrying in %.3f s", _sqlstate(exc) or exc, attempt, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


# ------------------------------------------------------------------------------------------------ posting
Lines = list[tuple[Account, int]]


def _normalize(lines: Sequence[tuple[Account, Any]]) -> Lines:
    out: Lines = []
    for line in lines:
        try:
            account, amount = line
        except (TypeError, ValueError) as exc:
            raise LedgerError("each line is an (account, amount) pair") from exc
        if not isinstance(account, Account) or account.pk is None:
            raise LedgerError(f"not a saved ledger account: {account!r}")
        try:
            units = to_units(amount)
        except ValueError as exc:
            raise LedgerError(str(exc)) from exc
        if units == 0:
            raise LedgerError(f"a line of zero on {account} (leave it out)")
        out.append((account, units))
    if len(out) < 2:
        raise LedgerError("a transaction needs at least two lines")
    total = sum(units for _, units in out)
    if total != 0:
        raise LedgerError(f"the lines do not balance: they sum to {fmt(total)}")
    return out


def _signature(lines: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    return sorted(lines)


def _replay(existing: Transaction, lines: Lines) -> Transaction:
    posted = list(existing.entries.values_list("account_id", "amount_units"))
    if _signature(posted) != _signature([(a.pk, u) for a, u in lines]):
        raise IdempotencyConflict(f"the key {existing.key!r} was already posted with different lines")
    existing.replayed = True
    return existing


def _check_text(key: str, kind: str) -> None:
    if not key or len(key) > 200:
        raise LedgerError("an idempotency key of 1 to 200 characters is required")
    if not kind or len(kind) > 32:
        raise LedgerError("a kind of 1 to 32 characters is required")


def _user_or_none(user: Any) -> Any:
    return user if user is not None and getattr(user, "pk", None) is not None else None


def _write_entries(txn: Transaction, lines: Lines, locked: dict[int, Account]) -> dict[int, int]:
    """Insert the entries (with each cached account's running balance); return the change per cached account."""
    running = {pk: acc.balance_units for pk, acc in locked.items()}
    rows = []
    for account, units in lines:
        after = None
        if account.pk in running:
            running[account.pk] += units
            after = running[account.pk]
        rows.append(Entry(transaction=txn, account_id=account.pk, amount_units=units, balance_after_units=after))
    Entry.objects.bulk_create(rows)
    return {pk: running[pk] - acc.balance_units for pk, acc in locked.items()}


def _apply_balances(changes: dict[int, int]) -> None:
    """Move the cached balances (the rows are locked by the caller)."""
    for pk, change in sorted(changes.items()):
        if change:
            Account.objects.filter(pk=pk).update(balance_units=F("balance_units") + change)


def _post_once(key: str, kind: str, lines: Lines, memo: str, user: Any, created_by: Any, data: dict[str, Any],
               reverses: Transaction | None) -> Transaction:
    with transaction.atomic():
        cached_ids = sorted({a.pk for a, _ in lines if a.kind in USER_KINDS})
        locked = {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=cached_ids).order_by("pk")}
        existing = Transaction.objects.filter(key=key).first()
        if existing is not None:
            return _replay(existing, lines)
        change: dict[int, int] = defaultdict(int)
        for account, units in lines:
            change[account.pk] += units
        for pk in cached_ids:
            if locked[pk].balance_units + change[pk] < 0:
                raise InsufficientFunds(locked[pk], locked[pk].balance_units, change[pk])
        try:
            with transaction.atomic():
                txn = Transaction.objects.create(key=key, kind=kind, memo=memo[:500], user=_user_or_none(user),
                                                 created_by=_user_or_none(created_by), data=data,
                                                 reverses=reverses)
        except IntegrityError:
            # the same key committed by a concurrent posting since we looked (no cached account serialized us)
            existing = Transaction.objects.filter(key=key).first()
            if existing is None:
                raise
            return _replay(existing, lines)
        changes = _write_entries(txn, lines, locked)
        try:
            with transaction.atomic():
                _apply_balances(changes)
        except IntegrityError as exc:  # the CHECK constraint: cannot happen under the lock, kept as a backstop
            pk = next(iter(changes))
            raise InsufficientFunds(locked[pk], locked[pk].balance_units, changes[pk]) from exc
    return txn


def post(*, key: str, kind: str, lines: Sequence[tuple[Account, Decimal]], memo: str = "", user: Any = None,
         created_by: Any = None, data: dict[str, Any] | None = None) -> Transaction:
    """Post one balanced transaction atomically and return it (a replayed key returns the first transaction).

    ``lines``: at least two (account, amount) pairs, no zero amount, at most 8 decimal places, summing to zero;
    a positive amount increases the account's balance. Raises :class:`InsufficientFunds` when a wallet or agent
    payable would go negative and :class:`IdempotencyConflict` when ``key`` was posted with other lines (nothing
    written in either case), :class:`LedgerError` for malformed lines.
    """
    _check_text(key, kind)
    normalized = _normalize(lines)
    existing = Transaction.objects.filter(key=key).first()
    if existing is not None:
        return _replay(existing, normalized)
    return with_retries(lambda: _post_once(key, kind, normalized, memo, user, created_by, dict(data or {}), None))


def _reversal_lines(entries: list[Entry], fraction: Decimal | None) -> Lines:
    if fraction is None:
        return [(e.account, -e.amount_units) for e in entries]
    if not Decimal(0) < fraction <= 1:
        raise LedgerError("fraction must be more than 0 and at most 1")
    lines = [(e.account, -int(to_units(floor_amount(from_units(abs(e.amount_units)) * fraction)))
              * (1 if e.amount_units > 0 else -1)) for e in entries]
    residual = sum(u for _, u in lines)
    if residual:
        # the rounding residue goes to one line, preferably a system account's (never in a user's disfavour)
        order = sorted(range(len(lines)), key=lambda i: (lines[i][0].kind in USER_KINDS, -abs(lines[i][1])))
        i = order[0]
        lines[i] = (lines[i][0], lines[i][1] - residual)
    lines = [(a, u) for a, u in lines if u]
    if len(lines) < 2:
        raise LedgerError("the fraction is too small to reverse anything")
    return lines


def _reverse_once(txn: Transaction, key: str, memo: str, created_by: Any, fraction: Decimal | None) -> Transaction:
    with transaction.atomic():
        original = Transaction.objects.select_for_update().get(pk=txn.pk)  # serializes reversals of one txn
        entries = list(original.entries.select_related("account").order_by("id"))
        lines = _reversal_lines(entries, fraction)
        existing = Transaction.objects.filter(key=key).first()
        if existing is not None:
            return _replay(existing, lines)
        # never reverse more than was posted: each account's reversals stay within its original amount
        done: dict[int, int] = defaultdict(int)
        for account_id, units in Entry.objects.filter(transaction__reverses=original).values_list(
                "account_id", "amount_units"):
            done[account_id] += units
        for account, units in lines:
            posted = sum(e.amount_units for e in entries if e.account_id == account.pk)
            if abs(done[account.pk] + units) > abs(posted) or (done[account.pk] + units) * posted > 0:
                raise LedgerError(f"transaction {original.key!r} is already reversed (in full or in part): "
                                  "this reversal would exceed it")
        return _post_once(key, "reversal", lines, memo or f"reversal of {original.key}", original.user, created_by,
                          {"reverses": original.key, "fraction": None if fraction is None else format(fraction, "f")},
                          original)


def reverse(txn: Transaction, *, key: str, memo: str = "", created_by: Any = None,
            fraction: Decimal | None = None) -> Transaction:
    """Post the opposite of ``txn`` (or ``fraction`` of each line, rounded down to 8 places, the rounding residue
    on a system account) as a new transaction under ``key``; the original is never touched. Refused when the
    reversals of ``txn`` would add up to more than ``txn``."""
    _check_text(key, "reversal")
    if fraction is not None:
        fraction = Decimal(fraction)
    return with_retries(lambda: _reverse_once(txn, key, memo, created_by, fraction))
