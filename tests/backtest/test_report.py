"""Tests of the self-contained HTML report, including a headless-Chromium render (marked ``browser``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gridfleet.backtest.data import Candles, load_candles
from gridfleet.backtest.metrics import compute_metrics, resample_equity
from gridfleet.backtest.report import METRIC_LABELS, downsample_candles, format_metric, write_report

BTC_2025 = "binance_spot_BTCUSDT_1m_2025-05-20_2025-08-18"
CHROMIUM = Path("/usr/bin/chromium")
NASTY = '<script>alert("x")</script> & "quotes"'


def toy_grid_backtest(c: Candles, n_levels: int = 12, amount: float = 0.005) -> dict[str, Any]:
    """A crude long-only grid over real candles, only to produce plausible fills/equity for the report."""
    lo, hi = float(c.low.min()), float(c.high.max())
    levels = [round(x, 2) for x in np.linspace(lo, hi, n_levels)]
    cash, base = 10_000.0, 0.0
    holding: dict[int, float] = {}
    fills: list[dict[str, Any]] = []
    profits: list[float] = []
    per_level: dict[float, float] = {}
    equity = np.empty(len(c))
    prev = float(c.close[0])
    for i in range(len(c)):
        ts = int(c.open_time[i])
        for j, lvl in enumerate(levels[:-1]):
            if j not in holding and prev > lvl >= c.low[i]:
                holding[j] = lvl
                cash -= lvl * amount * 1.001
                base += amount
                fills.append(
                    {"timestamp": ts, "side": "buy", "price": lvl, "amount": amount, "fee": lvl * amount * 0.001}
                )
            elif j in holding and c.high[i] >= levels[j + 1]:
                sell = levels[j + 1]
                cash += sell * amount * 0.999
                base -= amount
                pnl = (sell - holding.pop(j)) * amount - 0.001 * (sell + lvl) * amount
                profits.append(pnl)
                per_level[lvl] = per_level.get(lvl, 0.0) + pnl
                fills.append(
                    {"timestamp": ts, "side": "sell", "price": sell, "amount": amount, "fee": sell * amount * 0.001}
                )
        prev = float(c.close[i])
        equity[i] = cash + base * prev
    in_range = (c.close >= levels[0]) & (c.close <= levels[-1])
    metrics = compute_metrics(
        c.open_time, equity, initial_equity=10_000.0, round_trip_profits=profits, in_range=in_range
    )
    return {
        "levels": levels,
        "fills": fills,
        "equity": resample_equity(c.open_time, equity),
        "metrics": metrics,
        "per_level_profit": per_level,
        "config": {
            "symbol": "BTC/USDT",
            "levels": n_levels,
            "amount": amount,
            "note": NASTY,
            "range": [levels[0], levels[-1]],
        },
    }


@pytest.fixture(scope="module")
def small_run(ohlcv_file: Callable[[str], Path]) -> tuple[Candles, dict[str, Any]]:
    candles = load_candles(ohlcv_file(BTC_2025)).head(3000)
    return candles, toy_grid_backtest(candles)


def make_report(path: Path, candles: Candles, run: dict[str, Any], title: str = "BTC/USDT grid backtest") -> str:
    write_report(path, title=title, candles=candles, **run)
    return path.read_text(encoding="utf-8")


def test_report_is_self_contained(tmp_path: Path, small_run: tuple[Candles, dict[str, Any]]) -> None:
    candles, run = small_run
    assert len(run["fills"]) > 10 and run["per_level_profit"]
    text = make_report(tmp_path / "sub" / "report.html", candles, run)
    assert text.startswith("<!DOCTYPE html>")
    assert '<script src="http' not in text
    assert not re.search(r"<script[^>]+src=", text), "external script reference"
    assert not re.search(r"<link[^>]+href=\"https?:", text), "external stylesheet"
    assert len(re.findall(r"plotly\.js v\d", text)) == 1, "plotly.js must be embedded exactly once"
    assert text.count("Plotly.newPlot") == 3
    for div in ("chart-price", "chart-equity", "chart-levels"):
        assert f'id="{div}"' in text
    for key, label in METRIC_LABELS.items():
        assert key in text and label in text
    # config rendered as pretty JSON
    assert "&quot;symbol&quot;: &quot;BTC/USDT&quot;" in text


def test_report_escapes_text(tmp_path: Path, small_run: tuple[Candles, dict[str, Any]]) -> None:
    candles, run = small_run
    text = make_report(tmp_path / "r.html", candles, run, title=NASTY)
    assert '<script>alert("x")</script>' not in text
    assert "<title>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;</title>" in text
    assert text.count("&lt;script&gt;alert(") >= 3  # title, h1, config


def test_report_metric_values_formatted(tmp_path: Path, small_run: tuple[Candles, dict[str, Any]]) -> None:
    candles, run = small_run
    text = make_report(tmp_path / "r.html", candles, run)
    m = run["metrics"]
    assert format_metric("max_drawdown_pct", m["max_drawdown_pct"]) in text
    assert f"{m['round_trips']:,}" in text
    assert "3,000 × 1m" in text


def test_report_with_nothing_traded(tmp_path: Path, small_run: tuple[Candles, dict[str, Any]]) -> None:
    candles, _ = small_run
    path = tmp_path / "empty.html"
    write_report(
        path,
        title="idle",
        candles=candles.head(50),
        levels=[],
        fills=[],
        equity=[],
        metrics={},
        per_level_profit={},
        config={},
    )
    text = path.read_text()
    assert "no equity data" in text and "no closed round trips" in text
    assert len(re.findall(r"plotly\.js v\d", text)) == 1


def test_downsample_candles_full_file(ohlcv_file: Callable[[str], Path]) -> None:
    c = load_candles(ohlcv_file(BTC_2025))
    bars, k = downsample_candles(c, 3000)
    n = len(bars["open_time"])
    assert k == 44  # ceil(130,708 / 3000)
    assert 2900 <= n <= 3000
    assert bars["open"][0] == c.open[0] and bars["close"][-1] == c.close[-1]
    assert bars["high"].max() == c.high.max() and bars["low"].min() == c.low.min()
    assert np.all(np.diff(bars["open_time"]) == k * 60_000)  # gap-free file: regular buckets
    # bucket 1 = candles 44..87
    assert bars["open"][1] == c.open[44] and bars["close"][1] == c.close[87]
    assert bars["high"][1] == c.high[44:88].max() and bars["low"][1] == c.low[44:88].min()
    small, k1 = downsample_candles(c.head(100), 3000)
    assert k1 == 1 and len(small["open_time"]) == 100


def test_format_metric() -> None:
    assert format_metric("total_return_pct", 12.3456) == "+12.35 %"
    assert format_metric("total_return_pct", -1234.5) == "-1,234.50 %"
    assert format_metric("max_drawdown_pct", 3.0) == "3.00 %"
    assert format_metric("profit_factor", None) == "n/a (no losing trip)"
    assert format_metric("sharpe", 1.23456) == "1.23"
    assert format_metric("round_trips", 12345) == "12,345"
    assert format_metric("final_equity", 10234.5) == "10,234.50"
    assert format_metric("duration_days", 2.5) == "2.50 days"
    assert format_metric("something_else", None) == "—"


@pytest.mark.browser
def test_report_renders_in_chromium(small_run: tuple[Candles, dict[str, Any]], artifacts_dir: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright Python package not installed")
    candles, run = small_run
    html_path = artifacts_dir / "report.html"
    make_report(html_path, candles, run)
    png = artifacts_dir / "report.png"
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            requests: list[str] = []
            page.on("request", lambda req: requests.append(req.url))
            page.goto(html_path.resolve().as_uri())
            page.wait_for_function("document.querySelectorAll('.main-svg').length >= 3", timeout=30_000)
            svg_count = page.locator(".main-svg").count()
            candle_paths = page.locator("#chart-price .trace.boxes path, #chart-price .ohlc path").count()
            page.screenshot(path=str(png), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert svg_count >= 3
    assert candle_paths > 100  # candlesticks actually drawn
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []  # nothing fetched online
    assert png.stat().st_size > 50_000
