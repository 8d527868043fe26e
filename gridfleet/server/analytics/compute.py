"""Bot and user analytics from the runtime's fills and equity snapshots (definitions: docs/server-analytics.md).

Money is ``Decimal`` (the engine's own :class:`~gridfleet.engine.accounting.Portfolio` books the fills, so the
server shows the same average-cost figures as the bot); ratios (returns, drawdown, Sharpe, win rate) are floats
from :func:`gridfleet.backtest.metrics.compute_metrics`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np

from gridfleet.backtest.metrics import DAY_MS, compute_metrics, resample_indices
from gridfleet.engine.accounting import Portfolio
from gridfleet.engine.types import Fill as EngineFill
from gridfleet.engine.types import Side
from gridfleet.server.bots.models import Bot
from gridfleet.server.trading.exports import decimal_str
from gridfleet.server.trading.models import EquitySnapshot, Fill

ZERO = Decimal(0)
MAX_CURVE_POINTS = 2000


def split_symbol(symbol: str) -> tuple[str, str]:
    """Return (base, quote) of ``BASE/QUOTE`` (upper case); ``(symbol, "")`` when there is no slash."""
    base, _, quote = symbol.upper().partition("/")
    return base, quote


def _s(value: Decimal | None) -> str | None:
    return None if value is None else decimal_str(value)


@dataclass
class FillBook:
    """A bot's fills booked in order by the engine's Portfolio (average cost)."""

    portfolio: Portfolio
    sell_profits: list[tuple[int, Decimal]] = field(default_factory=list)  # (ts, realised PnL of the sell)
    fills: int = 0
    last_fill_ts: int | None = None
    last_fill_price: Decimal | None = None


def book_fills(symbol: str, fills: Iterable[Fill]) -> FillBook:
    """Book ``fills`` (ordered by ts, id) into a Portfolio; record each sell's realised PnL."""
    base, quote = split_symbol(symbol)
    book = FillBook(Portfolio(base, quote))
    for f in fills:
        before = book.portfolio.realized_pnl
        booked = book.portfolio.apply_fill(EngineFill(
            f.client_id, Side(f.side.lower()), f.price, f.amount, f.fee, f.fee_currency.upper(), f.ts, f.trade_id,
            f.is_maker, f.order_complete))
        if not booked:
            continue
        book.fills += 1
        book.last_fill_ts, book.last_fill_price = f.ts, f.price
        if f.side.lower() == Side.SELL:
            book.sell_profits.append((f.ts, book.portfolio.realized_pnl - before))
    return book


def bot_fills(bot_ids: Sequence[int]) -> dict[int, FillBook]:
    """Book the fills of several bots (one query); bots without fills get an empty book."""
    symbols = dict(Bot.objects.filter(pk__in=bot_ids).values_list("pk", "symbol"))
    grouped: dict[int, list[Fill]] = {pk: [] for pk in symbols}
    for f in Fill.objects.filter(bot_id__in=bot_ids).order_by("bot_id", "ts", "id").iterator(chunk_size=5000):
        grouped[f.bot_id].append(f)
    return {pk: book_fills(symbols[pk], grouped[pk]) for pk in symbols}


def position(bot: Bot, book: FillBook, snapshot: EquitySnapshot | None) -> dict[str, Any]:
    """Return the position document of one bot (see PositionSerializer)."""
    p = book.portfolio
    last_price = snapshot.price if snapshot is not None else book.last_fill_price
    return {
        "bot": bot.pk, "name": bot.name, "symbol": bot.symbol,
        "base_held": decimal_str(p.base),
        "cost_basis": decimal_str(p.cost_basis),
        "avg_entry_price": _s(p.avg_entry_price),
        "realized_pnl": decimal_str(p.realized_pnl),
        "grid_profit": _s(snapshot.grid_profit if snapshot is not None else None),
        "last_price": _s(last_price),
        "unrealized_pnl": _s(p.unrealized_pnl(last_price) if last_price is not None else None),
        "fills": book.fills,
        "last_fill_ts": book.last_fill_ts,
        "snapshot_ts": snapshot.ts if snapshot is not None else None,
    }


def latest_snapshots(bot_ids: Sequence[int]) -> dict[int, EquitySnapshot]:
    """Return each bot's latest equity snapshot (bots without one are absent)."""
    out: dict[int, EquitySnapshot] = {}
    qs = EquitySnapshot.objects.filter(bot_id__in=bot_ids).order_by("bot_id", "-ts", "-id")
    for snap in qs.distinct("bot_id") if _distinct_on() else qs:
        out.setdefault(snap.bot_id, snap)
    return out


def _distinct_on() -> bool:
    from django.db import connection

    return bool(connection.features.can_distinct_on_fields)


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms // DAY_MS * DAY_MS / 1000, tz=UTC).date().isoformat()


def curve_stats(ts: Sequence[int], equity: Sequence[Decimal], sell_profits: Sequence[tuple[int, Decimal]]
                ) -> dict[str, Any]:
    """Return returns, risk figures, the ≤2,000-point equity curve and daily profit of one equity curve."""
    out: dict[str, Any] = {
        "snapshots": len(ts), "first_ts": ts[0] if ts else None, "last_ts": ts[-1] if ts else None,
        "initial_equity": _s(equity[0]) if equity else None, "final_equity": _s(equity[-1]) if equity else None,
        "total_pnl": _s(equity[-1] - equity[0]) if equity else None,
        "total_return_pct": None, "annualized_return_pct": None, "max_drawdown_pct": None, "sharpe": None,
        "sortino": None, "duration_days": None,
    }
    profits = [p for _, p in sell_profits]
    wins = sum(1 for p in profits if p > 0)
    out["closing_sells"] = len(profits)
    out["win_rate"] = wins / len(profits) * 100.0 if profits else None
    if equity and equity[0] > 0:
        m = compute_metrics(np.asarray(ts, dtype=np.int64), np.asarray([float(e) for e in equity]),
                            initial_equity=float(equity[0]), round_trip_profits=[], in_range=None)
        out["total_return_pct"] = float((equity[-1] / equity[0] - 1) * 100)
        for key in ("annualized_return_pct", "max_drawdown_pct", "sharpe", "sortino", "duration_days"):
            out[key] = m[key]
    idx = resample_indices(np.asarray(ts, dtype=np.int64), MAX_CURVE_POINTS) if ts else []
    out["equity_curve"] = [[int(ts[i]), decimal_str(equity[i])] for i in idx]
    out["daily"] = daily_profit(ts, equity, sell_profits)
    return out


def daily_profit(ts: Sequence[int], equity: Sequence[Decimal], sell_profits: Sequence[tuple[int, Decimal]]
                 ) -> list[dict[str, Any]]:
    """One row per UTC day from the first to the last snapshot or sell.

    ``equity``: the day's last snapshot (carried forward over days without one; null before the first);
    ``profit``: that minus the previous day's (the first day: minus the first snapshot); ``realized``: Σ
    realised PnL of the day's sells.
    """
    days = [t // DAY_MS for t in ts] + [t // DAY_MS for t, _ in sell_profits]
    if not days:
        return []
    realized: dict[int, Decimal] = {}
    for t, p in sell_profits:
        realized[t // DAY_MS] = realized.get(t // DAY_MS, ZERO) + p
    day_end: dict[int, Decimal] = {}
    for t, e in zip(ts, equity, strict=True):
        day_end[t // DAY_MS] = e
    rows = []
    prev: Decimal | None = equity[0] if equity else None
    current: Decimal | None = None
    for d in range(min(days), max(days) + 1):
        current = day_end.get(d, current)
        profit = current - prev if current is not None and prev is not None else None
        rows.append({"date": _day(d * DAY_MS), "equity": _s(current), "profit": _s(profit),
                     "realized": decimal_str(realized.get(d, ZERO))})
        if current is not None:
            prev = current
    return rows


def _series(bot_ids: Sequence[int]) -> dict[int, tuple[list[int], list[Decimal]]]:
    out: dict[int, tuple[list[int], list[Decimal]]] = {pk: ([], []) for pk in bot_ids}
    rows = EquitySnapshot.objects.filter(bot_id__in=bot_ids).order_by("bot_id", "ts", "id")
    for pk, t, e in rows.values_list("bot_id", "ts", "equity").iterator(chunk_size=10000):
        tl, el = out[pk]
        if tl and tl[-1] == t:
            el[-1] = e
        else:
            tl.append(t)
            el.append(e)
    return out


def _money(books: Iterable[FillBook], snapshots: dict[int, EquitySnapshot], pks: Sequence[int],
           ) -> dict[str, Any]:
    realized, unrealized, grid = ZERO, ZERO, ZERO
    fees: dict[str, Decimal] = {}
    buys = sells = 0
    any_unrealized = False
    for pk, book in zip(pks, books, strict=True):
        p = book.portfolio
        realized += p.realized_pnl
        snap = snapshots.get(pk)
        if snap is not None:
            grid += snap.grid_profit
        price = snap.price if snap is not None else book.last_fill_price
        if price is not None:
            unrealized += p.unrealized_pnl(price)
            any_unrealized = True
        for ccy, amount in p.fees.items():
            fees[ccy] = fees.get(ccy, ZERO) + amount
        buys += p.buy_fills
        sells += p.sell_fills
    return {"grid_profit": decimal_str(grid), "realized_pnl": decimal_str(realized),
            "unrealized_pnl": decimal_str(unrealized) if any_unrealized else None,
            "fees": {k: decimal_str(v) for k, v in sorted(fees.items())}, "buy_fills": buys, "sell_fills": sells}


def bot_analytics(bot: Bot) -> dict[str, Any]:
    """Return the analytics document of one bot."""
    book = bot_fills([bot.pk])[bot.pk]
    snaps = latest_snapshots([bot.pk])
    ts, equity = _series([bot.pk])[bot.pk]
    quote = split_symbol(bot.symbol)[1]
    out: dict[str, Any] = {"bot": bot.pk, "name": bot.name, "symbol": bot.symbol, "currency": quote}
    out.update(_money([book], snaps, [bot.pk]))
    pos = position(bot, book, snaps.get(bot.pk))
    out.update({k: pos[k] for k in ("base_held", "avg_entry_price", "last_price")})
    out.update(curve_stats(ts, equity, book.sell_profits))
    return out


def combine_curves(curves: Sequence[tuple[Sequence[int], Sequence[Decimal]]]) -> tuple[list[int], list[Decimal]]:
    """Sum equity curves on the union of their timestamps.

    Each curve contributes its last equity at or before the time (carried forward) and, before its first
    snapshot, its first equity (its capital counts from the start of the combined window).
    """
    curves = [c for c in curves if len(c[0])]
    union = sorted({t for ts, _ in curves for t in ts})
    total = [ZERO] * len(union)
    for ts, eq in curves:
        for k, t in enumerate(union):
            i = bisect.bisect_right(ts, t) - 1
            total[k] += eq[max(i, 0)]
    return union, total


def user_analytics(user_id: int, bots: Sequence[Bot]) -> dict[str, Any]:
    """Return the analytics of a user's bots together (same figures as a bot, plus the per-bot list)."""
    pks = [b.pk for b in bots]
    books = bot_fills(pks)
    snaps = latest_snapshots(pks)
    series = _series(pks)
    out: dict[str, Any] = {"user": user_id, "bots": len(pks),
                           "currencies": sorted({split_symbol(b.symbol)[1] for b in bots})}
    out.update(_money([books[pk] for pk in pks], snaps, pks))
    ts, equity = combine_curves([series[pk] for pk in pks])
    sells = sorted((sp for pk in pks for sp in books[pk].sell_profits), key=lambda x: x[0])
    out.update(curve_stats(ts, equity, sells))
    out["per_bot"] = [
        {"bot": b.pk, "name": b.name, "symbol": b.symbol,
         "realized_pnl": decimal_str(books[b.pk].portfolio.realized_pnl),
         "grid_profit": _s(snaps[b.pk].grid_profit) if b.pk in snaps else None,
         "equity": _s(series[b.pk][1][-1]) if series[b.pk][1] else None}
        for b in bots
    ]
    return out
