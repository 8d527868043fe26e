"""Loading and validating OHLCV candle files for backtests.

:func:`load_candles` reads ``.csv``, ``.csv.gz`` and ``.parquet`` files with the columns
``open_time,open,high,low,close,volume`` (``open_time`` = candle open time, Unix milliseconds UTC; extra
columns are ignored) into a :class:`Candles` bundle of numpy arrays. Every problem with the file raises
:class:`DataError` with a one-line message naming the file and the problem. Missing candles (gaps) are *not*
filled: they are reported in :attr:`Candles.gaps` and described by :func:`describe_gaps`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "REQUIRED_COLUMNS",
    "Candles",
    "DataError",
    "Gap",
    "TimeLike",
    "describe_gaps",
    "find_gaps",
    "format_ms",
    "infer_timeframe_ms",
    "load_candles",
    "parse_time_ms",
]

REQUIRED_COLUMNS: tuple[str, ...] = ("open_time", "open", "high", "low", "close", "volume")
"""Columns every candle file must have (any order, case-insensitive; others are ignored)."""

_PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")

TimeLike = int | str | datetime
"""A point in time: Unix milliseconds, an ISO-8601 string (naive = UTC) or a ``datetime`` (naive = UTC)."""


class DataError(ValueError):
    """A candle file is missing, unreadable or invalid; the one-line message names the file and problem."""


@dataclass(frozen=True, slots=True)
class Gap:
    """A run of missing candles.

    ``start_ms`` is the open time of the first missing candle, ``end_ms`` the open time of the next candle
    that is present (exclusive end), ``missing_candles`` how many candles of the timeframe are missing.
    """

    start_ms: int
    end_ms: int
    missing_candles: int


@dataclass(frozen=True, eq=False)
class Candles:
    """OHLCV candles as parallel numpy arrays, sorted by strictly increasing ``open_time``.

    ``open_time`` is ``int64`` Unix milliseconds (UTC, candle open); prices and volume are ``float64``.
    ``timeframe_ms`` is the candle length (the most common spacing of ``open_time``); ``gaps`` lists the
    missing candles inside the covered range. Build one with :func:`load_candles` or :meth:`from_arrays`.
    """

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    timeframe_ms: int
    gaps: list[Gap] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Check that all arrays are one-dimensional and of the same length."""
        n = len(self.open_time)
        for name in REQUIRED_COLUMNS:
            arr = getattr(self, name)
            if arr.ndim != 1 or len(arr) != n:
                raise ValueError(f"Candles.{name} must be a 1-d array of length {n}")

    @classmethod
    def from_arrays(
        cls,
        open_time: Sequence[int] | np.ndarray,
        open: Sequence[float] | np.ndarray,
        high: Sequence[float] | np.ndarray,
        low: Sequence[float] | np.ndarray,
        close: Sequence[float] | np.ndarray,
        volume: Sequence[float] | np.ndarray | None = None,
        *,
        timeframe_ms: int | None = None,
    ) -> Candles:
        """Build candles from array-likes, inferring the timeframe (unless given) and the gaps.

        No OHLC validation is done here (that is :func:`load_candles`' job); ``open_time`` must be strictly
        increasing. ``volume`` defaults to zeros.
        """
        ot = np.ascontiguousarray(open_time, dtype=np.int64)
        if len(ot) > 1 and not bool(np.all(np.diff(ot) > 0)):
            raise ValueError("open_time must be strictly increasing")
        vol = np.zeros(len(ot)) if volume is None else np.ascontiguousarray(volume, dtype=np.float64)
        tf = infer_timeframe_ms(ot) if timeframe_ms is None else int(timeframe_ms)
        return cls(
            open_time=ot,
            open=np.ascontiguousarray(open, dtype=np.float64),
            high=np.ascontiguousarray(high, dtype=np.float64),
            low=np.ascontiguousarray(low, dtype=np.float64),
            close=np.ascontiguousarray(close, dtype=np.float64),
            volume=vol,
            timeframe_ms=tf,
            gaps=find_gaps(ot, tf),
        )

    def __len__(self) -> int:
        """Return the number of candles."""
        return len(self.open_time)

    @property
    def start_ms(self) -> int:
        """Open time of the first candle (ms)."""
        return int(self.open_time[0])

    @property
    def end_ms(self) -> int:
        """Close time of the last candle (its open time + ``timeframe_ms``), an exclusive end (ms)."""
        return int(self.open_time[-1]) + self.timeframe_ms

    @property
    def missing_candles(self) -> int:
        """Total number of missing candles over all gaps."""
        return sum(g.missing_candles for g in self.gaps)

    def slice_time(self, from_ms: int | None = None, to_ms: int | None = None) -> Candles:
        """Return the candles with ``from_ms <= open_time < to_ms`` (``None`` = unbounded) as new Candles.

        The arrays are views of this object's arrays; the gaps are recomputed for the slice (the timeframe is
        kept). The result may be empty.
        """
        lo = 0 if from_ms is None else int(np.searchsorted(self.open_time, from_ms, side="left"))
        hi = len(self) if to_ms is None else int(np.searchsorted(self.open_time, to_ms, side="left"))
        hi = max(lo, hi)
        return self._take(slice(lo, hi))

    def head(self, n: int) -> Candles:
        """Return the first ``n`` candles as new Candles."""
        return self._take(slice(0, max(0, n)))

    def _take(self, sl: slice) -> Candles:
        ot = self.open_time[sl]
        return Candles(
            open_time=ot,
            open=self.open[sl],
            high=self.high[sl],
            low=self.low[sl],
            close=self.close[sl],
            volume=self.volume[sl],
            timeframe_ms=self.timeframe_ms,
            gaps=find_gaps(ot, self.timeframe_ms),
        )


# --------------------------------------------------------------------------------------------- helpers


def format_ms(ms: int, *, seconds: bool = False) -> str:
    """Format Unix milliseconds as ``YYYY-MM-DD HH:MM`` (UTC); with ``seconds=True`` add ``:SS``."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def parse_time_ms(value: TimeLike) -> int:
    """Convert Unix ms, an ISO-8601 string or a ``datetime`` to Unix ms (UTC). Naive values are taken as UTC.

    Raises :class:`ValueError` for anything else.
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid time {value!r}")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, datetime):
        dt = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return round(dt.timestamp() * 1000)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        try:
            ts = pd.Timestamp(text)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"invalid time {value!r} (expected ISO-8601 or Unix ms)") from exc
        if ts is pd.NaT:
            raise ValueError(f"invalid time {value!r} (expected ISO-8601 or Unix ms)")
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return int(ts.value // 1_000_000)
    raise ValueError(f"invalid time {value!r} (expected ISO-8601 string, Unix ms int or datetime)")


def infer_timeframe_ms(open_time: np.ndarray) -> int:
    """Return the most common positive spacing of ``open_time`` (ms); the smallest one on ties.

    Raises :class:`ValueError` when there are fewer than two timestamps.
    """
    if len(open_time) < 2:
        raise ValueError("need at least 2 candles to infer the timeframe")
    diffs = np.diff(np.asarray(open_time, dtype=np.int64))
    diffs = diffs[diffs > 0]
    if len(diffs) == 0:
        raise ValueError("open_time has no positive spacing")
    values, counts = np.unique(diffs, return_counts=True)
    return int(values[int(np.argmax(counts))])


def find_gaps(open_time: np.ndarray, timeframe_ms: int) -> list[Gap]:
    """Return the runs of missing candles in sorted ``open_time`` for candles of length ``timeframe_ms``.

    A gap is any spacing larger than ``timeframe_ms``; it misses ``ceil(spacing / timeframe_ms) - 1`` candles.
    """
    if len(open_time) < 2 or timeframe_ms <= 0:
        return []
    ot = np.asarray(open_time, dtype=np.int64)
    diffs = np.diff(ot)
    idx = np.flatnonzero(diffs > timeframe_ms)
    gaps: list[Gap] = []
    for i in idx:
        prev, nxt = int(ot[i]), int(ot[i + 1])
        missing = -(-(nxt - prev) // timeframe_ms) - 1
        gaps.append(Gap(start_ms=prev + timeframe_ms, end_ms=nxt, missing_candles=missing))
    return gaps


def _format_duration(ms: int) -> str:
    minutes = ms // 60_000
    days, rem = divmod(minutes, 1440)
    hours, mins = divmod(rem, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{mins}m" if mins else ""]
    text = " ".join(p for p in parts if p)
    return text or f"{ms / 1000:g}s"


def describe_gaps(candles: Candles, *, max_lines: int = 20) -> str:
    """Describe the gaps of ``candles`` in human-readable text (UTC times), one gap per line.

    Returns ``"no gaps"`` when there are none; otherwise a summary line and at most ``max_lines`` gaps in time
    order, followed by ``"... and N more"`` when there are more.
    """
    if not candles.gaps:
        return "no gaps"
    n = len(candles.gaps)
    total = candles.missing_candles
    lines = [f"{n} gap{'s' if n != 1 else ''}, {total:,} missing candle{'s' if total != 1 else ''}:"]
    for g in candles.gaps[:max_lines]:
        lines.append(
            f"  {format_ms(g.start_ms)} .. {format_ms(g.end_ms)} UTC: {g.missing_candles:,} missing "
            f"({_format_duration(g.end_ms - g.start_ms)})"
        )
    if n > max_lines:
        lines.append(f"  ... and {n - max_lines} more")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- loading


def _read_frame(path: Path) -> pd.DataFrame:
    """Read the raw table; raise DataError for unsupported / unreadable / empty files."""
    name = path.name.lower()
    try:
        if name.endswith(".parquet") or name.endswith(".pq"):
            frame = pd.read_parquet(path)
        elif name.endswith(".csv") or name.endswith(".csv.gz"):
            frame = pd.read_csv(path, compression="gzip" if name.endswith(".gz") else None, low_memory=False)
        else:
            raise DataError(f"{path}: unsupported file type (expected .csv, .csv.gz or .parquet)")
    except DataError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: file is empty") from exc
    except Exception as exc:  # any reader failure means an unreadable file
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: unreadable file ({type(exc).__name__}: {detail})") from exc
    return frame


def _numeric_column(path: Path, frame: pd.DataFrame, col: str, open_time: np.ndarray | None) -> np.ndarray:
    """Return ``frame[col]`` as float64, raising DataError on the first non-numeric value."""
    series = frame[col]
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        coerced = pd.to_numeric(series, errors="coerce")
        bad = coerced.isna() & series.notna()
        if bool(bad.any()):
            i = int(np.argmax(bad.to_numpy()))
            where = f"open_time {int(open_time[i])}" if open_time is not None else f"row {i + 1}"
            raise DataError(f"{path}: non-numeric value {str(series.iloc[i])!r} in column '{col}' at {where}")
        series = coerced
    return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def _open_time_column(path: Path, frame: pd.DataFrame) -> np.ndarray:
    """Return open_time as int64 ms; accepts integer/float ms and datetime columns (parquet)."""
    series = frame["open_time"]
    if pd.api.types.is_datetime64_any_dtype(series):
        if bool(series.isna().any()):
            i = int(np.argmax(series.isna().to_numpy()))
            raise DataError(f"{path}: missing value (NaN) in column 'open_time' at row {i + 1}")
        if getattr(series.dt, "tz", None) is None:
            series = series.dt.tz_localize("UTC")
        return np.asarray(series.dt.tz_convert("UTC").astype("datetime64[ms, UTC]").astype("int64"))
    if pd.api.types.is_integer_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return np.asarray(series.to_numpy(dtype=np.int64), dtype=np.int64)
    values = _numeric_column(path, frame, "open_time", None)
    nan = np.isnan(values)
    if bool(nan.any()):
        i = int(np.argmax(nan))
        raise DataError(f"{path}: missing value (NaN) in column 'open_time' at row {i + 1}")
    frac = values != np.floor(values)
    if bool(frac.any()):
        i = int(np.argmax(frac))
        raise DataError(f"{path}: open_time must be integer Unix milliseconds, got {float(values[i])!r} at row {i + 1}")
    return values.astype(np.int64)


def load_candles(path: str | Path, *, start: TimeLike | None = None, end: TimeLike | None = None) -> Candles:
    """Load and validate OHLCV candles from a ``.csv``, ``.csv.gz`` or ``.parquet`` file.

    The file needs the columns ``open_time`` (Unix ms UTC, candle open), ``open``, ``high``, ``low``,
    ``close``, ``volume`` (any order, names case-insensitive); extra columns are ignored. ``start``
    (inclusive) and ``end`` (exclusive) restrict the candles by ``open_time``; they accept Unix ms ints,
    ISO-8601 strings (``"2025-06-01"``, ``"2025-06-01T12:00:00Z"``; naive = UTC) or datetimes. The timeframe
    is inferred from the whole file; gaps are reported for the returned window, never filled.

    Raises :class:`DataError` (a ``ValueError``) naming the file and the problem for: a missing file, an
    unreadable, empty or unsupported file, missing required columns, non-numeric values, NaN, non-positive
    prices, negative volume, ``high < max(open, close)`` or ``low > min(open, close)``, unsorted or duplicate
    timestamps, fewer than 2 candles in the file, an invalid window or a window without candles.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: file not found")
    if not p.is_file():
        raise DataError(f"{p}: not a regular file")

    frame = _read_frame(p)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise DataError(f"{p}: missing required column{plural}: {', '.join(missing)}")
    if len(frame) == 0:
        raise DataError(f"{p}: file has a header but no candles")

    open_time = _open_time_column(p, frame)
    cols: dict[str, np.ndarray] = {}
    for col in (*_PRICE_COLUMNS, "volume"):
        values = _numeric_column(p, frame, col, open_time)
        nan = np.isnan(values)
        if bool(nan.any()):
            i = int(np.argmax(nan))
            raise DataError(f"{p}: missing value (NaN) in column '{col}' at open_time {int(open_time[i])}")
        cols[col] = values

    o, h, lo, c, v = cols["open"], cols["high"], cols["low"], cols["close"], cols["volume"]
    for col in _PRICE_COLUMNS:
        bad = ~(cols[col] > 0) | ~np.isfinite(cols[col])
        if bool(bad.any()):
            i = int(np.argmax(bad))
            raise DataError(
                f"{p}: non-positive or infinite price {float(cols[col][i])!r} in column '{col}' "
                f"at open_time {int(open_time[i])}"
            )
    bad_v = (v < 0) | ~np.isfinite(v)
    if bool(bad_v.any()):
        i = int(np.argmax(bad_v))
        raise DataError(f"{p}: negative or infinite volume {float(v[i])!r} at open_time {int(open_time[i])}")
    bad_hl = (h < np.maximum(o, c)) | (lo > np.minimum(o, c))
    if bool(bad_hl.any()):
        i = int(np.argmax(bad_hl))
        raise DataError(
            f"{p}: OHLC inconsistent at open_time {int(open_time[i])} "
            f"(open={float(o[i])!r} high={float(h[i])!r} low={float(lo[i])!r} close={float(c[i])!r}; "
            "need high >= max(open, close) and low <= min(open, close))"
        )

    if len(open_time) > 1:
        diffs = np.diff(open_time)
        bad_order = diffs <= 0
        if bool(bad_order.any()):
            i = int(np.argmax(bad_order))
            if diffs[i] == 0:
                raise DataError(f"{p}: duplicate timestamp open_time {int(open_time[i + 1])} at row {i + 2}")
            raise DataError(
                f"{p}: timestamps not sorted ascending: open_time {int(open_time[i + 1])} at row {i + 2} "
                f"follows {int(open_time[i])}"
            )
    if len(open_time) < 2:
        raise DataError(f"{p}: need at least 2 candles to infer the timeframe, found {len(open_time)}")
    timeframe_ms = infer_timeframe_ms(open_time)

    try:
        start_ms = None if start is None else parse_time_ms(start)
        end_ms = None if end is None else parse_time_ms(end)
    except ValueError as exc:
        raise DataError(f"{p}: {exc}") from exc
    if start_ms is not None and end_ms is not None and start_ms >= end_ms:
        raise DataError(f"{p}: empty window: start {format_ms(start_ms)} is not before end {format_ms(end_ms)}")

    candles = Candles(
        open_time=open_time,
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=v,
        timeframe_ms=timeframe_ms,
        gaps=[],
    )
    candles = candles.slice_time(start_ms, end_ms)
    if len(candles) == 0:
        window = (
            f"[{'-inf' if start_ms is None else format_ms(start_ms)}, "
            f"{'+inf' if end_ms is None else format_ms(end_ms)})"
        )
        raise DataError(
            f"{p}: no candles in window {window} UTC; file covers {format_ms(int(open_time[0]))} .. "
            f"{format_ms(int(open_time[-1]))} UTC"
        )
    return candles
