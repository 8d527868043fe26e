"""Tests of the performance metrics with small hand-computed series and edge cases."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest

from gridfleet.backtest.metrics import (
    DAY_MS,
    compute_metrics,
    daily_returns,
    drawdown_series,
    resample_equity,
    resample_indices,
)

HOUR = 3_600_000
EXPECTED_KEYS = {
    "total_return_pct",
    "annualized_return_pct",
    "max_drawdown_pct",
    "sharpe",
    "sortino",
    "win_rate",
    "profit_factor",
    "round_trips",
    "time_in_range_pct",
    "initial_equity",
    "final_equity",
    "duration_days",
}


def metrics(
    t: list[int],
    e: list[float],
    *,
    initial: float = 100.0,
    trips: list[float] | None = None,
    in_range: list[bool] | None = None,
) -> dict[str, object]:
    return compute_metrics(
        np.array(t, dtype=np.int64),
        np.array(e, dtype=np.float64),
        initial_equity=initial,
        round_trip_profits=trips or [],
        in_range=None if in_range is None else np.array(in_range, dtype=bool),
    )


def test_hand_computed_series() -> None:
    # one sample per UTC day (at midday): day ends 100, 110, 99, 121; initial equity 100
    t = [d * DAY_MS + 12 * HOUR for d in range(4)]
    m = metrics(t, [100.0, 110.0, 99.0, 121.0], trips=[1.0, -0.5, 2.0, 0.0], in_range=[True, True, False, True])
    assert set(m) == EXPECTED_KEYS
    assert m["total_return_pct"] == pytest.approx(21.0, abs=1e-12)
    # 3 days elapsed: (1.21 ** (365 / 3) - 1) * 100
    assert m["annualized_return_pct"] == pytest.approx((1.21 ** (365 / 3) - 1) * 100, rel=1e-12)
    # peak 110 -> trough 99 = 10 %
    assert m["max_drawdown_pct"] == pytest.approx(10.0, abs=1e-12)
    # daily returns vs the previous day end (first vs initial equity): 0, +10 %, -10 %, +2/9
    r = [0.0, 0.1, -0.1, 2 / 9]
    mean = sum(r) / 4  # 1/18
    assert m["sharpe"] == pytest.approx(mean / statistics.stdev(r) * math.sqrt(365), rel=1e-12)
    downside = math.sqrt((0.1**2) / 4)  # 0.05
    assert m["sortino"] == pytest.approx((1 / 18) / downside * math.sqrt(365), rel=1e-12)
    assert m["sortino"] == pytest.approx(21.2277, abs=1e-4)
    assert m["sharpe"] == pytest.approx(7.6976, abs=1e-4)
    assert m["win_rate"] == 50.0  # 2 of 4 (a 0.0 trip is not a win)
    assert m["profit_factor"] == pytest.approx(6.0)  # 3.0 / 0.5
    assert m["round_trips"] == 4
    assert m["time_in_range_pct"] == 75.0
    assert m["initial_equity"] == 100.0
    assert m["final_equity"] == 121.0
    assert m["duration_days"] == 3.0


def test_total_return_uses_initial_equity_not_first_point() -> None:
    m = metrics([0, DAY_MS], [90.0, 99.0], initial=100.0)
    assert m["total_return_pct"] == pytest.approx(-1.0)
    assert m["max_drawdown_pct"] == pytest.approx(0.0)  # the series itself only goes up
    # one year elapsed: annualized == total
    m = metrics([0, 365 * DAY_MS], [100.0, 150.0])
    assert m["annualized_return_pct"] == pytest.approx(50.0)
    # half a year, +21 % -> 1.21 ** 2 - 1 = 46.41 %
    m = metrics([0, 365 * DAY_MS // 2], [100.0, 121.0])
    assert m["annualized_return_pct"] == pytest.approx(46.41)


def test_daily_returns_resample_to_utc_day_ends_with_forward_fill() -> None:
    # day 0: 100 @10:00, 105 @20:00 (day end 105); day 1: no sample (carry 105); day 2: 94.5
    t = [10 * HOUR, 20 * HOUR, 2 * DAY_MS + 12 * HOUR]
    r = daily_returns(t, [100.0, 105.0, 94.5], initial_equity=100.0)
    assert r.tolist() == pytest.approx([0.05, 0.0, -0.1])
    # a sample exactly at midnight belongs to the new day
    r = daily_returns([DAY_MS - 1, DAY_MS], [101.0, 102.0], initial_equity=100.0)
    assert r.tolist() == pytest.approx([0.01, 1 / 101])
    assert daily_returns([], [], initial_equity=100.0).tolist() == []


def test_flat_equity() -> None:
    t = [i * HOUR for i in range(100)]
    m = metrics(t, [100.0] * 100, in_range=[True] * 100)
    assert m["total_return_pct"] == 0.0
    assert m["annualized_return_pct"] == 0.0
    assert m["max_drawdown_pct"] == 0.0
    assert m["sharpe"] == 0.0
    assert m["sortino"] == 0.0
    assert m["win_rate"] == 0.0
    assert m["profit_factor"] is None
    assert m["round_trips"] == 0
    assert m["time_in_range_pct"] == 100.0


def test_single_point() -> None:
    m = metrics([1_700_000_000_000], [105.0])
    assert m["total_return_pct"] == pytest.approx(5.0)
    assert m["annualized_return_pct"] == 0.0  # zero elapsed time
    assert m["max_drawdown_pct"] == 0.0
    assert m["sharpe"] == 0.0 and m["sortino"] == 0.0
    assert m["duration_days"] == 0.0
    assert m["time_in_range_pct"] is None


def test_empty_series() -> None:
    m = metrics([], [], in_range=[])
    assert m["total_return_pct"] == 0.0
    assert m["annualized_return_pct"] == 0.0
    assert m["max_drawdown_pct"] == 0.0
    assert m["final_equity"] == 100.0
    assert m["time_in_range_pct"] == 0.0


def test_monotone_up() -> None:
    t = [d * DAY_MS for d in range(30)]
    e = [100.0 * 1.01**d for d in range(30)]
    e[10] = e[9] * 1.02  # make the daily returns non-constant (std > 0)
    for d in range(11, 30):
        e[d] = e[d - 1] * 1.01
    m = metrics(t, e)
    assert m["max_drawdown_pct"] == 0.0
    assert m["sharpe"] > 0 and math.isfinite(m["sharpe"])  # type: ignore[arg-type]
    assert m["sortino"] == 0.0  # no downside: undefined -> 0.0


def test_constant_positive_daily_return_sharpe_is_zero_not_inf() -> None:
    t = [d * DAY_MS for d in range(10)]
    e = [100.0 * 1.01 ** (d + 1) for d in range(10)]
    m = metrics(t, e)
    assert m["sharpe"] == 0.0  # std 0 -> undefined -> 0.0
    assert m["sortino"] == 0.0


def test_profit_factor_and_win_rate() -> None:
    m = metrics([0], [100.0], trips=[-1.0, -2.0])
    assert m["profit_factor"] == 0.0
    assert m["win_rate"] == 0.0
    m = metrics([0], [100.0], trips=[1.0, 2.0, 3.0])
    assert m["profit_factor"] is None  # no losing trip
    assert m["win_rate"] == 100.0
    assert m["round_trips"] == 3


def test_annualized_overflow_and_total_loss() -> None:
    m = metrics([0, 60_000], [100.0, 200.0])  # +100 % in one minute
    assert m["annualized_return_pct"] is None
    m = metrics([0, DAY_MS], [100.0, 0.0])
    assert m["annualized_return_pct"] == -100.0
    assert m["max_drawdown_pct"] == 100.0


def test_results_are_json_safe() -> None:
    rng = np.random.default_rng(7)
    t = np.arange(5000, dtype=np.int64) * 15 * 60_000
    e = 1000 * np.cumprod(1 + rng.normal(0, 0.002, 5000))
    m = compute_metrics(t, e, initial_equity=1000.0, round_trip_profits=[0.5, -0.2], in_range=e > 990)
    text = json.dumps(m, allow_nan=False)
    assert "NaN" not in text
    for key, value in m.items():
        assert value is None or type(value) in (int, float), key


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError, match="initial_equity"):
        metrics([0], [1.0], initial=0.0)
    with pytest.raises(ValueError, match="length"):
        metrics([0, 1], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        metrics([0, 1], [1.0, float("nan")])
    with pytest.raises(ValueError, match="sorted"):
        metrics([5, 1], [1.0, 1.0])


def test_drawdown_series() -> None:
    dd = drawdown_series([100.0, 120.0, 90.0, 130.0, 117.0])
    assert dd.tolist() == pytest.approx([0.0, 0.0, 25.0, 0.0, 10.0])
    assert drawdown_series([]).tolist() == []
    assert drawdown_series([5.0, 5.0]).tolist() == [0.0, 0.0]
    # max of the series == max_drawdown_pct
    e = [100.0, 120.0, 90.0, 130.0, 117.0]
    assert metrics(list(range(5)), e)["max_drawdown_pct"] == pytest.approx(25.0)


def test_resample_equity_hand_example() -> None:
    # 10 points, 4 max -> 3 time buckets [0,3) [3,6) [6,9]: last of each bucket + the first point
    t = list(range(10))
    e = [float(x) for x in t]
    assert resample_equity(t, e, max_points=4) == [(0, 0.0), (2, 2.0), (5, 5.0), (9, 9.0)]


def test_resample_equity_short_is_unchanged() -> None:
    pts = resample_equity([10, 20, 30], [1.0, 2.0, 3.0])
    assert pts == [(10, 1.0), (20, 2.0), (30, 3.0)]
    assert all(type(a) is int and type(b) is float for a, b in pts)
    assert resample_equity([], []) == []


def test_resample_equity_large() -> None:
    n = 130_708
    t = np.arange(n, dtype=np.int64) * 60_000 + 1_747_699_200_000
    e = 10_000 + np.sin(np.arange(n) / 500.0) * 100
    pts = resample_equity(t, e, max_points=2000)
    assert 1900 <= len(pts) <= 2000
    assert pts[0] == (int(t[0]), float(e[0]))
    assert pts[-1] == (int(t[-1]), float(e[-1]))
    ts = [p[0] for p in pts]
    assert ts == sorted(set(ts))
    lookup = dict(zip(t.tolist(), e.tolist(), strict=True))
    assert all(lookup[a] == b for a, b in pts)


def test_resample_indices_degenerate() -> None:
    assert resample_indices(np.array([5, 5, 5, 5]), 2).tolist() == [0, 3]
    with pytest.raises(ValueError):
        resample_indices(np.array([1, 2, 3]), 1)
