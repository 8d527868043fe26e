"""What a grid config starts with at a price: levels, orders, money needed, profit per grid and warnings.

Pure (no I/O): the CLI's ``gridfleet grid preview`` and the server's ``POST /api/v1/grid/preview/`` both call
:func:`preview_grid`. The layout is the one :class:`~gridfleet.engine.strategies.grid.GridStrategy` starts with
(``on_start``): with ``n`` levels there are ``n − 1`` layers; the level nearest the price stays empty, layers
below it buy at their lower level, layers at and above it hold base (bought at market at the start) and sell at
their upper level. Quantities, prices and the venue checks use the market's tick/step/limits when given.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from gridfleet.engine.config import GridConfig
from gridfleet.engine.levels import level_prices, nearest_level, order_quantity
from gridfleet.markets import MarketRules, OrderRuleViolation

ZERO = Decimal(0)
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class PreviewWarning:
    """One thing the user should know before starting: ``code`` is stable, ``message`` is for people."""

    code: str
    message: str
    severity: str = "warning"  # "warning" or "error" (the bot would lose money or an order would be refused)
    level: int | None = None


@dataclass(frozen=True, slots=True)
class PreviewLevel:
    """One grid level and the order the bot starts with there (none at the empty level)."""

    level: int
    price: Decimal
    side: str  # "buy", "sell", "empty" (nearest the price) or "off" (its layer is disabled)
    layer: int | None  # the layer whose order sits here
    qty: Decimal | None
    notional: Decimal | None
    order: str | None  # "limit", "trailing" (rebound/pullback: no resting order) or None
    refused: str | None  # the venue's reason (MIN_NOTIONAL, LOT_SIZE, PRICE_FILTER…) when it would refuse it
    note: str = ""


@dataclass(frozen=True, slots=True)
class PreviewLayer:
    """One grid interval: what it buys and sells, and what one round trip earns after fees."""

    index: int
    buy_price: Decimal
    sell_price: Decimal
    qty: Decimal
    enabled: bool
    side: str  # where it starts: "buy" (below the price) or "sell" (holds base bought at the start)
    rebound_pct: Decimal
    pullback_pct: Decimal
    take_profit_pct: Decimal | None
    spacing_pct: Decimal  # (sell − buy) / buy × 100
    profit: Decimal  # quote earned by one buy/sell round trip after both fees
    profit_pct: Decimal  # profit / (buy notional) × 100


@dataclass(frozen=True, slots=True)
class GridPreview:
    """The whole preview (amounts exact; see the module doc for the layout)."""

    symbol: str
    base: str
    quote: str
    price: Decimal
    empty_level: int
    qty_per_order: Decimal
    levels: list[PreviewLevel]
    layers: list[PreviewLayer]
    buy_orders: int
    sell_orders: int
    quote_for_buys: Decimal  # Σ price × qty of the resting buys
    base_for_sells: Decimal  # base the sell layers hold (bought at market at the start)
    initial_buy_quote: Decimal  # what that base costs at the price (with slippage)
    fee_reserve: Decimal  # worst-case fees of the start (taker on everything)
    total_quote: Decimal  # everything in quote when starting from quote only
    quote_with_base: Decimal  # quote needed when the account already holds ``base_for_sells``
    min_spacing_pct: Decimal
    max_spacing_pct: Decimal
    warnings: list[PreviewWarning] = field(default_factory=list)


def _layer_profit(buy: Decimal, sell: Decimal, qty: Decimal, fee_buy: Decimal, fee_sell: Decimal) -> Decimal:
    return qty * (sell * (1 - fee_sell) - buy * (1 + fee_buy))


def preview_grid(config: GridConfig, price: Decimal, market: MarketRules | None = None) -> GridPreview:
    """Return the starting layout of ``config`` at ``price`` (raise ``ValueError`` "field: message" when impossible).

    ``market`` rounds the level prices to the tick size and the quantities to the step size, and checks every
    order (and the initial market buy) against the venue's limits; refusals become warnings of severity "error".
    """
    if price <= 0:
        raise ValueError(f"price: must be positive, got {price}")
    prices = level_prices(config.grid, market)
    qty = order_quantity(config, prices, price, market)
    gap = nearest_level(prices, price)
    base, _, quote = config.symbol.partition("/")
    maker, taker = config.fees.maker, config.fees.taker
    trailing = config.trailing
    warnings: list[PreviewWarning] = []

    layers: list[PreviewLayer] = []
    for i in range(len(prices) - 1):
        o = config.layer(i)
        lay_qty = o.qty if o is not None and o.qty is not None else qty
        if market is not None:
            lay_qty = market.floor_amount(lay_qty)
        rebound = o.rebound_pct if o is not None and o.rebound_pct is not None else trailing.rebound_pct
        pullback = o.pullback_pct if o is not None and o.pullback_pct is not None else trailing.pullback_pct
        take_profit = o.take_profit_pct if o is not None else None
        buy, sell = prices[i], prices[i + 1]
        if take_profit is not None:
            sell = buy * (1 + take_profit / HUNDRED)
            if market is not None:
                sell = market.ceil_price(sell)
        market_orders = trailing.order_type == "market"
        fee_buy = taker if rebound > 0 and market_orders else maker
        fee_sell = taker if pullback > 0 and market_orders else maker
        profit = _layer_profit(buy, sell, lay_qty, fee_buy, fee_sell)
        layers.append(PreviewLayer(
            index=i, buy_price=buy, sell_price=sell, qty=lay_qty, enabled=o.enabled if o is not None else True,
            side="sell" if i >= gap else "buy", rebound_pct=rebound, pullback_pct=pullback,
            take_profit_pct=take_profit, spacing_pct=(sell / buy - 1) * HUNDRED, profit=profit,
            profit_pct=profit / (buy * lay_qty) * HUNDRED if lay_qty > 0 else ZERO))

    rows: list[PreviewLevel] = []
    quote_for_buys = ZERO
    base_for_sells = ZERO
    buys = sells = 0
    for k, p in enumerate(prices):
        if k == gap:
            rows.append(PreviewLevel(k, p, "empty", None, None, None, None, None, "nearest the price: no order"))
            continue
        lay = layers[k] if k < gap else layers[k - 1]
        if k < gap and not lay.enabled:
            rows.append(PreviewLevel(k, p, "off", lay.index, None, None, None, None, "layer disabled"))
            continue
        side = "buy" if k < gap else "sell"
        order_price = p if side == "buy" else lay.sell_price
        trail = lay.rebound_pct if side == "buy" else lay.pullback_pct
        refused = None
        note = f"{'rebound' if side == 'buy' else 'pullback'} {trail}%: no resting order" if trail > 0 else ""
        if market is not None:
            try:
                market.check_order(lay.qty, order_price, is_market=trail > 0 and trailing.order_type == "market")
            except OrderRuleViolation as exc:
                refused = exc.code
                note = f"refused by the exchange: {exc}"
                warnings.append(PreviewWarning("order_refused", f"level {k} at {order_price}: {exc}", "error", k))
        if side == "buy":
            buys += 1
            quote_for_buys += order_price * lay.qty
        else:
            sells += 1
            base_for_sells += lay.qty
        rows.append(PreviewLevel(k, order_price, side, lay.index, lay.qty, order_price * lay.qty,
                                 "trailing" if trail > 0 else "limit", refused, note))

    initial_amount = market.floor_amount(base_for_sells) if market is not None else base_for_sells
    initial_buy_quote = price * initial_amount * (1 + config.slippage)
    if market is not None and initial_amount > 0:
        try:
            market.check_order(initial_amount, price, is_market=True)
        except OrderRuleViolation as exc:
            warnings.append(PreviewWarning("initial_buy_refused", f"the initial market buy of {initial_amount} "
                                                                  f"{base}: {exc}", "error"))
    fee_rate = max(maker, taker)
    fee_reserve = (quote_for_buys + initial_buy_quote) * fee_rate
    total_quote = quote_for_buys + initial_buy_quote + fee_reserve

    spacings = [(b / a - 1) * HUNDRED for a, b in itertools.pairwise(prices)]
    min_spacing, max_spacing = min(spacings), max(spacings)
    losing = [lay.index for lay in layers if lay.profit <= 0]
    if losing:
        shown = ", ".join(map(str, losing[:10])) + (" …" if len(losing) > 10 else "")
        warnings.append(PreviewWarning(
            "levels_too_dense", f"{len(losing)} layer(s) ({shown}) earn nothing after fees: a round trip there "
            f"loses money (levels {min_spacing:.4f}% apart at the closest, fees {maker * HUNDRED}% maker / "
            f"{taker * HUNDRED}% taker)", "error"))
    elif min_spacing < 2 * taker * HUNDRED:
        warnings.append(PreviewWarning(
            "levels_too_dense", f"levels are only {min_spacing:.4f}% apart, less than twice the taker fee "
            f"({2 * taker * HUNDRED}%): any market order (trailing, risk exits) makes a grid trade lose money"))
    elif min_spacing <= 4 * fee_rate * HUNDRED:
        warnings.append(PreviewWarning(
            "thin_spacing", f"levels are only {min_spacing:.4f}% apart: fees ({2 * fee_rate * HUNDRED}% a round "
            "trip) eat most of each grid profit"))
    if not prices[0] <= price <= prices[-1]:
        where = "below" if price < prices[0] else "above"
        warnings.append(PreviewWarning(
            "price_outside_range", f"the price {price} is {where} the grid range {prices[0]} … {prices[-1]}: "
            + ("every layer starts by buying base at market" if where == "below" else
               "no layer sells, the bot only buys as the price falls into the range")))
    if config.investment is not None and config.qty_per_order is not None and total_quote > config.investment:
        warnings.append(PreviewWarning(
            "investment_short", f"the investment {config.investment} {quote} is below the {total_quote:.2f} {quote} "
            "this layout needs at the price (orders or fees would fail for lack of funds)", "error"))
    if config.investment is not None and config.qty_per_order is None and total_quote > 0:
        unused = config.investment - total_quote
        if unused > config.investment / 10:
            warnings.append(PreviewWarning(
                "investment_unused", f"{unused:.2f} {quote} of the investment stay unused after rounding the "
                "quantity to the market's step size"))
    return GridPreview(
        symbol=config.symbol, base=base, quote=quote, price=price, empty_level=gap, qty_per_order=qty,
        levels=rows, layers=layers, buy_orders=buys, sell_orders=sells, quote_for_buys=quote_for_buys,
        base_for_sells=initial_amount, initial_buy_quote=initial_buy_quote, fee_reserve=fee_reserve,
        total_quote=total_quote, quote_with_base=quote_for_buys * (1 + fee_rate),
        min_spacing_pct=min_spacing, max_spacing_pct=max_spacing, warnings=warnings)


def market_rules_dict(market: MarketRules | None) -> dict[str, Any] | None:
    """Return the market's rules as JSON-able data (decimals as strings, ``None`` for "no rule")."""
    if market is None:
        return None
    names = ("symbol", "base", "quote", "tick_size", "step_size", "min_qty", "max_qty", "min_price", "max_price",
             "min_notional", "max_notional")
    return {name: (None if getattr(market, name) is None else str(getattr(market, name))) for name in names}
