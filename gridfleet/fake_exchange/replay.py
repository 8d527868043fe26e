"""Market replay: real candles turned into a path of price points (public trades) and a candle clock.

Each candle is replayed as :data:`POINTS_PER_CANDLE` points: the open, then low → high when the candle closed
at or above its open (high → low otherwise), then the close. The jump from one candle's close to the next one's
open is simply the next point. Timestamps are spread evenly inside the candle (``open_time`` … ``open_time +
timeframe - 1``) and the candle's volume is split evenly over its points.

Point number ``seq`` (0-based, over the whole file) is also the public trade id minus one, so ids are stable
across runs. Candles before the start candle (``warmup``) count as already-traded history: they show up in
klines and 24h statistics but are never replayed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

import numpy as np

from gridfleet.backtest.data import Candles
from gridfleet.markets import MarketRules

POINTS_PER_CANDLE = 4
"""Price points (public trades) replayed per candle: open, low/high, high/low, close."""

_QTY_QUANTUM = Decimal("0.00000001")
WEEK_MS = 604_800_000
WEEK_OFFSET_MS = 345_600_000  # 1970-01-05 (a Monday) - epoch: Binance weekly klines open on Mondays


@dataclass(frozen=True, slots=True)
class PricePoint:
    """One replayed price point, published as one public trade."""

    seq: int  # point number over the whole file: candle * POINTS_PER_CANDLE + index
    candle: int  # candle index
    index: int  # position inside the candle, 0 … POINTS_PER_CANDLE - 1
    timestamp: int  # ms
    price: Decimal
    qty: Decimal  # base volume of this point (candle volume / POINTS_PER_CANDLE)
    is_buyer_maker: bool  # the price moved down from the previous point (a seller hit the bids)

    @property
    def trade_id(self) -> int:
        """Return the public trade id of this point (``seq + 1``)."""
        return self.seq + 1


def candle_path(o: float, h: float, low: float, c: float) -> tuple[float, float, float, float]:
    """Return the four prices a candle is replayed as: open, low, high, close (or open, high, low, close)."""
    return (o, low, h, c) if c >= o else (o, h, low, c)


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Statistics of the replayed market over a time window (for 24h tickers)."""

    open: float
    high: float
    low: float
    volume: float
    quote_volume: float
    prev_close: float
    open_time: int
    first_id: int
    last_id: int
    count: int


class MarketReplay:
    """A cursor over the price points of a candle file, plus history queries (klines, window statistics)."""

    def __init__(self, candles: Candles, rules: MarketRules, *, start_candle: int = 0) -> None:
        if len(candles) == 0:
            raise ValueError("no candles to replay")
        if not 0 <= start_candle < len(candles):
            raise ValueError(f"warmup must leave at least one candle to replay (file has {len(candles)} candles)")
        self.candles = candles
        self.rules = rules
        self.timeframe_ms = candles.timeframe_ms
        self.start_candle = start_candle
        self.total_points = len(candles) * POINTS_PER_CANDLE
        self.last: PricePoint = self.point(start_candle * POINTS_PER_CANDLE)

    # ------------------------------------------------------------------ points
    def point(self, seq: int) -> PricePoint:
        """Build the price point number ``seq``."""
        candle, index = divmod(seq, POINTS_PER_CANDLE)
        c = self.candles
        path = candle_path(float(c.open[candle]), float(c.high[candle]), float(c.low[candle]), float(c.close[candle]))
        price = self._price(path[index])
        if index > 0:
            prev = path[index - 1]
        elif candle > 0:
            prev = float(c.close[candle - 1])
        else:
            prev = path[0]
        offset = index * (self.timeframe_ms - 1) // (POINTS_PER_CANDLE - 1)
        qty = (Decimal(repr(float(c.volume[candle]))) / POINTS_PER_CANDLE).quantize(_QTY_QUANTUM, ROUND_DOWN)
        return PricePoint(seq, candle, index, int(c.open_time[candle]) + offset, price, qty, path[index] < prev)

    def _price(self, value: float) -> Decimal:
        price = Decimal(repr(value))
        if self.rules.tick_size is not None:
            price = self.rules.round_price(price)
        return price

    def peek_next(self) -> PricePoint | None:
        """Return the next point without replaying it, or None at the end of the data."""
        if self.finished:
            return None
        return self.point(self.last.seq + 1)

    def step(self) -> PricePoint | None:
        """Replay the next point and return it, or None at the end of the data."""
        nxt = self.peek_next()
        if nxt is not None:
            self.last = nxt
        return nxt

    def rewind(self) -> None:
        """Go back to the first point of the start candle."""
        self.last = self.point(self.start_candle * POINTS_PER_CANDLE)

    @property
    def finished(self) -> bool:
        """Return True once the last point of the last candle has been replayed."""
        return self.last.seq >= self.total_points - 1

    @property
    def replayed_points(self) -> int:
        """Return how many points have been replayed since the start candle (the first one included)."""
        return self.last.seq - self.start_candle * POINTS_PER_CANDLE + 1

    # ------------------------------------------------------------------ history
    def _arrays_until_now(self, lo: int) -> tuple[np.ndarray, ...]:
        """Return (open_time, o, h, l, c, v, points) of candles lo … current, the current one partial."""
        cur, k = self.last.candle, self.last.index
        c = self.candles
        sl = slice(lo, cur + 1)
        ot = c.open_time[sl]
        o, h, low, cl, v = (np.array(a[sl], dtype=np.float64) for a in (c.open, c.high, c.low, c.close, c.volume))
        n = np.full(len(ot), POINTS_PER_CANDLE, dtype=np.int64)
        if len(ot):
            path = candle_path(float(c.open[cur]), float(c.high[cur]), float(c.low[cur]), float(c.close[cur]))
            seen = path[: k + 1]
            h[-1], low[-1], cl[-1] = max(seen), min(seen), seen[-1]
            v[-1] = float(c.volume[cur]) * (k + 1) / POINTS_PER_CANDLE
            n[-1] = k + 1
        return ot, o, h, low, cl, v, n

    def klines(
        self, interval_ms: int, *, start_ms: int | None = None, end_ms: int | None = None, limit: int = 500
    ) -> list[list[object]]:
        """Return Binance kline rows of ``interval_ms`` (a multiple of the data timeframe) up to now.

        Rows follow Binance's ``startTime``/``endTime``/``limit`` rules: with a start, the first ``limit`` rows
        from it; otherwise the last ``limit`` rows up to ``endTime`` (or now). The current row is partial.
        """
        c = self.candles
        cur = self.last.candle
        off = WEEK_OFFSET_MS if interval_ms == WEEK_MS else 0  # Binance weeks start on Monday 00:00 UTC

        def bucket(t: int) -> int:
            return (t - off) // interval_ms * interval_ms + off

        now_bucket = bucket(int(c.open_time[cur]))
        if start_ms is not None:
            t_lo = bucket(start_ms)
            if t_lo < start_ms:
                t_lo += interval_ms  # Binance: the first kline opening at or after startTime
        else:
            t_hi_bucket = now_bucket if end_ms is None else min(now_bucket, bucket(end_ms))
            t_lo = t_hi_bucket - (limit - 1) * interval_ms
        lo = int(np.searchsorted(c.open_time, t_lo, side="left"))
        if lo > cur:
            return []
        ot, o, h, low, cl, v, n = self._arrays_until_now(lo)
        buckets = (ot - off) // interval_ms * interval_ms + off
        starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
        ends = np.r_[starts[1:], len(buckets)] - 1
        typical = (h + low + cl) / 3.0
        rows: list[list[object]] = []
        b_open = buckets[starts]
        b_o = o[starts]
        b_h = np.maximum.reduceat(h, starts)
        b_l = np.minimum.reduceat(low, starts)
        b_c = cl[ends]
        b_v = np.add.reduceat(v, starts)
        b_q = np.add.reduceat(v * typical, starts)
        b_n = np.add.reduceat(n, starts)
        for i in range(len(starts)):
            t = int(b_open[i])
            if end_ms is not None and t > end_ms:
                break
            rows.append([
                t, _f8(b_o[i]), _f8(b_h[i]), _f8(b_l[i]), _f8(b_c[i]), _f8(b_v[i]), t + interval_ms - 1,
                _f8(b_q[i]), int(b_n[i]), _f8(b_v[i] / 2), _f8(b_q[i] / 2), "0",
            ])
            if len(rows) >= limit:
                break
        return rows

    def window(self, from_ms: int) -> WindowStats:
        """Return statistics of the candles opening at or after ``from_ms`` up to now (current one partial)."""
        c = self.candles
        lo = min(int(np.searchsorted(c.open_time, from_ms, side="left")), self.last.candle)
        ot, o, h, low, cl, v, n = self._arrays_until_now(lo)
        typical = (h + low + cl) / 3.0
        prev_close = float(c.close[lo - 1]) if lo > 0 else float(o[0])
        return WindowStats(
            open=float(o[0]),
            high=float(h.max()),
            low=float(low.min()),
            volume=float(v.sum()),
            quote_volume=float((v * typical).sum()),
            prev_close=prev_close,
            open_time=int(ot[0]),
            first_id=lo * POINTS_PER_CANDLE + 1,
            last_id=self.last.trade_id,
            count=int(n.sum()),
        )


def _f8(value: float) -> str:
    return f"{float(value):.8f}"
