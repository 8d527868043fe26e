"""Bot leases on the real database: competing workers never both hold a bot; a dead worker's bots move on."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest
from django.db import connection, connections

from gridfleet.server.bots.models import Bot, BotStatus
from gridfleet.server.test_settings import POSTGRES
from gridfleet.server.trading import leases
from gridfleet.server.trading.models import BotLease
from gridfleet.server.users.models import User

from .helpers import GRID


def _bots(n: int) -> list[int]:
    owner = User.objects.create_user(f"lease-owner-{n}", password="x-Pass-12345")
    return [Bot.objects.create(owner=owner, name=f"b{i}", symbol="BTC/USDT", config=GRID,
                               status=BotStatus.RUNNING).pk for i in range(n)]


@pytest.mark.django_db
def test_acquire_renew_release() -> None:
    a, b = _bots(2)
    assert leases.acquire(a, "w1", ttl=30)
    assert not leases.acquire(a, "w2", ttl=30)
    assert leases.acquire(a, "w1", ttl=30)  # re-acquiring your own lease extends it
    assert leases.holder(a) == "w1" and leases.holder(b) is None
    assert leases.renew("w1", [a, b], ttl=30) == {a}
    assert leases.claimable(10) == [b]
    leases.release(a, "w2")  # not the holder: nothing happens
    assert leases.holder(a) == "w1"
    leases.release(a, "w1")
    assert leases.holder(a) is None and leases.acquire(a, "w2", ttl=30)


@pytest.mark.django_db
def test_expired_lease_is_taken_over_and_the_old_holder_notices() -> None:
    (a,) = _bots(1)
    assert leases.acquire(a, "w1", ttl=0.2)
    assert not leases.acquire(a, "w2", ttl=30)
    time.sleep(0.3)
    assert leases.acquire(a, "w2", ttl=30)
    assert leases.renew("w1", [a], ttl=30) == set()  # w1 learns it lost the bot
    assert leases.holder(a) == "w2"


@pytest.mark.skipif(not POSTGRES, reason="concurrency is tested on PostgreSQL (SQLite serialises writers anyway)")
@pytest.mark.django_db(transaction=True)
def test_competing_workers_never_share_a_bot_and_take_over_a_dead_one() -> None:
    """Three workers (threads, own connections) race for 12 bots with capacity 6 each.

    Every 10 ms the bots each worker believes it holds are sampled: no bot is ever held by two live workers.
    Then one worker dies (stops renewing): its bots are held by the others within TTL + one renew interval.
    """
    assert connection.vendor == "postgresql"
    pks = _bots(12)
    ttl, every = 1.0, 0.25
    keepers = {name: leases.LeaseKeeper(name, capacity=6, ttl=ttl, renew_every=every) for name in ("w1", "w2", "w3")}
    alive = {name: threading.Event() for name in keepers}
    stop = threading.Event()
    violations: list[str] = []
    locks = {name: threading.Lock() for name in keepers}  # per worker: the DB work of the workers overlaps

    def run(name: str) -> None:
        keeper = keepers[name]
        alive[name].set()
        try:
            while not stop.is_set():
                if alive[name].is_set():
                    with locks[name]:
                        keeper.tick()
                time.sleep(every / 5)
        finally:
            connections.close_all()

    def sample() -> None:
        while not stop.is_set():
            owners: dict[int, list[str]] = defaultdict(list)
            for name, keeper in keepers.items():
                with locks[name]:
                    held = set(keeper.held) if alive[name].is_set() else set()
                for pk in held:
                    owners[pk].append(name)
            violations.extend(f"bot {pk}: {names}" for pk, names in owners.items() if len(names) > 1)
            time.sleep(0.01)

    threads = [threading.Thread(target=run, args=(n,)) for n in keepers] + [threading.Thread(target=sample)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 5
        while sum(len(k.held) for k in keepers.values()) < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sum(len(k.held) for k in keepers.values()) == 12
        victim = max(keepers, key=lambda n: len(keepers[n].held))
        orphans = set(keepers[victim].held)
        assert orphans
        alive[victim].clear()  # the worker dies: no more renewals
        died = time.monotonic()
        while time.monotonic() - died < ttl + every + 1.0:
            held = set().union(*(k.held for n, k in keepers.items() if n != victim))
            if orphans <= held:
                break
            time.sleep(0.02)
        took = time.monotonic() - died
        assert orphans <= set().union(*(k.held for n, k in keepers.items() if n != victim))
        assert took <= ttl + every + 0.5, f"takeover took {took:.2f}s"
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert violations == []
    # the database agrees: every bot has exactly one live holder, none of them the dead worker
    rows = dict(BotLease.objects.values_list("bot_id", "worker"))
    assert set(rows) == set(pks) and victim not in rows.values()


@pytest.mark.skipif(not POSTGRES, reason="row-lock semantics are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_simultaneous_acquire_has_one_winner() -> None:
    pks = _bots(20)
    barrier = threading.Barrier(4)
    wins: dict[str, list[int]] = defaultdict(list)

    def grab(name: str) -> None:
        try:
            barrier.wait()
            for pk in pks:
                if leases.acquire(pk, name, ttl=30):
                    wins[name].append(pk)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=grab, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    won = [pk for got in wins.values() for pk in got]
    assert sorted(won) == sorted(pks)  # each bot won exactly once
