"""Public market data (rules, last price, candles) read through ccxt, cached, with short timeouts.

Every read builds a :class:`~gridfleet.exchanges.ccxt_adapter.CcxtExchange` without keys (public endpoints only),
pointed at the exchange account's ``api_url`` when one is given (e.g. the local fake exchange), runs one request
with a short timeout and closes it. Answers are cached in Django's cache (Redis in production, memory in the
embedded server): market rules for an hour, the last price for a few seconds, candles for about one candle
(at most a minute). A venue that cannot be reached is remembered for :data:`DOWN_TTL` seconds so that a page
(or a fuzzer) asking again gets the same clear error at once instead of waiting for another timeout.

Errors: :class:`VenueUnavailable` (status 503: no answer, network down, rate limited) and :class:`VenueError`
(status 502: the venue answered with an error); an unknown symbol or timeframe is :class:`UnknownMarket` (400).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.cache import cache

from gridfleet.markets import MarketRules

log = logging.getLogger(__name__)
T = TypeVar("T")

REQUEST_TIMEOUT_MS = 5_000
"""ccxt's per-request timeout."""
TOTAL_TIMEOUT_S = 8.0
"""Upper bound of one read (load_markets may take several requests)."""
DOWN_TTL = 20
"""Seconds a venue that could not be reached is answered from memory (same error, no new attempt)."""
RULES_TTL = 3600
TICKER_TTL = 5
MAX_CANDLES = 1000

TIMEFRAMES_MS = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
    "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000,
    "3d": 259_200_000, "1w": 604_800_000, "1M": 2_592_000_000,
}
RULE_FIELDS = ("tick_size", "step_size", "min_qty", "max_qty", "min_price", "max_price", "min_notional",
               "max_notional", "market_step_size", "market_max_qty")


class MarketDataError(Exception):
    """A market-data read failed; ``status`` is the HTTP status the API answers with."""

    status = 502

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class VenueUnavailable(MarketDataError):
    """The venue did not answer (no network, timeout, maintenance, rate limit)."""

    status = 503


class VenueError(MarketDataError):
    """The venue answered with an error."""

    status = 502


class UnknownMarket(MarketDataError):
    """The venue does not trade this symbol (or offer this timeframe)."""

    status = 400

    def __init__(self, message: str, field: str = "symbol") -> None:
        super().__init__(message)
        self.field = field


def known_exchanges() -> list[str]:
    """Return the ccxt exchange ids."""
    import ccxt  # type: ignore[import-untyped]

    return list(ccxt.exchanges)


def _key(*parts: Any) -> str:
    text = "|".join(str(p) for p in parts)
    return "gridfleet:market:" + hashlib.sha256(text.encode()).hexdigest()[:40]


def _timeout_s() -> float:
    return float(getattr(settings, "GRIDFLEET_MARKET_TIMEOUT_S", TOTAL_TIMEOUT_S))


async def _with_venue(exchange: str, api_url: str | None, fn: Callable[[Any], Awaitable[T]],
                      keys: dict[str, str] | None = None) -> T:
    from gridfleet.exchanges.ccxt_adapter import CcxtExchange

    timeout_ms = min(REQUEST_TIMEOUT_MS, int(_timeout_s() * 1000))
    keys = keys or {}
    venue = CcxtExchange(exchange, api_key=keys.get("apiKey"), secret=keys.get("secret"),
                         password=keys.get("password"), api_url=api_url, websocket=False, retry_attempts=1,
                         timeout_ms=timeout_ms)
    try:
        return await asyncio.wait_for(fn(venue), _timeout_s())
    finally:
        try:
            await asyncio.wait_for(venue.close(), 2)
        except Exception:  # closing a dead connection never hides the answer
            log.debug("closing the %s market-data client failed", exchange, exc_info=True)


def _read(exchange: str, api_url: str | None, what: str, fn: Callable[[Any], Awaitable[T]],
          keys: dict[str, str] | None = None) -> T:
    """Run ``fn(venue)``; map every failure to a :class:`MarketDataError` (remembering unreachable venues).

    With ``keys`` (an account's credentials) every message is scrubbed of them and of request signatures.
    """
    from gridfleet.exchanges.base import AuthenticationError, ExchangeError, InvalidOrder, NetworkError
    from gridfleet.exchanges.ccxt_adapter import map_ccxt_error

    def _short(exc: BaseException) -> str:
        return _scrub(_first_line(exc), list((keys or {}).values()))

    down_key = _key("down", exchange, api_url or "")
    down = cache.get(down_key)
    if down is not None:
        raise VenueUnavailable(str(down))
    where = f"{exchange}" + (f" at {api_url}" if api_url else "")
    try:
        return async_to_sync(_with_venue)(exchange, api_url, fn, keys)
    except MarketDataError:
        raise
    except AuthenticationError as exc:
        raise VenueError(f"{where} refused the account's API key ({what}): {_short(exc)}") from None
    except TimeoutError:
        message = f"{where} did not answer within {_timeout_s():g} s ({what})"
        cache.set(down_key, message, DOWN_TTL)
        raise VenueUnavailable(message) from None
    except InvalidOrder as exc:
        raise UnknownMarket(f"{where}: {_short(exc)}") from None
    except NetworkError as exc:
        message = f"cannot reach {where} ({what}): {_short(exc)}"
        cache.set(down_key, message, DOWN_TTL)
        raise VenueUnavailable(message) from None
    except ExchangeError as exc:
        raise VenueError(f"{where} refused {what}: {_short(exc)}") from None
    except Exception as exc:
        mapped = map_ccxt_error(exc, context=what)
        if isinstance(mapped, InvalidOrder):
            raise UnknownMarket(f"{where}: {_short(mapped)}") from None
        if isinstance(mapped, NetworkError):
            message = f"cannot reach {where} ({what}): {_short(mapped)}"
            cache.set(down_key, message, DOWN_TTL)
            raise VenueUnavailable(message) from None
        log.warning("market data %s from %s failed: %s: %s", what, where, type(exc).__name__, exc)
        raise VenueError(f"{where}: {what} failed ({type(exc).__name__})") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _scrub(text: str, secrets: list[str]) -> str:
    """Remove credentials and request signatures from a message meant for the user; cut it to 300 characters."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = re.sub(r"(?i)(signature|sign|apikey|api_key|secret|passphrase)=[^&\s]*", r"\1=***", text)
    return text[:300]


def plain(value: Decimal) -> str:
    """Return ``value`` as a plain decimal string without trailing zeros (``5.0`` → ``5``, ``0.010`` → ``0.01``)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def rules_to_dict(rules: MarketRules) -> dict[str, str | None]:
    """Return the rules as cacheable strings."""
    out: dict[str, str | None] = {"symbol": rules.symbol, "base": rules.base, "quote": rules.quote}
    for name in RULE_FIELDS:
        value = getattr(rules, name)
        out[name] = None if value is None else plain(value)
    return out


def rules_from_dict(data: dict[str, Any]) -> MarketRules:
    """Rebuild :class:`MarketRules` from :func:`rules_to_dict`."""
    values = {name: (None if data.get(name) is None else Decimal(str(data[name]))) for name in RULE_FIELDS}
    return MarketRules(symbol=str(data["symbol"]), base=str(data["base"]), quote=str(data["quote"]), **values)


def market_rules(exchange: str, symbol: str, api_url: str | None = None) -> MarketRules:
    """Return the precision and limits of ``symbol`` (ccxt ``load_markets``; cached for an hour)."""
    key = _key("rules", exchange, api_url or "", symbol)
    cached = cache.get(key)
    if cached is not None:
        return rules_from_dict(cached)

    async def load(venue: Any) -> MarketRules:
        rules: MarketRules = await venue.market(symbol)
        return rules

    rules = _read(exchange, api_url, f"markets ({symbol})", load)
    cache.set(key, rules_to_dict(rules), RULES_TTL)
    return rules


def last_price(exchange: str, symbol: str, api_url: str | None = None) -> dict[str, Any]:
    """Return ``{"price": Decimal, "timestamp": ms}`` of ``symbol`` (ticker; cached a few seconds)."""
    key = _key("ticker", exchange, api_url or "", symbol)
    cached = cache.get(key)
    if cached is not None:
        return {"price": Decimal(cached["price"]), "timestamp": int(cached["timestamp"])}

    async def fetch(venue: Any) -> dict[str, Any]:
        await venue.market(symbol)  # an unknown symbol is a clear 400, not a ticker error
        update = await venue.fetch_price(symbol)
        return {"price": update.price, "timestamp": update.timestamp}

    out = _read(exchange, api_url, f"ticker {symbol}", fetch)
    cache.set(key, {"price": str(out["price"]), "timestamp": out["timestamp"]}, TICKER_TTL)
    return out


def _num(value: Any) -> str:
    """Return a candle number as an exact decimal string (floats through their shortest repr)."""
    if value is None:
        return "0"
    if isinstance(value, float):
        return plain(Decimal(repr(value)))
    return plain(Decimal(str(value)))


def candles(exchange: str, symbol: str, timeframe: str, limit: int, api_url: str | None = None,
            since: int | None = None) -> list[list[Any]]:
    """Return up to ``limit`` candles ``[open_time_ms, open, high, low, close, volume]`` (strings), oldest first."""
    if timeframe not in TIMEFRAMES_MS:
        raise UnknownMarket(f"unknown timeframe (choose from {', '.join(TIMEFRAMES_MS)})", field="timeframe")
    key = _key("candles", exchange, api_url or "", symbol, timeframe, limit, since)
    cached = cache.get(key)
    if cached is not None:
        return list(cached)

    async def fetch(venue: Any) -> list[list[Any]]:
        from gridfleet.exchanges.ccxt_adapter import map_ccxt_error

        await venue.market(symbol)
        client = venue.client
        if not (getattr(client, "has", None) or {}).get("fetchOHLCV", True):
            raise UnknownMarket(f"{exchange} offers no candles through ccxt", field="exchange")
        offered = getattr(client, "timeframes", None) or {}
        if offered and timeframe not in offered:
            raise UnknownMarket(f"{exchange} has no {timeframe} candles (it offers {', '.join(offered)})",
                                field="timeframe")
        try:
            rows = await client.fetch_ohlcv(symbol, timeframe, since, limit)
        except Exception as exc:
            mapped = map_ccxt_error(exc, context=f"fetch_ohlcv {symbol} {timeframe}")
            if mapped is None:
                raise
            raise mapped from None
        return [[int(r[0]), *(_num(v) for v in r[1:6])] for r in rows][-limit:]

    rows = _read(exchange, api_url, f"candles {symbol} {timeframe}", fetch)
    ttl = max(2, min(60, TIMEFRAMES_MS[timeframe] // 1000 // 10))
    cache.set(key, rows, ttl)
    return rows


def free_balances(account: Any) -> dict[str, Decimal]:
    """Return the free balance per currency of an exchange account (its keys; never cached, never logged)."""
    keys = account.credentials()
    exchange = account.exchange

    async def fetch(venue: Any) -> dict[str, Decimal]:
        balances = await venue.fetch_balances()
        return {currency: b.free for currency, b in balances.items()}

    return _read(exchange, account.api_url or None, "balances", fetch, keys)
