"""Bots, their immutable config snapshots, groups (fleets) and risk templates."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models


def new_runtime_id() -> str:
    """Return a short, unique runtime id (the client-order-id prefix at the venue)."""
    return "b" + secrets.token_hex(4)


class BotMode(models.TextChoices):
    """Paper (simulated fills on live prices) or live (real orders)."""

    PAPER = "paper", "paper"
    LIVE = "live", "live"


class BotStatus(models.TextChoices):
    """Desired/observed state of a bot."""

    CREATED = "created", "created"
    RUNNING = "running", "running"
    PAUSED = "paused", "paused"
    STOPPED = "stopped", "stopped"
    ERROR = "error", "error"


class Bot(models.Model):
    """One trading bot: a strategy with a validated config on one symbol of one exchange account (or paper)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bots")
    name = models.CharField(max_length=100)
    strategy = models.CharField(max_length=32, default="grid")
    mode = models.CharField(max_length=8, choices=BotMode.choices, default=BotMode.PAPER)
    exchange = models.CharField(max_length=32, default="binance")
    symbol = models.CharField(max_length=32)
    exchange_account = models.ForeignKey("exchange_accounts.ExchangeAccount", null=True, blank=True,
                                         on_delete=models.PROTECT, related_name="bots")
    config = models.JSONField()
    status = models.CharField(max_length=8, choices=BotStatus.choices, default=BotStatus.CREATED)
    status_message = models.CharField(max_length=500, blank=True, default="")
    runtime_id = models.CharField(max_length=16, unique=True, default=new_runtime_id)
    groups = models.ManyToManyField("BotGroup", blank=True, related_name="bots")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        """Return the bot's name."""
        return f"{self.name} ({self.symbol})"


class BotGroup(models.Model):
    """A fleet: bots grouped for batch operations."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bot_groups")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_group_name_per_owner")]


class ConfigSnapshot(models.Model):
    """An immutable copy of a bot's config at one change: who, when, what changed."""

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="snapshots")
    version = models.PositiveIntegerField()
    config = models.JSONField()
    diff = models.JSONField(default=dict)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["bot", "version"]
        constraints = [models.UniqueConstraint(fields=["bot", "version"], name="unique_snapshot_version")]


class RiskTemplate(models.Model):
    """A named rule set; ``owner`` null means shared by an admin with everyone."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="risk_templates")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True, default="")
    rules = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        """Return the template's name."""
        return self.name

    @property
    def shared(self) -> bool:
        """Return True for a template shared with everyone (no owner)."""
        return self.owner_id is None
