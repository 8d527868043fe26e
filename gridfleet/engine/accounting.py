"""Position accounting from fills: balances, average entry price, realised and unrealised PnL, fees.

Exact ``Decimal`` arithmetic. The average entry price is the weighted average cost of the base held, fees paid
in quote included (a sell does not move it). Grid profit per matched buy/sell pair is booked by the grid
strategy (it knows which buy a sell closes) through :meth:`Portfolio.book_round_trip`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from gridfleet.engine.types import Fill, Side

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """A matched buy/sell pair of one grid layer."""

    level: int
    amount: Decimal
    buy_price: Decimal
    sell_price: Decimal
    fees: Decimal  # quote fees of both legs
    profit: Decimal  # sell notional − buy notional − fees
    closed_at: int


@dataclass(slots=True)
class Portfolio:
    """What one bot holds and has earned, updated fill by fill."""

    base_currency: str
    quote_currency: str
    base: Decimal = ZERO  # base acquired by the bot (net of base fees)
    quote_flow: Decimal = ZERO  # quote received − quote spent (fees in quote included)
    cost_basis: Decimal = ZERO  # quote cost of the base held
    realized_pnl: Decimal = ZERO  # average-cost realised PnL
    grid_profit: Decimal = ZERO  # Σ round-trip profits
    fees: dict[str, Decimal] = field(default_factory=dict)
    buy_fills: int = 0
    sell_fills: int = 0
    round_trips: list[RoundTrip] = field(default_factory=list)
    _seen_trades: set[str] = field(default_factory=set)

    def apply_fill(self, fill: Fill) -> bool:
        """Book ``fill`` once (keyed by trade id); return False when it was already booked."""
        if fill.trade_id in self._seen_trades:
            return False
        self._seen_trades.add(fill.trade_id)
        notional = fill.price * fill.amount
        fee_quote = fill.fee if fill.fee_currency == self.quote_currency else ZERO
        fee_base = fill.fee if fill.fee_currency == self.base_currency else ZERO
        if fill.fee:
            self.fees[fill.fee_currency] = self.fees.get(fill.fee_currency, ZERO) + fill.fee
        if fill.side is Side.BUY:
            self.buy_fills += 1
            self.base += fill.amount - fee_base
            self.quote_flow -= notional + fee_quote
            self.cost_basis += notional + fee_quote
        else:
            self.sell_fills += 1
            avg = self.avg_entry_price
            sold = fill.amount + fee_base
            released = avg * sold if avg is not None else ZERO
            if sold >= self.base:
                released = self.cost_basis
            self.base -= sold
            self.quote_flow += notional - fee_quote
            self.cost_basis -= released
            self.realized_pnl += notional - fee_quote - released
            if self.base <= ZERO:
                self.cost_basis = ZERO
        return True

    def book_round_trip(self, trip: RoundTrip) -> None:
        """Record a matched pair's grid profit."""
        self.round_trips.append(trip)
        self.grid_profit += trip.profit

    @property
    def avg_entry_price(self) -> Decimal | None:
        """Return the average cost per base unit held, or None when flat."""
        if self.base <= ZERO:
            return None
        return self.cost_basis / self.base

    def unrealized_pnl(self, price: Decimal) -> Decimal:
        """Return the mark-to-market gain of the base held at ``price``."""
        return self.base * price - self.cost_basis

    def fees_in(self, currency: str) -> Decimal:
        """Return the fees paid in ``currency``."""
        return self.fees.get(currency, ZERO)
