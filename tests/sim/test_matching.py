"""The matching engine: exchange rule refusals, balances (free/locked), market and marketable orders as taker,
resting orders as maker at their limit, cancels, participation budgets and fee currencies."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from gridfleet.engine.types import Fill, OrderStatus, OrderType, OrderUpdate, PlaceOrder, Side
from gridfleet.markets import MarketRules
from gridfleet.sim.matching import MatchingEngine, Rejection

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
MARKET, LIMIT = OrderType.MARKET, OrderType.LIMIT

RULES = MarketRules("BTC/USDT", "BTC", "USDT", tick_size=D("0.01"), step_size=D("0.001"), min_qty=D("0.002"),
                    max_qty=D(100), min_price=D(1), max_price=D(1000000), min_notional=D(5), market_max_qty=D(10))


def engine(quote: Any = 10000, base: Any = 10, *, rules: MarketRules = RULES, **kw: Any) -> MatchingEngine:
    kw.setdefault("maker_fee", D("0.001"))
    kw.setdefault("taker_fee", D("0.002"))
    return MatchingEngine(rules, balances={"USDT": D(quote), "BTC": D(base)}, **kw)


def order(cid: str, side: Side, amount: Any, price: Any = None) -> PlaceOrder:
    return PlaceOrder(cid, side, MARKET if price is None else LIMIT, D(amount), None if price is None else D(price))


def balances(eng: MatchingEngine) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    return eng.free["USDT"], eng.locked["USDT"], eng.free["BTC"], eng.locked["BTC"]


# ---------------------------------------------------------------------------------------------- refusals

REFUSALS = [
    ("step", order("a", BUY, "0.0015", 100), "LOT_SIZE", "amount 0.0015 is not a multiple of step size 0.001"),
    ("zero amount", order("a", BUY, 0, 100), "LOT_SIZE", "amount must be positive, got 0"),
    ("below min qty", order("a", BUY, "0.001", 100000), "LOT_SIZE", "amount 0.001 is below the minimum 0.002"),
    ("above max qty", order("a", SELL, 101, 100), "LOT_SIZE", "amount 101 is above the maximum 100"),
    ("market above market max", order("a", BUY, 11), "LOT_SIZE", "amount 11 is above the maximum 10"),
    ("tick", order("a", BUY, 1, "100.005"), "PRICE_FILTER", "price 100.005 is not a multiple of tick size 0.01"),
    ("below min price", order("a", BUY, 10, "0.5"), "PRICE_FILTER", "price 0.5 is below the minimum 1"),
    ("above max price", order("a", SELL, "0.002", 2000000), "PRICE_FILTER", "above the maximum 1000000"),
    ("min notional", order("a", BUY, "0.01", 100), "MIN_NOTIONAL",
     "order value 1.00 USDT is below the minimum 5 USDT"),
    ("market min notional", order("a", SELL, "0.01"), "MIN_NOTIONAL", "order value 1.00 USDT is below the minimum"),
    ("limit without price", PlaceOrder("a", BUY, LIMIT, D(1)), "PRICE_FILTER", "a limit order needs a price"),
]


@pytest.mark.parametrize(("o", "code", "message"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_rule_violations_are_refused_with_the_exchange_reason(o: PlaceOrder, code: str, message: str) -> None:
    eng = engine()
    before = balances(eng)
    fills, rejection = eng.place(o, D(100), 1)
    assert fills == [] and rejection is not None
    assert (rejection.client_id, rejection.code) == ("a", code)
    assert message in rejection.message
    assert balances(eng) == before and "a" not in eng.orders  # nothing happened


def test_rejection_as_order_update() -> None:
    update = Rejection("x", "MIN_NOTIONAL", "too small").as_update(7)
    assert update == OrderUpdate("x", OrderStatus.REJECTED, "MIN_NOTIONAL: too small", 7)


@pytest.mark.parametrize(
    ("o", "quote", "base", "ok"),
    [
        (order("a", BUY, 1, 100), "100", 0, True),  # a buy locks its notional; the fee comes with the fill
        (order("a", BUY, 1, 100), "99.99", 0, False),
        (order("a", SELL, "2.5", 200), 0, "2.5", True),
        (order("a", SELL, "2.501", 200), 0, "2.5", False),
        (order("a", BUY, 1), "100.1", 0, True),  # market buy at 100 x 1.001 slippage
        (order("a", BUY, 1), "100.09", 0, False),
        (order("a", SELL, 1), 0, "0.999", False),
    ],
)
def test_insufficient_balance(o: PlaceOrder, quote: str, base: Any, ok: bool) -> None:
    eng = engine(quote, base, slippage=D("0.001"))
    fills, rejection = eng.place(o, D(100), 1)
    if ok:
        assert rejection is None
    else:
        assert fills == [] and rejection == Rejection(
            "a", "INSUFFICIENT_BALANCE", "Account has insufficient balance for requested action.")


def test_locked_funds_are_not_free() -> None:
    eng = engine(200, 0)
    assert eng.place(order("a", BUY, 1, 150), D(160), 1) == ([], None)
    _, rejection = eng.place(order("b", BUY, 1, 100), D(160), 1)
    assert rejection is not None and rejection.code == "INSUFFICIENT_BALANCE"


def test_duplicate_client_id() -> None:
    eng = engine()
    assert eng.place(order("a", BUY, 1, 90), D(100), 1) == ([], None)
    _fills, rejection = eng.place(order("a", BUY, 1, 80), D(100), 2)
    assert rejection == Rejection("a", "DUPLICATE_ORDER", "Duplicate order sent.")
    eng.cancel("a", 3)
    assert eng.place(order("a", SELL, 1, 120), D(100), 4)[1] is not None  # ids are never reused


def test_bad_fee_currency() -> None:
    with pytest.raises(ValueError, match="fee_currency"):
        engine(fee_currency="bnb")


# ---------------------------------------------------------------------------------------------- takers


def test_market_order_without_slippage_fills_exactly_at_the_price() -> None:
    eng = engine(slippage=D(0))
    (fill,), rejection = eng.place(order("m", BUY, "0.5"), D("100.37"), 42)
    assert rejection is None
    assert fill == Fill("m", BUY, D("100.37"), D("0.5"), D("0.100370"), "USDT", 42, "T1", False, True)
    assert balances(eng) == (10000 - D("50.185") - D("0.100370"), 0, D("10.5"), 0)
    assert eng.orders["m"].status is OrderStatus.FILLED and eng.open_orders() == []


@pytest.mark.parametrize(("side", "price"), [(BUY, D("100.1")), (SELL, D("99.9"))])
def test_market_order_slippage_moves_against_the_taker(side: Side, price: Decimal) -> None:
    eng = engine(slippage=D("0.001"))
    (fill,), _ = eng.place(order("m", side, 1), D(100), 1)
    assert (fill.price, fill.fee, fill.is_maker) == (price, price * D("0.002"), False)


@pytest.mark.parametrize(("side", "limit"), [(BUY, "105"), (BUY, "100"), (SELL, "95"), (SELL, "100")])
def test_marketable_limit_fills_at_once_as_taker_at_the_market(side: Side, limit: str) -> None:
    eng = engine(slippage=D("0.01"))
    (fill,), _ = eng.place(order("l", side, 1, limit), D(100), 1)
    assert (fill.price, fill.is_maker, fill.fee) == (D(100), False, D("0.2"))  # no slippage on a limit
    assert eng.open_orders() == [] and eng.orders["l"].status is OrderStatus.FILLED


# ---------------------------------------------------------------------------------------------- resting


def test_resting_buy_locks_and_fills_as_maker_at_its_limit() -> None:
    eng = engine(1000, 0)
    assert eng.place(order("b", BUY, 2, "95.5"), D(100), 1) == ([], None)
    assert balances(eng) == (D(809), D(191), 0, 0)
    assert eng.best_bid() == D("95.5") and eng.best_ask() is None
    assert eng.orders["b"].status is OrderStatus.OPEN
    fill = eng.fill_next(BUY, 5)
    assert fill == Fill("b", BUY, D("95.5"), D(2), D("0.1910"), "USDT", 5, "T1", True, True)
    assert balances(eng) == (D(809) - D("0.1910"), 0, D(2), 0)
    assert eng.best_bid() is None and eng.fill_next(BUY, 6) is None
    sim = eng.orders["b"]
    assert (sim.status, sim.filled, sim.cost, sim.fee, sim.fills) == (OrderStatus.FILLED, D(2), D(191), D("0.1910"),
                                                                      [fill])


def test_resting_sell_locks_base_and_fills_at_its_limit() -> None:
    eng = engine(0, 3)
    eng.place(order("s", SELL, "1.5", 110), D(100), 1)
    assert balances(eng) == (0, 0, D("1.5"), D("1.5"))
    fill = eng.fill_next(SELL, 2)
    assert fill is not None and (fill.price, fill.fee, fill.is_maker) == (D(110), D("0.1650"), True)
    assert balances(eng) == (D(165) - D("0.1650"), 0, D("1.5"), 0)


def test_cancel_unlocks() -> None:
    eng = engine(1000, 2)
    eng.place(order("b", BUY, 1, 90), D(100), 1)
    eng.place(order("s", SELL, 1, 110), D(100), 1)
    assert balances(eng) == (D(910), D(90), D(1), D(1))
    assert eng.cancel("b", 3) == OrderUpdate("b", OrderStatus.CANCELED, "canceled", 3)
    assert eng.cancel("s", 3) is not None
    assert balances(eng) == (D(1000), 0, D(2), 0)
    assert eng.open_orders() == [] and eng.orders["b"].status is OrderStatus.CANCELED
    assert eng.cancel("b", 4) is None and eng.cancel("nope", 4) is None


def test_cancel_of_a_filled_order_is_none() -> None:
    eng = engine()
    eng.place(order("m", BUY, 1), D(100), 1)
    assert eng.cancel("m", 2) is None


def test_book_priority_price_then_time() -> None:
    eng = engine(100000, 100)
    for cid, side, price in [("b1", BUY, 90), ("b2", BUY, 95), ("b3", BUY, 90), ("s1", SELL, 120), ("s2", SELL, 110),
                             ("s3", SELL, 110)]:
        eng.place(order(cid, side, 1, price), D(100), 1)
    assert [o.client_id for o in eng.open_orders()] == ["b2", "b1", "b3", "s2", "s3", "s1"]
    assert (eng.best_bid(), eng.best_ask()) == (D(95), D(110))
    assert [eng.fill_next(BUY, 2).client_id for _ in range(3)] == ["b2", "b1", "b3"]  # type: ignore[union-attr]
    assert [eng.fill_next(SELL, 2).client_id for _ in range(3)] == ["s2", "s3", "s1"]  # type: ignore[union-attr]


def test_trade_ids_are_unique_and_increasing() -> None:
    eng = engine()
    f1 = eng.place(order("a", BUY, 1), D(100), 1)[0][0]
    eng.place(order("b", BUY, 1, 90), D(100), 1)
    f2 = eng.fill_next(BUY, 2)
    assert (f1.trade_id, f2.trade_id) == ("T1", "T2")  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------- participation


def test_participation_budget_fills_partially_across_candles() -> None:
    eng = engine(0, 5, participation=D("0.1"))
    eng.place(order("s1", SELL, "0.7", 110), D(100), 1)
    eng.place(order("s2", SELL, "0.6", 111), D(100), 1)
    eng.begin_volume(D(10))  # budget 1 BTC this candle
    a = eng.fill_next(SELL, 2)
    b = eng.fill_next(SELL, 2)
    assert a is not None and (a.client_id, a.amount, a.order_complete) == ("s1", D("0.7"), True)
    assert b is not None and (b.client_id, b.amount, b.order_complete) == ("s2", D("0.3"), False)
    assert eng.orders["s2"].status is OrderStatus.PARTIALLY_FILLED and eng.orders["s2"].remaining == D("0.3")
    assert not eng.can_fill_resting and eng.fill_next(SELL, 2) is None
    assert eng.locked["BTC"] == D("0.3")
    eng.begin_volume(D(10))
    c = eng.fill_next(SELL, 3)
    assert c is not None and (c.amount, c.order_complete, c.trade_id) == (D("0.3"), True, "T3")
    assert eng.locked["BTC"] == 0 and eng.orders["s2"].status is OrderStatus.FILLED
    eng.begin_volume(None)
    assert eng.can_fill_resting


def test_participation_partial_buy_unlocks_its_share() -> None:
    eng = engine(1000, 0, participation=D(1), maker_fee=D(0))
    eng.place(order("b", BUY, 1, 100), D(105), 1)
    eng.begin_volume(D("0.25"))
    eng.fill_next(BUY, 2)
    assert balances(eng) == (D(900), D(75), D("0.25"), 0)
    assert eng.cancel("b", 3) is not None
    assert balances(eng) == (D(975), 0, D("0.25"), 0)


def test_participation_budget_below_the_step_fills_nothing() -> None:
    eng = engine(0, 5, participation=D(1))
    eng.place(order("s", SELL, 1, 110), D(100), 1)
    eng.begin_volume(D("0.0005"))
    assert eng.fill_next(SELL, 2) is None and not eng.can_fill_resting
    assert eng.orders["s"].filled == 0


def test_market_orders_ignore_the_budget() -> None:
    eng = engine(participation=D("0.01"))
    eng.begin_volume(D(1))
    (fill,), _ = eng.place(order("m", BUY, 5), D(100), 1)
    assert fill.amount == 5


# ---------------------------------------------------------------------------------------------- fee currency


def test_fee_in_the_received_asset() -> None:
    eng = engine(1000, 0, fee_currency="received", taker_fee=D("0.001"))
    (buy,), _ = eng.place(order("b", BUY, 1), D(100), 1)
    assert (buy.fee, buy.fee_currency) == (D("0.001"), "BTC")
    assert balances(eng) == (D(900), 0, D("0.999"), 0)
    eng.place(order("s", SELL, "0.5", 120), D(100), 2)
    sell = eng.fill_next(SELL, 3)
    assert sell is not None and (sell.fee, sell.fee_currency) == (D("0.060"), "USDT")
    assert balances(eng) == (D(900) + D(60) - D("0.060"), 0, D("0.499"), 0)


def test_quote_fee_without_free_quote_is_taken_from_the_base_bought() -> None:
    eng = engine(100, 0, maker_fee=D("0.001"))
    eng.place(order("b", BUY, 1, 100), D(105), 1)
    assert balances(eng) == (0, D(100), 0, 0)
    fill = eng.fill_next(BUY, 2)
    assert fill is not None and (fill.fee, fill.fee_currency) == (D("0.001"), "BTC")
    assert balances(eng) == (0, 0, D("0.999"), 0)
