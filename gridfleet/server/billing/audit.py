"""The ledger invariants, checked over the whole database (``gridfleet billing audit`` and the test suite).

1. every transaction has at least two entries and they sum to zero;
2. the whole ledger sums to zero;
3. every cached balance (wallets, agent payables) equals the sum of its account's entries, and system accounts
   keep no cached balance;
4. no wallet or agent payable is negative (cached or derived);
5. idempotency keys are unique;
6. every reversal stays within the transaction it reverses (per account, opposite sign, not more in total).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Q, Sum

from gridfleet.server.billing.models import USER_KINDS, Account, Entry, Transaction
from gridfleet.server.billing.money import fmt

MAX_LISTED = 50  # failures listed per check (the count is always exact)


@dataclass
class Check:
    """One invariant: how many things it looked at and what failed (one line each)."""

    name: str
    checked: int = 0
    failures: list[str] = field(default_factory=list)
    failed: int = 0

    def fail(self, message: str) -> None:
        self.failed += 1
        if len(self.failures) < MAX_LISTED:
            self.failures.append(message)

    @property
    def ok(self) -> bool:
        return self.failed == 0


@dataclass
class AuditReport:
    """The result of :func:`run_audit`."""

    checks: list[Check]

    @property
    def ok(self) -> bool:
        """Return True when every invariant holds."""
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[str]:
        """Return every failure line, prefixed with its check."""
        return [f"{c.name}: {f}" for c in self.checks for f in c.failures]


def _transactions_balance() -> Check:
    check = Check("each transaction sums to zero")
    rows = Transaction.objects.annotate(total=Sum("entries__amount_units"), lines=Count("entries"))
    check.checked = Transaction.objects.count()
    for txn_id, key, total, lines in rows.filter(Q(lines__lt=2) | ~Q(total=0)).values_list(
            "id", "key", "total", "lines"):
        check.fail(f"transaction {txn_id} ({key}) has {lines} entries summing to {fmt(total or 0)}")
    return check


def _ledger_balances() -> Check:
    check = Check("the whole ledger sums to zero")
    agg = Entry.objects.aggregate(total=Sum("amount_units"), n=Count("id"))
    check.checked = agg["n"]
    if agg["total"] or 0:
        check.fail(f"the {agg['n']} entries sum to {fmt(agg['total'])}, not 0")
    return check


def _cached_balances(sums: dict[int, int]) -> Check:
    check = Check("cached balances equal the sum of their entries")
    for account in Account.objects.select_related("user").order_by("id"):
        check.checked += 1
        derived = sums.get(account.pk, 0)
        if account.kind in USER_KINDS:
            if account.balance_units != derived:
                check.fail(f"account {account.pk} ({account.kind} of {account.user}) caches "
                           f"{fmt(account.balance_units)} but its entries sum to {fmt(derived)}")
        elif account.balance_units != 0:
            check.fail(f"system account {account.pk} ({account.kind}) caches {fmt(account.balance_units)}: "
                       "system balances are derived, the cache must stay 0")
    return check


def _non_negative(sums: dict[int, int]) -> Check:
    check = Check("no wallet or agent payable is negative")
    for account in Account.objects.filter(kind__in=USER_KINDS).select_related("user").order_by("id"):
        check.checked += 1
        lowest = min(account.balance_units, sums.get(account.pk, 0))
        if lowest < 0:
            check.fail(f"account {account.pk} ({account.kind} of {account.user}) is negative: {fmt(lowest)}")
    return check


def _unique_keys() -> Check:
    check = Check("idempotency keys are unique")
    check.checked = Transaction.objects.count()
    for row in Transaction.objects.values("key").annotate(n=Count("id")).filter(n__gt=1):
        check.fail(f"key {row['key']!r} was posted {row['n']} times")
    return check


def _reversals() -> Check:
    check = Check("reversals stay within what they reverse")
    posted: dict[tuple[int, int], int] = defaultdict(int)
    reversed_: dict[tuple[int, int], int] = defaultdict(int)
    originals = set(Transaction.objects.filter(reverses__isnull=False).values_list("reverses_id", flat=True))
    for orig_id, account_id, units in Entry.objects.filter(transaction_id__in=originals).values_list(
            "transaction_id", "account_id", "amount_units"):
        posted[(orig_id, account_id)] += units
    for orig_id, account_id, units in Entry.objects.filter(transaction__reverses__isnull=False).values_list(
            "transaction__reverses_id", "account_id", "amount_units"):
        reversed_[(orig_id, account_id)] += units
    check.checked = len(originals)
    for (orig_id, account_id), units in sorted(reversed_.items()):
        original = posted.get((orig_id, account_id), 0)
        if abs(units) > abs(original) or units * original > 0:
            check.fail(f"transaction {orig_id}: reversals move {fmt(units)} on account {account_id}, "
                       f"which it moved by {fmt(original)}")
    return check


def run_audit() -> AuditReport:
    """Check every ledger invariant and return the report (read-only)."""
    sums = dict(Entry.objects.values("account_id").annotate(s=Sum("amount_units")).values_list("account_id", "s"))
    return AuditReport([_transactions_balance(), _ledger_balances(), _cached_balances(sums), _non_negative(sums),
                        _unique_keys(), _reversals()])
