"""Durable bot state: an append-only log of every strategy input, the orders, and the fills.

Crash safety rests on three rules (see docs/runtime.md):

1. every input the strategy sees (start, tick, fill, order update, config change, command) is appended to the
   bot's event log *in the same transaction* as the orders it produced (status PENDING, before they are sent)
   and, for a fill, the fill row itself;
2. a fill is keyed by the venue's trade id, so a replayed or duplicated fill is recorded once;
3. on restart the strategy is rebuilt by replaying its event log (strategies are deterministic, so the client
   ids come out the same), then reconciled against the venue.

:class:`SqliteStore` is the embedded default (WAL mode, one file); the server plugs in PostgreSQL through the
same :class:`BotStore` interface.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from gridfleet.engine.types import Fill, OrderStatus, PlaceOrder, Side

#: statuses of orders the runtime still has to watch
LIVE_STATUSES = ("pending", "open", "partially_filled", "cancel_requested")


@dataclass(frozen=True, slots=True)
class StoredOrder:
    """An order as the runtime recorded it."""

    client_id: str
    bot_id: str
    symbol: str
    side: Side
    type: str
    amount: Decimal
    price: Decimal | None
    level: int | None
    tag: str
    status: str  # an OrderStatus value, or "cancel_requested"
    filled: Decimal
    exchange_id: str | None
    created_at: int
    reason: str


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One strategy input from the log."""

    seq: int
    bot_id: str
    kind: str
    ts: int
    payload: dict[str, Any]


class BotStore(Protocol):
    """What the runtime needs from persistence."""

    def ensure_bot(self, bot_id: str, *, strategy: str, symbol: str, exchange: str, config: dict[str, Any]) -> bool:
        """Create the bot record if missing; return True when it already existed."""

    def bot_config(self, bot_id: str) -> dict[str, Any] | None:
        """Return the bot's current config (None when unknown)."""

    def record(self, bot_id: str, kind: str, ts: int, payload: dict[str, Any], *,
               new_orders: list[PlaceOrder] = ..., cancels: list[str] = ..., fill: Fill | None = None,
               symbol: str = "") -> bool:
        """Append one event with its consequences atomically; False when ``fill`` was already recorded."""

    def events(self, bot_id: str) -> list[StoredEvent]:
        """Return the bot's event log, oldest first."""

    def orders(self, bot_id: str, *, live_only: bool = False) -> list[StoredOrder]:
        """Return the bot's orders (only those still to watch with ``live_only``)."""

    def update_order(self, client_id: str, *, status: str | None = None, exchange_id: str | None = None,
                     reason: str | None = None) -> None:
        """Change an order's status / exchange id / reason."""

    def fills(self, bot_id: str) -> list[Fill]:
        """Return the bot's fills, oldest first."""

    def has_fill(self, bot_id: str, trade_id: str) -> bool:
        """Return True when that trade is recorded for the bot."""

    def log(self, bot_id: str, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        """Record a journal line (corrections, warnings, risk alerts); not replayed."""

    def journal(self, bot_id: str, limit: int = 100) -> list[tuple[int, str, str]]:
        """Return recent journal lines (ts, kind, message), newest last."""


SCHEMA = """
CREATE TABLE IF NOT EXISTS bots (
    bot_id TEXT PRIMARY KEY, strategy TEXT NOT NULL, symbol TEXT NOT NULL, exchange TEXT NOT NULL,
    config TEXT NOT NULL, created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, bot_id TEXT NOT NULL, kind TEXT NOT NULL, ts INTEGER NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_bot ON events (bot_id, seq);
CREATE TABLE IF NOT EXISTS orders (
    client_id TEXT PRIMARY KEY, bot_id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    type TEXT NOT NULL, amount TEXT NOT NULL, price TEXT, level INTEGER, tag TEXT NOT NULL,
    status TEXT NOT NULL, filled TEXT NOT NULL DEFAULT '0', exchange_id TEXT, created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL, reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS orders_bot ON orders (bot_id, status);
CREATE TABLE IF NOT EXISTS fills (
    bot_id TEXT NOT NULL, trade_id TEXT NOT NULL, client_id TEXT NOT NULL, side TEXT NOT NULL,
    price TEXT NOT NULL, amount TEXT NOT NULL, fee TEXT NOT NULL, fee_currency TEXT NOT NULL,
    ts INTEGER NOT NULL, maker INTEGER NOT NULL, complete INTEGER NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (bot_id, trade_id)
);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT, bot_id TEXT NOT NULL, ts INTEGER NOT NULL, kind TEXT NOT NULL,
    message TEXT NOT NULL, data TEXT NOT NULL
);
"""


def _now_ms() -> int:
    return int(time.time() * 1000)


def fill_to_json(fill: Fill) -> dict[str, Any]:
    """Return a fill as JSON-able data (decimals as strings)."""
    return {"client_id": fill.client_id, "side": fill.side.value, "price": str(fill.price),
            "amount": str(fill.amount), "fee": str(fill.fee), "fee_currency": fill.fee_currency,
            "timestamp": fill.timestamp, "trade_id": fill.trade_id, "is_maker": fill.is_maker,
            "order_complete": fill.order_complete}


def fill_from_json(data: dict[str, Any]) -> Fill:
    """Rebuild a fill from :func:`fill_to_json` data."""
    return Fill(data["client_id"], Side(data["side"]), Decimal(data["price"]), Decimal(data["amount"]),
                Decimal(data["fee"]), data["fee_currency"], int(data["timestamp"]), data["trade_id"],
                bool(data["is_maker"]), bool(data["order_complete"]))


class SqliteStore:
    """The embedded :class:`BotStore`: one SQLite file in WAL mode, safe against kill -9."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ------------------------------------------------------------------ bots
    def ensure_bot(self, bot_id: str, *, strategy: str, symbol: str, exchange: str, config: dict[str, Any]) -> bool:
        """Create the bot record if missing; return True when it already existed."""
        with self._tx() as db:
            row = db.execute("SELECT 1 FROM bots WHERE bot_id = ?", (bot_id,)).fetchone()
            if row is None:
                db.execute("INSERT INTO bots VALUES (?, ?, ?, ?, ?, ?)",
                           (bot_id, strategy, symbol, exchange, json.dumps(config), _now_ms()))
            return row is not None

    def bot_config(self, bot_id: str) -> dict[str, Any] | None:
        """Return the bot's current config (None when unknown)."""
        row = self._db.execute("SELECT config FROM bots WHERE bot_id = ?", (bot_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def set_config(self, bot_id: str, config: dict[str, Any]) -> None:
        """Replace the bot's current config."""
        with self._tx() as db:
            db.execute("UPDATE bots SET config = ? WHERE bot_id = ?", (json.dumps(config), bot_id))

    # ------------------------------------------------------------------ events
    def record(self, bot_id: str, kind: str, ts: int, payload: dict[str, Any], *,
               new_orders: list[PlaceOrder] | None = None, cancels: list[str] | None = None,
               fill: Fill | None = None, symbol: str = "") -> bool:
        """Append one event with its consequences atomically; False when ``fill`` was already recorded."""
        now = _now_ms()
        with self._tx() as db:
            if fill is not None:
                seen = db.execute("SELECT 1 FROM fills WHERE bot_id = ? AND trade_id = ?",
                                  (bot_id, fill.trade_id)).fetchone()
                if seen is not None:
                    return False
            cur = db.execute("INSERT INTO events (bot_id, kind, ts, payload) VALUES (?, ?, ?, ?)",
                             (bot_id, kind, ts, json.dumps(payload)))
            seq = cur.lastrowid
            if fill is not None:
                db.execute("INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (bot_id, fill.trade_id, fill.client_id, fill.side.value, str(fill.price),
                            str(fill.amount), str(fill.fee), fill.fee_currency, fill.timestamp,
                            int(fill.is_maker), int(fill.order_complete), seq))
                row = db.execute("SELECT filled, amount FROM orders WHERE client_id = ?", (fill.client_id,)).fetchone()
                if row is not None:
                    filled = Decimal(row[0]) + fill.amount
                    status = OrderStatus.FILLED.value if fill.order_complete else OrderStatus.PARTIALLY_FILLED.value
                    db.execute("UPDATE orders SET filled = ?, status = CASE WHEN status = 'cancel_requested' AND ? = "
                               "'partially_filled' THEN status ELSE ? END, updated_at = ? WHERE client_id = ?",
                               (str(filled), status, status, now, fill.client_id))
            for order in new_orders or []:
                db.execute(
                    "INSERT OR IGNORE INTO orders (client_id, bot_id, symbol, side, type, amount, price, level, tag,"
                    " status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                    (order.client_id, bot_id, symbol, order.side.value, order.type.value, str(order.amount),
                     None if order.price is None else str(order.price), order.level, order.tag, now, now))
            for client_id in cancels or []:
                db.execute("UPDATE orders SET status = 'cancel_requested', updated_at = ? WHERE client_id = ? AND "
                           "status IN ('pending', 'open', 'partially_filled')", (now, client_id))
        return True

    def events(self, bot_id: str) -> list[StoredEvent]:
        """Return the bot's event log, oldest first."""
        rows = self._db.execute("SELECT seq, bot_id, kind, ts, payload FROM events WHERE bot_id = ? ORDER BY seq",
                                (bot_id,)).fetchall()
        return [StoredEvent(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    # ------------------------------------------------------------------ orders and fills
    def orders(self, bot_id: str, *, live_only: bool = False) -> list[StoredOrder]:
        """Return the bot's orders (only those still to watch with ``live_only``)."""
        query = ("SELECT client_id, bot_id, symbol, side, type, amount, price, level, tag, status, filled, exchange_id,"
                 " created_at, reason FROM orders WHERE bot_id = ?")
        if live_only:
            query += " AND status IN ('pending', 'open', 'partially_filled', 'cancel_requested')"
        rows = self._db.execute(query + " ORDER BY created_at, client_id", (bot_id,)).fetchall()
        return [StoredOrder(r[0], r[1], r[2], Side(r[3]), r[4], Decimal(r[5]), None if r[6] is None else Decimal(r[6]),
                            r[7], r[8], r[9], Decimal(r[10]), r[11], r[12], r[13]) for r in rows]

    def order(self, client_id: str) -> StoredOrder | None:
        """Return one order by client id."""
        row = self._db.execute("SELECT bot_id FROM orders WHERE client_id = ?", (client_id,)).fetchone()
        if row is None:
            return None
        return next((o for o in self.orders(row[0]) if o.client_id == client_id), None)

    def update_order(self, client_id: str, *, status: str | None = None, exchange_id: str | None = None,
                     reason: str | None = None) -> None:
        """Change an order's status / exchange id / reason."""
        with self._tx() as db:
            if status is not None:
                db.execute("UPDATE orders SET status = ?, updated_at = ? WHERE client_id = ?",
                           (status, _now_ms(), client_id))
            if exchange_id is not None:
                db.execute("UPDATE orders SET exchange_id = ? WHERE client_id = ?", (exchange_id, client_id))
            if reason is not None:
                db.execute("UPDATE orders SET reason = ? WHERE client_id = ?", (reason, client_id))

    def fills(self, bot_id: str) -> list[Fill]:
        """Return the bot's fills, oldest first."""
        rows = self._db.execute(
            "SELECT client_id, side, price, amount, fee, fee_currency, ts, trade_id, maker, complete FROM fills "
            "WHERE bot_id = ? ORDER BY seq", (bot_id,)).fetchall()
        return [Fill(r[0], Side(r[1]), Decimal(r[2]), Decimal(r[3]), Decimal(r[4]), r[5], r[6], r[7], bool(r[8]),
                     bool(r[9])) for r in rows]

    def has_fill(self, bot_id: str, trade_id: str) -> bool:
        """Return True when that trade is recorded for the bot."""
        row = self._db.execute("SELECT 1 FROM fills WHERE bot_id = ? AND trade_id = ?", (bot_id, trade_id)).fetchone()
        return row is not None

    # ------------------------------------------------------------------ journal
    def log(self, bot_id: str, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        """Record a journal line (corrections, warnings, risk alerts); not replayed."""
        with self._tx() as db:
            db.execute("INSERT INTO journal (bot_id, ts, kind, message, data) VALUES (?, ?, ?, ?, ?)",
                       (bot_id, _now_ms(), kind, message, json.dumps(data or {}, default=str)))

    def journal(self, bot_id: str, limit: int = 100) -> list[tuple[int, str, str]]:
        """Return recent journal lines (ts, kind, message), newest last."""
        rows = self._db.execute("SELECT ts, kind, message FROM journal WHERE bot_id = ? ORDER BY id DESC LIMIT ?",
                                (bot_id, limit)).fetchall()
        return [(r[0], r[1], r[2]) for r in reversed(rows)]
