"""The aiohttp application: Binance spot REST (``/api/v3``), market streams (``/ws``, ``/stream``), the WebSocket API
(``/ws-api/v3``, used by ccxt.pro for user data), and the ``/_fake`` control endpoints.

HTTP concerns live here — authentication (``X-MBX-APIKEY`` + HMAC-SHA256 signature + timestamp/recvWindow against
the *real* wall clock), request weight and rate limits (429/418), fault injection, websocket fan-out — while
:class:`~gridfleet.fake_exchange.venue.FakeVenue` holds the exchange state and logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import math
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from gridfleet.backtest.data import Candles, load_candles
from gridfleet.fake_exchange import errors as E
from gridfleet.fake_exchange.accounts import Account, AccountSpec, default_accounts
from gridfleet.fake_exchange.errors import BinanceError
from gridfleet.fake_exchange.faults import FaultConfig, FaultInjector, HttpFault
from gridfleet.fake_exchange.replay import PricePoint
from gridfleet.fake_exchange.signing import rest_payload, signature_matches, ws_payload
from gridfleet.fake_exchange.venue import BOOK_LEVELS, FakeVenue, f8, synthetic_symbol_info

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_EXCHANGE_INFO = (
    REPO_ROOT / ".." / "shared" / "data" / "api" / "binance_spot" / "exchangeInfo"
    / "exchangeInfo_subset_BTCUSDT_ETHUSDT_SOLUSDT_BNBUSDT_XRPUSDT_ETHBTC_2024-09-08.json"
)
"""The packaged exchangeInfo dump (``<repo>/../shared/data/...``) used when no ``--exchange-info`` is given."""

LOOPBACK = ("127.", "::1", "localhost")
SNAPSHOT_INTERVAL_S = 0.1
"""Minimum wall time between two pushes of a snapshot stream (ticker, kline, depth)."""
MAX_RECV_WINDOW = 60_000


# ================================================================================================ config
@dataclass(slots=True)
class FakeExchangeConfig:
    """Everything the fake exchange needs to start. Give ``candles`` (already loaded) or ``data`` (a file)."""

    symbol: str = "BTC/USDT"
    data: Path | None = None
    candles: Candles | None = None
    speed: float = 60.0
    accounts: list[AccountSpec] | None = None
    exchange_info: Path | None = None  # None: the packaged dump, falling back to a synthesized entry
    seed: int = 0
    faults: FaultConfig = field(default_factory=FaultConfig)
    warmup: int = 0  # candles counted as history before the replay starts
    max_candles: int | None = None  # replay only the first N candles of the file
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    slippage: Decimal = Decimal(0)
    weight_limit: int = 6000
    ban_after: int = 3  # 429s within one minute window before the IP is banned (418)
    ban_seconds: float = 120.0
    ws_heartbeat_s: float = 20.0
    control_loopback_only: bool = True


def split_symbol(symbol: str) -> tuple[str, str]:
    """Split ``BASE/QUOTE`` into its assets (upper case); raise ValueError when malformed."""
    base, sep, quote = symbol.upper().partition("/")
    if not sep or not base.isalnum() or not quote.isalnum():
        raise ValueError(f"--symbol must look like BASE/QUOTE (e.g. BTC/USDT), got {symbol!r}")
    return base, quote


def load_symbol_info(symbol: str, exchange_info: Path | None) -> dict[str, Any]:
    """Return the exchangeInfo entry of ``symbol`` from the given dump (plain or .gz) or the packaged one.

    An explicitly given file must exist and hold the symbol; with the packaged default a missing file or symbol
    falls back to :func:`~gridfleet.fake_exchange.venue.synthetic_symbol_info`.
    """
    base, quote = split_symbol(symbol)
    wanted = base + quote
    path = exchange_info if exchange_info is not None else DEFAULT_EXCHANGE_INFO
    if not path.is_file():
        if exchange_info is not None:
            raise ValueError(f"exchange info file not found: {exchange_info}")
        return synthetic_symbol_info(base, quote)
    opener: Any = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable exchangeInfo JSON file ({exc})") from None
    for info in data.get("symbols", []) if isinstance(data, dict) else []:
        if info.get("symbol") == wanted:
            return dict(info)
    if exchange_info is not None:
        raise ValueError(f"symbol {symbol} not found in {exchange_info}")
    return synthetic_symbol_info(base, quote)


def build_venue(config: FakeExchangeConfig) -> FakeVenue:
    """Load data, market rules and accounts from ``config`` and return a ready :class:`FakeVenue`."""
    base, quote = split_symbol(config.symbol)
    if config.speed < 0:
        raise ValueError("--speed must not be negative")
    candles = config.candles
    if candles is None:
        if config.data is None:
            raise ValueError("--data is required (a candle file: .csv, .csv.gz or .parquet)")
        candles = load_candles(config.data)
    if config.max_candles is not None:
        if config.max_candles < 1:
            raise ValueError("max candles must be at least 1")
        candles = candles.head(config.max_candles)
    info = load_symbol_info(config.symbol, config.exchange_info)
    accounts = config.accounts if config.accounts is not None else default_accounts(base, quote)
    participation = None if config.faults.partial_fill is None else Decimal(str(config.faults.partial_fill))
    return FakeVenue(
        candles=candles,
        symbol_info=info,
        accounts=accounts,
        maker_fee=config.maker_fee,
        taker_fee=config.taker_fee,
        slippage=config.slippage,
        participation=participation,
        warmup=config.warmup,
        speed=config.speed,
        seed=config.seed,
        weight_limit=config.weight_limit,
    )


# ================================================================================================ rate limits
@dataclass(slots=True)
class _IpUsage:
    window: int = 0  # minute number (wall clock)
    used: int = 0
    rejected: int = 0
    banned_until: float = 0.0


class WeightLimiter:
    """Per-IP request weight per (fixed, wall-clock) minute, with 429 over the limit and 418 bans for repeaters."""

    def __init__(
        self, limit: int, ban_after: int, ban_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.limit, self.ban_after, self.ban_seconds = limit, ban_after, ban_seconds
        self.clock = clock  # wall clock in seconds (replaceable in tests)
        self._ips: dict[str, _IpUsage] = {}

    def reset(self) -> None:
        """Forget all usage and bans."""
        self._ips.clear()

    def used(self, ip: str) -> int:
        """Return the weight used by ``ip`` in the current minute."""
        usage = self._ips.get(ip)
        now = self.clock()
        return usage.used if usage is not None and usage.window == int(now // 60) else 0

    def charge(self, ip: str, weight: int) -> tuple[int, BinanceError | None, int]:
        """Add ``weight`` for ``ip``; return (weight used this minute, error to answer or None, Retry-After s)."""
        now = self.clock()
        usage = self._ips.setdefault(ip, _IpUsage())
        minute = int(now // 60)
        if usage.window != minute:
            usage.window, usage.used, usage.rejected = minute, 0, 0
        usage.used += weight
        if usage.banned_until > now:
            until = int(usage.banned_until * 1000)
            return usage.used, BinanceError(-1003, E.IP_BANNED.format(until=until), 418), math.ceil(
                usage.banned_until - now)
        if usage.used <= self.limit:
            return usage.used, None, 0
        usage.rejected += 1
        retry = max(1, math.ceil((minute + 1) * 60 - now))
        if usage.rejected > self.ban_after:
            usage.banned_until = now + self.ban_seconds
            until = int(usage.banned_until * 1000)
            return usage.used, BinanceError(-1003, E.IP_BANNED.format(until=until), 418), math.ceil(self.ban_seconds)
        return usage.used, BinanceError(-1003, E.TOO_MUCH_WEIGHT.format(limit=self.limit), 429), retry


# ================================================================================================ endpoints
Security = Literal["NONE", "API_KEY", "SIGNED"]
Handler = Callable[[FakeVenue, dict[str, str], Account | None], Any]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One REST endpoint: its weight, its security type and the venue call answering it."""

    weight: Callable[[dict[str, str]], int]
    security: Security
    handler: Handler
    is_order: bool = False


def _w(n: int) -> Callable[[dict[str, str]], int]:
    return lambda _params: n


def _by_symbol(with_symbol: int, without: int) -> Callable[[dict[str, str]], int]:
    return lambda params: with_symbol if params.get("symbol") else without


def _depth_weight(params: dict[str, str]) -> int:
    try:
        limit = int(params.get("limit") or 100)
    except ValueError:
        return 5
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def _acct(account: Account | None) -> Account:
    assert account is not None
    return account


def _endpoints() -> dict[tuple[str, str], Endpoint]:
    v = FakeVenue
    return {
        ("GET", "/api/v3/ping"): Endpoint(_w(1), "NONE", lambda ven, p, a: {}),
        # serverTime is the wall clock: signed requests are checked against it (clients sync to it); market data
        # (trades, klines, order times) carries the replayed time
        ("GET", "/api/v3/time"): Endpoint(_w(1), "NONE", lambda ven, p, a: {"serverTime": int(time.time() * 1000)}),
        ("GET", "/api/v3/exchangeInfo"): Endpoint(_w(20), "NONE", lambda ven, p, a: v.exchange_info(ven, p)),
        ("GET", "/api/v3/depth"): Endpoint(_depth_weight, "NONE", lambda ven, p, a: v.depth(ven, p)),
        ("GET", "/api/v3/trades"): Endpoint(_w(25), "NONE", lambda ven, p, a: v.trades(ven, p)),
        ("GET", "/api/v3/historicalTrades"): Endpoint(_w(25), "API_KEY", lambda ven, p, a: v.historical_trades(ven, p)),
        ("GET", "/api/v3/aggTrades"): Endpoint(_w(4), "NONE", lambda ven, p, a: v.agg_trades(ven, p)),
        ("GET", "/api/v3/klines"): Endpoint(_w(2), "NONE", lambda ven, p, a: v.klines(ven, p)),
        ("GET", "/api/v3/uiKlines"): Endpoint(_w(2), "NONE", lambda ven, p, a: v.klines(ven, p)),
        ("GET", "/api/v3/avgPrice"): Endpoint(_w(2), "NONE", lambda ven, p, a: v.avg_price(ven, p)),
        ("GET", "/api/v3/ticker/24hr"): Endpoint(_by_symbol(2, 80), "NONE", lambda ven, p, a: v.ticker_24hr(ven, p)),
        ("GET", "/api/v3/ticker/price"): Endpoint(_by_symbol(2, 4), "NONE", lambda ven, p, a: v.ticker_price(ven, p)),
        ("GET", "/api/v3/ticker/bookTicker"): Endpoint(_by_symbol(2, 4), "NONE",
                                                       lambda ven, p, a: v.book_ticker(ven, p)),
        ("POST", "/api/v3/order"): Endpoint(_w(1), "SIGNED", lambda ven, p, a: v.new_order(ven, _acct(a), p),
                                            is_order=True),
        ("POST", "/api/v3/order/test"): Endpoint(_w(1), "SIGNED",
                                                 lambda ven, p, a: v.new_order(ven, _acct(a), p, test=True)),
        ("GET", "/api/v3/order"): Endpoint(_w(4), "SIGNED", lambda ven, p, a: v.query_order(ven, _acct(a), p)),
        ("DELETE", "/api/v3/order"): Endpoint(_w(1), "SIGNED", lambda ven, p, a: v.cancel_order(ven, _acct(a), p)),
        ("GET", "/api/v3/openOrders"): Endpoint(_by_symbol(6, 80), "SIGNED",
                                                lambda ven, p, a: v.open_orders(ven, _acct(a), p)),
        ("DELETE", "/api/v3/openOrders"): Endpoint(_w(1), "SIGNED", lambda ven, p, a: v.cancel_all(ven, _acct(a), p)),
        ("GET", "/api/v3/allOrders"): Endpoint(_w(20), "SIGNED", lambda ven, p, a: v.all_orders(ven, _acct(a), p)),
        ("GET", "/api/v3/myTrades"): Endpoint(_w(20), "SIGNED", lambda ven, p, a: v.my_trades(ven, _acct(a), p)),
        ("GET", "/api/v3/account"): Endpoint(_w(20), "SIGNED", lambda ven, p, a: v.account_info(ven, _acct(a), p)),
        ("GET", "/api/v3/account/commission"): Endpoint(_w(20), "SIGNED",
                                                        lambda ven, p, a: v.commission(ven, _acct(a), p)),
        ("GET", "/sapi/v1/system/status"): Endpoint(_w(1), "NONE", lambda ven, p, a: {"status": 0, "msg": "normal"}),
        ("GET", "/sapi/v1/asset/tradeFee"): Endpoint(_w(1), "SIGNED", lambda ven, p, a: [{
            "symbol": ven.symbol, "makerCommission": str(ven.maker_fee), "takerCommission": str(ven.taker_fee)}]),
    }


def _json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=json.dumps(body, separators=(",", ":")), status=status, headers=headers,
                        content_type="application/json", charset="UTF-8")


def _parse_params(query: str, body: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in (query, body):
        for key, value in parse_qsl(part, keep_blank_values=True):
            if key in params:
                raise BinanceError(-1101, "Duplicate values for a parameter detected.")
            params[key] = value
    return params


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        if hasattr(transport, "abort"):
            transport.abort()
        else:  # pragma: no cover - every asyncio transport has abort()
            transport.close()


# ================================================================================================ websockets
ConnKind = Literal["raw", "combined", "api"]


class WsConnection:
    """One websocket client: its streams / user-data subscriptions and an ordered, optionally delayed send queue."""

    def __init__(self, server: FakeExchangeServer, ws: web.WebSocketResponse, kind: ConnKind) -> None:
        self.server = server
        self.ws = ws
        self.kind: ConnKind = kind
        self.streams: set[str] = set()
        self.listen_keys: set[str] = set()  # user-data streams by listenKey (raw / combined connections)
        self.api_subs: dict[int, str] = {}  # WebSocket API subscriptionId -> apiKey
        self.session_key: str | None = None  # WebSocket API session.logon
        self._next_sub = 0
        self._dropped = False
        self.opened = time.monotonic()
        self.opened_ms = int(time.time() * 1000)
        self._queue: asyncio.Queue[tuple[float, str] | None] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the sender and the periodic-disconnect watchdog."""
        self._sender = asyncio.ensure_future(self._send_loop())
        self._closer = asyncio.ensure_future(self._disconnect_loop())

    async def stop(self) -> None:
        """Stop the background tasks."""
        for task in (self._sender, self._closer):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def new_subscription_id(self) -> int:
        """Return the next WebSocket API subscription id of this connection (0, 1, …)."""
        sub = self._next_sub
        self._next_sub += 1
        return sub

    def send(self, payload: Any, *, event: bool = True) -> None:
        """Queue a JSON message; events are delayed by the ``ws_delay_ms`` fault (order is kept)."""
        if self.ws.closed or self._dropped:
            return
        if self._queue.qsize() > 20_000:  # a consumer this slow would be disconnected by Binance too
            self._dropped = True
            self.server.spawn(self.ws.close(code=1008, message=b"slow consumer"))
            return
        delay = self.server.faults.config.ws_delay_ms / 1000 if event else 0.0
        self._queue.put_nowait((time.monotonic() + delay, json.dumps(payload, separators=(",", ":"))))

    def send_stream(self, stream: str, data: Any) -> None:
        """Queue a market/user stream event, wrapped as ``{"stream", "data"}`` on combined connections."""
        self.send({"stream": stream, "data": data} if self.kind == "combined" else data)

    async def _send_loop(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            due, text = item
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if self.ws.closed:
                return
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def _disconnect_loop(self) -> None:
        while not self.ws.closed:
            every = self.server.faults.config.ws_disconnect_every_s
            if every > 0 and time.monotonic() - self.opened >= every:
                self.server.faults.record("ws_disconnect")
                await self.ws.close(code=1001, message=b"fake-exchange: periodic disconnect")
                return
            await asyncio.sleep(0.05 if every > 0 else 0.25)


# ================================================================================================ server
class FakeExchangeServer:
    """The aiohttp app around a :class:`FakeVenue`; :meth:`start` / :meth:`stop` run it on a host and port."""

    def __init__(self, config: FakeExchangeConfig, venue: FakeVenue | None = None) -> None:
        self.config = config
        self.venue = venue if venue is not None else build_venue(config)
        self.faults = FaultInjector(FaultConfig(**config.faults.to_dict()), seed=config.seed)
        self._initial_faults = config.faults.to_dict()
        self.limiter = WeightLimiter(config.weight_limit, config.ban_after, config.ban_seconds)
        self.endpoints = _endpoints()
        self.connections: set[WsConnection] = set()
        self.listen_keys: dict[str, str] = {}  # listenKey -> apiKey
        self._stream_refs: Counter[str] = Counter()
        self._diff_book: tuple[dict[str, str], dict[str, str]] | None = None
        self._snapshot_sent: dict[str, float] = {}
        self._snapshot_timers: dict[str, asyncio.TimerHandle] = {}
        self._diff_version = 0
        self._clock_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Future[Any]] = set()
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.venue.public_sink = self._on_point
        self.venue.book_sink = self._on_book_change
        self.venue.user_sink = self._on_user_event
        self.app = self._build_app()

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run ``coro`` in the background, keeping a reference until it is done."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ---------------------------------------------------------------- app
    def _build_app(self) -> web.Application:
        app = web.Application()
        for (method, path) in self.endpoints:
            app.router.add_route(method, path, self._rest)
        for method in ("POST", "PUT", "DELETE"):
            app.router.add_route(method, "/api/v3/userDataStream", self._user_data_stream)
        app.router.add_get("/ws", self._ws_raw)
        app.router.add_get("/ws/{tail:.*}", self._ws_raw)
        app.router.add_get("/stream", self._ws_combined)
        app.router.add_get("/ws-api/v3", self._ws_api)
        app.router.add_get("/", self._index)
        app.router.add_get("/_fake/state", self._control(self._state))
        app.router.add_post("/_fake/advance", self._control(self._advance))
        app.router.add_get("/_fake/faults", self._control(self._get_faults))
        app.router.add_post("/_fake/faults", self._control(self._set_faults))
        app.router.add_post("/_fake/reset", self._control(self._reset))
        app.router.add_post("/_fake/clock", self._control(self._clock))
        app.router.add_get("/_fake/limits", self._control(self._get_limits))
        app.router.add_post("/_fake/limits", self._control(self._set_limits))
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_startup(self, _app: web.Application) -> None:
        self.venue.reanchor()
        self._clock_task = asyncio.ensure_future(self._clock_loop())

    async def _on_shutdown(self, _app: web.Application) -> None:
        if self._clock_task is not None:
            self._clock_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock_task
        for timer in self._snapshot_timers.values():
            timer.cancel()
        self._snapshot_timers.clear()
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001, message=b"server shutdown")
            await conn.stop()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start listening (``port`` 0 picks a free one); return the base URL ``http://host:port``."""
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        addr = self._runner.addresses[0]
        shown = f"[{addr[0]}]" if ":" in str(addr[0]) else addr[0]
        self.base_url = f"http://{shown}:{addr[1]}"
        return self.base_url

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _clock_loop(self) -> None:
        while True:
            wait = self.venue.seconds_until_next_point()
            if wait is None:
                await asyncio.sleep(0.05)
                continue
            if wait > 0:
                await asyncio.sleep(min(wait, 0.05))
                continue
            deadline = time.monotonic() + 0.01  # replay in 10 ms slices so requests keep being served
            while time.monotonic() < deadline and self.venue.replay_due_points(max_points=20):
                pass
            await asyncio.sleep(0)

    # ---------------------------------------------------------------- REST
    async def _rest(self, request: web.Request) -> web.StreamResponse:
        ep = self.endpoints[(request.method, request.path)]
        return await self._serve(request, ep.security, ep.weight, ep.handler, ep.is_order)

    async def _serve(
        self,
        request: web.Request,
        security: Security,
        weight: Callable[[dict[str, str]], int],
        handler: Handler,
        is_order: bool = False,
    ) -> web.StreamResponse:
        ip = request.remote or "?"
        query = request.query_string
        body = await request.text() if request.can_read_body else ""
        try:
            params = _parse_params(query, body)
        except BinanceError as exc:
            return _json_response(exc.body(), exc.status)
        used, limited, retry_after = self.limiter.charge(ip, weight(params))
        headers = {"x-mbx-used-weight": str(used), "x-mbx-used-weight-1m": str(used)}
        if limited is not None:
            headers["Retry-After"] = str(retry_after)
            return _json_response(limited.body(), limited.status, headers)
        faulty = self.faults.applies_to(signed=security != "NONE")
        if faulty:
            early = await self._early_fault(request, headers)
            if early is not None:
                return early
        account: Account | None = None
        try:
            account = self._authenticate(request, security, query, body, params)
            result = handler(self.venue, params, account)
            response = _json_response(result, 200, headers)
        except BinanceError as exc:
            response = _json_response(exc.body(), exc.status, headers)
        except Exception:  # a bug of the fake exchange: answer like Binance's generic failure, keep serving
            log.exception("fake-exchange: %s %s failed", request.method, request.path)
            response = _json_response({"code": -1000, "msg": E.UNKNOWN_ERROR}, 500, headers)
        if is_order and account is not None:
            now = time.time()
            account.order_times[:] = [t for t in account.order_times if t > now - 86_400]
            response.headers["x-mbx-order-count-10s"] = str(sum(1 for t in account.order_times if t > now - 10))
            response.headers["x-mbx-order-count-1d"] = str(len(account.order_times))
        if faulty and self.faults.lose_response():
            _abort(request)
        return response

    async def _early_fault(self, request: web.Request, headers: dict[str, str]) -> web.StreamResponse | None:
        fault = self.faults.before_request()
        if fault is None:
            return None
        if fault is HttpFault.DROP:
            _abort(request)
            return web.Response(status=500)
        if fault is HttpFault.TIMEOUT:
            await asyncio.sleep(self.faults.config.timeout_s)
            _abort(request)
            return web.Response(status=500)
        if fault is HttpFault.RATE_LIMIT:
            err = BinanceError(-1003, E.TOO_MUCH_WEIGHT.format(limit=self.limiter.limit), 429)
            return _json_response(err.body(), 429, {**headers, "Retry-After": "1"})
        if self.faults.choose(2) == 0:
            return _json_response({"code": -1001, "msg": E.INTERNAL_ERROR}, 503, headers)
        return web.Response(status=502, text="<html><body><h1>502 Bad Gateway</h1></body></html>",
                            content_type="text/html")

    def _api_key_account(self, api_key: str | None) -> Account:
        if not api_key or not api_key.isprintable() or len(api_key) > 256 or any(c.isspace() for c in api_key):
            raise BinanceError(-2014, E.API_KEY_FORMAT, 401)
        account = self.venue.accounts.get(api_key)
        if account is None:
            raise BinanceError(-2015, E.REJECTED_API_KEY, 401)
        return account

    def _check_timestamp(self, params: dict[str, Any]) -> None:
        raw_ts = params.get("timestamp")
        if raw_ts is None or raw_ts == "":
            raise E.mandatory("timestamp")
        try:
            ts = int(str(raw_ts))
        except ValueError:
            raise E.illegal_chars("timestamp", "^[0-9]{1,20}$") from None
        raw_window = params.get("recvWindow")
        window = 5000.0
        if raw_window not in (None, ""):
            try:
                window = float(str(raw_window))
            except ValueError:
                raise E.illegal_chars("recvWindow", "^[0-9]{1,20}$") from None
            if window > MAX_RECV_WINDOW or window <= 0:
                raise BinanceError(-1131, f"recvWindow must be less than {MAX_RECV_WINDOW}")
        wall = time.time() * 1000
        if ts >= wall + 1000:
            raise BinanceError(-1021, E.AHEAD_OF_SERVER)
        if wall - ts > window:
            raise BinanceError(-1021, E.OUTSIDE_RECV_WINDOW)

    def _authenticate(
        self, request: web.Request, security: Security, query: str, body: str, params: dict[str, str]
    ) -> Account | None:
        if security == "NONE":
            return None
        account = self._api_key_account(request.headers.get("X-MBX-APIKEY"))
        if security == "API_KEY":
            return account
        payload, signature = rest_payload(query, body)
        if not signature:
            raise E.mandatory("signature")
        if not signature_matches(account.spec.secret, payload, signature):
            raise BinanceError(-1022, E.INVALID_SIGNATURE)
        self._check_timestamp(params)
        return account

    async def _user_data_stream(self, request: web.Request) -> web.StreamResponse:
        """``POST/PUT/DELETE /api/v3/userDataStream``: the (legacy) listenKey flow."""
        method = request.method

        def handle(venue: FakeVenue, params: dict[str, str], account: Account | None) -> Any:
            acct = _acct(account)
            if method == "POST":
                for key, owner in self.listen_keys.items():
                    if owner == acct.api_key:
                        return {"listenKey": key}
                key = secrets.token_urlsafe(45)[:60].replace("-", "A").replace("_", "b")
                self.listen_keys[key] = acct.api_key
                return {"listenKey": key}
            key = params.get("listenKey") or ""
            if not key:
                raise E.mandatory("listenKey")
            if self.listen_keys.get(key) != acct.api_key:
                raise BinanceError(-1125, "This listenKey does not exist.")
            if method == "DELETE":
                del self.listen_keys[key]
                for conn in list(self.connections):
                    if key in conn.listen_keys:
                        self.spawn(conn.ws.close(code=1000, message=b"listenKey closed"))
            return {}

        return await self._serve(request, "API_KEY", _w(2), handle)

    # ---------------------------------------------------------------- control
    def _control(
        self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def guarded(request: web.Request) -> web.StreamResponse:
            remote = request.remote or ""
            if self.config.control_loopback_only and not remote.startswith(LOOPBACK):
                return _json_response({"error": "control endpoints answer loopback clients only"}, 403)
            try:
                return await handler(request)
            except (ValueError, TypeError) as exc:
                return _json_response({"error": str(exc)}, 400)

        return guarded

    async def _json_body(self, request: web.Request) -> dict[str, Any]:
        text = await request.text()
        if not text.strip():
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
        return data

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return _json_response({
            "name": "gridfleet fake-exchange (Binance spot protocol)",
            "symbol": self.venue.symbol,
            "rest": "/api/v3",
            "streams": ["/ws", "/stream"],
            "ws_api": "/ws-api/v3",
            "control": ["/_fake/state", "/_fake/advance", "/_fake/faults", "/_fake/reset", "/_fake/clock",
                        "/_fake/limits"],
        })

    async def _state(self, request: web.Request) -> web.StreamResponse:
        state = self.venue.state()
        state["faults"] = self.faults.snapshot()
        state["limits"] = self._limits()
        state["websockets"] = len(self.connections)
        return _json_response(state)

    async def _advance(self, request: web.Request) -> web.StreamResponse:
        data = await self._json_body(request)
        given = [k for k in ("points", "candles", "until") if data.get(k) is not None]
        if len(given) != 1:
            raise ValueError('give exactly one of {"points": N}, {"candles": N}, {"until": ms}')
        value = data[given[0]]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{given[0]} must be a non-negative integer")
        target = self.venue.target_seq(
            points=value if given[0] == "points" else None,
            candles=value if given[0] == "candles" else None,
            until_ms=value if given[0] == "until" else None,
        )
        replayed = 0
        while True:
            done = self.venue.advance_to(target, max_points=200)
            replayed += done
            if done == 0 or self.venue.replay.last.seq >= target:
                break
            await asyncio.sleep(0)  # let other requests and websocket senders run
        self.venue.reanchor()
        last = self.venue.replay.last
        return _json_response({"replayed": replayed, "time": self.venue.now(), "price": str(last.price),
                               "seq": last.seq, "candle": last.candle, "finished": self.venue.replay.finished})

    async def _get_faults(self, request: web.Request) -> web.StreamResponse:
        return _json_response(self.faults.snapshot())

    async def _set_faults(self, request: web.Request) -> web.StreamResponse:
        data = await self._json_body(request)
        seed = data.pop("seed", None)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed must be an integer")
        self.faults.config.update(data)
        if seed is not None:
            self.faults.reseed(seed)
        if "partial_fill" in data:
            pf = self.faults.config.partial_fill
            self.venue.set_participation(None if pf is None else Decimal(str(pf)))
        return _json_response(self.faults.snapshot())

    async def _reset(self, request: web.Request) -> web.StreamResponse:
        data = await self._json_body(request)
        self.venue.reset(rewind=bool(data.get("rewind", False)))
        self.limiter.reset()
        if data.get("faults", True):
            fresh = FaultConfig()
            fresh.update(self._initial_faults)
            self.faults.config = fresh
            self.faults.counts.clear()
            self.faults.reseed()
            pf = fresh.partial_fill
            self.venue.set_participation(None if pf is None else Decimal(str(pf)))
        return await self._state(request)

    async def _clock(self, request: web.Request) -> web.StreamResponse:
        data = await self._json_body(request)
        speed = data.get("speed")
        if isinstance(speed, bool) or not isinstance(speed, int | float):
            raise ValueError('give {"speed": candle-seconds per second} (0 = manual clock)')
        self.venue.set_speed(float(speed))
        return _json_response({"speed": self.venue.speed, "time": self.venue.now()})

    def _limits(self) -> dict[str, Any]:
        lim = self.limiter
        return {"weight_limit": lim.limit, "ban_after": lim.ban_after, "ban_seconds": lim.ban_seconds}

    async def _get_limits(self, request: web.Request) -> web.StreamResponse:
        return _json_response(self._limits())

    async def _set_limits(self, request: web.Request) -> web.StreamResponse:
        data = await self._json_body(request)
        unknown = set(data) - {"weight_limit", "ban_after", "ban_seconds", "reset"}
        if unknown:
            raise ValueError(f"unknown limit setting(s): {', '.join(sorted(unknown))}")
        for name in ("weight_limit", "ban_after"):
            if name in data:
                value = data[name]
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"{name} must be a non-negative integer")
                setattr(self.limiter, "limit" if name == "weight_limit" else name, value)
        if "weight_limit" in data:
            self.venue.weight_limit = int(data["weight_limit"])
        if "ban_seconds" in data:
            self.limiter.ban_seconds = float(data["ban_seconds"])
        if data.get("reset"):
            self.limiter.reset()
        return _json_response(self._limits())

    # ---------------------------------------------------------------- websocket endpoints
    async def _open_ws(self, request: web.Request, kind: ConnKind) -> tuple[web.WebSocketResponse, WsConnection]:
        ws = web.WebSocketResponse(heartbeat=self.config.ws_heartbeat_s or None, max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        conn = WsConnection(self, ws, kind)
        self.connections.add(conn)
        conn.start()
        return ws, conn

    async def _close_conn(self, conn: WsConnection) -> None:
        self.connections.discard(conn)
        for stream in conn.streams:
            self._stream_refs[stream] -= 1
            if self._stream_refs[stream] <= 0:
                del self._stream_refs[stream]
        conn.streams.clear()
        await conn.stop()

    def _add_streams(self, conn: WsConnection, names: list[str]) -> None:
        for name in names:
            if name in self.listen_keys:
                conn.listen_keys.add(name)
            elif name not in conn.streams:
                conn.streams.add(name)
                self._stream_refs[name] += 1
                if _is_diff_depth(name) and self._diff_book is None:
                    self._diff_book = self._book_strings()
                    self._diff_version = self.venue.book_version

    def _remove_streams(self, conn: WsConnection, names: list[str]) -> None:
        for name in names:
            conn.listen_keys.discard(name)
            if name in conn.streams:
                conn.streams.discard(name)
                self._stream_refs[name] -= 1
                if self._stream_refs[name] <= 0:
                    del self._stream_refs[name]
        if not any(_is_diff_depth(s) for s in self._stream_refs):
            self._diff_book = None

    async def _ws_raw(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info.get("tail", "")
        ws, conn = await self._open_ws(request, "raw")
        self._add_streams(conn, [s for s in tail.split("/") if _looks_like_stream(s) or s in self.listen_keys])
        return await self._stream_session(ws, conn)

    async def _ws_combined(self, request: web.Request) -> web.StreamResponse:
        names = [s for s in request.query.get("streams", "").split("/") if s]
        ws, conn = await self._open_ws(request, "combined")
        self._add_streams(conn, names)
        return await self._stream_session(ws, conn)

    async def _stream_session(self, ws: web.WebSocketResponse, conn: WsConnection) -> web.WebSocketResponse:
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._stream_request(conn, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            await self._close_conn(conn)
        return ws

    def _stream_request(self, conn: WsConnection, text: str) -> None:
        try:
            req = json.loads(text)
        except json.JSONDecodeError as exc:
            conn.send({"error": {"code": 3, "msg": f"Invalid JSON: {exc}"}, "id": None}, event=False)
            return
        if not isinstance(req, dict):
            conn.send({"error": {"code": 3, "msg": "Invalid JSON: expected an object"}, "id": None}, event=False)
            return
        req_id = req.get("id")
        method = req.get("method")
        params = req.get("params", [])
        if req_id is not None and (isinstance(req_id, bool) or not isinstance(req_id, int | str)):
            conn.send({"error": {"code": 1, "msg": "Invalid value type: expected u64 or string for 'id'"},
                       "id": None}, event=False)
            return
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                conn.send({"error": {"code": 2, "msg": "Invalid request: params must be a list of stream names"},
                           "id": req_id}, event=False)
                return
            if method == "SUBSCRIBE":
                self._add_streams(conn, params)
            else:
                self._remove_streams(conn, params)
            conn.send({"result": None, "id": req_id}, event=False)
        elif method == "LIST_SUBSCRIPTIONS":
            conn.send({"result": sorted(conn.streams | conn.listen_keys), "id": req_id}, event=False)
        elif method == "SET_PROPERTY":
            conn.send({"result": None, "id": req_id}, event=False)
        elif method == "GET_PROPERTY":
            conn.send({"result": conn.kind == "combined", "id": req_id}, event=False)
        else:
            conn.send({"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}, "id": req_id},
                      event=False)

    # ---------------------------------------------------------------- WebSocket API
    async def _ws_api(self, request: web.Request) -> web.StreamResponse:
        ws, conn = await self._open_ws(request, "api")
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._api_request(conn, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            await self._close_conn(conn)
        return ws

    def _rate_limits(self, ip: str = "?") -> list[dict[str, Any]]:
        return [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": self.limiter.limit, "count": self.limiter.used(ip)}]

    def _api_request(self, conn: WsConnection, text: str) -> None:
        try:
            req = json.loads(text)
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError:
            conn.send({"id": None, "status": 400, "error": {"code": -1135, "msg": "Invalid JSON Request"}},
                      event=False)
            return
        req_id = req.get("id")
        method = req.get("method")
        params = req.get("params") or {}
        try:
            if not isinstance(params, dict):
                raise BinanceError(-1135, "Invalid JSON Request")
            result = self._api_call(conn, str(method), params)
            conn.send({"id": req_id, "status": 200, "result": result, "rateLimits": self._rate_limits()},
                      event=False)
        except BinanceError as exc:
            conn.send({"id": req_id, "status": exc.status, "error": exc.body(), "rateLimits": self._rate_limits()},
                      event=False)
        except (ValueError, TypeError):
            conn.send({"id": req_id, "status": 400, "error": {"code": -1100, "msg": "Illegal characters found in a "
                                                                                    "parameter."}}, event=False)
        except Exception:
            log.exception("fake-exchange: WebSocket API %s failed", method)
            conn.send({"id": req_id, "status": 500, "error": {"code": -1000, "msg": E.UNKNOWN_ERROR}}, event=False)

    def _api_signed(self, conn: WsConnection, params: dict[str, Any]) -> Account:
        if "signature" not in params and conn.session_key is not None and "apiKey" not in params:
            account = self.venue.accounts.get(conn.session_key)
            if account is None:
                raise BinanceError(-2015, E.REJECTED_API_KEY, 401)
            self._check_timestamp(params)
            return account
        account = self._api_key_account(params.get("apiKey"))
        signature = params.get("signature")
        if not isinstance(signature, str) or not signature:
            raise E.mandatory("signature")
        if not signature_matches(account.spec.secret, ws_payload(params), signature):
            raise BinanceError(-1022, E.INVALID_SIGNATURE)
        self._check_timestamp(params)
        return account

    def _api_call(self, conn: WsConnection, method: str, raw: dict[str, Any]) -> Any:
        v = self.venue
        params = {k: _ws_str(val) for k, val in raw.items() if k not in ("apiKey", "signature")}
        public: dict[str, Callable[[dict[str, str]], Any]] = {
            "ping": lambda p: {},
            "time": lambda p: {"serverTime": int(time.time() * 1000)},
            "exchangeInfo": v.exchange_info,
            "depth": v.depth,
            "trades.recent": v.trades,
            "trades.historical": v.historical_trades,
            "trades.aggregate": v.agg_trades,
            "klines": v.klines,
            "uiKlines": v.klines,
            "avgPrice": v.avg_price,
            "ticker.24hr": v.ticker_24hr,
            "ticker.price": v.ticker_price,
            "ticker.book": v.book_ticker,
        }
        if method in public:
            return public[method](params)
        if method == "userDataStream.subscribe.signature":
            account = self._api_signed(conn, raw)
            sub = conn.new_subscription_id()
            conn.api_subs[sub] = account.api_key
            return {"subscriptionId": sub}
        if method == "session.logon":
            account = self._api_signed(conn, raw)
            conn.session_key = account.api_key
            return self._session_status(conn)
        if method == "session.status":
            return self._session_status(conn)
        if method == "session.logout":
            conn.session_key = None
            return self._session_status(conn)
        if method == "userDataStream.subscribe":
            if conn.session_key is None:
                raise BinanceError(-1002, "You are not authorized to execute this request.", 401)
            if conn.session_key in conn.api_subs.values():
                raise BinanceError(-2035, "User Data Stream subscription already active.")
            sub = conn.new_subscription_id()
            conn.api_subs[sub] = conn.session_key
            return {"subscriptionId": sub}
        if method == "userDataStream.unsubscribe":
            sub_raw = raw.get("subscriptionId")
            if sub_raw is None:
                if not conn.api_subs:
                    raise BinanceError(-2036, "User Data Stream subscription not active.")
                conn.api_subs.clear()
            else:
                if int(sub_raw) not in conn.api_subs:
                    raise BinanceError(-2036, "User Data Stream subscription not active.")
                del conn.api_subs[int(sub_raw)]
            return {}
        signed: dict[str, Callable[[Account, dict[str, str]], Any]] = {
            "order.place": v.new_order,
            "order.test": lambda a, p: v.new_order(a, p, test=True),
            "order.status": v.query_order,
            "order.cancel": v.cancel_order,
            "openOrders.status": v.open_orders,
            "openOrders.cancelAll": v.cancel_all,
            "allOrders": v.all_orders,
            "myTrades": v.my_trades,
            "account.status": v.account_info,
            "account.commission": v.commission,
        }
        if method in signed:
            account = self._api_signed(conn, raw)
            return signed[method](account, params)
        raise BinanceError(-1020, "This operation is not supported.")

    def _session_status(self, conn: WsConnection) -> dict[str, Any]:
        return {"apiKey": conn.session_key, "authorizedSince": None, "connectedSince": conn.opened_ms,
                "returnRateLimits": False, "serverTime": self.venue.now(), "userDataStream": bool(conn.api_subs)}

    # ---------------------------------------------------------------- fan-out
    def _on_user_event(self, account: Account, event: dict[str, Any]) -> None:
        for conn in self.connections:
            for sub, key in conn.api_subs.items():
                if key == account.api_key:
                    conn.send({"subscriptionId": sub, "event": event})
            for listen_key in conn.listen_keys:
                if self.listen_keys.get(listen_key) == account.api_key:
                    conn.send_stream(listen_key, event)

    def _publish(self, name: str, payload: Any) -> None:
        for conn in self.connections:
            if name in conn.streams:
                conn.send_stream(name, payload)

    def _on_point(self, point: PricePoint) -> None:
        if not self._stream_refs:
            return
        sym = self.venue.symbol.lower()
        for name in list(self._stream_refs):
            head, _, rest = name.partition("@")
            channel = rest.split("@")[0]
            if head == sym and channel == "trade":
                self._publish(name, self.venue.trade_event(point))
            elif head == sym and channel == "aggTrade":
                self._publish(name, self.venue.agg_trade_event(point))
            elif head == sym and channel == "bookTicker":
                self._publish(name, self.venue.book_ticker_event())
            elif self._snapshot_builder(name) is not None:
                self._emit_throttled(name)

    def _on_book_change(self) -> None:
        if not self._stream_refs:
            return
        sym = self.venue.symbol.lower()
        for name in list(self._stream_refs):
            head, _, rest = name.partition("@")
            channel = rest.split("@")[0]
            if head != sym:
                continue
            if channel == "bookTicker":
                self._publish(name, self.venue.book_ticker_event())
            elif channel in ("depth", "depth5", "depth10", "depth20"):
                self._emit_throttled(name)

    def _snapshot_builder(self, name: str) -> Callable[[], Any] | None:
        """Return the payload builder of a state-snapshot stream (tickers, klines, depth), or None."""
        v = self.venue
        if name == "!miniTicker@arr":
            return lambda: [v.mini_ticker_event()]
        if name == "!ticker@arr":
            return lambda: [v.ticker_event()]
        head, _, rest = name.partition("@")
        if head != v.symbol.lower():
            return None
        channel = rest.split("@")[0]
        if channel == "miniTicker":
            return v.mini_ticker_event
        if channel == "ticker":
            return v.ticker_event
        if channel.startswith("kline_"):
            interval = channel[len("kline_"):]
            return lambda: v.kline_event(interval)
        if channel in ("depth5", "depth10", "depth20"):
            levels = int(channel[len("depth"):])
            return lambda: v.partial_depth_event(levels)
        if channel == "depth":
            return self._depth_diff
        return None

    def _emit_throttled(self, name: str) -> None:
        """Publish a snapshot stream at most every SNAPSHOT_INTERVAL_S of wall time, always flushing the last state.

        Tickers, klines and depth are state snapshots Binance pushes every 100-1000 ms; sending one per replayed
        point would only cost CPU at high replay speeds.
        """
        now = time.monotonic()
        elapsed = now - self._snapshot_sent.get(name, 0.0)
        if elapsed >= SNAPSHOT_INTERVAL_S:
            self._flush_snapshot(name)
            return
        if name in self._snapshot_timers:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # driven outside the server's loop (tests of the venue): publish at once
            self._flush_snapshot(name)
            return
        self._snapshot_timers[name] = loop.call_later(SNAPSHOT_INTERVAL_S - elapsed, self._flush_snapshot, name)

    def _flush_snapshot(self, name: str) -> None:
        timer = self._snapshot_timers.pop(name, None)
        if timer is not None:
            timer.cancel()
        if name not in self._stream_refs:
            return
        build = self._snapshot_builder(name)
        payload = build() if build is not None else None
        self._snapshot_sent[name] = time.monotonic()
        if payload is not None:
            self._publish(name, payload)

    def _book_strings(self) -> tuple[dict[str, str], dict[str, str]]:
        bids, asks = self.venue.book(BOOK_LEVELS)
        return {f8(p): f8(q) for p, q in bids}, {f8(p): f8(q) for p, q in asks}

    def _depth_diff(self) -> dict[str, Any] | None:
        version = self.venue.book_version
        if self._diff_book is None or version == self._diff_version:
            return None
        old_bids, old_asks = self._diff_book
        new_bids, new_asks = self._book_strings()

        def changes(old: dict[str, str], new: dict[str, str]) -> list[list[str]]:
            out = [[p, q] for p, q in new.items() if old.get(p) != q]
            out += [[p, "0.00000000"] for p in old if p not in new]
            return out

        event = {"e": "depthUpdate", "E": self.venue.now(), "s": self.venue.symbol, "U": self._diff_version + 1,
                 "u": version, "b": changes(old_bids, new_bids), "a": changes(old_asks, new_asks)}
        self._diff_book = (new_bids, new_asks)
        self._diff_version = version
        return event


def _is_diff_depth(name: str) -> bool:
    parts = name.split("@")
    return len(parts) >= 2 and parts[1] == "depth"


def _looks_like_stream(name: str) -> bool:
    return "@" in name


def _ws_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


async def serve_forever(server: FakeExchangeServer, host: str, port: int, on_ready: Callable[[str], None]) -> None:
    """Run ``server`` on ``host:port`` until cancelled (Ctrl-C) or SIGTERM; ``on_ready`` gets the base URL."""
    import signal

    url = await server.start(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    on_ready(url)
    try:
        await stop.wait()
    finally:
        await server.stop()
