"""The matching engine shared by backtests, paper trading and the local fake exchange.

It keeps resting limit orders and balances of one account on one market and fills them against a price path
handed to it by a host. Rules it applies, in this order, when an order arrives:

1. the market's precision and limits (:meth:`MarketRules.check_order`) — refused with the exchange's reason;
2. free balance (quote notional for buys, base for sells) — refused as
   ``INSUFFICIENT_BALANCE``;
3. a market order fills at once at the current price moved against the taker by ``slippage`` (taker fee);
   a limit order that is marketable at the current price fills at once at the current price (taker fee);
   any other limit order rests and locks its funds.

Resting orders fill at their own limit price, as maker, when the host reports that the path reached them
(:meth:`fill_next`). With a participation rate, a candle (or trade) can fill at most ``volume × participation``
base across all resting orders, so large orders fill partially over several candles.
Fees are charged in the quote currency (``fee_currency="quote"``, the default and what the golden tests use) or
in the received asset (``"received"``, as Binance does without BNB). A buy locks only its notional, as on
Binance; when a quote-fee buy finds no free quote left for its fee, that fee is taken from the base bought.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from decimal import Decimal

from gridfleet.engine.types import Fill, OrderStatus, OrderType, OrderUpdate, PlaceOrder, Side
from gridfleet.markets import MarketRules, OrderRuleViolation

ZERO = Decimal(0)


@dataclass(slots=True)
class SimOrder:
    """An order as the simulated venue knows it."""

    client_id: str
    exchange_id: str
    side: Side
    type: OrderType
    amount: Decimal
    price: Decimal | None
    created_at: int
    filled: Decimal = ZERO
    cost: Decimal = ZERO  # Σ price × amount of its fills
    fee: Decimal = ZERO
    status: OrderStatus = OrderStatus.OPEN
    locked: Decimal = ZERO  # funds still locked for the unfilled part
    fills: list[Fill] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        """Return the amount not filled yet."""
        return self.amount - self.filled


@dataclass(frozen=True, slots=True)
class Rejection:
    """An order the venue refused, with the exchange-style reason."""

    client_id: str
    code: str
    message: str

    def as_update(self, timestamp: int) -> OrderUpdate:
        """Return the rejection as an order update for the strategy."""
        return OrderUpdate(self.client_id, OrderStatus.REJECTED, f"{self.code}: {self.message}", timestamp)


def _bid_key(order: SimOrder) -> Decimal:
    assert order.price is not None
    return -order.price


def _ask_key(order: SimOrder) -> Decimal:
    assert order.price is not None
    return order.price


class MatchingEngine:
    """Resting orders and balances of one account on one market."""

    def __init__(
        self,
        rules: MarketRules,
        *,
        maker_fee: Decimal,
        taker_fee: Decimal,
        balances: dict[str, Decimal],
        slippage: Decimal = ZERO,
        participation: Decimal | None = None,
        fee_currency: str = "quote",
    ) -> None:
        if fee_currency not in ("quote", "received"):
            raise ValueError("fee_currency must be 'quote' or 'received'")
        self.rules = rules
        self.maker_fee = maker_fee
        self.taker_fee = taker_fee
        self.slippage = slippage
        self.participation = participation
        self.fee_currency = fee_currency
        self.free: dict[str, Decimal] = {rules.base: ZERO, rules.quote: ZERO}
        self.locked: dict[str, Decimal] = {rules.base: ZERO, rules.quote: ZERO}
        for ccy, amount in balances.items():
            self.free[ccy] = self.free.get(ccy, ZERO) + amount
            self.locked.setdefault(ccy, ZERO)
        self.orders: dict[str, SimOrder] = {}  # every order ever accepted, by client id
        self._buys: list[SimOrder] = []  # resting, highest price first
        self._sells: list[SimOrder] = []  # resting, lowest price first
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._budget: Decimal | None = None

    # ------------------------------------------------------------------ queries
    def total(self, currency: str) -> Decimal:
        """Return free + locked balance of ``currency``."""
        return self.free.get(currency, ZERO) + self.locked.get(currency, ZERO)

    def best_bid(self) -> Decimal | None:
        """Return the highest resting buy price, or None."""
        return self._buys[0].price if self._buys else None

    def best_ask(self) -> Decimal | None:
        """Return the lowest resting sell price, or None."""
        return self._sells[0].price if self._sells else None

    def open_orders(self) -> list[SimOrder]:
        """Return the resting orders (buys then sells)."""
        return [*self._buys, *self._sells]

    @property
    def can_fill_resting(self) -> bool:
        """Return False when this candle's participation budget is used up."""
        return self._budget is None or self._budget > 0

    # ------------------------------------------------------------------ commands
    def begin_volume(self, volume: Decimal | None) -> None:
        """Start a new candle/trade: set the participation budget from its base volume."""
        if self.participation is None or volume is None:
            self._budget = None
        else:
            self._budget = volume * self.participation

    def place(self, order: PlaceOrder, price_now: Decimal, timestamp: int) -> tuple[list[Fill], Rejection | None]:
        """Accept (and possibly fill at once) or refuse ``order`` while the market trades at ``price_now``."""
        if order.client_id in self.orders:
            return [], Rejection(order.client_id, "DUPLICATE_ORDER", "Duplicate order sent.")
        is_market = order.type is OrderType.MARKET
        ref_price = price_now if is_market else order.price
        if ref_price is None:
            return [], Rejection(order.client_id, "PRICE_FILTER", "a limit order needs a price")
        try:
            self.rules.check_order(order.amount, ref_price, is_market=is_market)
        except OrderRuleViolation as exc:
            return [], Rejection(order.client_id, exc.code, str(exc))
        marketable = is_market or (
            (order.side is Side.BUY and ref_price >= price_now) or (order.side is Side.SELL and ref_price <= price_now)
        )
        exec_price = price_now
        if is_market:
            exec_price = price_now * (1 + self.slippage) if order.side is Side.BUY else price_now * (1 - self.slippage)
        need_ccy, need = self._funds_needed(order.side, order.amount, exec_price if marketable else ref_price)
        if self.free.get(need_ccy, ZERO) < need:
            return [], Rejection(order.client_id, "INSUFFICIENT_BALANCE",
                                 "Account has insufficient balance for requested action.")
        sim = SimOrder(order.client_id, str(next(self._ids)), order.side, order.type, order.amount,
                       order.price, timestamp)
        self.orders[order.client_id] = sim
        if marketable:
            fill = self._execute(sim, exec_price, sim.amount, timestamp, maker=False)
            return [fill], None
        sim.locked = need
        self.free[need_ccy] -= need
        self.locked[need_ccy] += need
        if sim.side is Side.BUY:  # price priority, then time priority
            bisect.insort_right(self._buys, sim, key=_bid_key)
        else:
            bisect.insort_right(self._sells, sim, key=_ask_key)
        return [], None

    def cancel(self, client_id: str, timestamp: int) -> OrderUpdate | None:
        """Cancel a resting order; return its update, or None when it is not open."""
        sim = self.orders.get(client_id)
        if sim is None or sim.status not in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
            return None
        self._remove(sim)
        sim.status = OrderStatus.CANCELED
        return OrderUpdate(client_id, OrderStatus.CANCELED, "canceled", timestamp)

    def fill_next(self, side: Side, timestamp: int) -> Fill | None:
        """Fill the best resting order of ``side`` (highest buy / lowest sell) at its limit price, as maker.

        The host calls this when the price path reaches that order's price. Returns None when the
        participation budget is exhausted or nothing rests on that side.
        """
        book = self._buys if side is Side.BUY else self._sells
        if not book or not self.can_fill_resting:
            return None
        sim = book[0]
        amount = sim.remaining
        if self._budget is not None:
            amount = min(amount, self._budget)
            if self.rules.step_size is not None:
                amount = self.rules.floor_amount(amount)
            if amount <= 0:
                self._budget = ZERO
                return None
            self._budget -= amount
        assert sim.price is not None
        return self._execute(sim, sim.price, amount, timestamp, maker=True)

    # ------------------------------------------------------------------ internals
    def _funds_needed(self, side: Side, amount: Decimal, price: Decimal) -> tuple[str, Decimal]:
        if side is Side.BUY:  # like Binance, a buy locks its notional; the fee is charged on the fill
            return self.rules.quote, price * amount
        return self.rules.base, amount

    def _execute(self, sim: SimOrder, price: Decimal, amount: Decimal, timestamp: int, *, maker: bool) -> Fill:
        base, quote = self.rules.base, self.rules.quote
        rate = self.maker_fee if maker else self.taker_fee
        notional = price * amount
        if self.fee_currency == "quote":
            fee, fee_ccy = notional * rate, quote
        else:
            fee, fee_ccy = (amount * rate, base) if sim.side is Side.BUY else (notional * rate, quote)
        resting = sim.locked > 0
        if sim.side is Side.BUY:
            share = sim.locked * amount / sim.remaining if resting else ZERO
            if fee_ccy == quote and self.free[quote] + share - notional < fee:
                fee, fee_ccy = amount * rate, base  # no quote left for the fee: take it from what was bought
            spend = notional + (fee if fee_ccy == quote else ZERO)
            if resting:
                sim.locked -= share
                self.locked[quote] -= share
                self.free[quote] += share - spend
            else:
                self.free[quote] -= spend
            self.free[base] += amount - (fee if fee_ccy == base else ZERO)
        else:
            if resting:
                sim.locked -= amount
                self.locked[base] -= amount
            else:
                self.free[base] -= amount
            self.free[quote] += notional - fee
        sim.filled += amount
        sim.cost += notional
        sim.fee += fee
        complete = sim.remaining <= 0
        if complete:
            sim.status = OrderStatus.FILLED
            if resting:
                self._remove(sim)
        else:
            sim.status = OrderStatus.PARTIALLY_FILLED
        fill = Fill(sim.client_id, sim.side, price, amount, fee, fee_ccy, timestamp,
                    f"T{next(self._trade_ids)}", maker, complete)
        sim.fills.append(fill)
        return fill

    def _remove(self, sim: SimOrder) -> None:
        book = self._buys if sim.side is Side.BUY else self._sells
        if sim in book:
            book.remove(sim)
        ccy = self.rules.quote if sim.side is Side.BUY else self.rules.base
        if sim.locked:
            self.locked[ccy] -= sim.locked
            self.free[ccy] += sim.locked
            sim.locked = ZERO
        if not book:  # nothing locks this currency any more: drop the rounding residue of the running sum
            self.locked[ccy] = ZERO
