"""The double-entry ledger: accounts, balanced transactions and their immutable entries; vouchers, payments, payouts.

Amounts are integer minor units (``*_units``, 1 unit = 10^-8 of the billing currency, see :mod:`.money`).
Sign convention: a positive entry increases its account's balance; the entries of one transaction sum to zero.
Wallet and agent-payable accounts keep a cached ``balance_units`` (updated by :func:`.ledger.post` under a row lock
in the posting transaction) that a database CHECK keeps at or above zero; system accounts are not cached (their
balance is the sum of their entries). Transactions and entries are never updated or deleted: the model layer
refuses it here and, on PostgreSQL, triggers refuse it in the database (migration 0002).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q


class AccountKind(models.TextChoices):
    """What an account holds."""

    WALLET = "wallet", "user wallet"
    AGENT_PAYABLE = "agent_payable", "agent payable"
    PLATFORM_REVENUE = "platform_revenue", "platform revenue"
    DEPOSITS = "deposits", "deposits"
    PAYOUTS = "payouts", "payouts"
    ADJUSTMENTS = "adjustments", "adjustments"


USER_KINDS = (AccountKind.WALLET, AccountKind.AGENT_PAYABLE)
"""Kinds that belong to a user, have a cached balance and may never go negative."""
SYSTEM_KINDS = (AccountKind.PLATFORM_REVENUE, AccountKind.DEPOSITS, AccountKind.PAYOUTS, AccountKind.ADJUSTMENTS)
"""Kinds of the platform's own accounts (one each, no user, balance = sum of entries)."""


class ImmutableError(Exception):
    """Raised on an attempt to change or delete a posted transaction or entry."""


class ImmutableQuerySet(models.QuerySet[Any]):
    """A queryset that refuses bulk updates and deletes."""

    def update(self, **kwargs: Any) -> int:
        """Refuse: ledger rows are never edited (post a reversal instead)."""
        raise ImmutableError(f"{self.model.__name__} rows are immutable: post a reversing transaction instead")

    def delete(self) -> tuple[int, dict[str, int]]:
        """Refuse: ledger rows are never deleted (post a reversal instead)."""
        raise ImmutableError(f"{self.model.__name__} rows are immutable: post a reversing transaction instead")


class _Immutable(models.Model):
    """Rows that can be inserted once and never saved again nor deleted."""

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Insert the row; refuse any later save."""
        if not self._state.adding:
            raise ImmutableError(f"{type(self).__name__} {self.pk} is immutable: post a reversing transaction instead")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        """Refuse."""
        raise ImmutableError(f"{type(self).__name__} {self.pk} is immutable: post a reversing transaction instead")


class Account(models.Model):
    """One ledger account: a user's wallet or agent payable, or one of the platform's system accounts."""

    kind = models.CharField(max_length=20, choices=AccountKind.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="ledger_accounts")
    balance_units = models.BigIntegerField(default=0, help_text="cached balance (wallet/agent payable only)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(balance_units__gte=0) | ~Q(kind__in=USER_KINDS),
                                   name="billing_account_user_kinds_not_negative"),
            models.CheckConstraint(condition=(Q(kind__in=USER_KINDS) & Q(user__isnull=False))
                                   | (~Q(kind__in=USER_KINDS) & Q(user__isnull=True)),
                                   name="billing_account_user_iff_user_kind"),
            models.UniqueConstraint(fields=["kind", "user"], condition=Q(user__isnull=False),
                                    name="billing_account_one_per_user_kind"),
            models.UniqueConstraint(fields=["kind"], condition=Q(user__isnull=True),
                                    name="billing_account_one_system_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.user_id}" if self.user_id else str(self.kind)

    @property
    def cached(self) -> bool:
        """Return True when the balance is cached on the row (wallets and agent payables)."""
        return self.kind in USER_KINDS


class Transaction(_Immutable):
    """One balanced movement of money, posted once under its idempotency ``key``."""

    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=32, db_index=True)
    memo = models.CharField(max_length=500, blank=True, default="")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="ledger_transactions", help_text="whom the movement concerns")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    reverses = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals")
    data = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    replayed = False
    """Set on the instance :func:`.ledger.post` returns when the key had been posted before (not a field)."""

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"


class Entry(_Immutable):
    """One line of a transaction: ``amount_units`` added to ``account`` (negative: taken from it)."""

    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries")
    amount_units = models.BigIntegerField()
    balance_after_units = models.BigIntegerField(null=True, blank=True,
                                                 help_text="the account's balance after this entry (cached kinds)")

    class Meta:
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=~Q(amount_units=0), name="billing_entry_not_zero")]
        indexes = [models.Index(fields=["account", "id"])]

    def __str__(self) -> str:
        return f"{self.account} {self.amount_units:+d}"


# ------------------------------------------------------------------------------------------------ deposits
class Voucher(models.Model):
    """A recharge code worth ``amount_units``, redeemable once. Only the SHA-256 of the code is stored."""

    code_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12, help_text="the first characters of the code, to recognise it")
    amount_units = models.BigIntegerField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    redeemed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="redeemed_vouchers")
    redeemed_at = models.DateTimeField(null=True, blank=True)
    transaction = models.OneToOneField(Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=Q(amount_units__gt=0), name="billing_voucher_positive")]


class PaymentStatus(models.TextChoices):
    """Where a provider payment stands."""

    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"


class Payment(models.Model):
    """A deposit through a payment provider: created at checkout, credited once when the provider confirms it."""

    provider = models.CharField(max_length=32)
    reference = models.CharField(max_length=120, help_text="the provider's payment id")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments")
    amount_units = models.BigIntegerField()
    status = models.CharField(max_length=8, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    checkout = models.JSONField(default=dict, blank=True)
    transaction = models.OneToOneField(Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "reference"], name="billing_payment_unique_reference"),
            models.CheckConstraint(condition=Q(amount_units__gt=0), name="billing_payment_positive"),
        ]


class PayoutStatus(models.TextChoices):
    """Where a payout request stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Payout(models.Model):
    """An agent's request to be paid (part of) its commission; an admin approves (posts it) or rejects it."""

    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payouts")
    amount_units = models.BigIntegerField()
    status = models.CharField(max_length=8, choices=PayoutStatus.choices, default=PayoutStatus.PENDING)
    note = models.CharField(max_length=500, blank=True, default="")
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True, default="")
    transaction = models.OneToOneField(Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=Q(amount_units__gt=0), name="billing_payout_positive")]
