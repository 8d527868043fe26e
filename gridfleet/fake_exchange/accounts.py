"""Accounts of the fake exchange: API keys, secrets, starting balances, and the per-account order/trade books.

An accounts file is YAML or JSON: a list (or ``{"accounts": [...]}``) of
``{apiKey: ..., secret: ..., balances: {USDT: "1000000", BTC: "10"}}``. Without one, a single account
``test``/``test`` gets 1,000,000 of the quote asset and 10 of the base asset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from gridfleet.engine.types import OrderStatus, OrderType, Side
from gridfleet.sim.matching import MatchingEngine, SimOrder

DEFAULT_API_KEY = "test"
DEFAULT_SECRET = "test"


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """Credentials and starting balances of one account."""

    api_key: str
    secret: str
    balances: dict[str, Decimal]


def default_accounts(base: str, quote: str) -> list[AccountSpec]:
    """Return the default account: key/secret ``test``, 1,000,000 quote and 10 base."""
    return [AccountSpec(DEFAULT_API_KEY, DEFAULT_SECRET, {quote: Decimal(1_000_000), base: Decimal(10)})]


def parse_accounts(data: Any, source: str = "accounts") -> list[AccountSpec]:
    """Validate a parsed accounts document (list of dicts, or ``{"accounts": [...]}``)."""
    if isinstance(data, dict) and "accounts" in data:
        data = data["accounts"]
    if not isinstance(data, list) or not data:
        raise ValueError(f"{source}: expected a non-empty list of accounts")
    specs: list[AccountSpec] = []
    seen: set[str] = set()
    for i, entry in enumerate(data, 1):
        where = f"{source}: account #{i}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected a mapping with apiKey, secret, balances")
        api_key = entry.get("apiKey", entry.get("api_key"))
        secret = entry.get("secret")
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError(f"{where}: apiKey must be a non-empty string")
        if not isinstance(secret, str) or not secret:
            raise ValueError(f"{where}: secret must be a non-empty string")
        if api_key in seen:
            raise ValueError(f"{where}: duplicate apiKey {api_key!r}")
        seen.add(api_key)
        raw_balances = entry.get("balances", {})
        if not isinstance(raw_balances, dict):
            raise ValueError(f"{where}: balances must be a mapping asset -> amount")
        balances: dict[str, Decimal] = {}
        for asset, amount in raw_balances.items():
            try:
                value = Decimal(str(amount))
            except InvalidOperation:
                raise ValueError(f"{where}: balance of {asset} is not a number: {amount!r}") from None
            if not value.is_finite() or value < 0:
                raise ValueError(f"{where}: balance of {asset} must be a non-negative number")
            balances[str(asset).upper()] = value
        specs.append(AccountSpec(api_key, secret, balances))
    return specs


def load_accounts(path: Path) -> list[AccountSpec]:
    """Read an accounts file (``.json``, or YAML otherwise)."""
    if not path.is_file():
        raise ValueError(f"accounts file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {first}") from None
    return parse_accounts(data, str(path))


@dataclass(slots=True)
class OrderRecord:
    """What Binance knows about an order beyond the matching engine's :class:`SimOrder`."""

    order_id: int
    client_order_id: str
    side: Side
    type: str  # Binance type: LIMIT, MARKET, LIMIT_MAKER
    time_in_force: str
    orig_qty: Decimal
    price: Decimal | None
    quote_order_qty: Decimal
    time: int
    update_time: int
    sim: SimOrder | None  # None when the order never reached the book (expired IOC/FOK, rejected)
    final_status: str | None = None  # EXPIRED / REJECTED for orders the engine never held

    @property
    def engine_id(self) -> str:
        """Return the id the matching engine knows the order by."""
        return str(self.order_id)

    @property
    def status(self) -> str:
        """Return the Binance order status (NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, REJECTED)."""
        if self.final_status is not None:
            return self.final_status
        assert self.sim is not None
        return _STATUS[self.sim.status]

    @property
    def is_open(self) -> bool:
        """Return True while the order rests on the book."""
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def executed_qty(self) -> Decimal:
        """Return the filled base amount."""
        return self.sim.filled if self.sim is not None else Decimal(0)

    @property
    def cumulative_quote(self) -> Decimal:
        """Return Σ price × qty of the fills."""
        return self.sim.cost if self.sim is not None else Decimal(0)


_STATUS = {
    OrderStatus.OPEN: "NEW",
    OrderStatus.PENDING: "NEW",
    OrderStatus.PARTIALLY_FILLED: "PARTIALLY_FILLED",
    OrderStatus.FILLED: "FILLED",
    OrderStatus.CANCELED: "CANCELED",
    OrderStatus.REJECTED: "REJECTED",
    OrderStatus.EXPIRED: "EXPIRED",
}

ENGINE_TYPES = {"LIMIT": OrderType.LIMIT, "LIMIT_MAKER": OrderType.LIMIT, "MARKET": OrderType.MARKET}


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One of the account's own trades, as ``GET /api/v3/myTrades`` reports it."""

    id: int
    order_id: int
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool


@dataclass(slots=True)
class Account:
    """One account: its credentials, its matching engine (balances + book) and its order/trade history."""

    spec: AccountSpec
    engine: MatchingEngine
    uid: int
    orders: dict[int, OrderRecord] = field(default_factory=dict)  # by orderId, in creation order
    trades: list[TradeRecord] = field(default_factory=list)
    update_time: int = 0
    order_times: list[float] = field(default_factory=list)  # wall times of new orders (order-count headers)

    @property
    def api_key(self) -> str:
        """Return the API key."""
        return self.spec.api_key

    def open_order_by_client_id(self, client_order_id: str) -> OrderRecord | None:
        """Return the open order with this client id, if any."""
        for rec in reversed(self.orders.values()):
            if rec.client_order_id == client_order_id and rec.is_open:
                return rec
        return None

    def find_order(self, order_id: int | None, client_order_id: str | None) -> OrderRecord | None:
        """Look an order up by orderId, else by client id (the most recent one using it)."""
        if order_id is not None:
            rec = self.orders.get(order_id)
            if rec is not None and (client_order_id is None or rec.client_order_id == client_order_id):
                return rec
            return None
        if client_order_id is not None:
            open_rec = self.open_order_by_client_id(client_order_id)
            if open_rec is not None:
                return open_rec
            for rec in reversed(self.orders.values()):
                if rec.client_order_id == client_order_id:
                    return rec
        return None

    def open_orders(self) -> list[OrderRecord]:
        """Return the open orders, oldest first."""
        return [rec for rec in self.orders.values() if rec.is_open]

    def assets(self) -> list[str]:
        """Return every asset the account has a balance entry for."""
        return sorted(set(self.engine.free) | set(self.engine.locked))
