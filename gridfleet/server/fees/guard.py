"""The balance guard: warn, then pause the running bots of a user whose wallet cannot cover their fees.

A user is **short** when they have fees recorded as due (the wallet could not cover a settlement) or, while they
have active bots, when their wallet balance is below their minimum balance (``GRIDFLEET_BILLING_MIN_BALANCE`` or
their own override). Then:

1. **warn**: a ``billing_warning`` notification (stored, pushed over the websocket, emailed/webhooked);
2. after the grace period (``GRIDFLEET_BILLING_GUARD_GRACE_SECONDS``; 0 pauses at once) **pause**: every running
   bot of the user gets the strategy command ``stop_buying`` (its resting buys are cancelled, its resting sells stay
   on the book and may still fill, so the position can only shrink) and its status becomes ``paused`` with the
   message :data:`PAUSE_MESSAGE`; the bot's fee state remembers that the guard paused it
   (``BotFeeState.guard_paused_at``). A ``billing_paused`` notification lists them. While the user stays short,
   the periodic check pauses any bot of theirs that runs again (e.g. resumed by hand).
3. **resume** after a top-up (:func:`after_balance_change`, called by the ledger after each credit, voucher or
   payment): the due fees are collected first; when the user is no longer short, exactly the bots the guard paused
   get ``resume_buying`` and status ``running`` again, and a ``billing_resumed`` notification says so.

Nothing else of the user's is touched: bots paused or stopped by the user stay as they are, no order other than
buys is cancelled, no position is sold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from gridfleet.server.bots.models import Bot, BotStatus
from gridfleet.server.fees import conf
from gridfleet.server.fees.models import BotFeeState, GuardState, GuardStatus, Settlement, StatementStatus
from gridfleet.server.fees.services import collect_due, fee_state, fees_due, min_balance_for

log = logging.getLogger(__name__)

PAUSE_MESSAGE = "paused by the balance guard: top up your balance to resume"
ACTIVE = (BotStatus.RUNNING, BotStatus.PAUSED)


@dataclass(frozen=True)
class Standing:
    """A user's billing standing."""

    balance: Decimal
    due: Decimal
    minimum: Decimal
    active_bots: int

    @property
    def short(self) -> bool:
        """Return True when the guard must act."""
        return self.due > 0 or (self.active_bots > 0 and self.balance < self.minimum)

    def reason(self) -> str:
        """Return why the user is short, in words."""
        if self.due > 0:
            return f"fees of {self.due} are due and your balance is {self.balance}"
        return f"your balance {self.balance} is below the minimum {self.minimum}"


def standing(user: Any) -> Standing:
    """Return the user's balance, fees due, minimum balance and number of active bots."""
    from gridfleet.server.billing import ledger

    balance = Decimal(ledger.balance(ledger.wallet(user)))
    active = Bot.objects.filter(owner=user, status__in=ACTIVE).count()
    return Standing(balance, fees_due(user), min_balance_for(user), active)


def _alert(user: Any, kind: str, title: str, body: str, data: dict[str, Any]) -> None:
    try:
        from gridfleet.server.realtime.alerts import alert
    except ImportError:  # the realtime app is optional in some deployments
        log.warning("%s for user %s: %s", kind, user.pk, body)
        return
    try:
        alert(user, kind, title, body, data)
    except Exception:
        log.exception("guard: %s for user %s not delivered", kind, user.pk)


def _runtime_command(bot_id: int, name: str) -> bool:
    try:
        from gridfleet.server.trading.service import get_runtime

        get_runtime().command(bot_id, name)
        return True
    except Exception as exc:
        log.warning("guard: %s of bot %s not applied by the runtime: %s", name, bot_id, exc)
        return False


def _set_status(bot_id: int, status: str, message: str) -> None:
    from gridfleet.server.trading.runtime import set_status

    set_status(bot_id, status, message)


def pause_bots(user: Any, now: datetime) -> list[int]:
    """Pause the user's running bots (stop buying, keep sells); mark them guard-paused; return their ids."""
    paused = []
    for bot in Bot.objects.filter(owner=user, status=BotStatus.RUNNING).order_by("pk"):
        _runtime_command(bot.pk, "stop_buying")
        _set_status(bot.pk, BotStatus.PAUSED, PAUSE_MESSAGE)
        state = fee_state(bot)
        BotFeeState.objects.filter(pk=state.pk).update(guard_paused_at=now)
        paused.append(bot.pk)
    return paused


def resume_bots(user: Any) -> list[int]:
    """Resume exactly the bots the guard paused (still active); clear the mark on all of them; return the ids."""
    resumed = []
    for state in BotFeeState.objects.filter(bot__owner=user, guard_paused_at__isnull=False).select_related("bot"):
        bot = state.bot
        if bot.status in ACTIVE:
            _runtime_command(bot.pk, "resume_buying")
            if bot.status == BotStatus.PAUSED:
                _set_status(bot.pk, BotStatus.RUNNING, "")
            resumed.append(bot.pk)
        BotFeeState.objects.filter(pk=state.pk).update(guard_paused_at=None)
    return resumed


def check_user(user: Any, now: datetime | None = None) -> str:
    """Apply the guard to one user; return its status afterwards (``ok``, ``warned`` or ``paused``)."""
    now = now or timezone.now()
    s = standing(user)
    with transaction.atomic():
        guard, _ = GuardState.objects.select_for_update().get_or_create(user=user)
        previous = guard.status
        warn = False
        data = {"balance": str(s.balance), "due": str(s.due), "minimum": str(s.minimum),
                "currency": conf.currency()}
        if s.short:
            if guard.status == GuardStatus.OK:
                guard.status, guard.warned_at, guard.reason = GuardStatus.WARNED, now, s.reason()
                guard.save()
                warn = True
            if guard.status == GuardStatus.WARNED and guard.warned_at is not None \
                    and now - guard.warned_at >= conf.guard_grace():
                guard.status, guard.paused_at, guard.reason = GuardStatus.PAUSED, now, s.reason()
                guard.save()
        else:
            if guard.status != GuardStatus.OK:
                guard.status, guard.resumed_at, guard.reason = GuardStatus.OK, now, ""
                guard.save()
    if warn:
        _alert(user, "billing_warning", "Low balance: top up to keep your bots running",
               f"{s.reason()}. Your running bots will be paused (buys cancelled, sells kept) in "
               f"{int(conf.guard_grace().total_seconds())} s unless you top up.", data)
    if s.short and guard.status == GuardStatus.PAUSED:
        paused = pause_bots(user, now)
        if paused or previous != GuardStatus.PAUSED:
            _alert(user, "billing_paused", "Bots paused: balance too low",
                   f"{s.reason()}. {len(paused)} bot(s) paused: their buy orders were cancelled, their sell orders "
                   "stay. They resume automatically after a top-up.", {**data, "bots": paused})
    elif not s.short and previous == GuardStatus.PAUSED:
        resumed = resume_bots(user)
        _alert(user, "billing_resumed", "Bots resumed: balance restored",
               f"Thank you for topping up. {len(resumed)} bot(s) paused by the balance guard resumed.",
               {**data, "bots": resumed})
    elif not s.short and previous == GuardStatus.WARNED:
        _alert(user, "billing_ok", "Balance restored", "Your balance covers your fees again.", data)
    return guard.status


def after_balance_change(user: Any) -> str:
    """Called by the ledger after a credit, voucher or payment: collect due fees, then re-check the guard."""
    from gridfleet.server.users.models import User

    if not isinstance(user, User):
        user = User.objects.get(pk=user)
    collect_due(user)
    return check_user(user)


def check_all(now: datetime | None = None) -> dict[str, int]:
    """Periodic pass: check every user with active bots, fees due or a guard state that is not ok."""
    from django.db.models import Q

    from gridfleet.server.users.models import User

    users = User.objects.filter(
        Q(bots__status__in=ACTIVE)
        | Q(pk__in=Settlement.objects.filter(status=StatementStatus.DUE).values("user_id"))
        | Q(pk__in=GuardState.objects.exclude(status=GuardStatus.OK).values("user_id"))).distinct()
    counts = {"checked": 0, "warned": 0, "paused": 0}
    for user in users:
        try:
            status = check_user(user, now)
        except Exception:
            log.exception("guard check of user %s failed", user.pk)
            continue
        counts["checked"] += 1
        if status in counts:
            counts[status] += 1
    return counts
