"""CcxtExchange unit tests: a scripted fake ccxt object, plus real ccxt classes with their HTTP layer stubbed.

No network: real Binance/OKX/Bybit ccxt objects get a stubbed ``fetch`` (the method below ccxt's request
signing, throttling and parsing), so the tests see the exact parameters ccxt would put on the wire.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import ccxt
import ccxt.async_support
import ccxt.pro
import pytest
from ccxt.base.decimal_to_precision import TICK_SIZE
from hypothesis import given
from hypothesis import strategies as st

from gridfleet.engine.types import OrderStatus, OrderType, PlaceOrder, Side
from gridfleet.exchanges.base import (
    AuthenticationError,
    Balance,
    ExchangeError,
    InsufficientFunds,
    InvalidOrder,
    NetworkError,
    OrderNotFound,
    RateLimitError,
    TradeInfo,
)
from gridfleet.exchanges.ccxt_adapter import (
    CcxtExchange,
    decode_client_id,
    encode_client_id,
    map_ccxt_error,
    order_from_ccxt,
    profile_for,
    rewrite_api_urls,
    trade_from_ccxt,
)
from gridfleet.exchanges.factory import KeysFileError, create_exchange, load_keys

SYMBOL = "BTC/USDT"
API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"

MARKET: dict[str, Any] = {
    "id": "BTCUSDT",
    "symbol": SYMBOL,
    "base": "BTC",
    "quote": "USDT",
    "spot": True,
    "precision": {"price": 0.01, "amount": 1e-05},
    "limits": {
        "amount": {"min": 1e-05, "max": 9000.0},
        "price": {"min": 0.01, "max": 1000000.0},
        "cost": {"min": 5.0, "max": 9000000.0},
        "market": {"min": 0.0, "max": 100.0},
    },
}


# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------


def run(coro: Any) -> Any:
    return asyncio.run(coro)


class RecordingSleep:
    """Injected sleep: records delays, yields to the loop, never waits."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


class RecordingLimiter:
    """A RateLimiter that records acquisitions and back-offs and never waits."""

    def __init__(self) -> None:
        self.acquired: list[float] = []
        self.back_offs: list[float] = []

    async def acquire(self, weight: float = 1.0) -> None:
        self.acquired.append(weight)

    async def back_off(self, seconds: float) -> None:
        self.back_offs.append(seconds)


class FakeCcxt:
    """Mimics the ccxt methods the adapter uses. ``script[name]`` lists answers (exceptions are raised)."""

    def __init__(self, exchange_id: str = "binance", has: dict[str, bool] | None = None) -> None:
        self.id = exchange_id
        self.has = has or {}
        self.precisionMode = TICK_SIZE
        self.rateLimit = 50
        self.enableRateLimit = True
        self.options: dict[str, Any] = {}
        self.urls: dict[str, Any] = {"api": {"rest": "https://api.example.com/v1"}}
        self.last_response_headers: dict[str, str] | None = None
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.script: dict[str, list[Any]] = defaultdict(list)
        self.orders: dict[str, dict[str, Any]] = {}
        self.trades: list[dict[str, Any]] = []
        self.closed = False
        self.now = 1_700_000_000_000

    # -- plumbing
    def count(self, name: str) -> int:
        return sum(1 for call, _ in self.calls if call == name)

    def params_of(self, name: str) -> list[dict[str, Any]]:
        return [args[-1] for call, args in self.calls if call == name]

    async def _do(self, name: str, args: tuple[Any, ...], default: Callable[[], Any]) -> Any:
        self.calls.append((name, args))
        if self.script[name]:
            item = self.script[name].pop(0)
            if isinstance(item, BaseException):
                raise item
            return item() if callable(item) else item
        return default()

    def milliseconds(self) -> int:
        return self.now

    # -- ccxt surface
    async def load_markets(self, reload: bool = False, params: dict[str, Any] | None = None) -> Any:
        return await self._do("load_markets", (), lambda: {SYMBOL: MARKET})

    def market(self, symbol: str) -> dict[str, Any]:
        if symbol != SYMBOL:
            raise ccxt.BadSymbol(f"{self.id} does not have market symbol {symbol}")
        return MARKET

    async def load_time_difference(self, params: dict[str, Any] | None = None) -> int:
        self.calls.append(("load_time_difference", ()))
        self.options["timeDifference"] = 0
        return 0

    async def fetch_balance(self, params: dict[str, Any] | None = None) -> Any:
        return await self._do("fetch_balance", (), lambda: {
            "info": {},
            "free": {"BTC": 0.5, "USDT": 1000.25, "ETH": 0.0},
            "used": {"BTC": 0.1, "USDT": 0.0, "ETH": 0.0},
            "total": {"BTC": 0.6, "USDT": 1000.25, "ETH": 0.0},
        })

    async def fetch_ticker(self, symbol: str, params: dict[str, Any] | None = None) -> Any:
        return await self._do("fetch_ticker", (symbol,), lambda: {"symbol": symbol, "last": 30000.5,
                                                                  "timestamp": self.now})

    async def create_order(self, symbol: str, type: str, side: str, amount: float, price: float | None = None,
                           params: dict[str, Any] | None = None) -> Any:
        params = params or {}

        def default() -> dict[str, Any]:
            cid = next(iter(params.values()))
            order = {"id": str(1000 + len(self.orders)), "clientOrderId": cid, "symbol": symbol, "type": type,
                     "side": side, "amount": amount, "price": price, "filled": 0.0, "status": "open",
                     "timestamp": self.now}
            self.orders[cid] = order
            return dict(order)

        return await self._do("create_order", (symbol, type, side, amount, price, params), default)

    def _find(self, params: dict[str, Any]) -> dict[str, Any]:
        cid = next(iter(params.values()))
        if cid not in self.orders:
            raise ccxt.OrderNotFound(f"{self.id} order {cid} does not exist")
        return dict(self.orders[cid])

    async def fetch_order(self, id: str | None, symbol: str | None = None,
                          params: dict[str, Any] | None = None) -> Any:
        params = params or {}

        def default() -> dict[str, Any]:
            if id is not None:
                for order in self.orders.values():
                    if order["id"] == id:
                        return dict(order)
                raise ccxt.OrderNotFound(f"order {id}")
            return self._find(params)

        return await self._do("fetch_order", (id, symbol, params), default)

    async def cancel_order(self, id: str | None, symbol: str | None = None,
                           params: dict[str, Any] | None = None) -> Any:
        params = params or {}

        def default() -> dict[str, Any]:
            order = self._find(params)
            if order["status"] != "open":
                raise ccxt.OrderNotFound("Unknown order sent.")
            self.orders[order["clientOrderId"]]["status"] = "canceled"
            return dict(self.orders[order["clientOrderId"]])

        return await self._do("cancel_order", (id, symbol, params), default)

    async def fetch_open_orders(self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
                                params: dict[str, Any] | None = None) -> Any:
        return await self._do("fetch_open_orders", (symbol, since, limit, params or {}),
                              lambda: [dict(o) for o in self.orders.values() if o["status"] == "open"])

    async def fetch_canceled_and_closed_orders(self, symbol: str | None = None, since: int | None = None,
                                               limit: int | None = None, params: dict[str, Any] | None = None) -> Any:
        return await self._do("fetch_canceled_and_closed_orders", (symbol, since, limit, params or {}), list)

    async def fetch_my_trades(self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
                              params: dict[str, Any] | None = None) -> Any:
        def default() -> list[dict[str, Any]]:
            return [t for t in self.trades if since is None or t["timestamp"] >= since][: limit or None]

        return await self._do("fetch_my_trades", (symbol, since, limit), default)

    async def _forever(self) -> Any:
        await asyncio.sleep(3600)

    async def watch_trades(self, symbol: str) -> Any:
        return await self._do("watch_trades", (symbol,), lambda: self._forever())

    async def watch_my_trades(self, symbol: str) -> Any:
        return await self._do("watch_my_trades", (symbol,), lambda: self._forever())

    async def watch_orders(self, symbol: str) -> Any:
        return await self._do("watch_orders", (symbol,), lambda: self._forever())

    async def close(self) -> None:
        self.closed = True


def make(fake: FakeCcxt | None = None, **kwargs: Any) -> tuple[CcxtExchange, FakeCcxt, RecordingSleep]:
    fake = fake or FakeCcxt()
    sleep = RecordingSleep()
    kwargs.setdefault("rate_limiter", RecordingLimiter())
    adapter = CcxtExchange(fake.id, client=fake, sleep=sleep, **kwargs)
    return adapter, fake, sleep


def limit_buy(cid: str = "bot1-0-1b", amount: str = "0.001", price: str = "30000") -> PlaceOrder:
    return PlaceOrder(cid, Side.BUY, OrderType.LIMIT, Decimal(amount), Decimal(price))


async def take(stream: AsyncIterator[Any], n: int) -> list[Any]:
    out = []
    async for item in stream:
        out.append(item)
        if len(out) == n:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    return out


def trade_dict(trade_id: str, order_id: str = "1000", ts: int = 1_700_000_000_500, **extra: Any) -> dict[str, Any]:
    base = {"id": trade_id, "order": order_id, "symbol": SYMBOL, "side": "buy", "price": 30000.0, "amount": 0.001,
            "timestamp": ts, "takerOrMaker": "maker", "fee": {"cost": 0.03, "currency": "USDT"}, "info": {}}
    base.update(extra)
    return base


@pytest.fixture(scope="module")
def binance_spot_dir(shared_data_dir: Path) -> Path:
    path = shared_data_dir / "api" / "binance_spot"
    if not path.is_dir():
        pytest.skip(f"Binance API samples not found: {path}")
    return path


@pytest.fixture(scope="module")
def exchange_info(binance_spot_dir: Path) -> dict[str, Any]:
    files = sorted((binance_spot_dir / "exchangeInfo").glob("exchangeInfo_subset_*.json"))
    if not files:
        pytest.skip("no exchangeInfo subset sample")
    data: dict[str, Any] = json.loads(files[0].read_text())
    return data


# ---------------------------------------------------------------------------------------------------------------
# error mapping
# ---------------------------------------------------------------------------------------------------------------

ERROR_TABLE: list[tuple[BaseException, type[ExchangeError]]] = [
    (ccxt.RateLimitExceeded("429"), RateLimitError),
    (ccxt.DDoSProtection("418"), RateLimitError),
    (ccxt.RequestTimeout("timeout"), NetworkError),
    (ccxt.NetworkError("reset"), NetworkError),
    (ccxt.ExchangeNotAvailable("502"), NetworkError),
    (ccxt.OnMaintenance("maintenance"), NetworkError),
    (ccxt.InvalidNonce("-1021"), NetworkError),
    (ccxt.BadResponse("garbled"), NetworkError),
    (ccxt.InsufficientFunds("-2010"), InsufficientFunds),
    (ccxt.InvalidOrder("-1013"), InvalidOrder),
    (ccxt.BadRequest("-1102"), InvalidOrder),
    (ccxt.BadSymbol("-1121"), InvalidOrder),
    (ccxt.DuplicateOrderId("duplicate"), InvalidOrder),
    (ccxt.OrderNotFound("-2013"), OrderNotFound),
    (ccxt.AuthenticationError("-2014"), AuthenticationError),
    (ccxt.PermissionDenied("-2015"), AuthenticationError),
    (ccxt.AccountSuspended("suspended"), AuthenticationError),
    (ccxt.ExchangeError("other"), ExchangeError),
    (TimeoutError(), NetworkError),
    (ConnectionResetError("reset"), NetworkError),
]


@pytest.mark.parametrize(("error", "expected"), ERROR_TABLE, ids=lambda v: type(v).__name__)
def test_ccxt_errors_map_to_gridfleet_errors(error: BaseException, expected: type[ExchangeError]) -> None:
    mapped = map_ccxt_error(error, context="binance test")
    assert type(mapped) is expected


def test_aiohttp_payload_failure_wrapped_by_ccxt_is_a_network_error() -> None:
    try:
        try:
            raise aiohttp.ClientPayloadError("truncated")
        except aiohttp.ClientError as inner:
            raise ccxt.ExchangeError("binance GET https://api.binance.com/api/v3/order") from inner
    except ccxt.ExchangeError as exc:
        assert type(map_ccxt_error(exc, context="x")) is NetworkError


def test_non_venue_exceptions_are_not_mapped() -> None:
    assert map_ccxt_error(KeyError("bug"), context="x") is None


def test_real_binance_error_bodies_map_through_ccxt(binance_spot_dir: Path) -> None:
    """The documented Binance error payloads, through ccxt's own handle_errors, then our mapping."""
    doc = json.loads((binance_spot_dir / "errors_spot.json").read_text())
    expected = {-2010: InsufficientFunds, -1013: InvalidOrder, -2011: OrderNotFound, -2013: OrderNotFound,
                -1121: InvalidOrder, -1021: NetworkError, -1003: RateLimitError}
    exchange = ccxt.binance()
    seen = set()
    for example in doc["common_examples"]:
        body = example["body"]
        with pytest.raises(ccxt.BaseError) as info:
            exchange.handle_errors(example["http_status"], "", "https://api.binance.com/api/v3/order", "POST", {},
                                   json.dumps(body), body, {}, "")
            exchange.handle_http_status_code(example["http_status"], "", "https://x", "POST", json.dumps(body))
        mapped = map_ccxt_error(info.value, context="binance create_order")
        assert type(mapped) is expected[body["code"]], body
        seen.add(body["code"])
    assert seen == set(expected)


@pytest.mark.parametrize(("error", "expected"), ERROR_TABLE, ids=lambda v: type(v).__name__)
def test_adapter_raises_mapped_errors(error: BaseException, expected: type[ExchangeError]) -> None:
    adapter, fake, _ = make(retry_attempts=1)
    fake.script["fetch_balance"] = [error]
    with pytest.raises(expected):
        run(adapter.fetch_balances())


def test_rate_limit_reads_retry_after_header_and_backs_off_the_shared_limiter() -> None:
    limiter = RecordingLimiter()
    adapter, fake, sleep = make(rate_limiter=limiter)
    fake.last_response_headers = {"Content-Type": "application/json", "Retry-After": "7"}
    fake.script["fetch_balance"] = [ccxt.RateLimitExceeded("binance 429 Too many requests")]
    balances = run(adapter.fetch_balances())
    assert "BTC" in balances
    assert limiter.back_offs == [7.0]  # every caller of this venue waits
    assert sleep.delays[0] >= 7.0  # and the retry waits at least Retry-After


def test_rate_limit_without_header_uses_default_back_off() -> None:
    limiter = RecordingLimiter()
    adapter, fake, _ = make(rate_limiter=limiter, retry_attempts=1, rate_limit_backoff=3.0)
    fake.script["fetch_balance"] = [ccxt.DDoSProtection("418 banned")]
    with pytest.raises(RateLimitError) as info:
        run(adapter.fetch_balances())
    assert info.value.retry_after is None
    assert limiter.back_offs == [3.0]


def test_invalid_nonce_resyncs_the_clock_then_retries() -> None:
    adapter, fake, _ = make()
    fake.script["fetch_balance"] = [ccxt.InvalidNonce("binance -1021 Timestamp for this request is outside")]
    run(adapter.fetch_balances())
    assert fake.count("load_time_difference") == 1
    assert fake.count("fetch_balance") == 2


# ---------------------------------------------------------------------------------------------------------------
# retries: placement never, reads yes
# ---------------------------------------------------------------------------------------------------------------


def test_create_order_is_never_retried_on_network_error() -> None:
    adapter, fake, sleep = make()
    fake.script["create_order"] = [ccxt.RequestTimeout("binance POST https://api.binance.com/api/v3/order")]
    with pytest.raises(NetworkError):
        run(adapter.create_order(SYMBOL, limit_buy()))
    assert fake.count("create_order") == 1
    assert sleep.delays == []


def test_create_order_unexpected_failure_is_reported_as_ambiguous() -> None:
    adapter, fake, _ = make()
    fake.script["create_order"] = [KeyError("status")]  # e.g. ccxt failing to parse the answer
    with pytest.raises(NetworkError, match="outcome unknown"):
        run(adapter.create_order(SYMBOL, limit_buy()))
    assert fake.count("create_order") == 1


def test_ambiguous_placement_is_resolved_by_client_id() -> None:
    adapter, fake, _ = make()

    async def scenario() -> None:
        # the venue placed the order but the answer was lost
        fake.script["create_order"] = [lambda: (_ for _ in ()).throw(ccxt.RequestTimeout("timeout"))]
        fake.orders["bot1-0-1b"] = {"id": "77", "clientOrderId": "bot1-0-1b", "symbol": SYMBOL, "type": "limit",
                                    "side": "buy", "amount": 0.001, "price": 30000.0, "filled": 0.0,
                                    "status": "open", "timestamp": fake.now}
        with pytest.raises(NetworkError):
            await adapter.create_order(SYMBOL, limit_buy())
        found = await adapter.fetch_order(SYMBOL, "bot1-0-1b")
        assert found is not None and found.exchange_id == "77" and found.status is OrderStatus.OPEN
        assert await adapter.fetch_order(SYMBOL, "bot1-0-2b") is None

    run(scenario())


@pytest.mark.parametrize(
    ("method", "call"),
    [
        ("fetch_balance", lambda a: a.fetch_balances()),
        ("fetch_ticker", lambda a: a.fetch_price(SYMBOL)),
        ("fetch_order", lambda a: a.fetch_order(SYMBOL, "bot1-0-1b")),
        ("fetch_open_orders", lambda a: a.fetch_open_orders(SYMBOL)),
        ("fetch_my_trades", lambda a: a.fetch_my_trades(SYMBOL)),
        ("load_markets", lambda a: a.market(SYMBOL)),
    ],
)
def test_reads_are_retried_on_transient_errors(method: str, call: Callable[[CcxtExchange], Any]) -> None:
    adapter, fake, sleep = make()
    fake.script[method] = [ccxt.RequestTimeout("t1"), ccxt.ExchangeNotAvailable("502")]
    run(call(adapter))
    assert fake.count(method) == 3
    assert len(sleep.delays) == 2


def test_reads_give_up_after_the_configured_attempts() -> None:
    adapter, fake, _ = make(retry_attempts=3)
    fake.script["fetch_balance"] = [ccxt.RequestTimeout("t")] * 5
    with pytest.raises(NetworkError):
        run(adapter.fetch_balances())
    assert fake.count("fetch_balance") == 3


def test_reads_are_not_retried_on_definitive_errors() -> None:
    adapter, fake, _ = make()
    fake.script["fetch_balance"] = [ccxt.AuthenticationError("binance -2015 Invalid API-key")]
    with pytest.raises(AuthenticationError):
        run(adapter.fetch_balances())
    assert fake.count("fetch_balance") == 1


# ---------------------------------------------------------------------------------------------------------------
# fetch_order / cancel_order semantics
# ---------------------------------------------------------------------------------------------------------------


def test_fetch_order_is_none_only_when_the_venue_says_not_found() -> None:
    adapter, fake, _ = make(retry_attempts=2)
    assert run(adapter.fetch_order(SYMBOL, "unknown-1")) is None
    fake.script["fetch_order"] = [ccxt.RequestTimeout("t"), ccxt.NetworkError("dns")]
    with pytest.raises(NetworkError):  # a DNS outage is not "order not found"
        run(adapter.fetch_order(SYMBOL, "unknown-1"))


def test_cancel_returns_final_order_or_none_when_not_open() -> None:
    adapter, _, _ = make()

    async def scenario() -> None:
        placed = await adapter.create_order(SYMBOL, limit_buy())
        assert placed.status is OrderStatus.OPEN
        canceled = await adapter.cancel_order(SYMBOL, "bot1-0-1b")
        assert canceled is not None and canceled.status is OrderStatus.CANCELED
        assert await adapter.cancel_order(SYMBOL, "bot1-0-1b") is None  # already closed
        assert await adapter.cancel_order(SYMBOL, "never-placed") is None

    run(scenario())


def test_cancel_refused_because_order_finished_is_none() -> None:
    adapter, fake, _ = make(FakeCcxt("bybit"))
    fake.orders["bot1-0-1b"] = {"id": "5", "clientOrderId": "bot1-0-1b", "symbol": SYMBOL, "type": "limit",
                                "side": "buy", "amount": 0.001, "price": 30000.0, "filled": 0.001,
                                "status": "closed", "timestamp": fake.now}
    fake.script["cancel_order"] = [ccxt.InvalidOrder("bybit 110008 Order has been finished or canceled")]
    fake.script["fetch_open_orders"] = [[]]
    fake.script["fetch_canceled_and_closed_orders"] = [[fake.orders["bot1-0-1b"]]]
    assert run(adapter.cancel_order(SYMBOL, "bot1-0-1b")) is None


def test_cancel_acknowledgement_without_state_reads_the_final_order() -> None:
    adapter, fake, _ = make(FakeCcxt("okx"))
    final = {"id": "9", "clientOrderId": "bot1Za0Za1b", "symbol": SYMBOL, "type": "limit", "side": "buy",
             "amount": 0.001, "price": 30000.0, "filled": 0.0004, "status": "canceled", "timestamp": fake.now}
    fake.script["cancel_order"] = [{"id": "9", "clientOrderId": "bot1Za0Za1b", "status": None, "amount": None}]
    fake.script["fetch_order"] = [final]
    order = run(adapter.cancel_order(SYMBOL, "bot1-0-1b"))
    assert order is not None
    assert order.client_id == "bot1-0-1b" and order.status is OrderStatus.CANCELED
    assert order.filled == Decimal("0.0004")


def test_cancel_network_error_is_raised_not_retried() -> None:
    adapter, fake, _ = make()
    fake.script["cancel_order"] = [ccxt.RequestTimeout("t")]
    with pytest.raises(NetworkError):
        run(adapter.cancel_order(SYMBOL, "bot1-0-1b"))
    assert fake.count("cancel_order") == 1


# ---------------------------------------------------------------------------------------------------------------
# placement: rounding, local refusals, client ids
# ---------------------------------------------------------------------------------------------------------------


def test_amount_rounds_down_to_step_and_price_to_tick_on_the_safe_side() -> None:
    adapter, fake, _ = make()

    async def scenario() -> None:
        buy = await adapter.create_order(SYMBOL, limit_buy("b1", "0.0012345", "30000.017"))
        sell = await adapter.create_order(
            SYMBOL, PlaceOrder("s1", Side.SELL, OrderType.LIMIT, Decimal("0.0012399"), Decimal("30000.011")))
        assert (buy.amount, buy.price) == (Decimal("0.00123"), Decimal("30000.01"))
        assert (sell.amount, sell.price) == (Decimal("0.00123"), Decimal("30000.02"))

    run(scenario())
    sent = [(args[3], args[4]) for name, args in fake.calls if name == "create_order"]
    assert sent == [(0.00123, 30000.01), (0.00123, 30000.02)]


@pytest.mark.parametrize(
    ("amount", "price", "code"),
    [
        ("0.0001", "30000", "MIN_NOTIONAL"),  # 3 USDT < 5
        ("0.000009", "900000", "LOT_SIZE"),  # rounds down to 0
        ("0.001", "0.001", "PRICE_FILTER"),  # rounds down to 0
    ],
)
def test_orders_the_venue_would_refuse_are_refused_locally(amount: str, price: str, code: str) -> None:
    adapter, fake, _ = make()
    with pytest.raises(InvalidOrder, match=code):
        run(adapter.create_order(SYMBOL, limit_buy("b1", amount, price)))
    assert fake.count("create_order") == 0


def test_market_order_notional_uses_the_last_known_price() -> None:
    adapter, fake, _ = make()

    async def scenario() -> None:
        await adapter.fetch_price(SYMBOL)  # 30000.5
        with pytest.raises(InvalidOrder, match="MIN_NOTIONAL"):
            await adapter.create_order(SYMBOL, PlaceOrder("m1", Side.BUY, OrderType.MARKET, Decimal("0.0001")))
        await adapter.create_order(SYMBOL, PlaceOrder("m2", Side.BUY, OrderType.MARKET, Decimal("0.001")))

    run(scenario())
    assert [args[4] for name, args in fake.calls if name == "create_order"] == [None]


@pytest.mark.parametrize(
    ("exchange_id", "create_key", "query_key", "venue_id"),
    [
        ("binance", "newClientOrderId", "origClientOrderId", "bot1-0-1b"),
        ("okx", "clOrdId", "clOrdId", "bot1Za0Za1b"),
        ("bybit", "clientOrderId", "orderLinkId", "bot1-0-1b"),
        ("kraken", "clientOrderId", "clientOrderId", "bot1-0-1b"),
    ],
)
def test_client_id_parameter_per_exchange(exchange_id: str, create_key: str, query_key: str, venue_id: str) -> None:
    adapter, fake, _ = make(FakeCcxt(exchange_id))

    async def scenario() -> None:
        placed = await adapter.create_order(SYMBOL, limit_buy())
        assert placed.client_id == "bot1-0-1b"
        await adapter.fetch_order(SYMBOL, "bot1-0-1b")
        await adapter.cancel_order(SYMBOL, "bot1-0-1b")

    run(scenario())
    assert fake.params_of("create_order") == [{create_key: venue_id}]
    assert fake.params_of("cancel_order") == [{query_key: venue_id}]
    if exchange_id == "bybit":  # no fetch-one endpoint by client id: searched in open orders
        assert fake.params_of("fetch_open_orders")[0] == {query_key: venue_id}
    else:
        assert fake.params_of("fetch_order") == [{query_key: venue_id}]


def test_client_id_the_venue_cannot_take_is_refused_locally() -> None:
    adapter, fake, _ = make(FakeCcxt("okx"))
    with pytest.raises(InvalidOrder, match="CLIENT_ID"):
        run(adapter.create_order(SYMBOL, limit_buy("a-very-long-bot-name-0-123456789b")))
    adapter, fake, _ = make(FakeCcxt("binance"))
    with pytest.raises(InvalidOrder, match="CLIENT_ID"):
        run(adapter.create_order(SYMBOL, limit_buy("bot 1 with spaces")))
    assert fake.count("create_order") == 0


@given(st.text(alphabet="abcXYZ019-_.:/Z", min_size=1, max_size=12))
def test_okx_client_id_escape_round_trips(client_id: str) -> None:
    profile = profile_for("okx")
    venue_id = encode_client_id(profile, client_id)
    assert venue_id.isalnum()
    assert decode_client_id(profile, venue_id) == client_id


def test_foreign_okx_client_ids_decode_unchanged() -> None:
    assert decode_client_id(profile_for("okx"), "webZ1manual") == "webZ1manual"


# ---------------------------------------------------------------------------------------------------------------
# real ccxt classes, HTTP stubbed: the wire parameters
# ---------------------------------------------------------------------------------------------------------------


class StubHttp:
    """Replaces ccxt's ``fetch``: answers by URL substring and records (method, url, body)."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, str, str | None]] = []

    async def __call__(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        self.requests.append((method, url, body))
        for key, answer in self.answers.items():
            if key in url and (not isinstance(answer, tuple) or answer[0] == method):
                value = answer[1] if isinstance(answer, tuple) else answer
                if isinstance(value, BaseException):
                    raise value
                return value() if callable(value) else value
        raise AssertionError(f"unexpected request {method} {url}")

    def find(self, fragment: str, method: str | None = None) -> tuple[str, str, str | None]:
        for request in self.requests:
            if fragment in request[1] and (method is None or request[0] == method):
                return request
        raise AssertionError(f"no request to {fragment}: {self.requests}")


BINANCE_ORDER = {"symbol": "BTCUSDT", "orderId": 28, "orderListId": -1, "clientOrderId": "bot1-0-1b",
                 "transactTime": 1507725176595, "price": "30000.01000000", "origQty": "0.00123000",
                 "executedQty": "0.00000000", "cummulativeQuoteQty": "0.00000000", "status": "NEW",
                 "timeInForce": "GTC", "type": "LIMIT", "side": "BUY", "fills": []}


def test_real_binance_request_parameters(exchange_info: dict[str, Any]) -> None:
    client = ccxt.async_support.binance({"apiKey": API_KEY, "secret": SECRET,
                                         "options": {"fetchCurrencies": False, "fetchMargins": False,
                                                     "fetchMarkets": {"types": ["spot"]}}})
    canceled = dict(BINANCE_ORDER, status="CANCELED")
    http = StubHttp({
        "exchangeInfo": exchange_info,
        "/time": lambda: {"serverTime": client.milliseconds()},
        "/openOrders": [BINANCE_ORDER],
        "/order": BINANCE_ORDER,
    })
    client.fetch = http
    limiter = RecordingLimiter()
    adapter = CcxtExchange("binance", client=client, rate_limiter=limiter, sleep=RecordingSleep())

    async def scenario() -> None:
        placed = await adapter.create_order(SYMBOL, limit_buy("bot1-0-1b", "0.0012345", "30000.017"))
        assert placed.exchange_id == "28" and placed.status is OrderStatus.OPEN
        assert placed.amount == Decimal("0.00123") and placed.price == Decimal("30000.01")
        await adapter.fetch_order(SYMBOL, "bot1-0-1b")
        http.answers["/order"] = ("DELETE", canceled)
        result = await adapter.cancel_order(SYMBOL, "bot1-0-1b")
        assert result is not None and result.status is OrderStatus.CANCELED
        open_orders = await adapter.fetch_open_orders(SYMBOL)
        assert [o.client_id for o in open_orders] == ["bot1-0-1b"]
        await adapter.close()

    run(scenario())
    _, _, body = http.find("/api/v3/order", "POST")
    assert body is not None and "newClientOrderId=bot1-0-1b" in body
    assert "quantity=0.00123&price=30000.01" in body
    assert "origClientOrderId=bot1-0-1b" in http.find("/api/v3/order", "GET")[1]
    assert "origClientOrderId=bot1-0-1b" in http.find("/api/v3/order", "DELETE")[1]
    assert not any("/sapi/" in url for _, url, _ in http.requests)  # spot only: no margin/currency endpoints
    assert limiter.acquired, "every REST request goes through the shared limiter"


OKX_INSTRUMENT = {"instId": "BTC-USDT", "instType": "SPOT", "baseCcy": "BTC", "quoteCcy": "USDT", "state": "live",
                  "tickSz": "0.1", "lotSz": "0.00000001", "minSz": "0.00001", "listTime": "1548133413000",
                  "ctVal": "", "ctMult": "", "ctValCcy": "", "settleCcy": "", "uly": "", "instFamily": "",
                  "lever": "10", "maxLmtSz": "9999999999", "maxMktSz": "", "alias": "", "expTime": "",
                  "optType": "", "stk": "", "category": "1"}


def test_real_okx_request_parameters() -> None:
    client = ccxt.async_support.okx({"apiKey": API_KEY, "secret": SECRET, "password": "passphrase-1234"})
    okx_order = {"instId": "BTC-USDT", "ordId": "555", "clOrdId": "bot1Za0Za1b", "side": "buy", "ordType": "limit",
                 "px": "30000.1", "sz": "0.001", "accFillSz": "0", "state": "live", "cTime": "1700000000000",
                 "uTime": "1700000000000", "fee": "0", "feeCcy": "USDT"}
    http = StubHttp({
        "/public/instruments": {"code": "0", "data": [OKX_INSTRUMENT]},
        "/public/time": lambda: {"code": "0", "data": [{"ts": str(client.milliseconds())}]},
        "/trade/batch-orders": {"code": "0", "data": [{"clOrdId": "bot1Za0Za1b", "ordId": "555", "sCode": "0",
                                                       "sMsg": ""}]},
        "/trade/order?": {"code": "0", "data": [okx_order]},
    })
    client.fetch = http
    client.set_markets([client.parse_market(OKX_INSTRUMENT)])
    adapter = CcxtExchange("okx", client=client, rate_limiter=RecordingLimiter(), sleep=RecordingSleep())

    async def scenario() -> None:
        placed = await adapter.create_order(SYMBOL, limit_buy("bot1-0-1b", "0.001", "30000.12"))
        # OKX only acknowledges: the rest comes from what was sent
        assert placed.client_id == "bot1-0-1b" and placed.exchange_id == "555"
        assert placed.status is OrderStatus.OPEN and placed.price == Decimal("30000.1")
        found = await adapter.fetch_order(SYMBOL, "bot1-0-1b")
        assert found is not None and found.client_id == "bot1-0-1b" and found.status is OrderStatus.OPEN
        await adapter.close()

    run(scenario())
    _, _, body = http.find("/trade/batch-orders", "POST")
    assert body is not None and json.loads(body)[0]["clOrdId"] == "bot1Za0Za1b"
    assert "clOrdId=bot1Za0Za1b" in http.find("/trade/order?", "GET")[1]


BYBIT_INSTRUMENT = {"symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT", "innovation": "0",
                    "status": "Trading", "marginTrading": "both",
                    "lotSizeFilter": {"basePrecision": "0.000001", "quotePrecision": "0.00000001",
                                      "minOrderQty": "0.000048", "maxOrderQty": "71.73956243", "minOrderAmt": "1",
                                      "maxOrderAmt": "2000000"},
                    "priceFilter": {"tickSize": "0.01"}}


def test_real_bybit_request_parameters() -> None:
    client = ccxt.async_support.bybit({"apiKey": API_KEY, "secret": SECRET, "options": {"defaultType": "spot"}})
    ack = {"retCode": 0, "retMsg": "OK", "result": {"orderId": "1321", "orderLinkId": "bot1-0-1b"},
           "retExtInfo": {}, "time": 1672211918471}
    bybit_order = {"symbol": "BTCUSDT", "orderType": "Limit", "orderLinkId": "bot1-0-1b", "orderId": "1321",
                   "orderStatus": "Cancelled", "price": "30000.01", "qty": "0.001", "cumExecQty": "0",
                   "side": "Buy", "createdTime": "1700000000000", "updatedTime": "1700000000000",
                   "avgPrice": "", "timeInForce": "GTC", "cumExecValue": "0", "cumExecFee": "0"}
    http = StubHttp({
        "instruments-info": {"retCode": 0, "retMsg": "OK", "result": {"category": "spot",
                                                                     "list": [BYBIT_INSTRUMENT]}},
        "/v5/user/query-api": {"retCode": 0, "result": {"unified": 0, "uta": 1}},
        "/v5/account/info": {"retCode": 0, "result": {"unifiedMarginStatus": 4}},
        "/v5/order/create": ack,
        "/v5/order/cancel": ack,
        "/v5/order/realtime": {"retCode": 0, "retMsg": "OK", "result": {"list": [], "category": "spot"}},
        "/v5/order/history": {"retCode": 0, "retMsg": "OK", "result": {"list": [bybit_order], "category": "spot"}},
    })
    client.fetch = http

    async def scenario() -> None:
        client.set_markets(await client.fetch_spot_markets({}))
        adapter = CcxtExchange("bybit", client=client, rate_limiter=RecordingLimiter(), sleep=RecordingSleep())
        placed = await adapter.create_order(SYMBOL, limit_buy("bot1-0-1b", "0.001", "30000.01"))
        assert placed.exchange_id == "1321" and placed.status is OrderStatus.OPEN
        canceled = await adapter.cancel_order(SYMBOL, "bot1-0-1b")  # ack only: state read back by client id
        assert canceled is not None and canceled.status is OrderStatus.CANCELED
        await adapter.close()

    run(scenario())
    _, _, body = http.find("/v5/order/create", "POST")
    assert body is not None and json.loads(body)["orderLinkId"] == "bot1-0-1b"
    _, _, body = http.find("/v5/order/cancel", "POST")
    assert body is not None and json.loads(body)["orderLinkId"] == "bot1-0-1b"
    assert "orderLinkId=bot1-0-1b" in http.find("/v5/order/realtime")[1]
    assert "orderLinkId=bot1-0-1b" in http.find("/v5/order/history")[1]


# ---------------------------------------------------------------------------------------------------------------
# conversions of real Binance payloads parsed by ccxt
# ---------------------------------------------------------------------------------------------------------------


def _sample(binance_spot_dir: Path, name: str) -> Any:
    return json.loads((binance_spot_dir / "docs_examples" / "nautilus_rust_http_json" / name).read_text())


def test_convert_open_order(binance_spot_dir: Path) -> None:
    raw = ccxt.binance().parse_order(_sample(binance_spot_dir, "order_response.json"))
    order = order_from_ccxt(raw)
    assert order.client_id == "myOrder1" and order.exchange_id == "1"
    assert (order.side, order.type, order.status) == (Side.BUY, OrderType.LIMIT, OrderStatus.OPEN)
    assert (order.amount, order.price, order.filled) == (Decimal("1.0"), Decimal("0.1"), Decimal("0.0"))
    assert order.timestamp == 1499827319559


def test_convert_filled_market_order_with_fills(binance_spot_dir: Path) -> None:
    raw = ccxt.binance().parse_order(_sample(binance_spot_dir, "new_order_full_response.json"))
    order = order_from_ccxt(raw)
    assert (order.type, order.side, order.status) == (OrderType.MARKET, Side.SELL, OrderStatus.FILLED)
    assert order.filled == Decimal("10.0")
    # ccxt averages cummulativeQuoteQty over executedQty; this documentation sample gives 10 USDT for 10 BTC
    assert order.average == Decimal("1.0")
    assert raw["trades"] and len(raw["trades"]) == 5


def test_convert_canceled_order(binance_spot_dir: Path) -> None:
    raw = ccxt.binance().parse_order(_sample(binance_spot_dir, "cancel_order_response.json"))
    order = order_from_ccxt(raw)
    assert order.status is OrderStatus.CANCELED
    assert order.client_id == "myOrder1"  # origClientOrderId, not the cancel request's own id
    assert order.amount == Decimal("1.0") and order.price == Decimal("2.0")


def test_convert_account_trade(binance_spot_dir: Path) -> None:
    raw = ccxt.binance().parse_trade(_sample(binance_spot_dir, "account_trades_response.json")[0])
    trade = trade_from_ccxt(raw, "cid-1")
    assert trade == TradeInfo(
        trade_id="28457", client_id="cid-1", exchange_order_id="100234", symbol=raw["symbol"], side=Side.BUY,
        price=Decimal("4.000001"), amount=Decimal("12.0"), fee=Decimal("10.1"), fee_currency="BNB",
        timestamp=1499865549590, is_maker=False,
    )


def test_partially_filled_execution_report_is_partially_filled(binance_spot_dir: Path) -> None:
    message = json.loads((binance_spot_dir / "ws_messages" / "ws_spot_execution_report_trade.json").read_text())
    raw = ccxt.pro.binance().parse_ws_order(message["data"])
    order = order_from_ccxt(raw)
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.client_id == "O-12345-test-trade"
    assert (order.amount, order.filled) == (Decimal("1.0"), Decimal("0.5"))


def test_ws_trade_gets_its_client_id_from_the_execution_report(binance_spot_dir: Path) -> None:
    message = json.loads((binance_spot_dir / "ws_messages" / "ws_spot_execution_report_trade.json").read_text())
    raw = ccxt.pro.binance().parse_ws_trade(message["data"])
    adapter, _, _ = make()
    trade = run(adapter._trade(raw, "ETH/USDT"))
    assert trade.client_id == "O-12345-test-trade"
    assert trade.trade_id == "98765432" and trade.is_maker is True
    assert (trade.price, trade.amount, trade.fee, trade.fee_currency) == (
        Decimal("2499.5"), Decimal("0.5"), Decimal("0.0005"), "ETH")


def test_fee_from_fees_list_and_status_mapping() -> None:
    raw = trade_dict("1", fee=None, fees=[{"cost": 0.0, "currency": "BNB"}, {"cost": 0.01, "currency": "USDT"},
                                          {"cost": 0.02, "currency": "USDT"}])
    trade = trade_from_ccxt(raw, "c")
    assert (trade.fee, trade.fee_currency) == (Decimal("0.03"), "USDT")
    for status, expected in [("open", OrderStatus.OPEN), ("closed", OrderStatus.FILLED),
                             ("canceled", OrderStatus.CANCELED), ("rejected", OrderStatus.REJECTED),
                             ("expired", OrderStatus.EXPIRED)]:
        order = order_from_ccxt({"id": "1", "clientOrderId": "c", "side": "buy", "type": "limit", "amount": 1,
                                 "price": 2, "filled": 0, "status": status, "timestamp": 1})
        assert order.status is expected


def test_balances_and_price() -> None:
    adapter, _, _ = make()
    balances = run(adapter.fetch_balances())
    assert balances == {"BTC": Balance(Decimal("0.5"), Decimal("0.1")),
                        "USDT": Balance(Decimal("1000.25"), Decimal("0.0"))}  # all-zero ETH left out
    price = run(adapter.fetch_price(SYMBOL))
    assert price.price == Decimal("30000.5") and price.symbol == SYMBOL


def test_market_rules_from_ccxt_market() -> None:
    adapter, _, _ = make()
    rules = run(adapter.market(SYMBOL))
    assert (rules.tick_size, rules.step_size, rules.min_notional) == (Decimal("0.01"), Decimal("0.00001"),
                                                                      Decimal("5.0"))
    with pytest.raises(InvalidOrder):
        run(adapter.market("NOPE/USDT"))


# ---------------------------------------------------------------------------------------------------------------
# own trades: pagination and client ids
# ---------------------------------------------------------------------------------------------------------------


def test_fetch_my_trades_paginates_and_finds_client_ids_once() -> None:
    adapter, fake, _ = make()
    fake.orders["bot1-0-1b"] = {"id": "1000", "clientOrderId": "bot1-0-1b", "symbol": SYMBOL, "type": "limit",
                                "side": "buy", "amount": 0.003, "price": 30000.0, "filled": 0.003,
                                "status": "closed", "timestamp": fake.now}
    fake.trades = [trade_dict(str(i), ts=1_700_000_000_000 + i) for i in range(5)]
    adapter.profile = dataclasses.replace(adapter.profile, trades_page=2)
    trades = run(adapter.fetch_my_trades(SYMBOL, since=1_700_000_000_000))
    assert [t.trade_id for t in trades] == ["0", "1", "2", "3", "4"]
    assert {t.client_id for t in trades} == {"bot1-0-1b"}
    assert fake.count("fetch_order") == 1  # looked up by exchange order id once, then cached
    assert fake.count("fetch_my_trades") >= 3


# ---------------------------------------------------------------------------------------------------------------
# streams
# ---------------------------------------------------------------------------------------------------------------


def test_watch_prices_yields_each_trade_reconnects_and_fills_the_gap() -> None:
    adapter, fake, sleep = make(FakeCcxt(has={"watchTrades": True}))
    t = fake.now
    fake.script["watch_trades"] = [
        [{"id": "1", "price": 30000.0, "amount": 0.1, "timestamp": t}, {"id": "2", "price": 30001.0, "amount": 0.2,
                                                                         "timestamp": t + 1}],
        ccxt.NetworkError("connection closed"),
        [{"id": "2", "price": 30001.0, "amount": 0.2, "timestamp": t + 1},
         {"id": "3", "price": 30002.0, "amount": 0.3, "timestamp": t + 5}],
    ]
    fake.script["fetch_ticker"] = [{"last": 30001.5, "timestamp": t + 3}]
    updates = run(take(adapter.watch_prices(SYMBOL), 4))
    assert [(u.price, u.timestamp) for u in updates] == [
        (Decimal("30000.0"), t), (Decimal("30001.0"), t + 1), (Decimal("30001.5"), t + 3), (Decimal("30002.0"), t + 5)]
    assert updates[0].volume == Decimal("0.1")
    assert len(sleep.delays) == 1  # one reconnect back-off


def test_watch_prices_polls_when_websocket_unsupported() -> None:
    adapter, fake, sleep = make(FakeCcxt(has={"watchTrades": True}), poll_interval=1.5)
    fake.script["watch_trades"] = [ccxt.NotSupported("no ws")]
    fake.script["fetch_ticker"] = [{"last": 1.0, "timestamp": 1}, {"last": 2.0, "timestamp": 2}]
    updates = run(take(adapter.watch_prices(SYMBOL), 2))
    assert [u.price for u in updates] == [Decimal("1.0"), Decimal("2.0")]
    assert sleep.delays == [1.5]


def test_watch_prices_without_websocket_polls_the_ticker() -> None:
    adapter, fake, sleep = make(FakeCcxt(has={}), poll_interval=0.5)
    updates = run(take(adapter.watch_prices(SYMBOL), 2))
    assert len(updates) == 2 and fake.count("watch_trades") == 0
    assert sleep.delays == [0.5]


def test_watch_prices_raises_authentication_errors() -> None:
    adapter, fake, _ = make(FakeCcxt(has={"watchTrades": True}))
    fake.script["watch_trades"] = [ccxt.AuthenticationError("bad key")]
    with pytest.raises(AuthenticationError):
        run(take(adapter.watch_prices(SYMBOL), 1))


def test_watch_my_trades_websocket_dedupes_and_fills_gaps_by_rest() -> None:
    adapter, fake, _ = make(FakeCcxt(has={"watchMyTrades": True}))
    t = fake.now
    fake.trades = [trade_dict("0", ts=t - 1)]  # already there at subscription: the stream primes past it

    def first_event() -> list[dict[str, Any]]:
        fake.trades += [trade_dict("1", ts=t + 1), trade_dict("2", ts=t + 5)]  # REST view during the outage
        return [trade_dict("1", ts=t + 1, info={"c": "bot1-0-1b"})]

    fake.script["watch_my_trades"] = [
        first_event,
        ccxt.RequestTimeout("ws down"),
        [trade_dict("1", ts=t + 1, info={"c": "bot1-0-1b"}), trade_dict("3", ts=t + 9, info={"c": "bot1-0-1b"})],
    ]
    fake.orders["bot1-0-1b"] = {"id": "1000", "clientOrderId": "bot1-0-1b", "symbol": SYMBOL, "type": "limit",
                                "side": "buy", "amount": 0.003, "price": 30000.0, "filled": 0.002,
                                "status": "open", "timestamp": t}
    trades = run(take(adapter.watch_my_trades(SYMBOL), 3))
    assert [tr.trade_id for tr in trades] == ["1", "2", "3"]
    assert all(tr.client_id == "bot1-0-1b" for tr in trades)


def test_watch_my_trades_yields_events_ccxt_cached_without_waiting_for_the_next_message() -> None:
    """ccxt.pro resolves a watch on the next message only: the last fill of a burst sits in its cache."""
    fake = FakeCcxt(has={"watchMyTrades": True})
    t = fake.now
    first = trade_dict("1", ts=t + 1, info={"c": "bot1-0-1b"})
    late = trade_dict("2", ts=t + 2, info={"c": "bot1-0-2b"})
    fake.myTrades = [first]  # type: ignore[attr-defined]

    def burst() -> list[dict[str, Any]]:
        fake.myTrades.append(late)  # type: ignore[attr-defined]  # arrives after ccxt resolved the watch
        return [first]

    fake.script["watch_my_trades"] = [burst]
    adapter, _, _ = make(fake)
    trades = run(take(adapter.watch_my_trades(SYMBOL), 2))
    assert [(tr.trade_id, tr.client_id) for tr in trades] == [("1", "bot1-0-1b"), ("2", "bot1-0-2b")]
    assert fake.count("watch_my_trades") == 1


def test_trade_without_id_gets_a_deterministic_one() -> None:
    raw = trade_dict("", id=None)
    assert trade_from_ccxt(raw, "c").trade_id == trade_from_ccxt(dict(raw), "c").trade_id == (
        "1000:1700000000500:30000.0:0.001")


def test_watch_my_trades_from_order_updates_reads_real_trades() -> None:
    adapter, fake, _ = make(FakeCcxt(has={"watchOrders": True}))
    t = fake.now
    def filled() -> list[dict[str, Any]]:
        fake.trades = [trade_dict("t1", ts=t + 1)]
        return [{"id": "1000", "clientOrderId": "bot1-0-1b", "filled": 0.001, "status": "open"}]

    fake.script["watch_orders"] = [
        [{"id": "1000", "clientOrderId": "bot1-0-1b", "filled": 0.0, "status": "open"}],
        filled,
    ]
    trades = run(take(adapter.watch_my_trades(SYMBOL), 1))
    assert trades[0].trade_id == "t1" and trades[0].client_id == "bot1-0-1b"
    assert fake.count("fetch_my_trades") == 2  # the priming read, then only when the filled amount grew


def test_watch_my_trades_polls_without_websocket() -> None:
    adapter, fake, sleep = make(FakeCcxt(has={}), poll_interval=2.0)
    t = fake.now
    fake.trades = [trade_dict("a", ts=t + 1, clientOrderId="bot1-0-1b")]
    fake.script["fetch_my_trades"] = [lambda: [],  # the priming read: nothing before the subscription
                                      lambda: list(fake.trades),
                                      lambda: [*fake.trades, trade_dict("b", ts=t + 2, clientOrderId="bot1-0-1b")]]
    trades = run(take(adapter.watch_my_trades(SYMBOL), 2))
    assert [tr.trade_id for tr in trades] == ["a", "b"]
    assert sleep.delays == [2.0]


def test_close_closes_the_client_and_ends_polling_streams() -> None:
    adapter, fake, _ = make(FakeCcxt(has={}))

    async def scenario() -> list[Any]:
        stream = adapter.watch_prices(SYMBOL)
        first = await stream.__anext__()
        await adapter.close()
        rest = [u async for u in stream]
        return [first, *rest]

    updates = run(scenario())
    assert fake.closed
    assert len(updates) == 1


# ---------------------------------------------------------------------------------------------------------------
# construction: defaults, URLs, secrets
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("exchange_id", ["binance", "okx", "bybit"])
def test_venue_defaults(exchange_id: str) -> None:
    adapter = CcxtExchange(exchange_id, options={"recvWindow": 5000}, rate_limiter=RecordingLimiter())
    options = adapter.client.options
    assert options["defaultType"] == "spot"
    assert options["adjustForTimeDifference"] is True
    assert options["recvWindow"] == 5000
    if exchange_id == "binance":
        assert options["fetchMarkets"]["types"] == ["spot"]
        assert options["fetchCurrencies"] is False
    assert isinstance(adapter.client, getattr(ccxt.pro, exchange_id))
    run(adapter.close())


def test_rest_only_client_when_websocket_disabled() -> None:
    adapter = CcxtExchange("binance", websocket=False, rate_limiter=RecordingLimiter())
    assert not isinstance(adapter.client, ccxt.pro.binance)
    assert isinstance(adapter.client, ccxt.async_support.binance)
    run(adapter.close())


def test_unknown_exchange_id_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown ccxt exchange"):
        CcxtExchange("no-such-venue")


def test_rewrite_api_urls_keeps_paths_and_maps_websocket_schemes() -> None:
    urls = {"public": "https://api.binance.com/api/v3", "ws": {"spot": "wss://stream.binance.com:9443/ws"},
            "rest": "https://{hostname}", "other": 5}
    assert rewrite_api_urls(urls, "http://127.0.0.1:8000/") == {
        "public": "http://127.0.0.1:8000/api/v3", "ws": {"spot": "ws://127.0.0.1:8000/ws"},
        "rest": "http://127.0.0.1:8000", "other": 5}
    assert rewrite_api_urls("wss://x.com/ws", "https://fake.local") == "wss://fake.local/ws"


@pytest.mark.parametrize("exchange_id", ["okx", "bybit"])
def test_api_url_points_every_endpoint_at_the_local_host(exchange_id: str) -> None:
    adapter = CcxtExchange(exchange_id, api_url="http://127.0.0.1:8765", rate_limiter=RecordingLimiter())
    flat = json.dumps(adapter.client.urls["api"])
    assert "okx.com" not in flat and "{hostname}" not in flat
    assert "http://127.0.0.1:8765" in flat and "ws://127.0.0.1:8765" in flat
    run(adapter.close())


def test_default_limiter_is_shared_per_exchange_and_endpoint() -> None:
    a = CcxtExchange("binance", api_url="http://127.0.0.1:1111")
    b = CcxtExchange("binance", api_url="http://127.0.0.1:1111")
    c = CcxtExchange("binance", api_url="http://127.0.0.1:2222")
    assert a._limiter is b._limiter
    assert a._limiter is not c._limiter
    for adapter in (a, b, c):
        run(adapter.close())


def test_repr_masks_the_key_and_never_shows_the_secret() -> None:
    adapter = CcxtExchange("binance", api_key=API_KEY, secret=SECRET, rate_limiter=RecordingLimiter())
    text = repr(adapter)
    assert API_KEY not in text and SECRET not in text
    assert "***" + API_KEY[-4:] in text
    run(adapter.close())


def test_error_messages_and_retry_logs_carry_no_secrets(caplog: pytest.LogCaptureFixture) -> None:
    adapter, fake, _ = make(retry_attempts=2)
    adapter._redact = type(adapter._redact)([API_KEY, SECRET])  # as if built with these keys
    leak = (f"binance GET https://api.binance.com/api/v3/account?timestamp=1&signature=deadbeef "
            f"{{'X-MBX-APIKEY': '{API_KEY}'}} secret={SECRET}")
    fake.script["fetch_balance"] = [ccxt.RequestTimeout(leak), ccxt.RequestTimeout(leak)]
    with caplog.at_level(logging.DEBUG), pytest.raises(NetworkError) as info:
        run(adapter.fetch_balances())
    for text in (str(info.value), caplog.text):
        assert API_KEY not in text and SECRET not in text and "deadbeef" not in text
    assert "retry 1/1" in caplog.text


def test_ccxt_debug_logs_of_signed_requests_are_redacted(
    caplog: pytest.LogCaptureFixture, exchange_info: dict[str, Any]
) -> None:
    """A real ccxt Binance object sends a signed request to a closed local port; its DEBUG log is scrubbed."""
    adapter = CcxtExchange("binance", api_key=API_KEY, secret=SECRET, api_url="http://127.0.0.1:9",
                           rate_limiter=RecordingLimiter(), sleep=RecordingSleep(), retry_attempts=1,
                           timeout_ms=2000)
    client = adapter.client

    async def scenario() -> None:
        client.fetch = StubHttp({"exchangeInfo": exchange_info,
                                 "/time": lambda: {"serverTime": client.milliseconds()}})
        await adapter.market(SYMBOL)
        del client.fetch  # back to ccxt's real HTTP layer
        try:
            with pytest.raises(NetworkError) as info:
                await adapter.fetch_balances()
            assert API_KEY not in str(info.value)
        finally:
            await adapter.close()

    with caplog.at_level(logging.DEBUG):
        run(scenario())
    assert "/api/v3/account" in caplog.text  # the request was logged...
    assert API_KEY not in caplog.text and SECRET not in caplog.text  # ...without the key
    assert "signature=***" in caplog.text


# ---------------------------------------------------------------------------------------------------------------
# factory
# ---------------------------------------------------------------------------------------------------------------


def test_load_keys_yaml_and_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "keys.yaml"
    yaml_file.write_text(f"apiKey: {API_KEY}\nsecret: {SECRET}\npassword: pass-phrase\n")
    assert load_keys(yaml_file) == {"apiKey": API_KEY, "secret": SECRET, "password": "pass-phrase"}
    json_file = tmp_path / "keys.json"
    json_file.write_text(json.dumps({"api_key": API_KEY, "secret": SECRET}))
    assert load_keys(json_file) == {"apiKey": API_KEY, "secret": SECRET}


def test_load_keys_errors_name_fields_never_content(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    missing.write_text(f"{API_KEY}: {SECRET}\n")
    with pytest.raises(KeysFileError, match="lacks apiKey and secret") as info:
        load_keys(missing)
    assert API_KEY not in str(info.value) and SECRET not in str(info.value)
    broken = tmp_path / "broken.yaml"
    broken.write_text(f"apiKey: [{API_KEY}\nsecret: {SECRET}\n")
    with pytest.raises(KeysFileError, match="not valid YAML") as info:
        load_keys(broken)
    assert API_KEY not in str(info.value) and SECRET not in str(info.value)
    with pytest.raises(KeysFileError, match="cannot read"):
        load_keys(tmp_path / "absent.yaml")


def test_create_exchange_live_and_paper() -> None:
    live = create_exchange("binance", keys={"apiKey": API_KEY, "secret": SECRET}, api_url="http://127.0.0.1:8000")
    assert isinstance(live, CcxtExchange)
    assert live.client.apiKey == API_KEY
    assert "http://127.0.0.1:8000" in json.dumps(live.client.urls["api"])
    run(live.close())
    try:
        from gridfleet.exchanges.paper import PaperExchange
    except ImportError:
        with pytest.raises(NotImplementedError):
            create_exchange("binance", keys=None, paper=True)
        return
    paper = create_exchange(
        "binance", keys={"apiKey": API_KEY, "secret": SECRET}, paper=True,
        paper_options={"symbol": SYMBOL, "balances": {"USDT": Decimal(1000)}, "maker_fee": Decimal("0.001"),
                       "taker_fee": Decimal("0.001")},
    )
    assert isinstance(paper, PaperExchange)
    source = paper.source
    assert isinstance(source, CcxtExchange)
    assert not source.client.apiKey  # prices only: the paper account never sees the keys
    run(paper.close())
