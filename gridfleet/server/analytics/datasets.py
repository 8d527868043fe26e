"""The candle files a backtest can use: the server's data directory, described from the file names.

Names follow the repository's convention ``<exchange>_<market>_<SYMBOL>_<timeframe>_<from>_<to>.<ext>`` (e.g.
``binance_spot_BTCUSDT_1h_2017-08-17_2024-04-21.csv.gz``); other candle files are listed with what can be read
from them (null where the name says nothing).
"""

from __future__ import annotations

import re
from typing import Any

from django.core.cache import cache

from gridfleet.server.analytics.backtests import data_dir

_NAME = re.compile(r"^(?P<exchange>[a-z0-9]+)_(?P<market>[a-z]+)_(?P<pair>[A-Z0-9]+)_(?P<timeframe>\d+[smhdwM])_"
                   r"(?P<start>\d{4}-\d{2}-\d{2})_(?P<end>\d{4}-\d{2}-\d{2})\.(?P<ext>csv|csv\.gz|parquet)$")
_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USD", "EUR", "BTC", "ETH", "BNB", "TRY")
CACHE_TTL = 60


def _symbol(pair: str) -> str:
    for quote in _QUOTES:
        if pair.endswith(quote) and len(pair) > len(quote):
            return f"{pair[: -len(quote)]}/{quote}"
    return pair


def describe(name: str, size: int) -> dict[str, Any]:
    """Return what the file name says about a candle file."""
    m = _NAME.match(name)
    if m is None:
        return {"file": name, "exchange": None, "market": None, "symbol": None, "timeframe": None, "start": None,
                "end": None, "size_bytes": size}
    return {"file": name, "exchange": m["exchange"], "market": m["market"], "symbol": _symbol(m["pair"]),
            "timeframe": m["timeframe"], "start": m["start"], "end": m["end"], "size_bytes": size}


def list_datasets() -> list[dict[str, Any]]:
    """Return every candle file of the data directory, sorted by symbol, timeframe and start (cached a minute)."""
    folder = data_dir()
    key = f"gridfleet:datasets:{folder}"
    cached = cache.get(key)
    if cached is not None:
        return list(cached)
    rows = []
    if folder.is_dir():
        for path in folder.iterdir():
            name = path.name
            if name.startswith(".") or not name.endswith((".csv", ".csv.gz", ".parquet")) or not path.is_file():
                continue
            rows.append(describe(name, path.stat().st_size))
    rows.sort(key=lambda r: (r["symbol"] or "~", r["timeframe"] or "", r["start"] or "", r["file"]))
    cache.set(key, rows, CACHE_TTL)
    return rows
