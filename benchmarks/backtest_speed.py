"""Backtest speed on real 1-minute BTC candles: gridfleet's event backtester, its sweep kernel, and backtrader.

Usage: ``.venv/bin/python benchmarks/backtest_speed.py [--data PATH] [--repeat N] [--no-backtrader]``
(backtrader is a benchmark-only dependency: ``pip install -e '.[bench]'``).

All three run the same 50-level arithmetic grid (100,000–120,000, 0.002 BTC per order, 0.1 % fees) over the
same 130,708 candles of ``binance_spot_BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz``. Loading the CSV is timed
apart. Prints candles/s for each and the ratios, measured in the same run.
Backtrader has no intrabar price path (a limit order fills on a later bar that touches it), so its fill
count differs from ours; it is here as the speed peer, not as a reference for fills.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from gridfleet.backtest.data import load_candles
from gridfleet.backtest.runner import run_backtest
from gridfleet.backtest.sweep_kernel import expand_param_grid, run_sweep
from gridfleet.engine.config import parse_config

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / ".." / "shared" / "data" / "ohlcv" / "binance_spot_BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz"
CONFIG = {
    "symbol": "BTC/USDT",
    "grid": {"type": "arithmetic", "lower": "100000", "upper": "120000", "levels": 50},
    "qty_per_order": "0.002",
    "investment": "1000000",
    "fees": {"maker": "0.001", "taker": "0.001"},
    "slippage": "0",
}
SWEEP = {"type": "arithmetic,geometric", "lower": "90000:110000:5000", "upper": "115000:130000:5000",
         "levels": "20:120:20"}


def timed(fn, repeat: int) -> tuple[float, object]:
    """Return the median wall time of ``repeat`` calls and the last result."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def run_backtrader(candles, levels: list[float], qty: float, fee: float) -> tuple[int, int]:
    """Run the same grid in backtrader; return (buy fills, sell fills)."""
    import backtrader as bt
    import pandas as pd

    frame = pd.DataFrame({"open": candles.open, "high": candles.high, "low": candles.low,
                          "close": candles.close, "volume": candles.volume},
                         index=pd.to_datetime(candles.open_time, unit="ms"))

    class Grid(bt.Strategy):
        def __init__(self) -> None:
            self.level_of: dict[int, tuple[str, int]] = {}
            self.fills = [0, 0]
            self.started = False

        def place(self, side: str, k: int) -> None:
            order = (self.buy if side == "buy" else self.sell)(exectype=bt.Order.Limit, price=levels[k], size=qty)
            self.level_of[order.ref] = (side, k)

        def next(self) -> None:
            if self.started:
                return
            self.started = True
            p0 = self.data.open[0]
            gap = min(range(len(levels)), key=lambda k: (abs(levels[k] - p0), k))
            self.buy(size=qty * (len(levels) - 1 - gap))
            for k in range(gap):
                self.place("buy", k)
            for k in range(gap + 1, len(levels)):
                self.place("sell", k)

        def notify_order(self, order) -> None:
            if order.status != order.Completed or order.ref not in self.level_of:
                return
            side, k = self.level_of.pop(order.ref)
            if side == "buy":
                self.fills[0] += 1
                self.place("sell", k + 1)
            else:
                self.fills[1] += 1
                self.place("buy", k - 1)

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(Grid)
    cerebro.broker.setcash(1_000_000.0)
    cerebro.broker.setcommission(commission=fee)
    strategy = cerebro.run()[0]
    return strategy.fills[0], strategy.fills[1]


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-backtrader", action="store_true")
    args = parser.parse_args()

    t0 = time.perf_counter()
    candles = load_candles(args.data)
    load_s = time.perf_counter() - t0
    n = len(candles)
    config = parse_config(CONFIG)
    print(f"data: {args.data.name}: {n:,} candles, loaded in {load_s:.3f} s")

    run_backtest(config, candles)  # warm-up (JIT cache, imports)
    event_s, result = timed(lambda: run_backtest(config, candles), args.repeat)
    summary = result.summary  # type: ignore[attr-defined]
    event_rate = n / event_s
    print(f"event backtester (50-level grid): {event_s:.3f} s median of {args.repeat}, {event_rate:,.0f} candles/s, "
          f"{summary['buy_fills']} buys / {summary['sell_fills']} sells")

    combos = expand_param_grid(SWEEP)
    sweep = lambda: run_sweep(candles.open, candles.high, candles.low, candles.close, combos,  # noqa: E731
                              qty=0.002, investment=1_000_000.0, maker=0.001, taker=0.001)
    sweep()
    sweep_s, _ = timed(sweep, args.repeat)
    sweep_rate = n * len(combos) / sweep_s
    print(f"sweep kernel: {len(combos)} grids × {n:,} candles in {sweep_s:.3f} s median, "
          f"{sweep_rate:,.0f} candle-evaluations/s")

    if args.no_backtrader:
        return
    try:
        import backtrader  # noqa: F401
    except ImportError:
        print("backtrader: not installed (pip install -e '.[bench]'); peer skipped")
        return
    levels = [100000 + k * 20000 / 49 for k in range(50)]
    bt_s, fills = timed(lambda: run_backtrader(candles, levels, 0.002, 0.001), max(1, min(args.repeat, 2)))
    bt_rate = n / bt_s
    print(f"backtrader (same grid): {bt_s:.3f} s median, {bt_rate:,.0f} candles/s, "
          f"{fills[0]} buys / {fills[1]} sells (no intrabar path)")  # type: ignore[index]
    print(f"ratio: event backtester {event_rate / bt_rate:,.1f}× backtrader; "
          f"sweep kernel {sweep_rate / bt_rate:,.0f}× backtrader per candle-evaluation")


if __name__ == "__main__":
    main()
