"""Reliability: kill -9 the live runtime at random moments while it trades against the fake exchange.

Each scenario starts the fake Binance server (real candles, fast clock) and runs ``gridfleet run`` against it
through the real ccxt client, killing it with SIGKILL at random moments and starting it again with the same
arguments. At the end the clock is frozen, the bot runs once more to reconcile, and we check:

* no two live orders at the venue share a client id, and the venue's open orders are exactly ours;
* every execution the venue made for the account is in our fills (no fill missing), and nothing else is;
* our balances (initial + our fills) equal the venue's balances exactly;
* the grid invariant holds for the strategy rebuilt from the log (one order intent per interval, at most one
  live order per layer, the live orders are the venue's open orders).

Counts are printed (pytest -s shows them; they also appear in the assertion messages on failure).
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

from gridfleet.engine.config import parse_config
from gridfleet.engine.strategies.grid import GridStrategy
from gridfleet.engine.types import Side
from gridfleet.runtime.store import SqliteStore

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / ".." / "shared" / "data" / "ohlcv" / "binance_spot_BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz"
GRID = {
    "symbol": "BTC/USDT",
    "grid": {"type": "arithmetic", "lower": "103000", "upper": "109000", "levels": 31},
    "qty_per_order": "0.002",
    "investment": "20000",
    "fees": {"maker": "0.001", "taker": "0.001"},
    "slippage": "0",
}
INITIAL = {"USDT": Decimal(1_000_000), "BTC": Decimal(10)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


class Scenario:
    """A fake exchange process plus the bot's files."""

    def __init__(self, tmp: Path, speed: int) -> None:
        self.tmp = tmp
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.fx = subprocess.Popen(
            [sys.executable, "-m", "gridfleet.fake_exchange", "--port", str(self.port), "--data", str(DATA),
             "--symbol", "BTC/USDT", "--speed", str(speed), "--seed", "7"],
            stdout=subprocess.DEVNULL, stderr=(tmp / "fx.log").open("w"))
        for _ in range(100):
            try:
                _http(f"{self.base}/_fake/state")
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("fake exchange did not start")
        self.config = tmp / "grid.json"
        self.config.write_text(json.dumps(GRID))
        self.keys = tmp / "keys.json"
        self.keys.write_text(json.dumps({"apiKey": "test", "secret": "test"}))
        os.chmod(self.keys, 0o600)
        self.state = tmp / "state.sqlite3"

    def bot(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "gridfleet.cli.main", "run", "-c", str(self.config), "-e", "binance",
             "--keys", str(self.keys), "--api-url", self.base, "--state", str(self.state), "--bot-id", "kb",
             "--no-status", "--reconcile-every", "0.5", "--log-file", str(self.tmp / "run.log")],
            stdout=subprocess.DEVNULL, stderr=(self.tmp / "run.err").open("a"))

    def close(self) -> None:
        self.fx.send_signal(signal.SIGTERM)
        try:
            self.fx.wait(5)
        except subprocess.TimeoutExpired:
            self.fx.kill()


def _run_scenario(tmp: Path, faults: dict, kills: int, seed: int, alive: tuple[float, float]) -> dict:
    rng = random.Random(seed)
    sc = Scenario(tmp, speed=1800)
    try:
        if faults:
            _http(f"{sc.base}/_fake/faults", faults)
        for _ in range(kills):
            proc = sc.bot()
            time.sleep(rng.uniform(*alive))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        # calm down: no faults, frozen clock, one clean run that reconciles (checked by polling) and exits
        _http(f"{sc.base}/_fake/faults", {k: (None if k == "partial_fill" else 0) for k in faults})
        _http(f"{sc.base}/_fake/clock", {"speed": 0})
        proc = sc.bot()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(1.0)
            try:
                _check(sc)
                break
            except AssertionError:
                continue
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        return _check(sc)
    finally:
        sc.close()


def _check(sc: Scenario) -> dict:
    state = _http(f"{sc.base}/_fake/state")
    account = next(a for a in state["accounts"] if a["apiKey"] == "test")
    if not sc.state.exists():
        raise AssertionError("no state yet")
    store = SqliteStore(sc.state)
    try:
        fills = store.fills("kb")
        orders = store.orders("kb")
        journal = store.journal("kb", limit=100000)
        venue_open = [o["clientOrderId"] for o in account["open_orders"]]
        assert len(venue_open) == len(set(venue_open)), "two live orders share a client id"
        ours_open = sorted(o.client_id for o in orders if o.status in ("open", "partially_filled"))
        assert sorted(venue_open) == ours_open, f"open orders differ: venue {sorted(venue_open)} ours {ours_open}"

        venue_trades = {str(t["id"]) for t in account["trades"]}
        our_trades = {f.trade_id for f in fills}
        assert venue_trades == our_trades, (f"fills differ: missing {sorted(venue_trades - our_trades)[:5]}, "
                                            f"extra {sorted(our_trades - venue_trades)[:5]}")

        balances = dict(INITIAL)
        for f in fills:
            sign = 1 if f.side is Side.BUY else -1
            balances["BTC"] += sign * f.amount - (f.fee if f.fee_currency == "BTC" else 0)
            balances["USDT"] -= sign * f.price * f.amount + (f.fee if f.fee_currency == "USDT" else 0)
        for ccy in ("BTC", "USDT"):
            b = account["balances"][ccy]
            venue_total = Decimal(b["free"]) + Decimal(b["locked"])
            assert venue_total == balances[ccy], f"{ccy}: venue {venue_total} ours {balances[ccy]}"

        # rebuild the strategy from the log and check the grid invariant against the venue
        strategy = GridStrategy(parse_config(GRID), bot_id="kb")
        from gridfleet.runtime.bot import BotRunner  # the runner's own replay code

        runner = BotRunner("kb", "grid", strategy.config, "BTC/USDT", None, store)  # type: ignore[arg-type]
        runner.strategy = strategy
        for event in store.events("kb"):
            runner._apply(event.kind, event.ts, event.payload)
        assert len(strategy.layers) == len(strategy.prices) - 1
        assert all(lay.index == i for i, lay in enumerate(strategy.layers))
        live = strategy.live_orders()
        assert len(set(live)) == len(live)
        assert sorted(live) == sorted(venue_open), f"strategy live {sorted(live)} venue {sorted(venue_open)}"
        corrections = sum(1 for _, kind, _ in journal if kind == "correction")
        return {"fills": len(fills), "orders": len(orders), "open": len(venue_open), "corrections": corrections,
                "events": len(store.events("kb"))}
    finally:
        store.close()


pytestmark = pytest.mark.skipif(not DATA.is_file(), reason=f"real data not found: {DATA}")


def test_twenty_kills_without_faults(tmp_path: Path) -> None:
    counts = _run_scenario(tmp_path, {}, kills=20, seed=1, alive=(1.2, 3.0))
    print(f"\nkill -9 x20, no faults: {counts}")
    assert counts["fills"] >= 20, f"too little trading to prove anything: {counts}"


@pytest.mark.parametrize("faults", [
    {"drop_pct": 15},
    {"timeout_pct": 10, "timeout_s": 2},
    {"rate_limit_pct": 15},
    {"error_5xx_pct": 15},
    {"lose_response_pct": 30},
    {"ws_delay_ms": 400},
    {"ws_disconnect_every_s": 1.5},
    {"partial_fill": 0.3},
], ids=lambda f: next(iter(f)))
def test_kills_with_fault(tmp_path: Path, faults: dict) -> None:
    counts = _run_scenario(tmp_path, faults, kills=5, seed=len(json.dumps(faults)), alive=(2.5, 5.0))
    print(f"\nkill -9 x5 with {faults}: {counts}")
    assert counts["fills"] >= 5, f"too little trading to prove anything: {counts}"
