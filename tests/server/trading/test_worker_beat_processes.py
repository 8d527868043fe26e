"""``gridfleet worker`` and ``gridfleet beat`` as real processes: Celery over the Redis broker (127.0.0.1:6379,
db 15, every key under a prefix of this run) and a PostgreSQL database of their own.

A paper bot (offline ``synthetic`` prices) is created through the ORM with status running; both processes start;
the worker takes the bot's lease, hosts it and writes its orders and fills; beat, on a 2-second snapshot schedule
(``GRIDFLEET_SNAPSHOT_EVERY``) kept in django-celery-beat's tables, dispatches ``gridfleet.take_equity_snapshots``
through the broker to the worker, which writes equity snapshots. Both processes stop on SIGTERM, the worker
releases its lease, and the database and the broker keys are removed. Skipped (with the reason) when PostgreSQL
or Redis does not answer. About 20 s.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .test_serve import APP, REPO


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not (_answers(5432) and _answers(6379)),
                                reason="gridfleet worker/beat need PostgreSQL (127.0.0.1:5432) and Redis "
                                       "(127.0.0.1:6379) as in production; one of them does not answer")

REDIS_URL = "redis://127.0.0.1:6379/15"
SEED = """
import os, django
django.setup()
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
from gridfleet.server.bots.models import Bot
from gridfleet.server.users.models import User
owner = User.objects.create_user("fleet", password="Fleet-pass-123")
config = {"symbol": "BTC/USDT", "grid": {"type": "arithmetic", "lower": "99000", "upper": "101000", "levels": 41},
          "qty_per_order": "0.001", "investment": "10000"}
bot = Bot.objects.create(owner=owner, name="paper-on-worker", mode="paper", exchange="synthetic",
                         symbol="BTC/USDT", config=config, status="running")
print(bot.pk)
"""


@pytest.fixture
def database() -> Iterator[tuple[str, Callable[[str], list[tuple[Any, ...]]]]]:
    """A fresh PostgreSQL database: (DATABASE_URL, query(sql) -> rows); dropped afterwards."""
    import psycopg

    name = f"gridfleet_worker_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')

    def query(sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={name}", autocommit=True) as conn:
            return list(conn.execute(sql).fetchall())

    try:
        yield f"postgres://postgres@127.0.0.1:5432/{name}", query
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def broker_prefix() -> Iterator[str]:
    """The Celery key prefix of this run; its keys are deleted afterwards."""
    import redis

    prefix = f"gftest-{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def _env(database_url: str, prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GRIDFLEET_TESTING", "GRIDFLEET_DB")}
    env.update(DATABASE_URL=database_url, REDIS_URL=REDIS_URL, PYTHONPATH=str(REPO),
               DJANGO_SETTINGS_MODULE="tests.server.trading.worker_settings", GRIDFLEET_TEST_BROKER_PREFIX=prefix,
               GRIDFLEET_SNAPSHOT_EVERY="2", GRIDFLEET_LOG_LEVEL="INFO")
    return env


def _wait(check: Callable[[], Any], what: str, procs: list[subprocess.Popen[str]], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"{proc.args[3]} exited early ({proc.returncode}) while waiting for {what}:\n"
                                     f"{proc.stdout.read() if proc.stdout else ''}")
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=10)
        raise AssertionError(f"{proc.args[3]} did not stop on SIGTERM:\n{out[-3000:]}") from None
    return out


def test_worker_hosts_a_paper_bot_and_beat_dispatches_snapshots(
        tmp_path: Path, database: tuple[str, Callable[[str], list[tuple[Any, ...]]]], broker_prefix: str) -> None:
    database_url, query = database
    env = _env(database_url, broker_prefix)
    seed = subprocess.run([sys.executable, "-c", SEED], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert seed.returncode == 0, seed.stderr
    bot = int(seed.stdout.strip().splitlines()[-1])

    worker = subprocess.Popen([sys.executable, "-c", APP, "worker", "--name", "wtest", "--renew-every", "1",
                               "--lease-ttl", "6", "--concurrency", "2"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    beat = subprocess.Popen([sys.executable, "-c", APP, "beat"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    outputs: dict[str, str] = {}
    try:
        # the worker takes the lease and trades the bot (the grid's first buy fills at once on paper)
        _wait(lambda: query(f"SELECT worker FROM trading_botlease WHERE bot_id = {bot} AND worker = 'wtest' "
                            "AND expires_at > now()"), "the worker's lease", [worker, beat], 40)
        _wait(lambda: query(f"SELECT count(*) FROM trading_fill WHERE bot_id = {bot}")[0][0] >= 1,
              "fills of the hosted bot", [worker, beat], 30)
        assert query(f"SELECT count(*) FROM trading_order WHERE bot_id = {bot} AND status = 'open'")[0][0] > 0
        assert query(f"SELECT status FROM bots_bot WHERE id = {bot}") == [("running",)]
        # beat puts take_equity_snapshots on the broker every 2 s; the worker runs it for the bots it hosts
        _wait(lambda: query(f"SELECT count(*) FROM trading_equitysnapshot WHERE bot_id = {bot}")[0][0] >= 2,
              "two equity snapshots dispatched by beat", [worker, beat], 40)
        # the schedule beat runs from is the database one (django-celery-beat), with the 2-s interval
        rows = query("SELECT i.every, i.period FROM django_celery_beat_periodictask t JOIN "
                     "django_celery_beat_intervalschedule i ON t.interval_id = i.id "
                     "WHERE t.task = 'gridfleet.take_equity_snapshots' AND t.enabled")
        assert rows == [(2, "seconds")], rows
        stamps = [r[0] for r in query(f"SELECT ts FROM trading_equitysnapshot WHERE bot_id = {bot} ORDER BY ts")]
        assert len(set(stamps)) == len(stamps)  # one snapshot per dispatch
        equity = query(f"SELECT equity, price, run FROM trading_equitysnapshot WHERE bot_id = {bot} ORDER BY ts")
        assert all(e > 0 and p > 0 and r == 1 for e, p, r in equity), equity
    finally:
        outputs["beat"] = _stop(beat)
        outputs["worker"] = _stop(worker)
    # a clean stop releases the lease at once (another worker would take the bot over now), orders stay
    assert query(f"SELECT count(*) FROM trading_botlease WHERE bot_id = {bot} AND worker = 'wtest'")[0][0] == 0, \
        outputs["worker"][-3000:]
    assert query(f"SELECT status FROM bots_bot WHERE id = {bot}") == [("running",)]
    assert "Sending due task gridfleet-equity-snapshots (gridfleet.take_equity_snapshots)" in outputs["beat"], \
        outputs["beat"][-3000:]
