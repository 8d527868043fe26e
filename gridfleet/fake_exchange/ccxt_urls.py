"""Point a ccxt ``binance`` / ``ccxt.pro`` ``binance`` instance at the fake exchange (or any Binance-compatible URL).

Usage::

    exchange = ccxt.pro.binance({"apiKey": "test", "secret": "test", **ccxt_options()})
    point_ccxt_at(exchange, "http://127.0.0.1:8900")

Every REST base (``urls['api']['public']`` → ``http://127.0.0.1:8900/api/v3``, ``private``, ``v1``, ``sapi`` …)
and every websocket base (``urls['api']['ws']['spot']`` → ``ws://127.0.0.1:8900/ws``, the WebSocket API
``urls['api']['ws']['ws-api']['spot']`` → ``ws://127.0.0.1:8900/ws-api/v3`` …) keeps its path and gets the fake
server's scheme, host and port. The ``test`` and ``demo`` URL sets are rewritten too, so sandbox/demo mode
toggles stay pointed at the fake server.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

__all__ = ["ccxt_options", "point_ccxt_at", "rewrite_url"]


def ccxt_options() -> dict[str, Any]:
    """Return the ccxt config entries the fake exchange needs: spot markets only, no wallet/margin calls."""
    return {"options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}}


def rewrite_url(url: str, base_url: str) -> str:
    """Return ``url`` with scheme/host/port of ``base_url`` (``ws``/``wss`` for websocket URLs), path kept."""
    base = urlsplit(base_url)
    if base.scheme not in ("http", "https") or not base.netloc:
        raise ValueError(f"base_url must look like http://host:port, got {base_url!r}")
    prefix = base.path.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme in ("ws", "wss"):
        scheme = "wss" if base.scheme == "https" else "ws"
    elif parts.scheme in ("http", "https"):
        scheme = base.scheme
    else:
        return url
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{base.netloc}{prefix}{parts.path}{query}"


def _rewrite_tree(node: dict[str, Any], base_url: str) -> None:
    for key, value in list(node.items()):
        if isinstance(value, str):
            node[key] = rewrite_url(value, base_url)
        elif isinstance(value, dict):
            _rewrite_tree(value, base_url)


def point_ccxt_at(exchange: Any, base_url: str) -> None:
    """Rewrite every REST and websocket URL of a ccxt binance instance to the server at ``base_url``.

    ``base_url`` is ``http://HOST:PORT`` (``https://`` gives ``wss://`` websockets). Works for
    ``ccxt.binance``, ``ccxt.async_support.binance`` and ``ccxt.pro.binance`` (the latter also has websocket
    URLs). Call it after constructing the instance and before the first request.
    """
    rewrite_url("http://x/", base_url)  # validates base_url
    urls = exchange.urls
    for section in ("api", "test", "demo"):
        tree = urls.get(section)
        if isinstance(tree, dict):
            _rewrite_tree(tree, base_url)
