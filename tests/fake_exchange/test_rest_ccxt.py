"""The real ccxt binance client (async REST) against the fake exchange on real candles, manual clock."""

from __future__ import annotations

import time
from decimal import Decimal

import ccxt
import pytest

from gridfleet.backtest.data import Candles
from gridfleet.fake_exchange.accounts import AccountSpec
from gridfleet.fake_exchange.replay import POINTS_PER_CANDLE
from tests.fake_exchange.helpers import (
    buy_price_reached_later,
    fake_and_ccxt,
    first_point_at_or_below,
    path_prices,
    run,
    sell_price_reached_later,
)

SYMBOL = "BTC/USDT"


def test_load_markets_uses_the_real_filters(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles) as (_fx, ex):
            assert list(ex.markets) == [SYMBOL]
            market = ex.market(SYMBOL)
            assert market["id"] == "BTCUSDT" and market["spot"] and market["active"]
            assert market["precision"]["amount"] == pytest.approx(0.00001)
            assert market["precision"]["price"] == pytest.approx(0.01)
            assert market["limits"]["amount"]["min"] == pytest.approx(0.00001)
            assert market["limits"]["amount"]["max"] == pytest.approx(9000)
            assert market["limits"]["cost"]["min"] == pytest.approx(5)
            assert market["limits"]["market"]["max"] == pytest.approx(129.84957276)

    run(scenario())


def test_public_market_data_follows_the_replay(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles) as (fx, ex):
            assert abs(await ex.fetch_time() - time.time() * 1000) < 10_000  # serverTime is the wall clock
            assert fx.venue.now() == int(candles.open_time[0])
            await fx.advance(candles=5)
            assert abs(await ex.fetch_time() - time.time() * 1000) < 10_000  # serverTime is the wall clock
            assert fx.venue.now() == int(candles.open_time[5])
            ticker = await ex.fetch_ticker(SYMBOL)
            assert ticker["last"] == pytest.approx(float(candles.open[5]))
            assert ticker["high"] == pytest.approx(float(candles.high[:5].max()))
            ohlcv = await ex.fetch_ohlcv(SYMBOL, "1m", limit=3)
            assert [row[0] for row in ohlcv] == [int(t) for t in candles.open_time[3:6]]
            assert ohlcv[0][1:5] == pytest.approx([candles.open[3], candles.high[3], candles.low[3], candles.close[3]])
            assert ohlcv[-1][4] == pytest.approx(float(candles.open[5]))  # the current candle is partial
            five = await ex.fetch_ohlcv(SYMBOL, "5m", since=int(candles.open_time[0]), limit=1)
            assert five[0][1:6] == pytest.approx([candles.open[0], candles.high[:5].max(), candles.low[:5].min(),
                                                  candles.close[4], candles.volume[:5].sum()])
            book = await ex.fetch_order_book(SYMBOL, 5)
            assert book["bids"][0][0] == pytest.approx(float(candles.open[5]))
            assert book["asks"][0][0] > book["bids"][0][0]
            trades = await ex.fetch_trades(SYMBOL, limit=4)
            prices = [*path_prices(candles, 4, 4)[1:], path_prices(candles, 5, 5)[0]]
            assert [t["price"] for t in trades] == pytest.approx([float(p) for p in prices])
            assert [int(t["id"]) for t in trades] == list(range(18, 22))
            with pytest.raises(ccxt.BadRequest):
                await ex.public_get_klines({"symbol": "BTCUSDT", "interval": "7m"})

    run(scenario())


def test_fetch_balance_default_account(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles) as (_fx, ex):
            balance = await ex.fetch_balance()
            assert balance["USDT"] == {"free": 1_000_000.0, "used": 0.0, "total": 1_000_000.0}
            assert balance["BTC"]["free"] == 10.0

    run(scenario())


def test_limit_order_lifecycle_by_client_order_id(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles) as (_fx, ex):
            price = float(candles.open[0]) - 1000
            order = await ex.create_order(SYMBOL, "limit", "buy", 0.01, price, {"clientOrderId": "grid-1"})
            assert order["status"] == "open" and order["clientOrderId"] == "grid-1"
            assert order["price"] == pytest.approx(price) and order["filled"] == 0
            found = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "grid-1"})
            assert found["id"] == order["id"] and found["status"] == "open"
            open_orders = await ex.fetch_open_orders(SYMBOL)
            assert [o["clientOrderId"] for o in open_orders] == ["grid-1"]
            balance = await ex.fetch_balance()
            assert balance["USDT"]["used"] == pytest.approx(price * 0.01)
            canceled = await ex.cancel_order(order["id"], SYMBOL)
            assert canceled["status"] == "canceled"
            assert (await ex.fetch_order(order["id"], SYMBOL))["status"] == "canceled"
            assert await ex.fetch_open_orders(SYMBOL) == []
            assert (await ex.fetch_balance())["USDT"] == {"free": 1_000_000.0, "used": 0.0, "total": 1_000_000.0}

    run(scenario())


def test_resting_limit_fills_at_its_price_as_maker_after_the_clock_crosses_it(candles: Candles) -> None:
    async def scenario() -> None:
        buy_price = buy_price_reached_later(candles)
        fill_seq = first_point_at_or_below(candles, buy_price, 0)
        async with fake_and_ccxt(candles) as (fx, ex):
            order = await ex.create_order(SYMBOL, "limit", "buy", 0.5, float(buy_price), {"clientOrderId": "dip"})
            assert order["status"] == "open"
            await fx.advance(points=fill_seq - 1)
            assert (await ex.fetch_order(order["id"], SYMBOL))["status"] == "open"
            assert await ex.fetch_my_trades(SYMBOL) == []
            await fx.advance(points=1)
            filled = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "dip"})
            assert filled["status"] == "closed" and filled["filled"] == 0.5
            trades = await ex.fetch_my_trades(SYMBOL)
            assert len(trades) == 1
            trade = trades[0]
            notional = buy_price * Decimal("0.5")
            assert trade["price"] == pytest.approx(float(buy_price))
            assert trade["takerOrMaker"] == "maker" and trade["side"] == "buy"
            assert trade["fee"]["currency"] == "USDT"
            assert trade["fee"]["cost"] == pytest.approx(float(notional * Decimal("0.001")))
            assert trade["order"] == order["id"]
            assert trade["timestamp"] == fx.venue.replay.point(fill_seq).timestamp
            balance = await ex.fetch_balance()
            assert balance["BTC"]["total"] == pytest.approx(10.5)
            assert balance["USDT"]["total"] == pytest.approx(float(Decimal(1_000_000) - notional * Decimal("1.001")))

    run(scenario())


def test_sell_limit_fills_when_price_rises(candles: Candles) -> None:
    async def scenario() -> None:
        sell_price = sell_price_reached_later(candles)
        async with fake_and_ccxt(candles) as (fx, ex):
            await ex.create_order(SYMBOL, "limit", "sell", 1, float(sell_price), {"clientOrderId": "top"})
            await fx.advance(candles=60)
            order = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "top"})
            assert order["status"] == "closed" and order["average"] == pytest.approx(float(sell_price))
            balance = await ex.fetch_balance()
            assert balance["BTC"]["total"] == pytest.approx(9.0)
            assert balance["USDT"]["total"] == pytest.approx(1_000_000 + float(sell_price) * 0.999)

    run(scenario())


def test_market_orders_fill_at_the_current_price_as_taker(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles) as (fx, ex):
            await fx.advance(points=1)
            price = float(path_prices(candles, 0, 0)[1])
            order = await ex.create_order(SYMBOL, "market", "buy", 0.1, None, {"clientOrderId": "mkt-1"})
            assert order["status"] == "closed" and order["filled"] == pytest.approx(0.1)
            assert order["average"] == pytest.approx(price)
            assert order["fee"]["cost"] == pytest.approx(price * 0.1 * 0.001)
            trades = await ex.fetch_my_trades(SYMBOL)
            assert trades[-1]["takerOrMaker"] == "taker"
            by_cost = await ex.create_market_buy_order_with_cost(SYMBOL, 1000)
            assert by_cost["status"] == "closed"
            assert by_cost["cost"] == pytest.approx(1000, abs=price * 0.00001)
            assert by_cost["info"]["origQuoteOrderQty"] == "1000.00000000"
            sell = await ex.create_order(SYMBOL, "market", "sell", 0.2)
            assert sell["status"] == "closed" and sell["side"] == "sell"

    run(scenario())


def test_error_mapping_to_ccxt_exceptions(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles) as (_fx, ex):
            price = float(candles.open[0])
            with pytest.raises(ccxt.InsufficientFunds, match="insufficient balance"):
                await ex.create_order(SYMBOL, "limit", "buy", 50, price - 100)
            with pytest.raises(ccxt.InsufficientFunds):
                await ex.create_order(SYMBOL, "market", "sell", 11)
            base = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
            with pytest.raises(ccxt.InvalidOrder, match="Filter failure: LOT_SIZE"):
                await ex.private_post_order({**base, "quantity": "0.000001", "price": "100000"})
            with pytest.raises(ccxt.InvalidOrder, match="Filter failure: PRICE_FILTER"):
                await ex.private_post_order({**base, "quantity": "0.001", "price": "100000.005"})
            # ccxt maps -1013 NOTIONAL to BadRequest (its code table), LOT_SIZE/PRICE_FILTER to InvalidOrder
            with pytest.raises(ccxt.BadRequest, match="Filter failure: NOTIONAL"):
                await ex.private_post_order({**base, "quantity": "0.00001", "price": "100000"})
            with pytest.raises(ccxt.BadRequest, match="-1102"):
                await ex.private_post_order({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1",
                                             "price": "1000"})
            with pytest.raises(ccxt.BadRequest, match="-1100"):
                await ex.private_post_order({**base, "quantity": "1e-3", "price": "100000"})
            with pytest.raises(ccxt.BadSymbol):
                await ex.private_post_order({**base, "symbol": "DOGEUSDT", "quantity": "1", "price": "1"})
            with pytest.raises(ccxt.OrderNotFound):
                await ex.fetch_order("999999", SYMBOL)
            with pytest.raises(ccxt.OrderNotFound):
                await ex.fetch_order(None, SYMBOL, {"clientOrderId": "nope"})
            with pytest.raises(ccxt.OrderNotFound):
                await ex.cancel_order("999999", SYMBOL)
            with pytest.raises(ccxt.OrderImmediatelyFillable):
                await ex.create_order(SYMBOL, "limit", "buy", 0.001, price + 100, {"postOnly": True})

    run(scenario())


def test_authentication_and_timestamp_errors(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles, secret="wrong") as (_fx, ex):
            with pytest.raises(ccxt.AuthenticationError, match="-1022"):
                await ex.fetch_balance()
        async with fake_and_ccxt(candles, api_key="nobody") as (_fx, ex):
            with pytest.raises(ccxt.AuthenticationError, match="-2015"):
                await ex.fetch_balance()
        async with fake_and_ccxt(candles, ccxt_extra={"options": {"timeDifference": 120_000}}) as (_fx, ex):
            with pytest.raises(ccxt.InvalidNonce, match="-1021"):
                await ex.fetch_balance()
        async with fake_and_ccxt(candles, ccxt_extra={"options": {"timeDifference": -5_000}}) as (_fx, ex):
            with pytest.raises(ccxt.InvalidNonce, match="ahead of the server"):
                await ex.fetch_balance()

    run(scenario())


def test_duplicate_client_order_id_only_while_open(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles) as (_fx, ex):
            price = float(candles.open[0]) - 500
            first = await ex.create_order(SYMBOL, "limit", "buy", 0.01, price, {"clientOrderId": "lvl-3"})
            with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
                await ex.create_order(SYMBOL, "limit", "buy", 0.01, price, {"clientOrderId": "lvl-3"})
            await ex.cancel_order(None, SYMBOL, {"clientOrderId": "lvl-3"})
            second = await ex.create_order(SYMBOL, "limit", "buy", 0.01, price, {"clientOrderId": "lvl-3"})
            assert second["id"] != first["id"]
            found = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "lvl-3"})
            assert found["id"] == second["id"] and found["status"] == "open"

    run(scenario())


def test_time_in_force_cancel_all_and_order_history(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles) as (_fx, ex):
            price = float(candles.open[0])
            ioc = await ex.create_order(SYMBOL, "limit", "buy", 0.01, price - 1000, {"timeInForce": "IOC"})
            assert ioc["status"] == "expired"
            ioc_fill = await ex.create_order(SYMBOL, "limit", "buy", 0.01, price + 50, {"timeInForce": "IOC"})
            assert ioc_fill["status"] == "closed" and ioc_fill["average"] == pytest.approx(price)
            for i in range(3):
                await ex.create_order(SYMBOL, "limit", "sell", 0.01, price + 1000 + i, {"clientOrderId": f"s{i}"})
            canceled = await ex.cancel_all_orders(SYMBOL)
            # as on Binance, a cancel answer's clientOrderId is the cancel's own id; the order's is origClientOrderId
            assert sorted(o["info"]["origClientOrderId"] for o in canceled) == ["s0", "s1", "s2"]
            assert all(o["status"] == "canceled" for o in canceled)
            history = await ex.fetch_orders(SYMBOL)
            assert [o["status"] for o in history] == ["expired", "closed", "canceled", "canceled", "canceled"]
            closed = await ex.fetch_closed_orders(SYMBOL)
            assert len(closed) == 1
            with pytest.raises(ccxt.OrderNotFound):
                await ex.cancel_all_orders(SYMBOL)

    run(scenario())


def test_accounts_are_isolated(candles: Candles) -> None:
    accounts = [
        AccountSpec("alice", "alice-secret", {"USDT": Decimal(1000)}),
        AccountSpec("bob", "bob-secret", {"USDT": Decimal(50), "BTC": Decimal("0.5")}),
    ]

    async def scenario() -> None:
        async with fake_and_ccxt(candles, api_key="alice", secret="alice-secret", accounts=accounts) as (fx, alice):
            bob = fx.ccxt_async("bob", "bob-secret", enableRateLimit=False)
            try:
                await bob.load_markets()
                await alice.create_order(SYMBOL, "market", "buy", 0.005)
                assert (await bob.fetch_balance())["BTC"]["total"] == pytest.approx(0.5)
                assert (await alice.fetch_balance())["BTC"]["total"] == pytest.approx(0.005)
                assert await bob.fetch_my_trades(SYMBOL) == []
                with pytest.raises(ccxt.InsufficientFunds):
                    await bob.create_order(SYMBOL, "market", "buy", 0.001)
            finally:
                await bob.close()
            state = await fx.state()
            assert [a["apiKey"] for a in state["accounts"]] == ["alice", "bob"]

    run(scenario())


def test_partial_fill_participation(candles: Candles) -> None:
    async def scenario() -> None:
        buy_price = buy_price_reached_later(candles, within_candles=60)
        fill_seq = first_point_at_or_below(candles, buy_price, 0)
        async with fake_and_ccxt(candles) as (fx, ex):
            await fx.set_faults(partial_fill=0.01)
            await ex.create_order(SYMBOL, "limit", "buy", 1, float(buy_price), {"clientOrderId": "big"})
            await fx.advance(points=fill_seq)
            order = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "big"})
            assert order["status"] == "open" and 0 < order["filled"] < 1
            point_qty = fx.venue.replay.point(fill_seq).qty
            assert Decimal(str(order["filled"])) <= point_qty * Decimal("0.01")
            await fx.advance(candles=80)
            trades = await ex.fetch_my_trades(SYMBOL)
            assert len(trades) >= 2
            assert all(t["price"] == pytest.approx(float(buy_price)) for t in trades)
            assert sum(t["amount"] for t in trades) == pytest.approx(
                (await ex.fetch_order(None, SYMBOL, {"clientOrderId": "big"}))["filled"])

    run(scenario())


def test_warmup_history_shows_in_klines(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles, warmup=30) as (_fx, ex):
            assert abs(await ex.fetch_time() - time.time() * 1000) < 10_000  # serverTime is the wall clock
            assert _fx.venue.now() == int(candles.open_time[30])
            rows = await ex.fetch_ohlcv(SYMBOL, "1m", limit=31)
            assert rows[0][0] == int(candles.open_time[0]) and len(rows) == 31
            ticker = await ex.fetch_ticker(SYMBOL)
            assert ticker["open"] == pytest.approx(float(candles.open[0]))
            assert int(ticker["info"]["count"]) == 30 * POINTS_PER_CANDLE + 1

    run(scenario())
