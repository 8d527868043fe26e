"""Exact amounts: Decimal in Python and the API, integer minor units (10^-8) in the database."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, InvalidOperation

from django.conf import settings

PLACES = 8
UNIT = Decimal(1).scaleb(-PLACES)  # 0.00000001
SCALE = 10**PLACES
MAX_UNITS = 2**63 - 1


def currency() -> str:
    """Return the billing currency (setting ``GRIDFLEET_BILLING_CURRENCY``, default USDT)."""
    return str(getattr(settings, "GRIDFLEET_BILLING_CURRENCY", "USDT"))


def parse_amount(value: object) -> Decimal:
    """Return ``value`` (Decimal, int or decimal string; never float) as a Decimal; ValueError when it is not one
    or has more than 8 decimal places (never rounded silently)."""
    if isinstance(value, bool | float):
        raise ValueError("amounts are decimal strings, not floats")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not a decimal amount: {value!r}") from exc
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    try:
        exact = amount.quantize(UNIT, rounding=ROUND_DOWN)
    except InvalidOperation as exc:
        raise ValueError(f"{value} is out of range") from exc
    if exact != amount:
        raise ValueError(f"{value} has more than {PLACES} decimal places")
    return amount


def to_units(amount: object) -> int:
    """Return an amount as integer minor units; ValueError beyond 8 decimal places or out of range."""
    value = parse_amount(amount)
    units = int(value * SCALE)
    if abs(units) > MAX_UNITS:
        raise ValueError(f"{value} is out of range")
    return units


def from_units(units: int | None) -> Decimal:
    """Return minor units as a Decimal with 8 places (None: 0)."""
    return (Decimal(units or 0) / SCALE).quantize(UNIT)


def floor_amount(amount: Decimal) -> Decimal:
    """Round an amount down (towards zero) to 8 decimal places."""
    return amount.quantize(UNIT, rounding=ROUND_DOWN)


def fmt(units: int | None) -> str:
    """Return minor units as a plain decimal string with 8 places (``"10.50000000"``)."""
    return format(from_units(units), "f")


def dec_str(amount: Decimal) -> str:
    """Return an amount as a plain decimal string with 8 places (``Decimal("0")`` → ``"0.00000000"``)."""
    return format(Decimal(amount).quantize(UNIT, rounding=ROUND_DOWN), "f")
