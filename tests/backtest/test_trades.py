"""Backtests that fill against individual trades instead of candles."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gridfleet.backtest.data import DataError
from gridfleet.backtest.runner import run_backtest_trades
from gridfleet.backtest.trades import Trades, load_trades
from gridfleet.cli.main import app
from gridfleet.engine.config import parse_config

CFG = {"symbol": "X/USDT", "grid": {"lower": 97, "upper": 103, "levels": 7}, "qty_per_order": "1",
       "investment": "1000", "fees": {"maker": "0", "taker": "0"}, "slippage": "0"}


def _trades(prices: list[float]) -> Trades:
    return Trades(np.arange(len(prices), dtype=np.int64) * 1000, np.asarray(prices, dtype=float),
                  np.ones(len(prices)))


def test_trades_path_fills_levels_in_order() -> None:
    # start at 100 (level 3 empty): buys at 97,98,99; sells at 101,102,103
    result = run_backtest_trades(parse_config(CFG), _trades([100, 98.5, 97.2, 101.5, 99.9]))
    fills = [(r.fill.side.value, r.fill.price) for r in result.fills if r.tag != "initial"]
    assert fills == [("buy", Decimal(99)), ("buy", Decimal(98)), ("sell", Decimal(99)), ("sell", Decimal(100)),
                     ("sell", Decimal(101)), ("buy", Decimal(100))]
    s = result.summary
    assert (s["buy_fills"], s["sell_fills"]) == (3, 3)
    assert Decimal(s["final_base"]) == Decimal(3)  # 3 from the initial buy, +3 −3
    assert Decimal(s["final_quote"]) == Decimal(1000) - 300 - 99 - 98 + 99 + 100 + 101 - 100
    assert Decimal(s["grid_profit"]) == Decimal(3)  # three round trips of 1 each


def test_trades_participation_limits_fills() -> None:
    cfg = {**CFG, "participation": "0.5"}
    trades = Trades(np.array([0, 1, 2, 3]), np.array([100.0, 98.9, 98.8, 98.7]), np.array([1.0, 1.0, 1.0, 1.0]))
    result = run_backtest_trades(parse_config(cfg), trades)
    buys = [r.fill for r in result.fills if r.tag != "initial"]
    assert [f.amount for f in buys] == [Decimal("0.5"), Decimal("0.5")]
    assert [f.order_complete for f in buys] == [False, True]


def test_real_trades_file_and_cli(tmp_path: Path, shared_data_dir: Path) -> None:
    path = shared_data_dir / "trades" / "binance_spot_BTCUSDT_trades_2021-01-08_0000-0046.csv"
    trades = load_trades(path)
    assert len(trades) == 2001
    cfg = tmp_path / "g.yaml"
    cfg.write_text("symbol: BTC/USDT\ngrid: {lower: 39300, upper: 39700, levels: 41}\nqty_per_order: 0.001\n"
                   "investment: 100000\nslippage: 0\n")
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["backtest", "-c", str(cfg), "-d", str(path), "--json", str(out)])
    assert res.exit_code == 0, res.output
    import json

    doc = json.loads(out.read_text())
    assert doc["candles"] == 2001 and doc["buy_fills"] > 0 and doc["sell_fills"] > 0


def test_bad_trades_files(tmp_path: Path) -> None:
    bad = tmp_path / "t.csv"
    bad.write_text("time_ms,price\n1,100\n")
    with pytest.raises(DataError, match="missing column"):
        load_trades(bad)
    bad.write_text("time_ms,price,qty\n2,100,1\n1,100,1\n")
    with pytest.raises(DataError, match="not sorted"):
        load_trades(bad)
    bad.write_text("time_ms,price,qty\n1,-5,1\n")
    with pytest.raises(DataError, match="positive"):
        load_trades(bad)
