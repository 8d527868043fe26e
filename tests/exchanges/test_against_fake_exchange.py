"""CcxtExchange driven against the local fake Binance (real ccxt.pro client, real HTTP and websockets).

The fake exchange replays hand-written 1m candles on a manual clock (``speed=0``): nothing moves until a test
advances it, so fills and streamed prices are exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from gridfleet.backtest.data import Candles
from gridfleet.engine.types import OrderStatus, OrderType, PlaceOrder, Side
from gridfleet.exchanges.base import (
    AuthenticationError,
    InsufficientFunds,
    InvalidOrder,
    NetworkError,
    PriceUpdate,
    RateLimitError,
    TradeInfo,
)
from gridfleet.exchanges.ccxt_adapter import CcxtExchange
from gridfleet.exchanges.ratelimit import TokenBucket

testing = pytest.importorskip("gridfleet.fake_exchange.testing")
replay = pytest.importorskip("gridfleet.fake_exchange.replay")

T = TypeVar("T")
SYMBOL = "BTC/USDT"
T0 = 1_747_699_200_000  # 2025-05-20 00:00 UTC
# open, high, low, close: candle 2 dips to 29450, candle 7 rises to 30600
OHLC = [
    (30000, 30050, 29950, 30000), (30000, 30010, 29790, 29800), (29800, 29810, 29450, 29500),
    (29500, 29700, 29400, 29600), (29600, 30000, 29550, 30000), (30000, 30250, 29950, 30200),
    (30200, 30500, 30150, 30500), (30500, 30600, 30380, 30400), (30400, 30450, 30250, 30300),
    (30300, 30350, 30250, 30300),
]
CANDLES = Candles.from_arrays(
    [T0 + i * 60_000 for i in range(len(OHLC))],
    [c[0] for c in OHLC], [c[1] for c in OHLC], [c[2] for c in OHLC], [c[3] for c in OHLC],
    [4.0] * len(OHLC),
)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def path_prices(first: int, last: int) -> list[Decimal]:
    """Return the prices the fake replays for candles first … last, point by point."""
    out = []
    for o, h, low, c in OHLC[first:last + 1]:
        out.extend(Decimal(repr(float(p))) for p in replay.candle_path(o, h, low, c))
    return out


@asynccontextmanager
async def fake_venue(*, websocket: bool = True, api_key: str = "test", secret: str = "test",
                     **adapter_kwargs: Any) -> AsyncIterator[tuple[Any, CcxtExchange]]:
    async with testing.running_fake_exchange(candles=CANDLES, speed=0) as fx:
        adapter = CcxtExchange(
            "binance", api_key=api_key, secret=secret, api_url=fx.base_url, websocket=websocket,
            rate_limiter=TokenBucket.per_second(1000.0), poll_interval=0.05,
            # The fake's /api/v3/time returns the *replayed* market time while it checks request timestamps
            # against the wall clock, so ccxt's time-difference adjustment must stay off against it.
            options={"adjustForTimeDifference": False},
            **adapter_kwargs,
        )
        try:
            yield fx, adapter
        finally:
            await adapter.close()


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def subscribed(fx: Any, fragment: str) -> bool:
    for conn in fx.server.connections:
        if any(fragment in stream for stream in conn.streams) or (fragment == "user" and (
                conn.api_subs or conn.listen_keys)):
            return True
    return False


def buy(cid: str, price: str, amount: str = "0.01") -> PlaceOrder:
    return PlaceOrder(cid, Side.BUY, OrderType.LIMIT, Decimal(amount), Decimal(price))


# ---------------------------------------------------------------------------------------------------------------


def test_markets_balances_and_price() -> None:
    async def scenario() -> None:
        async with fake_venue() as (_, ex):
            rules = await ex.market(SYMBOL)
            assert rules.tick_size == Decimal("0.01") and rules.step_size == Decimal("0.00001")
            assert rules.min_notional == Decimal("5")
            balances = await ex.fetch_balances()
            assert balances["USDT"].free == Decimal(1_000_000) and balances["BTC"].free == Decimal(10)
            price = await ex.fetch_price(SYMBOL)
            assert price.price == Decimal("30000") and price.timestamp == T0

    run(scenario())


def test_create_fetch_cancel_by_client_id() -> None:
    async def scenario() -> None:
        async with fake_venue() as (_, ex):
            placed = await ex.create_order(SYMBOL, buy("bot1-0-1b", "29000.004"))
            assert placed.client_id == "bot1-0-1b" and placed.status is OrderStatus.OPEN
            assert placed.price == Decimal("29000.00")
            fetched = await ex.fetch_order(SYMBOL, "bot1-0-1b")
            assert fetched is not None and fetched.exchange_id == placed.exchange_id
            assert [o.client_id for o in await ex.fetch_open_orders(SYMBOL)] == ["bot1-0-1b"]
            assert (await ex.fetch_balances())["USDT"].used == Decimal("290.00")
            assert await ex.fetch_order(SYMBOL, "never-placed") is None
            canceled = await ex.cancel_order(SYMBOL, "bot1-0-1b")
            assert canceled is not None and canceled.status is OrderStatus.CANCELED
            assert canceled.client_id == "bot1-0-1b"
            assert await ex.cancel_order(SYMBOL, "bot1-0-1b") is None
            assert await ex.fetch_open_orders(SYMBOL) == []

    run(scenario())


def test_fill_after_advancing_the_clock() -> None:
    async def scenario() -> None:
        async with fake_venue() as (fx, ex):
            await ex.create_order(SYMBOL, buy("bot1-0-1b", "29500"))
            await fx.advance(candles=3)  # candle 2 reaches 29450
            order = await ex.fetch_order(SYMBOL, "bot1-0-1b")
            assert order is not None and order.status is OrderStatus.FILLED and order.filled == Decimal("0.01")
            trades = await ex.fetch_my_trades(SYMBOL)
            assert len(trades) == 1
            trade = trades[0]
            assert trade.client_id == "bot1-0-1b" and trade.price == Decimal("29500") and trade.is_maker
            assert trade.fee == Decimal("0.295") and trade.fee_currency == "USDT"  # 0.1 % maker fee

    run(scenario())


def test_local_refusal_sends_nothing_and_venue_refusals_map() -> None:
    async def scenario() -> None:
        async with fake_venue() as (fx, ex):
            with pytest.raises(InvalidOrder, match="MIN_NOTIONAL"):
                await ex.create_order(SYMBOL, buy("tiny-1", "29000", "0.0001"))
            assert (await fx.state())["accounts"][0]["orders"] == 0  # never reached the venue
            with pytest.raises(InsufficientFunds):
                await ex.create_order(SYMBOL, buy("huge-1", "29000", "100"))

    run(scenario())


def test_bad_key_is_an_authentication_error() -> None:
    async def scenario() -> None:
        async with fake_venue(api_key="wrong", secret="wrong") as (_, ex):
            with pytest.raises(AuthenticationError):
                await ex.fetch_balances()

    run(scenario())


def test_lost_placement_answer_is_ambiguous_and_resolved_by_client_id() -> None:
    async def scenario() -> None:
        async with fake_venue() as (fx, ex):
            await ex.market(SYMBOL)
            await fx.set_faults(lose_response_pct=100)
            with pytest.raises(NetworkError):
                await ex.create_order(SYMBOL, buy("bot1-0-1b", "29000"))
            await fx.set_faults(lose_response_pct=0)
            found = await ex.fetch_order(SYMBOL, "bot1-0-1b")
            assert found is not None and found.status is OrderStatus.OPEN  # placed once, known by its client id

    run(scenario())


def test_rate_limit_answer_carries_retry_after() -> None:
    async def scenario() -> None:
        async with fake_venue(retry_attempts=1) as (fx, ex):
            await ex.market(SYMBOL)
            await fx.set_faults(rate_limit_pct=100)
            with pytest.raises(RateLimitError) as info:
                await ex.fetch_balances()
            assert info.value.retry_after is not None and info.value.retry_after > 0

    run(scenario())


def test_watch_prices_streams_the_replayed_trades() -> None:
    async def scenario() -> list[PriceUpdate]:
        async with fake_venue() as (fx, ex):
            stream = ex.watch_prices(SYMBOL)
            first = asyncio.ensure_future(stream.__anext__())
            await wait_until(lambda: subscribed(fx, "@trade"))
            await fx.advance(candles=2)
            updates = [await asyncio.wait_for(first, 5)]
            while len(updates) < 8:
                updates.append(await asyncio.wait_for(stream.__anext__(), 5))
            await stream.aclose()  # type: ignore[attr-defined]
            return updates

    updates = run(scenario())
    assert [u.price for u in updates] == path_prices(0, 2)[1:9]
    assert all(u.volume == Decimal(1) for u in updates)  # candle volume 4 over 4 points
    assert [u.timestamp for u in updates] == sorted(u.timestamp for u in updates)


def test_watch_my_trades_streams_the_fill() -> None:
    async def scenario() -> TradeInfo:
        async with fake_venue() as (fx, ex):
            await ex.create_order(SYMBOL, buy("bot1-0-1b", "29500"))
            stream = ex.watch_my_trades(SYMBOL)
            first = asyncio.ensure_future(stream.__anext__())
            await wait_until(lambda: subscribed(fx, "user"))
            await fx.advance(candles=3)
            trade = await asyncio.wait_for(first, 5)
            await stream.aclose()  # type: ignore[attr-defined]
            return trade

    trade = run(scenario())
    assert trade.client_id == "bot1-0-1b" and trade.price == Decimal("29500") and trade.amount == Decimal("0.01")
    assert trade.fee == Decimal("0.295")


def test_watch_my_trades_by_polling_without_websockets() -> None:
    async def scenario() -> TradeInfo:
        async with fake_venue(websocket=False) as (fx, ex):
            await ex.create_order(SYMBOL, buy("bot1-0-1b", "29500"))
            stream = ex.watch_my_trades(SYMBOL)
            first = asyncio.ensure_future(stream.__anext__())
            await asyncio.sleep(0.2)  # a few empty polls
            await fx.advance(candles=3)
            trade = await asyncio.wait_for(first, 5)
            await stream.aclose()  # type: ignore[attr-defined]
            return trade

    trade = run(scenario())
    assert trade.client_id == "bot1-0-1b" and trade.price == Decimal("29500")
