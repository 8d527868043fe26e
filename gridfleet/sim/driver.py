"""Drive a strategy against the matching engine along a continuous price path.

The backtester (candles or trades) and paper trading (live prices) both move prices through
:meth:`SimDriver.move_to`, so a strategy sees the same fills in both: that is the parity the tests check.

Moving from the current price to a new one is a straight segment. Along it, in price order, the driver
fills resting orders whose limit price the segment reaches (buys highest first going down, sells lowest first
going up), and wakes the strategy exactly at every wake price the segment crosses (at a price where an order
also fills, the fill comes first, then the wake). Each fill and wake runs the strategy's hook at once, and the
intents it returns are executed at that price before the walk goes on, so a counter-order placed on the way
can fill later on the same segment. The strategy is also ticked at the end of
every segment when it has any wake price set (that is how a trailing layer learns the low or high).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from gridfleet.engine.strategy import Strategy
from gridfleet.engine.types import BotEvent, CancelOrder, Fill, Intent, OrderStatus, OrderUpdate, PlaceOrder, Side, Tick
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
        """Execute intents at the current price; feed resulting fills/rejections back to the strategy.

        The intents a hook returns run before the rest of the batch that caused it (depth first), and a cancel of
        an order still waiting in the batch drops it before it reaches the venue, so a strategy that changes its
        mind about an order in the same breath is never overtaken by that order's fill.
        """
        queue = list(intents)
        while queue:
            intent = queue.pop(0)
            if isinstance(intent, PlaceOrder):
                self.orders[intent.client_id] = intent
                fills, rejection = self.engine.place(intent, self.price, self.timestamp)
                follow: list[Intent] = []
                if rejection is not None:
                    follow.extend(self.strategy.on_order_update(rejection.as_update(self.timestamp)))
                for fill in fills:
                    follow.extend(self._deliver(fill))
                queue[0:0] = follow
            elif isinstance(intent, CancelOrder):
                waiting = next((i for i, q in enumerate(queue)
                                if isinstance(q, PlaceOrder) and q.client_id == intent.client_id), None)
                if waiting is not None:
                    del queue[waiting]
                    update: OrderUpdate | None = OrderUpdate(intent.client_id, OrderStatus.CANCELED,
                                                             "canceled before it was sent", self.timestamp)
                else:
                    update = self.engine.cancel(intent.client_id, self.timestamp)
                if update is not None:
                    queue[0:0] = self.strategy.on_order_update(update)
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
        strategy = self.strategy
        for event in walk(self.engine, self.price, target, timestamp, strategy.wake_prices):
            self.price = event.price
            if isinstance(event, WalkFill):
                self.execute(self._deliver(event.fill))
            else:
                self.execute(strategy.on_tick(Tick(timestamp, event.price)))
        self.price = target
        below, above = strategy.wake_prices()
        if below is not None or above is not None:
            self.execute(strategy.on_tick(Tick(timestamp, target)))


@dataclass(frozen=True, slots=True)
class WalkFill:
    """A resting order filled at ``price`` during a walk."""

    price: Decimal
    fill: Fill


@dataclass(frozen=True, slots=True)
class WalkWake:
    """The walk reached a wake price: the strategy must be ticked at exactly ``price``."""

    price: Decimal


def walk(engine: MatchingEngine, start: Decimal, target: Decimal, timestamp: int,
         wake_prices: Callable[[], tuple[Decimal | None, Decimal | None]]) -> Iterator[WalkFill | WalkWake]:
    """Yield, in path order, the fills and wake-ups of a straight move from ``start`` to ``target``.

    The caller handles each event (runs the strategy, places its orders) before asking for the next one: the
    generator re-reads the book and the wake prices every step, so orders placed on the way take part. At a
    price where an order fills and a wake price lies, the fill comes first, then the wake.
    """
    down = target < start
    if target == start:
        return
    side = Side.BUY if down else Side.SELL
    cur = seen = start  # ``seen``: the last price the strategy was shown
    while True:
        best = (engine.best_bid() if down else engine.best_ask()) if engine.can_fill_resting else None
        below, above = wake_prices()
        wake = below if down else above
        if wake is not None:
            reachable = target <= wake <= cur if down else cur <= wake <= target
            if not reachable or (wake == cur and cur == seen):
                wake = None
        hit = best is not None and (best >= target if down else best <= target)
        if hit and best is not None and (wake is None or (best >= wake if down else best <= wake)):
            cur = min(cur, best) if down else max(cur, best)
            fill = engine.fill_next(side, timestamp)
            if fill is None:
                continue
            yield WalkFill(cur, fill)
        elif wake is not None:
            cur = seen = wake
            yield WalkWake(wake)
        else:
            return
