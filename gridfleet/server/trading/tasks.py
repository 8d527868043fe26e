"""Celery side of the runtime: workers that host bots under leases, equity snapshots, control messages.

* ``gridfleet worker`` runs :func:`run_worker_host` in a thread of the Celery worker process (``--pool threads``,
  queues ``celery`` and ``gridfleet.worker.<name>``): it claims bots whose status is running/paused up to its
  capacity (leases, see :mod:`~gridfleet.server.trading.leases`), hosts them in a :class:`HostedBots`, renews the
  leases every ``renew_every`` seconds, drops bots whose lease was lost, and follows the desired state in the
  database (status stopped → stop the bot; a new config → apply it).
* :class:`WorkerRuntime` is the :class:`RuntimeService` of API processes when bots run in workers: start = set
  status running (a worker claims it within one renew interval); command / apply_config / stop are sent as
  :func:`bot_control` tasks to the queue of the worker holding the bot's lease; status is read from the cache,
  where every worker publishes its bots' status each interval.
* :func:`take_equity_snapshots` (beat, every ``GRIDFLEET_SNAPSHOT_EVERY`` s, default 60) writes an
  :class:`EquitySnapshot` per running bot: the bots
  of this process here, the others by a :func:`snapshot_local` message to each worker holding leases.
  ``gridfleet serve`` (no beat) runs it from a timer thread.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import close_old_connections, transaction
from django.db.models.functions import Now

from gridfleet.runtime.bot import BotRunner
from gridfleet.server.bots.models import Bot, BotStatus
from gridfleet.server.celery import app
from gridfleet.server.trading import leases
from gridfleet.server.trading.models import BotLease, EquitySnapshot
from gridfleet.server.trading.runtime import STOPPED_RUN_MESSAGE, HostedBots, VenueFactory, set_status

log = logging.getLogger("gridfleet.server.worker")

STATUS_KEY = "gridfleet:bot-status:{}"
SNAPSHOT_EVERY = float(os.environ.get("GRIDFLEET_SNAPSHOT_EVERY", "60"))  # seconds between equity snapshots (beat)
BEAT_SCHEDULE = {"gridfleet-equity-snapshots": {"task": "gridfleet.take_equity_snapshots",
                                                "schedule": SNAPSHOT_EVERY}}
ACTIVE = (BotStatus.RUNNING, BotStatus.PAUSED)


def worker_queue(worker: str) -> str:
    """Return the Celery queue of one worker (control messages for the bots it holds)."""
    return f"gridfleet.worker.{worker}"


def default_worker_name() -> str:
    """Return ``<host>-<pid>``: unique per worker process."""
    return f"{socket.gethostname()}-{os.getpid()}"


class WorkerHost:
    """The hosting loop of one worker process."""

    def __init__(self, worker: str, *, capacity: int = 200, ttl: float = leases.DEFAULT_TTL,
                 renew_every: float = leases.DEFAULT_RENEW_EVERY, reconcile_every: float = 15.0,
                 venue_factory: VenueFactory | None = None, max_starts_per_tick: int = 20) -> None:
        self.worker = worker
        self.keeper = leases.LeaseKeeper(worker, capacity=capacity, ttl=ttl, renew_every=renew_every)
        self.hosted = HostedBots(reconcile_every=reconcile_every, venue_factory=venue_factory)
        self.max_starts = max_starts_per_tick
        self.stopping = threading.Event()

    # ------------------------------------------------------------------ one pass
    def step(self) -> None:
        """Renew, drop lost bots, start claimed ones, follow the desired state, publish statuses."""
        close_old_connections()
        if time.monotonic() > self.keeper.expired_at():
            for pk in list(self.hosted.runners):  # self-fencing: we may have lost them without hearing it
                self.hosted.unhost(pk)
            self.keeper.held.clear()
        acquired, lost = self.keeper.tick()
        for pk in lost:
            self.hosted.unhost(pk)
        for n, pk in enumerate(sorted(acquired)):
            if n >= self.max_starts:  # the rest next pass (their leases are released for now)
                self.keeper.drop(pk)
                continue
            self._start(pk)
            if time.monotonic() - self.keeper._renewed_at > self.keeper.renew_every:
                self.keeper.held = leases.renew(self.worker, self.keeper.held, self.keeper.ttl)
                self.keeper._renewed_at = time.monotonic()
        self._follow_desired_state()
        for pk, runner in list(self.hosted.runners.items()):
            cache.set(STATUS_KEY.format(pk), {**runner.status(), "worker": self.worker},
                      timeout=int(self.keeper.ttl))

    def _start(self, pk: int) -> None:
        bot = Bot.objects.select_related("exchange_account").filter(pk=pk).first()
        if bot is None:
            self.keeper.drop(pk)
            return
        try:
            runner = self.hosted.host_bot(bot)
        except Exception as exc:
            log.exception("%s: bot %s did not start", self.worker, pk)
            self.keeper.drop(pk)
            set_status(pk, BotStatus.ERROR, f"start failed: {type(exc).__name__}: {exc}")
            return
        if runner.state == "stopped":  # its log ends with a stop: never claim it again
            self.hosted.unhost(pk)
            self.keeper.drop(pk)
            set_status(pk, BotStatus.STOPPED, STOPPED_RUN_MESSAGE)
        elif runner.state == "error":
            set_status(pk, BotStatus.ERROR, runner.error)

    def _follow_desired_state(self) -> None:
        rows = dict(Bot.objects.filter(pk__in=list(self.hosted.runners)).values_list("pk", "status"))
        for pk in list(self.hosted.runners):
            status = rows.get(pk)
            runner = self.hosted.runners[pk]
            if status not in ACTIVE or runner.state in ("stopped", "error"):
                # stopped through the API (a stop control message normally arrives first) or failed here
                if runner.state not in ("stopped", "error") and status is not None:
                    self.hosted.call(runner.stop(cancel_orders=True))
                self.hosted.unhost(pk)
                self.keeper.drop(pk)
                cache.delete(STATUS_KEY.format(pk))

    # ------------------------------------------------------------------ control messages
    def control(self, pk: int, op: str, args: dict[str, Any]) -> None:
        """Run a control message for a bot hosted here."""
        runner: BotRunner = self.hosted.runner(pk)
        if op == "command":
            self.hosted.call(runner.command(args["name"]))
        elif op == "config":
            cfg = type(runner.config).model_validate(args["config"])
            self.hosted.call(runner.change_config(cfg))
        elif op == "stop":
            self.hosted.call(runner.stop(cancel_orders=bool(args.get("cancel_orders", True)),
                                         sell_all=bool(args.get("sell_all", False))))
            self.hosted.unhost(pk)
            self.keeper.drop(pk)
        else:
            raise ValueError(f"unknown control operation {op!r}")

    # ------------------------------------------------------------------ loop
    def run(self) -> None:
        """Loop until :attr:`stopping` is set; then stop hosting and release the leases (orders stay)."""
        try:
            while not self.stopping.is_set():
                started = time.monotonic()
                try:
                    self.step()
                except Exception:
                    log.exception("%s: hosting pass failed", self.worker)
                self.stopping.wait(max(0.0, self.keeper.renew_every - (time.monotonic() - started)))
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        """Stop hosting every bot (orders left on the book) and release the leases so others resume them now."""
        self.hosted.shutdown()
        try:
            self.keeper.release_all()
        except Exception:
            log.exception("%s: leases not released (they expire after the TTL)", self.worker)


_current: WorkerHost | None = None


def current_worker_host() -> WorkerHost | None:
    """Return the hosting loop of this process (None outside ``gridfleet worker``)."""
    return _current


@app.task(name="gridfleet.run_worker_host", ignore_result=True)
def run_worker_host(worker_name: str = "", capacity: int = 200, ttl: float = leases.DEFAULT_TTL,
                    renew_every: float = leases.DEFAULT_RENEW_EVERY) -> None:
    """Host bots under leases until the process stops (long-running; ``gridfleet worker`` runs it in a thread)."""
    global _current
    host = WorkerHost(worker_name or default_worker_name(), capacity=capacity, ttl=ttl, renew_every=renew_every)
    _current = host
    try:
        host.run()
    finally:
        _current = None


@app.task(name="gridfleet.bot_control")
def bot_control(bot_pk: int, op: str, args: dict[str, Any]) -> str:
    """Forward a control message to the bot's hosting loop (runs in the worker holding the bot's lease)."""
    host = current_worker_host()
    if host is None:
        raise LookupError("no bot host in this worker process")
    host.control(bot_pk, op, args)
    return "ok"


def _snapshot(pk: int, runner: BotRunner, ts: int, run: int = 1) -> EquitySnapshot | None:
    if runner.strategy is None:
        return None
    info = runner.strategy.status()
    price = runner.price
    base = Decimal(str(info.get("base", "0")))
    portfolio = getattr(runner.strategy, "portfolio", None)
    quote_flow = getattr(portfolio, "quote_flow", Decimal(0))
    initial = Decimal(str(getattr(runner.config, "investment", None) or 0))
    return EquitySnapshot(bot_id=pk, run=run, ts=ts, price=price, equity=initial + quote_flow + base * price,
                          grid_profit=Decimal(str(info.get("grid_profit", "0"))),
                          realized_pnl=Decimal(str(info.get("realized_pnl", "0"))),
                          unrealized_pnl=Decimal(str(info.get("unrealized_pnl", "0"))), base=base,
                          quote_flow=quote_flow)


def _run_of(hosted: HostedBots, runner: BotRunner) -> int:
    try:
        return hosted.store.run_number(runner.bot_id)
    except LookupError:
        return 1


def snapshot_hosted(hosted: HostedBots) -> int:
    """Write one equity snapshot per bot hosted by ``hosted``; return how many."""
    ts = int(time.time() * 1000)
    rows = [s for pk, r in list(hosted.runners.items())
            if (s := _snapshot(pk, r, ts, _run_of(hosted, r))) is not None]
    EquitySnapshot.objects.bulk_create(rows)
    try:
        from gridfleet.server.realtime.notify import publish_pnl
    except ImportError:
        return len(rows)
    owners = dict(Bot.objects.filter(pk__in=[s.bot_id for s in rows]).values_list("pk", "owner_id"))
    for row in rows:
        try:
            publish_pnl(row, owners.get(row.bot_id))
        except Exception:
            log.debug("pnl not published", exc_info=True)
    return len(rows)


def _local_hosted() -> HostedBots | None:
    host = current_worker_host()
    if host is not None:
        return host.hosted
    from gridfleet.server.trading.service import get_runtime

    try:
        hosted = getattr(get_runtime(), "hosted", None)
    except RuntimeError:
        return None
    return hosted if isinstance(hosted, HostedBots) else None


@app.task(name="gridfleet.snapshot_local", ignore_result=True)
def snapshot_local() -> int:
    """Snapshot the bots hosted in this process (sent to each worker's own queue)."""
    hosted = _local_hosted()
    return 0 if hosted is None else snapshot_hosted(hosted)


@app.task(name="gridfleet.take_equity_snapshots", ignore_result=True)
def take_equity_snapshots() -> int:
    """Beat task: an EquitySnapshot for every running bot, wherever it runs.

    The bots hosted in this process are snapshotted here; every other worker holding a live lease gets a
    :func:`snapshot_local` message on its own queue. Returns the number of snapshots written here.
    """
    written = snapshot_local()
    me = current_worker_host()
    if not app.conf.task_always_eager:
        workers = set(BotLease.objects.filter(expires_at__gte=Now()).values_list("worker", flat=True))
        for worker in workers - ({me.worker} if me is not None else set()):
            snapshot_local.apply_async(queue=worker_queue(worker))
    return written


class WorkerRuntime:
    """The :class:`RuntimeService` of API processes when bots run in Celery workers."""

    def __init__(self, *, timeout: float = 30.0) -> None:
        self.timeout = timeout

    def _send(self, bot_id: int, op: str, args: dict[str, Any]) -> None:
        worker = leases.holder(bot_id)
        if worker is None:
            raise LookupError(f"bot {bot_id} is not running on any worker")
        result = bot_control.apply_async(args=[bot_id, op, args], queue=worker_queue(worker))
        if not app.conf.task_always_eager:
            result.get(timeout=self.timeout)

    def start(self, bot_id: int) -> None:
        """Mark the bot running: a worker claims it within one renew interval."""
        set_status(bot_id, BotStatus.RUNNING, "waiting for a worker")

    def command(self, bot_id: int, name: str) -> None:
        """Send a strategy command to the worker holding the bot."""
        self._send(bot_id, "command", {"name": name})

    def apply_config(self, bot_id: int, config: dict[str, Any]) -> None:
        """Send a new config to the worker holding the bot, once the caller's transaction (if any) commits.

        The API calls this while it holds the bot row; the worker writes with its own connection, so waiting
        inside that transaction would deadlock.
        """
        if leases.holder(bot_id) is None:
            raise LookupError(f"bot {bot_id} is not running on any worker")
        if transaction.get_connection().in_atomic_block:
            transaction.on_commit(lambda: self._send_quietly(bot_id, "config", {"config": config}))
        else:
            self._send(bot_id, "config", {"config": config})

    def _send_quietly(self, bot_id: int, op: str, args: dict[str, Any]) -> None:
        try:
            self._send(bot_id, op, args)
        except Exception:
            log.exception("bot %s: %s not delivered", bot_id, op)

    def stop(self, bot_id: int, *, cancel_orders: bool = True, sell_all: bool = False) -> None:
        """Stop the bot on its worker (if it runs anywhere) and mark it stopped."""
        if leases.holder(bot_id) is not None:
            self._send(bot_id, "stop", {"cancel_orders": cancel_orders, "sell_all": sell_all})
        set_status(bot_id, BotStatus.STOPPED)

    def status(self, bot_id: int) -> dict[str, Any] | None:
        """Return the status its worker published last (None when no worker runs it)."""
        value = cache.get(STATUS_KEY.format(bot_id))
        return value if isinstance(value, dict) else None
