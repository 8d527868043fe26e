"""Input validation and output shapes of the billing API: every amount is a decimal string, never a float."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from gridfleet.server.billing.models import Entry, Payment, Payout, Transaction, Voucher
from gridfleet.server.billing.money import fmt, parse_amount
from gridfleet.server.billing.providers import provider_names

MAX_DIGITS = 18  # 10 integer digits + 8 decimals: always fits a BigInteger of units


class AmountField(serializers.DecimalField):
    """A decimal string with at most 8 places (more is refused, never rounded); floats are refused."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", MAX_DIGITS)
        kwargs.setdefault("decimal_places", 8)
        kwargs.setdefault("coerce_to_string", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        """Refuse JSON numbers with a fraction (floats) and more than 8 places; then the usual checks."""
        if isinstance(data, float):
            self.fail("invalid")
        if isinstance(data, str | int) and not isinstance(data, bool):
            try:
                parse_amount(data)
            except ValueError as exc:
                raise serializers.ValidationError(str(exc)) from None
        return super().to_internal_value(data)


class UnitsField(serializers.Field):  # type: ignore[type-arg]
    """Read-only: integer minor units shown as a decimal string with 8 places."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> str | None:
        """Return the decimal string (None stays null)."""
        return None if value is None else fmt(value)


class CreditSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """``POST /billing/credit/``."""

    user = serializers.CharField(max_length=150, help_text="username or numeric id")
    amount = AmountField(help_text="decimal string; negative (admins only): a debit/adjustment")
    reason = serializers.CharField(max_length=500)
    idempotency_key = serializers.CharField(max_length=120, help_text="a retry with the same key posts nothing new")


class TransactionSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A posted transaction with its lines."""

    lines = serializers.SerializerMethodField()
    replayed = serializers.SerializerMethodField()

    class Meta:
        model = Transaction
        fields = ["id", "key", "kind", "memo", "user", "created_by", "reverses", "created_at", "lines", "replayed"]

    def get_lines(self, obj: Transaction) -> list[dict[str, Any]]:
        """Return ``[{account_kind, user, amount}]``."""
        return [{"account_kind": kind, "user": user_id, "amount": fmt(units)}
                for kind, user_id, units in obj.entries.order_by("id").values_list(
                    "account__kind", "account__user_id", "amount_units")]

    def get_replayed(self, obj: Transaction) -> bool:
        """True when this answer replays an earlier request with the same idempotency key."""
        return bool(obj.replayed)


class EntrySerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """One ledger line as its account holder sees it."""

    amount = UnitsField(source="amount_units")
    balance_after = UnitsField(source="balance_after_units")
    account_kind = serializers.CharField(source="account.kind", read_only=True)
    user = serializers.IntegerField(source="account.user_id", read_only=True, allow_null=True)
    username = serializers.CharField(source="account.user.username", read_only=True, default=None)
    kind = serializers.CharField(source="transaction.kind", read_only=True)
    memo = serializers.CharField(source="transaction.memo", read_only=True)
    created_at = serializers.DateTimeField(source="transaction.created_at", read_only=True)
    reverses = serializers.IntegerField(source="transaction.reverses_id", read_only=True, allow_null=True)

    class Meta:
        model = Entry
        fields = ["id", "transaction", "created_at", "kind", "memo", "account_kind", "user", "username", "amount",
                  "balance_after", "reverses"]


class BalanceSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """``GET /billing/balance/``."""

    user = serializers.IntegerField()
    username = serializers.CharField()
    balance = serializers.CharField(help_text="decimal string")
    currency = serializers.CharField()
    minimum_balance = serializers.CharField(allow_null=True)
    agent_payable = serializers.CharField(allow_null=True, help_text="agents: commission owed (decimal string)")
    withdrawable = serializers.CharField(allow_null=True, help_text="agents: requestable for payout now")
    pending_payouts = serializers.CharField(allow_null=True)


class VoucherCreateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """``POST /billing/vouchers/``."""

    amount = AmountField()
    count = serializers.IntegerField(min_value=1, max_value=500, default=1)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class VoucherSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A voucher as admins list it (the code itself is never stored: only its first characters)."""

    amount = UnitsField(source="amount_units")
    status = serializers.SerializerMethodField()
    redeemed_by = serializers.CharField(source="redeemed_by.username", read_only=True, default=None)

    class Meta:
        model = Voucher
        fields = ["id", "hint", "amount", "status", "created_at", "expires_at", "redeemed_by", "redeemed_at",
                  "transaction"]

    def get_status(self, obj: Voucher) -> str:
        """``redeemed``, ``expired`` or ``active``."""
        from django.utils import timezone

        if obj.redeemed_at is not None:
            return "redeemed"
        if obj.expires_at is not None and obj.expires_at <= timezone.now():
            return "expired"
        return "active"


class NewVoucherSerializer(VoucherSerializer):
    """A voucher just created, with its code (shown this once)."""

    code = serializers.CharField(read_only=True)

    class Meta(VoucherSerializer.Meta):
        fields = [*VoucherSerializer.Meta.fields, "code"]


class RedeemSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """``POST /billing/redeem/``."""

    code = serializers.CharField(max_length=64)


class RedeemResultSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """The answer to a redemption."""

    amount = serializers.CharField()
    balance = serializers.CharField()
    currency = serializers.CharField()
    transaction = serializers.IntegerField()


class PaymentCreateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """``POST /billing/payments/``."""

    amount = AmountField()
    provider = serializers.CharField(max_length=32, required=False)

    def validate_provider(self, value: str) -> str:
        """Only a registered provider."""
        if value not in provider_names():
            raise serializers.ValidationError(f"unknown provider (known: {', '.join(provider_names())})")
        return value


class PaymentSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A provider payment."""

    amount = UnitsField(source="amount_units")

    class Meta:
        model = Payment
        fields = ["id", "provider", "reference", "user", "amount", "status", "checkout", "transaction", "created_at",
                  "updated_at"]


class PayoutCreateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """``POST /billing/payouts/``."""

    amount = AmountField()
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class DecisionSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """``POST /billing/payouts/{id}/approve/`` and ``reject/``."""

    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class PayoutSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A payout request."""

    amount = UnitsField(source="amount_units")
    agent_username = serializers.CharField(source="agent.username", read_only=True)

    class Meta:
        model = Payout
        fields = ["id", "agent", "agent_username", "amount", "status", "note", "requested_at", "decided_by",
                  "decided_at", "decision_note", "transaction"]
