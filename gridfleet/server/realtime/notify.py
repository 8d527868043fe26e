"""Publishing events to websocket clients: ``publish(user_id, event)`` and mappers from the trading models.

An event reaches three groups: ``user.<owner>``, ``agent.<owner's agent>`` (when the owner has one) and
``admins``. On the wire it is one JSON text frame ``{"type", "bot"?, "data", "ts", "id"}`` (``ts`` in epoch
milliseconds, ``id`` a unique string clients may use to drop duplicates).

:func:`publish` never blocks on the network when it can avoid it and never raises for delivery problems
(logged instead):

* called from async code on the loop serving websockets here (the consumers register it): queued to that
  loop's publisher task; the owner's agent is looked up with ``database_sync_to_async``;
* called from any other thread, or from another event loop (which may end before the event is sent), while
  this process serves websockets: handed to the serving loop with ``call_soon_threadsafe`` (this is what makes
  the in-memory channel layer work);
* otherwise (a Celery worker, a bot host, a management command): handed to this process's background publisher
  thread (its own event loop and Redis connections, started on first use, re-created after a fork); only if that
  fails, sent inline with ``async_to_sync(channel_layer.group_send)``.

The caller's thread does at most one indexed query (the owner's agent) and never waits for Redis. Events of one
thread keep their order. :func:`flush` waits until everything queued is sent (tests, shutdown; also at exit).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import threading
import time
import uuid
import weakref
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder

log = logging.getLogger(__name__)

EVENT_TYPES = frozenset({"bot_status", "fill", "pnl", "risk_alert", "notification"})
"""The event types :func:`publish` accepts."""

ADMINS_GROUP = "admins"
HANDLER = "realtime.event"
"""The channel-layer message type; the consumer's ``realtime_event`` sends its ``text``."""

_LOOKUP: Any = object()


def user_group(user_id: int) -> str:
    """Return the group of one user's connections."""
    return f"user.{user_id}"


def agent_group(agent_id: int) -> str:
    """Return the group of one agent's connections (they receive their clients' events)."""
    return f"agent.{agent_id}"


def now_ms() -> int:
    """Return the wall clock in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def make_message(event: dict[str, Any]) -> dict[str, Any]:
    """Return the wire form of ``event`` (validated, JSON-safe: Decimals and datetimes become strings)."""
    kind = event.get("type")
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown event type {kind!r}; expected one of {sorted(EVENT_TYPES)}")
    message: dict[str, Any] = {"type": kind}
    if event.get("bot") is not None:
        message["bot"] = event["bot"]
    message["data"] = event.get("data") or {}
    message["ts"] = int(event.get("ts") or now_ms())
    message["id"] = str(event.get("id") or uuid.uuid4().hex)
    return message


def encode(message: dict[str, Any]) -> str:
    """Return ``message`` as compact JSON (Decimal, datetime, UUID as strings)."""
    return json.dumps(message, cls=DjangoJSONEncoder, separators=(",", ":"))


def groups_for(owner_id: int, agent_id: int | None) -> list[str]:
    """Return the groups an event of ``owner_id`` goes to."""
    groups = [user_group(owner_id)]
    if agent_id is not None and agent_id != owner_id:
        groups.append(agent_group(agent_id))
    groups.append(ADMINS_GROUP)
    return groups


def _agent_of(user_id: int) -> int | None:
    from gridfleet.server.users.models import User

    return User.objects.filter(pk=user_id).values_list("agent_id", flat=True).first()


async def send_to_groups(groups: list[str], text: str) -> None:
    """Send one encoded event to ``groups`` on the default channel layer."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": HANDLER, "text": text}
    await asyncio.gather(*(layer.group_send(group, message) for group in groups))


class _LoopPublisher:
    """A queue and one worker task on one event loop, so events are sent without blocking callers.

    The worker takes up to :data:`BATCH` queued events at a time and sends the events of different owners
    concurrently, those of one owner one after the other (so each group sees one owner's events in order).
    """

    BATCH = 64

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)  # weak: a finished loop must not be kept alive by its publisher
        self.queue: asyncio.Queue[tuple[int, Any, str]] | None = None
        self.worker: asyncio.Task[None] | None = None
        self.pending = 0
        self._count = threading.Lock()

    @property
    def closed(self) -> bool:
        """Return True once the loop is gone or closed."""
        loop = self._loop()
        return loop is None or loop.is_closed()

    def count(self, n: int) -> None:
        """Add ``n`` to the number of events handed over and not sent yet (any thread)."""
        with self._count:
            self.pending += n

    def submit(self, owner_id: int, agent_id: Any, text: str) -> None:
        """Queue an event (call in the loop's thread)."""
        if self.queue is None:
            self.queue = asyncio.Queue()
        self.queue.put_nowait((owner_id, agent_id, text))
        if self.worker is None:
            self.worker = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            await self._drain()
        finally:
            self.worker = None

    async def _drain(self) -> None:
        assert self.queue is not None
        while True:
            try:
                first = await asyncio.wait_for(self.queue.get(), timeout=5.0)
            except TimeoutError:
                if self.queue.empty():
                    return
                continue
            batch = [first]
            while len(batch) < self.BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            by_owner: dict[int, list[tuple[Any, str]]] = {}
            for owner_id, agent_id, text in batch:
                by_owner.setdefault(owner_id, []).append((agent_id, text))
            await asyncio.gather(*(self._send_owner(owner, events) for owner, events in by_owner.items()))

    async def _send_owner(self, owner_id: int, events: list[tuple[Any, str]]) -> None:
        agent: Any = _LOOKUP
        for agent_id, text in events:
            try:
                if agent_id is _LOOKUP:
                    if agent is _LOOKUP:
                        agent = await database_sync_to_async(_agent_of)(owner_id)
                    agent_id = agent
                await send_to_groups(groups_for(owner_id, agent_id), text)
            except Exception:
                log.exception("realtime: event for user %s not delivered", owner_id)
            finally:
                self.count(-1)


_publishers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPublisher] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_server_loop: asyncio.AbstractEventLoop | None = None


def _publisher(loop: asyncio.AbstractEventLoop) -> _LoopPublisher:
    with _lock:
        pub = _publishers.get(loop)
        if pub is None:
            pub = _publishers[loop] = _LoopPublisher(loop)
        return pub


_background: tuple[int, asyncio.AbstractEventLoop] | None = None


def _background_loop() -> asyncio.AbstractEventLoop:
    """Return this process's publisher loop, running on a daemon thread (started once per process)."""
    global _background
    with _lock:
        if _background is None or _background[0] != os.getpid() or _background[1].is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="gridfleet-realtime-publish", daemon=True).start()
            _background = (os.getpid(), loop)
        return _background[1]


def flush(timeout: float = 5.0) -> bool:
    """Wait (from sync code) until every handed-over event is sent; return False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        with _lock:
            pending = sum(p.pending for p in list(_publishers.values()) if not p.closed)
        if pending <= 0:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)


atexit.register(flush, 2.0)


def register_server_loop(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Remember the loop serving websockets here (the consumers call this), for publishes from other threads."""
    global _server_loop
    _server_loop = loop or asyncio.get_running_loop()


def publish(user_id: int, event: dict[str, Any], *, agent_id: Any = _LOOKUP) -> None:
    """Deliver ``event`` ({type, bot?, data, ts?}) to ``user_id``, the user's agent and the admins.

    ``agent_id`` skips the database look-up of the owner's agent when the caller knows it (``None``: no agent).
    Raises ``ValueError`` only for an unknown event type; delivery problems are logged.
    """
    text = encode(make_message(event))
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    server = _server_loop
    if running is not None and running is server:
        pub = _publisher(running)
        pub.count(1)
        pub.submit(user_id, agent_id, text)
        return
    if running is None and agent_id is _LOOKUP:
        try:
            agent_id = _agent_of(user_id)
        except Exception:
            log.exception("realtime: agent of user %s not looked up", user_id)
            agent_id = None
    # another thread, or a loop that may end soon (async_to_sync, asyncio.run): hand over to a long-lived loop
    target = server if server is not None and server.is_running() and not server.is_closed() else None
    try:
        target = target or _background_loop()
        pub = _publisher(target)
        pub.count(1)
        try:
            target.call_soon_threadsafe(pub.submit, user_id, agent_id, text)
            return
        except RuntimeError:  # the loop closed between the check and the call
            pub.count(-1)
    except Exception:
        log.exception("realtime: no publisher loop")
    if agent_id is _LOOKUP:  # only reached from a foreign loop whose publisher could not be used
        agent_id = None
    try:
        async_to_sync(send_to_groups)(groups_for(user_id, agent_id), text)
    except Exception:
        log.exception("realtime: event for user %s not delivered", user_id)


# --- mappers from the server's models ------------------------------------------------------------------------

ALERT_KINDS = frozenset({"risk", "alert"})
"""Journal kinds that are risk alerts (a ``risk_alert`` event plus a stored notification, email and webhook)."""


def publish_journal(entry: Any) -> None:
    """Publish a trading ``JournalEntry`` (call from sync code, after it is saved).

    * ``risk``, ``alert`` → ``risk_alert`` event, and an alert (notification, email, webhook);
    * ``error`` → ``bot_status`` event with status ``error``, and an alert;
    * ``state`` → ``bot_status`` event with the bot's current status;
    * anything else (``warning``, ``correction``, ``plan``…) → ``notification`` event, not stored.
    """
    from gridfleet.server.realtime.alerts import alert

    bot = entry.bot
    owner_id = bot.owner_id
    base = {"kind": entry.kind, "message": entry.message, "data": entry.data or {}, "journal_id": entry.pk,
            "bot_name": bot.name, "symbol": bot.symbol}
    ts = entry.ts
    if entry.kind in ALERT_KINDS:
        publish(owner_id, {"type": "risk_alert", "bot": bot.pk, "data": base, "ts": ts})
        alert(owner_id, "risk_alert", f"Risk alert: {bot.name} ({bot.symbol})", entry.message,
              {**base, "bot": bot.pk})
    elif entry.kind == "error":
        publish(owner_id, {"type": "bot_status", "bot": bot.pk, "ts": ts,
                           "data": {**base, "status": "error"}})
        alert(owner_id, "bot_error", f"Bot error: {bot.name} ({bot.symbol})", entry.message, {**base, "bot": bot.pk})
    elif entry.kind == "state":
        publish(owner_id, {"type": "bot_status", "bot": bot.pk, "ts": ts,
                           "data": {**base, "status": bot.status}})
    else:
        level = "warning" if entry.kind in {"warning", "correction"} else "info"
        publish(owner_id, {"type": "notification", "bot": bot.pk, "ts": ts,
                           "data": {**base, "id": None, "level": level, "title": f"{entry.kind}: {bot.name}",
                                    "body": entry.message}})


def publish_bot_status(bot: Any) -> None:
    """Publish a ``bot_status`` event for a ``Bot`` (status and status message)."""
    publish(bot.owner_id, {"type": "bot_status", "bot": bot.pk,
                           "data": {"status": bot.status, "message": bot.status_message, "bot_name": bot.name,
                                    "symbol": bot.symbol}})


def publish_fill(fill: Any, owner_id: int | None = None) -> None:
    """Publish a ``fill`` event for a trading ``Fill``."""
    owner = owner_id if owner_id is not None else fill.bot.owner_id
    publish(owner, {"type": "fill", "bot": fill.bot_id, "ts": fill.ts, "data": {
        "trade_id": fill.trade_id, "client_id": fill.client_id, "symbol": fill.symbol, "side": fill.side,
        "price": fill.price, "amount": fill.amount, "fee": fill.fee, "fee_currency": fill.fee_currency,
        "is_maker": fill.is_maker}})


def publish_pnl(snapshot: Any, owner_id: int | None = None) -> None:
    """Publish a ``pnl`` event for an ``EquitySnapshot``."""
    owner = owner_id if owner_id is not None else snapshot.bot.owner_id
    publish(owner, {"type": "pnl", "bot": snapshot.bot_id, "ts": snapshot.ts, "data": {
        name: getattr(snapshot, name) for name in ("price", "equity", "grid_profit", "realized_pnl",
                                                   "unrealized_pnl", "base", "quote_flow")}})
