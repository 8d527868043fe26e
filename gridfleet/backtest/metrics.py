"""Performance metrics of a backtest, computed from the equity curve and the closed round trips.

These numbers are for reporting only, so they use numpy floats (the engine itself is exact). Every metric's
exact definition is in ``docs/backtest-report.md``; all returned values are finite plain Python numbers (or
``None`` where documented), so the dict serialises to JSON as is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "DAY_MS",
    "PERIODS_PER_YEAR",
    "YEAR_MS",
    "compute_metrics",
    "daily_returns",
    "drawdown_series",
    "resample_equity",
    "resample_indices",
]

DAY_MS: int = 86_400_000
"""One UTC day in milliseconds."""

YEAR_MS: int = 365 * DAY_MS
"""One year for annualisation: 365 days (crypto markets trade every day)."""

PERIODS_PER_YEAR: int = 365
"""Daily returns per year used to annualise Sharpe and Sortino (``sqrt(365)``)."""


def _as_arrays(
    timestamps_ms: np.ndarray | Sequence[int], equity: np.ndarray | Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(timestamps_ms, dtype=np.int64).reshape(-1)
    e = np.asarray(equity, dtype=np.float64).reshape(-1)
    if len(t) != len(e):
        raise ValueError(f"timestamps ({len(t)}) and equity ({len(e)}) differ in length")
    if len(t) > 1 and bool(np.any(np.diff(t) < 0)):
        raise ValueError("timestamps must be sorted ascending")
    return t, e


def drawdown_series(equity: np.ndarray | Sequence[float]) -> np.ndarray:
    """Return the drawdown at each point in percent below the running peak: ``(peak - equity) / peak * 100``.

    Values are ``>= 0`` (0 at a new high); the maximum is the max drawdown. Points whose running peak is not
    positive get 0.
    """
    e = np.asarray(equity, dtype=np.float64).reshape(-1)
    if len(e) == 0:
        return np.zeros(0, dtype=np.float64)
    peak = np.maximum.accumulate(e)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, (peak - e) / np.where(peak > 0, peak, 1.0) * 100.0, 0.0)
    return np.asarray(np.maximum(dd, 0.0), dtype=np.float64)


def resample_indices(timestamps: np.ndarray | Sequence[int], max_points: int) -> np.ndarray:
    """Return the indices :func:`resample_equity` keeps (sorted, unique, first and last included).

    Useful to downsample series that run parallel to the equity curve the same way.
    """
    t = np.asarray(timestamps, dtype=np.int64).reshape(-1)
    n = len(t)
    if max_points < 2:
        raise ValueError("max_points must be >= 2")
    if n <= max_points:
        return np.arange(n)
    span = int(t[-1] - t[0])
    if span <= 0:
        return np.array([0, n - 1])
    buckets = max_points - 1  # + the first point
    b = ((t - t[0]).astype(np.float64) * buckets / span).astype(np.int64)
    b = np.minimum(b, buckets - 1)
    last_in_bucket = np.flatnonzero(np.diff(b) != 0)  # index before each bucket change
    idx = np.concatenate(([0], last_in_bucket, [n - 1]))
    return np.unique(idx)


def resample_equity(
    timestamps: np.ndarray | Sequence[int], equity: np.ndarray | Sequence[float], max_points: int = 2000
) -> list[tuple[int, float]]:
    """Downsample an equity curve to at most ``max_points`` ``(timestamp_ms, equity)`` points for charts.

    The time range is cut into ``max_points - 1`` equal buckets and each bucket keeps its last point; the very
    first and last points are always kept. A curve of ``max_points`` points or fewer is returned unchanged.
    """
    t, e = _as_arrays(timestamps, equity)
    if len(t) == 0:
        return []
    idx = resample_indices(t, max_points)
    return [(int(t[i]), float(e[i])) for i in idx]


def daily_returns(
    timestamps_ms: np.ndarray | Sequence[int], equity: np.ndarray | Sequence[float], *, initial_equity: float
) -> np.ndarray:
    """Return the simple returns of the equity between consecutive UTC day ends.

    The day-end equity of each UTC calendar day from the first to the last sample is the last sample of that
    day (carried forward over days without samples); the first return is measured against ``initial_equity``.
    So ``D`` calendar days give ``D`` returns.
    """
    t, e = _as_arrays(timestamps_ms, equity)
    if len(t) == 0:
        return np.zeros(0, dtype=np.float64)
    day = t // DAY_MS
    last_of_day = np.flatnonzero(np.append(np.diff(day) != 0, True))
    days = day[last_of_day] - day[0]
    closes = np.empty(int(days[-1]) + 1, dtype=np.float64)
    filled = np.zeros(len(closes), dtype=bool)
    closes[days] = e[last_of_day]
    filled[days] = True
    # forward-fill calendar days without samples
    pos = np.where(filled, np.arange(len(closes)), 0)
    np.maximum.accumulate(pos, out=pos)
    closes = closes[pos]
    prev = np.concatenate(([float(initial_equity)], closes[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(prev != 0, closes / np.where(prev != 0, prev, 1.0) - 1.0, 0.0)
    return np.asarray(r, dtype=np.float64)


def _finite(x: float) -> float:
    return float(x) if math.isfinite(x) else 0.0


def compute_metrics(
    timestamps_ms: np.ndarray,
    equity: np.ndarray,
    *,
    initial_equity: float,
    round_trip_profits: Sequence[float],
    in_range: np.ndarray | None,
) -> dict[str, Any]:
    """Compute the backtest performance metrics.

    ``timestamps_ms``/``equity`` are the (sorted) equity curve in quote currency, ``initial_equity`` the
    equity before the first candle, ``round_trip_profits`` the net profit of each closed round trip (buy then
    sell of one grid level), ``in_range`` a per-candle bool array (price inside the grid range) or ``None``.

    Returns a dict with ``total_return_pct``, ``annualized_return_pct`` (``None`` only if it overflows a
    float), ``max_drawdown_pct`` (positive), ``sharpe``, ``sortino`` (0.0 when undefined), ``win_rate`` (%),
    ``profit_factor`` (``None`` when no losing trip), ``round_trips``, ``time_in_range_pct`` (``None`` when
    ``in_range`` is ``None``), plus ``initial_equity``, ``final_equity`` and ``duration_days``.
    Definitions: ``docs/backtest-report.md``.
    """
    if not initial_equity > 0 or not math.isfinite(initial_equity):
        raise ValueError(f"initial_equity must be positive, got {initial_equity!r}")
    t, e = _as_arrays(timestamps_ms, equity)
    if len(e) and not bool(np.all(np.isfinite(e))):
        raise ValueError("equity contains NaN or infinite values")

    final = float(e[-1]) if len(e) else float(initial_equity)
    ratio = final / initial_equity
    total_return_pct = (ratio - 1.0) * 100.0

    elapsed_ms = int(t[-1] - t[0]) if len(t) > 1 else 0
    annualized: float | None
    if elapsed_ms <= 0:
        annualized = 0.0
    elif ratio <= 0:
        annualized = -100.0
    else:
        try:
            annualized = math.expm1(math.log(ratio) * YEAR_MS / elapsed_ms) * 100.0
        except OverflowError:
            annualized = None

    max_dd = float(drawdown_series(e).max()) if len(e) else 0.0

    r = daily_returns(t, e, initial_equity=initial_equity)
    sharpe = 0.0
    sortino = 0.0
    if len(r) >= 2:
        mean = float(r.mean())
        std = float(r.std(ddof=1))
        if std > 1e-15:
            sharpe = _finite(mean / std * math.sqrt(PERIODS_PER_YEAR))
        downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)))
        if downside > 1e-15:
            sortino = _finite(mean / downside * math.sqrt(PERIODS_PER_YEAR))

    profits = np.asarray(list(round_trip_profits), dtype=np.float64)
    n_trips = len(profits)
    wins = int(np.count_nonzero(profits > 0))
    win_rate = wins / n_trips * 100.0 if n_trips else 0.0
    gross_profit = float(profits[profits > 0].sum())
    gross_loss = float(-profits[profits < 0].sum())
    profit_factor = gross_profit / gross_loss if gross_loss > 0 else None

    time_in_range: float | None
    if in_range is None:
        time_in_range = None
    else:
        ir = np.asarray(in_range, dtype=bool).reshape(-1)
        time_in_range = float(np.count_nonzero(ir)) / len(ir) * 100.0 if len(ir) else 0.0

    return {
        "total_return_pct": float(total_return_pct),
        "annualized_return_pct": annualized,
        "max_drawdown_pct": max_dd,
        "sharpe": sharpe,
        "sortino": sortino,
        "win_rate": float(win_rate),
        "profit_factor": profit_factor,
        "round_trips": n_trips,
        "time_in_range_pct": time_in_range,
        "initial_equity": float(initial_equity),
        "final_equity": final,
        "duration_days": elapsed_ms / DAY_MS,
    }
