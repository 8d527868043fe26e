"""Event-driven backtests: the same Strategy objects as live trading, replayed over real candles or trades.

Fill model (see docs/backtest.md): each candle's price path is prev_close → open → (low → high when
close >= open, else high → low) → close, walked by :class:`gridfleet.sim.driver.SimDriver`. Candles in which
nothing can happen (no resting order and no wake price within the candle's range) are skipped by a compiled
scan, so only "active" candles cost Python time. Money is exact (``Decimal``) for every order and balance;
floats are used only for the equity curve and the metrics.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numba
import numpy as np

from gridfleet.backtest.data import Candles
from gridfleet.backtest.metrics import compute_metrics, resample_equity
from gridfleet.backtest.trades import Trades
from gridfleet.engine.config import GridConfig
from gridfleet.engine.levels import level_prices, nearest_level, order_quantity
from gridfleet.engine.strategies.grid import GridStrategy
from gridfleet.engine.strategy import Strategy
from gridfleet.engine.types import Candle, Side
from gridfleet.markets import MarketRules
from gridfleet.sim.driver import FillRecord, SimDriver
from gridfleet.sim.matching import MatchingEngine

ZERO = Decimal(0)
INF = float("inf")
_REL = 1e-9  # float pre-filter margin; the exact decision is made in Decimal


@numba.njit(cache=True, nogil=True)
def _next_active(low: np.ndarray, high: np.ndarray, start: int, below: float, above: float) -> int:  # pragma: no cover
    n: int = low.shape[0]
    for j in range(start, n):
        if low[j] <= below or high[j] >= above:
            return j
    return n


def next_active(low: np.ndarray, high: np.ndarray, start: int, below: float, above: float) -> int:
    """Return the first index >= start whose candle reaches ``<= below`` or ``>= above`` (len when none)."""
    return int(_next_active(low, high, start, below, above))


def _d(x: float) -> Decimal:
    return Decimal(repr(float(x)))


@dataclass(frozen=True)
class _Series:
    """The price series a backtest ran on, as the summary needs it."""

    times: np.ndarray
    close: np.ndarray
    gaps: int
    missing: int


@dataclass
class BacktestResult:
    """Everything a backtest produced: summary figures, fills, equity curve, per-level profit."""

    summary: dict[str, Any]
    fills: list[FillRecord]
    equity_curve: list[tuple[int, float]]
    levels: list[Decimal]
    per_level_profit: dict[str, float]
    events: list[tuple[int, str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON document written by ``gridfleet backtest --json``."""
        out = dict(self.summary)
        out["equity_curve"] = [[t, e] for t, e in self.equity_curve]
        out["levels"] = [str(p) for p in self.levels]
        out["per_level_profit"] = self.per_level_profit
        return out

    def fill_rows(self) -> list[dict[str, Any]]:
        """Return one dict per fill (for CSV export and reports)."""
        return [
            {"timestamp": r.fill.timestamp, "side": r.fill.side.value, "price": str(r.fill.price),
             "amount": str(r.fill.amount), "fee": str(r.fill.fee), "fee_currency": r.fill.fee_currency,
             "maker": r.fill.is_maker, "level": r.level, "tag": r.tag, "client_id": r.fill.client_id,
             "trade_id": r.fill.trade_id}
            for r in self.fills
        ]


def required_capital(config: GridConfig, start_price: Decimal, market: MarketRules | None = None) -> Decimal:
    """Return the quote needed to lay out the grid at ``start_price`` (buys + initial base + worst-case fees)."""
    prices = level_prices(config.grid, market)
    qty = order_quantity(config, prices, start_price, market)
    gap = nearest_level(prices, start_price)
    fee = max(config.fees.maker, config.fees.taker)
    buys = sum((p * qty for p in prices[:gap]), ZERO)
    base = start_price * qty * (len(prices) - 1 - gap) * (1 + config.slippage)
    return (buys + base) * (1 + fee)


def _start(
    config: GridConfig, p0: Decimal, t0: int, market: MarketRules | None, strategy: Strategy | None,
    fee_currency: str,
) -> tuple[MarketRules, Strategy, MatchingEngine, SimDriver, Decimal, Decimal]:
    """Create the venue and start the strategy at ``p0``; return what a replay needs."""
    rules = market or MarketRules.unrestricted(config.symbol)
    strat = strategy or GridStrategy(config, market=market, bot_id="bt")
    initial_quote = config.investment if config.investment is not None else required_capital(config, p0, market)
    engine = MatchingEngine(
        rules, maker_fee=config.fees.maker, taker_fee=config.fees.taker, balances={rules.quote: initial_quote},
        slippage=config.slippage, participation=config.participation, fee_currency=fee_currency,
    )
    driver = SimDriver(strat, engine)
    driver.start(p0, t0)
    initial_base_bought = sum((r.fill.amount for r in driver.fills if r.tag == "initial"), ZERO)
    return rules, strat, engine, driver, initial_quote, initial_base_bought


def _reach(engine: MatchingEngine, strat: Strategy) -> tuple[float, float]:
    """Return (below, above): the prices that make a candle or trade "active" (float pre-filter)."""
    below, above = strat.wake_prices()
    lows = [x for x in (engine.best_bid(), below) if x is not None]
    highs = [x for x in (engine.best_ask(), above) if x is not None]
    return (float(max(lows)) * (1 + _REL) if lows else -INF, float(min(highs)) * (1 - _REL) if highs else INF)


def run_backtest(
    config: GridConfig,
    candles: Candles,
    *,
    market: MarketRules | None = None,
    strategy: Strategy | None = None,
    fee_currency: str = "quote",
    progress: Callable[[int, int], None] | None = None,
) -> BacktestResult:
    """Replay ``candles`` through a strategy (the grid of ``config`` by default) and the matching engine."""
    n = len(candles)
    if n == 0:
        raise ValueError("no candles to backtest")
    o, h, lo, c, v = candles.open, candles.high, candles.low, candles.close, candles.volume
    times = candles.open_time
    p0 = _d(o[0])
    rules, strat, engine, driver, initial_quote, initial_base_bought = _start(
        config, p0, int(times[0]), market, strategy, fee_currency)

    # balances after each processed candle (float, for the equity curve only)
    ev_idx: list[int] = [-1]
    ev_quote: list[float] = [float(engine.total(rules.quote))]
    ev_base: list[float] = [float(engine.total(rules.base))]

    every_candle = strat.wants_candles
    report_every = max(1, n // 200)
    next_report = 0
    i = 0
    while i < n:
        if not every_candle:
            j = next_active(lo, h, i, *_reach(engine, strat))
            if j >= n:
                break
            i = j
        t = int(times[i])
        if engine.participation is not None:
            engine.begin_volume(_d(v[i]))
        op, hi, low_, cl = _d(o[i]), _d(h[i]), _d(lo[i]), _d(c[i])
        if i > 0:
            driver.price = _d(c[i - 1])  # candles skipped before this one moved nothing
            driver.move_to(op, t)
        if cl >= op:
            driver.move_to(low_, t)
            driver.move_to(hi, t)
        else:
            driver.move_to(hi, t)
            driver.move_to(low_, t)
        driver.move_to(cl, t)
        if every_candle:
            driver.execute(strat.on_candle(Candle(t, op, hi, low_, cl, _d(v[i]))))
        ev_idx.append(i)
        ev_quote.append(float(engine.total(rules.quote)))
        ev_base.append(float(engine.total(rules.base)))
        if progress is not None and i >= next_report:
            progress(i, n)
            next_report = i + report_every
        i += 1
    if progress is not None:
        progress(n, n)
    driver.price = _d(c[-1])
    series = _Series(times, c, len(candles.gaps), int(sum(g.missing_candles for g in candles.gaps)))
    return _summarise(config, series, strat, engine, driver, rules, initial_quote, p0, initial_base_bought,
                      np.asarray(ev_idx), np.asarray(ev_quote), np.asarray(ev_base))


def _summarise(
    config: GridConfig, series: _Series, strat: Strategy, engine: MatchingEngine, driver: SimDriver,
    rules: MarketRules, initial_quote: Decimal, p0: Decimal, initial_base_bought: Decimal,
    ev_idx: np.ndarray, ev_quote: np.ndarray, ev_base: np.ndarray,
) -> BacktestResult:
    n = len(series.close)
    close = series.close
    pos = np.searchsorted(ev_idx, np.arange(n), side="right") - 1
    equity = ev_quote[pos] + ev_base[pos] * close
    last = _d(close[-1])
    final_quote, final_base = engine.total(rules.quote), engine.total(rules.base)
    final_equity = final_quote + final_base * last
    levels = level_prices(config.grid, strat.market)
    buys = sum(1 for r in driver.fills if r.fill.side is Side.BUY and r.tag != "initial")
    sells = sum(1 for r in driver.fills if r.fill.side is Side.SELL)
    fees_quote = sum((r.fill.fee for r in driver.fills if r.fill.fee_currency == rules.quote), ZERO)
    fees_base = sum((r.fill.fee for r in driver.fills if r.fill.fee_currency == rules.base), ZERO)
    portfolio = getattr(strat, "portfolio", None)
    trips = list(portfolio.round_trips) if portfolio is not None else []
    grid_profit = portfolio.grid_profit if portfolio is not None else ZERO
    realized = portfolio.realized_pnl if portfolio is not None else ZERO
    total_pnl = final_equity - initial_quote
    in_range = (close >= float(levels[0])) & (close <= float(levels[-1]))
    metrics = compute_metrics(series.times, equity, initial_equity=float(initial_quote),
                              round_trip_profits=[float(t.profit) for t in trips], in_range=in_range)
    per_level: dict[str, float] = defaultdict(float)
    for t in trips:
        per_level[str(levels[t.level]) if t.level < len(levels) else str(t.level)] += float(t.profit)
    gap = nearest_level(levels, p0)
    summary: dict[str, Any] = {
        "symbol": config.symbol,
        "candles": n,  # price points: candles, or trades for a trades backtest
        "start_time": int(series.times[0]),
        "end_time": int(series.times[-1]),
        "start_price": str(p0),
        "last_close": str(last),
        "empty_level_index": gap,
        "qty_per_order": str(order_quantity(config, levels, p0, strat.market)),
        "initial_quote": str(initial_quote),
        "initial_base": "0",
        "initial_market_buy_base": str(initial_base_bought),
        "final_quote": str(final_quote),
        "final_base": str(final_base),
        "open_orders": len(engine.open_orders()),
        "buy_fills": buys,
        "sell_fills": sells,
        "fees_paid": str(fees_quote + fees_base * last),
        "fees_by_currency": {rules.quote: str(fees_quote), rules.base: str(fees_base)},
        "total_pnl": str(total_pnl),
        "grid_profit": str(grid_profit),
        "unrealized_pnl": str(total_pnl - grid_profit),  # floating PnL: total − grid profit (as exchanges show it)
        "realized_pnl": str(realized),  # average-cost realised PnL
        "final_equity": str(final_equity),
        "total_return_pct": float((final_equity / initial_quote - 1) * 100),
        **{k: v for k, v in metrics.items() if k != "total_return_pct"},
        "gaps": series.gaps,
        "missing_candles": series.missing,
    }
    events = [(t, e.kind, e.message) for t, e in driver.events]
    return BacktestResult(summary, driver.fills, resample_equity(series.times, equity, max_points=2000),
                          levels, dict(per_level), events)


def run_backtest_trades(
    config: GridConfig,
    trades: Trades,
    *,
    market: MarketRules | None = None,
    strategy: Strategy | None = None,
    fee_currency: str = "quote",
) -> BacktestResult:
    """Replay individual trades: the path goes from trade price to trade price; volume = trade size."""
    n = len(trades.price)
    if n == 0:
        raise ValueError("no trades to backtest")
    price, amount, times = trades.price, trades.amount, trades.time_ms
    p0 = _d(price[0])
    rules, strat, engine, driver, initial_quote, initial_base_bought = _start(
        config, p0, int(times[0]), market, strategy, fee_currency)
    ev_idx, ev_quote, ev_base = [-1], [float(engine.total(rules.quote))], [float(engine.total(rules.base))]
    i = 1
    while i < n:
        j = next_active(price, price, i, *_reach(engine, strat))
        if j >= n:
            break
        driver.price = _d(price[j - 1])
        if engine.participation is not None:
            engine.begin_volume(_d(amount[j]))
        driver.move_to(_d(price[j]), int(times[j]))
        ev_idx.append(j)
        ev_quote.append(float(engine.total(rules.quote)))
        ev_base.append(float(engine.total(rules.base)))
        i = j + 1
    driver.price = _d(price[-1])
    series = _Series(times, price, 0, 0)
    return _summarise(config, series, strat, engine, driver, rules, initial_quote, p0, initial_base_bought,
                      np.asarray(ev_idx), np.asarray(ev_quote), np.asarray(ev_base))
