"""What the bot runtime records, in the server's database (the PostgreSQL twin of runtime/store.py).

The runtime's :class:`gridfleet.runtime.store.BotStore` contract: an append-only event log per bot (replayed on
restart), orders (PENDING before they are sent), fills keyed by the venue's trade id, and a journal of
corrections, warnings and risk alerts. ``bot_runtime_id`` is ``Bot.runtime_id``.

A bot may run several times: each start after a stop is a new :class:`BotRun` with its own runtime id (the
client-id prefix at the venue) and its own log; ``Bot.runtime_id`` is the current run's. Every record carries its
``run`` number, so a run's replay and reconcile only ever see that run, while the bot's history (orders, fills,
journal, equity) spans all runs.
"""

from __future__ import annotations

from django.db import models


class BotRun(models.Model):
    """One run of a bot, from a start to its stop: its runtime id and the config it started with."""

    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="runs")
    number = models.PositiveIntegerField()
    runtime_id = models.CharField(max_length=16, unique=True)
    config = models.JSONField(default=dict)
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["bot", "number"]
        constraints = [models.UniqueConstraint(fields=["bot", "number"], name="unique_run_number_per_bot")]

    def __str__(self) -> str:
        """Return ``bot #pk run n (runtime id)``."""
        return f"bot #{self.bot_id} run {self.number} ({self.runtime_id})"


class BotEventLog(models.Model):
    """One strategy input (start, tick, fill, update, config, command, candle, stop), in order."""

    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="event_log")
    run = models.PositiveIntegerField(default=1)
    kind = models.CharField(max_length=16)
    ts = models.BigIntegerField()
    payload = models.JSONField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["bot", "id"]), models.Index(fields=["bot", "run", "id"])]


class Order(models.Model):
    """An order of a bot, tracked from intent to final state."""

    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="orders")
    run = models.PositiveIntegerField(default=1)
    client_id = models.CharField(max_length=40, unique=True)
    symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=4)
    type = models.CharField(max_length=8)
    amount = models.DecimalField(max_digits=38, decimal_places=18)
    price = models.DecimalField(max_digits=38, decimal_places=18, null=True)
    level = models.IntegerField(null=True)
    tag = models.CharField(max_length=64, default="")
    status = models.CharField(max_length=20)
    filled = models.DecimalField(max_digits=38, decimal_places=18, default=0)
    exchange_id = models.CharField(max_length=64, null=True)
    reason = models.CharField(max_length=500, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["bot", "status"])]


class Fill(models.Model):
    """One execution of one of a bot's orders; unique per (bot, venue trade id)."""

    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="fills")
    run = models.PositiveIntegerField(default=1)
    trade_id = models.CharField(max_length=80)
    client_id = models.CharField(max_length=40)
    symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=4)
    price = models.DecimalField(max_digits=38, decimal_places=18)
    amount = models.DecimalField(max_digits=38, decimal_places=18)
    fee = models.DecimalField(max_digits=38, decimal_places=18)
    fee_currency = models.CharField(max_length=16)
    ts = models.BigIntegerField()
    is_maker = models.BooleanField()
    order_complete = models.BooleanField()
    event = models.ForeignKey(BotEventLog, null=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["bot", "trade_id"], name="unique_fill_per_bot")]


class JournalEntry(models.Model):
    """A bot event for people: corrections, warnings, risk alerts, state changes (not replayed)."""

    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="journal")
    run = models.PositiveIntegerField(default=1)
    ts = models.BigIntegerField()
    kind = models.CharField(max_length=16)
    message = models.TextField()
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["bot", "id"])]


class EquitySnapshot(models.Model):
    """A bot's equity and PnL at one moment (taken periodically by Celery beat)."""

    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="equity_snapshots")
    run = models.PositiveIntegerField(default=1)
    ts = models.BigIntegerField()
    price = models.DecimalField(max_digits=38, decimal_places=18)
    equity = models.DecimalField(max_digits=38, decimal_places=18)
    grid_profit = models.DecimalField(max_digits=38, decimal_places=18)
    realized_pnl = models.DecimalField(max_digits=38, decimal_places=18)
    unrealized_pnl = models.DecimalField(max_digits=38, decimal_places=18)
    base = models.DecimalField(max_digits=38, decimal_places=18)
    quote_flow = models.DecimalField(max_digits=38, decimal_places=18)

    class Meta:
        ordering = ["bot", "ts"]
        indexes = [models.Index(fields=["bot", "ts"])]


class BotLease(models.Model):
    """Which worker runs a bot, until when: one bot never runs in two places."""

    bot = models.OneToOneField("bots.Bot", on_delete=models.CASCADE, related_name="lease")
    worker = models.CharField(max_length=100)
    expires_at = models.DateTimeField()
    acquired_at = models.DateTimeField(auto_now=True)
