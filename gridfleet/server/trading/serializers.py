"""Read-only serializers of what the runtime records; decimals are exact strings without trailing zeros."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from gridfleet.server.trading.exports import decimal_str, ms_iso
from gridfleet.server.trading.models import BotRun, Fill, JournalEntry, Order


@extend_schema_field(OpenApiTypes.STR)
class ExactDecimalField(serializers.Field):  # type: ignore[type-arg]
    """A Decimal as an exact string (``"0.002"``), ``null`` for None."""

    def __init__(self, **kwargs: Any) -> None:
        """Read-only field."""
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value: Decimal) -> str:
        """Return the exact string."""
        return decimal_str(value)


@extend_schema_field(OpenApiTypes.DATETIME)
class MsIsoField(serializers.Field):  # type: ignore[type-arg]
    """Unix ms shown as ISO-8601 UTC."""

    def __init__(self, **kwargs: Any) -> None:
        """Read-only field."""
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value: int) -> str:
        """Return the ISO string."""
        return ms_iso(value)


class OrderSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """An order of a bot."""

    amount = ExactDecimalField()
    price = ExactDecimalField(allow_null=True)
    filled = ExactDecimalField()

    class Meta:
        model = Order
        fields = ["id", "bot", "client_id", "exchange_id", "symbol", "side", "type", "price", "amount", "filled",
                  "status", "level", "tag", "reason", "created_at", "updated_at", "run"]
        read_only_fields = fields


class FillSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """One execution."""

    price = ExactDecimalField()
    amount = ExactDecimalField()
    fee = ExactDecimalField()
    time = MsIsoField(source="ts")

    class Meta:
        model = Fill
        fields = ["id", "bot", "trade_id", "client_id", "symbol", "side", "price", "amount", "fee", "fee_currency",
                  "ts", "time", "is_maker", "order_complete", "run"]
        read_only_fields = fields


class JournalEntrySerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A journal entry (correction, warning, risk alert, state change)."""

    time = MsIsoField(source="ts")

    class Meta:
        model = JournalEntry
        fields = ["id", "bot", "ts", "time", "kind", "message", "data", "run"]
        read_only_fields = fields


class PositionSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """What one bot holds, from its fills (average cost) and its latest equity snapshot."""

    bot = serializers.IntegerField()
    name = serializers.CharField()
    symbol = serializers.CharField()
    base_held = serializers.CharField(help_text="Σ buys − Σ sells, net of base-currency fees (exact)")
    cost_basis = serializers.CharField(help_text="quote cost of the base held (average cost, quote fees included)")
    avg_entry_price = serializers.CharField(allow_null=True, help_text="cost_basis / base_held; null when flat")
    realized_pnl = serializers.CharField(help_text="average-cost realised PnL from the fills")
    grid_profit = serializers.CharField(allow_null=True, help_text="latest equity snapshot's grid profit")
    last_price = serializers.CharField(allow_null=True, help_text="latest equity snapshot's price (else last fill)")
    unrealized_pnl = serializers.CharField(allow_null=True, help_text="base_held × last_price − cost_basis")
    fills = serializers.IntegerField()
    last_fill_ts = serializers.IntegerField(allow_null=True)
    snapshot_ts = serializers.IntegerField(allow_null=True)


class BotRunSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """One run of a bot: a start after a stop begins a new run (fresh runtime id and log, the config then)."""

    class Meta:
        model = BotRun
        fields = ["id", "bot", "number", "runtime_id", "config", "started_at", "ended_at"]
        read_only_fields = fields
