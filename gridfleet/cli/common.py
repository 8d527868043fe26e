"""Helpers shared by CLI commands: loading files, one-line errors, consoles."""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

import typer
from rich.console import Console

from gridfleet.engine.config import ConfigError, GridConfig, config_from_text
from gridfleet.markets import MarketRules

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def friendly_errors(func: F) -> F:
    """Turn expected failures (bad config, bad data, missing files) into a one-line error and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except (ConfigError, ValueError, KeyError, OSError) as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if isinstance(exc, KeyError):
                text = text.strip("'\"")
            fail(text)

    return wrapper  # type: ignore[return-value]


def load_config_file(path: Path) -> GridConfig:
    """Read a YAML or JSON grid config file."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    fmt: Literal["yaml", "json"] = "json" if path.suffix.lower() == ".json" else "yaml"
    try:
        return config_from_text(text, fmt=fmt)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_market(exchange_info: Path | None, symbol: str) -> MarketRules | None:
    """Return the market rules of ``symbol`` from a Binance exchangeInfo dump (plain or .gz), if given."""
    if exchange_info is None:
        return None
    if not exchange_info.is_file():
        raise ValueError(f"exchange info file not found: {exchange_info}")
    opener = gzip.open if exchange_info.suffix == ".gz" else open
    with opener(exchange_info, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    wanted = symbol.replace("/", "").upper()
    for info in data.get("symbols", []):
        if info.get("symbol") == wanted:
            return MarketRules.from_binance_symbol(info)
    raise ValueError(f"symbol {symbol} not found in {exchange_info}")
