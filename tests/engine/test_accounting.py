"""Portfolio accounting: average entry, realised/unrealised PnL, fees by currency, round trips; conservation of
cash + base × price for random fill sequences, directly and through the matching engine (exact Decimal)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridfleet.engine.accounting import Portfolio, RoundTrip
from gridfleet.engine.types import Fill, OrderType, PlaceOrder, Side
from gridfleet.markets import MarketRules
from gridfleet.sim.matching import MatchingEngine

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
_ids = iter(range(10**9))


def f(side: Side, price: Any, amount: Any, fee: Any = 0, ccy: str = "USDT", trade: str | None = None) -> Fill:
    return Fill("c", side, D(price), D(amount), D(fee), ccy, 0, trade or f"t{next(_ids)}", True)


def test_empty_portfolio() -> None:
    p = Portfolio("BTC", "USDT")
    assert p.avg_entry_price is None and p.unrealized_pnl(D(100)) == 0
    assert p.fees_in("USDT") == 0 and p.quote_flow == 0 and p.base == 0


def test_average_entry_price_includes_quote_fees() -> None:
    p = Portfolio("BTC", "USDT")
    assert p.apply_fill(f(BUY, 100, 1, "0.1"))
    assert (p.base, p.quote_flow, p.cost_basis, p.avg_entry_price) == (D(1), D("-100.1"), D("100.1"), D("100.1"))
    p.apply_fill(f(BUY, 110, 1, "0.11"))
    assert p.avg_entry_price == D("105.105")
    assert p.unrealized_pnl(D(120)) == 240 - D("210.21")


def test_sell_realises_against_the_average_and_keeps_it() -> None:
    p = Portfolio("BTC", "USDT")
    p.apply_fill(f(BUY, 100, 1, "0.1"))
    p.apply_fill(f(BUY, 110, 1, "0.11"))
    p.apply_fill(f(SELL, 120, 1, "0.12"))
    assert p.realized_pnl == D("119.88") - D("105.105")
    assert p.avg_entry_price == D("105.105") and p.cost_basis == D("105.105") and p.base == 1
    assert p.quote_flow == D("-100.1") - D("110.11") + D("119.88")
    assert p.fees == {"USDT": D("0.33")} and p.fees_in("USDT") == D("0.33")
    assert (p.buy_fills, p.sell_fills) == (2, 1)
    p.apply_fill(f(SELL, 90, 1, "0.09"))
    assert p.base == 0 and p.cost_basis == 0 and p.avg_entry_price is None
    assert p.realized_pnl == D("119.88") + D("89.91") - D("210.21")


def test_fee_in_base_reduces_the_base_held() -> None:
    p = Portfolio("BTC", "USDT")
    p.apply_fill(f(BUY, 100, 1, "0.001", "BTC"))
    assert p.base == D("0.999") and p.cost_basis == 100 and p.quote_flow == -100
    assert p.avg_entry_price == D(100) / D("0.999")
    assert p.fees == {"BTC": D("0.001")}
    p.apply_fill(f(SELL, 110, "0.999", "0.0999"))
    assert p.base == 0 and p.realized_pnl == D("109.89") - D("0.0999") - 100
    assert p.fees == {"BTC": D("0.001"), "USDT": D("0.0999")}


def test_fee_in_a_third_currency_is_recorded_but_not_in_pnl() -> None:
    p = Portfolio("BTC", "USDT")
    p.apply_fill(f(BUY, 100, 1, "0.02", "BNB"))
    assert p.fees == {"BNB": D("0.02")} and p.cost_basis == 100 and p.base == 1


def test_same_trade_id_books_once() -> None:
    p = Portfolio("BTC", "USDT")
    fill = f(BUY, 100, 1, "0.1", trade="T1")
    assert p.apply_fill(fill) is True
    assert p.apply_fill(fill) is False
    assert p.apply_fill(f(SELL, 200, 1, trade="T1")) is False  # the key is the trade id
    assert (p.base, p.buy_fills, p.sell_fills, p.fees) == (D(1), 1, 0, {"USDT": D("0.1")})


def test_round_trips() -> None:
    p = Portfolio("BTC", "USDT")
    trips = [RoundTrip(1, D(1), D(110), D(120), D("0.23"), D("9.77"), 5),
             RoundTrip(0, D(2), D(100), D(110), D("0.42"), D("19.58"), 9)]
    for trip in trips:
        p.book_round_trip(trip)
    assert p.round_trips == trips and p.grid_profit == D("29.35")


def test_selling_more_than_held_zeroes_the_cost() -> None:
    p = Portfolio("BTC", "USDT")
    p.apply_fill(f(BUY, 100, 1))
    p.apply_fill(f(SELL, 100, 2))
    assert p.base == -1 and p.cost_basis == 0 and p.avg_entry_price is None
    assert p.realized_pnl == 100  # 200 received, 100 of cost released


# ---------------------------------------------------------------------------------------------- properties

fills_st = st.lists(
    st.tuples(
        st.sampled_from([BUY, SELL]),
        st.decimals(min_value=D("0.01"), max_value=D(100000), places=2),
        st.decimals(min_value=D("0.0001"), max_value=D(50), places=4),
        st.sampled_from([D(0), D("0.001"), D("0.00075")]),
        st.sampled_from(["USDT", "BTC"]),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(fills_st, st.decimals(min_value=D("0.01"), max_value=D(100000), places=2))
def test_cash_plus_base_conservation(seq: list[tuple[Side, Decimal, Decimal, Decimal, str]], mark: Decimal) -> None:
    """For any fills: quote balance − quote flow = initial quote; base balance = base; equity change = quote flow
    + base × price = realised + unrealised PnL."""
    initial = D(1000000)
    p = Portfolio("BTC", "USDT")
    quote, base, fees_q, fees_b = initial, D(0), D(0), D(0)
    for side, price, amount, rate, ccy in seq:
        fee = price * amount * rate if ccy == "USDT" else amount * rate
        p.apply_fill(f(side, price, amount, fee, ccy))
        fee_q, fee_b = (fee, D(0)) if ccy == "USDT" else (D(0), fee)
        fees_q, fees_b = fees_q + fee_q, fees_b + fee_b
        if side is BUY:
            quote -= price * amount + fee_q
            base += amount - fee_b
        else:
            quote += price * amount - fee_q
            base -= amount + fee_b
    assert quote - p.quote_flow == initial
    assert base == p.base
    equity_change = (quote + base * mark) - initial
    assert equity_change == p.quote_flow + p.base * mark
    # realised + unrealised = the same equity change (the average cost divides, so allow 28-digit rounding)
    assert abs(p.realized_pnl + p.unrealized_pnl(mark) - equity_change) <= D("1e-12")
    assert p.fees_in("USDT") == fees_q and p.fees_in("BTC") == fees_b
    assert p.buy_fills + p.sell_fills == len(seq)
    if p.base > 0:
        assert p.cost_basis >= 0


orders_st = st.lists(
    st.tuples(
        st.sampled_from([BUY, SELL]),
        st.sampled_from(["market", "limit_marketable", "limit_resting"]),
        st.integers(1, 400),  # price in 0.5 steps around 100
        st.integers(1, 50),  # amount in 0.01 units
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(orders_st, st.sampled_from(["quote", "received"]), st.sampled_from([D(0), D("0.001")]), st.integers(1, 400),
       st.sampled_from([D(100000), D(60)]))
def test_matching_engine_balances_equal_the_fills(
    orders: list[tuple[Side, str, int, int]], fee_currency: str, slippage: Decimal, mark_i: int, initial: Decimal
) -> None:
    """total quote + total base × P = initial − fees ± trading PnL, exactly (also when a buy's quote fee has to
    come out of the base bought because no quote is left)."""
    rules = MarketRules("BTC/USDT", "BTC", "USDT", tick_size=D("0.5"), step_size=D("0.01"))
    eng = MatchingEngine(rules, maker_fee=D("0.001"), taker_fee=D("0.002"),
                         balances={"USDT": initial, "BTC": D(5)}, slippage=slippage, fee_currency=fee_currency)
    p = Portfolio("BTC", "USDT")
    fills: list[Fill] = []
    now = D(100)
    for n, (side, kind, price_i, amount_i) in enumerate(orders):
        price, amount = D(price_i) / 2, D(amount_i) / 100
        if kind == "market":
            order = PlaceOrder(f"o{n}", side, OrderType.MARKET, amount)
        else:
            limit = now if kind == "limit_marketable" else (now - price if side is BUY else now + price)
            limit = max(rules.round_price(limit), D("0.5"))
            order = PlaceOrder(f"o{n}", side, OrderType.LIMIT, amount, limit)
        new, _ = eng.place(order, now, n)
        fills += new
        now = price  # the market moves; resting orders the path crosses fill as maker
        while (bid := eng.best_bid()) is not None and bid >= now:
            fills.append(eng.fill_next(BUY, n))  # type: ignore[arg-type]
        while (ask := eng.best_ask()) is not None and ask <= now:
            fills.append(eng.fill_next(SELL, n))  # type: ignore[arg-type]
    for fill in fills:
        p.apply_fill(fill)
    mark = D(mark_i) / 2
    fees_q = sum((x.fee for x in fills if x.fee_currency == "USDT"), D(0))
    fees_b = sum((x.fee for x in fills if x.fee_currency == "BTC"), D(0))
    bought = sum((x.notional for x in fills if x.side is BUY), D(0))
    sold = sum((x.notional for x in fills if x.side is SELL), D(0))
    base_in = sum((x.amount if x.side is BUY else -x.amount for x in fills), D(0))
    q, b = eng.total("USDT"), eng.total("BTC")
    assert q == initial + sold - bought - fees_q
    assert b == D(5) + base_in - fees_b
    assert q + b * mark == initial + D(5) * mark + (sold - bought) + base_in * mark - fees_q - fees_b * mark
    assert q == initial + p.quote_flow and b == D(5) + p.base
    for ccy in ("USDT", "BTC"):
        assert eng.free[ccy] >= 0 and eng.locked[ccy] >= 0
    assert eng.locked["USDT"] == sum((o.locked for o in eng.open_orders() if o.side is BUY), D(0))
    assert eng.locked["BTC"] == sum((o.remaining for o in eng.open_orders() if o.side is SELL), D(0))


@pytest.mark.parametrize("fee_currency", ["quote", "received"])
def test_grid_round_trip_profit_matches_the_account(fee_currency: str) -> None:
    from gridfleet.engine.config import parse_config
    from gridfleet.engine.strategies.grid import GridStrategy
    from gridfleet.sim.driver import SimDriver

    c = parse_config({"symbol": "BTC/USDT", "grid": {"lower": 100, "upper": 140, "levels": 5}, "qty_per_order": 1,
                      "slippage": 0, "fees": {"maker": "0.001", "taker": "0.001"}})
    s = GridStrategy(c, bot_id="b")
    eng = MatchingEngine(MarketRules.unrestricted("BTC/USDT"), maker_fee=D("0.001"), taker_fee=D("0.001"),
                         balances={"USDT": D(10000)}, fee_currency=fee_currency)
    drv = SimDriver(s, eng)
    drv.start(D(121), 0)
    for t, price in enumerate([95, 145, 95, 121], 1):
        drv.move_to(D(price), t)
    p = s.portfolio
    assert eng.total("USDT") == 10000 + p.quote_flow and eng.total("BTC") == p.base
    assert p.grid_profit == sum((t.profit for t in p.round_trips), D(0))
    assert len(p.round_trips) == p.sell_fills
    # every round trip: sell proceeds − buy cost − fees, on the layer's own prices
    for trip in p.round_trips:
        assert trip.sell_price == trip.buy_price + 10 or trip.buy_price == 121
    fee_total = p.fees_in("USDT") + p.fees_in("BTC") * D(121)
    assert fee_total > 0 and set(p.fees) == ({"USDT"} if fee_currency == "quote" else {"USDT", "BTC"})
