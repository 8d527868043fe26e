"""End-to-end fixtures: the local fake Binance (subprocess), a real ``gridfleet serve`` serving the built web UI
on a free port with a fresh SQLite database, and headless Chromium (python playwright).

Skipped with a reason when the built UI (``frontend/dist``, made by the install step), Chromium or the python
``playwright`` package is missing. ``GRIDFLEET_WEB_DIR`` (the serve setting) points at another build if set.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gridfleet.fake_exchange.testing import fake_exchange_process
from tests.conftest import REPO_ROOT

CHROMIUM = "/usr/bin/chromium"
ADMIN = ("e2eadmin", "admin-pass-123")
T0 = 1_747_699_200_000  # 2025-05-20 00:00 UTC
MINUTE = 60_000


def web_dir() -> Path:
    """The built web UI the serve process will show."""
    return Path(os.environ.get("GRIDFLEET_WEB_DIR") or REPO_ROOT / "frontend" / "dist")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_zigzag_candles(path: Path, n: int = 4000) -> None:
    """1m BTC/USDT candles zig-zagging ±250 around 100,000 (a leg every 5 candles): a grid fills every few seconds."""
    price = 100_000.0
    rows = ["open_time,open,high,low,close,volume"]
    for i in range(n):
        step = 100.0 if (i // 5) % 2 == 0 else -100.0
        nxt = price + step
        rows.append(f"{T0 + i * MINUTE},{price},{max(price, nxt) + 5},{min(price, nxt) - 5},{nxt},3")
        price = nxt
    path.write_text("\n".join(rows) + "\n")


@dataclass
class Server:
    base: str
    fake_exchange: str
    log: Path

    def api(self, method: str, path: str, token: str | None = None, body: Any = None) -> Any:
        """Call the API directly (setup steps the scenario does not drive through the UI)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=20) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None

    def token(self, username: str, password: str) -> str:
        answer = self.api("POST", "/api/v1/auth/token/", body={"username": username, "password": password})
        access: str = answer["access"]
        return access


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    dist = web_dir()
    if not (dist / "index.html").is_file():
        pytest.skip(f"the web UI is not built ({dist}/index.html missing): run scripts/bootstrap.sh or npm run build")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found")
    pytest.importorskip("playwright.sync_api")
    tmp = tmp_path_factory.mktemp("e2e")
    candles = tmp / "zigzag.csv"
    write_zigzag_candles(candles)
    args = ("--data", str(candles), "--symbol", "BTC/USDT", "--speed", "60", "--warmup", "300")
    with fake_exchange_process(*args) as fx:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
        env.update(GRIDFLEET_DB=str(tmp / "db.sqlite3"), GRIDFLEET_ADMIN_USERNAME=ADMIN[0],
                   GRIDFLEET_ADMIN_PASSWORD=ADMIN[1], GRIDFLEET_WEB_DIR=str(dist),
                   GRIDFLEET_API_URL_ALLOW="http://127.0.0.1:*")
        log = tmp / "serve.log"
        with log.open("w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "gridfleet.cli.main", "serve", "--port", str(port),
                                     "--no-resume", "--snapshot-every", "2", "--reconcile-every", "5"],
                                    env=env, cwd=tmp, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(base + "/api/v1/strategies/", timeout=2)
                    break
                except urllib.error.HTTPError:
                    break  # it answers (401 without a login)
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail("gridfleet serve did not start:\n" + log.read_text()[-3000:])
                    time.sleep(0.2)
            yield Server(base, fx, log)
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield b
        finally:
            b.close()
