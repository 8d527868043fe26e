"""Parity: a paper bot run by the live runtime and a backtest on the same candles produce the same fills."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from gridfleet.backtest.data import Candles, load_candles
from gridfleet.backtest.runner import run_backtest
from gridfleet.engine.config import GridConfig, parse_config
from gridfleet.exchanges.base import PriceUpdate
from gridfleet.exchanges.paper import PaperExchange
from gridfleet.runtime.bot import BotRunner
from gridfleet.runtime.host import BotHost
from gridfleet.runtime.store import SqliteStore
from tests.price_only_venue import PriceOnlyVenue


def _d(x: float) -> Decimal:
    return Decimal(repr(float(x)))


class CandlePathSource(PriceOnlyVenue):
    """A read-only venue whose trades are the backtester's candle path points (then it goes quiet)."""

    id = "candles"

    def __init__(self, candles: Candles, symbol: str) -> None:
        self.candles, self.symbol = candles, symbol
        self.done = asyncio.Event()

    def points(self) -> list[PriceUpdate]:
        c, out = self.candles, []
        for i in range(len(c)):
            t, o, h, lo, cl = int(c.open_time[i]), c.open[i], c.high[i], c.low[i], c.close[i]
            path = [o, lo, h, cl] if cl >= o else [o, h, lo, cl]
            out.extend(PriceUpdate(self.symbol, _d(p), t) for p in path)
        return out


    async def fetch_price(self, symbol: str) -> PriceUpdate:
        return PriceUpdate(symbol, _d(self.candles.open[0]), int(self.candles.open_time[0]))

    async def watch_prices(self, symbol: str) -> AsyncIterator[PriceUpdate]:  # type: ignore[override]
        for update in self.points():
            yield update
        self.done.set()
        await asyncio.Event().wait()


async def _paper_fills(config: GridConfig, candles: Candles, state: Path) -> list[tuple]:
    source = CandlePathSource(candles, config.symbol)
    base, quote = config.symbol.split("/")
    venue = PaperExchange(source, config.symbol, balances={quote: config.investment or Decimal(0), base: Decimal(0)},
                          maker_fee=config.fees.maker, taker_fee=config.fees.taker, slippage=config.slippage)
    store = SqliteStore(state)
    host = BotHost(reconcile_every=3600)
    await host.add(BotRunner("bt", "grid", config, config.symbol, venue, store))
    await asyncio.wait_for(source.done.wait(), timeout=120)
    await host.shutdown()
    fills = [(f.client_id, f.side.value, f.price, f.amount, f.fee, f.timestamp) for f in store.fills("bt")]
    store.close()
    return fills


def _backtest_fills(config: GridConfig, candles: Candles) -> list[tuple]:
    result = run_backtest(config, candles)
    return [(r.fill.client_id, r.fill.side.value, r.fill.price, r.fill.amount, r.fill.fee, r.fill.timestamp)
            for r in result.fills]


CONFIGS = {
    "plain": {"symbol": "ETH/USDT", "grid": {"type": "arithmetic", "lower": "2900", "upper": "3400", "levels": 26},
              "qty_per_order": "0.05", "investment": "100000", "slippage": "0"},
    "trailing": {"symbol": "ETH/USDT", "grid": {"type": "geometric", "lower": "2900", "upper": "3400", "levels": 21},
                 "qty_per_order": "0.05", "investment": "100000", "slippage": "0.0005",
                 "trailing": {"rebound_pct": "0.2", "pullback_pct": "0.2"},
                 "layers": [{"level": 10, "take_profit_pct": "1.5"}]},
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_paper_bot_and_backtest_fill_the_same(name: str, tmp_path: Path, ohlcv_file) -> None:
    candles = load_candles(ohlcv_file("binance_spot_ETHUSDT_1m_2024-07-26_2024-08-25.csv.gz")).head(6000)
    config = parse_config(CONFIGS[name])
    expected = _backtest_fills(config, candles)
    got = asyncio.run(_paper_fills(config, candles, tmp_path / "paper.sqlite3"))
    assert len(expected) >= 20, "window too quiet to prove parity"
    assert got == expected
