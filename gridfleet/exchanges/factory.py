"""Build the venue adapter a bot runs on (live ccxt exchange or paper trading) and read API key files.

The content of a key file is never printed, logged or put in an exception message: errors name the file and
the missing or malformed *fields* only.
"""

from __future__ import annotations

import importlib
import json
import logging
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from gridfleet.exchanges.base import ExchangeAdapter
from gridfleet.exchanges.ccxt_adapter import CcxtExchange
from gridfleet.exchanges.ratelimit import RateLimiter

__all__ = ["KeysFileError", "create_exchange", "load_keys"]

logger = logging.getLogger(__name__)

_KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "apiKey": ("apiKey", "api_key", "apikey", "key"),
    "secret": ("secret", "api_secret", "secretKey", "secret_key"),
    "password": ("password", "passphrase"),
}


class KeysFileError(ValueError):
    """A key file is missing, unreadable or lacks a field (the message never contains the file's content)."""


def load_keys(path: str | Path) -> dict[str, str]:
    """Read API credentials from a YAML or JSON file and return ``{"apiKey", "secret"[, "password"]}``.

    Accepted field names: ``apiKey``/``api_key``/``key``, ``secret``/``api_secret``, and optionally
    ``password``/``passphrase`` (OKX). Raise :class:`KeysFileError` naming the missing fields. A file readable by
    other users is accepted with a warning.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
        mode = file.stat().st_mode
    except OSError as exc:
        raise KeysFileError(f"cannot read key file {file}: {exc.strerror or type(exc).__name__}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("key file %s is readable by other users; restrict it with chmod 600", file)
    data: Any
    try:
        data = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise KeysFileError(f"key file {file} is not valid JSON (line {exc.lineno})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise KeysFileError(f"key file {file} is not valid YAML{where}") from None
    if not isinstance(data, Mapping):
        raise KeysFileError(f"key file {file} must hold a mapping with apiKey and secret")
    keys: dict[str, str] = {}
    for field, aliases in _KEY_ALIASES.items():
        for alias in aliases:
            value = data.get(alias)
            if value is not None and str(value).strip():
                keys[field] = str(value).strip()
                break
    missing = [field for field in ("apiKey", "secret") if field not in keys]
    if missing:
        # field names are not listed: a malformed file could have a key as a field name
        raise KeysFileError(f"key file {file} lacks {' and '.join(missing)}")
    return keys


def create_exchange(
    exchange_id: str,
    *,
    keys: Mapping[str, str] | None = None,
    api_url: str | None = None,
    paper: bool = False,
    sandbox: bool = False,
    options: Mapping[str, Any] | None = None,
    rate_limiter: RateLimiter | None = None,
    websocket: bool = True,
    paper_options: Mapping[str, Any] | None = None,
) -> ExchangeAdapter:
    """Return the adapter for ``exchange_id``: a :class:`CcxtExchange`, or with ``paper`` a paper account.

    ``keys`` is what :func:`load_keys` returns. With ``paper=True`` the ccxt adapter is built *without* keys and
    only prices the simulated account: ``PaperExchange(price_source=<ccxt adapter>, **paper_options)``
    (``paper_options`` holds e.g. ``symbol``, ``balances``, ``maker_fee``, ``taker_fee``).
    Raise :class:`NotImplementedError` for paper trading when :mod:`gridfleet.exchanges.paper` is absent.
    """
    credentials = {} if paper else dict(keys or {})
    venue = CcxtExchange(
        exchange_id,
        api_key=credentials.get("apiKey"),
        secret=credentials.get("secret"),
        password=credentials.get("password"),
        api_url=api_url,
        options=options,
        sandbox=sandbox,
        rate_limiter=rate_limiter,
        websocket=websocket,
    )
    if not paper:
        return venue
    try:
        paper_module = importlib.import_module("gridfleet.exchanges.paper")
    except ImportError:
        raise NotImplementedError("paper trading is not available (gridfleet.exchanges.paper is missing)") from None
    paper_cls: Any = paper_module.PaperExchange
    adapter: ExchangeAdapter = paper_cls(price_source=venue, **dict(paper_options or {}))
    return adapter
