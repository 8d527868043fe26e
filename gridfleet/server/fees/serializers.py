"""Request and response bodies of the fees endpoints (amounts are decimal strings, never floats)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from gridfleet.server.fees.models import CapitalMovement, FeeSettings, Settlement, from_units

RATE = {"max_digits": 7, "decimal_places": 6, "min_value": Decimal(0), "max_value": Decimal(1)}


def amount_str(units: int | None) -> str:
    """Return minor units as a plain decimal string without trailing zeros."""
    from gridfleet.server.trading.exports import decimal_str

    return decimal_str(from_units(units))


@extend_schema_field(OpenApiTypes.STR)
class MoneyField(serializers.Field):  # type: ignore[type-arg]
    """A money amount read from minor units and written as a decimal string."""

    def to_representation(self, value: Any) -> str:
        """Return the decimal string."""
        return amount_str(value)

    def to_internal_value(self, data: Any) -> Any:  # pragma: no cover - read-only use
        """Read-only."""
        raise NotImplementedError


class RateField(serializers.DecimalField):
    """A rate in [0, 1] with up to 6 decimals, shown without trailing zeros (``"0.1"``)."""

    def __init__(self, **kwargs: Any) -> None:
        for key, value in RATE.items():
            kwargs.setdefault(key, value)
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> str:
        """Return the rate as a plain decimal string."""
        from gridfleet.server.trading.exports import decimal_str

        return decimal_str(Decimal(value))


class AmountField(serializers.DecimalField):
    """A positive amount with at most 8 decimal places (more is refused, never rounded)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 28)
        kwargs.setdefault("decimal_places", 8)
        kwargs.setdefault("min_value", Decimal("0.00000001"))
        super().__init__(**kwargs)


class SettlementSerializer(serializers.ModelSerializer[Settlement]):
    """One statement line."""

    username = serializers.CharField(source="user.username", read_only=True)
    bot_name = serializers.CharField(source="bot.name", read_only=True)
    symbol = serializers.CharField(source="bot.symbol", read_only=True)
    equity = MoneyField(source="equity_units", read_only=True)
    capital = MoneyField(source="capital_units", read_only=True)
    net_profit = MoneyField(source="net_profit_units", read_only=True)
    hwm_before = MoneyField(source="hwm_before_units", read_only=True)
    hwm_after = MoneyField(source="hwm_after_units", read_only=True)
    fee = MoneyField(source="fee_units", read_only=True)
    commission = MoneyField(source="commission_units", read_only=True)
    refunded = MoneyField(source="refunded_units", read_only=True)
    rate = RateField(read_only=True)

    class Meta:
        model = Settlement
        fields = ["id", "bot", "bot_name", "symbol", "user", "username", "period", "reason", "as_of", "mark_price",
                  "mark_source", "base", "quote_flow", "equity", "capital", "net_profit", "hwm_before", "hwm_after",
                  "rate", "fee", "commission", "refunded", "status", "ledger_key", "collected_at", "created_at"]
        read_only_fields = fields


class FeeSettingsSerializer(serializers.ModelSerializer[FeeSettings]):
    """The platform's default rate and the bounds agents must keep."""

    default_rate = RateField()
    min_rate = RateField()
    max_rate = RateField()

    class Meta:
        model = FeeSettings
        fields = ["default_rate", "min_rate", "max_rate", "updated_at"]
        read_only_fields = ["updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Keep min ≤ default ≤ max."""
        inst = self.instance
        lo = attrs.get("min_rate", getattr(inst, "min_rate", Decimal(0)))
        hi = attrs.get("max_rate", getattr(inst, "max_rate", Decimal(1)))
        default = attrs.get("default_rate", getattr(inst, "default_rate", lo))
        if lo > hi:
            raise serializers.ValidationError({"min_rate": ["must not exceed max_rate"]})
        if not lo <= default <= hi:
            raise serializers.ValidationError({"default_rate": [f"must be between {lo} and {hi}"]})
        return attrs


class FeeRateSerializer(serializers.Serializer[Any]):
    """A user's rate (null: back to the platform default) and, for admins, their minimum balance."""

    rate = RateField(allow_null=True)
    min_balance = serializers.DecimalField(max_digits=28, decimal_places=8, min_value=Decimal(0), allow_null=True,
                                           required=False)


class CommissionRateSerializer(serializers.Serializer[Any]):
    """An agent's commission rate."""

    commission_rate = RateField()


class SettleRequestSerializer(serializers.Serializer[Any]):
    """Run a settlement now: an optional period (ISO date; default the last completed one) and bot."""

    period = serializers.CharField(required=False, allow_blank=True, max_length=40)
    bot = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


class RefundSerializer(serializers.Serializer[Any]):
    """Refund part of a fee: a fraction of it or an amount, with a reason."""

    fraction = serializers.DecimalField(max_digits=20, decimal_places=18, min_value=Decimal("0.000000000000000001"),
                                        max_value=Decimal(1), required=False)
    amount = AmountField(required=False)
    reason = serializers.CharField(max_length=500)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Exactly one of fraction and amount."""
        if ("fraction" in attrs) == ("amount" in attrs):
            raise serializers.ValidationError({"non_field_errors": ["give either fraction or amount"]})
        return attrs


class CapitalRequestSerializer(serializers.Serializer[Any]):
    """Add capital to or withdraw it from a bot."""

    action = serializers.ChoiceField(choices=["add", "withdraw"])
    amount = AmountField()
    idempotency_key = serializers.CharField(max_length=80, required=False, allow_blank=True)
    note = serializers.CharField(max_length=200, required=False, allow_blank=True)


class CapitalMovementSerializer(serializers.ModelSerializer[CapitalMovement]):
    """One capital movement."""

    amount = MoneyField(source="amount_units", read_only=True)
    capital_after = MoneyField(source="capital_after_units", read_only=True)

    class Meta:
        model = CapitalMovement
        fields = ["id", "bot", "kind", "amount", "capital_after", "note", "created_at"]
        read_only_fields = fields
