"""Level prices (arithmetic, geometric, custom; tick rounding) and order sizing."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridfleet.engine.config import GridSpec, parse_config
from gridfleet.engine.levels import level_prices, nearest_level, order_quantity
from gridfleet.markets import MarketRules

D = Decimal
TICK_001 = MarketRules("BTC/USDT", "BTC", "USDT", tick_size=D("0.01"), step_size=D("0.001"))


def spec(**kw: Any) -> GridSpec:
    return GridSpec.model_validate(kw)


def grid_config(grid: dict[str, Any], **kw: Any) -> Any:
    return parse_config({"symbol": "BTC/USDT", "grid": grid, **kw})


@pytest.mark.parametrize(
    ("grid", "expected"),
    [
        ({"lower": 100, "upper": 140, "levels": 5}, ["100", "110", "120", "130", "140"]),
        ({"lower": 100, "upper": 101, "levels": 2}, ["100", "101"]),
        ({"lower": "0.1", "upper": "0.3", "levels": 3}, ["0.1", "0.2", "0.3"]),
        ({"lower": 100, "upper": 101, "levels": 4},
         ["100", "100.3333333333333333333333333", "100.6666666666666666666666667", "101"]),
        ({"type": "geometric", "lower": 100, "upper": 400, "levels": 3}, ["100", "200", "400"]),
        ({"type": "geometric", "lower": 1, "upper": 8, "levels": 4}, ["1", "2", "4", "8"]),
        ({"type": "geometric", "lower": 1, "upper": 10000, "levels": 5}, ["1", "10", "100", "1000", "10000"]),
        ({"type": "custom", "prices": ["99.5", 100, "103.25"]}, ["99.5", "100", "103.25"]),
    ],
)
def test_level_formulas(grid: dict[str, Any], expected: list[str]) -> None:
    prices = level_prices(spec(**grid))
    assert prices == [D(x) for x in expected]


@pytest.mark.parametrize("kind", ["arithmetic", "geometric"])
def test_both_bounds_are_levels_exactly(kind: str) -> None:
    prices = level_prices(spec(type=kind, lower="123.45", upper="987.65", levels=17))
    assert len(prices) == 17
    assert prices[0] == D("123.45") and str(prices[0]) == "123.45"
    assert prices[-1] == D("987.65") and str(prices[-1]) == "987.65"


def test_geometric_is_not_arithmetic() -> None:
    prices = level_prices(spec(type="geometric", lower=100, upper=200, levels=5))
    assert prices[2] == (D(100) * D(200)).sqrt()  # the middle level is the geometric mean
    assert prices[1] - prices[0] < prices[4] - prices[3]


def test_tick_rounding() -> None:
    assert level_prices(spec(lower=100, upper=101, levels=4), TICK_001) == [D("100.00"), D("100.33"), D("100.67"),
                                                                              D("101.00")]
    assert level_prices(spec(type="geometric", lower=100, upper=200, levels=5), TICK_001) == [
        D("100.00"), D("118.92"), D("141.42"), D("168.18"), D("200.00")]
    # half-even to the nearest tick
    half = MarketRules("A/B", "A", "B", tick_size=D("0.1"))
    assert level_prices(spec(type="custom", prices=["1.25", "1.35", "2"]), half) == [D("1.2"), D("1.4"), D("2.0")]


def test_rounded_levels_that_collapse_are_an_error() -> None:
    with pytest.raises(ValueError, match=r"^grid: levels 100\.01 and 100\.01 collapse onto the same price at tick "
                                         r"size 0\.01"):
        level_prices(spec(lower=100, upper="100.02", levels=4), TICK_001)
    coarse = MarketRules("A/B", "A", "B", tick_size=D(1))
    with pytest.raises(ValueError, match="collapse"):
        level_prices(spec(type="custom", prices=["1.2", "1.4"]), coarse)


def test_no_tick_size_means_no_rounding() -> None:
    rules = MarketRules.unrestricted("A/B")
    assert level_prices(spec(lower=1, upper=2, levels=4), rules) == level_prices(spec(lower=1, upper=2, levels=4))


@pytest.mark.parametrize(
    ("price", "expected"),
    [("99", 0), ("100", 0), ("104.99", 0), ("105", 0), ("105.01", 1), ("115", 1), ("115.0001", 2), ("125", 2),
     ("130", 3), ("135", 3), ("135.01", 4), ("1000", 4), ("-5", 0)],
)
def test_nearest_level_tie_goes_to_the_lower_level(price: str, expected: int) -> None:
    assert nearest_level([D(100), D(110), D(120), D(130), D(140)], D(price)) == expected


def test_nearest_level_uneven_custom_grid() -> None:
    prices = [D(1), D(2), D(10)]
    assert nearest_level(prices, D(6)) == 1  # tie between 2 and 10
    assert nearest_level(prices, D("6.01")) == 2


# ---------------------------------------------------------------------------------------------- sizing


def test_order_quantity_with_qty_per_order() -> None:
    c = grid_config({"lower": 100, "upper": 140, "levels": 5}, qty_per_order="0.0025", investment=10)
    prices = level_prices(c.grid)
    assert order_quantity(c, prices, D(121)) == D("0.0025")  # qty_per_order wins over investment
    assert order_quantity(c, prices, D(121), TICK_001) == D("0.002")  # rounded down to the step size


def test_order_quantity_from_investment() -> None:
    c = grid_config({"lower": 100, "upper": 140, "levels": 5}, investment=1000)
    prices = level_prices(c.grid)
    # P0 = 121: level 2 (120) is empty; buys at 100 and 110, two sells bought at P0
    # q = 1000 / (100 + 110 + 2 × 121) = 1000 / 452
    assert order_quantity(c, prices, D(121)) == D("2.212389380530")  # 12 decimals, rounded down
    assert order_quantity(c, prices, D(121), TICK_001) == D("2.212")
    # P0 = 99: level 0 empty, no buy level below it; four sells at P0
    assert order_quantity(c, prices, D(99), TICK_001) == D("2.525")  # 1000 / 396 = 2.5252…
    # P0 = 150: level 4 empty; four buys (100+110+120+130 = 460), no sells
    assert order_quantity(c, prices, D(150), TICK_001) == D("2.173")  # 1000 / 460 = 2.1739…


def test_order_quantity_spends_at_most_the_investment() -> None:
    c = grid_config({"lower": "25000", "upper": "31000", "levels": 25, "type": "geometric"}, investment="1000")
    prices = level_prices(c.grid, TICK_001)
    p0 = D("28123.45")
    q = order_quantity(c, prices, p0, TICK_001)
    gap = nearest_level(prices, p0)
    spent = sum(prices[:gap], D(0)) * q + p0 * q * (len(prices) - 1 - gap)
    assert spent <= D(1000) < spent + sum(prices[:gap], D(0)) * D("0.001") + p0 * D("0.001") * (len(prices) - 1 - gap)


def test_order_quantity_too_small_investment() -> None:
    c = grid_config({"lower": 100, "upper": 140, "levels": 5}, investment="0.1")
    with pytest.raises(ValueError, match=r"^investment: too small"):
        order_quantity(c, level_prices(c.grid), D(121), TICK_001)
    c2 = grid_config({"lower": 100, "upper": 140, "levels": 5}, qty_per_order="0.0001")
    with pytest.raises(ValueError, match="investment: too small"):
        order_quantity(c2, level_prices(c2.grid), D(121), TICK_001)


# ---------------------------------------------------------------------------------------------- properties

bounds = st.tuples(
    st.decimals(min_value=D("0.0001"), max_value=D(100000), places=4, allow_nan=False, allow_infinity=False),
    st.decimals(min_value=D("1.001"), max_value=D(50), places=3, allow_nan=False, allow_infinity=False),
    st.integers(min_value=2, max_value=200),
)


@settings(max_examples=150, deadline=None)
@given(bounds, st.sampled_from(["arithmetic", "geometric"]))
def test_levels_strictly_increasing_and_count(b: tuple[Decimal, Decimal, int], kind: str) -> None:
    lower, factor, n = b
    upper = lower * factor
    prices = level_prices(spec(type=kind, lower=lower, upper=upper, levels=n))
    assert len(prices) == n
    assert prices[0] == lower and prices[-1] == upper
    assert all(b > a for a, b in itertools.pairwise(prices))


@settings(max_examples=150, deadline=None)
@given(bounds)
def test_geometric_ratios_constant(b: tuple[Decimal, Decimal, int]) -> None:
    lower, factor, n = b
    prices = level_prices(spec(type="geometric", lower=lower, upper=lower * factor, levels=n))
    ratios = [b / a for a, b in itertools.pairwise(prices)]
    expected = factor ** (D(1) / (n - 1))
    assert all(abs(r - expected) <= expected * D("1e-24") for r in ratios)


@settings(max_examples=150, deadline=None)
@given(bounds)
def test_arithmetic_steps_constant(b: tuple[Decimal, Decimal, int]) -> None:
    lower, factor, n = b
    upper = lower * factor
    prices = level_prices(spec(lower=lower, upper=upper, levels=n))
    step = (upper - lower) / (n - 1)
    assert all(abs((b - a) - step) <= upper * D("1e-26") for a, b in itertools.pairwise(prices))


@settings(max_examples=100, deadline=None)
@given(bounds, st.sampled_from(["0.01", "0.5", "1"]))
def test_tick_rounded_levels_are_on_the_tick_or_refused(b: tuple[Decimal, Decimal, int], tick: str) -> None:
    lower, factor, n = b
    rules = MarketRules("A/B", "A", "B", tick_size=D(tick))
    try:
        prices = level_prices(spec(type="geometric", lower=lower, upper=lower * factor, levels=n), rules)
    except ValueError as exc:
        assert "collapse" in str(exc)
        return
    assert all(p % D(tick) == 0 for p in prices)
    assert all(b > a for a, b in itertools.pairwise(prices))
