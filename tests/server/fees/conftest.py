"""Fixtures of the fees tests: a fake runtime, funded wallets and bots with hand-computable fills and snapshots.

A "priced" bot (ETH/USDT, investment 1000) buys 10 ETH at 100 on day 0 with no trading fee, so its net profit at
a mark price p is 10 × p − 1000: 120 → +200, 105 → +50, 115 → +150, 130 → +300 (the issue's worked example).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from gridfleet.server.bots.models import Bot, BotStatus
from gridfleet.server.trading.models import EquitySnapshot, Fill
from gridfleet.server.trading.service import set_runtime
from gridfleet.server.users.models import User

DAY0 = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
DAY_MS = 86_400_000
_serial = itertools.count()


def ms(moment: datetime) -> int:
    """Return epoch milliseconds."""
    return int(moment.timestamp() * 1000)


def day(n: int, hours: int = 12) -> datetime:
    """Return noon (by default) of day ``n`` after DAY0."""
    return DAY0 + timedelta(days=n, hours=hours)


class FakeRuntime:
    """Records every call; ``status`` answers a live price when ``prices`` has one."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.prices: dict[int, str] = {}

    def start(self, bot_id: int) -> None:
        self.calls.append(("start", bot_id))

    def command(self, bot_id: int, name: str) -> None:
        self.calls.append(("command", bot_id, name))

    def apply_config(self, bot_id: int, config: dict[str, Any]) -> None:
        self.calls.append(("apply_config", bot_id))

    def stop(self, bot_id: int, *, cancel_orders: bool = True, sell_all: bool = False) -> None:
        self.calls.append(("stop", bot_id))

    def status(self, bot_id: int) -> dict[str, Any] | None:
        price = self.prices.get(bot_id)
        return None if price is None else {"price": price, "state": "running"}


@pytest.fixture
def runtime() -> Iterator[FakeRuntime]:
    fake = FakeRuntime()
    set_runtime(fake)
    yield fake
    set_runtime(None)


@pytest.fixture(autouse=True)
def _billing_settings(settings: Any) -> None:
    settings.GRIDFLEET_BILLING_PERIOD = "daily"
    settings.GRIDFLEET_BILLING_GUARD_GRACE_SECONDS = "0"
    settings.GRIDFLEET_BILLING_MIN_BALANCE = "0"
    settings.GRIDFLEET_BILLING_COMMISSION_CAP = "0.5"
    settings.GRIDFLEET_BILLING_CLEARING_DAYS = "7"


def fund(user: User, amount: str, *, notify: bool = True) -> None:
    """Credit ``amount`` to the user's wallet (from deposits), then tell the guard like the ledger app does."""
    from gridfleet.server.billing import ledger

    value = Decimal(amount)
    ledger.post(key=f"test-credit:{user.pk}:{next(_serial)}", kind="credit",
                lines=[(ledger.wallet(user), value), (ledger.system_account("deposits"), -value)], user=user,
                memo="test top-up")
    if notify:
        from gridfleet.server.fees.guard import after_balance_change

        after_balance_change(user)


def wallet_balance(user: User) -> Decimal:
    """Return the user's wallet balance."""
    from gridfleet.server.billing import ledger

    return Decimal(ledger.balance(ledger.wallet(user)))


def make_priced_bot(owner: User, name: str = "eth grid", status: str = BotStatus.RUNNING,
                    investment: str | None = "1000") -> Bot:
    """Create a bot that bought 10 ETH at 100 on DAY0 (no fee)."""
    config: dict[str, Any] = {"symbol": "ETH/USDT", "grid": {"type": "arithmetic", "lower": "80", "upper": "140",
                                                           "levels": 7}}
    if investment is not None:
        config["investment"] = investment
    else:
        config["qty_per_order"] = "1"
    bot = Bot.objects.create(owner=owner, name=name, symbol="ETH/USDT", config=config, status=status)
    add_fill(bot, "buy", "100", "10", "0", DAY0 + timedelta(hours=1))
    return bot


def add_fill(bot: Bot, side: str, price: str, amount: str, fee: str, when: datetime, fee_ccy: str = "USDT",
             run: int = 1) -> Fill:
    """Record one fill of ``bot`` (in run ``run``)."""
    n = next(_serial)
    return Fill.objects.create(bot=bot, trade_id=f"{bot.runtime_id}-t{n}", client_id=f"{bot.runtime_id}-c{n}",
                               symbol=bot.symbol, side=side, price=Decimal(price), amount=Decimal(amount),
                               fee=Decimal(fee), fee_currency=fee_ccy, ts=ms(when), is_maker=True,
                               order_complete=True, run=run)


def add_snapshot(bot: Bot, when: datetime, price: str) -> EquitySnapshot:
    """Record an equity snapshot at ``price`` (only its price matters to billing)."""
    zero = Decimal(0)
    return EquitySnapshot.objects.create(bot=bot, ts=ms(when), price=Decimal(price), equity=zero, grid_profit=zero,
                                         realized_pnl=zero, unrealized_pnl=zero, base=zero, quote_flow=zero)


@pytest.fixture
def priced_bot() -> Callable[..., Bot]:
    return make_priced_bot
