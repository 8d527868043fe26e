"""The candle → price-point replay and its history queries."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gridfleet.backtest.data import Candles
from gridfleet.fake_exchange.replay import POINTS_PER_CANDLE, MarketReplay, candle_path
from gridfleet.markets import MarketRules

RULES = MarketRules("BTC/USDT", "BTC", "USDT", tick_size=Decimal("0.01"), step_size=Decimal("0.00001"))


def _candles() -> Candles:
    return Candles.from_arrays(
        [0, 60_000, 120_000, 180_000],
        [100.0, 104.0, 103.0, 110.0],
        [105.0, 106.0, 111.0, 112.0],
        [99.0, 101.0, 102.0, 108.0],
        [104.0, 102.0, 110.0, 109.0],
        [4.0, 8.0, 2.0, 1.0],
    )


def test_candle_path_order() -> None:
    assert candle_path(100, 105, 99, 104) == (100, 99, 105, 104)  # up candle: low first
    assert candle_path(104, 106, 101, 102) == (104, 106, 101, 102)  # down candle: high first


def test_points_prices_times_volumes_and_ids() -> None:
    replay = MarketReplay(_candles(), RULES)
    points = [replay.last] + [replay.step() for _ in range(7)]
    assert [p.price for p in points if p] == [Decimal(x) for x in
                                              ("100", "99", "105", "104", "104", "106", "101", "102")]
    assert [p.timestamp for p in points if p][:4] == [0, 19_999, 39_999, 59_999]
    assert all(p is not None and p.qty == Decimal("1") for p in points[:4])
    assert [p.trade_id for p in points if p] == list(range(1, 9))
    assert [p.is_buyer_maker for p in points if p] == [False, True, False, True, False, False, True, False]
    assert replay.replayed_points == 8 and not replay.finished
    while replay.step() is not None:
        pass
    assert replay.finished and replay.last.seq == 4 * POINTS_PER_CANDLE - 1


def test_klines_aggregate_and_the_current_candle_is_partial() -> None:
    replay = MarketReplay(_candles(), RULES)
    for _ in range(9):  # into candle 2 (an up candle): its open 103 and its low 102 replayed, the high not yet
        replay.step()
    rows = replay.klines(60_000, limit=10)
    assert [r[0] for r in rows] == [0, 60_000, 120_000]
    assert rows[0][1:6] == ["100.00000000", "105.00000000", "99.00000000", "104.00000000", "4.00000000"]
    assert rows[2][1:6] == ["103.00000000", "103.00000000", "102.00000000", "102.00000000", "1.00000000"]
    assert rows[2][8] == 2  # two points replayed in the current candle
    two = replay.klines(120_000, limit=10)
    assert two[0][1:6] == ["100.00000000", "106.00000000", "99.00000000", "102.00000000", "12.00000000"]
    assert two[0][6] == 119_999
    assert replay.klines(60_000, start_ms=60_000, limit=1)[0][0] == 60_000
    assert replay.klines(60_000, start_ms=30_000, limit=1)[0][0] == 60_000
    assert replay.klines(604_800_000)[0][0] == -259_200_000  # weeks open on Monday (1969-12-29)
    assert replay.klines(60_000, end_ms=60_000, limit=5)[-1][0] == 60_000
    stats = replay.window(0)
    assert (stats.open, stats.high, stats.low, stats.count) == (100.0, 106.0, 99.0, 10)
    assert stats.volume == pytest.approx(13.0)


def test_warmup_starts_later() -> None:
    replay = MarketReplay(_candles(), RULES, start_candle=2)
    assert replay.last.price == Decimal("103") and replay.last.trade_id == 9
    assert len(replay.klines(60_000)) == 3
    with pytest.raises(ValueError):
        MarketReplay(_candles(), RULES, start_candle=4)
