"""Trade-level (tick) data for backtests that fill against individual trades instead of candles."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gridfleet.backtest.data import DataError, parse_time_ms

TIME_COLUMNS = ("time_ms", "timestamp", "time")
AMOUNT_COLUMNS = ("amount", "qty", "quantity", "size")


@dataclass(frozen=True, eq=False)
class Trades:
    """Trades as parallel arrays sorted by time (several trades may share a millisecond)."""

    time_ms: np.ndarray
    price: np.ndarray
    amount: np.ndarray

    def __len__(self) -> int:
        """Return the number of trades."""
        return len(self.price)


def is_trades_file(path: str | Path) -> bool:
    """Return True when the file's header looks like trades (a price column, no OHLC columns)."""
    head = pd.read_csv(path, nrows=0)
    cols = {c.strip().lower() for c in head.columns}
    return "price" in cols and not {"open", "high", "low", "close"} <= cols


def load_trades(path: str | Path, *, start: str | int | None = None, end: str | int | None = None) -> Trades:
    """Load trades from CSV (``.gz`` ok) with a time column (ms), ``price`` and an amount column."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        frame = pd.read_csv(path)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read trades: {exc}".splitlines()[0]) from None
    frame.columns = [c.strip().lower() for c in frame.columns]
    tcol = next((c for c in TIME_COLUMNS if c in frame.columns), None)
    acol = next((c for c in AMOUNT_COLUMNS if c in frame.columns), None)
    missing = [name for name, col in (("time_ms", tcol), ("price", "price" if "price" in frame.columns else None),
                                      ("amount", acol)) if col is None]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (trades need time_ms, price, amount)")
    assert tcol is not None and acol is not None
    try:
        times = frame[tcol].to_numpy(dtype=np.int64)
        price = frame["price"].to_numpy(dtype=np.float64)
        amount = frame[acol].to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        raise DataError(f"{path}: non-numeric values in {tcol}, price or {acol}") from None
    if len(times) == 0:
        raise DataError(f"{path}: no trades")
    if not np.all(np.isfinite(price)) or np.any(price <= 0):
        raise DataError(f"{path}: prices must be positive numbers")
    if np.any(np.diff(times) < 0):
        bad = int(np.argmax(np.diff(times) < 0)) + 1
        raise DataError(f"{path}: trades are not sorted by time (row {bad + 1}, time {times[bad]})")
    keep = np.ones(len(times), dtype=bool)
    if start is not None:
        keep &= times >= parse_time_ms(start)
    if end is not None:
        keep &= times < parse_time_ms(end)
    if not keep.any():
        raise DataError(f"{path}: no trades in the requested window")
    return Trades(times[keep], price[keep], amount[keep])
