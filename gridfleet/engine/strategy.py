"""The strategy plugin interface and registry.

A strategy only *decides*: every hook returns a list of intents (orders to place or cancel, events to record).
The host that runs it (backtester, paper or live runtime) executes the intents and reports back with
:meth:`Strategy.on_order_filled` and :meth:`Strategy.on_order_update`. The same object runs unchanged in all
three hosts.

Life of a strategy::

    s = create_strategy("grid", config, market)
    intents = s.on_start(price, timestamp)        # initial orders
    intents = s.on_tick(Tick(...))                # only when the price crosses s.wake_prices()
    intents = s.on_order_filled(fill)             # counter-orders, re-arming, risk checks
    intents = s.on_stop(price, timestamp)         # cancels (and closes, if configured)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel

from gridfleet.engine.types import Candle, Fill, Intent, OrderUpdate, Tick
from gridfleet.markets import MarketRules


class Strategy(ABC):
    """Base class of every strategy plugin."""

    #: registry name, e.g. ``"grid"``
    name: ClassVar[str]
    #: pydantic model of the strategy's config; its JSON Schema drives the web forms
    config_model: ClassVar[type[BaseModel]]
    #: True when the strategy needs :meth:`on_candle` for every closed candle (e.g. indicator rules)
    wants_candles: bool = False

    def __init__(self, config: BaseModel, market: MarketRules | None = None, bot_id: str = "bot") -> None:
        self.config = config
        self.market = market
        self.bot_id = bot_id

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        """Return the JSON Schema of this strategy's config."""
        return cls.config_model.model_json_schema()

    @abstractmethod
    def on_start(self, price: Decimal, timestamp: int) -> list[Intent]:
        """Start at market price ``price``; return the initial intents."""

    @abstractmethod
    def on_tick(self, tick: Tick) -> list[Intent]:
        """React to a price move; the host calls it at least whenever a wake price is crossed."""

    @abstractmethod
    def on_order_filled(self, fill: Fill) -> list[Intent]:
        """React to a fill of one of this strategy's orders (partial fills included)."""

    def on_order_update(self, update: OrderUpdate) -> list[Intent]:
        """React to an order being canceled, rejected or expired by the venue."""
        return []

    def on_candle(self, candle: Candle) -> list[Intent]:
        """React to a closed candle (only called when :attr:`wants_candles` is True)."""
        return []

    def on_config_change(self, config: BaseModel, price: Decimal, timestamp: int) -> list[Intent]:
        """Apply a new config while running; return the plan (cancels and placements) as intents."""
        raise NotImplementedError(f"strategy {self.name!r} cannot change its config while running")

    @abstractmethod
    def on_stop(self, price: Decimal, timestamp: int, *, sell_all: bool = False) -> list[Intent]:
        """Stop; return the intents that wind the strategy down (with ``sell_all``, close the position too)."""

    def wake_prices(self) -> tuple[Decimal | None, Decimal | None]:
        """Return ``(below, above)``: call :meth:`on_tick` when the price reaches ``<= below`` or ``>= above``.

        ``None`` means "no need to wake on that side". Resting limit orders do not need waking: the venue fills
        them. Hosts use this to skip all work between triggers.
        """
        return (None, None)

    def status(self) -> dict[str, Any]:
        """Return a JSON-able summary of the strategy's state (for status tables and the API)."""
        return {}


_REGISTRY: dict[str, type[Strategy]] = {}


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"a strategy named {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def strategy_class(name: str) -> type[Strategy]:
    """Return the registered strategy class called ``name``."""
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise KeyError(f"unknown strategy {name!r} (known: {known})") from None


def available_strategies() -> list[str]:
    """Return the names of all registered strategies."""
    _load_builtin()
    return sorted(_REGISTRY)


def create_strategy(
    name: str, config: BaseModel | dict[str, Any], market: MarketRules | None = None, bot_id: str = "bot"
) -> Strategy:
    """Instantiate strategy ``name`` with a validated config (a dict is validated first)."""
    cls = strategy_class(name)
    if not isinstance(config, BaseModel):
        config = cls.config_model.model_validate(config)
    return cls(config, market=market, bot_id=bot_id)




def _load_builtin() -> None:
    # Import the built-in strategies lazily so that importing this module has no side effects.
    import gridfleet.engine.strategies  # noqa: F401
