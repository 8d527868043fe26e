"""``gridfleet fake-exchange``: run a local Binance-spot-compatible server replaying real candles.

The lead wires :func:`register` into the main ``gridfleet`` app; ``python -m gridfleet.fake_exchange`` runs the same
command on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer

from gridfleet.cli.common import console, friendly_errors
from gridfleet.fake_exchange.accounts import load_accounts
from gridfleet.fake_exchange.faults import FaultConfig
from gridfleet.fake_exchange.server import FakeExchangeConfig, FakeExchangeServer, serve_forever

_FAULTS = "Faults"


def _decimal(name: str, value: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"{name} must be a non-negative number")
    return number


def fake_exchange(
    data: Annotated[Path, typer.Option("--data", "-d", help="Candle file to replay (.csv, .csv.gz, .parquet).")],
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="Market, BASE/QUOTE.")] = "BTC/USDT",
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port (0 = pick a free one).")] = 8900,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    speed: Annotated[float, typer.Option(
        "--speed", help="Candle-seconds replayed per wall second (60: one 1m candle/s); 0 = manual clock "
                        "(POST /_fake/advance).")] = 60.0,
    accounts: Annotated[Path | None, typer.Option(
        "--accounts", help="YAML/JSON list of {apiKey, secret, balances}; default: test/test with 1,000,000 quote "
                           "and 10 base.")] = None,
    exchange_info: Annotated[Path | None, typer.Option(
        "--exchange-info", help="Binance exchangeInfo JSON (.gz ok) with the symbol's real filters.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fault RNG and generated ids.")] = 0,
    warmup: Annotated[int, typer.Option(
        "--warmup", help="Candles treated as already-traded history (klines, tickers) before the replay.")] = 0,
    max_candles: Annotated[int | None, typer.Option("--max-candles", help="Use only the first N candles.")] = None,
    maker_fee: Annotated[str, typer.Option("--maker-fee", help="Maker fee rate.")] = "0.001",
    taker_fee: Annotated[str, typer.Option("--taker-fee", help="Taker fee rate.")] = "0.001",
    weight_limit: Annotated[int, typer.Option(
        "--weight-limit", help="Request weight per IP per minute before 429 (-1003).")] = 6000,
    drop_pct: Annotated[float, typer.Option(
        "--drop-pct", help="% of requests whose connection is closed unanswered.", rich_help_panel=_FAULTS)] = 0.0,
    timeout_pct: Annotated[float, typer.Option(
        "--timeout-pct", help="% of requests that hang --timeout-s then drop.", rich_help_panel=_FAULTS)] = 0.0,
    timeout_s: Annotated[float, typer.Option(
        "--timeout-s", help="How long a 'timeout' request hangs.", rich_help_panel=_FAULTS)] = 15.0,
    rate_limit_pct: Annotated[float, typer.Option(
        "--rate-limit-pct", help="% of requests answered 429 + Retry-After.", rich_help_panel=_FAULTS)] = 0.0,
    error_5xx_pct: Annotated[float, typer.Option(
        "--error-5xx-pct", help="% of requests answered 503/502.", rich_help_panel=_FAULTS)] = 0.0,
    lose_response_pct: Annotated[float, typer.Option(
        "--lose-response-pct", help="% of requests processed (orders accepted!) whose response is dropped.",
        rich_help_panel=_FAULTS)] = 0.0,
    ws_delay_ms: Annotated[float, typer.Option(
        "--ws-delay-ms", help="Delay of every websocket event.", rich_help_panel=_FAULTS)] = 0.0,
    ws_disconnect_every_s: Annotated[float, typer.Option(
        "--ws-disconnect-every-s", help="Close every websocket after this many seconds (0 = never).",
        rich_help_panel=_FAULTS)] = 0.0,
    partial_fill: Annotated[float | None, typer.Option(
        "--partial-fill", help="Participation rate: resting orders fill at most this share of each price point's "
                               "volume (partial fills).", rich_help_panel=_FAULTS)] = None,
    faults_public: Annotated[bool, typer.Option(
        "--faults-public", help="Apply the HTTP faults to public endpoints too (default: signed ones only).",
        rich_help_panel=_FAULTS)] = False,
) -> None:
    """Run a local server speaking the Binance spot REST + websocket protocol over replayed candles."""
    if not 0 <= port <= 65535:
        raise ValueError(f"--port must be 0-65535, got {port}")
    if warmup < 0:
        raise ValueError("--warmup must not be negative")
    if weight_limit < 1:
        raise ValueError("--weight-limit must be at least 1")
    faults = FaultConfig()
    fault_values: dict[str, Any] = {
        "drop_pct": drop_pct, "timeout_pct": timeout_pct, "timeout_s": timeout_s, "rate_limit_pct": rate_limit_pct,
        "error_5xx_pct": error_5xx_pct, "lose_response_pct": lose_response_pct, "ws_delay_ms": ws_delay_ms,
        "ws_disconnect_every_s": ws_disconnect_every_s, "partial_fill": partial_fill,
        "include_public": faults_public,
    }
    try:
        faults.update(fault_values)
    except ValueError as exc:
        raise ValueError(f"--{str(exc).replace('_', '-')}") from None
    config = FakeExchangeConfig(
        symbol=symbol,
        data=data,
        speed=speed,
        accounts=load_accounts(accounts) if accounts is not None else None,
        exchange_info=exchange_info,
        seed=seed,
        faults=faults,
        warmup=warmup,
        max_candles=max_candles,
        maker_fee=_decimal("--maker-fee", maker_fee),
        taker_fee=_decimal("--taker-fee", taker_fee),
        weight_limit=weight_limit,
    )
    server = FakeExchangeServer(config)

    def ready(url: str) -> None:
        venue = server.venue
        keys = ", ".join(venue.accounts)
        print(f"fake-exchange listening on {url}", flush=True)
        console.print(
            f"  {venue.symbol}: {len(venue.replay.candles)} candles of {venue.replay.timeframe_ms // 1000}s, "
            f"speed {'manual (POST /_fake/advance)' if config.speed == 0 else config.speed}, accounts: {keys}",
            highlight=False, soft_wrap=True,
        )
        ws = "ws" + url[len("http"):]
        console.print(f"  REST {url}/api/v3   streams {ws}/ws   WS-API {ws}/ws-api/v3   control {url}/_fake/state",
                      highlight=False, soft_wrap=True)
        console.print(f"  ccxt: point_ccxt_at(exchange, '{url}')  (gridfleet.fake_exchange.ccxt_urls)", highlight=False,
                      soft_wrap=True)
        console.print("  Ctrl-C to stop.", highlight=False, soft_wrap=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(server, host, port, ready))


def register(app: typer.Typer) -> None:
    """Add the ``fake-exchange`` command to ``app``."""
    app.command("fake-exchange")(friendly_errors(fake_exchange))
