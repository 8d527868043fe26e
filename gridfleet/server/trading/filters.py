"""Filters of the trading endpoints: bot, symbol, side, status/kind, and a ``from``/``to`` time range.

``from`` (inclusive) and ``to`` (exclusive) take ISO-8601 (``2024-07-26``, ``2024-07-26T12:00:00Z``; naive =
UTC) or Unix milliseconds. Fills and journal entries are filtered on their ``ts``; orders on ``created_at``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet

from gridfleet.server.trading.models import BotRun, Fill, JournalEntry, Order


def parse_time_ms(value: str | int) -> int:
    """Convert ISO-8601 (naive = UTC) or Unix ms to Unix ms; raise ``ValueError`` otherwise."""
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"invalid time {text!r} (expected ISO-8601 or Unix milliseconds)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return round(dt.timestamp() * 1000)


class TimeField(forms.CharField):
    """A form field for ISO-8601 or Unix ms, cleaned to Unix ms."""

    def to_python(self, value: Any) -> int | None:  # type: ignore[override]
        """Return Unix ms or None for an empty value."""
        text = super().to_python(value)
        if not text:
            return None
        try:
            return parse_time_ms(text)
        except ValueError as exc:
            # the message echoes the input: pass it as a param so django-filter's "%" formatting leaves it alone
            raise forms.ValidationError("%(reason)s", params={"reason": str(exc)}) from None


class TimeFilter(django_filters.Filter):
    """``field >= value`` (``lookup_expr="gte"``) or ``field < value`` (``"lt"``) on a ms or datetime field."""

    field_class = TimeField

    def __init__(self, *args: Any, as_datetime: bool = False, **kwargs: Any) -> None:
        """``as_datetime``: the model field is a DateTimeField (compare with a UTC datetime)."""
        self.as_datetime = as_datetime
        kwargs.setdefault("help_text", "ISO-8601 (naive = UTC) or Unix milliseconds")
        super().__init__(*args, **kwargs)

    def filter(self, qs: QuerySet[Any], value: Any) -> QuerySet[Any]:
        """Apply the bound."""
        if value is None:
            return qs
        bound: Any = datetime.fromtimestamp(value / 1000, tz=UTC) if self.as_datetime else value
        return qs.filter(**{f"{self.field_name}__{self.lookup_expr}": bound})


class CSVCharFilter(django_filters.BaseInFilter, django_filters.CharFilter):
    """Comma-separated values (``?status=open,filled``), case-insensitive."""

    def filter(self, qs: QuerySet[Any], value: Any) -> QuerySet[Any]:
        """Match any of the values, ignoring case."""
        if not value:
            return qs
        from django.db.models import Q

        query = Q()
        for item in value:
            query |= Q(**{f"{self.field_name}__iexact": item.strip()})
        return qs.filter(query)


def _with_range(cls: type[django_filters.FilterSet], field: str, as_datetime: bool = False) -> None:
    """Add the ``from``/``to`` filters (reserved words, so added after the class is built)."""
    cls.base_filters["from"] = TimeFilter(field_name=field, lookup_expr="gte", as_datetime=as_datetime,
                                          label="from (inclusive)")
    cls.base_filters["to"] = TimeFilter(field_name=field, lookup_expr="lt", as_datetime=as_datetime,
                                        label="to (exclusive)")


class _BotSymbolSide(django_filters.FilterSet):
    bot = django_filters.NumberFilter(field_name="bot_id", help_text="bot id")
    run = django_filters.NumberFilter(field_name="run", help_text="run number of the bot (1, 2, …)")
    symbol = django_filters.CharFilter(field_name="symbol", lookup_expr="iexact", help_text="e.g. ETH/USDT")
    side = CSVCharFilter(field_name="side", help_text="buy, sell (comma-separated for several)")


class OrderFilter(_BotSymbolSide):
    """Filters of ``/orders/``."""

    status = CSVCharFilter(field_name="status", help_text="comma-separated statuses, e.g. open,filled")

    class Meta:
        model = Order
        fields: list[str] = []


class FillFilter(_BotSymbolSide):
    """Filters of ``/fills/``."""

    class Meta:
        model = Fill
        fields: list[str] = []


class JournalFilter(django_filters.FilterSet):
    """Filters of ``/events/``."""

    bot = django_filters.NumberFilter(field_name="bot_id", help_text="bot id")
    run = django_filters.NumberFilter(field_name="run", help_text="run number of the bot (1, 2, …)")
    kind = CSVCharFilter(field_name="kind", help_text="comma-separated kinds, e.g. warning,risk")
    symbol = django_filters.CharFilter(field_name="bot__symbol", lookup_expr="iexact", help_text="the bot's symbol")

    class Meta:
        model = JournalEntry
        fields: list[str] = []


_with_range(OrderFilter, "created_at", as_datetime=True)
_with_range(FillFilter, "ts")
_with_range(JournalFilter, "ts")


class BotRunFilter(django_filters.FilterSet):
    """Filters of ``/bot-runs/``."""

    bot = django_filters.NumberFilter(field_name="bot_id", help_text="bot id")

    class Meta:
        model = BotRun
        fields: list[str] = []
