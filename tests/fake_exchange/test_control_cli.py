"""Control endpoints, the running clock, the ccxt URL helper, the CLI and the subprocess helper."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import ccxt
import ccxt.pro
import pytest
import typer
from typer.testing import CliRunner

from gridfleet.backtest.data import Candles
from gridfleet.cli.fake_exchange_cmd import register
from gridfleet.fake_exchange.accounts import load_accounts
from gridfleet.fake_exchange.ccxt_urls import ccxt_options, point_ccxt_at, rewrite_url
from gridfleet.fake_exchange.replay import POINTS_PER_CANDLE
from gridfleet.fake_exchange.server import load_symbol_info
from gridfleet.fake_exchange.testing import fake_exchange_process, running_fake_exchange
from tests.fake_exchange.helpers import fake_and_ccxt, run


def test_control_endpoints_advance_state_reset(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles) as (fx, ex):
            state = await fx.state()
            assert state["symbol"] == "BTCUSDT" and state["time"] == int(candles.open_time[0])
            assert state["point"] == {"seq": 0, "candle": 0, "index": 0, "timestamp": int(candles.open_time[0])}
            reply = await fx.advance(candles=3)
            assert reply["replayed"] == 3 * POINTS_PER_CANDLE and reply["candle"] == 3
            assert reply["time"] == int(candles.open_time[3])
            reply = await fx.advance(until=int(candles.open_time[10]) + 30_000)
            assert reply["candle"] == 10 and reply["seq"] == 10 * POINTS_PER_CANDLE + 1
            await ex.create_order("BTC/USDT", "market", "buy", 0.5)
            state = await fx.state()
            account = state["accounts"][0]
            assert float(account["balances"]["BTC"]["free"]) == 10.5
            assert len(account["trades"]) == 1 and account["open_orders"] == []
            await fx.control("POST", "/_fake/reset", {"rewind": True})
            state = await fx.state()
            assert state["point"]["seq"] == 0 and state["accounts"][0]["balances"]["BTC"]["free"] == "10"
            async with aiohttp.ClientSession() as session:
                for body in ({}, {"points": -1}, {"points": 1, "candles": 1}, {"points": "x"}):
                    async with session.post(f"{fx.base_url}/_fake/advance", json=body) as resp:
                        assert resp.status == 400
                async with session.post(f"{fx.base_url}/_fake/faults", json={"drop_pct": 500}) as resp:
                    assert resp.status == 400 and "between 0 and 100" in (await resp.json())["error"]
            reply = await fx.advance(candles=10_000)
            assert reply["finished"] and reply["seq"] == len(candles) * POINTS_PER_CANDLE - 1
            assert (await fx.advance(points=5))["replayed"] == 0

    run(scenario())


def test_running_clock_replays_by_itself(candles: Candles) -> None:
    async def scenario() -> None:
        async with running_fake_exchange(candles=candles, speed=6000) as fx:  # 100 one-minute candles per second
            start = fx.venue.now()
            await asyncio.sleep(0.3)
            moved = fx.venue.now() - start
            assert 5 * 60_000 <= moved <= 80 * 60_000
            assert fx.venue.replay.replayed_points > 5 * POINTS_PER_CANDLE
            await fx.control("POST", "/_fake/clock", {"speed": 0})
            frozen = fx.venue.now()
            await asyncio.sleep(0.1)
            assert fx.venue.now() == frozen

    run(scenario())


def test_control_endpoints_refuse_non_loopback_clients(candles: Candles) -> None:
    from unittest import mock

    from aiohttp.test_utils import make_mocked_request

    from gridfleet.fake_exchange.server import FakeExchangeConfig, FakeExchangeServer

    async def scenario() -> None:
        server = FakeExchangeServer(FakeExchangeConfig(candles=candles, speed=0))
        for peer, status in ((("10.1.2.3", 5555), 403), (("127.0.0.1", 5555), 200)):
            transport = mock.Mock()
            transport.get_extra_info.side_effect = lambda key, default=None, p=peer: p if key == "peername" else default
            request = make_mocked_request("GET", "/_fake/state", transport=transport)
            response = await server._control(server._state)(request)
            assert response.status == status

    run(scenario())


def test_point_ccxt_at_rewrites_every_spot_url() -> None:
    exchange = ccxt.pro.binance(ccxt_options())
    point_ccxt_at(exchange, "http://127.0.0.1:8900")
    api = exchange.urls["api"]
    assert api["public"] == "http://127.0.0.1:8900/api/v3"
    assert api["private"] == "http://127.0.0.1:8900/api/v3"
    assert api["v1"] == "http://127.0.0.1:8900/api/v1"
    assert api["sapi"] == "http://127.0.0.1:8900/sapi/v1"
    assert api["ws"]["spot"] == "ws://127.0.0.1:8900/ws"
    assert api["ws"]["ws-api"]["spot"] == "ws://127.0.0.1:8900/ws-api/v3"
    assert exchange.urls["test"]["ws"]["spot"] == "ws://127.0.0.1:8900/ws"

    def all_urls(node: object) -> list[str]:
        if isinstance(node, dict):
            return [u for v in node.values() for u in all_urls(v)]
        return [node] if isinstance(node, str) else []

    assert all(u.startswith(("http://127.0.0.1:8900/", "ws://127.0.0.1:8900/")) for u in all_urls(api))
    assert rewrite_url("wss://stream.binance.com:9443/ws", "https://fx.local") == "wss://fx.local/ws"
    with pytest.raises(ValueError):
        point_ccxt_at(exchange, "127.0.0.1:8900")


def test_symbol_info_sources(tmp_path: Path) -> None:
    info = load_symbol_info("ETH/USDT", None)
    assert info["symbol"] == "ETHUSDT" and any(f["filterType"] == "LOT_SIZE" for f in info["filters"])
    synthetic = load_symbol_info("DOGE/EUR", None)
    assert synthetic["symbol"] == "DOGEEUR"
    tick = next(f for f in synthetic["filters"] if f["filterType"] == "PRICE_FILTER")["tickSize"]
    assert tick == "0.01000000"
    with pytest.raises(ValueError, match="not found"):
        load_symbol_info("DOGE/EUR", tmp_path / "missing.json")
    dump = tmp_path / "info.json"
    dump.write_text(json.dumps({"symbols": [info]}))
    assert load_symbol_info("ETH/USDT", dump)["symbol"] == "ETHUSDT"
    with pytest.raises(ValueError, match="not found in"):
        load_symbol_info("BTC/USDT", dump)


def test_accounts_file(tmp_path: Path) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text("- apiKey: a\n  secret: s\n  balances: {USDT: '1000', btc: 2}\n")
    (spec,) = load_accounts(path)
    assert spec.api_key == "a" and spec.balances == {"USDT": 1000, "BTC": 2}
    path.write_text("- apiKey: a\n  secret: s\n  balances: {USDT: -1}\n")
    with pytest.raises(ValueError, match="non-negative"):
        load_accounts(path)
    bad_json = tmp_path / "accounts.json"
    bad_json.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_accounts(bad_json)


def test_cli_bad_input_is_a_one_line_error_with_exit_code_2(tmp_path: Path, candle_file: Path) -> None:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps "fake-exchange" a named subcommand
        """Do nothing."""

    runner = CliRunner()
    cases = [
        ["--data", str(tmp_path / "missing.csv")],
        ["--data", str(candle_file), "--symbol", "BTCUSDT"],
        ["--data", str(candle_file), "--drop-pct", "150"],
        ["--data", str(candle_file), "--partial-fill", "3"],
        ["--data", str(candle_file), "--accounts", str(tmp_path / "nope.yaml")],
        ["--data", str(candle_file), "--exchange-info", str(tmp_path / "nope.json")],
        ["--data", str(candle_file), "--speed", "-1"],
    ]
    for args in cases:
        result = runner.invoke(app, ["fake-exchange", *args])
        assert result.exit_code == 2, (args, result.output)
        assert "error:" in result.output and len(result.output.strip().splitlines()) <= 2, result.output


def test_subprocess_server_with_the_sync_ccxt_client(candle_file: Path) -> None:
    with fake_exchange_process("--data", str(candle_file), "--speed", "0", "--max-candles", "200", "--seed", "3",
                               "--warmup", "10") as base_url:
        exchange = ccxt.binance({"apiKey": "test", "secret": "test", "enableRateLimit": False, **ccxt_options()})
        point_ccxt_at(exchange, base_url)
        assert exchange.fetch_balance()["USDT"]["free"] == 1_000_000
        order = exchange.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "proc-1"})
        assert order["status"] == "closed"
        assert exchange.fetch_order(None, "BTC/USDT", {"clientOrderId": "proc-1"})["filled"] == pytest.approx(0.01)
        assert len(exchange.fetch_ohlcv("BTC/USDT", "1m", limit=50)) == 11
