"""Tests for the compiled plain-grid sweep kernel (gridfleet.backtest.sweep_kernel).

The golden cases check the kernel against figures from an independent implementation on real candles; the
property tests check it against a small pure-Python event-loop reference written here, which shares no code
with the kernel (it keeps an explicit order book and walks every price-path segment).
"""

from __future__ import annotations

import itertools
import json
import math
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridfleet.backtest.sweep_kernel import (
    RESULT_COLUMNS,
    expand_param_grid,
    grid_levels,
    order_qty,
    run_grid_kernel,
    run_sweep,
    sweep_kernel,
)

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO.parent / "shared" / "golden" / "grid_cases.json"
KERNEL_FIELDS = RESULT_COLUMNS[:11]

# --------------------------------------------------------------------------------------- reference


def ref_levels(kind: str, lower: float, upper: float, n: int) -> list[float]:
    """Level prices straight from the formulas, end levels pinned to lower and upper."""
    if kind == "arithmetic":
        out = [lower + k * (upper - lower) / (n - 1) for k in range(n)]
    else:
        out = [lower * (upper / lower) ** (k / (n - 1)) for k in range(n)]
    out[0], out[-1] = lower, upper
    return out


def reference_backtest(candles: list[tuple[float, float, float, float]], levels: list[float], qty: float,
                       investment: float, maker: float, taker: float, slippage: float) -> dict[str, Any]:
    """Plain grid as a straightforward event loop over the path segments of every candle.

    The order book is a dict level index -> side. On a segment moving down, every buy at or above the
    segment's end fills (highest first); moving up, every sell at or below the end fills (lowest first); on a
    flat segment both. Counter-orders join the book at once, so they can fill later on the same path. Also
    checks the book invariants after every fill.
    """
    n = len(levels)
    p0 = candles[0][0]
    gap = min(range(n), key=lambda k: (abs(levels[k] - p0), k))
    book: dict[int, str] = {k: ("buy" if k < gap else "sell") for k in range(n) if k != gap}
    quote, base, fees = investment, 0.0, 0.0
    n_sells = sum(1 for side in book.values() if side == "sell")
    market_base = qty * n_sells
    cost = market_base * p0 * (1 + slippage)
    quote -= cost
    quote -= cost * taker
    fees += cost * taker
    base += market_base
    buys = sells = 0
    profit = 0.0
    peak, max_dd = investment, 0.0
    in_range = 0
    min_base = base
    gaps_seen = {gap}

    def check_book() -> None:
        assert len(book) == n - 1
        empty = [k for k in range(n) if k not in book]
        assert len(empty) == 1
        gaps_seen.add(empty[0])
        assert all(side == ("buy" if k < empty[0] else "sell") for k, side in book.items())

    pos: float | None = None
    for o, h, lo, c in candles:
        path = [o, lo, h, c] if c >= o else [o, h, lo, c]
        if pos is None:
            pos = o
        for target in path:
            while True:
                buys_hit = [k for k, s in book.items() if s == "buy" and levels[k] >= target]
                sells_hit = [k for k, s in book.items() if s == "sell" and levels[k] <= target]
                if buys_hit and target <= pos:
                    k = max(buys_hit)
                    notional = levels[k] * qty
                    quote -= notional
                    quote -= notional * maker
                    fees += notional * maker
                    base += qty
                    buys += 1
                    del book[k]
                    assert k + 1 not in book
                    book[k + 1] = "sell"
                elif sells_hit and target >= pos:
                    k = min(sells_hit)
                    notional = levels[k] * qty
                    quote += notional
                    quote -= notional * maker
                    fees += notional * maker
                    base -= qty
                    sells += 1
                    profit += (levels[k] - levels[k - 1]) * qty
                    del book[k]
                    assert k - 1 not in book
                    book[k - 1] = "buy"
                else:
                    break
                min_base = min(min_base, base)
                check_book()
            pos = target
        equity = quote + base * c
        peak = max(peak, equity)
        max_dd = max(max_dd, (peak - equity) / peak * 100)
        if levels[0] <= c <= levels[-1]:
            in_range += 1
    return {
        "buy_fills": buys,
        "sell_fills": sells,
        "final_quote": quote,
        "final_base": base,
        "fees_paid": fees,
        "grid_profit": profit,
        "max_drawdown_pct": max_dd,
        "final_equity": quote + base * candles[-1][3],
        "time_in_range": in_range,
        "empty_level_index": gap,
        "initial_market_buy_base": market_base,
        "_min_base": min_base,
        "_gaps_seen": gaps_seen,
    }


def as_arrays(candles: list[tuple[float, float, float, float]]) -> tuple[np.ndarray, ...]:
    """open, high, low, close float64 arrays of (open, high, low, close) tuples."""
    arr = np.array(candles, dtype=np.float64).reshape(-1, 4)
    return tuple(np.ascontiguousarray(arr[:, j]) for j in range(4))


def kernel_dict(result: tuple[Any, ...]) -> dict[str, Any]:
    """The single-run kernel's tuple as a dict keyed by the first eleven result columns."""
    return dict(zip(KERNEL_FIELDS, result, strict=True))


COUNT_FIELDS = ("buy_fills", "sell_fills", "time_in_range", "empty_level_index")
MONEY_FIELDS = ("final_quote", "final_base", "fees_paid", "grid_profit", "max_drawdown_pct", "final_equity",
                "initial_market_buy_base")


def assert_matches_reference(got: dict[str, Any], ref: dict[str, Any], investment: float, qty: float) -> None:
    """Counts equal; money within 1e-9 relative (with an absolute floor for values that cancel to ~0)."""
    for name in COUNT_FIELDS:
        assert got[name] == ref[name], name
    floors = {"final_base": 1e-12 * qty, "initial_market_buy_base": 1e-12 * qty, "max_drawdown_pct": 1e-9}
    for name in MONEY_FIELDS:
        abs_tol = floors.get(name, 1e-12 * investment)
        assert math.isclose(got[name], ref[name], rel_tol=1e-9, abs_tol=abs_tol), (name, got[name], ref[name])


# ------------------------------------------------------------------------------------------ golden


def _golden_cases() -> list[dict[str, Any]]:
    if not GOLDEN.exists():
        return []
    return list(json.loads(GOLDEN.read_text()))


_DATA_CACHE: dict[str, pd.DataFrame] = {}


def _load(case: dict[str, Any]) -> pd.DataFrame:
    path = (REPO / case["data"]).resolve()
    if not path.exists():
        pytest.skip(f"data file {path} not available")
    key = str(path)
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = pd.read_csv(path)
    return _DATA_CACHE[key]


def _rel_close(got: float, want: float, rel: float = 1e-6) -> bool:
    return math.isclose(got, want, rel_tol=rel, abs_tol=1e-9)


@pytest.mark.parametrize("case", _golden_cases(), ids=lambda c: c["name"])
def test_golden_case(case: dict[str, Any]) -> None:
    df = _load(case)
    cfg, exp = case["config"], case["expected"]
    grid = cfg["grid"]
    o, h, lo, c = (df[col].to_numpy(np.float64) for col in ("open", "high", "low", "close"))
    assert len(df) == exp["candles"]
    assert o[0] == exp["start_price"] and c[-1] == exp["last_close"]
    levels = grid_levels(grid["type"], grid["lower"], grid["upper"], grid["levels"])
    qty, inv = float(cfg["qty_per_order"]), float(cfg["investment"])
    maker, taker, slip = float(cfg["fees"]["maker"]), float(cfg["fees"]["taker"]), float(cfg["slippage"])

    single = kernel_dict(run_grid_kernel(o, h, lo, c, levels, qty, inv, maker, taker, slip))
    assert single["buy_fills"] == exp["buy_fills"]
    assert single["sell_fills"] == exp["sell_fills"]
    assert single["empty_level_index"] == exp["empty_level_index"]
    assert _rel_close(single["initial_market_buy_base"], exp["initial_market_buy_base"])
    assert _rel_close(single["final_base"], exp["final_base_minus_initial_base"])  # initial base is 0
    assert _rel_close(single["final_quote"] - inv, exp["final_quote_minus_initial_quote"])
    assert _rel_close(single["fees_paid"], exp["fees_paid"])
    equity = single["final_quote"] + single["final_base"] * exp["last_close"]
    assert _rel_close(single["final_equity"], equity, 1e-12)
    assert single["max_drawdown_pct"] >= 0

    # The sweep (with a second, different combo in the batch) gives the very same numbers.
    combos = [dict(grid), {"type": "geometric", "lower": grid["lower"] * 0.9, "upper": grid["upper"] * 1.1,
                           "levels": grid["levels"] + 7}]
    swept = run_sweep(o, h, lo, c, combos, qty=qty, investment=inv, maker=maker, taker=taker, slippage=slip)
    row = swept[0]
    for name in KERNEL_FIELDS:
        assert row[name] == single[name], name
    assert row["qty"] == qty
    assert row["total_return_pct"] == (single["final_equity"] / inv - 1) * 100
    assert {k: row[k] for k in grid} == grid

    # time_in_range cross-checked directly on the closes.
    assert single["time_in_range"] == int(((c >= grid["lower"]) & (c <= grid["upper"])).sum())


@pytest.mark.parametrize("case", _golden_cases(), ids=lambda c: c["name"])
def test_golden_prefix_matches_reference(case: dict[str, Any]) -> None:
    """The first 3000 real candles of each golden file: kernel == pure-Python reference."""
    df = _load(case).iloc[:3000]
    cfg = case["config"]
    grid = cfg["grid"]
    candles = list(zip(df["open"], df["high"], df["low"], df["close"], strict=True))
    levels = ref_levels(grid["type"], float(grid["lower"]), float(grid["upper"]), grid["levels"])
    # A finer grid around the start so that there are plenty of fills.
    p0 = candles[0][0]
    for lv in (levels, ref_levels("geometric", p0 * 0.99, p0 * 1.01, 25)):
        args = (0.01, 1e6, 0.001, 0.002, 0.0005)
        got = kernel_dict(run_grid_kernel(*as_arrays(candles), np.array(lv), *args))
        ref = reference_backtest(candles, lv, *args)
        assert_matches_reference(got, ref, 1e6, 0.01)


# --------------------------------------------------------------------------------------- hand-made


def test_hand_computed_scenario() -> None:
    # Levels 100, 110, 120, 130, 140; P0 = 121 -> gap at 120 (index 2); buys 100, 110; sells 130, 140.
    levels = np.array([100.0, 110.0, 120.0, 130.0, 140.0])
    candles = [
        (121.0, 131.0, 109.0, 115.0),  # down: 121 -> 131 (sell 130) -> 109 (buys 120 then 110) -> 115
        (115.0, 141.0, 115.0, 140.0),  # up: 115 -> 115 -> 141 (sells 120, 130, 140) -> 140
        (140.0, 140.0, 95.0, 96.0),  # down: 140 -> 140 -> 95 (buys 130, 120, 110, 100) -> 96
    ]
    got = kernel_dict(run_grid_kernel(*as_arrays(candles), levels, 1.0, 1000.0, 0.0, 0.0, 0.0))
    assert got["empty_level_index"] == 2
    assert got["initial_market_buy_base"] == 2.0
    assert got["buy_fills"] == 6
    assert got["sell_fills"] == 4
    assert got["final_base"] == 4.0
    # quote: 1000 - 2*121 | +130 -120 -110 | +120 +130 +140 | -130 -120 -110 -100
    assert got["final_quote"] == 1000 - 242 + 130 - 230 + 390 - 460
    assert got["grid_profit"] == 40.0
    assert got["fees_paid"] == 0.0
    assert got["time_in_range"] == 2  # closes 115, 140 in range, 96 below
    # equity at the closes: 658 + 3*115 = 1003, 1048 + 0 = 1048, 588 + 4*96 = 972 -> drawdown 76/1048
    assert got["final_equity"] == 972.0
    assert math.isclose(got["max_drawdown_pct"], 76 / 1048 * 100, rel_tol=1e-12)
    ref = reference_backtest(candles, levels.tolist(), 1.0, 1000.0, 0.0, 0.0, 0.0)
    assert_matches_reference(got, ref, 1000.0, 1.0)


def test_fill_exactly_at_level_and_start_outside_range() -> None:
    levels = np.array([10.0, 20.0, 30.0])
    # P0 = 50 above the grid: gap at the top level, buys at 10 and 20, no base bought.
    candles = [(50.0, 50.0, 20.0, 20.0), (20.0, 30.0, 20.0, 30.0)]
    got = kernel_dict(run_grid_kernel(*as_arrays(candles), levels, 2.0, 100.0, 0.01, 0.01, 0.0))
    assert got["empty_level_index"] == 2 and got["initial_market_buy_base"] == 0.0
    assert got["buy_fills"] == 1 and got["sell_fills"] == 1  # touches 20 exactly, then 30 exactly
    assert got["time_in_range"] == 2
    assert math.isclose(got["grid_profit"], 20.0)
    assert math.isclose(got["fees_paid"], 0.01 * (40 + 60))


def test_tie_goes_to_lower_level_and_slippage() -> None:
    levels = np.array([100.0, 200.0, 300.0])
    candles = [(150.0, 150.0, 150.0, 150.0)]
    got = kernel_dict(run_grid_kernel(*as_arrays(candles), levels, 1.0, 1000.0, 0.0, 0.002, 0.01))
    assert got["empty_level_index"] == 0
    assert got["initial_market_buy_base"] == 2.0
    cost = 2.0 * 150.0 * 1.01
    assert math.isclose(got["final_quote"], 1000 - cost - cost * 0.002, rel_tol=1e-15)
    assert math.isclose(got["fees_paid"], cost * 0.002, rel_tol=1e-15)


# -------------------------------------------------------------------------------------- properties


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """A random small grid and candle series, with prices often exactly on levels or between them."""
    kind = draw(st.sampled_from(["arithmetic", "geometric"]))
    lower = draw(st.floats(1.0, 1000.0))
    upper = lower * (1.0 + draw(st.floats(0.02, 2.0)))
    n = draw(st.integers(2, 12))
    levels = ref_levels(kind, lower, upper, n)
    mids = [(a + b) / 2 for a, b in itertools.pairwise(levels)]
    price = st.one_of(st.floats(lower * 0.7, upper * 1.3), st.sampled_from(levels), st.sampled_from(mids))
    candles: list[tuple[float, float, float, float]] = []
    prev_close: float | None = None
    for _ in range(draw(st.integers(1, 25))):
        o = prev_close if prev_close is not None and draw(st.booleans()) else draw(price)
        c, x, y = draw(price), draw(price), draw(price)
        candles.append((o, max(o, c, x), min(o, c, y), c))
        prev_close = c
    auto = draw(st.booleans())
    investment = draw(st.floats(1e3, 1e6))
    step = draw(st.sampled_from([0.0, 1e-5, 0.001, 0.1]))
    qty = float(order_qty(np.array(levels), candles[0][0], investment, step)) if auto else draw(
        st.floats(0.001, 10.0))
    return {
        "kind": kind, "lower": lower, "upper": upper, "n": n, "levels": levels, "candles": candles,
        "qty": qty, "investment": investment, "step": step, "auto": auto,
        "maker": draw(st.sampled_from([0.0, 0.001, 0.0075])),
        "taker": draw(st.sampled_from([0.0, 0.001, 0.002])),
        "slippage": draw(st.sampled_from([0.0, 0.0005, 0.01])),
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_kernel_matches_reference(sc: dict[str, Any]) -> None:
    if sc["qty"] <= 0:  # auto qty rounded down to nothing: not a tradable setup
        return
    args = (sc["qty"], sc["investment"], sc["maker"], sc["taker"], sc["slippage"])
    got = kernel_dict(run_grid_kernel(*as_arrays(sc["candles"]), np.array(sc["levels"]), *args))
    ref = reference_backtest(sc["candles"], sc["levels"], *args)
    assert_matches_reference(got, ref, sc["investment"], sc["qty"])

    n, qty = sc["n"], sc["qty"]
    # Invariants: the book always has n-1 orders, i.e. the gap index stays within the levels.
    final_gap = got["empty_level_index"] + got["sell_fills"] - got["buy_fills"]
    assert 0 <= final_gap <= n - 1
    assert all(0 <= g <= n - 1 for g in ref["_gaps_seen"])
    assert ref["_min_base"] >= -1e-12 * qty
    assert got["final_base"] >= 0
    assert math.isclose(got["final_base"], qty * (n - 1 - final_gap), rel_tol=1e-12, abs_tol=1e-15)
    net = (got["final_base"] - got["initial_market_buy_base"]) / qty
    assert got["buy_fills"] - got["sell_fills"] == round(net)
    assert abs(net - round(net)) < 1e-9
    assert got["grid_profit"] >= -1e-12
    assert math.isclose(got["final_equity"], got["final_quote"] + got["final_base"] * sc["candles"][-1][3],
                        rel_tol=1e-12, abs_tol=1e-12 * sc["investment"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(scenarios(), min_size=1, max_size=4), st.booleans())
def test_sweep_equals_single_runs(scs: list[dict[str, Any]], auto_qty: bool) -> None:
    candles = scs[0]["candles"]
    o, h, lo, c = as_arrays(candles)
    combos = [{"type": s["kind"], "lower": s["lower"], "upper": s["upper"], "levels": s["n"]} for s in scs]
    qty = None if auto_qty else 0.37
    try:
        rows = run_sweep(o, h, lo, c, combos, qty=qty, investment=12345.0, maker=0.001, taker=0.002,
                         slippage=0.001, step=0.0001)
    except ValueError as exc:  # auto qty rounded down to zero for some combo
        assert auto_qty and "too small" in str(exc)
        return
    assert len(rows) == len(combos)
    for combo, row in zip(combos, rows, strict=True):
        levels = grid_levels(combo["type"], combo["lower"], combo["upper"], combo["levels"])
        q = float(order_qty(levels, o[0], 12345.0, 0.0001)) if auto_qty else 0.37
        assert row["qty"] == q
        single = kernel_dict(run_grid_kernel(o, h, lo, c, levels, q, 12345.0, 0.001, 0.002, 0.001))
        for name in KERNEL_FIELDS:
            assert row[name] == single[name], name
        assert {k: row[k] for k in combo} == combo
        assert row["total_return_pct"] == (row["final_equity"] / 12345.0 - 1) * 100
        assert all(isinstance(row[k], int) for k in COUNT_FIELDS)


def test_sweep_kernel_array_layout() -> None:
    candles = [(100.0, 120.0, 80.0, 110.0), (110.0, 111.0, 90.0, 95.0)]
    o, h, lo, c = as_arrays(candles)
    a = grid_levels("arithmetic", 85.0, 115.0, 4)
    b = grid_levels("geometric", 90.0, 130.0, 7)
    levels2d = np.zeros((2, 7))
    levels2d[0, :4] = a
    levels2d[0, 4:] = 1e9  # padding must be ignored
    levels2d[1] = b
    out = sweep_kernel(o, h, lo, c, levels2d, np.array([4, 7]), np.array([1.0, 2.0]),
                       1000.0, 0.001, 0.001, 0.0)
    assert out.shape == (2, len(RESULT_COLUMNS)) and out.dtype == np.float64
    for r, (lv, q) in enumerate(((a, 1.0), (b, 2.0))):
        single = run_grid_kernel(o, h, lo, c, lv, q, 1000.0, 0.001, 0.001, 0.0)
        assert out[r, :11].tolist() == [float(x) for x in single]
        assert out[r, RESULT_COLUMNS.index("qty")] == q


# ------------------------------------------------------------------------------------ levels & qty


@given(st.sampled_from(["arithmetic", "geometric"]), st.floats(0.01, 1e5), st.floats(1e-3, 5.0),
       st.integers(2, 200))
def test_grid_levels_formula(kind: str, lower: float, width: float, n: int) -> None:
    upper = lower * (1 + width)
    got = grid_levels(kind, lower, upper, n)
    assert got.dtype == np.float64 and got.shape == (n,)
    assert got.tolist() == ref_levels(kind, lower, upper, n)
    assert got[0] == lower and got[-1] == upper
    assert np.all(np.diff(got) > 0)


def test_grid_levels_matches_engine_decimal_levels() -> None:
    from gridfleet.engine.config import GridSpec
    from gridfleet.engine.levels import level_prices

    for kind, lower, upper, n in (("arithmetic", "100000", "120000", 50), ("geometric", "30000", "65000", 40),
                                  ("arithmetic", "2100", "3500", 30)):
        spec = GridSpec(type=kind, lower=Decimal(lower), upper=Decimal(upper), levels=n)
        want = [float(p) for p in level_prices(spec)]
        got = grid_levels(kind, float(lower), float(upper), n)
        assert np.allclose(got, want, rtol=1e-14, atol=0)


@pytest.mark.parametrize(("kind", "lower", "upper", "n"), [
    ("linear", 1.0, 2.0, 3), ("arithmetic", 2.0, 2.0, 3), ("arithmetic", 3.0, 2.0, 3),
    ("geometric", 0.0, 2.0, 3), ("arithmetic", -1.0, 2.0, 3), ("arithmetic", 1.0, 2.0, 1),
])
def test_grid_levels_rejects_bad_input(kind: str, lower: float, upper: float, n: int) -> None:
    with pytest.raises(ValueError):
        grid_levels(kind, lower, upper, n)


def _decimal_qty(levels: list[float], p0: float, investment: float, step: str) -> float:
    gap = min(range(len(levels)), key=lambda k: (abs(levels[k] - p0), k))
    denominator = sum(Decimal(x) for x in levels[:gap]) + Decimal(p0) * (len(levels) - 1 - gap)
    q = Decimal(investment) / denominator
    if Decimal(step) > 0:
        q = (q / Decimal(step)).to_integral_value(rounding=ROUND_DOWN) * Decimal(step)
    return float(q)


def test_order_qty() -> None:
    levels = np.array([100.0, 200.0, 300.0])
    # P0 = 210 -> gap at 200: one buy level (100) and one sell level -> 1000 / (100 + 210)
    assert order_qty(levels, 210.0, 1000.0, 0.0) == 1000.0 / 310.0
    assert order_qty(levels, 210.0, 1000.0, 0.01) == 3.22
    assert order_qty(levels, 210.0, 1000.0, 1e-5) == 3.22580
    # exactly on a step despite binary representation: 93 / 310 = 0.3
    assert order_qty(levels, 210.0, 93.0, 0.1) == 0.3
    assert order_qty(levels, 210.0, 93.0, 0.25) == 0.25
    assert order_qty(levels, 210.0, 1.0, 0.01) == 0.0


@given(st.lists(st.floats(1.0, 1e5), min_size=2, max_size=30, unique=True), st.floats(0.5, 2e5),
       st.floats(10.0, 1e7), st.sampled_from(["0", "0.00001", "0.001", "0.1", "1"]))
def test_order_qty_matches_decimal(prices: list[float], p0: float, investment: float, step: str) -> None:
    levels = sorted(prices)
    got = float(order_qty(np.array(levels), p0, investment, float(step)))
    want = _decimal_qty(levels, p0, investment, step)
    if step == "0":
        assert math.isclose(got, want, rel_tol=1e-12)
    else:
        # equal, except when the exact quotient lies within float noise of a step boundary
        assert got == want or math.isclose(got, want + float(step), rel_tol=1e-12)
    gap = min(range(len(levels)), key=lambda k: (abs(levels[k] - p0), k))
    denominator = sum(levels[:gap]) + p0 * (len(levels) - 1 - gap)
    assert got * denominator <= investment * (1 + 1e-9)  # never spends more than the investment


# -------------------------------------------------------------------------------- run_sweep errors


@pytest.mark.parametrize("combo", [
    {"type": "arithmetic", "lower": 200.0, "upper": 100.0, "levels": 5},
    {"type": "arithmetic", "lower": 100.0, "upper": 100.0, "levels": 5},
    {"type": "arithmetic", "lower": 100.0, "upper": 200.0, "levels": 1},
    {"type": "geometric", "lower": 0.0, "upper": 200.0, "levels": 5},
    {"type": "geometric", "lower": -5.0, "upper": 200.0, "levels": 5},
    {"type": "spiral", "lower": 100.0, "upper": 200.0, "levels": 5},
    {"type": "arithmetic", "lower": 100.0, "upper": 200.0, "levels": 5.5},
    {"type": "arithmetic", "lower": 100.0, "levels": 5},
])
def test_run_sweep_rejects_invalid_combo(combo: dict[str, Any]) -> None:
    o = h = lo = c = np.array([150.0, 151.0])
    good = {"type": "arithmetic", "lower": 100.0, "upper": 200.0, "levels": 5}
    with pytest.raises(ValueError, match="combo") as info:
        run_sweep(o, h, lo, c, [good, combo], qty=1.0, investment=1e4, maker=0.001, taker=0.001)
    assert repr(combo) in str(info.value)


def test_run_sweep_rejects_bad_inputs() -> None:
    o = np.array([150.0, 151.0])
    combos = [{"type": "arithmetic", "lower": 100.0, "upper": 200.0, "levels": 5}]
    kw: dict[str, Any] = {"qty": 1.0, "investment": 1e4, "maker": 0.001, "taker": 0.001}
    with pytest.raises(ValueError, match="lengths"):
        run_sweep(o, o, o, o[:1], combos, **kw)
    with pytest.raises(ValueError, match="at least one"):
        run_sweep(o[:0], o[:0], o[:0], o[:0], combos, **kw)
    with pytest.raises(ValueError, match="finite"):
        run_sweep(np.array([np.nan, 1.0]), o, o, o, combos, **kw)
    with pytest.raises(ValueError, match="qty"):
        run_sweep(o, o, o, o, combos, **{**kw, "qty": 0.0})
    with pytest.raises(ValueError, match="investment"):
        run_sweep(o, o, o, o, combos, **{**kw, "investment": -1.0})
    with pytest.raises(ValueError, match="too small"):
        run_sweep(o, o, o, o, combos, **{**kw, "qty": None, "investment": 1.0, "step": 1.0})
    assert run_sweep(o, o, o, o, [], **kw) == []


def test_run_sweep_accepts_pandas_series_and_auto_qty() -> None:
    df = pd.DataFrame({"open": [150.0, 140.0], "high": [160.0, 190.0], "low": [120.0, 140.0],
                       "close": [140.0, 185.0]})
    combos = expand_param_grid({"type": "arithmetic,geometric", "lower": "100", "upper": "200",
                                "levels": "3:11:4"})
    rows = run_sweep(df["open"], df["high"], df["low"], df["close"], combos, qty=None, investment=1e4,
                     maker=0.001, taker=0.001, step=1e-5)
    assert [(r["type"], r["levels"]) for r in rows] == [
        ("arithmetic", 3), ("arithmetic", 7), ("arithmetic", 11),
        ("geometric", 3), ("geometric", 7), ("geometric", 11),
    ]
    for r in rows:
        assert r["qty"] > 0
        assert set(RESULT_COLUMNS) <= set(r)


# -------------------------------------------------------------------------------------- param grid


def test_expand_param_grid_ranges_and_lists() -> None:
    combos = expand_param_grid({"lower": "100000,105000", "upper": "120000", "levels": "10:20:5"})
    assert combos == [
        {"type": "arithmetic", "lower": lo, "upper": 120000.0, "levels": n}
        for lo in (100000.0, 105000.0) for n in (10, 15, 20)
    ]
    assert all(isinstance(c["levels"], int) and isinstance(c["lower"], float) for c in combos)


def test_expand_param_grid_range_details() -> None:
    def values(key: str, text: Any) -> list[Any]:
        spec: dict[str, Any] = {"lower": "1", "upper": "2", "levels": "3"}
        spec[key] = text
        return [c[key] for c in expand_param_grid(spec)]

    assert values("levels", "10:100:5") == list(range(10, 101, 5))
    assert values("levels", "10:98:5") == list(range(10, 96, 5))  # stop off-step: not included
    assert values("levels", "7:7:1") == [7]
    assert values("levels", [5, 8]) == [5, 8]
    assert values("levels", 9) == [9]
    assert values("lower", "0.1:0.3:0.1") == [0.1, 0.2, 0.3]  # decimal arithmetic: stop included exactly
    assert values("lower", "100000:110000:2500") == [100000.0, 102500.0, 105000.0, 107500.0, 110000.0]
    assert values("lower", "1.5, 2.5") == [1.5, 2.5]
    assert values("lower", [1, "2.5", 3.25]) == [1.0, 2.5, 3.25]
    assert values("type", "geometric") == ["geometric"]
    assert values("type", ["arithmetic", "geometric"]) == ["arithmetic", "geometric"]


def test_expand_param_grid_keeps_spec_order_and_product_size() -> None:
    combos = expand_param_grid({"levels": "2:4:1", "upper": "10,11", "lower": "1", "type": "geometric"})
    assert len(combos) == 6
    assert list(combos[0]) == ["levels", "upper", "lower", "type"]
    assert [(c["levels"], c["upper"]) for c in combos] == [(2, 10.0), (2, 11.0), (3, 10.0), (3, 11.0),
                                                           (4, 10.0), (4, 11.0)]


@pytest.mark.parametrize(("spec", "match"), [
    ({"lower": "1", "upper": "2"}, "missing"),
    ({"lower": "1", "upper": "2", "levels": "3", "qty": "1"}, "unknown"),
    ({"lower": "1", "upper": "2", "levels": "3.5"}, "integer"),
    ({"lower": "1", "upper": "2", "levels": "1:10"}, "start:stop:step"),
    ({"lower": "1", "upper": "2", "levels": "1:10:2:3"}, "start:stop:step"),
    ({"lower": "1", "upper": "2", "levels": "10:1:1"}, "below start"),
    ({"lower": "1", "upper": "2", "levels": "1:10:0"}, "step must be > 0"),
    ({"lower": "1:2:-0.5", "upper": "2", "levels": "3"}, "step must be > 0"),
    ({"lower": "abc", "upper": "2", "levels": "3"}, "number"),
    ({"lower": "1,,2", "upper": "2", "levels": "3"}, "number"),
    ({"lower": "", "upper": "2", "levels": "3"}, "empty"),
    ({"lower": [], "upper": "2", "levels": "3"}, "empty"),
    ({"lower": "nan", "upper": "2", "levels": "3"}, "finite"),
    ({"lower": "1", "upper": "2", "levels": [2.5]}, "integer"),
    ({"lower": "1", "upper": "2", "levels": True}, "number"),
    ({"type": "linear", "lower": "1", "upper": "2", "levels": "3"}, "type"),
])
def test_expand_param_grid_errors(spec: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        expand_param_grid(spec)
