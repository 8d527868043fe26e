"""Filters of the billing list endpoints. Id filters are plain numbers (never validated against all rows), so a
filter given someone else's id answers exactly like one given a missing id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet

from gridfleet.server.billing.models import Entry, Payment, Payout, Voucher
from gridfleet.server.trading.filters import TimeFilter, parse_time_ms

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_MS, MAX_MS = -62_135_596_800_000, 253_402_300_799_999  # years 1 to 9999


class _BoundField(forms.CharField):
    """ISO-8601 (naive = UTC) or Unix ms within the years 1-9999, cleaned to Unix ms."""

    def to_python(self, value: Any) -> int | None:  # type: ignore[override]
        """Return Unix ms (None when empty); the error never echoes the input (it may hold ``%``)."""
        text = super().to_python(value)
        if not text:
            return None
        try:
            ms = parse_time_ms(text)
        except (ValueError, OverflowError):
            raise forms.ValidationError("invalid time: expected ISO-8601 or Unix milliseconds") from None
        if not MIN_MS <= ms <= MAX_MS:
            raise forms.ValidationError("out of range (years 1 to 9999)")
        return ms


class TimeBound(TimeFilter):
    """``transaction.created_at`` bound (``gte`` for ``from``, ``lt`` for ``to``)."""

    field_class = _BoundField

    def filter(self, qs: QuerySet[Any], value: Any) -> QuerySet[Any]:
        """Apply the bound as a UTC datetime."""
        if value is None:
            return qs
        return qs.filter(**{f"{self.field_name}__{self.lookup_expr}": EPOCH + timedelta(milliseconds=value)})


class EntryFilter(django_filters.FilterSet):
    """``?user=&kind=&account_kind=&transaction=&from=&to=``."""

    user = django_filters.NumberFilter(field_name="account__user_id", help_text="account holder's id")
    kind = django_filters.CharFilter(field_name="transaction__kind", help_text="credit, voucher, payment, fee…")
    account_kind = django_filters.CharFilter(field_name="account__kind")
    transaction = django_filters.NumberFilter(field_name="transaction_id")

    class Meta:
        model = Entry
        fields: list[str] = []


# ``from`` and ``to`` are Python keywords: add them under those names
EntryFilter.base_filters["from"] = TimeBound(field_name="transaction__created_at", lookup_expr="gte",
                                             label="from (inclusive)")
EntryFilter.base_filters["to"] = TimeBound(field_name="transaction__created_at", lookup_expr="lt",
                                           label="to (exclusive)")


class VoucherFilter(django_filters.FilterSet):
    """``?redeemed_by=<user id>``."""

    redeemed_by = django_filters.NumberFilter(field_name="redeemed_by_id")

    class Meta:
        model = Voucher
        fields: list[str] = []


class PaymentFilter(django_filters.FilterSet):
    """``?user=&status=&provider=``."""

    user = django_filters.NumberFilter(field_name="user_id")
    status = django_filters.CharFilter(field_name="status")
    provider = django_filters.CharFilter(field_name="provider")

    class Meta:
        model = Payment
        fields: list[str] = []


class PayoutFilter(django_filters.FilterSet):
    """``?agent=&status=``."""

    agent = django_filters.NumberFilter(field_name="agent_id")
    status = django_filters.CharFilter(field_name="status")

    class Meta:
        model = Payout
        fields: list[str] = []
