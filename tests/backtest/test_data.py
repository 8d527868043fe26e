"""Tests of the candle loader: real files (row counts, gaps from the data README) and every rejection case."""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridfleet.backtest.data import (
    Candles,
    DataError,
    Gap,
    describe_gaps,
    find_gaps,
    infer_timeframe_ms,
    load_candles,
    parse_time_ms,
)

BTC_2025 = "binance_spot_BTCUSDT_1m_2025-05-20_2025-08-18"
BTC_2021 = "binance_spot_BTCUSDT_1m_2021-04-02_2021-05-20"
MIN = 60_000


def ms(text: str) -> int:
    """ISO UTC text → Unix ms (independent of the code under test)."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


# ----------------------------------------------------------------------------------------- real data


@pytest.mark.parametrize(
    ("name", "rows", "n_gaps", "missing", "timeframe_ms"),
    [
        (BTC_2025, 130_708, 0, 0, MIN),
        (BTC_2021, 69_927, 2, 434, MIN),
        ("binance_spot_BTCUSDT_1m_2023-03-16_2023-05-05", 71_041, 1, 80, MIN),
        ("binance_spot_BTCUSDT_5m_2019-11-15_2020-03-12", 33_959, 4, 131, 5 * MIN),
        ("binance_spot_BTCUSDT_1h_2017-08-17_2024-04-21", 58_419, 28, 128, 60 * MIN),
        ("binance_spot_BTCUSDT_1d_2017-08-17_2026-02-14", 3_102, 2, 2, 1440 * MIN),  # 2 extra columns
    ],
)
def test_real_files_match_readme(
    ohlcv_file: Callable[[str], Path], name: str, rows: int, n_gaps: int, missing: int, timeframe_ms: int
) -> None:
    c = load_candles(ohlcv_file(name))
    assert len(c) == rows
    assert c.timeframe_ms == timeframe_ms
    assert len(c.gaps) == n_gaps
    assert sum(g.missing_candles for g in c.gaps) == missing == c.missing_candles
    # the covered span is exactly rows + missing candles
    assert (c.open_time[-1] - c.open_time[0]) // timeframe_ms + 1 == rows + missing
    assert c.open_time.dtype == np.int64
    for arr in (c.open, c.high, c.low, c.close, c.volume):
        assert arr.dtype == np.float64
        assert len(arr) == rows


def test_btc_2025_values(ohlcv_file: Callable[[str], Path]) -> None:
    c = load_candles(ohlcv_file(BTC_2025))
    assert c.start_ms == ms("2025-05-20T00:00:00")
    assert int(c.open_time[-1]) == ms("2025-08-18T18:27:00")
    assert c.end_ms == ms("2025-08-18T18:28:00")
    # first row of the file: 1747699200000,105573.73,105597.1,105554.31,105554.32,10.82647
    assert (c.open[0], c.high[0], c.low[0], c.close[0], c.volume[0]) == (
        105573.73,
        105597.1,
        105554.31,
        105554.32,
        10.82647,
    )
    # README: min low 98,200.0 (2025-06-22 20:18) / max high 124,474.0 (2025-08-14 00:32)
    assert c.low.min() == 98_200.0
    assert int(c.open_time[np.argmin(c.low)]) == ms("2025-06-22T20:18:00")
    assert c.high.max() == 124_474.0
    assert int(c.open_time[np.argmax(c.high)]) == ms("2025-08-14T00:32:00")
    assert describe_gaps(c) == "no gaps"


def test_load_is_fast(ohlcv_file: Callable[[str], Path]) -> None:
    path = ohlcv_file(BTC_2025)
    load_candles(path)  # warm-up (imports, page cache)
    t0 = time.perf_counter()
    c = load_candles(path)
    elapsed = time.perf_counter() - t0
    assert len(c) == 130_708
    assert elapsed < 1.0, f"loading 130k candles took {elapsed:.2f}s"


def test_real_gaps_2021(ohlcv_file: Callable[[str], Path]) -> None:
    c = load_candles(ohlcv_file(BTC_2021))
    assert c.gaps == [
        Gap(ms("2021-04-20T02:00:00"), ms("2021-04-20T04:30:00"), 150),
        Gap(ms("2021-04-25T04:01:00"), ms("2021-04-25T08:45:00"), 284),
    ]
    text = describe_gaps(c)
    assert text.splitlines()[0] == "2 gaps, 434 missing candles:"
    assert "2021-04-20 02:00 .. 2021-04-20 04:30 UTC: 150 missing (2h 30m)" in text
    assert "2021-04-25 04:01 .. 2021-04-25 08:45 UTC: 284 missing (4h 44m)" in text
    # a slice around only the second gap keeps only that gap
    s = c.slice_time(ms("2021-04-25T00:00:00"), ms("2021-04-26T00:00:00"))
    assert s.gaps == [Gap(ms("2021-04-25T04:01:00"), ms("2021-04-25T08:45:00"), 284)]
    assert len(s) == 1440 - 284


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2025-06-01", "2025-06-02"),
        ("2025-06-01T00:00:00Z", "2025-06-02T00:00:00+00:00"),
        ("2025-06-01T02:00:00+02:00", "2025-06-01T20:00:00-04:00"),
        (ms("2025-06-01T00:00:00"), ms("2025-06-02T00:00:00")),
        (datetime(2025, 6, 1), datetime(2025, 6, 2, tzinfo=UTC)),
    ],
)
def test_window(ohlcv_file: Callable[[str], Path], start: object, end: object) -> None:
    c = load_candles(ohlcv_file(BTC_2025), start=start, end=end)  # type: ignore[arg-type]
    assert len(c) == 1440
    assert c.start_ms == ms("2025-06-01T00:00:00")
    assert int(c.open_time[-1]) == ms("2025-06-01T23:59:00")
    assert c.timeframe_ms == MIN


def test_open_ended_window(ohlcv_file: Callable[[str], Path]) -> None:
    path = ohlcv_file(BTC_2025)
    assert len(load_candles(path, start="2025-08-18T18:00:00Z")) == 28
    assert len(load_candles(path, end="2025-05-20T01:00")) == 60


# ----------------------------------------------------------------------------------------- synthetic files

HEADER = "open_time,open,high,low,close,volume\n"
T0 = 1_700_000_000_000 - 1_700_000_000_000 % MIN


def row(i: int, o: float = 100.0, h: float = 101.0, lo: float = 99.0, c: float = 100.5, v: float = 1.0) -> str:
    """One CSV line for candle ``i`` (1m) after T0."""
    return f"{T0 + i * MIN},{o},{h},{lo},{c},{v}\n"


def write(tmp_path: Path, text: str, name: str = "candles.csv") -> Path:
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def good_rows(n: int = 5) -> str:
    return "".join(row(i) for i in range(n))


def expect_error(path: Path, *fragments: str, **kwargs: object) -> str:
    with pytest.raises(DataError) as info:
        load_candles(path, **kwargs)  # type: ignore[arg-type]
    msg = str(info.value)
    assert "\n" not in msg, f"message not one line: {msg!r}"
    assert str(path) in msg, f"file not named in: {msg!r}"
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"
    return msg


def test_good_csv_and_gz_load_identically(tmp_path: Path) -> None:
    text = HEADER + good_rows(10)
    a = load_candles(write(tmp_path, text, "a.csv"))
    b = load_candles(write(tmp_path, text, "b.csv.gz"))
    assert len(a) == len(b) == 10
    for field in ("open_time", "open", "high", "low", "close", "volume"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert a.timeframe_ms == MIN and a.gaps == []


def test_extra_columns_order_and_case_ignored(tmp_path: Path) -> None:
    text = "Close,extra,OPEN_TIME,Open,High,Low,Volume,trade_count\n" + "".join(
        f"100.5,x{i},{T0 + i * MIN},100,101,99,2.5,{i}\n" for i in range(4)
    )
    c = load_candles(write(tmp_path, text))
    assert len(c) == 4
    assert c.close.tolist() == [100.5] * 4
    assert c.volume.tolist() == [2.5] * 4


def test_gaps_reported_not_filled(tmp_path: Path) -> None:
    idx = [0, 1, 2, 5, 6, 7, 8, 20]  # missing 3-4 (2 candles) and 9-19 (11 candles)
    c = load_candles(write(tmp_path, HEADER + "".join(row(i) for i in idx)))
    assert len(c) == len(idx)
    assert c.timeframe_ms == MIN
    assert c.gaps == [Gap(T0 + 3 * MIN, T0 + 5 * MIN, 2), Gap(T0 + 9 * MIN, T0 + 20 * MIN, 11)]
    assert describe_gaps(c).startswith("2 gaps, 13 missing candles:")
    assert "... and 1 more" in describe_gaps(c, max_lines=1)


def test_missing_file(tmp_path: Path) -> None:
    expect_error(tmp_path / "nope.csv.gz", "file not found")


def test_empty_file(tmp_path: Path) -> None:
    expect_error(write(tmp_path, ""), "empty")
    expect_error(write(tmp_path, "", "e.csv.gz"), "empty")


def test_header_only(tmp_path: Path) -> None:
    expect_error(write(tmp_path, HEADER), "no candles")


def test_unreadable_gzip(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv.gz"
    path.write_bytes(b"this is not gzip at all\x00\x01\x02")
    expect_error(path, "unreadable")


def test_truncated_gzip(tmp_path: Path) -> None:
    blob = gzip.compress((HEADER + good_rows(2000)).encode())
    path = tmp_path / "trunc.csv.gz"
    path.write_bytes(blob[: len(blob) // 2])
    expect_error(path, "unreadable")


def test_unreadable_parquet(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 garbage garbage")
    expect_error(path, "unreadable")


def test_unsupported_extension(tmp_path: Path) -> None:
    expect_error(write(tmp_path, HEADER + good_rows(), "c.txt"), "unsupported file type")


def test_missing_columns_named(tmp_path: Path) -> None:
    text = "open_time,open,close,volume\n" + "".join(f"{T0 + i * MIN},1,1,1\n" for i in range(3))
    expect_error(write(tmp_path, text), "missing required columns: high, low")
    text = "open_time,open,high,low,close\n" + "".join(f"{T0 + i * MIN},1,1,1,1\n" for i in range(3))
    expect_error(write(tmp_path, text), "missing required column: volume")


def test_non_numeric_value(tmp_path: Path) -> None:
    text = HEADER + row(0) + row(1) + f"{T0 + 2 * MIN},100,101,99,abc,1\n" + row(3)
    expect_error(write(tmp_path, text), "non-numeric value 'abc'", "'close'", f"open_time {T0 + 2 * MIN}")


def test_non_numeric_open_time(tmp_path: Path) -> None:
    text = HEADER + row(0) + "2023-11-14 22:14,100,101,99,100,1\n"
    expect_error(write(tmp_path, text), "non-numeric value", "'open_time'", "row 2")


def test_fractional_open_time(tmp_path: Path) -> None:
    text = HEADER + row(0) + f"{T0 + MIN}.5,100,101,99,100,1\n"
    expect_error(write(tmp_path, text), "integer Unix milliseconds")


def test_nan_value(tmp_path: Path) -> None:
    text = HEADER + row(0) + f"{T0 + MIN},100,101,99,100.5,\n" + row(2)
    expect_error(write(tmp_path, text), "NaN", "'volume'", f"open_time {T0 + MIN}")
    text = HEADER + row(0) + f"{T0 + MIN},NaN,101,99,100.5,1\n"
    expect_error(write(tmp_path, text), "NaN", "'open'")


def test_missing_open_time(tmp_path: Path) -> None:
    text = HEADER + row(0) + ",100,101,99,100.5,1\n" + row(2)
    expect_error(write(tmp_path, text), "NaN", "'open_time'", "row 2")


@pytest.mark.parametrize("bad", ["0", "-5", "0.0"])
def test_non_positive_price(tmp_path: Path, bad: str) -> None:
    text = HEADER + row(0) + f"{T0 + MIN},100,101,{bad},100.5,1\n"
    expect_error(write(tmp_path, text), "non-positive", "'low'", f"open_time {T0 + MIN}")


def test_negative_volume(tmp_path: Path) -> None:
    text = HEADER + row(0) + row(1, v=-1.0)
    expect_error(write(tmp_path, text), "negative", "volume", f"open_time {T0 + MIN}")


def test_zero_volume_is_fine(tmp_path: Path) -> None:
    assert len(load_candles(write(tmp_path, HEADER + row(0, v=0.0) + row(1, v=0.0)))) == 2


def test_high_below_open_or_close(tmp_path: Path) -> None:
    # row 2 has high 100.2 < close 100.5; row 3 too but the first bad one is reported
    text = HEADER + row(0) + row(1) + row(2, h=100.2) + row(3, h=100.1) + row(4)
    expect_error(write(tmp_path, text), "OHLC inconsistent", f"open_time {T0 + 2 * MIN}", "high=100.2")


def test_low_above_open_or_close(tmp_path: Path) -> None:
    text = HEADER + row(0) + row(1, lo=100.2) + row(2)
    expect_error(write(tmp_path, text), "OHLC inconsistent", f"open_time {T0 + MIN}", "low=100.2")


def test_high_equal_to_close_and_low_equal_to_open_is_fine(tmp_path: Path) -> None:
    c = load_candles(write(tmp_path, HEADER + row(0, o=99, h=100.5, lo=99, c=100.5) + row(1)))
    assert len(c) == 2


def test_unsorted_timestamps(tmp_path: Path) -> None:
    text = HEADER + row(0) + row(2) + row(1) + row(3)
    expect_error(write(tmp_path, text), "not sorted", f"open_time {T0 + MIN}", "row 3")


def test_duplicate_timestamps(tmp_path: Path) -> None:
    text = HEADER + row(0) + row(1) + row(2) + row(2, c=100.7) + row(3) + row(3)
    expect_error(write(tmp_path, text), "duplicate timestamp", f"open_time {T0 + 2 * MIN}", "row 4")


def test_single_candle(tmp_path: Path) -> None:
    expect_error(write(tmp_path, HEADER + row(0)), "at least 2 candles")


def test_window_without_candles(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + good_rows(5))
    expect_error(path, "no candles in window", start=T0 + 100 * MIN)
    expect_error(path, "no candles in window", end=T0)
    # a window inside a gap
    path2 = write(tmp_path, HEADER + row(0) + row(10), "gap.csv")
    expect_error(path2, "no candles in window", start=T0 + 2 * MIN, end=T0 + 5 * MIN)


def test_window_start_not_before_end(tmp_path: Path) -> None:
    expect_error(write(tmp_path, HEADER + good_rows()), "empty window", start="2024-01-02", end="2024-01-01")


def test_invalid_window_value(tmp_path: Path) -> None:
    expect_error(write(tmp_path, HEADER + good_rows()), "invalid time", start="yesterday-ish")


def test_window_bounds_inclusive_exclusive(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + good_rows(10))
    c = load_candles(path, start=T0 + 2 * MIN, end=T0 + 5 * MIN)
    assert c.open_time.tolist() == [T0 + 2 * MIN, T0 + 3 * MIN, T0 + 4 * MIN]


def test_parquet_round_trip(tmp_path: Path) -> None:
    src = load_candles(write(tmp_path, HEADER + "".join(row(i, c=100 + i / 7) for i in (0, 1, 2, 4, 5))))
    frame = pd.DataFrame(
        {
            "open_time": src.open_time,
            "open": src.open,
            "high": src.high,
            "low": src.low,
            "close": src.close,
            "volume": src.volume,
            "note": ["a", "b", "c", "d", "e"],
        }
    )
    path = tmp_path / "candles.parquet"
    frame.to_parquet(path)
    back = load_candles(path)
    for field in ("open_time", "open", "high", "low", "close", "volume"):
        assert np.array_equal(getattr(back, field), getattr(src, field)), field
    assert back.gaps == src.gaps == [Gap(T0 + 3 * MIN, T0 + 4 * MIN, 1)]


def test_parquet_with_datetime_open_time(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "open_time": pd.to_datetime([T0, T0 + MIN, T0 + 2 * MIN], unit="ms", utc=True),
            "open": [1.0, 1.0, 1.0],
            "high": [2.0, 2.0, 2.0],
            "low": [0.5, 0.5, 0.5],
            "close": [1.5, 1.5, 1.5],
            "volume": [3.0, 3.0, 3.0],
        }
    )
    path = tmp_path / "dt.parquet"
    frame.to_parquet(path)
    assert load_candles(path).open_time.tolist() == [T0, T0 + MIN, T0 + 2 * MIN]


def test_parquet_validation_applies(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "open_time": [T0, T0 + MIN],
            "open": [1.0, 1.0],
            "high": [2.0, 0.9],
            "low": [0.5, 0.5],
            "close": [1.5, 0.8],
            "volume": [1.0, 1.0],
        }
    )
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path)
    expect_error(path, "OHLC inconsistent", f"open_time {T0 + MIN}")


# ----------------------------------------------------------------------------------------- helpers


def test_candles_from_arrays_and_slice() -> None:
    t = [T0 + i * MIN for i in (0, 1, 2, 6, 7)]
    c = Candles.from_arrays(t, [1] * 5, [2] * 5, [0.5] * 5, [1.5] * 5)
    assert len(c) == 5
    assert c.timeframe_ms == MIN
    assert c.gaps == [Gap(T0 + 3 * MIN, T0 + 6 * MIN, 3)]
    assert c.volume.tolist() == [0.0] * 5
    s = c.slice_time(T0 + MIN, T0 + 6 * MIN)
    assert s.open_time.tolist() == [T0 + MIN, T0 + 2 * MIN]
    assert s.gaps == [] and s.timeframe_ms == MIN
    assert len(c.slice_time(T0 + 100 * MIN, None)) == 0
    assert len(c.slice_time(None, None)) == 5
    assert len(c.head(2)) == 2
    with pytest.raises(ValueError, match="strictly increasing"):
        Candles.from_arrays([2, 1], [1, 1], [1, 1], [1, 1], [1, 1])
    with pytest.raises(ValueError, match="length"):
        Candles(np.array([1, 2]), np.ones(2), np.ones(2), np.ones(3), np.ones(2), np.ones(2), MIN)


def test_infer_timeframe_and_find_gaps() -> None:
    t = np.array([0, 60, 120, 300, 360, 420], dtype=np.int64)
    assert infer_timeframe_ms(t) == 60
    assert find_gaps(t, 60) == [Gap(180, 300, 2)]
    assert find_gaps(np.array([0, 90]), 60) == [Gap(60, 90, 1)]  # misaligned: rounds up
    with pytest.raises(ValueError):
        infer_timeframe_ms(np.array([5]))


def test_parse_time_ms() -> None:
    base = ms("2025-06-01T00:00:00")
    assert parse_time_ms("2025-06-01") == base
    assert parse_time_ms("2025-06-01T00:00:00Z") == base
    assert parse_time_ms("2025-06-01T12:00:00Z") == base + 12 * 3_600_000
    assert parse_time_ms("2025-06-01T02:00:00+02:00") == base
    assert parse_time_ms(base) == base
    assert parse_time_ms(str(base)) == base
    assert parse_time_ms(datetime(2025, 6, 1)) == base
    for bad in ("not a date", True, 1.5):
        with pytest.raises(ValueError):
            parse_time_ms(bad)  # type: ignore[arg-type]
