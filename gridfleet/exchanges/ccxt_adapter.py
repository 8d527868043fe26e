"""The venue interface over ccxt: any ccxt exchange, with tested defaults for Binance, OKX and Bybit spot.

Order safety (see ``docs/exchanges.md``):

* An order is placed **once**. A timeout or dropped connection raises :class:`NetworkError`: the outcome is
  *ambiguous* and the caller resolves it with :meth:`CcxtExchange.fetch_order` by client id.
* Reads (markets, balances, prices, orders, trades) are retried with exponential backoff
  (:func:`gridfleet.exchanges.retry.retrying`).
* Orders are rounded to the market grid (amount down to the step; a buy price down and a sell price up to the
  tick) and refused locally, without any request, when the venue would refuse them (min notional, min size).
* :meth:`CcxtExchange.fetch_order` returns None only when the venue says the order does not exist; a network
  error is raised, never reported as "not found".
* Every HTTP request draws from a :class:`~gridfleet.exchanges.ratelimit.RateLimiter` shared by all adapters
  of the same venue endpoint in the process; a 429/418 makes all of them back off.
* API secrets never reach logs, exception messages or ``repr``.

ccxt is untyped: its objects are ``Any`` at this boundary and converted at once into the value types of
:mod:`gridfleet.exchanges.base` (``Decimal`` via ``str()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.utils
import importlib
import logging
import re
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any, NoReturn, ParamSpec, TypeVar

import ccxt  # type: ignore[import-untyped,unused-ignore]
import ccxt.async_support  # type: ignore[import-untyped,unused-ignore]
import ccxt.pro  # type: ignore[import-untyped,unused-ignore]
from ccxt.base.decimal_to_precision import DECIMAL_PLACES, SIGNIFICANT_DIGITS  # type: ignore[import-untyped,unused-ignore]

from gridfleet.engine.types import OrderStatus, OrderType, PlaceOrder, Side
from gridfleet.exchanges.base import (
    AuthenticationError,
    Balance,
    ExchangeAdapter,
    ExchangeError,
    InsufficientFunds,
    InvalidOrder,
    NetworkError,
    OrderInfo,
    OrderNotFound,
    PriceUpdate,
    RateLimitError,
    TradeInfo,
)
from gridfleet.exchanges.ratelimit import RateLimiter, TokenBucket, shared_limiter
from gridfleet.exchanges.retry import backoff_delay, retrying
from gridfleet.markets import MarketRules, OrderRuleViolation

__all__ = [
    "CcxtExchange",
    "VenueProfile",
    "order_from_ccxt",
    "profile_for",
    "rewrite_api_urls",
    "trade_from_ccxt",
]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

ZERO = Decimal(0)


# ---------------------------------------------------------------------------------------------------------------
# Per-venue knowledge
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VenueProfile:
    """What differs between venues: ccxt options, client-id parameter names and rules, trade page size.

    The parameter names are the venue-native ones ccxt forwards (checked in ccxt 4.5 source): Binance
    ``newClientOrderId`` to place and ``origClientOrderId`` to query/cancel, OKX ``clOrdId``, Bybit
    ``orderLinkId``. Other venues use ccxt's unified ``clientOrderId``.
    """

    options: Mapping[str, Any] = field(default_factory=dict)
    create_param: str = "clientOrderId"
    fetch_param: str = "clientOrderId"
    cancel_param: str = "clientOrderId"
    client_id_pattern: str | None = None  # what the venue accepts (checked before sending)
    escape_client_id: bool = False  # venue accepts letters and digits only: escape the rest reversibly
    fetch_order_via_lists: bool = False  # no fetch-one-by-client-id endpoint: search open, then closed orders
    trade_client_id_keys: tuple[str, ...] = ("clientOrderId", "clOrdId", "orderLinkId")
    trades_page: int | None = None  # page size for fetch_my_trades pagination (None: one call)


PROFILES: dict[str, VenueProfile] = {
    "binance": VenueProfile(
        options={
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,  # a private endpoint that also needs sapi
            "fetchMargins": False,  # spot only: no margin pair lists on load_markets
            "defaultType": "spot",
        },
        create_param="newClientOrderId",
        fetch_param="origClientOrderId",
        cancel_param="origClientOrderId",
        client_id_pattern=r"^[.A-Z:/a-z0-9_-]{1,36}$",
        # user-data stream executionReport: "c" is the client id of the order that traded
        trade_client_id_keys=("clientOrderId", "c"),
        trades_page=1000,
    ),
    "okx": VenueProfile(
        options={"defaultType": "spot"},
        create_param="clOrdId",
        fetch_param="clOrdId",
        cancel_param="clOrdId",
        client_id_pattern=r"^[A-Za-z0-9]{1,32}$",
        escape_client_id=True,
        trade_client_id_keys=("clOrdId", "clientOrderId"),
        trades_page=100,
    ),
    "bybit": VenueProfile(
        options={"defaultType": "spot"},
        create_param="clientOrderId",
        fetch_param="orderLinkId",
        cancel_param="orderLinkId",
        client_id_pattern=r"^[A-Za-z0-9_-]{1,36}$",
        fetch_order_via_lists=True,
        trade_client_id_keys=("orderLinkId", "clientOrderId"),
        trades_page=100,
    ),
}

_DEFAULT_PROFILE = VenueProfile()


def profile_for(exchange_id: str) -> VenueProfile:
    """Return the venue profile of a ccxt exchange id (a neutral one for venues without specific defaults)."""
    return PROFILES.get(exchange_id.lower(), _DEFAULT_PROFILE)


_ESCAPES = {"-": "a", "_": "b", ".": "c", ":": "d", "/": "e", "Z": "Z"}
_UNESCAPES = {v: k for k, v in _ESCAPES.items()}


def encode_client_id(profile: VenueProfile, client_id: str) -> str:
    """Return the client id as sent to the venue; raise :class:`InvalidOrder` when the venue cannot take it.

    Venues that only take letters and digits (OKX) get a reversible escape: ``Z`` is the escape character,
    ``-`` → ``Za``, ``_`` → ``Zb``, ``.`` → ``Zc``, ``:`` → ``Zd``, ``/`` → ``Ze``, ``Z`` → ``ZZ``.
    """
    venue_id = client_id
    if profile.escape_client_id:
        parts = []
        for ch in client_id:
            if ch in _ESCAPES:
                parts.append("Z" + _ESCAPES[ch])
            else:
                parts.append(ch)
        venue_id = "".join(parts)
    if not client_id or (profile.client_id_pattern and not re.match(profile.client_id_pattern, venue_id)):
        raise InvalidOrder(f"CLIENT_ID: client id {client_id!r} is not accepted by the venue (as {venue_id!r})")
    return venue_id


def decode_client_id(profile: VenueProfile, venue_id: str | None) -> str:
    """Return gridfleet's client id from the venue's (inverse of :func:`encode_client_id`; total)."""
    if not venue_id:
        return ""
    if not profile.escape_client_id or "Z" not in venue_id:
        return venue_id
    out: list[str] = []
    i = 0
    while i < len(venue_id):
        ch = venue_id[i]
        if ch == "Z" and i + 1 < len(venue_id) and venue_id[i + 1] in _UNESCAPES:
            out.append(_UNESCAPES[venue_id[i + 1]])
            i += 2
        else:  # not one of ours: keep as is
            out.append(ch)
            i += 1
    return "".join(out)


# ---------------------------------------------------------------------------------------------------------------
# URLs (local fake exchange)
# ---------------------------------------------------------------------------------------------------------------

_URL_RE = re.compile(r"^(https?|wss?)://[^/]+", re.IGNORECASE)


def _rewrite_url(url: str, api_url: str) -> str:
    base = api_url.rstrip("/")
    http_base = base
    ws_base = re.sub(r"^http", "ws", base, flags=re.IGNORECASE)
    match = _URL_RE.match(url)
    if match is None:
        return url
    scheme = match.group(1).lower()
    target = ws_base if scheme.startswith("ws") else http_base
    return target + url[match.end():]


def rewrite_api_urls(urls: Any, api_url: str) -> Any:
    """Return ``urls`` (ccxt ``exchange.urls['api']``: str or nested dicts) pointed at ``api_url``.

    Each http(s) URL keeps its path and gets ``api_url`` as scheme and host; each ws(s) URL gets the websocket
    equivalent (``http`` → ``ws``, ``https`` → ``wss``).
    """
    if isinstance(urls, str):
        return _rewrite_url(urls, api_url)
    if isinstance(urls, dict):
        return {key: rewrite_api_urls(value, api_url) for key, value in urls.items()}
    if isinstance(urls, list):
        return [rewrite_api_urls(value, api_url) for value in urls]
    return urls


def _point_client_at(client: Any, api_url: str) -> None:
    point_ccxt_at: Any = None
    with contextlib.suppress(ImportError, AttributeError):  # the fake exchange knows Binance's URL layout best
        point_ccxt_at = importlib.import_module("gridfleet.fake_exchange.ccxt_urls").point_ccxt_at
    if point_ccxt_at is not None and client.id == "binance":
        point_ccxt_at(client, api_url)
        return
    client.urls["api"] = rewrite_api_urls(client.urls.get("api"), api_url)
    if "test" in client.urls:
        client.urls["test"] = rewrite_api_urls(client.urls["test"], api_url)


# ---------------------------------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------------------------------

_SECRET_FIELD_RE = re.compile(
    r"(?i)((?:signature|sign|apikey|api_key|api-key|secret|passphrase|password|x-mbx-apikey|ok-access-key|"
    r"ok-access-sign|ok-access-passphrase|x-bapi-api-key|x-bapi-sign)['\"]?\s*[:=]\s*['\"]?)[^&'\",\s}]+"
)


class Redactor:
    """Remove known secrets and signed-request fields from text (logs, error messages)."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """Return ``text`` without secrets."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return _SECRET_FIELD_RE.sub(r"\1***", text)


class _RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """The logger handed to ccxt: ccxt logs request headers (API key) at DEBUG; this scrubs them."""

    def __init__(self, base: logging.Logger, redact: Redactor) -> None:
        super().__init__(base, {})
        self._redact = redact

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = " ".join(str(part) for part in (msg, *args))
        kwargs.pop("exc_info", None)  # a traceback could carry the raw request
        self.logger.log(level, self._redact(text), **kwargs)


def _mask(key: str | None) -> str | None:
    if not key:
        return None
    return "***" + key[-4:] if len(key) >= 16 else "***"


# ---------------------------------------------------------------------------------------------------------------
# Conversions (pure)
# ---------------------------------------------------------------------------------------------------------------


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


_STATUS = {
    "open": OrderStatus.OPEN,
    "closed": OrderStatus.FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
    "expired": OrderStatus.EXPIRED,
}


def _status(raw: Any, filled: Decimal, fallback: OrderStatus) -> OrderStatus:
    # an unknown status ("canceling", ...) means the order is still live
    status = fallback if raw is None else _STATUS.get(str(raw).lower(), OrderStatus.OPEN)
    if status is OrderStatus.OPEN and filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    return status


def order_from_ccxt(
    raw: Mapping[str, Any],
    *,
    decode: Callable[[str | None], str] = lambda cid: cid or "",
    fallback: OrderInfo | None = None,
) -> OrderInfo:
    """Convert a ccxt order dict; ``fallback`` fills what the venue's answer leaves out (OKX/Bybit placements).

    ccxt status ``open``/``closed``/``canceled``/``rejected``/``expired`` map to :class:`OrderStatus`; an open
    order with a fill is ``PARTIALLY_FILLED``; a missing status is the fallback's (``OPEN`` by default).
    """
    info = raw.get("info")
    # a Binance cancel answer's clientOrderId is the id of the cancel request; the order's is origClientOrderId
    original = info.get("origClientOrderId") if isinstance(info, Mapping) else None
    client_id = decode(original or raw.get("clientOrderId")) or (fallback.client_id if fallback else "")
    exchange_id = str(raw.get("id") or (fallback.exchange_id if fallback else ""))
    symbol = raw.get("symbol") or (fallback.symbol if fallback else "")
    side_raw = raw.get("side")
    side = Side(str(side_raw).lower()) if side_raw else (fallback.side if fallback else Side.BUY)
    type_raw = raw.get("type")
    if type_raw:
        order_type = OrderType.MARKET if "market" in str(type_raw).lower() else OrderType.LIMIT
    else:
        order_type = fallback.type if fallback else OrderType.LIMIT
    amount = _dec(raw.get("amount"))
    if amount is None:
        amount = fallback.amount if fallback else ZERO
    price = _dec(raw.get("price"))
    if price is None or price == 0:
        price = fallback.price if fallback else None
    filled = _dec(raw.get("filled"))
    if filled is None:
        filled = fallback.filled if fallback else ZERO
    status = _status(raw.get("status"), filled, fallback.status if fallback else OrderStatus.OPEN)
    timestamp = _int(raw.get("timestamp") or raw.get("lastUpdateTimestamp"), fallback.timestamp if fallback else 0)
    average = _dec(raw.get("average"))
    if average is not None and average == 0:
        average = None
    return OrderInfo(
        client_id=client_id,
        exchange_id=exchange_id,
        symbol=str(symbol),
        side=side,
        type=order_type,
        amount=amount,
        price=price,
        filled=filled,
        status=status,
        timestamp=timestamp,
        average=average if average is not None else (fallback.average if fallback else None),
    )


def _fee(raw: Mapping[str, Any]) -> tuple[Decimal, str]:
    fee = raw.get("fee")
    if isinstance(fee, Mapping) and fee.get("cost") is not None:
        return _dec(fee.get("cost")) or ZERO, str(fee.get("currency") or "")
    fees = raw.get("fees") or []
    total = ZERO
    currency = ""
    for item in fees:
        if not isinstance(item, Mapping) or item.get("cost") is None:
            continue
        cost = _dec(item.get("cost")) or ZERO
        cur = str(item.get("currency") or "")
        if not currency or (total == 0 and cost != 0):
            if currency and cur != currency:
                total = ZERO
            currency = cur
        if cur == currency:
            total += cost
    return total, currency


def _trade_id(raw: Mapping[str, Any]) -> str:
    """Return the venue's trade id, or a deterministic one (order, time, price, amount) when it gives none."""
    trade_id = raw.get("id")
    if trade_id not in (None, ""):
        return str(trade_id)
    return ":".join(str(raw.get(key)) for key in ("order", "timestamp", "price", "amount"))


def trade_from_ccxt(raw: Mapping[str, Any], client_id: str) -> TradeInfo:
    """Convert a ccxt trade dict of one of our orders; the fee comes from ``fee`` or else ``fees``.

    With several fee currencies in ``fees`` (rare), the fee is the sum in the first non-zero currency. A trade
    without an id gets a deterministic one, so that applying it twice is still recognised.
    """
    fee, fee_currency = _fee(raw)
    return TradeInfo(
        trade_id=_trade_id(raw),
        client_id=client_id,
        exchange_order_id=str(raw.get("order") or ""),
        symbol=str(raw.get("symbol") or ""),
        side=Side(str(raw.get("side") or "buy").lower()),
        price=_dec(raw.get("price")) or ZERO,
        amount=_dec(raw.get("amount")) or ZERO,
        fee=fee,
        fee_currency=fee_currency,
        timestamp=_int(raw.get("timestamp")),
        is_maker=raw.get("takerOrMaker") == "maker",
    )


def _rules_from_market(market: Mapping[str, Any], precision_mode: Any) -> MarketRules:
    """Build :class:`MarketRules` from a ccxt market, converting DECIMAL_PLACES precision to tick sizes."""
    if precision_mode in (DECIMAL_PLACES, SIGNIFICANT_DIGITS):
        market = dict(market)
        precision = dict(market.get("precision") or {})
        for key in ("price", "amount"):
            value = precision.get(key)
            if value is None:
                continue
            if precision_mode == DECIMAL_PLACES:
                precision[key] = str(Decimal(1).scaleb(-int(value)))
            else:  # significant digits: no fixed grid
                precision[key] = None
        market["precision"] = precision
    return MarketRules.from_ccxt(dict(market))


def _retry_after(headers: Any) -> float | None:
    """Return the Retry-After of ccxt's last response headers, in seconds (number or HTTP date)."""
    if not isinstance(headers, Mapping):
        return None
    value = None
    for key, item in headers.items():
        if str(key).lower() == "retry-after":
            value = item
            break
    if value is None:
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# ---------------------------------------------------------------------------------------------------------------
# Error mapping
# ---------------------------------------------------------------------------------------------------------------

_ERROR_TABLE: tuple[tuple[type[BaseException], type[ExchangeError]], ...] = (
    (ccxt.InsufficientFunds, InsufficientFunds),
    (ccxt.OrderNotFound, OrderNotFound),
    (ccxt.AuthenticationError, AuthenticationError),  # + PermissionDenied, AccountSuspended
    (ccxt.InvalidOrder, InvalidOrder),
    (ccxt.BadRequest, InvalidOrder),  # + BadSymbol
    (ccxt.RateLimitExceeded, RateLimitError),
    (ccxt.DDoSProtection, RateLimitError),
    (ccxt.NetworkError, NetworkError),  # RequestTimeout, ExchangeNotAvailable, OnMaintenance, InvalidNonce
    (ccxt.OperationFailed, NetworkError),  # BadResponse, NullResponse, CancelPending
    (ccxt.ExchangeClosedByUser, NetworkError),
    (TimeoutError, NetworkError),
    (ConnectionError, NetworkError),
    (ccxt.BaseError, ExchangeError),
)


def _is_transport_failure(exc: BaseException) -> bool:
    """Return True for a generic ccxt ExchangeError raised by aiohttp failing mid-response (payload error)."""
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - ccxt depends on aiohttp
        return False
    return isinstance(exc.__cause__, aiohttp.ClientError)


def map_ccxt_error(exc: BaseException, *, context: str, redact: Callable[[str], str] = str) -> ExchangeError | None:
    """Return gridfleet's error for a ccxt (or transport) exception, None when it is not a venue error."""
    target: type[ExchangeError] | None = None
    if isinstance(exc, ccxt.ExchangeError) and _is_transport_failure(exc):
        target = NetworkError
    else:
        for source, mapped in _ERROR_TABLE:
            if isinstance(exc, source):
                target = mapped
                break
    if target is None:
        return None
    detail = redact(str(exc))
    if len(detail) > 500:
        detail = detail[:500] + "…"
    message = f"{context}: {type(exc).__name__}: {detail}"
    if target is RateLimitError:
        return RateLimitError(message)
    return target(message)


# ---------------------------------------------------------------------------------------------------------------
# The adapter
# ---------------------------------------------------------------------------------------------------------------


class _WsUnsupported(Exception):
    """The websocket method is not supported by this venue/ccxt build: fall back to polling."""


class _SeenIds:
    """The last ``size`` ids seen (bounded), for deduplicating stream events."""

    def __init__(self, size: int) -> None:
        self._order: deque[str] = deque(maxlen=size)
        self._set: set[str] = set()

    def __contains__(self, item: object) -> bool:
        return item in self._set

    def add(self, item: str) -> bool:
        """Record ``item``; return False when it is empty or was already seen."""
        if not item or item in self._set:
            return False
        if len(self._order) == self._order.maxlen:
            self._set.discard(self._order[0])
        self._order.append(item)
        self._set.add(item)
        return True


class CcxtExchange(ExchangeAdapter):
    """A ccxt exchange behind gridfleet's :class:`ExchangeAdapter` interface.

    * ``exchange_id``: any ccxt id; ``ccxt.pro`` is used when the venue has websockets (and ``websocket`` is
      True), ``ccxt.async_support`` otherwise (prices and own trades are then polled every ``poll_interval``).
    * ``api_url``: send REST and websocket traffic to another host (the local fake exchange).
    * ``options``: extra ccxt options, merged over the venue defaults (Binance spot: spot markets only, no
      currency endpoint; OKX/Bybit: spot default type; everywhere: ``adjustForTimeDifference``).
    * ``rate_limiter``: defaults to the process-wide limiter of ``(exchange_id, api_url)``.
    * ``client``: an already-built ccxt exchange object (tests, special set-ups); then the other connection
      arguments are ignored.
    * ``retry_attempts``, ``sleep``: retry policy of reads and the sleep used by retries and reconnects.
    """

    def __init__(
        self,
        exchange_id: str,
        *,
        api_key: str | None = None,
        secret: str | None = None,
        password: str | None = None,
        api_url: str | None = None,
        options: Mapping[str, Any] | None = None,
        sandbox: bool = False,
        rate_limiter: RateLimiter | None = None,
        websocket: bool = True,
        poll_interval: float = 2.0,
        timeout_ms: int = 10_000,
        retry_attempts: int = 5,
        rate_limit_backoff: float = 2.0,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        client: Any = None,
    ) -> None:
        self.id = exchange_id.lower()
        self.api_url = api_url
        self.profile = profile_for(self.id)
        self.poll_interval = poll_interval
        self._masked_key = _mask(api_key)
        self._redact = Redactor([api_key, secret, password])
        self._sleep = sleep
        self._retry_attempts = retry_attempts
        self._rate_limit_backoff = rate_limit_backoff
        self._closed = False
        self._rules: dict[str, MarketRules] = {}
        self._last_price: dict[str, Decimal] = {}
        self._cid_by_order: OrderedDict[str, str] = OrderedDict()
        if client is None:
            client = self._build_client(api_key, secret, password, options, timeout_ms, websocket)
            if sandbox:
                client.set_sandbox_mode(True)
            if api_url:
                _point_client_at(client, api_url)
        self._client: Any = client
        has = getattr(client, "has", {}) or {}
        self._ws_trades = websocket and bool(has.get("watchTrades"))
        self._ws_my_trades = websocket and bool(has.get("watchMyTrades"))
        self._ws_orders = websocket and bool(has.get("watchOrders"))
        self._limiter = rate_limiter or shared_limiter(self.id, api_url, factory=self._default_limiter)
        # every REST request ccxt makes (including the several behind load_markets) goes through our limiter
        if getattr(client, "enableRateLimit", True):
            client.throttle = self._throttle
        if hasattr(client, "logger"):
            client.logger = _RedactingLogger(logging.getLogger("ccxt"), self._redact)

    # ------------------------------------------------------------------ construction
    def _build_client(
        self,
        api_key: str | None,
        secret: str | None,
        password: str | None,
        options: Mapping[str, Any] | None,
        timeout_ms: int,
        websocket: bool,
    ) -> Any:
        if self.id not in ccxt.exchanges:
            raise ValueError(f"unknown ccxt exchange id {self.id!r}")
        use_pro = websocket and self.id in getattr(ccxt.pro, "exchanges", [])
        cls = getattr(ccxt.pro if use_pro else ccxt.async_support, self.id)
        merged: dict[str, Any] = {"adjustForTimeDifference": True}
        merged.update(self.profile.options)
        for key, value in (options or {}).items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        config: dict[str, Any] = {"enableRateLimit": True, "timeout": timeout_ms, "options": merged}
        for name, value in (("apiKey", api_key), ("secret", secret), ("password", password)):
            if value:
                config[name] = value
        return cls(config)

    def _default_limiter(self) -> RateLimiter:
        """Return a bucket matching ccxt's own calibration: ``1000 / rateLimit`` cost units per second."""
        rate_limit_ms = float(getattr(self._client, "rateLimit", 100) or 100)
        return TokenBucket.per_second(1000.0 / rate_limit_ms)

    async def _throttle(self, cost: Any = None) -> None:
        weight = float(cost) if cost else 1.0
        await self._limiter.acquire(weight)

    @property
    def client(self) -> Any:
        """Return the underlying ccxt exchange object (holds the credentials: never log it)."""
        return self._client

    def __repr__(self) -> str:
        return f"CcxtExchange(id={self.id!r}, api_url={self.api_url!r}, key={self._masked_key!r})"

    # ------------------------------------------------------------------ plumbing
    async def _fail(self, exc: BaseException, context: str) -> NoReturn:
        """Raise gridfleet's error for ``exc`` (back off on 429, resync the clock on a nonce error)."""
        mapped = map_ccxt_error(exc, context=f"{self.id} {context}", redact=self._redact)
        if mapped is None:
            raise exc
        if isinstance(mapped, RateLimitError):
            mapped.retry_after = _retry_after(getattr(self._client, "last_response_headers", None))
            await self._limiter.back_off(mapped.retry_after or self._rate_limit_backoff)
        elif isinstance(exc, ccxt.InvalidNonce) and not isinstance(exc, ccxt.ChecksumError):
            await self._resync_clock()
        logger.debug("%s", mapped)
        raise mapped from None

    async def _resync_clock(self) -> None:
        try:
            await self._client.load_time_difference()
            logger.warning("%s: request timestamp rejected; clock offset resynchronised", self.id)
        except Exception as exc:
            logger.warning("%s: clock resync failed: %s", self.id, self._redact(str(exc)))

    async def _call(self, context: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        try:
            return await fn(*args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._fail(exc, context)

    async def _read(self, fn: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a read with the retry policy (transient errors only)."""
        wrapped = retrying(attempts=self._retry_attempts, sleep=self._sleep, redact=self._redact)(fn)
        return await wrapped(*args, **kwargs)

    def _server_ms(self) -> int:
        """Return the venue's clock in ms (local clock corrected by ccxt's measured offset)."""
        millis = getattr(self._client, "milliseconds", None)
        now = int(millis()) if callable(millis) else int(time.time() * 1000)
        offset = (getattr(self._client, "options", {}) or {}).get("timeDifference") or 0
        return now - int(offset)

    async def _venue_ms(self) -> int:
        """Return the venue's own clock (``fetch_time``: the clock its trade timestamps use), else the local one."""
        if (getattr(self._client, "has", {}) or {}).get("fetchTime"):
            try:
                value = await self._read(self._call, "fetch_time", self._client.fetch_time)
                return _int(value, self._server_ms())
            except ExchangeError as exc:
                logger.warning("%s: fetch_time failed, using the local clock: %s", self.id, exc)
        return self._server_ms()

    def _remember(self, info: OrderInfo) -> OrderInfo:
        if info.exchange_id and info.client_id:
            self._cid_by_order[info.exchange_id] = info.client_id
            self._cid_by_order.move_to_end(info.exchange_id)
            while len(self._cid_by_order) > 20_000:
                self._cid_by_order.popitem(last=False)
        return info

    def _decode(self, venue_id: str | None) -> str:
        return decode_client_id(self.profile, venue_id)

    # ------------------------------------------------------------------ markets
    async def market(self, symbol: str) -> MarketRules:
        """Return the trading rules of ``symbol`` (loads markets on first use; retried)."""
        rules = self._rules.get(symbol)
        if rules is None:
            rules = await self._read(self._load_market, symbol)
            self._rules[symbol] = rules
        return rules

    async def _load_market(self, symbol: str) -> MarketRules:
        await self._call("load_markets", self._client.load_markets)
        try:
            market = self._client.market(symbol)
        except Exception as exc:
            await self._fail(exc, f"market {symbol}")
        return _rules_from_market(market, getattr(self._client, "precisionMode", None))

    # ------------------------------------------------------------------ account and prices
    async def fetch_balances(self) -> dict[str, Balance]:
        """Return non-zero balances by currency (retried)."""
        return await self._read(self._fetch_balances_once)

    async def _fetch_balances_once(self) -> dict[str, Balance]:
        raw = await self._call("fetch_balance", self._client.fetch_balance)
        free = raw.get("free") or {}
        used = raw.get("used") or {}
        out: dict[str, Balance] = {}
        for currency in sorted(set(free) | set(used)):
            balance = Balance(free=_dec(free.get(currency)) or ZERO, used=_dec(used.get(currency)) or ZERO)
            if balance.free or balance.used:
                out[currency] = balance
        return out

    async def fetch_price(self, symbol: str) -> PriceUpdate:
        """Return the last traded price of ``symbol`` from the ticker (retried)."""
        return await self._read(self._fetch_price_once, symbol)

    async def _fetch_price_once(self, symbol: str) -> PriceUpdate:
        ticker = await self._call(f"fetch_ticker {symbol}", self._client.fetch_ticker, symbol)
        price = _dec(ticker.get("last")) or _dec(ticker.get("close"))
        if price is None:
            raise NetworkError(f"{self.id} fetch_ticker {symbol}: no last price in the answer")
        self._last_price[symbol] = price
        return PriceUpdate(symbol=symbol, price=price, timestamp=_int(ticker.get("timestamp"), self._server_ms()))

    # ------------------------------------------------------------------ orders
    def _prepare(self, rules: MarketRules, order: PlaceOrder, symbol: str) -> tuple[Decimal, Decimal | None]:
        """Return (amount, price) on the market grid; raise InvalidOrder when the venue would refuse it."""
        is_market = order.type is OrderType.MARKET
        step = rules.market_step_size if is_market and rules.market_step_size else rules.step_size
        amount = order.amount
        if step is not None:
            amount = (amount / step).to_integral_value(rounding=ROUND_DOWN) * step
        price: Decimal | None = None
        if not is_market:
            if order.price is None:
                raise InvalidOrder(f"PRICE_FILTER: limit order {order.client_id} has no price")
            price = rules.floor_price(order.price) if order.side is Side.BUY else rules.ceil_price(order.price)
        reference = price if price is not None else (order.price or self._last_price.get(symbol))
        try:
            rules.check_order(amount, reference, is_market=is_market)
        except OrderRuleViolation as exc:
            raise InvalidOrder(f"{exc.code}: {exc}") from None
        return amount, price

    async def create_order(self, symbol: str, order: PlaceOrder) -> OrderInfo:
        """Place ``order`` once, with its client id. Never retried.

        Raises :class:`InvalidOrder` locally (nothing sent) when the order breaks a market rule or the client id
        is not accepted by the venue; :class:`NetworkError` when the outcome is unknown (resolve it with
        :meth:`fetch_order`); :class:`InsufficientFunds`/:class:`InvalidOrder` when the venue refused it.
        """
        rules = await self.market(symbol)
        amount, price = self._prepare(rules, order, symbol)
        venue_id = encode_client_id(self.profile, order.client_id)
        params = {self.profile.create_param: venue_id}
        sent = OrderInfo(
            client_id=order.client_id, exchange_id="", symbol=symbol, side=order.side, type=order.type,
            amount=amount, price=price, filled=ZERO, status=OrderStatus.OPEN, timestamp=self._server_ms(),
        )
        try:
            raw = await self._client.create_order(
                symbol, order.type.value, order.side.value, float(amount),
                float(price) if price is not None else None, params,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if map_ccxt_error(exc, context="") is None:  # an unexpected error after sending: outcome unknown
                raise NetworkError(
                    f"{self.id} create_order {order.client_id}: outcome unknown ({type(exc).__name__})"
                ) from None
            await self._fail(exc, f"create_order {order.client_id}")
        return self._remember(order_from_ccxt(raw, decode=self._decode, fallback=sent))

    async def _fetch_raw_order(self, symbol: str, *, client_id: str | None = None,
                               order_id: str | None = None) -> Any:
        """Return the venue's order (ccxt dict) by client id or exchange id; ccxt.OrderNotFound when unknown."""
        if self.profile.fetch_order_via_lists:
            key, value = (self.profile.fetch_param, client_id) if client_id else ("orderId", order_id)
            params = {key: value}
            found = await self._client.fetch_open_orders(symbol, None, None, params)
            if not found:
                closed = getattr(self._client, "fetch_canceled_and_closed_orders", None)
                if closed is None:
                    closed = self._client.fetch_closed_orders
                found = await closed(symbol, None, None, params)
            if not found:
                raise ccxt.OrderNotFound(f"order {client_id or order_id} not found")
            return found[0]
        if client_id is not None:
            return await self._client.fetch_order(None, symbol, {self.profile.fetch_param: client_id})
        return await self._client.fetch_order(order_id, symbol)

    async def fetch_order(self, symbol: str, client_id: str) -> OrderInfo | None:
        """Return the order with this client id, or None when the venue says it does not exist (retried).

        A network failure raises :class:`NetworkError`: it is never taken for "not found".
        """
        return await self._read(self._fetch_order_once, symbol, client_id)

    async def _fetch_order_once(self, symbol: str, client_id: str) -> OrderInfo | None:
        venue_id = encode_client_id(self.profile, client_id)
        try:
            raw = await self._fetch_raw_order(symbol, client_id=venue_id)
        except ccxt.OrderNotFound:
            return None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._fail(exc, f"fetch_order {client_id}")
        return self._remember(order_from_ccxt(raw, decode=self._decode))

    async def cancel_order(self, symbol: str, client_id: str) -> OrderInfo | None:
        """Cancel by client id; return the final order, or None when it was not open any more.

        Venues that only acknowledge a cancel (OKX, Bybit) are read back by client id, up to three times, until
        the order is final; the last state read is returned. Not retried: on :class:`NetworkError` the caller
        checks with :meth:`fetch_order`.
        """
        venue_id = encode_client_id(self.profile, client_id)
        try:
            raw = await self._client.cancel_order(None, symbol, {self.profile.cancel_param: venue_id})
        except ccxt.OrderNotFound:
            return None
        except ccxt.InvalidOrder as exc:
            # e.g. Bybit "order has been finished or canceled": not open any more unless the venue shows it open
            current = await self.fetch_order(symbol, client_id)
            if current is None or current.status.is_final:
                return None
            await self._fail(exc, f"cancel_order {client_id}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._fail(exc, f"cancel_order {client_id}")
        if raw and raw.get("status") and raw.get("amount") is not None:
            # canceled by this client id: some venues answer with the cancel request's own id
            return self._remember(dataclasses.replace(order_from_ccxt(raw, decode=self._decode), client_id=client_id))
        # OKX and Bybit only acknowledge the request: read the final state
        order: OrderInfo | None = None
        for attempt in range(1, 4):
            order = await self.fetch_order(symbol, client_id)
            if order is None or order.status.is_final:
                break
            await self._sleep(backoff_delay(attempt, base_delay=0.2, jitter=0.0))
        return order

    async def fetch_open_orders(self, symbol: str) -> list[OrderInfo]:
        """Return every open order of the account on ``symbol`` (retried)."""
        return await self._read(self._fetch_open_orders_once, symbol)

    async def _fetch_open_orders_once(self, symbol: str) -> list[OrderInfo]:
        raws = await self._call(f"fetch_open_orders {symbol}", self._client.fetch_open_orders, symbol)
        return [self._remember(order_from_ccxt(raw, decode=self._decode)) for raw in raws or []]

    # ------------------------------------------------------------------ own trades
    async def fetch_my_trades(self, symbol: str, since: int | None = None) -> list[TradeInfo]:
        """Return the account's executions on ``symbol`` since ``since`` ms, oldest first (retried, paginated)."""
        raws = await self._read(self._fetch_my_trades_raw, symbol, since)
        trades = [await self._trade(raw, symbol) for raw in raws]
        return sorted(trades, key=lambda t: (t.timestamp, t.trade_id))

    async def _fetch_my_trades_raw(self, symbol: str, since: int | None) -> list[Any]:
        page = self.profile.trades_page
        out: list[Any] = []
        seen: set[str] = set()
        cursor = since
        for _ in range(100):
            batch = await self._call(f"fetch_my_trades {symbol}", self._client.fetch_my_trades, symbol, cursor, page)
            fresh = [t for t in batch or [] if _trade_id(t) not in seen]
            out.extend(fresh)
            seen.update(_trade_id(t) for t in fresh)
            if page is None or len(batch or []) < page or not fresh:
                break
            cursor = max(_int(t.get("timestamp")) for t in batch)
        return out

    async def _trade(self, raw: Mapping[str, Any], symbol: str) -> TradeInfo:
        return trade_from_ccxt(raw, await self._trade_client_id(raw, symbol))

    async def _trade_client_id(self, raw: Mapping[str, Any], symbol: str) -> str:
        """Return the client id of the order a trade belongs to ("" when it cannot be found)."""
        direct = raw.get("clientOrderId")
        if direct:
            return self._decode(direct)
        info = raw.get("info") or {}
        if isinstance(info, Mapping):
            for key in self.profile.trade_client_id_keys:
                value = info.get(key)
                if isinstance(value, str) and value:
                    return self._decode(value)
        order_id = str(raw.get("order") or "")
        if not order_id:
            return ""
        cached = self._cid_by_order.get(order_id)
        if cached:
            return cached
        try:  # Binance REST trades carry no client id: look the order up once
            order_raw = await self._read(self._fetch_raw_order_mapped, symbol, order_id)
        except ExchangeError as exc:
            logger.warning("%s: no client id for trade %s of order %s: %s", self.id, raw.get("id"), order_id, exc)
            return ""
        if order_raw is None:
            return ""
        return self._remember(order_from_ccxt(order_raw, decode=self._decode)).client_id

    async def _fetch_raw_order_mapped(self, symbol: str, order_id: str) -> Any:
        try:
            return await self._fetch_raw_order(symbol, order_id=order_id)
        except ccxt.OrderNotFound:
            return None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._fail(exc, f"fetch_order id={order_id}")

    # ------------------------------------------------------------------ streams
    async def _ws_batches(
        self,
        label: str,
        watch: Callable[[], Awaitable[Any]],
        pending: Callable[[], list[Any]] = list,
    ) -> AsyncIterator[list[Any] | None]:
        """Yield batches from a ccxt ``watch_*`` call forever, reconnecting with backoff.

        Before each new ``watch`` call, ``pending()`` is asked for items ccxt has already cached but not returned:
        ccxt.pro resolves a watch only on the *next* message, so the last event of a burst would otherwise wait
        for the following one. Yields None once per failure, before waiting, so the caller can fill the gap by
        REST. Raises :class:`_WsUnsupported` when the venue does not support the method, and the mapped error
        for authentication or bad-symbol failures (a reconnect cannot fix those).
        """
        failures = 0
        while not self._closed:
            cached = pending()
            if cached:
                yield cached
                continue
            try:
                batch = await watch()
            except asyncio.CancelledError:
                raise
            except ccxt.NotSupported:
                raise _WsUnsupported(label) from None
            except Exception as exc:
                mapped = map_ccxt_error(exc, context=f"{self.id} {label}", redact=self._redact)
                if isinstance(mapped, AuthenticationError | InvalidOrder):
                    raise mapped from None
                if self._closed:
                    return
                failures += 1
                delay = backoff_delay(failures, base_delay=0.5, max_delay=30.0)
                logger.warning("%s %s stream failed (%s); reconnecting in %.1fs", self.id, label,
                               mapped or self._redact(repr(exc)), delay)
                yield None
                await self._sleep(delay)
                continue
            failures = 0
            yield list(batch or [])

    def _cached_unseen(self, symbol: str, seen: _SeenIds, *, mine: bool) -> list[Any]:
        """Return trades of ``symbol`` in ccxt's websocket cache that are newer than the last one seen."""
        if mine:
            cache = getattr(self._client, "myTrades", None)
        else:
            by_symbol = getattr(self._client, "trades", None)
            cache = by_symbol.get(symbol) if isinstance(by_symbol, Mapping) else None
        if not cache:
            return []
        out: list[Any] = []
        try:
            for item in reversed(cache):
                if not isinstance(item, Mapping) or item.get("symbol") != symbol:
                    continue
                trade_id = str(item.get("id") or "")
                if not trade_id or trade_id in seen or len(out) >= 1000:
                    break
                out.append(item)
        except (TypeError, RuntimeError):  # not a sequence, or mutated while read
            return []
        out.reverse()
        return out

    async def watch_prices(self, symbol: str) -> AsyncIterator[PriceUpdate]:
        """Yield a price update per public trade (websocket), or poll the ticker every ``poll_interval``.

        The stream reconnects with backoff after errors and fills each outage with a REST ticker read.
        """
        last_ts = 0
        seen = _SeenIds(5000)
        if self._ws_trades:
            try:
                async for batch in self._ws_batches(
                    f"trades {symbol}",
                    lambda: self._client.watch_trades(symbol),
                    lambda: self._cached_unseen(symbol, seen, mine=False),
                ):
                    if batch is None:
                        try:
                            update = await self._fetch_price_once(symbol)
                        except ExchangeError:
                            continue
                        if update.timestamp >= last_ts:
                            last_ts = update.timestamp
                            yield update
                        continue
                    for trade in batch:
                        trade_id = str(trade.get("id") or "")
                        if trade_id and not seen.add(trade_id):
                            continue
                        price = _dec(trade.get("price"))
                        if price is None:
                            continue
                        ts = _int(trade.get("timestamp"), self._server_ms())
                        last_ts = max(last_ts, ts)
                        self._last_price[symbol] = price
                        yield PriceUpdate(symbol=symbol, price=price, timestamp=ts, volume=_dec(trade.get("amount")))
                return
            except _WsUnsupported:
                logger.warning("%s: no websocket trades for %s, polling the ticker", self.id, symbol)
        while not self._closed:
            try:
                update = await self.fetch_price(symbol)
            except NetworkError as exc:  # already retried: keep polling
                logger.warning("%s: price poll failed: %s", self.id, exc)
            else:
                if update.timestamp >= last_ts:
                    last_ts = update.timestamp
                    yield update
            await self._sleep(self.poll_interval)

    async def watch_my_trades(self, symbol: str) -> AsyncIterator[TradeInfo]:
        """Yield the account's executions on ``symbol`` as they happen.

        Websocket ``watch_my_trades`` when available; else ``watch_orders`` used as a trigger to read the new
        trades by REST (so trade ids are always the venue's); else REST polling every ``poll_interval``. After a
        stream failure the gap is filled by REST. Trades are deduplicated by id; the runtime also reconciles by
        REST, so a lost event is not fatal.
        """
        seen = _SeenIds(10_000)
        # REST reads (gaps, polling) continue from the newest trade seen. The stream starts by marking the trades
        # that already exist as seen (the runtime reconciles those), so no clock comparison is needed: a venue
        # whose trade timestamps are not its server time (a replaying simulator) works too.
        cursor: int | None = None

        def fresh(raws: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
            nonlocal cursor
            out = []
            for raw in raws:
                if raw.get("symbol") not in (None, symbol) or not seen.add(_trade_id(raw)):
                    continue
                stamp = _int(raw.get("timestamp"))
                cursor = stamp if cursor is None else max(cursor, stamp)
                out.append(raw)
            return sorted(out, key=lambda r: (_int(r.get("timestamp")), str(r.get("id"))))

        try:
            fresh(await self._read(self._fetch_my_trades_raw, symbol, None))
        except NetworkError as exc:
            logger.warning("%s: my-trades priming read failed: %s", self.id, exc)

        async def rest_gap() -> list[Mapping[str, Any]]:
            try:
                return fresh(await self._read(self._fetch_my_trades_raw, symbol, cursor))
            except NetworkError as exc:
                logger.warning("%s: my-trades read failed: %s", self.id, exc)
                return []

        if self._ws_my_trades or self._ws_orders:
            use_trades = self._ws_my_trades
            label = f"{'my trades' if use_trades else 'orders'} {symbol}"

            async def watch() -> Any:
                if use_trades:
                    return await self._client.watch_my_trades(symbol)
                return await self._client.watch_orders(symbol)

            def pending() -> list[Any]:
                return self._cached_unseen(symbol, seen, mine=True) if use_trades else []

            filled: dict[str, Decimal] = {}
            try:
                async for batch in self._ws_batches(label, watch, pending):
                    if batch is None:
                        raws = await rest_gap()
                    elif use_trades:
                        raws = fresh(batch)
                    else:  # an order's filled amount grew: read the new trades (with real ids) by REST
                        grew = False
                        for order in batch:
                            oid = str(order.get("id") or "")
                            amount = _dec(order.get("filled")) or ZERO
                            if oid and amount > filled.get(oid, ZERO):
                                grew = True
                            if oid:
                                filled[oid] = amount
                                cid = self._decode(order.get("clientOrderId"))
                                if cid:
                                    self._cid_by_order[oid] = cid
                        raws = await rest_gap() if grew else []
                    for raw in raws:
                        yield await self._trade(raw, symbol)
                return
            except _WsUnsupported:
                logger.warning("%s: no websocket user stream for %s, polling trades", self.id, symbol)
        while not self._closed:
            for raw in await rest_gap():
                yield await self._trade(raw, symbol)
            await self._sleep(self.poll_interval)

    # ------------------------------------------------------------------ life cycle
    async def close(self) -> None:
        """Close HTTP sessions and websockets; running streams end."""
        self._closed = True
        try:
            await self._client.close()
        except Exception as exc:  # closing must not fail the caller
            logger.warning("%s: error while closing: %s", self.id, self._redact(str(exc)))
