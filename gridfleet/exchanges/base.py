"""The one async interface every venue implements (ccxt exchanges, paper trading), and its error hierarchy.

Errors tell the caller what to do:

* :class:`NetworkError` (and :class:`RateLimitError`): transient; reads are retried with backoff. A placement
  that failed this way is *ambiguous*: resolve it with :meth:`ExchangeAdapter.fetch_order` by client id,
  never by sending it again blindly.
* :class:`InsufficientFunds`, :class:`InvalidOrder`: the venue refused the order; surface it to the bot and
  the user, do not retry.
* :class:`AuthenticationError`: stop the bot with a clear message.
* :class:`OrderNotFound`: the venue does not know that order (definitive, unlike a network error).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

from gridfleet.engine.types import OrderStatus, OrderType, PlaceOrder, Side
from gridfleet.markets import MarketRules


class ExchangeError(Exception):
    """Base class of every venue error."""


class NetworkError(ExchangeError):
    """Timeout, connection reset, 5xx: transient. Retry reads; resolve placements by client id."""


class RateLimitError(NetworkError):
    """429/418: back off for ``retry_after`` seconds (or exponentially when unknown)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InsufficientFunds(ExchangeError):
    """Not enough free balance for the order: tell the bot and the user; do not retry."""


class InvalidOrder(ExchangeError):
    """The order breaks a venue rule (size, price, notional, duplicate id): do not retry as is."""


class OrderNotFound(ExchangeError):
    """The venue definitively does not know the order."""


class AuthenticationError(ExchangeError):
    """Bad or missing API key/secret/permissions: stop the bot and ask the user to fix the key."""


@dataclass(frozen=True, slots=True)
class OrderInfo:
    """An order as the venue reports it."""

    client_id: str
    exchange_id: str
    symbol: str
    side: Side
    type: OrderType
    amount: Decimal
    price: Decimal | None
    filled: Decimal
    status: OrderStatus
    timestamp: int
    average: Decimal | None = None


@dataclass(frozen=True, slots=True)
class TradeInfo:
    """One execution of one of our orders, as the venue reports it."""

    trade_id: str
    client_id: str
    exchange_order_id: str
    symbol: str
    side: Side
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_currency: str
    timestamp: int
    is_maker: bool


@dataclass(frozen=True, slots=True)
class Balance:
    """Free and locked amount of one currency."""

    free: Decimal
    used: Decimal

    @property
    def total(self) -> Decimal:
        """Return free + used."""
        return self.free + self.used


@dataclass(frozen=True, slots=True)
class PriceUpdate:
    """A public market price (last trade) at ``timestamp`` ms; ``volume`` base when known."""

    symbol: str
    price: Decimal
    timestamp: int
    volume: Decimal | None = None


class ExchangeAdapter(ABC):
    """What the runtime needs from a venue. Amounts and prices are Decimal, already on the market's grid."""

    id: str

    @abstractmethod
    async def market(self, symbol: str) -> MarketRules:
        """Return the trading rules of ``symbol`` (loads markets on first use)."""

    @abstractmethod
    async def fetch_balances(self) -> dict[str, Balance]:
        """Return balances by currency."""

    @abstractmethod
    async def fetch_price(self, symbol: str) -> PriceUpdate:
        """Return the last price of ``symbol``."""

    @abstractmethod
    def watch_prices(self, symbol: str) -> AsyncIterator[PriceUpdate]:
        """Yield public price updates (trades) of ``symbol`` as they happen (websocket or polling)."""

    @abstractmethod
    async def create_order(self, symbol: str, order: PlaceOrder) -> OrderInfo:
        """Place ``order`` with its client id; raise an :class:`ExchangeError` subclass on failure."""

    @abstractmethod
    async def cancel_order(self, symbol: str, client_id: str) -> OrderInfo | None:
        """Cancel by client id; return the final order, or None when it was not open any more."""

    @abstractmethod
    async def fetch_order(self, symbol: str, client_id: str) -> OrderInfo | None:
        """Return the order with this client id, or None when the venue does not know it."""

    @abstractmethod
    async def fetch_open_orders(self, symbol: str) -> list[OrderInfo]:
        """Return every open order of the account on ``symbol``."""

    @abstractmethod
    async def fetch_my_trades(self, symbol: str, since: int | None = None) -> list[TradeInfo]:
        """Return the account's executions on ``symbol`` since ``since`` ms (oldest first)."""

    @abstractmethod
    def watch_my_trades(self, symbol: str) -> AsyncIterator[TradeInfo]:
        """Yield the account's executions as they happen (user-data stream, or polling)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""
