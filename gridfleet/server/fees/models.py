"""Profit-share fee records: rates, per-bot fee state, capital movements, statements, commission, guard state.

Money is integer minor units (``*_units``: 1 unit = 10^-8 of the settlement currency, exact on SQLite and
PostgreSQL); rates are small ``DecimalField`` fractions (0.1 = 10 %). See docs/billing.md.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models

UNIT = Decimal("1e-8")


def to_units(amount: Decimal) -> int:
    """Return ``amount`` as minor units; raise ``ValueError`` when it has more than 8 decimal places."""
    units = amount / UNIT
    if units != units.to_integral_value():
        raise ValueError(f"{amount} has more than 8 decimal places")
    return int(units)


def from_units(units: int | None) -> Decimal:
    """Return minor units as a Decimal with 8 places."""
    return (Decimal(int(units or 0)) * UNIT).quantize(UNIT)


class FeeSettings(models.Model):
    """The platform's fee settings (one row, pk=1): the default profit-share rate and the bounds agents must keep."""

    default_rate = models.DecimalField(max_digits=7, decimal_places=6, default=Decimal("0.2"))
    min_rate = models.DecimalField(max_digits=7, decimal_places=6, default=Decimal("0"))
    max_rate = models.DecimalField(max_digits=7, decimal_places=6, default=Decimal("0.5"))
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(min_rate__gte=0) & models.Q(max_rate__lte=1)
                                   & models.Q(min_rate__lte=models.F("max_rate"))
                                   & models.Q(default_rate__gte=models.F("min_rate"))
                                   & models.Q(default_rate__lte=models.F("max_rate")),
                                   name="fee_settings_bounds"),
        ]

    @classmethod
    def current(cls) -> FeeSettings:
        """Return the settings row (created with the defaults on first use)."""
        row, _ = cls.objects.get_or_create(pk=1)
        return row


class UserFeeProfile(models.Model):
    """A user's own fee rate (null: the platform default) and minimum balance override (null: the setting)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="fee_profile")
    rate = models.DecimalField(max_digits=7, decimal_places=6, null=True, blank=True)
    rate_set_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    rate_set_at = models.DateTimeField(null=True, blank=True)
    min_balance_units = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(rate__isnull=True) | (models.Q(rate__gte=0)
                                                                            & models.Q(rate__lte=1)),
                                   name="user_fee_rate_0_1"),
            models.CheckConstraint(condition=models.Q(min_balance_units__isnull=True)
                                   | models.Q(min_balance_units__gte=0), name="user_min_balance_ge_0"),
        ]


class AgentProfile(models.Model):
    """An agent's commission rate (set by an admin). The parent agent of a sub-agent is ``User.agent``."""

    agent = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent_profile")
    commission_rate = models.DecimalField(max_digits=7, decimal_places=6, default=Decimal("0"))
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(commission_rate__gte=0)
                                              & models.Q(commission_rate__lte=1), name="agent_commission_0_1")]


class BotFeeState(models.Model):
    """A bot's running fee state: net capital put in and the high-water mark of its net profit."""

    bot = models.OneToOneField("bots.Bot", on_delete=models.CASCADE, related_name="fee_state")
    capital_units = models.BigIntegerField(default=0)
    hwm_units = models.BigIntegerField(default=0)
    run = models.PositiveIntegerField(default=1, help_text="The bot run (trading.BotRun number) being settled.")
    closed_runs_net_units = models.BigIntegerField(
        default=0, help_text="Net profit of the bot's ended runs, frozen at their last settlement.")
    last_period = models.CharField(max_length=64, blank=True, default="")
    last_as_of = models.DateTimeField(null=True, blank=True)
    closed = models.BooleanField(default=False, help_text="The current run stopped and was settled for the last time.")
    guard_paused_at = models.DateTimeField(null=True, blank=True,
                                           help_text="Set while the balance guard holds this bot paused.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(hwm_units__gte=0), name="fee_hwm_ge_0")]

    @property
    def capital(self) -> Decimal:
        """Return the net capital put in."""
        return from_units(self.capital_units)

    @property
    def hwm(self) -> Decimal:
        """Return the high-water mark."""
        return from_units(self.hwm_units)


class CapitalKind(models.TextChoices):
    """Why a bot's capital changed."""

    INITIAL = "initial", "initial"
    ADD = "add", "add"
    WITHDRAW = "withdraw", "withdraw"


class CapitalMovement(models.Model):
    """Capital put into (+) or taken from (−) a bot: moves "capital put in", never profit."""

    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="capital_movements")
    kind = models.CharField(max_length=8, choices=CapitalKind.choices)
    amount_units = models.BigIntegerField()
    capital_after_units = models.BigIntegerField()
    key = models.CharField(max_length=120, unique=True)
    note = models.CharField(max_length=200, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


class StatementStatus(models.TextChoices):
    """What happened to a settlement's fee."""

    NO_FEE = "no_fee", "no fee"
    PAID = "paid", "paid"
    DUE = "due", "due"  # the wallet could not cover it: collected after a top-up


class Settlement(models.Model):
    """One statement line: a bot marked to market at one settlement, its fee and where the fee went."""

    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="settlements")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="settlements")
    period = models.CharField(max_length=64)
    reason = models.CharField(max_length=16)
    as_of = models.DateTimeField()
    mark_price = models.CharField(max_length=80, blank=True, default="")
    mark_source = models.CharField(max_length=16)
    base = models.CharField(max_length=80, default="0")
    quote_flow = models.CharField(max_length=80, default="0")
    equity_units = models.BigIntegerField()
    capital_units = models.BigIntegerField()
    net_profit_units = models.BigIntegerField()
    hwm_before_units = models.BigIntegerField()
    hwm_after_units = models.BigIntegerField()
    rate = models.DecimalField(max_digits=7, decimal_places=6)
    fee_units = models.BigIntegerField()
    commission_units = models.BigIntegerField(default=0)
    refunded_units = models.BigIntegerField(default=0)
    status = models.CharField(max_length=8, choices=StatementStatus.choices)
    ledger_key = models.CharField(max_length=120)
    collected_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-as_of", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["bot", "period"], name="unique_settlement_per_bot_period"),
            models.CheckConstraint(condition=models.Q(fee_units__gte=0) & models.Q(refunded_units__gte=0)
                                   & models.Q(refunded_units__lte=models.F("fee_units")),
                                   name="settlement_fee_amounts"),
        ]
        indexes = [models.Index(fields=["user", "status"]), models.Index(fields=["period"])]


class CommissionRole(models.TextChoices):
    """How an agent earned a commission line."""

    DIRECT = "direct", "direct"  # the payer's own agent (no parent)
    SUB = "sub", "sub-agent"  # the payer's agent, a sub-agent (paid out of its parent's share)
    PARENT = "parent", "parent"  # the sub-agent's parent: the rest of its share


class CommissionLine(models.Model):
    """Commission credited to an agent's payable for one collected fee."""

    settlement = models.ForeignKey(Settlement, on_delete=models.CASCADE, related_name="commissions")
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="commission_lines")
    role = models.CharField(max_length=8, choices=CommissionRole.choices)
    rate = models.DecimalField(max_digits=7, decimal_places=6)
    amount_units = models.BigIntegerField()
    clawed_back_units = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=models.Q(amount_units__gt=0) & models.Q(
            clawed_back_units__gte=0) & models.Q(clawed_back_units__lte=models.F("amount_units")),
            name="commission_amounts")]


class FeeRefund(models.Model):
    """A refund (adjustment) of part of a collected fee: the ledger reversal and its commission clawback."""

    settlement = models.ForeignKey(Settlement, on_delete=models.CASCADE, related_name="refunds")
    fraction = models.CharField(max_length=80)
    amount_units = models.BigIntegerField()
    reason = models.CharField(max_length=500)
    ledger_key = models.CharField(max_length=120, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


class GuardStatus(models.TextChoices):
    """The balance guard's state for one user."""

    OK = "ok", "ok"
    WARNED = "warned", "warned"
    PAUSED = "paused", "paused"


class GuardState(models.Model):
    """Where the balance guard stands for one user."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="guard_state")
    status = models.CharField(max_length=8, choices=GuardStatus.choices, default=GuardStatus.OK)
    reason = models.CharField(max_length=300, blank=True, default="")
    warned_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    resumed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
