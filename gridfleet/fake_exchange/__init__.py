"""``gridfleet fake-exchange``: a local server speaking the real Binance spot REST + websocket protocol.

It replays real candles as a price path, matches the orders of one or more accounts with the shared
:class:`~gridfleet.sim.matching.MatchingEngine`, and answers the unchanged ``ccxt.binance`` / ``ccxt.pro.binance``
clients (only their URLs are changed, see :func:`point_ccxt_at`). Faults (drops, timeouts, 429/5xx, lost responses,
slow or flaky websockets, partial fills) can be switched on to rehearse a bot's error handling.
See ``docs/fake-exchange.md``.

Importing this package is cheap: the server parts (aiohttp, candle loading) load on first use, so the live
adapter can import :func:`point_ccxt_at` without them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gridfleet.fake_exchange.ccxt_urls import ccxt_options, point_ccxt_at

if TYPE_CHECKING:
    from gridfleet.fake_exchange.errors import BinanceError
    from gridfleet.fake_exchange.faults import FaultConfig
    from gridfleet.fake_exchange.server import FakeExchangeConfig, FakeExchangeServer, build_venue
    from gridfleet.fake_exchange.venue import FakeVenue

__all__ = [
    "BinanceError",
    "FakeExchangeConfig",
    "FakeExchangeServer",
    "FakeVenue",
    "FaultConfig",
    "build_venue",
    "ccxt_options",
    "point_ccxt_at",
]

_LAZY = {
    "BinanceError": "gridfleet.fake_exchange.errors",
    "FaultConfig": "gridfleet.fake_exchange.faults",
    "FakeExchangeConfig": "gridfleet.fake_exchange.server",
    "FakeExchangeServer": "gridfleet.fake_exchange.server",
    "build_venue": "gridfleet.fake_exchange.server",
    "FakeVenue": "gridfleet.fake_exchange.venue",
}


def __getattr__(name: str) -> Any:
    """Load the server-side names on first access."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
