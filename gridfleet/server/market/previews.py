"""The server side of the grid preview: resolve the account and market, then :func:`preview_grid`."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from rest_framework.exceptions import NotFound, ValidationError

from gridfleet.engine.config import GridConfig
from gridfleet.engine.preview import GridPreview, preview_grid
from gridfleet.markets import MarketRules
from gridfleet.server.bots.services import ConfigInvalid, validate_config
from gridfleet.server.exchange_accounts.models import ExchangeAccount
from gridfleet.server.market import venue
from gridfleet.server.trading.exports import decimal_str
from gridfleet.server.users.permissions import can_modify, scope_queryset

NO_ACCOUNT = "no such exchange account"
SYNTHETIC = "synthetic"


def visible_account(user: Any, pk: int | None) -> ExchangeAccount | None:
    """Return the caller's exchange account ``pk`` (None for None); 404 when it is not in the caller's scope."""
    if pk is None:
        return None
    account = scope_queryset(ExchangeAccount.objects.all(), user).filter(pk=pk).first()
    if account is None:
        raise NotFound(NO_ACCOUNT)
    return account


def resolve_exchange(exchange: str | None, account: ExchangeAccount | None, *, allow_synthetic: bool = False
                     ) -> tuple[str, str | None]:
    """Return (ccxt id, api_url) from the request and the account; 400 for an unknown or mismatched exchange."""
    name = (exchange or "").strip().lower() or (account.exchange if account is not None else "binance")
    if account is not None and account.exchange != name:
        raise ValidationError({"exchange": [f"the exchange account is on {account.exchange}, not {name}"]})
    if name == SYNTHETIC and allow_synthetic:
        return name, None
    if name not in venue.known_exchanges():
        raise ValidationError({"exchange": ["unknown exchange (a ccxt id such as binance, okx, bybit)"]})
    return name, (account.api_url or None) if account is not None else None


def _synthetic_rules(symbol: str) -> MarketRules:
    base, _, quote = symbol.partition("/")
    return MarketRules(symbol=symbol, base=base, quote=quote, tick_size=Decimal("0.01"), step_size=Decimal("0.00001"))


def _s(value: Decimal | None, places: int | None = None) -> str | None:
    if value is None:
        return None
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return decimal_str(value)


def _warning(code: str, message: str, severity: str = "warning", level: int | None = None) -> dict[str, Any]:
    return {"code": code, "severity": severity, "message": message, "level": level}


def build_preview(user: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Return the preview document of a validated :class:`PreviewRequestSerializer` body."""
    strategy = data["strategy"]
    if strategy != "grid":
        raise ValidationError({"strategy": [f"no preview for strategy {strategy!r} (only grid)"]})
    account = visible_account(user, data.get("exchange_account"))
    exchange, api_url = resolve_exchange(data.get("exchange"), account, allow_synthetic=True)
    symbol = data.get("symbol") or None
    try:
        normalised = validate_config(strategy, data["config"], symbol)
    except ConfigInvalid as exc:
        raise ValidationError({"config": exc.errors}) from None
    config = GridConfig.model_validate(normalised)
    symbol = config.symbol
    warnings: list[dict[str, Any]] = []
    market: MarketRules | None = None
    price: Decimal | None = data.get("price")
    price_source, price_ts = ("given", None) if price is not None else ("mid_range", None)
    if exchange == SYNTHETIC:
        market = _synthetic_rules(symbol)
    elif not data.get("offline"):
        try:
            market = venue.market_rules(exchange, symbol, api_url)
            if price is None:
                ticker = venue.last_price(exchange, symbol, api_url)
                price, price_source, price_ts = ticker["price"], "ticker", ticker["timestamp"]
        except venue.UnknownMarket as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        except venue.MarketDataError as exc:
            code = "market_unavailable" if market is None else "price_unavailable"
            what = ("levels are not rounded to the market's tick/step and the exchange's limits were not checked"
                    if market is None else "the price used is the middle of the range")
            warnings.append(_warning(code, f"{exc.message}: {what}"))
    if price is None:
        low, high = _range(config, market)
        price = (low + high) / 2
        if market is not None:
            price = market.round_price(price)
    if data["mode"] == "live" and account is None:
        warnings.append(_warning("live_without_account", "a live bot needs an exchange account", "error"))
    try:
        preview = preview_grid(config, price, market)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        if not message:
            field, message = "grid", str(exc)
        if field == "price":
            raise ValidationError({"price": [message]}) from None
        raise ValidationError({"config": {field: [message]}}) from None
    balances = None
    if data["mode"] == "live" and account is not None and not data.get("offline") and can_modify(user, account.owner):
        balances = _balance_check(account, preview, warnings)
    document = _document(preview, config, normalised, exchange, data["mode"], price_source, price_ts, market,
                         warnings)
    document["balances"] = balances
    return document


def _balance_check(account: ExchangeAccount, p: GridPreview, warnings: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Read the account's free balances; warn when they do not cover the layout (live bots only)."""
    from gridfleet.server.exchange_accounts.crypto import DecryptionError

    try:
        free = venue.free_balances(account)
    except DecryptionError:
        warnings.append(_warning("balance_unavailable", "the account's keys cannot be decrypted: enter them again"))
        return None
    except venue.MarketDataError as exc:
        warnings.append(_warning("balance_unavailable", f"balances not read: {exc.message}"))
        return None
    base, quote = free.get(p.base, Decimal(0)), free.get(p.quote, Decimal(0))
    needed = p.quote_with_base if base >= p.base_for_sells else p.total_quote
    if quote < needed:
        held = f" (it holds {_s(base)} of the {_s(p.base_for_sells)} {p.base} needed)"
        how = "" if base >= p.base_for_sells else held
        warnings.append(_warning("insufficient_balance", f"the account has {_s(quote)} {p.quote} free, the layout "
                                 f"needs {_s(needed, 2)} {p.quote}{how}", "error"))
    return {"base": _s(base), "quote": _s(quote), "needed_quote": _s(needed, 8)}


def _range(config: GridConfig, market: MarketRules | None) -> tuple[Decimal, Decimal]:
    from gridfleet.engine.levels import level_prices

    try:
        prices = level_prices(config.grid, market)
    except ValueError as exc:
        raise ValidationError({"config": {"grid": [str(exc).partition(": ")[2] or str(exc)]}}) from None
    return prices[0], prices[-1]


def _document(p: GridPreview, config: GridConfig, normalised: dict[str, Any], exchange: str, mode: str,
              price_source: str, price_ts: int | None, market: MarketRules | None,
              warnings: list[dict[str, Any]]) -> dict[str, Any]:
    profits = [lay.profit_pct for lay in p.layers]
    warnings = warnings + [_warning(w.code, w.message, w.severity, w.level) for w in p.warnings]
    return {
        "strategy": "grid", "exchange": exchange, "symbol": p.symbol, "base": p.base, "quote": p.quote,
        "mode": mode, "price": _s(p.price), "price_source": price_source, "price_timestamp": price_ts,
        "market": venue.rules_to_dict(market) if market is not None else None,
        "qty_per_order": _s(p.qty_per_order), "empty_level": p.empty_level,
        "buy_orders": p.buy_orders, "sell_orders": p.sell_orders,
        "investment": {
            "quote_for_buys": _s(p.quote_for_buys, 8), "base_for_sells": _s(p.base_for_sells),
            "initial_buy_quote": _s(p.initial_buy_quote, 8), "fee_reserve": _s(p.fee_reserve, 8),
            "total_quote": _s(p.total_quote, 8), "quote_with_base": _s(p.quote_with_base, 8),
            "configured": _s(config.investment),
        },
        "min_spacing_pct": _s(p.min_spacing_pct, 6), "max_spacing_pct": _s(p.max_spacing_pct, 6),
        "profit_per_grid_pct": {"min": _s(min(profits), 6), "max": _s(max(profits), 6)} if profits else {},
        "levels": [{"level": r.level, "price": _s(r.price), "side": r.side, "layer": r.layer, "qty": _s(r.qty),
                    "notional": _s(r.notional, 8), "order": r.order, "refused": r.refused, "note": r.note}
                   for r in p.levels],
        "layers": [{"index": lay.index, "buy_price": _s(lay.buy_price), "sell_price": _s(lay.sell_price),
                    "qty": _s(lay.qty), "enabled": lay.enabled, "side": lay.side,
                    "rebound_pct": _s(lay.rebound_pct), "pullback_pct": _s(lay.pullback_pct),
                    "take_profit_pct": _s(lay.take_profit_pct), "spacing_pct": _s(lay.spacing_pct, 6),
                    "profit": _s(lay.profit, 8), "profit_pct": _s(lay.profit_pct, 6)} for lay in p.layers],
        "warnings": warnings,
        "config": normalised,
    }
