"""Drive a strategy against the matching engine along a continuous price path.

The backtester (candles or trades) and paper trading (live prices) both move prices through
:meth:`SimDriver.move_to`, so a strategy sees the same fills in both: that is the parity the tests check.

Moving from the current price to a new one is a straight segment. Along it, in price order, the driver
fills resting orders whose limit price the segment reaches (buys highest first going down, sells lowest first
going up), and wakes the strategy exactly at every wake price the segment crosses. Each fill and wake runs the
strategy's hook at once, and the intents it returns are executed at that price before the walk goes on, so a
counter-order placed on the way can fill later on the same segment. The strategy is also ticked at the end of
every segment when it has any wake price set (that is how a trailing layer learns the low or high).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from gridfleet.engine.strategy import Strategy
from gridfleet.engine.types import BotEvent, CancelOrder, Fill, Intent, PlaceOrder, Side, Tick
from gridfleet.sim.matching import MatchingEngine


@dataclass(frozen=True, slots=True)
class FillRecord:
    """A fill with the order context a report needs."""

    fill: Fill
    level: int | None
    tag: str


@dataclass(slots=True)
class SimDriver:
    """Connects one strategy to one matching engine."""

    strategy: Strategy
    engine: MatchingEngine
    price: Decimal = Decimal(0)
    timestamp: int = 0
    fills: list[FillRecord] = field(default_factory=list)
    events: list[tuple[int, BotEvent]] = field(default_factory=list)
    orders: dict[str, PlaceOrder] = field(default_factory=dict)
    on_fill: Callable[[FillRecord], None] | None = None
    on_event: Callable[[int, BotEvent], None] | None = None

    def start(self, price: Decimal, timestamp: int) -> None:
        """Start the strategy at ``price`` and execute its initial intents."""
        self.price, self.timestamp = price, timestamp
        self.execute(self.strategy.on_start(price, timestamp))

    def stop(self, *, sell_all: bool = False) -> None:
        """Stop the strategy and execute its wind-down intents."""
        self.execute(self.strategy.on_stop(self.price, self.timestamp, sell_all=sell_all))

    def execute(self, intents: list[Intent]) -> None:
        """Execute intents at the current price; feed resulting fills/rejections back to the strategy."""
        queue = list(intents)
        while queue:
            intent = queue.pop(0)
            if isinstance(intent, PlaceOrder):
                self.orders[intent.client_id] = intent
                fills, rejection = self.engine.place(intent, self.price, self.timestamp)
                if rejection is not None:
                    queue.extend(self.strategy.on_order_update(rejection.as_update(self.timestamp)))
                for fill in fills:
                    queue.extend(self._deliver(fill))
            elif isinstance(intent, CancelOrder):
                update = self.engine.cancel(intent.client_id, self.timestamp)
                if update is not None:
                    queue.extend(self.strategy.on_order_update(update))
            else:
                self.events.append((self.timestamp, intent))
                if self.on_event is not None:
                    self.on_event(self.timestamp, intent)

    def _deliver(self, fill: Fill) -> list[Intent]:
        order = self.orders.get(fill.client_id)
        record = FillRecord(fill, order.level if order else None, order.tag if order else "")
        self.fills.append(record)
        if self.on_fill is not None:
            self.on_fill(record)
        return self.strategy.on_order_filled(fill)

    def move_to(self, target: Decimal, timestamp: int) -> None:
        """Walk the price from the current price to ``target`` (one straight segment)."""
        self.timestamp = timestamp
        engine, strategy = self.engine, self.strategy
        cur = self.price
        if target < cur:
            while True:
                bid = engine.best_bid() if engine.can_fill_resting else None
                below, _ = strategy.wake_prices()
                wake = below if below is not None and target <= below < cur else None
                if bid is not None and bid >= target and (wake is None or bid >= wake):
                    cur = min(cur, bid)
                    self.price = cur
                    fill = engine.fill_next(Side.BUY, timestamp)
                    if fill is None:
                        continue
                    self.execute(self._deliver(fill))
                elif wake is not None:
                    cur = self.price = wake
                    self.execute(strategy.on_tick(Tick(timestamp, cur)))
                else:
                    break
        elif target > cur:
            while True:
                ask = engine.best_ask() if engine.can_fill_resting else None
                _, above = strategy.wake_prices()
                wake = above if above is not None and cur < above <= target else None
                if ask is not None and ask <= target and (wake is None or ask <= wake):
                    cur = max(cur, ask)
                    self.price = cur
                    fill = engine.fill_next(Side.SELL, timestamp)
                    if fill is None:
                        continue
                    self.execute(self._deliver(fill))
                elif wake is not None:
                    cur = self.price = wake
                    self.execute(strategy.on_tick(Tick(timestamp, cur)))
                else:
                    break
        self.price = target
        below, above = strategy.wake_prices()
        if below is not None or above is not None:
            self.execute(strategy.on_tick(Tick(timestamp, target)))

