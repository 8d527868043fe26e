"""Bot leases: one bot runs in one place; a dead worker's bots are taken over after the lease's TTL.

A lease is a :class:`~gridfleet.server.trading.models.BotLease` row (one per bot, ``bot`` is unique) naming the
worker and when the lease expires. Every time comparison uses the *database's* clock (``Now()``), so workers'
clocks do not matter:

* **acquire** = one conditional ``UPDATE … SET worker = me, expires_at = now() + ttl WHERE bot = B AND
  (worker = me OR expires_at < now())``; when no row exists, an ``INSERT`` that the unique constraint lets only
  one worker win. Under PostgreSQL's READ COMMITTED a concurrent UPDATE re-checks its WHERE clause on the row the
  winner wrote, so two workers can never both succeed.
* **renew** = the same UPDATE restricted to ``worker = me`` for every bot held, every ``renew_every`` seconds;
  a bot whose renewal matched no row was lost (expired and taken) and must be dropped at once.
* **self-fencing**: a worker that could not renew for ``ttl − renew_every`` seconds (its own monotonic clock)
  drops every bot itself, before anyone else may take them over.

Takeover bound: a worker that dies holding a lease renewed at *t* loses it at *t + ttl*; the other workers look
for free bots every ``renew_every`` seconds, so the bot runs again by *t + ttl + renew_every* (plus its start:
replay + reconcile).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable

from django.db import IntegrityError, models, transaction
from django.db.models import ExpressionWrapper, Q
from django.db.models.functions import Now

from gridfleet.server.bots.models import Bot, BotStatus
from gridfleet.server.trading.models import BotLease

log = logging.getLogger("gridfleet.server.leases")

DEFAULT_TTL = 30.0
DEFAULT_RENEW_EVERY = 10.0


def _expiry(ttl: float) -> ExpressionWrapper:
    return ExpressionWrapper(Now() + dt.timedelta(seconds=ttl), output_field=models.DateTimeField())


def acquire(bot_pk: int, worker: str, ttl: float = DEFAULT_TTL) -> bool:
    """Take (or extend) the lease of one bot for ``worker``; False when another worker holds it."""
    taken = BotLease.objects.filter(bot_id=bot_pk).filter(Q(worker=worker) | Q(expires_at__lt=Now())).update(
        worker=worker, expires_at=_expiry(ttl), acquired_at=Now())
    if taken:
        return True
    if BotLease.objects.filter(bot_id=bot_pk).exists():
        return False
    try:
        with transaction.atomic():
            BotLease.objects.create(bot_id=bot_pk, worker=worker, expires_at=dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
    except IntegrityError:
        return False  # another worker inserted it first
    # the row exists now (expired); the conditional UPDATE decides who gets it
    return bool(BotLease.objects.filter(bot_id=bot_pk).filter(Q(worker=worker) | Q(expires_at__lt=Now())).update(
        worker=worker, expires_at=_expiry(ttl), acquired_at=Now()))


def renew(worker: str, bot_pks: Iterable[int], ttl: float = DEFAULT_TTL) -> set[int]:
    """Extend ``worker``'s leases on ``bot_pks``; return the bots it still holds (the others were lost)."""
    pks = list(bot_pks)
    if not pks:
        return set()
    with transaction.atomic():
        BotLease.objects.filter(bot_id__in=pks, worker=worker).update(expires_at=_expiry(ttl))
        return set(BotLease.objects.filter(bot_id__in=pks, worker=worker).values_list("bot_id", flat=True))


def release(bot_pk: int, worker: str) -> None:
    """Give a bot's lease up (the bot stopped here, or the worker shuts down)."""
    BotLease.objects.filter(bot_id=bot_pk, worker=worker).delete()


def holder(bot_pk: int) -> str | None:
    """Return the worker holding a live lease on the bot, or None."""
    return BotLease.objects.filter(bot_id=bot_pk, expires_at__gte=Now()).values_list("worker", flat=True).first()


def claimable(limit: int) -> list[int]:
    """Return up to ``limit`` bots that should run (status running/paused) and hold no live lease."""
    if limit <= 0:
        return []
    live = BotLease.objects.filter(expires_at__gte=Now()).values("bot_id")
    return list(Bot.objects.filter(status__in=[BotStatus.RUNNING, BotStatus.PAUSED]).exclude(pk__in=live)
                .order_by("pk").values_list("pk", flat=True)[:limit])


class LeaseKeeper:
    """The lease bookkeeping of one worker: claim up to ``capacity`` bots, renew them, notice losses.

    :meth:`tick` is called every ``renew_every`` seconds by the hosting loop; it returns what to start and what to
    drop. Starting and stopping the bots is the caller's business.
    """

    def __init__(self, worker: str, *, capacity: int = 100, ttl: float = DEFAULT_TTL,
                 renew_every: float = DEFAULT_RENEW_EVERY) -> None:
        if renew_every * 2 > ttl:
            raise ValueError("renew_every must be at most half the lease TTL")
        self.worker, self.capacity, self.ttl, self.renew_every = worker, capacity, ttl, renew_every
        self.held: set[int] = set()
        self._renewed_at = time.monotonic()

    def tick(self) -> tuple[set[int], set[int]]:
        """Renew, then claim free bots; return (newly acquired, lost)."""
        lost: set[int] = set()
        try:
            still = renew(self.worker, self.held, self.ttl)
            self._renewed_at = time.monotonic()
        except Exception:
            log.exception("%s: lease renewal failed", self.worker)
            if time.monotonic() - self._renewed_at > self.ttl - self.renew_every:
                lost, self.held = set(self.held), set()  # self-fencing: another worker may take them soon
                log.error("%s: dropping %d bots (leases not renewed in time)", self.worker, len(lost))
            return set(), lost
        lost = self.held - still
        self.held = still
        if lost:
            log.warning("%s: lost the leases of bots %s", self.worker, sorted(lost))
        acquired: set[int] = set()
        for pk in claimable(self.capacity - len(self.held)):
            try:
                if acquire(pk, self.worker, self.ttl):
                    acquired.add(pk)
            except Exception:
                log.exception("%s: acquiring bot %s failed", self.worker, pk)
        self.held |= acquired
        return acquired, lost

    def drop(self, bot_pk: int) -> None:
        """Release one bot (stopped here, or failed to start)."""
        self.held.discard(bot_pk)
        release(bot_pk, self.worker)

    def release_all(self) -> None:
        """Release every lease (clean shutdown: the others take over at once instead of after the TTL)."""
        for pk in list(self.held):
            self.drop(pk)

    def expired_at(self) -> float:
        """Return the monotonic time after which this worker must consider its leases gone."""
        return self._renewed_at + self.ttl - self.renew_every


__all__ = ["DEFAULT_RENEW_EVERY", "DEFAULT_TTL", "LeaseKeeper", "acquire", "claimable", "holder", "release",
           "renew"]
