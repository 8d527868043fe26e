"""Websockets: ccxt.pro watch_* against the fake exchange, plus raw stream, listenKey and WebSocket API checks."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import ccxt
import pytest

from gridfleet.backtest.data import Candles
from gridfleet.fake_exchange.signing import hmac_sha256, ws_payload
from tests.fake_exchange.helpers import (
    buy_price_reached_later,
    fake_and_ccxt,
    first_point_at_or_below,
    path_prices,
    run,
    watch_after,
)

SYMBOL = "BTC/USDT"
SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "api" / "binance_spot"


def _sample(name: str) -> dict[str, Any]:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"sample not found: {path}")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


async def _next_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = 3.0) -> Any:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def _next_event(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 3.0) -> Any:
    while True:
        data = await _next_json(ws, timeout)
        event = data.get("event", data.get("data", data)) if isinstance(data, dict) else data
        if isinstance(event, dict) and event.get("e") == kind:
            return data


def test_watch_trades_receives_the_replayed_points(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles, pro=True) as (fx, ex):
            trades: list[Any] = []
            for _ in range(8):
                trades += await watch_after(lambda: ex.watch_trades(SYMBOL), lambda: fx.advance(points=1))
            expected = path_prices(candles, 0, 2)[1:9]
            assert [t["price"] for t in trades] == pytest.approx([float(p) for p in expected])
            assert [int(t["id"]) for t in trades] == list(range(2, 10))
            assert [t["timestamp"] for t in trades] == [fx.venue.replay.point(s).timestamp for s in range(1, 9)]
            assert all(t["symbol"] == SYMBOL for t in trades)

    run(scenario())


def test_watch_orders_my_trades_and_balance_receive_execution_reports(candles: Candles) -> None:
    async def scenario() -> None:
        buy_price = buy_price_reached_later(candles)
        fill_seq = first_point_at_or_below(candles, buy_price, 0)
        async with fake_and_ccxt(candles, pro=True) as (fx, ex):
            orders_task = asyncio.ensure_future(ex.watch_orders(SYMBOL))
            await asyncio.sleep(0.3)  # WS-API userDataStream.subscribe.signature done
            my_trades_task = asyncio.ensure_future(ex.watch_my_trades(SYMBOL))
            balance_task = asyncio.ensure_future(ex.watch_balance())
            await asyncio.sleep(0.1)
            placed = await ex.create_order(SYMBOL, "limit", "buy", 0.25, float(buy_price), {"clientOrderId": "ws-1"})
            orders = await asyncio.wait_for(orders_task, 3)
            assert orders[-1]["clientOrderId"] == "ws-1" and orders[-1]["status"] == "open"
            assert orders[-1]["id"] == placed["id"]
            balance = await asyncio.wait_for(balance_task, 3)
            assert balance["USDT"]["used"] == pytest.approx(float(buy_price) * 0.25)
            orders_task = asyncio.ensure_future(ex.watch_orders(SYMBOL))
            await asyncio.sleep(0.05)
            await fx.advance(points=fill_seq)
            trades = await asyncio.wait_for(my_trades_task, 3)
            assert len(trades) == 1
            assert trades[0]["price"] == pytest.approx(float(buy_price))
            assert trades[0]["amount"] == pytest.approx(0.25)
            assert trades[0]["takerOrMaker"] == "maker"
            assert trades[0]["fee"]["cost"] == pytest.approx(float(buy_price) * 0.25 * 0.001)
            assert trades[0]["fee"]["currency"] == "USDT"
            orders = await asyncio.wait_for(orders_task, 3)
            assert orders[-1]["status"] == "closed" and orders[-1]["filled"] == pytest.approx(0.25)
            balance = await ex.fetch_balance()
            assert balance["BTC"]["free"] == pytest.approx(10.25)
            assert balance["USDT"]["used"] == 0

    run(scenario())


def test_watch_orders_sees_cancel_and_partial_fills(candles: Candles) -> None:
    async def scenario() -> None:
        buy_price = buy_price_reached_later(candles)
        fill_seq = first_point_at_or_below(candles, buy_price, 0)
        async with fake_and_ccxt(candles, pro=True) as (fx, ex):
            await fx.set_faults(partial_fill=0.02)
            task = asyncio.ensure_future(ex.watch_orders(SYMBOL))
            await asyncio.sleep(0.3)
            await ex.create_order(SYMBOL, "limit", "buy", 2, float(buy_price), {"clientOrderId": "part"})
            await asyncio.wait_for(task, 3)
            updates = await watch_after(lambda: ex.watch_orders(SYMBOL), lambda: fx.advance(points=fill_seq))
            assert updates[-1]["status"] == "open" and 0 < updates[-1]["filled"] < 2
            updates = await watch_after(lambda: ex.watch_orders(SYMBOL),
                                        lambda: ex.cancel_order(None, SYMBOL, {"clientOrderId": "part"}))
            assert updates[-1]["status"] == "canceled" and updates[-1]["clientOrderId"] == "part"

    run(scenario())


def test_watch_ticker_and_order_book(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles, pro=True) as (fx, ex):
            ticker_task = asyncio.ensure_future(ex.watch_ticker(SYMBOL))
            book_task = asyncio.ensure_future(ex.watch_order_book(SYMBOL))
            await asyncio.sleep(0.3)
            for _ in range(3):
                await fx.advance(points=1)
                await asyncio.sleep(0.05)
            ticker = await asyncio.wait_for(ticker_task, 3)
            assert ticker["symbol"] == SYMBOL and ticker["last"] > 0
            await asyncio.wait_for(book_task, 5)
            book = await watch_after(lambda: ex.watch_order_book(SYMBOL), lambda: fx.advance(points=1))
            last = float(fx.venue.replay.last.price)
            assert book["bids"][0][0] == pytest.approx(last)
            assert book["asks"][0][0] == pytest.approx(last + 0.01)
            assert len(book["bids"]) == 100 and len(book["asks"]) == 100

    run(scenario())


def test_raw_streams_subscribe_combined_and_sample_shapes(candles: Candles) -> None:
    trade_sample = _sample("ws_messages/ws_spot_trade.json")["data"]
    agg_sample = _sample("ws_messages/ws_spot_agg_trade.json")["data"]

    async def scenario() -> None:
        async with fake_and_ccxt(candles, load=False) as (fx, _ex), aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{fx.ws_url}/ws") as ws:
                await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@trade", "btcusdt@aggTrade"], "id": 7})
                assert await _next_json(ws) == {"result": None, "id": 7}
                await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": "x"})
                assert await _next_json(ws) == {"result": ["btcusdt@aggTrade", "btcusdt@trade"], "id": "x"}
                await fx.advance(points=1)
                events = [await _next_json(ws), await _next_json(ws)]
                by_kind = {e["e"]: e for e in events}
                assert set(by_kind["trade"]) == set(trade_sample)
                assert set(by_kind["aggTrade"]) >= set(agg_sample) - {"st"}
                assert by_kind["trade"]["p"] == f"{path_prices(candles, 0, 0)[1]:.8f}"
                assert by_kind["trade"]["T"] == fx.venue.replay.point(1).timestamp
                await ws.send_json({"method": "UNSUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 8})
                assert await _next_json(ws) == {"result": None, "id": 8}
            url = f"{fx.ws_url}/stream?streams=btcusdt@trade/btcusdt@miniTicker/btcusdt@bookTicker/btcusdt@kline_1m"
            async with session.ws_connect(url) as ws:
                await fx.advance(points=1)
                got = {}
                for _ in range(4):
                    msg = await _next_json(ws)
                    got[msg["stream"]] = msg["data"]
                assert got["btcusdt@trade"]["e"] == "trade"
                assert got["btcusdt@miniTicker"]["e"] == "24hrMiniTicker"
                assert got["btcusdt@miniTicker"]["c"] == got["btcusdt@trade"]["p"]
                assert {"u", "s", "b", "B", "a", "A"} <= set(got["btcusdt@bookTicker"])
                kline = got["btcusdt@kline_1m"]["k"]
                assert kline["t"] == int(candles.open_time[0]) and kline["i"] == "1m" and kline["x"] is False

    run(scenario())


def test_listen_key_user_stream_matches_the_sample_execution_reports(candles: Candles) -> None:
    new_sample = _sample("ws_messages/ws_spot_execution_report_new.json")["data"]
    trade_sample = _sample("ws_messages/ws_spot_execution_report_trade.json")["data"]
    canceled_sample = _sample("ws_messages/ws_spot_execution_report_canceled.json")["data"]
    position_sample = _sample("docs_examples/nautilus_rust_user_data_json/account_position.json")

    async def scenario() -> None:
        async with fake_and_ccxt(candles) as (fx, ex), aiohttp.ClientSession() as session:
            listen_key = (await ex.public_post_userdatastream())["listenKey"]
            async with session.ws_connect(f"{fx.ws_url}/ws/{listen_key}") as ws:
                price = float(candles.open[0])
                await ex.create_order(SYMBOL, "limit", "buy", 0.01, price - 100, {"clientOrderId": "lk-1"})
                new = await _next_event(ws, "executionReport")
                assert set(new) >= set(new_sample)
                assert (new["x"], new["X"], new["c"], new["t"], new["N"]) == ("NEW", "NEW", "lk-1", -1, None)
                position = await _next_event(ws, "outboundAccountPosition")
                assert set(position) == set(position_sample)
                usdt = next(b for b in position["B"] if b["a"] == "USDT")
                assert float(usdt["l"]) == pytest.approx((price - 100) * 0.01)
                await ex.cancel_order(None, SYMBOL, {"clientOrderId": "lk-1", "newClientOrderId": "cxl-1"})
                canceled = await _next_event(ws, "executionReport")
                assert set(canceled) >= set(canceled_sample)
                assert (canceled["x"], canceled["X"], canceled["c"], canceled["C"]) == (
                    "CANCELED", "CANCELED", "cxl-1", "lk-1")
                await ex.create_order(SYMBOL, "market", "sell", 0.01, None, {"clientOrderId": "lk-2"})
                await _next_event(ws, "executionReport")  # NEW
                trade = await _next_event(ws, "executionReport")
                assert set(trade) >= set(trade_sample)
                assert (trade["x"], trade["X"], trade["m"], trade["N"]) == ("TRADE", "FILLED", False, "USDT")
                assert float(trade["L"]) == pytest.approx(price) and float(trade["l"]) == pytest.approx(0.01)
                assert float(trade["n"]) == pytest.approx(price * 0.01 * 0.001)
                assert trade["t"] > 0
                await ex.create_order(SYMBOL, "limit", "buy", 0.01, price - 500, {"timeInForce": "IOC",
                                                                                  "clientOrderId": "lk-3"})
                expired = await _next_event(ws, "executionReport")
                assert (expired["x"], expired["X"], expired["c"]) == ("EXPIRED", "EXPIRED", "lk-3")
                with pytest.raises(ccxt.InsufficientFunds):
                    await ex.create_order(SYMBOL, "limit", "buy", 20, price - 500, {"clientOrderId": "lk-4"})
                rejected = await _next_event(ws, "executionReport")
                assert (rejected["x"], rejected["X"], rejected["r"], rejected["c"]) == (
                    "REJECTED", "REJECTED", "INSUFFICIENT_BALANCE", "lk-4")
            await ex.public_put_userdatastream({"listenKey": listen_key})
            await ex.public_delete_userdatastream({"listenKey": listen_key})

    run(scenario())


def test_ws_api_signature_subscription_and_order_place(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles, load=False) as (fx, _ex), aiohttp.ClientSession() as session, \
                session.ws_connect(f"{fx.ws_url}/ws-api/v3") as ws:
            params: dict[str, Any] = {"apiKey": "test", "timestamp": int(time.time() * 1000)}
            params["signature"] = hmac_sha256("test", ws_payload(params))
            await ws.send_json({"id": "a", "method": "userDataStream.subscribe.signature", "params": params})
            reply = await _next_json(ws)
            assert reply["id"] == "a" and reply["status"] == 200 and reply["result"] == {"subscriptionId": 0}
            bad = {**params, "signature": "0" * 64}
            await ws.send_json({"id": "b", "method": "userDataStream.subscribe.signature", "params": bad})
            reply = await _next_json(ws)
            assert reply["status"] == 400 and reply["error"]["code"] == -1022
            order: dict[str, Any] = {
                "apiKey": "test", "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                "quantity": "0.01", "price": "100000", "newClientOrderId": "wsapi-1",
                "timestamp": int(time.time() * 1000),
            }
            order["signature"] = hmac_sha256("test", ws_payload(order))
            await ws.send_json({"id": 3, "method": "order.place", "params": order})
            messages = [await _next_json(ws) for _ in range(3)]
            reply = next(m for m in messages if m.get("id") == 3)
            assert reply["result"]["clientOrderId"] == "wsapi-1" and reply["result"]["status"] == "NEW"
            events = [m for m in messages if "subscriptionId" in m]
            assert {e["event"]["e"] for e in events} == {"executionReport", "outboundAccountPosition"}
            assert all(e["subscriptionId"] == 0 for e in events)
            await ws.send_json({"id": 4, "method": "ping"})
            assert (await _next_json(ws))["result"] == {}

    run(scenario())


def test_server_pings_and_answers_pings(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles, load=False, ws_heartbeat_s=0.2) as (fx, _ex), \
                aiohttp.ClientSession() as session, session.ws_connect(f"{fx.ws_url}/ws", autoping=False) as ws:
            msg = await asyncio.wait_for(ws.receive(), 3)
            assert msg.type == aiohttp.WSMsgType.PING
            await ws.pong(msg.data)
            await ws.ping(b"hi")
            msg = await asyncio.wait_for(ws.receive(), 3)
            while msg.type == aiohttp.WSMsgType.PING:
                await ws.pong(msg.data)
                msg = await asyncio.wait_for(ws.receive(), 3)
            assert msg.type == aiohttp.WSMsgType.PONG and msg.data == b"hi"

    run(scenario())
