"""The BotStore contract, run against both stores: the embedded SqliteStore and the server's DjangoBotStore."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gridfleet.engine.config import parse_config
from gridfleet.engine.types import Fill, OrderType, PlaceOrder, Side
from gridfleet.exchanges.paper import PaperExchange
from gridfleet.runtime.bot import BotRunner
from gridfleet.runtime.host import BotHost
from gridfleet.runtime.store import SqliteStore
from gridfleet.server.trading import models as m
from gridfleet.server.trading.store import DjangoBotStore
from gridfleet.server.users.models import User

from .helpers import GRID, ScriptedPrices, zigzag

BOT = "bcontract"


@pytest.fixture(params=["sqlite", "django"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        s = SqliteStore(tmp_path / "state.sqlite3")
        yield s
        s.close()
        return
    request.getfixturevalue("db")
    owner = User.objects.create_user("store-owner", password="x-Pass-12345")
    s2 = DjangoBotStore(owner_for_new_bots=owner)
    yield s2
    s2.close()


def _ensure(store: Any) -> None:
    store.ensure_bot(BOT, strategy="grid", symbol="BTC/USDT", exchange="paper:binance", config={"a": 1})


def _order(cid: str, side: Side = Side.BUY, price: str = "100", amount: str = "0.5") -> PlaceOrder:
    return PlaceOrder(cid, side, OrderType.LIMIT, Decimal(amount), Decimal(price), 3, "grid")


def _fill(cid: str, trade: str, amount: str = "0.2", complete: bool = False) -> Fill:
    return Fill(cid, Side.BUY, Decimal("100"), Decimal(amount), Decimal("0.02"), "USDT", 5_000, trade, True, complete)


def test_ensure_bot_and_config(store: Any) -> None:
    assert store.ensure_bot(BOT, strategy="grid", symbol="BTC/USDT", exchange="x", config={"a": 1}) is False
    assert store.ensure_bot(BOT, strategy="grid", symbol="BTC/USDT", exchange="x", config={"a": 2}) is True
    assert store.bot_config(BOT) == {"a": 1}
    store.set_config(BOT, {"a": 3})
    assert store.bot_config(BOT) == {"a": 3}
    assert store.bot_config("bnope") is None


def test_record_logs_event_and_pending_orders(store: Any) -> None:
    _ensure(store)
    assert store.record(BOT, "start", 1_000, {"price": "100"}, new_orders=[_order(f"{BOT}-1-0b"),
                                                                          _order(f"{BOT}-2-0s", Side.SELL, "110")],
                        symbol="BTC/USDT")
    events = store.events(BOT)
    assert [(e.kind, e.ts, e.payload, e.bot_id) for e in events] == [("start", 1_000, {"price": "100"}, BOT)]
    orders = store.orders(BOT)
    assert [(o.client_id, o.status, o.side, o.price, o.amount, o.filled, o.level, o.tag, o.symbol)
            for o in orders] == [
        (f"{BOT}-1-0b", "pending", Side.BUY, Decimal("100"), Decimal("0.5"), Decimal(0), 3, "grid", "BTC/USDT"),
        (f"{BOT}-2-0s", "pending", Side.SELL, Decimal("110"), Decimal("0.5"), Decimal(0), 3, "grid", "BTC/USDT")]
    # an existing client id is not overwritten (upsert keeps the first record)
    store.update_order(f"{BOT}-1-0b", status="open", exchange_id="X1")
    store.record(BOT, "tick", 2_000, {"price": "99"}, new_orders=[_order(f"{BOT}-1-0b", price="1")], symbol="BTC/USDT")
    first = store.order(f"{BOT}-1-0b")
    assert (first.status, first.price, first.exchange_id) == ("open", Decimal("100"), "X1")
    assert [e.seq for e in store.events(BOT)] == sorted(e.seq for e in store.events(BOT))


def test_fill_is_recorded_once_and_updates_the_order(store: Any) -> None:
    _ensure(store)
    cid = f"{BOT}-1-0b"
    store.record(BOT, "start", 1_000, {"price": "100"}, new_orders=[_order(cid)], symbol="BTC/USDT")
    assert store.record(BOT, "fill", 5_000, {"n": 1}, fill=_fill(cid, "t1"), symbol="BTC/USDT") is True
    assert store.record(BOT, "fill", 5_000, {"n": 2}, fill=_fill(cid, "t1"), symbol="BTC/USDT") is False
    assert [e.payload for e in store.events(BOT)] == [{"price": "100"}, {"n": 1}]
    assert store.has_fill(BOT, "t1") and not store.has_fill(BOT, "t2")
    order = store.order(cid)
    assert (order.status, order.filled) == ("partially_filled", Decimal("0.2"))
    store.record(BOT, "fill", 6_000, {}, fill=_fill(cid, "t2", "0.3", complete=True), symbol="BTC/USDT")
    order = store.order(cid)
    assert (order.status, order.filled) == ("filled", Decimal("0.5"))
    assert [(f.trade_id, f.amount, f.fee, f.is_maker, f.order_complete) for f in store.fills(BOT)] == [
        ("t1", Decimal("0.2"), Decimal("0.02"), True, False), ("t2", Decimal("0.3"), Decimal("0.02"), True, True)]
    assert store.orders(BOT, live_only=True) == []


def test_cancels_mark_live_orders_only(store: Any) -> None:
    _ensure(store)
    a, b, c = f"{BOT}-1-0b", f"{BOT}-2-0b", f"{BOT}-3-0b"
    store.record(BOT, "start", 1_000, {}, new_orders=[_order(a), _order(b), _order(c)], symbol="BTC/USDT")
    store.update_order(b, status="filled")
    store.update_order(c, status="open")
    store.record(BOT, "command", 2_000, {"name": "pause"}, cancels=[a, b, c])
    assert {o.client_id: o.status for o in store.orders(BOT)} == {a: "cancel_requested", b: "filled",
                                                                 c: "cancel_requested"}
    # a partial fill of an order being canceled keeps it cancel_requested
    store.record(BOT, "fill", 3_000, {}, fill=_fill(c, "tc"), symbol="BTC/USDT")
    assert store.order(c).status == "cancel_requested"
    assert {o.client_id for o in store.orders(BOT, live_only=True)} == {a, c}
    store.update_order(a, reason="gone")
    assert store.order(a).reason == "gone"
    assert store.order("bnope-1-0b") is None


def test_journal_newest_last_with_limit(store: Any) -> None:
    _ensure(store)
    for i in range(5):
        store.log(BOT, "warning", f"line {i}", {"i": i, "d": Decimal("1.5")})
    assert [msg for _, _, msg in store.journal(BOT, limit=3)] == ["line 2", "line 3", "line 4"]
    assert all(kind == "warning" for _, kind, _ in store.journal(BOT))


def test_django_store_record_is_one_transaction(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure inside record() leaves nothing behind (no event without its orders, no fill without its event)."""
    owner = User.objects.create_user("tx-owner", password="x-Pass-12345")
    store = DjangoBotStore(owner_for_new_bots=owner)
    _ensure(store)
    cid = f"{BOT}-1-0b"
    store.record(BOT, "start", 1, {}, new_orders=[_order(cid)], symbol="BTC/USDT")

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(m.Order.objects, "bulk_create", broken)
    with pytest.raises(RuntimeError):
        store.record(BOT, "fill", 2, {}, new_orders=[_order(f"{BOT}-2-0s", Side.SELL)], fill=_fill(cid, "t1"),
                     symbol="BTC/USDT")
    assert [e.kind for e in store.events(BOT)] == ["start"]
    assert store.fills(BOT) == [] and store.order(cid).filled == 0
    assert [o.client_id for o in store.orders(BOT)] == [cid]
    store.close()


# ---------------------------------------------------------------------------------------------------- parity
async def _run_paper(store: Any) -> list[tuple[Any, ...]]:
    config = parse_config(GRID)
    source = ScriptedPrices(zigzag())
    venue = PaperExchange(source, "BTC/USDT", balances={"USDT": Decimal(5000), "BTC": Decimal(0)},
                          maker_fee=Decimal("0.001"), taker_fee=Decimal("0.001"))
    host = BotHost(reconcile_every=3600)
    await host.add(BotRunner(BOT, "grid", config, "BTC/USDT", venue, store))
    await asyncio.wait_for(source.done.wait(), 30)
    await host.shutdown()
    return [(f.client_id, f.side, f.price, f.amount, f.fee, f.timestamp) for f in store.fills(BOT)]


@pytest.mark.django_db(transaction=True)
def test_same_bot_same_fills_in_both_stores(tmp_path: Path) -> None:
    """A paper bot on the same prices gives the same fills, events and orders with either store."""
    sqlite = SqliteStore(tmp_path / "s.sqlite3")
    owner = User.objects.create_user("parity-owner", password="x-Pass-12345")
    django_store = DjangoBotStore(owner_for_new_bots=owner)
    try:
        expected = asyncio.run(_run_paper(sqlite))
        got = asyncio.run(_run_paper(django_store))
        assert len(expected) >= 10
        assert got == expected
        assert [(e.kind, e.payload) for e in django_store.events(BOT)] == [(e.kind, e.payload)
                                                                           for e in sqlite.events(BOT)]
        key = lambda o: (o.client_id, o.status, o.filled)  # noqa: E731
        assert sorted(map(key, django_store.orders(BOT))) == sorted(map(key, sqlite.orders(BOT)))
        assert m.Fill.objects.filter(bot__runtime_id=BOT).count() == len(expected)
    finally:
        sqlite.close()
        django_store.close()
