"""A market's trading rules (tick size, step size, limits) and the checks an exchange applies to orders.

Built from a ccxt market dict (``precision`` and ``limits`` in TICK_SIZE mode, as ccxt gives for Binance, OKX,
Bybit) or straight from a Binance ``exchangeInfo`` symbol. Pure functions, no I/O: the engine, the matching
engine and the live adapter share these rules so a simulated order is refused exactly when the venue would
refuse it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any


class OrderRuleViolation(ValueError):
    """An order breaks a market rule; ``code`` is the exchange-style reason (e.g. ``MIN_NOTIONAL``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    d = Decimal(str(value))
    return d


@dataclass(frozen=True, slots=True)
class MarketRules:
    """Precision and limits of one spot market. ``None`` means "no rule"."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal | None = None
    step_size: Decimal | None = None
    min_qty: Decimal | None = None
    max_qty: Decimal | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    min_notional: Decimal | None = None
    max_notional: Decimal | None = None
    market_step_size: Decimal | None = None
    market_max_qty: Decimal | None = None

    @classmethod
    def unrestricted(cls, symbol: str) -> MarketRules:
        """Return rules with no precision or limits for ``symbol`` ("BASE/QUOTE")."""
        base, _, quote = symbol.partition("/")
        return cls(symbol=symbol, base=base, quote=quote or "QUOTE")

    @classmethod
    def from_ccxt(cls, market: dict[str, Any]) -> MarketRules:
        """Build from a ccxt unified market dict (precision mode TICK_SIZE)."""
        precision = market.get("precision") or {}
        limits = market.get("limits") or {}
        amount = limits.get("amount") or {}
        price = limits.get("price") or {}
        cost = limits.get("cost") or {}
        market_limits = limits.get("market") or {}
        return cls(
            symbol=market["symbol"],
            base=market["base"],
            quote=market["quote"],
            tick_size=_positive(_dec(precision.get("price"))),
            step_size=_positive(_dec(precision.get("amount"))),
            min_qty=_positive(_dec(amount.get("min"))),
            max_qty=_positive(_dec(amount.get("max"))),
            min_price=_positive(_dec(price.get("min"))),
            max_price=_positive(_dec(price.get("max"))),
            min_notional=_positive(_dec(cost.get("min"))),
            max_notional=_positive(_dec(cost.get("max"))),
            market_max_qty=_positive(_dec(market_limits.get("max"))),
        )

    @classmethod
    def from_binance_symbol(cls, info: dict[str, Any]) -> MarketRules:
        """Build from one entry of Binance spot ``exchangeInfo['symbols']``."""
        filters = {f["filterType"]: f for f in info.get("filters", [])}
        pf = filters.get("PRICE_FILTER", {})
        lot = filters.get("LOT_SIZE", {})
        mlot = filters.get("MARKET_LOT_SIZE", {})
        notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
        return cls(
            symbol=f"{info['baseAsset']}/{info['quoteAsset']}",
            base=info["baseAsset"],
            quote=info["quoteAsset"],
            tick_size=_positive(_dec(pf.get("tickSize"))),
            min_price=_positive(_dec(pf.get("minPrice"))),
            max_price=_positive(_dec(pf.get("maxPrice"))),
            step_size=_positive(_dec(lot.get("stepSize"))),
            min_qty=_positive(_dec(lot.get("minQty"))),
            max_qty=_positive(_dec(lot.get("maxQty"))),
            min_notional=_positive(_dec(notional.get("minNotional"))),
            max_notional=_positive(_dec(notional.get("maxNotional"))),
            market_step_size=_positive(_dec(mlot.get("stepSize"))),
            market_max_qty=_positive(_dec(mlot.get("maxQty"))),
        )

    # -- rounding -------------------------------------------------------------------------------------
    def round_price(self, price: Decimal, mode: str = ROUND_HALF_EVEN) -> Decimal:
        """Round ``price`` to the tick size (nearest by default; ROUND_FLOOR / ROUND_CEILING on request)."""
        return _to_step(price, self.tick_size, mode)

    def floor_price(self, price: Decimal) -> Decimal:
        """Round ``price`` down to the tick size."""
        return _to_step(price, self.tick_size, ROUND_FLOOR)

    def ceil_price(self, price: Decimal) -> Decimal:
        """Round ``price`` up to the tick size."""
        return _to_step(price, self.tick_size, ROUND_CEILING)

    def floor_amount(self, amount: Decimal) -> Decimal:
        """Round ``amount`` down to the step size (never sells or spends more than asked)."""
        return _to_step(amount, self.step_size, ROUND_DOWN)

    # -- validation -----------------------------------------------------------------------------------
    def check_order(self, amount: Decimal, price: Decimal | None, *, is_market: bool = False) -> None:
        """Raise :class:`OrderRuleViolation` when the venue would refuse this order.

        ``price`` is the limit price, or for a market order the reference price used for the notional check.
        """
        if amount <= 0:
            raise OrderRuleViolation("LOT_SIZE", f"amount must be positive, got {amount}")
        step = self.market_step_size if is_market and self.market_step_size else self.step_size
        if step is not None and amount % step != 0:
            raise OrderRuleViolation("LOT_SIZE", f"amount {amount} is not a multiple of step size {step}")
        if self.min_qty is not None and amount < self.min_qty:
            raise OrderRuleViolation("LOT_SIZE", f"amount {amount} is below the minimum {self.min_qty}")
        max_qty = self.market_max_qty if is_market and self.market_max_qty else self.max_qty
        if max_qty is not None and amount > max_qty:
            raise OrderRuleViolation("LOT_SIZE", f"amount {amount} is above the maximum {max_qty}")
        if price is not None:
            if price <= 0:
                raise OrderRuleViolation("PRICE_FILTER", f"price must be positive, got {price}")
            if not is_market:
                if self.tick_size is not None and price % self.tick_size != 0:
                    raise OrderRuleViolation(
                        "PRICE_FILTER", f"price {price} is not a multiple of tick size {self.tick_size}"
                    )
                if self.min_price is not None and price < self.min_price:
                    raise OrderRuleViolation("PRICE_FILTER", f"price {price} is below the minimum {self.min_price}")
                if self.max_price is not None and price > self.max_price:
                    raise OrderRuleViolation("PRICE_FILTER", f"price {price} is above the maximum {self.max_price}")
            notional = amount * price
            if self.min_notional is not None and notional < self.min_notional:
                raise OrderRuleViolation(
                    "MIN_NOTIONAL",
                    f"order value {notional} {self.quote} is below the minimum {self.min_notional} {self.quote}",
                )
            if self.max_notional is not None and notional > self.max_notional:
                raise OrderRuleViolation(
                    "MAX_NOTIONAL",
                    f"order value {notional} {self.quote} is above the maximum {self.max_notional} {self.quote}",
                )


def _positive(value: Decimal | None) -> Decimal | None:
    return value if value is not None and value > 0 else None


def _to_step(value: Decimal, step: Decimal | None, mode: str) -> Decimal:
    if step is None:
        return value
    units = (value / step).quantize(Decimal(1), rounding=mode)
    return units * step
