"""Trading rows built straight through the ORM: a bot per user with orders, fills, journal and snapshots.

Hand-computable numbers (client bot, ETH/USDT, fees in USDT):

* fills: buy 1 @ 100 (fee 0.1), buy 1 @ 90 (fee 0.09), sell 1 @ 110 (fee 0.11), sell 0.5 @ 80 (fee 0.04)
  → base 0.5, cost basis 47.5475, average entry 95.095, realised 14.795 − 7.5875 = 7.2075, 1 win of 2 sells;
* snapshots: 1000 (day 0 00:00), 1010 (day 0 12:00), 990 (day 1), 1020 (day 2 00:00), 1030 (day 2 01:00, price
  100, grid profit 5.5) → unrealised 0.5 × 100 − 47.5475 = 2.4525, total return 3 %.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from gridfleet.server.bots.models import Bot
from gridfleet.server.trading.models import EquitySnapshot, Fill, JournalEntry, Order
from gridfleet.server.users.models import User

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
HOUR = 3_600_000
DAY = 86_400_000
CONFIG = {"symbol": "ETH/USDT", "grid": {"type": "arithmetic", "lower": "80", "upper": "120", "levels": 5},
          "investment": "1000"}


def exact_values() -> tuple[str, str]:
    """Return an order (price, amount) with many decimals: 18 places on PostgreSQL (NUMERIC keeps them all);
    15 significant digits on SQLite, whose decimal columns are REAL (a limit of the embedded database)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return "85.123456789012345678", "0.123456789012345678"
    return "85.1234567890123", "0.123456789012345"


def make_bot(owner: User, name: str, symbol: str = "ETH/USDT") -> Bot:
    """Create a paper bot."""
    return Bot.objects.create(owner=owner, name=name, symbol=symbol, config={**CONFIG, "symbol": symbol})


def add_fill(bot: Bot, n: int, side: str, price: str, amount: str, fee: str, ts: int, fee_ccy: str = "USDT") -> Fill:
    """Create one fill."""
    return Fill.objects.create(bot=bot, trade_id=f"{bot.runtime_id}-t{n}", client_id=f"{bot.runtime_id}-c{n}",
                               symbol=bot.symbol, side=side, price=Decimal(price), amount=Decimal(amount),
                               fee=Decimal(fee), fee_currency=fee_ccy, ts=ts, is_maker=True, order_complete=True)


def add_snapshot(bot: Bot, ts: int, equity: str, price: str = "100", grid_profit: str = "0") -> EquitySnapshot:
    """Create one equity snapshot."""
    zero = Decimal(0)
    return EquitySnapshot.objects.create(bot=bot, ts=ts, price=Decimal(price), equity=Decimal(equity),
                                         grid_profit=Decimal(grid_profit), realized_pnl=zero, unrealized_pnl=zero,
                                         base=zero, quote_flow=zero)


def add_order(bot: Bot, n: int, side: str, price: str, amount: str, status: str, created_ms: int) -> Order:
    """Create one order and set its creation time."""
    from datetime import UTC, datetime

    order = Order.objects.create(bot=bot, client_id=f"{bot.runtime_id}-o{n}", symbol=bot.symbol, side=side,
                                 type="limit", amount=Decimal(amount), price=Decimal(price), level=n, status=status)
    Order.objects.filter(pk=order.pk).update(created_at=datetime.fromtimestamp(created_ms / 1000, tz=UTC))
    order.refresh_from_db()
    return order


def populate_client_bot(bot: Bot) -> dict[str, Any]:
    """Fill the hand-computed client bot (see the module docstring)."""
    fills = [
        add_fill(bot, 1, "buy", "100", "1", "0.1", T0 + HOUR),
        add_fill(bot, 2, "buy", "90", "1", "0.09", T0 + 2 * HOUR),
        add_fill(bot, 3, "sell", "110", "1", "0.11", T0 + DAY + HOUR),
        add_fill(bot, 4, "sell", "80", "0.5", "0.04", T0 + 2 * DAY + HOUR),
    ]
    add_snapshot(bot, T0, "1000")
    add_snapshot(bot, T0 + 12 * HOUR, "1010")
    add_snapshot(bot, T0 + DAY, "990")
    add_snapshot(bot, T0 + 2 * DAY, "1020")
    add_snapshot(bot, T0 + 2 * DAY + HOUR, "1030", price="100", grid_profit="5.5")
    orders = [
        add_order(bot, 1, "buy", "100", "1", "filled", T0 + HOUR),
        add_order(bot, 2, "buy", "90", "1", "filled", T0 + 2 * HOUR),
        add_order(bot, 3, "sell", "110", "1", "filled", T0 + DAY),
        add_order(bot, 4, "sell", "80", "0.5", "canceled", T0 + 2 * DAY),
        add_order(bot, 5, "buy", *exact_values(), "open", T0 + 3 * DAY),
    ]
    journal = [
        JournalEntry.objects.create(bot=bot, ts=T0, kind="state", message="started", data={"status": "running"}),
        JournalEntry.objects.create(bot=bot, ts=T0 + DAY, kind="warning", message="fees close to spacing"),
        JournalEntry.objects.create(bot=bot, ts=T0 + 2 * DAY, kind="risk", message="drawdown 5 %",
                                    data={"rule": "dd", "value": "5.25"}),
    ]
    return {"fills": fills, "orders": orders, "journal": journal}


def populate_other_bot(bot: Bot, tag: str = "x") -> None:
    """A few rows of an unrelated bot (must never leak)."""
    add_fill(bot, 1, "buy", "50000", "0.01", "0.5", T0 + HOUR)
    add_fill(bot, 2, "sell", "51000", "0.01", "0.51", T0 + DAY)
    add_snapshot(bot, T0, "500", price="50000")
    add_snapshot(bot, T0 + DAY, "510", price="51000", grid_profit="1")
    add_order(bot, 1, "buy", "50000", "0.01", "filled", T0)
    JournalEntry.objects.create(bot=bot, ts=T0, kind="warning", message=f"other {tag}")
