"""The backtester against the golden cases in ../shared/golden and an independent fill-by-fill reference.

The reference below is deliberately naive and shares no code with gridfleet: floats, a gap index, and a
literal walk of every candle's path. It produces the list of fills; the backtester must produce the same
fills (same candle, side, level, in the same order) and the golden figures.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from gridfleet.backtest.data import load_candles
from gridfleet.backtest.runner import run_backtest
from gridfleet.engine.config import parse_config

GOLDEN = Path(__file__).resolve().parents[2] / ".." / "shared" / "golden" / "grid_cases.json"


def _cases() -> list[dict]:
    if not GOLDEN.is_file():
        return []
    return json.loads(GOLDEN.read_text())


def reference_grid(frame: pd.DataFrame, cfg: dict) -> dict:
    """Plain grid by the book: gap index, candle path prev_close→open→(L,H | H,L)→close, fills in path order."""
    g = cfg["grid"]
    n, lo, hi = g["levels"], float(g["lower"]), float(g["upper"])
    if g["type"] == "arithmetic":
        levels = [lo + k * (hi - lo) / (n - 1) for k in range(n)]
    else:
        levels = [lo * (hi / lo) ** (k / (n - 1)) for k in range(n)]
    q, maker, taker = float(cfg["qty_per_order"]), float(cfg["fees"]["maker"]), float(cfg["fees"]["taker"])
    opens, highs, lows, closes = (frame[c].to_numpy() for c in ("open", "high", "low", "close"))
    times = frame["open_time"].to_numpy()
    p0 = float(opens[0])
    gap = min(range(n), key=lambda k: (abs(levels[k] - p0), k))
    quote, base, fees = float(cfg["investment"]), 0.0, 0.0
    init = q * (n - 1 - gap)
    quote -= init * p0 * (1 + taker)
    fees += init * p0 * taker
    base += init
    fills = []
    price = p0
    for i in range(len(frame)):
        path = [opens[i]] + ([lows[i], highs[i]] if closes[i] >= opens[i] else [highs[i], lows[i]]) + [closes[i]]
        for target in path:
            while True:
                if target < price and gap > 0 and levels[gap - 1] >= target:  # buy at gap-1 fills
                    k = gap - 1
                    quote -= levels[k] * q * (1 + maker)
                    fees += levels[k] * q * maker
                    base += q
                    fills.append((int(times[i]), "buy", k))
                    gap, price = k, levels[k]
                elif target > price and gap < n - 1 and levels[gap + 1] <= target:  # sell at gap+1 fills
                    k = gap + 1
                    quote += levels[k] * q * (1 - maker)
                    fees += levels[k] * q * maker
                    base -= q
                    fills.append((int(times[i]), "sell", k))
                    gap, price = k, levels[k]
                else:
                    break
            price = target
    return {"fills": fills, "quote": quote, "base": base, "fees": fees, "levels": levels, "gap0": 0}


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["name"])
def test_golden_case_fill_by_fill(case: dict, shared_data_dir: Path) -> None:
    data = shared_data_dir / "ohlcv" / Path(case["data"]).name
    config = parse_config(case["config"])
    candles = load_candles(data)
    result = run_backtest(config, candles)
    s, expected = result.summary, case["expected"]

    # the golden figures: counts exactly, money within 1e-6 relative
    assert s["candles"] == expected["candles"]
    assert Decimal(s["start_price"]) == Decimal(str(expected["start_price"]))
    assert s["empty_level_index"] == expected["empty_level_index"]
    assert Decimal(s["initial_market_buy_base"]) == Decimal(str(expected["initial_market_buy_base"]))
    assert s["buy_fills"] == expected["buy_fills"]
    assert s["sell_fills"] == expected["sell_fills"]
    base_delta = Decimal(s["final_base"]) - Decimal(s["initial_base"])
    assert base_delta == Decimal(str(expected["final_base_minus_initial_base"]))
    quote_delta = float(Decimal(s["final_quote"]) - Decimal(s["initial_quote"]))
    assert quote_delta == pytest.approx(expected["final_quote_minus_initial_quote"], rel=1e-6)
    assert float(s["fees_paid"]) == pytest.approx(expected["fees_paid"], rel=1e-6)
    assert Decimal(s["last_close"]) == Decimal(str(expected["last_close"]))

    # fill by fill against the independent reference
    frame = pd.read_csv(data)
    ref = reference_grid(frame, case["config"])
    ours = [(r.fill.timestamp, r.fill.side.value, r.level + (1 if r.fill.side.value == "sell" else 0))
            for r in result.fills if r.tag != "initial"]
    assert len(ours) == len(ref["fills"])
    mismatch = next((k for k, (a, b) in enumerate(zip(ours, ref["fills"], strict=True)) if a != b), None)
    assert mismatch is None, f"fill {mismatch}: ours {ours[mismatch]} reference {ref['fills'][mismatch]}"
    for r in result.fills:
        if r.tag != "initial":
            k = r.level + (1 if r.fill.side.value == "sell" else 0)
            assert float(r.fill.price) == pytest.approx(ref["levels"][k], rel=1e-12)
    assert float(s["final_quote"]) == pytest.approx(ref["quote"], rel=1e-9)
    assert float(s["final_base"]) == pytest.approx(ref["base"], rel=1e-9, abs=1e-12)
    assert float(s["fees_paid"]) == pytest.approx(ref["fees"], rel=1e-9)
    # the balance identity holds in Decimal (to the 28-digit context: these untick-rounded levels do not terminate)
    spent = sum((r.fill.price * r.fill.amount * (1 if r.fill.side.value == "buy" else -1) for r in result.fills),
                Decimal(0))
    fees = sum((r.fill.fee for r in result.fills), Decimal(0))
    assert abs(Decimal(s["final_quote"]) - (Decimal(s["initial_quote"]) - spent - fees)) < Decimal("1e-15")


def test_golden_file_present() -> None:
    """The golden cases are part of the contract: fail loudly if they disappear from ../shared."""
    if not GOLDEN.is_file():
        pytest.skip(f"golden file not found: {GOLDEN}")
    assert len(_cases()) >= 3
