"""Incremental indicators vs non-incremental references on real BTCUSDT 1h candles and textbook values."""

from __future__ import annotations

import csv
import gzip
import statistics
from collections.abc import Callable, Sequence
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest
from pydantic import ValidationError

from gridfleet.engine.indicators import (
    ATR,
    EMA,
    RSI,
    SMA,
    BollingerBand,
    IndicatorSpec,
    make_indicator,
    source_value,
)
from gridfleet.engine.types import Candle

D = Decimal
N_ROWS = 2000
REAL_FILE = "binance_spot_BTCUSDT_1h_2017-08-17_2024-04-21"


@pytest.fixture(scope="module")
def candles(ohlcv_file: Callable[[str], Path]) -> list[Candle]:
    """Return the first 2000 real 1h BTCUSDT candles."""
    out: list[Candle] = []
    with gzip.open(ohlcv_file(REAL_FILE), "rt", newline="") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            out.append(
                Candle(
                    open_time=int(row["open_time"]),
                    open=D(row["open"]),
                    high=D(row["high"]),
                    low=D(row["low"]),
                    close=D(row["close"]),
                    volume=D(row["volume"]),
                )
            )
            if len(out) == N_ROWS:
                break
    assert len(out) == N_ROWS
    return out


def run(spec: dict[str, object], candles: Sequence[Candle]) -> list[Decimal | None]:
    """Feed every candle to a fresh indicator and return the value after each one."""
    ind = make_indicator(spec)
    return [ind.update(c) for c in candles]


def flat(x: str | int | Decimal, t: int = 0) -> Candle:
    """Return a candle whose OHLC are all ``x``."""
    v = D(x)
    return Candle(t, v, v, v, v, D(0))


def words(text: str) -> list[str]:
    """Return the blank-separated words of ``text``."""
    return text.split()


def close_to(a: Decimal, b: Decimal, rel: str = "1e-20") -> bool:
    """Return True when ``a`` and ``b`` agree to a relative tolerance."""
    return abs(a - b) <= D(rel) * max(abs(a), abs(b), D(1))


# ---------------------------------------------------------------- references


def ref_sma(xs: Sequence[Decimal], p: int) -> list[Decimal | None]:
    """Return the SMA at every index, recomputed from the window."""
    return [None if i < p - 1 else sum(xs[i - p + 1 : i + 1], D(0)) / p for i in range(len(xs))]


def ref_weighted_avg(xs: Sequence[Decimal], p: int, alpha: Decimal, n: int) -> Decimal:
    """Return the closed form of an SMA-seeded exponential average of ``xs[:n+1]`` (n >= p-1).

    ``avg_n = (1-a)^(n-p+1) * mean(xs[:p]) + sum_{i=p}^{n} a (1-a)^(n-i) xs[i]``.
    """
    keep = 1 - alpha
    total = D(0)
    w = alpha
    for i in range(n, p - 1, -1):
        total += w * xs[i]
        w *= keep
    return total + (w / alpha) * (sum(xs[:p], D(0)) / p)


def true_ranges(cs: Sequence[Candle]) -> list[Decimal]:
    """Return the true range of every candle (high-low for the first)."""
    out = [cs[0].high - cs[0].low]
    for prev, c in pairwise(cs):
        out.append(max(c.high - c.low, abs(c.high - prev.close), abs(c.low - prev.close)))
    return out


SAMPLE = range(0, N_ROWS, 37)  # closed forms are O(n) per point: check a spread of indices


# ---------------------------------------------------------------- SMA


@pytest.mark.parametrize("period", [1, 7, 20, 200])
def test_sma_equals_window_mean_on_real_data(candles: list[Candle], period: int) -> None:
    closes = [c.close for c in candles]
    got = run({"name": "ma", "period": period}, candles)
    assert got == ref_sma(closes, period)  # exact: running sums never round
    assert got[: period - 1] == [None] * (period - 1)
    assert got[period - 1] == sum(closes[:period], D(0)) / period
    assert got[-1] is not None and got[-1] > 0


def test_sma_sources(candles: list[Candle]) -> None:
    sources: list[tuple[str, Callable[[Candle], Decimal]]] = [
        ("open", lambda c: c.open),
        ("high", lambda c: c.high),
        ("low", lambda c: c.low),
        ("hl2", lambda c: (c.high + c.low) / 2),
        ("hlc3", lambda c: (c.high + c.low + c.close) / 3),
        ("ohlc4", lambda c: (c.open + c.high + c.low + c.close) / 4),
    ]
    for source, f in sources:
        xs = [f(c) for c in candles[:300]]
        got = run({"name": "ma", "period": 10, "source": source}, candles[:300])
        ref = ref_sma(xs, 10)
        assert got[:9] == ref[:9] == [None] * 9
        # hlc3 values carry 28 digits, so the reference's own (28-digit) summing rounds: compare to 1e-25
        for g, r in zip(got[9:], ref[9:], strict=True):
            assert g is not None and r is not None and close_to(g, r, rel="1e-25"), (source, g, r)


def test_sma_textbook() -> None:
    got = run({"name": "ma", "period": 3}, [flat(x) for x in words("1 2 3 4 5 10")])
    assert got == [None, None, D(2), D(3), D(4), D(19) / 3]


# ---------------------------------------------------------------- EMA


@pytest.mark.parametrize("period", [5, 12, 26, 100])
def test_ema_matches_closed_form_on_real_data(candles: list[Candle], period: int) -> None:
    closes = [c.close for c in candles]
    got = run({"name": "ema", "period": period}, candles)
    assert got[: period - 1] == [None] * (period - 1)
    assert got[period - 1] == sum(closes[:period], D(0)) / period  # seeded with the SMA
    alpha = D(2) / (period + 1)
    for n in SAMPLE:
        if n < period - 1:
            continue
        ref = ref_weighted_avg(closes, period, alpha, n)
        value = got[n]
        assert value is not None and close_to(value, ref), (n, value, ref)


def test_ema_textbook_stockcharts() -> None:
    """StockCharts' 10-day EMA example (values published rounded to 2 decimals)."""
    closes = words(
        "22.27 22.19 22.08 22.17 22.18 22.13 22.23 22.43 22.24 22.29 22.15 22.39 22.38 22.61 23.36 24.05 "
        "23.75 23.83 23.95 23.63 23.82 23.87 23.65 23.19 23.10 23.33 22.68 23.10 22.40 22.17"
    )
    published = words(
        "22.22 22.21 22.24 22.27 22.33 22.52 22.80 22.97 23.13 23.28 23.34 23.43 23.51 23.54 23.47 23.40 "
        "23.39 23.26 23.23 23.08 22.92"
    )
    got = [v for v in run({"name": "ema", "period": 10}, [flat(x) for x in closes]) if v is not None]
    assert len(got) == len(published)
    assert got[0] == D("22.221")  # the SMA of the first ten closes, exactly
    for v, p in zip(got, published, strict=True):
        assert abs(v - D(p)) <= D("0.011"), (v, p)


# ---------------------------------------------------------------- RSI


def ref_rsi(closes: Sequence[Decimal], p: int, n: int) -> Decimal | None:
    """Return Wilder's RSI after close ``n`` via the closed form of the smoothed gains and losses."""
    if n < p:
        return None
    changes = [b - a for a, b in pairwise(closes)]
    gains = [max(c, D(0)) for c in changes]
    losses = [max(-c, D(0)) for c in changes]
    alpha = D(1) / p
    g = ref_weighted_avg(gains, p, alpha, n - 1)
    loss = ref_weighted_avg(losses, p, alpha, n - 1)
    return D(50) if g + loss == 0 else 100 * g / (g + loss)


@pytest.mark.parametrize("period", [2, 14, 50])
def test_rsi_matches_closed_form_on_real_data(candles: list[Candle], period: int) -> None:
    closes = [c.close for c in candles]
    got = run({"name": "rsi", "period": period}, candles)
    assert got[:period] == [None] * period
    assert got[period] is not None
    for n in [*SAMPLE, period, N_ROWS - 1]:
        ref = ref_rsi(closes, period, n)
        value = got[n]
        if ref is None:
            assert value is None
        else:
            assert value is not None and close_to(value, ref), (n, value, ref)
            assert D(0) <= value <= D(100)


def test_rsi_first_value_is_plain_average_ratio(candles: list[Candle]) -> None:
    closes = [c.close for c in candles[:15]]
    changes = [b - a for a, b in pairwise(closes)]
    up = sum((c for c in changes if c > 0), D(0))
    down = sum((-c for c in changes if c < 0), D(0))
    assert run({"name": "rsi", "period": 14}, candles[:15])[-1] == 100 * (up / 14) / (up / 14 + down / 14)


def test_rsi_textbook_stockcharts() -> None:
    """StockCharts' 14-day RSI example. Its spreadsheet rounds the averages to 2 decimals, hence +/- 0.08.

    The first value by hand: gains sum 3.34, losses sum 1.40 over 14 changes -> 100*3.34/4.74 = 70.464.
    """
    closes = words(
        "44.34 44.09 44.15 43.61 44.33 44.83 45.10 45.42 45.84 46.08 45.89 46.03 45.61 46.28 46.28 46.00 "
        "46.03 46.41 46.22 45.64 46.21 46.25 45.71 46.45 45.78 45.35 44.03 44.18 44.22 44.57 43.42 42.66 "
        "43.13"
    )
    published = words(
        "70.53 66.32 66.55 69.41 66.36 57.97 62.93 63.26 56.06 62.38 54.71 50.42 39.99 41.46 41.87 45.46 "
        "37.30 33.08 37.77"
    )
    got = [v for v in run({"name": "rsi", "period": 14}, [flat(x) for x in closes]) if v is not None]
    assert close_to(got[0], 100 * D("3.34") / D("4.74"), rel="1e-26")
    assert len(got) == len(published)
    for v, p in zip(got, published, strict=True):
        assert abs(v - D(p)) <= D("0.08"), (v, p)


def test_rsi_edge_values() -> None:
    up = run({"name": "rsi", "period": 3}, [flat(x) for x in [1, 2, 3, 4, 5]])
    assert up == [None, None, None, D(100), D(100)]
    down = run({"name": "rsi", "period": 3}, [flat(x) for x in [5, 4, 3, 2, 1]])
    assert down == [None, None, None, D(0), D(0)]
    still = run({"name": "rsi", "period": 2}, [flat(7)] * 4)
    assert still == [None, None, D(50), D(50)]


# ---------------------------------------------------------------- ATR


@pytest.mark.parametrize("period", [1, 14, 30])
def test_atr_matches_closed_form_on_real_data(candles: list[Candle], period: int) -> None:
    trs = true_ranges(candles)
    got = run({"name": "atr", "period": period}, candles)
    assert got[: period - 1] == [None] * (period - 1)
    assert got[period - 1] == sum(trs[:period], D(0)) / period
    for n in SAMPLE:
        if n < period - 1:
            continue
        ref = ref_weighted_avg(trs, period, D(1) / period, n)
        value = got[n]
        assert value is not None and close_to(value, ref), (n, value, ref)
        assert value > 0


def test_atr_textbook() -> None:
    cs = [
        Candle(0, D(10), D(12), D(9), D(11), D(0)),  # TR = 3 (high - low)
        Candle(1, D(11), D(11.5), D(10.5), D(11), D(0)),  # TR = 1
        Candle(2, D(13), D(14), D(13), D(13.5), D(0)),  # gap up: TR = 14 - 11 = 3
        Candle(3, D(13), D(13), D(9), D(10), D(0)),  # TR = 13.5 - 9 = 4.5
    ]
    assert true_ranges(cs) == [D(3), D(1), D(3), D("4.5")]
    got = run({"name": "atr", "period": 2}, cs)
    assert got == [None, D(2), D("2.5"), D("3.5")]  # (3+1)/2; (2*1+3)/2; (2.5*1+4.5)/2


# ---------------------------------------------------------------- Bollinger


@pytest.mark.parametrize(("period", "k"), [(20, "2"), (50, "2.5"), (5, "1")])
def test_bollinger_matches_statistics_on_real_data(candles: list[Candle], period: int, k: str) -> None:
    closes = [c.close for c in candles]
    up = run({"name": "boll", "period": period, "k": k, "band": "upper"}, candles)
    mid = run({"name": "boll", "period": period, "k": k, "band": "middle"}, candles)
    low = run({"name": "boll", "period": period, "k": k, "band": "lower"}, candles)
    assert mid == ref_sma(closes, period)
    for n in range(period - 1, N_ROWS):
        window = closes[n - period + 1 : n + 1]
        mean = statistics.mean(window)
        sigma = statistics.pstdev(window)
        u, m, lo = up[n], mid[n], low[n]
        assert u is not None and m is not None and lo is not None
        assert close_to(u, mean + D(k) * sigma) and close_to(lo, mean - D(k) * sigma), n
        assert lo <= m <= u
    assert up[period - 2] is None and low[period - 2] is None


def test_bollinger_textbook() -> None:
    """Population std of 2,4,4,4,5,5,7,9 is exactly 2 around a mean of 5."""
    cs = [flat(x) for x in [2, 4, 4, 4, 5, 5, 7, 9]]
    assert run({"name": "boll", "period": 8, "band": "upper"}, cs)[-1] == D(9)
    assert run({"name": "boll", "period": 8, "band": "lower"}, cs)[-1] == D(1)
    assert run({"name": "boll", "period": 8, "band": "middle"}, cs)[-1] == D(5)
    assert run({"name": "boll", "period": 8, "band": "upper", "k": "0.5"}, cs)[-1] == D(6)


# ---------------------------------------------------------------- spec, factory, state


def test_spec_keys_are_stable_and_canonical() -> None:
    assert IndicatorSpec(name="rsi", period=14).key == "rsi(14)"
    assert IndicatorSpec.model_validate({"name": "ma", "period": 20}).key == "ma(20)"
    assert IndicatorSpec.model_validate({"name": "ema", "period": 9, "source": "hl2"}).key == "ema(9,hl2)"
    a = IndicatorSpec.model_validate({"name": "boll", "period": 20, "k": "2.0", "band": "upper"})
    b = IndicatorSpec.model_validate({"name": "boll", "period": 20, "k": 2, "band": "upper"})
    assert a.key == b.key == "boll(20,2,upper)"
    assert IndicatorSpec.model_validate({"name": "boll", "period": 20, "k": 2.5}).key == "boll(20,2.5,middle)"
    assert IndicatorSpec.model_validate({"name": "atr", "period": 14}).key == "atr(14)"
    assert str(a) == a.key
    assert IndicatorSpec.model_validate({"name": "rsi", "period": 14}).warmup == 15
    assert IndicatorSpec.model_validate({"name": "ma", "period": 14}).warmup == 14
    # explicit defaults are accepted, so a plain dump validates back
    rsi = IndicatorSpec.model_validate({"name": "rsi", "period": 14, "k": 2, "band": "middle"})
    assert IndicatorSpec.model_validate(rsi.model_dump()) == rsi and rsi.key == "rsi(14)"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"name": "rsi", "period": 0}, "period"),
        ({"name": "rsi", "period": 14, "band": "upper"}, "band"),
        ({"name": "ema", "period": 14, "k": 3}, "k"),
        ({"name": "ma", "period": 14, "band": "lower"}, "band"),
        ({"name": "boll", "period": 14, "k": 0}, "k"),
        ({"name": "boll", "period": 14, "band": "top"}, "band"),
        ({"name": "macd", "period": 14}, "name"),
        ({"name": "atr", "period": 14, "source": "open"}, "source"),
        ({"name": "ma", "period": 14, "lenght": 3}, "lenght"),
        ({"name": "ma"}, "period"),
    ],
)
def test_spec_rejects_invalid_input_naming_the_field(spec: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        IndicatorSpec.model_validate(spec)
    assert field in str(exc.value)


def test_factory_classes_and_reset() -> None:
    assert isinstance(make_indicator({"name": "ma", "period": 2}), SMA)
    assert isinstance(make_indicator({"name": "ema", "period": 2}), EMA)
    assert isinstance(make_indicator({"name": "rsi", "period": 2}), RSI)
    assert isinstance(make_indicator({"name": "atr", "period": 2}), ATR)
    ind = make_indicator(IndicatorSpec.model_validate({"name": "boll", "period": 2}))
    assert isinstance(ind, BollingerBand)
    assert ind.update(flat(1)) is None and not ind.ready and ind.count == 1
    assert ind.update(flat(3)) == D(2) and ind.ready and ind.value == D(2)
    ind.reset()
    assert ind.value is None and ind.count == 0
    assert ind.update(flat(5)) is None
    assert ind.update(flat(7)) == D(6)
    assert "boll(2,2,middle)" in repr(ind)


def test_source_value() -> None:
    c = Candle(0, D(1), D(4), D(0), D(3), D(9))
    assert [source_value(c, s) for s in ("open", "high", "low", "close", "hl2", "hlc3", "ohlc4")] == [
        D(1),
        D(4),
        D(0),
        D(3),
        D(2),
        D(7) / 3,
        D(2),
    ]


def test_outputs_are_decimal_and_finite(candles: list[Candle]) -> None:
    for spec in [
        {"name": "ma", "period": 10},
        {"name": "ema", "period": 10},
        {"name": "rsi", "period": 10},
        {"name": "atr", "period": 10},
        {"name": "boll", "period": 10, "band": "lower"},
    ]:
        values = [v for v in run(spec, candles[:100]) if v is not None]
        assert values and all(isinstance(v, Decimal) and v.is_finite() for v in values)
