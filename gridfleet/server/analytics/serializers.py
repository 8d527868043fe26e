"""Serializers of backtest jobs and (for the schema) the analytics documents."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError
from rest_framework import serializers

from gridfleet.server.analytics.backtests import check_file_name, decimals
from gridfleet.server.analytics.models import BacktestJob
from gridfleet.server.trading.filters import parse_time_ms

_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w.]*): (.+)$")


def config_errors(exc: ValidationError) -> dict[str, list[str]]:
    """Map a pydantic error to ``{"grid.lower": ["message"], ...}`` (model-level errors named by their prefix)."""
    out: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        m = _FIELD_PREFIX.match(msg)
        if m and (not loc or m.group(1) == loc or m.group(1).startswith(loc + ".")):
            loc, msg = m.group(1), m.group(2)  # a model-level check that names its field
        out.setdefault(loc or "non_field_errors", []).append(msg)
    return out


class BacktestDataSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Where the candles come from: a file in the server's data directory (symbol/timeframe: later)."""

    file = serializers.CharField(help_text="name of a .csv/.csv.gz/.parquet file in the server's data directory")

    def validate_file(self, value: str) -> str:
        """Refuse paths and other file types."""
        try:
            return check_file_name(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class BacktestCreateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """``POST /backtests/``: a grid config, the data, optional ``from`` (inclusive) / ``to`` (exclusive)."""

    config = serializers.DictField(help_text="a grid config (see `gridfleet config schema`)")
    data = BacktestDataSerializer()

    def validate_config(self, value: dict[str, Any]) -> dict[str, Any]:
        """Validate with the engine's GridConfig; errors per field."""
        from gridfleet.engine.config import GridConfig, config_to_dict

        try:
            return config_to_dict(GridConfig.model_validate(decimals(value)))
        except ValidationError as exc:
            raise serializers.ValidationError(config_errors(exc)) from None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Parse and check the window."""
        for key in ("from", "to"):
            raw = self.initial_data.get(key) if hasattr(self.initial_data, "get") else None
            if raw in (None, ""):
                attrs[key] = None
                continue
            try:
                attrs[key] = parse_time_ms(raw if isinstance(raw, int) and not isinstance(raw, bool) else str(raw))
            except ValueError as exc:
                raise serializers.ValidationError({key: [str(exc)]}) from None
        if attrs["from"] is not None and attrs["to"] is not None and attrs["from"] >= attrs["to"]:
            raise serializers.ValidationError({"to": ["must be after 'from'"]})
        return attrs


# "from"/"to" are reserved words: declare them after the class (they are parsed in validate()).
BacktestCreateSerializer._declared_fields["from"] = serializers.CharField(
    required=False, allow_null=True, allow_blank=True, help_text="inclusive start: ISO-8601 (naive = UTC) or Unix ms")
BacktestCreateSerializer._declared_fields["to"] = serializers.CharField(
    required=False, allow_null=True, allow_blank=True, help_text="exclusive end: ISO-8601 (naive = UTC) or Unix ms")

_LIGHT_DROP = ("equity_curve", "levels", "per_level_profit", "fills", "events")


class BacktestJobSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A backtest job; ``summary`` is the backtest's JSON (with its ≤2,000-point equity curve) once done."""

    status = serializers.CharField(read_only=True, help_text="queued, running, done or failed")
    summary = serializers.JSONField(read_only=True, allow_null=True)

    class Meta:
        model = BacktestJob
        fields = ["id", "owner", "status", "config", "data", "start_ms", "end_ms", "summary", "error", "created_at",
                  "started_at", "finished_at"]
        read_only_fields = fields


class BacktestJobListSerializer(BacktestJobSerializer):
    """A backtest job in a list: the summary without its curve, levels and per-level profit."""

    def to_representation(self, instance: BacktestJob) -> dict[str, Any]:
        """Drop the bulky parts of the summary."""
        out = super().to_representation(instance)
        if isinstance(out.get("summary"), dict):
            out["summary"] = {k: v for k, v in out["summary"].items() if k not in _LIGHT_DROP}
        return out


class DatasetSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A candle file of the server's data directory (pass ``file`` as ``data.file`` of a backtest)."""

    file = serializers.CharField()
    exchange = serializers.CharField(allow_null=True)
    market = serializers.CharField(allow_null=True, help_text="spot, …")
    symbol = serializers.CharField(allow_null=True, help_text="BASE/QUOTE")
    timeframe = serializers.CharField(allow_null=True, help_text="1m, 5m, 1h, 1d…")
    start = serializers.DateField(allow_null=True, help_text="first day (UTC)")
    end = serializers.DateField(allow_null=True, help_text="last day (UTC)")
    size_bytes = serializers.IntegerField()


class BacktestQueuedSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """The answer to a POST: the new job's id and status (``queued``)."""

    id = serializers.IntegerField()
    status = serializers.CharField()


class DailyProfitSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """One UTC day."""

    date = serializers.DateField()
    equity = serializers.CharField(allow_null=True)
    profit = serializers.CharField(allow_null=True)
    realized = serializers.CharField()


class _Figures(serializers.Serializer):  # type: ignore[type-arg]
    grid_profit = serializers.CharField()
    realized_pnl = serializers.CharField()
    unrealized_pnl = serializers.CharField(allow_null=True)
    fees = serializers.DictField(child=serializers.CharField())
    buy_fills = serializers.IntegerField()
    sell_fills = serializers.IntegerField()
    snapshots = serializers.IntegerField()
    first_ts = serializers.IntegerField(allow_null=True)
    last_ts = serializers.IntegerField(allow_null=True)
    initial_equity = serializers.CharField(allow_null=True)
    final_equity = serializers.CharField(allow_null=True)
    total_pnl = serializers.CharField(allow_null=True)
    total_return_pct = serializers.FloatField(allow_null=True)
    annualized_return_pct = serializers.FloatField(allow_null=True)
    max_drawdown_pct = serializers.FloatField(allow_null=True)
    sharpe = serializers.FloatField(allow_null=True)
    sortino = serializers.FloatField(allow_null=True)
    duration_days = serializers.FloatField(allow_null=True)
    closing_sells = serializers.IntegerField()
    win_rate = serializers.FloatField(allow_null=True)
    equity_curve = serializers.ListField(child=serializers.ListField(), help_text="[[ts_ms, equity], …] ≤ 2,000")
    daily = DailyProfitSerializer(many=True)


class BotAnalyticsSerializer(_Figures):
    """Analytics of one bot (definitions: docs/server-analytics.md)."""

    bot = serializers.IntegerField()
    name = serializers.CharField()
    symbol = serializers.CharField()
    currency = serializers.CharField()
    base_held = serializers.CharField()
    avg_entry_price = serializers.CharField(allow_null=True)
    last_price = serializers.CharField(allow_null=True)


class UserAnalyticsSerializer(_Figures):
    """Analytics of all of a user's bots together (definitions: docs/server-analytics.md)."""

    user = serializers.IntegerField()
    bots = serializers.IntegerField()
    currencies = serializers.ListField(child=serializers.CharField())
    per_bot = serializers.ListField(child=serializers.DictField())
