"""The runtime's :class:`~gridfleet.runtime.store.BotStore` over the server's database (PostgreSQL or SQLite).

Same semantics as :class:`gridfleet.runtime.store.SqliteStore`:

* ``record()`` is ONE ``transaction.atomic()``: the event, its PENDING orders (upsert: an existing client id
  is left alone), its cancels (``cancel_requested``) and, for a fill, the fill row and the order's filled amount
  (order row locked with ``select_for_update``) are written together. The ``Bot`` row is deliberately *not*
  locked: the API holds it locked while it hands a config to the runtime, and one process drives a bot at a
  time anyway (the runner's lock in-process, the bot's lease across workers);
* a fill is unique per (bot, venue trade id) (a database constraint): a duplicate returns False and writes
  nothing;
* bots are keyed by runtime id (the client-id prefix at the venue): the runtime id of one :class:`BotRun`
  (``Bot.runtime_id`` is the current run's); every read (events, orders, fills, journal) is limited to that run
  and every row written carries its run number, so a new run never replays or reconciles an earlier one.

The runtime calls the store synchronously from its asyncio loop, where Django refuses ORM calls
(``SynchronousOnlyOperation``). Calls made from a thread with a running event loop are therefore executed on one
dedicated database thread of the store (the caller waits, as it does with SQLite); calls from plain threads run
inline. Journal lines and fills are also published to the realtime layer
(``gridfleet.server.realtime.notify``: ``publish_fill``, ``publish_journal``) when that module exists.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from gridfleet.engine.types import Fill, OrderStatus, PlaceOrder, Side
from gridfleet.runtime.store import StoredEvent, StoredOrder
from gridfleet.server.bots.models import Bot
from gridfleet.server.trading import models as m

log = logging.getLogger("gridfleet.server.store")

T = TypeVar("T")
LIVE = ("pending", "open", "partially_filled", "cancel_requested")
CANCELABLE = ("pending", "open", "partially_filled")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _dec(value: Decimal | None) -> Decimal | None:
    """Drop the trailing zeros a DecimalField adds (``0.050000…`` → ``0.05``; ``100`` stays ``100``)."""
    if value is None:
        return None
    out = value.normalize()
    return out.quantize(Decimal(1)) if out.as_tuple().exponent > 0 else out  # type: ignore[operator]


def _notify_module() -> Any:
    try:
        from gridfleet.server.realtime import notify
    except ImportError:
        return None
    return notify


class DjangoBotStore:
    """A :class:`~gridfleet.runtime.store.BotStore` backed by the trading models."""

    def __init__(self, *, owner_for_new_bots: Any = None, publish: bool = True) -> None:
        """``owner_for_new_bots``: a user; when given, ``ensure_bot`` creates unknown bots (tests, tools)."""
        self.owner_for_new_bots = owner_for_new_bots
        self._bots: dict[str, tuple[int, int, int]] = {}  # runtime id -> (pk, owner pk, run number)
        self._runtime_ids: dict[tuple[int, int], str] = {}  # (pk, run number) -> runtime id
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._notify_mod = _notify_module() if publish else None

    # ------------------------------------------------------------------ threading
    def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` (ORM code) where Django allows it: inline, or on the store's DB thread inside an event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return fn()
        with self._executor_lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gridfleet-db")
            executor = self._executor
        return executor.submit(self._in_db_thread, fn).result()

    @staticmethod
    def _in_db_thread(fn: Callable[[], T]) -> T:
        # the DB thread keeps its connection open (reconnecting per call costs ~10 ms); it is only replaced after
        # an error left it unusable (server restart, network)
        conn = connections["default"]
        if conn.connection is not None and conn.errors_occurred and not conn.is_usable():
            conn.close()
        return fn()

    def close(self) -> None:
        """Stop the DB thread (closing its connection)."""
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.submit(connections.close_all).result()
            executor.shutdown(wait=True)

    # ------------------------------------------------------------------ helpers
    def _bot(self, bot_id: str) -> tuple[int, int, int]:
        """Return (bot pk, owner pk, run number) of a runtime id (immutable, so cached)."""
        ids = self._bots.get(bot_id)
        if ids is None:
            row = m.BotRun.objects.filter(runtime_id=bot_id).values_list("bot_id", "bot__owner_id", "number").first()
            if row is None:
                bot = Bot.objects.filter(runtime_id=bot_id).first()
                if bot is None:
                    raise LookupError(f"no bot with runtime id {bot_id!r}")
                from gridfleet.server.trading.runs import current_run

                row = (bot.pk, bot.owner_id, current_run(bot).number)
            ids = self._bots[bot_id] = (row[0], row[1], row[2])
            self._runtime_ids[(row[0], row[2])] = bot_id
        return ids

    def _runtime_id(self, bot_pk: int, run: int) -> str:
        """Return the runtime id of run ``run`` of bot ``bot_pk``."""
        key = (bot_pk, run)
        rid = self._runtime_ids.get(key)
        if rid is None:
            rid = m.BotRun.objects.filter(bot_id=bot_pk, number=run).values_list("runtime_id", flat=True).first()
            if rid is None:  # a bot from before runs were recorded: its only run
                rid = Bot.objects.filter(pk=bot_pk).values_list("runtime_id", flat=True).get()
            self._runtime_ids[key] = rid
        return rid

    def run_number(self, bot_id: str) -> int:
        """Return the run number of a runtime id."""
        return self.run(lambda: self._bot(bot_id)[2])

    def _notify(self, mapper: str, *args: Any) -> None:
        """Publish to the realtime layer (best effort: it never breaks the runtime)."""
        fn = getattr(self._notify_mod, mapper, None)
        if fn is None:
            return
        try:
            fn(*args)
        except Exception:
            log.debug("realtime publish failed", exc_info=True)

    @staticmethod
    def _stored(o: m.Order, bot_id: str) -> StoredOrder:
        return StoredOrder(o.client_id, bot_id, o.symbol, Side(o.side), o.type, _dec(o.amount) or Decimal(0),
                           _dec(o.price), o.level, o.tag, o.status, _dec(o.filled) or Decimal(0), o.exchange_id,
                           int(o.created_at.timestamp() * 1000), o.reason)

    @staticmethod
    def _fill(f: m.Fill) -> Fill:
        return Fill(f.client_id, Side(f.side), _dec(f.price) or Decimal(0), _dec(f.amount) or Decimal(0),
                    _dec(f.fee) or Decimal(0), f.fee_currency, f.ts, f.trade_id, f.is_maker, f.order_complete)

    # ------------------------------------------------------------------ bots
    def ensure_bot(self, bot_id: str, *, strategy: str, symbol: str, exchange: str, config: dict[str, Any]) -> bool:
        """Return True when the bot exists; create it only when the store has ``owner_for_new_bots``."""
        def go() -> bool:
            if m.BotRun.objects.filter(runtime_id=bot_id).exists() or Bot.objects.filter(runtime_id=bot_id).exists():
                self._bot(bot_id)  # records run 1 of a bot that never ran
                return True
            if self.owner_for_new_bots is None:
                raise LookupError(f"no bot with runtime id {bot_id!r} (bots are created through the API)")
            Bot.objects.create(owner=self.owner_for_new_bots, name=bot_id, strategy=strategy, symbol=symbol,
                               exchange=exchange, config=config, runtime_id=bot_id)
            self._bot(bot_id)
            return False
        return self.run(go)

    def bot_config(self, bot_id: str) -> dict[str, Any] | None:
        """Return the bot's current config (None when unknown)."""
        def go() -> dict[str, Any] | None:
            config = Bot.objects.filter(runtime_id=bot_id).values_list("config", flat=True).first()
            return None if config is None else dict(config)
        return self.run(go)

    def set_config(self, bot_id: str, config: dict[str, Any]) -> None:
        """Replace the bot's current config (no write when the API already stored this config)."""
        def go() -> None:
            if Bot.objects.filter(runtime_id=bot_id).values_list("config", flat=True).first() != config:
                Bot.objects.filter(runtime_id=bot_id).update(config=config, updated_at=timezone.now())
        self.run(go)

    # ------------------------------------------------------------------ events
    def record(self, bot_id: str, kind: str, ts: int, payload: dict[str, Any], *,
               new_orders: list[PlaceOrder] | None = None, cancels: list[str] | None = None,
               fill: Fill | None = None, symbol: str = "") -> bool:
        """Append one event with its consequences atomically; False when ``fill`` was already recorded."""
        def go() -> bool:
            pk, _, run = self._bot(bot_id)
            fill_row: m.Fill | None = None
            try:
                with transaction.atomic():
                    if fill is not None and m.Fill.objects.filter(bot_id=pk, trade_id=fill.trade_id).exists():
                        return False
                    event = m.BotEventLog.objects.create(bot_id=pk, run=run, kind=kind, ts=ts, payload=payload)
                    if fill is not None:
                        fill_row = m.Fill.objects.create(
                            bot_id=pk, run=run, trade_id=fill.trade_id, client_id=fill.client_id, symbol=symbol,
                            side=fill.side.value, price=fill.price, amount=fill.amount, fee=fill.fee,
                            fee_currency=fill.fee_currency, ts=fill.timestamp, is_maker=fill.is_maker,
                            order_complete=fill.order_complete, event=event)
                        order = m.Order.objects.select_for_update().filter(client_id=fill.client_id).first()
                        if order is not None:
                            order.filled = order.filled + fill.amount
                            status = (OrderStatus.FILLED.value if fill.order_complete
                                      else OrderStatus.PARTIALLY_FILLED.value)
                            if not (order.status == "cancel_requested" and status == "partially_filled"):
                                order.status = status
                            order.save(update_fields=["filled", "status", "updated_at"])
                    if new_orders:
                        m.Order.objects.bulk_create(
                            [m.Order(bot_id=pk, run=run, client_id=o.client_id, symbol=symbol, side=o.side.value,
                                     type=o.type.value, amount=o.amount, price=o.price, level=o.level, tag=o.tag,
                                     status="pending") for o in new_orders],
                            ignore_conflicts=True)
                    if cancels:
                        m.Order.objects.filter(client_id__in=cancels, status__in=CANCELABLE).update(
                            status="cancel_requested", updated_at=timezone.now())
            except IntegrityError:
                if fill is not None and m.Fill.objects.filter(bot_id=pk, trade_id=fill.trade_id).exists():
                    return False  # a concurrent writer recorded the same trade first
                raise
            if fill_row is not None:
                self._notify("publish_fill", fill_row, self._bot(bot_id)[1])
            return True
        return self.run(go)

    def events(self, bot_id: str) -> list[StoredEvent]:
        """Return the bot's event log, oldest first."""
        def go() -> list[StoredEvent]:
            pk, _, run = self._bot(bot_id)
            rows = m.BotEventLog.objects.filter(bot_id=pk, run=run).order_by("id").values_list(
                "id", "kind", "ts", "payload")
            return [StoredEvent(r[0], bot_id, r[1], r[2], r[3]) for r in rows]
        return self.run(go)

    # ------------------------------------------------------------------ orders and fills
    def orders(self, bot_id: str, *, live_only: bool = False) -> list[StoredOrder]:
        """Return the bot's orders in creation order (only those still to watch with ``live_only``)."""
        def go() -> list[StoredOrder]:
            pk, _, run = self._bot(bot_id)
            qs = m.Order.objects.filter(bot_id=pk, run=run)
            if live_only:
                qs = qs.filter(status__in=LIVE)
            return [self._stored(o, bot_id) for o in qs.order_by("id")]
        return self.run(go)

    def order(self, client_id: str) -> StoredOrder | None:
        """Return one order by client id."""
        def go() -> StoredOrder | None:
            o = m.Order.objects.filter(client_id=client_id).first()
            return None if o is None else self._stored(o, self._runtime_id(o.bot_id, o.run))
        return self.run(go)

    def update_order(self, client_id: str, *, status: str | None = None, exchange_id: str | None = None,
                     reason: str | None = None) -> None:
        """Change an order's status / exchange id / reason."""
        changes: dict[str, Any] = {"updated_at": timezone.now()}
        if status is not None:
            changes["status"] = status
        if exchange_id is not None:
            changes["exchange_id"] = exchange_id
        if reason is not None:
            changes["reason"] = reason[:500]
        if len(changes) > 1:
            self.run(lambda: m.Order.objects.filter(client_id=client_id).update(**changes))

    def fills(self, bot_id: str) -> list[Fill]:
        """Return the bot's fills, oldest first."""
        def go() -> list[Fill]:
            pk, _, run = self._bot(bot_id)
            return [self._fill(f) for f in m.Fill.objects.filter(bot_id=pk, run=run).order_by("id")]
        return self.run(go)

    def has_fill(self, bot_id: str, trade_id: str) -> bool:
        """Return True when that trade is recorded for the bot."""
        def go() -> bool:
            pk = self._bot(bot_id)[0]  # venue trade ids are unique: a trade of any run counts
            return m.Fill.objects.filter(bot_id=pk, trade_id=trade_id).exists()
        return self.run(go)

    # ------------------------------------------------------------------ journal
    def log(self, bot_id: str, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        """Record a journal line (corrections, warnings, risk alerts); not replayed."""
        def go() -> None:
            pk, _, run = self._bot(bot_id)
            ts = _now_ms()
            clean = json.loads(json.dumps(data or {}, default=str))
            entry = m.JournalEntry.objects.create(bot_id=pk, run=run, ts=ts, kind=kind[:16], message=message,
                                                  data=clean)
            self._notify("publish_journal", entry)
        self.run(go)

    def journal(self, bot_id: str, limit: int = 100) -> list[tuple[int, str, str]]:
        """Return recent journal lines (ts, kind, message), newest last."""
        def go() -> list[tuple[int, str, str]]:
            pk, _, run = self._bot(bot_id)
            rows = m.JournalEntry.objects.filter(bot_id=pk, run=run).order_by("-id").values_list(
                "ts", "kind", "message")
            return [(r[0], r[1], r[2]) for r in reversed(rows[:limit])]
        return self.run(go)
