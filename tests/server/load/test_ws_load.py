"""Load: 200 websocket clients on a real daphne server, events published through Redis, and ~100 req/s of an
authenticated GET for 10 s. Prints p50/p95 latencies and rates (``GRIDFLEET_WRITE_LOAD_DOCS=1`` also writes
them into ``docs/realtime.md``); loopback only, every loop bounded, about 25 s in all.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gridfleet.server.realtime.notify import publish
from gridfleet.server.test_settings import REDIS

aiohttp = pytest.importorskip("aiohttp")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not REDIS, reason="the load test publishes from this process: needs Redis")]

REPO = Path(__file__).resolve().parents[3]
CLIENTS = 200
ROUNDS = 10          # each round: one event to every client, all at once
HTTP_RATE = 100      # requests per second
HTTP_SECONDS = 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@pytest.fixture
def server(tmp_path: Path, settings: Any) -> Any:
    """Seed a temp SQLite database, start daphne on it; yield (port, users); stop it."""
    prefix = f"rt-load-{uuid.uuid4().hex[:12]}"
    layer = dict(settings.CHANNEL_LAYERS["default"])
    layer["CONFIG"] = {**layer.get("CONFIG", {}), "prefix": prefix}
    if os.environ.get("GRIDFLEET_LOAD_LAYER") == "pubsub":  # same layer as daphne_settings picks
        layer["BACKEND"] = "channels_redis.pubsub.RedisPubSubChannelLayer"
        layer["CONFIG"].pop("capacity", None)
    settings.CHANNEL_LAYERS = {"default": layer}
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.server.load.daphne_settings",
           "GRIDFLEET_TEST_POSTGRES": "off", "GRIDFLEET_LOAD_DB": str(tmp_path / "load.sqlite3"),
           "GRIDFLEET_LOAD_PREFIX": prefix, "PYTHONPATH": str(REPO)}
    seeded = subprocess.run([sys.executable, "-m", "tests.server.load.seed", str(CLIENTS)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120, check=True)
    users = json.loads(seeded.stdout.strip().splitlines()[-1])
    port = _free_port()
    log = (tmp_path / "daphne.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                             "gridfleet.server.asgi:application"], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = (tmp_path / "daphne.log").read_text()[-2000:]
                    raise RuntimeError(f"daphne did not start: {tail}") from None
                time.sleep(0.1)
        yield port, users
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


async def _load(port: int, users: list[dict[str, Any]]) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    results: dict[str, Any] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as ws_session:
        started = time.perf_counter()

        async def connect(user: dict[str, Any]) -> Any:
            ws = await ws_session.ws_connect(f"{base.replace('http', 'ws')}/ws/?token={user['token']}",
                                             timeout=aiohttp.ClientWSTimeout(ws_receive=30))
            hello = json.loads((await ws.receive(timeout=20)).data)
            assert hello["type"] == "hello" and hello["data"]["user"] == user["id"]
            return ws

        sockets = await asyncio.wait_for(asyncio.gather(*(connect(u) for u in users)), 60)
        results["connect_s"] = time.perf_counter() - started

        latencies: list[float] = []
        received = [0]

        async def reader(ws: Any, expected: int) -> None:
            for _ in range(expected):
                msg = await ws.receive(timeout=30)
                event = json.loads(msg.data)
                latencies.append(time.time() - event["data"]["sent"])
                received[0] += 1

        readers = [asyncio.create_task(reader(ws, ROUNDS)) for ws in sockets]
        started = time.perf_counter()
        for r in range(ROUNDS):
            for user in users:
                publish(user["id"], {"type": "pnl", "data": {"sent": time.time(), "round": r}}, agent_id=None)
            await asyncio.sleep(0.05)
        await asyncio.wait_for(asyncio.gather(*readers), 60)
        elapsed = time.perf_counter() - started
        results.update(events=received[0], events_s=elapsed, event_rate=received[0] / elapsed,
                       event_p50_ms=1000 * statistics.median(latencies), event_p95_ms=1000 * _pct(latencies, 0.95),
                       event_max_ms=1000 * max(latencies))

        # authenticated GETs at a fixed rate while the 200 sockets stay open
        statuses: Counter[int] = Counter()
        http_latencies: list[float] = []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as http:
            async def get(i: int, at: float) -> None:
                await asyncio.sleep(max(0.0, at - time.perf_counter()))
                token = users[i % len(users)]["token"]
                t0 = time.perf_counter()
                try:
                    async with http.get(f"{base}/api/v1/notifications/?unread=1",
                                        headers={"Authorization": f"Bearer {token}"},
                                        timeout=aiohttp.ClientTimeout(total=20)) as response:
                        body = await response.json()
                        statuses[response.status] += 1
                        if response.status == 200:
                            assert body["count"] == 1
                except (aiohttp.ClientError, TimeoutError):
                    statuses[0] += 1
                http_latencies.append(time.perf_counter() - t0)

            t_start = time.perf_counter() + 0.1
            total = HTTP_RATE * HTTP_SECONDS
            await asyncio.wait_for(asyncio.gather(*(get(i, t_start + i / HTTP_RATE) for i in range(total))),
                                   HTTP_SECONDS + 40)
            http_elapsed = time.perf_counter() - t_start
        results.update(http_requests=total, http_statuses=dict(statuses), http_s=http_elapsed,
                       http_rate=total / http_elapsed, http_p50_ms=1000 * statistics.median(http_latencies),
                       http_p95_ms=1000 * _pct(http_latencies, 0.95), http_max_ms=1000 * max(http_latencies))

        # every socket sat idle through the HTTP phase (> the 5 s Redis blocking pop): all must still deliver
        readers = [asyncio.create_task(reader(ws, 1)) for ws in sockets]
        latencies.clear()
        before = received[0]
        for user in users:
            publish(user["id"], {"type": "pnl", "data": {"sent": time.time(), "round": "after-idle"}}, agent_id=None)
        await asyncio.wait_for(asyncio.gather(*readers), 30)
        results["after_idle"] = received[0] - before
        await asyncio.gather(*(ws.close() for ws in sockets))
    return results


def _report(r: dict[str, Any]) -> str:
    layer = "RedisPubSubChannelLayer" if os.environ.get("GRIDFLEET_LOAD_LAYER") == "pubsub" else "RedisChannelLayer"
    return "\n".join([
        f"- channel layer: channels_redis `{layer}` (Redis on 127.0.0.1), one daphne process",
        f"- {CLIENTS} websocket clients connected (JWT checked each) in {r['connect_s']:.2f} s",
        f"- {r['events']} events ({ROUNDS} bursts of one event per client) delivered in {r['events_s']:.2f} s: "
        f"{r['event_rate']:.0f} events/s; publish→receive latency p50 {r['event_p50_ms']:.1f} ms, "
        f"p95 {r['event_p95_ms']:.1f} ms, max {r['event_max_ms']:.1f} ms",
        f"- {r['http_requests']} authenticated `GET /api/v1/notifications/?unread=1` at {HTTP_RATE} req/s "
        f"({r['http_rate']:.1f} req/s achieved): statuses {r['http_statuses']}; latency p50 {r['http_p50_ms']:.1f} ms,"
        f" p95 {r['http_p95_ms']:.1f} ms, max {r['http_max_ms']:.1f} ms",
        f"- after 10 s idle: {r['after_idle']}/{CLIENTS} sockets still delivered",
    ])


def test_ws_and_http_load(server: Any) -> None:
    port, users = server
    results = asyncio.run(_load(port, users))
    report = _report(results)
    print("\n" + report)
    if os.environ.get("GRIDFLEET_WRITE_LOAD_DOCS") == "1":
        doc = REPO / "docs" / "realtime.md"
        text = doc.read_text()
        marker = "load-results-pubsub" if os.environ.get("GRIDFLEET_LOAD_LAYER") == "pubsub" else "load-results"
        block = f"<!-- {marker} -->\n{report}\n<!-- /{marker} -->"
        doc.write_text(re.sub(f"<!-- {marker} -->.*?<!-- /{marker} -->", lambda _: block, text, flags=re.S))
    assert results["events"] == CLIENTS * ROUNDS and results["after_idle"] == CLIENTS
    assert results["http_statuses"] == {200: HTTP_RATE * HTTP_SECONDS}
    assert results["event_p95_ms"] < 5000 and results["http_p95_ms"] < 5000
