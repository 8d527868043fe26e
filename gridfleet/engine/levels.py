"""Grid level prices and order sizing."""

from __future__ import annotations

import itertools
from decimal import ROUND_DOWN, Decimal, localcontext

from gridfleet.engine.config import GridConfig, GridSpec, GridType
from gridfleet.markets import MarketRules


def level_prices(spec: GridSpec, market: MarketRules | None = None) -> list[Decimal]:
    """Return the sorted level prices of ``spec`` (rounded to the market's tick size when one is given).

    Arithmetic: ``p_k = lower + k·(upper−lower)/(n−1)``; geometric: ``p_k = lower·(upper/lower)^(k/(n−1))``;
    custom: the given prices. Levels that collapse onto the same tick after rounding are an error.
    """
    if spec.type == GridType.CUSTOM:
        assert spec.prices is not None
        prices = list(spec.prices)
    else:
        assert spec.lower is not None and spec.upper is not None and spec.levels is not None
        lower, upper, n = spec.lower, spec.upper, spec.levels
        with localcontext() as ctx:
            ctx.prec = 34
            if spec.type == GridType.ARITHMETIC:
                step = (upper - lower) / (n - 1)
                prices = [lower + step * k for k in range(n)]
            else:
                ratio = upper / lower
                prices = [lower * ratio ** (Decimal(k) / (n - 1)) for k in range(n)]
            prices[0], prices[-1] = lower, upper
        prices = [+p for p in prices]  # back to the default 28-digit context
    if market is not None and market.tick_size is not None:
        prices = [market.round_price(p) for p in prices]
        for a, b in itertools.pairwise(prices):
            if b <= a:
                raise ValueError(
                    f"grid: levels {a} and {b} collapse onto the same price at tick size {market.tick_size}; "
                    "use fewer levels or a wider range"
                )
    return prices


def nearest_level(prices: list[Decimal], price: Decimal) -> int:
    """Return the index of the level nearest ``price`` (the lower one on a tie)."""
    best = 0
    best_dist = abs(prices[0] - price)
    for i in range(1, len(prices)):
        d = abs(prices[i] - price)
        if d < best_dist:
            best, best_dist = i, d
    return best


def order_quantity(config: GridConfig, prices: list[Decimal], start_price: Decimal,
                   market: MarketRules | None = None) -> Decimal:
    """Return the base quantity per order.

    With ``qty_per_order`` that value (rounded down to the step size); otherwise
    ``investment / (Σ buy-level prices + P0 · number of sell levels)`` rounded down to the step size, which
    spends the whole investment on one order per interval plus the initial base for the sells.
    """
    if config.qty_per_order is not None:
        qty = config.qty_per_order
    else:
        assert config.investment is not None
        gap = nearest_level(prices, start_price)
        denominator = sum(prices[:gap], Decimal(0)) + start_price * (len(prices) - 1 - gap)
        qty = config.investment / denominator
        if market is None or market.step_size is None:
            qty = qty.quantize(Decimal("1e-12"), rounding=ROUND_DOWN)
    if market is not None:
        qty = market.floor_amount(qty)
    if qty <= 0:
        raise ValueError("investment: too small for one order per grid interval at this market's step size")
    return qty
