"""The Redis token bucket: one budget shared by several processes, the rate held, back-offs seen by all, and a
fallback to the in-process bucket when Redis is down. Runs against the real Redis at 127.0.0.1:6379 (db 15, a
key prefix of its own); skipped with the reason when Redis does not answer."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridfleet.exchanges.ratelimit import RateLimiterRegistry, TokenBucket
from gridfleet.exchanges.redis_ratelimit import RedisTokenBucket, bucket_key, install_redis_rate_limits

REDIS_URL = "redis://127.0.0.1:6379/15"
REPO = Path(__file__).resolve().parents[2]


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _redis_answers(), reason="no Redis at 127.0.0.1:6379 (the shared limiter needs "
                                                             "one; the in-process bucket is tested elsewhere)")


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test only; its keys are deleted afterwards."""
    import redis

    value = f"gridfleet-test:{uuid.uuid4().hex[:10]}:"
    yield value
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{value}*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_one_process_holds_the_rate(prefix: str) -> None:
    bucket = RedisTokenBucket(f"{prefix}one", capacity=5, window=0.25, redis_url=REDIS_URL)  # 20/s, burst 5

    async def go() -> list[float]:
        stamps = []
        for _ in range(25):
            await bucket.acquire()
            stamps.append(time.monotonic())
        await bucket.aclose()
        return stamps

    stamps = asyncio.run(go())
    elapsed = stamps[-1] - stamps[0]
    assert 0.9 <= elapsed <= 1.6, elapsed  # (25 - 5) / 20 = 1.0 s
    assert stamps[4] - stamps[0] < 0.15  # the burst goes at once


CHILD = """
import asyncio, json, sys, time
from gridfleet.exchanges.redis_ratelimit import RedisTokenBucket
key, url, n, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
bucket = RedisTokenBucket(key, capacity=4, window=0.2, redis_url=url)
async def go():
    while time.time() < start_at:
        await asyncio.sleep(0.005)
    out = []
    for _ in range(n):
        await bucket.acquire()
        out.append(time.time())
    await bucket.aclose()
    return out
print(json.dumps(asyncio.run(go())))
"""


def test_two_processes_share_one_budget(prefix: str) -> None:
    key = f"{prefix}shared"
    n = 20  # per process; 40 in all at 20/s with a burst of 4: (40 - 4) / 20 = 1.8 s (one process alone: 0.8 s)
    start_at = time.time() + 1.5
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, key, REDIS_URL, str(n), str(start_at)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    stamps = sorted(t for r in results for t in r)
    assert len(stamps) == 2 * n
    elapsed = stamps[-1] - stamps[0]
    assert 1.6 <= elapsed <= 2.6, elapsed  # the combined rate is the budget's, not twice it
    for r in results:  # both processes got served all along (first come, first served), not one after the other
        assert r[-1] - r[0] > 1.0
    # in every window of 1 s at most rate + burst (+1 for the boundary) requests went out
    for i, t in enumerate(stamps):
        in_window = sum(1 for u in stamps[i:] if u - t < 1.0)
        assert in_window <= 20 + 4 + 1, (i, in_window)


def test_back_off_reaches_every_process_and_cancel_refunds(prefix: str) -> None:
    key = f"{prefix}backoff"

    async def go() -> tuple[float, float]:
        a = RedisTokenBucket(key, capacity=10, window=1, redis_url=REDIS_URL)
        b = RedisTokenBucket(key, capacity=10, window=1, redis_url=REDIS_URL)  # another "process"
        await a.acquire()
        t0 = time.monotonic()
        await a.back_off(0.6)
        await b.acquire()
        waited = time.monotonic() - t0
        # a waiter cancelled gives its weight back
        task = asyncio.ensure_future(b.acquire(30))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        t1 = time.monotonic()
        await asyncio.sleep(0.5)
        await b.acquire(4)  # refilled ~5 since: possible without waiting only if the 30 were refunded
        refunded_wait = time.monotonic() - t1 - 0.5
        await a.aclose()
        await b.aclose()
        return waited, refunded_wait

    waited, refunded_wait = asyncio.run(go())
    assert 0.55 <= waited <= 1.0, waited
    assert refunded_wait < 0.2, refunded_wait


def test_falls_back_to_the_in_process_bucket_when_redis_is_down(caplog: pytest.LogCaptureFixture) -> None:
    bucket = RedisTokenBucket("gridfleet-test:down", capacity=2, window=0.1, redis_url="redis://127.0.0.1:1/15")

    async def go() -> float:
        t0 = time.monotonic()
        for _ in range(6):
            await bucket.acquire()  # never raises
        return time.monotonic() - t0

    elapsed = asyncio.run(go())
    assert 0.15 <= elapsed <= 0.6, elapsed  # (6 - 2) / 20 = 0.2 s: the local bucket still limits
    assert "Redis unavailable" in caplog.text


def test_registry_builds_redis_buckets_with_the_adapters_rate(prefix: str) -> None:
    registry = RateLimiterRegistry()
    before = registry.get("binance", None, lambda: TokenBucket.per_second(20.0))
    assert isinstance(before, TokenBucket)
    install_redis_rate_limits(REDIS_URL, registry=registry, prefix=prefix)
    rebuilt = registry.get("binance")
    assert isinstance(rebuilt, RedisTokenBucket) and rebuilt.rate == 20.0
    made = registry.get("okx", "http://127.0.0.1:8765/", lambda: TokenBucket(100, 2))
    assert isinstance(made, RedisTokenBucket) and (made.capacity, made.window) == (100, 2)
    assert made.key == f"{prefix}okx:127.0.0.1:8765:ip:default"
    assert registry.get("okx", "http://127.0.0.1:8765") is made
    assert bucket_key("Binance", None, "account:7", prefix="p:") == "p:binance:default:account:7"
    registry.use_backend(None)
    assert isinstance(registry.get("kraken"), TokenBucket)
