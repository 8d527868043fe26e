"""Value types shared by strategies, the matching engine, the backtester and the live runtime.

Everything here is immutable and exact: prices, amounts and fees are ``Decimal``.
A strategy never talks to an exchange: it returns *intents* (:class:`PlaceOrder`, :class:`CancelOrder`,
:class:`BotEvent`) and is told what happened through :class:`Fill` and :class:`OrderUpdate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Side(StrEnum):
    """Order side."""

    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        """Return the other side."""
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    """Order type."""

    LIMIT = "limit"
    MARKET = "market"


class OrderStatus(StrEnum):
    """Life-cycle status of an order as the venue reports it."""

    PENDING = "pending"  # intent persisted, not yet acknowledged by the venue
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        """Return True when no further fill can happen."""
        return self in (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED)


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Intent: place an order. ``client_id`` is deterministic so a replay is recognised, not duplicated."""

    client_id: str
    side: Side
    type: OrderType
    amount: Decimal
    price: Decimal | None = None  # None for market orders
    level: int | None = None  # grid level the order belongs to, if any
    tag: str = ""  # why: "grid", "rebound", "pullback", "initial", "risk:<rule>", "rebalance"


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Intent: cancel an open order by client id."""

    client_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class BotEvent:
    """Intent: record/notify something (risk alert, state change). Never touches the venue."""

    kind: str  # "alert", "risk", "state", "plan", "warning"
    message: str
    data: dict[str, Any] = field(default_factory=dict)


Intent = PlaceOrder | CancelOrder | BotEvent


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution (a trade) of one of our orders."""

    client_id: str
    side: Side
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_currency: str
    timestamp: int  # ms since epoch
    trade_id: str
    is_maker: bool
    order_complete: bool = True  # the order has no remaining amount after this fill

    @property
    def notional(self) -> Decimal:
        """Return price × amount in the quote currency."""
        return self.price * self.amount


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """A non-fill change of one of our orders (acknowledged, canceled, rejected, expired)."""

    client_id: str
    status: OrderStatus
    reason: str = ""
    timestamp: int = 0


@dataclass(frozen=True, slots=True)
class Tick:
    """The market price moved (continuously) to ``price`` at ``timestamp`` (ms)."""

    timestamp: int
    price: Decimal


@dataclass(frozen=True, slots=True)
class Candle:
    """A closed OHLCV candle; ``open_time`` in ms."""

    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
