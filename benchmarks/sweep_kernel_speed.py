"""Speed of the compiled plain-grid sweep kernel on real 1-minute BTC candles.

Usage: ``.venv/bin/python benchmarks/sweep_kernel_speed.py [--data PATH] [--repeat N]``

Loads ``../shared/data/ohlcv/binance_spot_BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz`` (relative to the
repository root), warms up the JIT, then times :func:`gridfleet.backtest.sweep_kernel.run_sweep` over 240
grid combos (2 spacings × 5 lowers × 4 uppers × 6 level counts) and prints candles, combos, seconds and
candle-evaluations per second (candles × combos / seconds; best of ``--repeat`` runs).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pandas as pd

from gridfleet.backtest.sweep_kernel import expand_param_grid, run_sweep

REPO = Path(__file__).resolve().parents[1]
DATA_NAME = "binance_spot_BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz"
DEFAULT_DATA = REPO / ".." / "shared" / "data" / "ohlcv" / DATA_NAME
SPEC: dict[str, str] = {
    "type": "arithmetic,geometric",
    "lower": "90000:110000:5000",
    "upper": "115000:130000:5000",
    "levels": "20:120:20",
}
"""The swept parameter grid (240 combos)."""


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="OHLCV CSV (gzip ok)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs; the best is reported")
    args = parser.parse_args()

    df = pd.read_csv(args.data)
    o, h, lo, c = (np.ascontiguousarray(df[name].to_numpy(np.float64))
                   for name in ("open", "high", "low", "close"))
    combos = expand_param_grid(SPEC)
    fees = {"maker": 0.001, "taker": 0.001}

    t0 = time.perf_counter()
    # compile (or load from the numba cache)
    run_sweep(o[:1000], h[:1000], lo[:1000], c[:1000], combos[:4], qty=0.002, investment=1e6, **fees)
    warmup = time.perf_counter() - t0

    best = float("inf")
    results: list[dict[str, Any]] = []
    for _ in range(max(1, args.repeat)):
        t0 = time.perf_counter()
        results = run_sweep(o, h, lo, c, combos, qty=0.002, investment=1e6, **fees)
        best = min(best, time.perf_counter() - t0)

    n_candles, n_combos = len(df), len(combos)
    evals = n_candles * n_combos
    fills = sum(int(r["buy_fills"]) + int(r["sell_fills"]) for r in results)
    print(f"data                  {args.data.resolve().name}")
    print(f"threads               {numba.get_num_threads()}")
    print(f"warm-up (JIT/cache)   {warmup:.2f} s")
    print(f"candles               {n_candles:,}")
    print(f"combos                {n_combos:,}")
    print(f"total fills           {fills:,}")
    print(f"seconds (best of {max(1, args.repeat)})   {best:.4f}")
    print(f"candle-evaluations/s  {evals / best:,.0f}")


if __name__ == "__main__":
    main()
