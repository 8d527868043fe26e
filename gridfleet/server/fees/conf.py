"""Fee settings read from Django settings (each with a default), and the settlement periods.

* ``GRIDFLEET_BILLING_PERIOD``: ``hourly``, ``daily`` (default), ``weekly`` (ISO weeks, Monday 00:00 UTC) or
  ``monthly``: how often the beat settles every bot;
* ``GRIDFLEET_BILLING_MIN_BALANCE``: the wallet balance below which the balance guard acts (default ``"0"``;
  per-user override in :class:`~gridfleet.server.fees.models.UserFeeProfile`);
* ``GRIDFLEET_BILLING_GUARD_GRACE_SECONDS``: time between the guard's warning and the pause (default 3600);
* ``GRIDFLEET_BILLING_COMMISSION_CAP``: most of a fee paid as commission in total (default ``"0.5"``);
* ``GRIDFLEET_BILLING_CLEARING_DAYS``: days a commission is held before it can be paid out (default 7).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings

PERIODS = ("hourly", "daily", "weekly", "monthly")


def _decimal(name: str, default: str) -> Decimal:
    raw = str(getattr(settings, name, default))
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"{name} must be a decimal number (got {raw!r})") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a non-negative number (got {raw!r})")
    return value


def period_kind() -> str:
    """Return the configured settlement period."""
    kind = str(getattr(settings, "GRIDFLEET_BILLING_PERIOD", "daily")).lower()
    if kind not in PERIODS:
        raise ValueError(f"GRIDFLEET_BILLING_PERIOD must be one of {', '.join(PERIODS)} (got {kind!r})")
    return kind


def min_balance() -> Decimal:
    """Return the platform's minimum wallet balance for running bots."""
    return _decimal("GRIDFLEET_BILLING_MIN_BALANCE", "0")


def guard_grace() -> timedelta:
    """Return how long the guard waits between its warning and the pause."""
    return timedelta(seconds=float(_decimal("GRIDFLEET_BILLING_GUARD_GRACE_SECONDS", "3600")))


def commission_cap() -> Decimal:
    """Return the cap on the total commission of one fee (a fraction of the fee)."""
    cap = _decimal("GRIDFLEET_BILLING_COMMISSION_CAP", "0.5")
    if cap > 1:
        raise ValueError("GRIDFLEET_BILLING_COMMISSION_CAP must be between 0 and 1")
    return cap


def clearing_window() -> timedelta:
    """Return how long commission is held before it is withdrawable."""
    return timedelta(days=float(_decimal("GRIDFLEET_BILLING_CLEARING_DAYS", "7")))


def currency() -> str:
    """Return the settlement currency."""
    return str(getattr(settings, "GRIDFLEET_BILLING_CURRENCY", "USDT"))


@dataclass(frozen=True)
class Period:
    """One settlement period: its label (the statement's ``period``) and its [start, end) in UTC."""

    label: str
    start: datetime
    end: datetime


def period_containing(moment: datetime, kind: str | None = None) -> Period:
    """Return the period of ``kind`` (default: the configured one) that contains ``moment``."""
    kind = kind or period_kind()
    m = moment.astimezone(UTC)
    if kind == "hourly":
        start = m.replace(minute=0, second=0, microsecond=0)
        return Period(start.strftime("%Y-%m-%dT%H"), start, start + timedelta(hours=1))
    day = datetime(m.year, m.month, m.day, tzinfo=UTC)
    if kind == "daily":
        return Period(day.date().isoformat(), day, day + timedelta(days=1))
    if kind == "weekly":
        start = day - timedelta(days=day.weekday())
        year, week, _ = start.isocalendar()
        return Period(f"{year}-W{week:02d}", start, start + timedelta(days=7))
    start = day.replace(day=1)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return Period(start.strftime("%Y-%m"), start, end)


def previous_period(now: datetime, kind: str | None = None) -> Period:
    """Return the last period that has ended at ``now`` (what the beat settles)."""
    current = period_containing(now, kind)
    return period_containing(current.start - timedelta(microseconds=1), kind)


def parse_period(text: str, kind: str | None = None) -> Period:
    """Return the period containing the ISO date (or date-time) ``text``; raise ``ValueError`` when malformed."""
    raw = text.strip()
    try:
        moment = (datetime.combine(date.fromisoformat(raw), datetime.min.time(), tzinfo=UTC) if len(raw) == 10
                  else datetime.fromisoformat(raw.replace("Z", "+00:00")))
    except ValueError:
        raise ValueError(f"period: {text!r} is not an ISO date (YYYY-MM-DD)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return period_containing(moment, kind)
