"""Helpers to run the fake exchange from tests: in-process (async context manager) or as a subprocess.

In-process (fast, direct access to the venue)::

    async with running_fake_exchange(candles=candles, speed=0) as fx:
        exchange = fx.ccxt_pro()            # a ccxt.pro.binance already pointed at fx.base_url
        await fx.advance(points=4)          # move the manual clock
        ...

As a subprocess (``python -m gridfleet.fake_exchange``), e.g. for end-to-end tests of a CLI::

    with fake_exchange_process("--data", str(path), "--speed", "0") as base_url:
        ...
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from gridfleet.fake_exchange.ccxt_urls import ccxt_options, point_ccxt_at
from gridfleet.fake_exchange.server import FakeExchangeConfig, FakeExchangeServer
from gridfleet.fake_exchange.venue import FakeVenue

__all__ = ["FakeExchangeHandle", "fake_exchange_process", "running_fake_exchange"]


@dataclass(slots=True)
class FakeExchangeHandle:
    """A running in-process fake exchange: its URL, the server and venue objects, and shortcuts."""

    base_url: str
    server: FakeExchangeServer

    @property
    def venue(self) -> FakeVenue:
        """Return the venue (exchange state) for direct inspection."""
        return self.server.venue

    @property
    def ws_url(self) -> str:
        """Return the websocket base URL (``ws://host:port``)."""
        return "ws" + self.base_url[len("http"):]

    async def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call a ``/_fake`` control endpoint over HTTP and return its JSON."""
        import aiohttp

        async with aiohttp.ClientSession() as session, session.request(
            method, f"{self.base_url}{path}", json=body
        ) as resp:
            data = await resp.json()
            if resp.status != 200:
                raise RuntimeError(f"{method} {path} -> {resp.status}: {data}")
            return data

    async def advance(self, *, points: int | None = None, candles: int | None = None,
                      until: int | None = None) -> Any:
        """``POST /_fake/advance`` with one of points / candles / until (ms)."""
        body = {k: v for k, v in (("points", points), ("candles", candles), ("until", until)) if v is not None}
        return await self.control("POST", "/_fake/advance", body)

    async def set_faults(self, **faults: Any) -> Any:
        """``POST /_fake/faults`` with the given switches."""
        return await self.control("POST", "/_fake/faults", faults)

    async def state(self) -> Any:
        """``GET /_fake/state``."""
        return await self.control("GET", "/_fake/state")

    def ccxt_config(self, api_key: str = "test", secret: str = "test", **extra: Any) -> dict[str, Any]:
        """Return a ccxt config dict for this server (credentials + the spot-only options)."""
        config: dict[str, Any] = {"apiKey": api_key, "secret": secret, **ccxt_options()}
        options = {**config["options"], **extra.pop("options", {})}
        return {**config, **extra, "options": options}

    def ccxt_async(self, api_key: str = "test", secret: str = "test", **extra: Any) -> Any:
        """Return a ``ccxt.async_support.binance`` pointed at this server."""
        import ccxt.async_support as ccxt_async  # type: ignore[import-untyped]

        exchange = ccxt_async.binance(self.ccxt_config(api_key, secret, **extra))
        point_ccxt_at(exchange, self.base_url)
        return exchange

    def ccxt_pro(self, api_key: str = "test", secret: str = "test", **extra: Any) -> Any:
        """Return a ``ccxt.pro.binance`` pointed at this server."""
        import ccxt.pro as ccxt_pro  # type: ignore[import-untyped]

        exchange = ccxt_pro.binance(self.ccxt_config(api_key, secret, **extra))
        point_ccxt_at(exchange, self.base_url)
        return exchange


@asynccontextmanager
async def running_fake_exchange(
    config: FakeExchangeConfig | None = None, *, host: str = "127.0.0.1", port: int = 0, **fields: Any
) -> AsyncIterator[FakeExchangeHandle]:
    """Start the fake exchange in this event loop on a free port; yield a :class:`FakeExchangeHandle`.

    Pass a :class:`FakeExchangeConfig`, or its fields as keywords (``candles=…, speed=0, faults=…``).
    """
    cfg = config if config is not None else FakeExchangeConfig(**fields)
    server = FakeExchangeServer(cfg)
    base_url = await server.start(host, port)
    try:
        yield FakeExchangeHandle(base_url, server)
    finally:
        await server.stop()
        await asyncio.sleep(0)


_READY = re.compile(r"listening on (http://\S+)")


@contextmanager
def fake_exchange_process(*args: str, timeout: float = 30.0, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``python -m gridfleet.fake_exchange --port 0 ARGS…`` and yield its base URL; terminate it on exit.

    ``args`` are CLI arguments (``--data``, ``--symbol``, ``--speed`` …); ``--port 0`` is added unless given, and
    the URL is read from the server's ``listening on …`` line. Raises RuntimeError when it does not come up.
    """
    argv = [sys.executable, "-m", "gridfleet.fake_exchange", *args]
    if "--port" not in args:
        argv += ["--port", "0"]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}
    )
    lines: list[str] = []
    found: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            match = _READY.search(line)
            if match and not found:
                found.append(match.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        if not ready.wait(timeout) or not found:
            raise RuntimeError("fake exchange did not start: " + " | ".join(lines[-10:]))
        base_url = found[0]
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{base_url}/api/v3/ping", timeout=2) as resp:
                    json.loads(resp.read() or b"{}")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("fake exchange is not answering: " + " | ".join(lines[-10:])) from None
                time.sleep(0.1)
        yield base_url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
