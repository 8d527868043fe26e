"""Runs of a bot: a start after a stop begins a new run with a fresh runtime id and log.

A run's log ends with its stop, so replaying it can never trade again; starting a stopped bot therefore begins
run *n + 1*: a new :class:`BotRun` with a new runtime id (the client-id prefix at the venue, so no order of the
old run is ever taken for the new run's, and the old run's leftovers are not its strays), the bot's current
config, and an empty log — the runner starts it fresh. ``Bot.runtime_id`` always names the current run. The old
run's events, orders, fills and journal stay as they were (their ``run`` number tells them apart).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from gridfleet.server.bots.models import Bot, new_runtime_id
from gridfleet.server.trading.models import BotEventLog, BotRun


def current_run(bot: Bot) -> BotRun:
    """Return the bot's current run (the one of ``Bot.runtime_id``), creating run 1 on first use."""
    run = BotRun.objects.filter(runtime_id=bot.runtime_id).first()
    if run is not None:
        return run
    number = (BotRun.objects.filter(bot=bot).aggregate(n=Max("number"))["n"] or 0) + 1
    try:
        with transaction.atomic():
            return BotRun.objects.create(bot=bot, number=number, runtime_id=bot.runtime_id, config=bot.config)
    except IntegrityError:  # created concurrently
        return BotRun.objects.get(runtime_id=bot.runtime_id)


def run_finished(bot: Bot) -> bool:
    """Return True when the current run's log ends with a stop (replaying it would not trade)."""
    run = current_run(bot)
    last = BotEventLog.objects.filter(bot=bot, run=run.number).order_by("-id").values_list("kind", flat=True).first()
    return last == "stop" or run.ended_at is not None


def end_run(bot: Bot) -> None:
    """Record that the current run ended (the bot was stopped)."""
    run = current_run(bot)
    BotRun.objects.filter(pk=run.pk, ended_at__isnull=True).update(ended_at=timezone.now())


def begin_new_run(bot: Bot) -> BotRun:
    """Start run n + 1 of ``bot`` with its current config and a new runtime id; return it."""
    with transaction.atomic():
        locked = Bot.objects.select_for_update().get(pk=bot.pk)
        previous = current_run(locked)
        BotRun.objects.filter(pk=previous.pk, ended_at__isnull=True).update(ended_at=timezone.now())
        number = (BotRun.objects.filter(bot=locked).aggregate(n=Max("number"))["n"] or 0) + 1
        runtime_id = new_runtime_id()
        while Bot.objects.filter(runtime_id=runtime_id).exists() or BotRun.objects.filter(runtime_id=runtime_id) \
                .exists():
            runtime_id = new_runtime_id()
        run = BotRun.objects.create(bot=locked, number=number, runtime_id=runtime_id, config=locked.config)
        Bot.objects.filter(pk=locked.pk).update(runtime_id=runtime_id, updated_at=timezone.now())
    bot.runtime_id = runtime_id
    return run
