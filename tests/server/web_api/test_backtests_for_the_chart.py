"""Backtests for the preview chart: the datasets list, and fills + equity curve in a finished job."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from gridfleet.backtest.data import load_candles
from gridfleet.backtest.runner import run_backtest
from gridfleet.engine.config import parse_config
from gridfleet.server.analytics.backtest_results import MAX_FILLS, sample_indices

pytestmark = pytest.mark.django_db

FILE = "binance_spot_BTCUSDT_1h_2017-08-17_2024-04-21.csv.gz"
FROM, TO = "2023-01-01", "2023-04-01"
CONFIG = {"symbol": "BTC/USDT", "grid": {"type": "geometric", "lower": "16000", "upper": "30000", "levels": 41},
          "investment": "10000"}


@pytest.fixture
def data_dir(ohlcv_dir: Path) -> Iterator[Path]:
    with override_settings(GRIDFLEET_DATA_DIR=str(ohlcv_dir)):
        yield ohlcv_dir


def test_datasets_list_the_candle_files_with_symbol_timeframe_and_range(
        data_dir: Path, client_for: Callable[[str | None], APIClient], tmp_path: Path) -> None:
    assert client_for(None).get("/api/v1/backtests/datasets/").status_code == 401
    response = client_for("alice").get("/api/v1/backtests/datasets/")
    assert response.status_code == 200
    rows = {r["file"]: r for r in response.json()}
    assert set(rows) == {p.name for p in data_dir.iterdir() if p.name.endswith((".csv", ".csv.gz", ".parquet"))}
    assert rows[FILE] == {"file": FILE, "exchange": "binance", "market": "spot", "symbol": "BTC/USDT",
                          "timeframe": "1h", "start": "2017-08-17", "end": "2024-04-21",
                          "size_bytes": (data_dir / FILE).stat().st_size}
    (tmp_path / "my candles.csv").write_text("open_time,open,high,low,close,volume\n")
    (tmp_path / ".hidden.csv").write_text("")
    (tmp_path / "notes.txt").write_text("")
    with override_settings(GRIDFLEET_DATA_DIR=str(tmp_path)):
        other = client_for("alice").get("/api/v1/backtests/datasets/").json()
    assert [r["file"] for r in other] == ["my candles.csv"] and other[0]["symbol"] is None


def test_a_backtest_returns_its_fills_and_equity_curve_for_the_chart(
        data_dir: Path, client_for: Callable[[str], APIClient], django_capture_on_commit_callbacks: Any) -> None:
    api = client_for("alice")
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post("/api/v1/backtests/", {"config": CONFIG, "data": {"file": FILE}, "from": FROM, "to": TO},
                           format="json")
    assert created.status_code == 202, created.content
    job = api.get(f"/api/v1/backtests/{created.json()['id']}/").json()
    assert job["status"] == "done", job["error"]
    summary = job["summary"]
    direct = run_backtest(parse_config(CONFIG), load_candles(data_dir / FILE, start=FROM, end=TO))
    rows = direct.fill_rows()
    assert summary["fills_total"] == len(rows) > 20 and summary["fills_truncated"] is False
    assert summary["fills"] == [{k: r[k] for k in ("timestamp", "side", "price", "amount", "fee", "fee_currency",
                                                   "level", "tag")} for r in rows]
    for f in summary["fills"]:
        assert isinstance(f["price"], str) and Decimal(f["price"]) > 0
        assert summary["start_time"] <= f["timestamp"] <= summary["end_time"]
    curve = summary["equity_curve"]
    assert 2 <= len(curve) <= 2000 and curve[0][0] == summary["start_time"] and curve[-1][0] == summary["end_time"]
    assert summary["levels"] and len(summary["levels"]) == 41
    listed = api.get("/api/v1/backtests/").json()
    first = listed["results"][0] if isinstance(listed, dict) else listed[0]
    assert "fills" not in first["summary"] and "equity_curve" not in first["summary"]


def test_the_fills_of_a_long_backtest_are_capped_evenly() -> None:
    assert sample_indices(5, 10) == [0, 1, 2, 3, 4]
    picked = sample_indices(100_000, MAX_FILLS)
    assert len(picked) == MAX_FILLS and picked[0] == 0 and picked[-1] == 99_999
    gaps = {b - a for a, b in itertools.pairwise(picked)}
    assert gaps <= {49, 50, 51}
