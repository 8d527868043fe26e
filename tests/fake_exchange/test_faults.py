"""Fault injection and rate limits, observed through the real ccxt client and raw HTTP/websockets."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import ccxt
import pytest

from gridfleet.backtest.data import Candles
from gridfleet.fake_exchange.faults import FaultConfig, FaultInjector, HttpFault
from tests.fake_exchange.helpers import fake_and_ccxt, run

SYMBOL = "BTC/USDT"


def test_fault_config_validation_and_update() -> None:
    config = FaultConfig()
    config.update({"drop_pct": 10, "partial_fill": 0.5, "include_public": True})
    assert (config.drop_pct, config.partial_fill, config.include_public) == (10.0, 0.5, True)
    for bad in ({"drop_pct": 101}, {"nope": 1}, {"partial_fill": 2}, {"timeout_s": -1}, {"include_public": 1},
                {"ws_delay_ms": "x"}):
        with pytest.raises(ValueError):
            config.update(bad)
    assert config.drop_pct == 10.0  # a refused update changes nothing
    config.update({"partial_fill": None})
    assert config.partial_fill is None


def test_seeded_fault_rolls_are_reproducible() -> None:
    def rolls(seed: int) -> list[HttpFault | None]:
        injector = FaultInjector(FaultConfig(drop_pct=30, error_5xx_pct=30), seed=seed)
        return [injector.before_request() for _ in range(40)]

    assert rolls(7) == rolls(7)
    assert rolls(7) != rolls(8)
    assert {HttpFault.DROP, HttpFault.ERROR_5XX, None} == set(rolls(7))


def test_drop_closes_signed_requests_only_unless_public_included(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles) as (fx, ex):
            await fx.set_faults(drop_pct=100)
            with pytest.raises(ccxt.NetworkError):
                await ex.fetch_balance()
            assert (await ex.fetch_ticker(SYMBOL))["last"] > 0  # public endpoints are spared by default
            await fx.set_faults(include_public=True)
            with pytest.raises(ccxt.NetworkError):
                await ex.fetch_ticker(SYMBOL)
            faults = await fx.control("GET", "/_fake/faults")
            assert faults["injected"]["drop"] >= 2
            await fx.set_faults(drop_pct=0)
            assert (await ex.fetch_balance())["USDT"]["free"] == 1_000_000

    run(scenario())


def test_timeout_hangs_past_the_client_timeout(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles, ccxt_extra={"timeout": 300}) as (fx, ex):
            await fx.set_faults(timeout_pct=100, timeout_s=1.0)
            started = time.monotonic()
            with pytest.raises(ccxt.RequestTimeout):
                await ex.fetch_open_orders(SYMBOL)
            assert time.monotonic() - started < 1.0

    run(scenario())


def test_injected_429_and_5xx(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles) as (fx, ex):
            await fx.set_faults(rate_limit_pct=100)
            with pytest.raises(ccxt.DDoSProtection, match="-1003"):
                await ex.fetch_balance()
            assert ex.last_response_headers["Retry-After"] == "1"
            await fx.set_faults(rate_limit_pct=0, error_5xx_pct=100)
            statuses = set()
            for _ in range(8):
                with pytest.raises(ccxt.OperationFailed):
                    await ex.fetch_balance()
                statuses.add(ex.last_http_response.startswith("<html>"))
            assert statuses == {True, False}  # both the 503 Binance body and the bare 502 gateway page

    run(scenario())


def test_lose_response_accepts_the_order_and_the_client_finds_it_by_client_id(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles) as (fx, ex):
            await fx.set_faults(lose_response_pct=100)
            price = float(candles.open[0]) - 300
            with pytest.raises(ccxt.NetworkError):
                await ex.create_order(SYMBOL, "limit", "buy", 0.01, price, {"clientOrderId": "lost-1"})
            await fx.set_faults(lose_response_pct=0)
            found = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "lost-1"})
            assert found["status"] == "open" and found["price"] == pytest.approx(price)
            with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):  # a blind retry is refused
                await ex.create_order(SYMBOL, "limit", "buy", 0.01, price, {"clientOrderId": "lost-1"})
            state = await fx.state()
            assert [o["clientOrderId"] for o in state["accounts"][0]["open_orders"]] == ["lost-1"]

    run(scenario())


def test_request_weight_limit_then_ban(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles, load=False) as (fx, ex):
            fx.server.limiter.clock = lambda: 1_800_000_030.0  # a frozen wall clock: no minute rollover mid-test
            await fx.control("POST", "/_fake/limits", {"weight_limit": 10, "ban_after": 2, "ban_seconds": 60})
            async with aiohttp.ClientSession() as session:
                url = f"{fx.base_url}/api/v3/ticker/price?symbol=BTCUSDT"
                used = []
                for _ in range(5):  # weight 2 each: 2, 4, ... 10
                    async with session.get(url) as resp:
                        assert resp.status == 200
                        used.append(int(resp.headers["x-mbx-used-weight-1m"]))
                assert used == [2, 4, 6, 8, 10]
                async with session.get(url) as resp:
                    assert resp.status == 429
                    assert resp.headers["Retry-After"] == "30"
                    assert (await resp.json())["code"] == -1003
            with pytest.raises(ccxt.DDoSProtection):
                await ex.fetch_ticker(SYMBOL)  # second 429
            with pytest.raises(ccxt.DDoSProtection, match="418"):
                await ex.fetch_ticker(SYMBOL)  # third: banned
            await fx.control("POST", "/_fake/limits", {"reset": True, "weight_limit": 6000})
            assert (await ex.fetch_time()) > 0

    run(scenario())


def test_ws_delay_and_periodic_disconnect(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles, load=False) as (fx, _ex), aiohttp.ClientSession() as session:
            await fx.set_faults(ws_delay_ms=300)
            async with session.ws_connect(f"{fx.ws_url}/ws/btcusdt@trade") as ws:
                await asyncio.sleep(0.05)
                started = time.monotonic()
                await fx.advance(points=1)
                msg = await asyncio.wait_for(ws.receive(), 3)
                assert msg.type == aiohttp.WSMsgType.TEXT
                assert time.monotonic() - started >= 0.28
            await fx.set_faults(ws_delay_ms=0, ws_disconnect_every_s=0.3)
            async with session.ws_connect(f"{fx.ws_url}/ws") as ws:
                started = time.monotonic()
                msg = await asyncio.wait_for(ws.receive(), 3)
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                assert 0.25 <= time.monotonic() - started < 2.0

    run(scenario())


def test_ccxt_pro_recovers_after_a_server_side_disconnect(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles, pro=True) as (fx, ex):
            await fx.set_faults(ws_disconnect_every_s=0.4)
            task = asyncio.ensure_future(ex.watch_trades(SYMBOL))
            await asyncio.sleep(0.1)
            await fx.advance(points=1)
            assert len(await asyncio.wait_for(task, 3)) >= 1
            await asyncio.sleep(0.6)  # the server closes the stream
            with pytest.raises(ccxt.NetworkError):
                await asyncio.wait_for(ex.watch_trades(SYMBOL), 3)
            await fx.set_faults(ws_disconnect_every_s=0)
            task = asyncio.ensure_future(ex.watch_trades(SYMBOL))  # reconnects and resubscribes
            await asyncio.sleep(0.3)
            await fx.advance(points=1)
            trades = await asyncio.wait_for(task, 3)
            assert trades[-1]["id"] == str(fx.venue.replay.last.trade_id)

    run(scenario())


def test_user_data_stream_resubscribes_after_a_server_side_disconnect(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles, pro=True) as (fx, ex):
            await fx.set_faults(ws_disconnect_every_s=0.5)
            price = float(candles.open[0]) - 1000
            task = asyncio.ensure_future(ex.watch_orders(SYMBOL))
            await asyncio.sleep(0.2)
            await ex.create_order(SYMBOL, "limit", "buy", 0.01, price, {"clientOrderId": "before"})
            assert [o["clientOrderId"] for o in await asyncio.wait_for(task, 3)] == ["before"]
            await asyncio.sleep(0.6)
            with pytest.raises(ccxt.NetworkError):
                await asyncio.wait_for(ex.watch_orders(SYMBOL), 3)
            await fx.set_faults(ws_disconnect_every_s=0)
            task = asyncio.ensure_future(ex.watch_orders(SYMBOL))  # new connection, new userDataStream subscription
            await asyncio.sleep(0.3)
            await ex.create_order(SYMBOL, "limit", "buy", 0.01, price, {"clientOrderId": "after"})
            assert [o["clientOrderId"] for o in await asyncio.wait_for(task, 3)] == ["after"]
            assert (await fx.control("GET", "/_fake/faults"))["injected"]["ws_disconnect"] >= 1

    run(scenario())
