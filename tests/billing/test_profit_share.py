"""The profit-share fee definition: the worked example and properties (Hypothesis)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridfleet.billing.profit_share import (
    QUANTUM,
    ZERO,
    Observation,
    check_rate,
    equity,
    floor_amount,
    round_fee,
    settle,
    settle_all,
    settle_nets,
    split_commission,
    total_fees,
)

D = Decimal
money = st.decimals(min_value=D("-100000"), max_value=D("100000"), places=8, allow_nan=False, allow_infinity=False)
positive = st.decimals(min_value=D("0"), max_value=D("100000"), places=8, allow_nan=False, allow_infinity=False)
rates = st.decimals(min_value=D("0"), max_value=D("1"), places=4, allow_nan=False, allow_infinity=False)
nets_list = st.lists(money, min_size=1, max_size=30)


def test_worked_example_from_the_issue() -> None:
    # +200 → 20 (HWM 200); −150 (net 50) → 0; +100 (net 150) → 0; +150 (net 300) → 10 (HWM 300)
    steps = settle_nets([D(200), D(50), D(150), D(300)], D("0.1"))
    assert [s.fee for s in steps] == [D(20), D(0), D(0), D(10)]
    assert [s.hwm_after for s in steps] == [D(200), D(200), D(200), D(300)]
    assert total_fees(steps) == D(30)


def test_fee_rounds_down_to_8_places() -> None:
    step = settle(D("0.000000019"), ZERO, D("1"))
    assert step.fee == D("0.00000001")
    assert settle(D("1"), ZERO, D("0.3333333333")).fee == D("0.33333333")
    assert round_fee(D("-0.000000019")) == D("-0.00000001")
    assert floor_amount(D("-0.000000011")) == D("-0.00000002")


def test_losses_before_the_first_gain_never_pay() -> None:
    steps = settle_nets([D(-50), D(-10), D(0)], D("0.2"))
    assert total_fees(steps) == 0 and steps[-1].hwm_after == 0


def test_rate_bounds() -> None:
    for bad in (D("-0.01"), D("1.01"), D("NaN")):
        with pytest.raises(ValueError):
            check_rate(bad)


def test_equity_is_exact_for_long_decimals() -> None:
    q, b, p = D("-85.123456789012345678"), D("0.123456789012345678"), D("91234.123456789012345678")
    # 0.123456789012345678 × 91234.123456789012345678 has 41 significant digits: nothing may be rounded
    assert equity(q, b, p) == D("11178.348473542086479810527968299765279684")


@given(nets_list, rates)
def test_fees_never_negative_and_hwm_monotone(nets: list[Decimal], rate: Decimal) -> None:
    steps = settle_nets(nets, rate)
    prev = ZERO
    for s in steps:
        assert s.fee >= 0
        assert s.hwm_after >= prev and s.hwm_after >= s.net_profit
        prev = s.hwm_after


@given(nets_list, rates)
def test_total_never_exceeds_rate_times_peak(nets: list[Decimal], rate: Decimal) -> None:
    steps = settle_nets(nets, rate)
    peak = max([ZERO, *nets])
    assert total_fees(steps) <= rate * peak
    # the total telescopes to rate × final HWM, less at most one quantum of rounding per settlement
    assert steps[-1].hwm_after == peak
    assert rate * peak - total_fees(steps) <= QUANTUM * len(nets)


@given(nets_list, rates, st.data())
def test_merging_periods_never_charges_more(nets: list[Decimal], rate: Decimal, data: st.DataObject) -> None:
    fine = settle_nets(nets, rate)
    keep = data.draw(st.lists(st.booleans(), min_size=len(nets), max_size=len(nets)))
    keep[-1] = True  # the coarse schedule settles the same final state
    coarse_nets = [n for n, k in zip(nets, keep, strict=True) if k]
    coarse = settle_nets(coarse_nets, rate)
    # splitting a period can charge gains that a later loss would have cancelled, merging never charges more
    # than the rate on the final HWM; both end at or below rate × peak, and the coarse total is at most the fine
    assert total_fees(coarse) <= total_fees(fine) + QUANTUM * len(nets)
    assert coarse[-1].hwm_after <= fine[-1].hwm_after


@given(nets_list, rates)
def test_a_repeated_settlement_of_the_same_state_charges_nothing(nets: list[Decimal], rate: Decimal) -> None:
    steps = settle_nets(nets, rate)
    again = settle(nets[-1], steps[-1].hwm_after, rate)
    assert again.fee == 0 and again.hwm_after == steps[-1].hwm_after


@given(st.lists(st.tuples(money, positive, st.booleans()), min_size=1, max_size=20), rates)
@settings(max_examples=200)
def test_capital_movements_never_create_a_fee(path: list[tuple[Decimal, Decimal, bool]], rate: Decimal) -> None:
    """Adding or withdrawing capital moves equity and capital put in together: the fees are unchanged."""
    capital = D(10000)
    plain: list[Observation] = []
    moved: list[Observation] = []
    extra = ZERO
    for pnl, amount, add in path:
        extra += amount if add else -min(amount, capital + extra)  # never withdraw more than was put in
        plain.append(Observation(capital + pnl, capital, rate))
        moved.append(Observation(capital + extra + pnl, capital + extra, rate))
    assert [s.fee for s in settle_all(plain)] == [s.fee for s in settle_all(moved)]


@given(money, money, rates)
def test_capital_added_between_two_settlements_alone_charges_nothing(pnl: Decimal, added: Decimal,
                                                                     rate: Decimal) -> None:
    first = settle_all([Observation(D(1000) + pnl, D(1000), rate)])
    second = settle(Observation(D(1000) + pnl + abs(added), D(1000) + abs(added), rate).net_profit,
                    first[-1].hwm_after, rate)
    assert second.fee == 0


@given(positive, rates, rates, rates)
def test_commission_split_is_capped_and_never_exceeds_the_fee(fee: Decimal, agent: Decimal, parent: Decimal,
                                                             cap: Decimal) -> None:
    direct = split_commission(fee, agent, None, cap)
    assert 0 <= direct.total <= cap * fee and direct.platform >= 0
    sub = split_commission(fee, agent, parent, cap)
    assert sub.agent >= 0 and sub.parent >= 0
    assert sub.total <= min(parent, cap) * fee and sub.platform >= 0
    assert sub.total == round_fee(min(parent, cap) * fee)  # the sub-agent is paid out of the parent's share
    assert split_commission(fee, None, None, cap).total == 0


def test_commission_split_example() -> None:
    s = split_commission(D(100), D("0.1"), D("0.3"), D("0.5"))
    assert (s.agent, s.parent, s.platform) == (D(10), D(20), D(70))
    capped = split_commission(D(100), D("0.4"), D("0.9"), D("0.5"))
    assert (capped.agent, capped.parent, capped.platform) == (D(40), D(10), D(50))
    assert split_commission(D(100), D("0.2"), None, D("0.5")).agent == D(20)
