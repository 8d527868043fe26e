"""Fixtures of the fake-exchange tests: the first few hundred real BTCUSDT 1m candles."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridfleet.backtest.data import Candles, load_candles

CANDLE_FILE = "binance_spot_BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz"


@pytest.fixture(scope="session")
def candle_file(ohlcv_dir: Path) -> Path:
    """Return the real candle file the tests replay; skip when it is absent."""
    path = ohlcv_dir / CANDLE_FILE
    if not path.is_file():
        pytest.skip(f"real candle file not found: {path}")
    return path


@pytest.fixture(scope="session")
def candles(candle_file: Path) -> Candles:
    """Return the first 400 candles of the real file (2025-05-20 00:00 UTC onwards)."""
    return load_candles(candle_file).head(400)
