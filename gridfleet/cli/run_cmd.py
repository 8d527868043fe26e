"""``gridfleet run``: one bot in the foreground, live or paper, with a live status table."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import signal
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.live import Live
from rich.table import Table

from gridfleet.cli.common import console, fail, friendly_errors, load_config_file
from gridfleet.engine.config import GridConfig


def default_bot_id(config: GridConfig, exchange: str, paper: bool) -> str:
    """Return a short, stable bot id for these arguments (so a restart with the same arguments resumes)."""
    digest = hashlib.sha1(f"{exchange}|{config.symbol}|{paper}".encode()).hexdigest()[:6]
    return f"g{digest}"


def register(app: typer.Typer) -> None:
    """Add the ``run`` command to ``app``."""

    @app.command("run")
    @friendly_errors
    def run(
        config: Annotated[Path, typer.Option("--config", "-c", help="Grid config file (YAML or JSON).")],
        exchange: Annotated[str, typer.Option("--exchange", "-e", help="ccxt exchange id, e.g. binance.")],
        paper: Annotated[bool, typer.Option("--paper", help="Simulate fills locally on live prices.")] = False,
        keys: Annotated[Path | None, typer.Option("--keys", help="YAML/JSON with apiKey and secret.")] = None,
        api_url: Annotated[str | None, typer.Option("--api-url", help="Point REST+websocket at this host.")] = None,
        state: Annotated[Path, typer.Option("--state", help="SQLite state file (resume).")] = Path(
            "gridfleet-state.sqlite3"),
        bot_id: Annotated[str | None, typer.Option("--bot-id", help="Bot id (client-id prefix).")] = None,
        on_exit: Annotated[str, typer.Option("--on-exit", help="On Ctrl-C: leave or cancel orders.")] = "leave",
        reconcile_every: Annotated[float, typer.Option("--reconcile-every", help="Seconds.")] = 15.0,
        status: Annotated[bool, typer.Option("--status/--no-status", help="Live status table.")] = True,
        log_file: Annotated[Path | None, typer.Option("--log-file", help="Write the runtime log here.")] = None,
    ) -> None:
        """Run one bot in the foreground; killed and started again with the same arguments, it resumes."""
        if on_exit not in ("leave", "cancel"):
            fail("--on-exit: choose leave or cancel")
        cfg = load_config_file(config)
        if not paper and keys is None:
            fail("--keys: live trading needs an API key file (or use --paper)")
        if bot_id is not None and not bot_id.replace("_", "").isalnum():
            fail("--bot-id: letters, digits and _ only")
        logging.basicConfig(level=logging.INFO, filename=str(log_file) if log_file else None,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        if log_file is None:
            logging.getLogger().setLevel(logging.WARNING)
        asyncio.run(_run(cfg, exchange, paper, keys, api_url, state, bot_id or default_bot_id(cfg, exchange, paper),
                         on_exit, reconcile_every, status))  # type: ignore[arg-type]


async def _run(cfg: GridConfig, exchange: str, paper: bool, keys: Path | None, api_url: str | None, state: Path,
               bot_id: str, on_exit: Literal["leave", "cancel"], reconcile_every: float, show: bool) -> None:
    from gridfleet.exchanges.factory import create_exchange, load_keys
    from gridfleet.runtime.bot import BotRunner
    from gridfleet.runtime.host import BotHost
    from gridfleet.runtime.store import SqliteStore

    base, quote = cfg.symbol.split("/")
    paper_options: dict[str, Any] = {
        "symbol": cfg.symbol, "balances": {quote: cfg.investment or Decimal(0), base: Decimal(0)},
        "maker_fee": cfg.fees.maker, "taker_fee": cfg.fees.taker, "slippage": cfg.slippage,
        "participation": cfg.participation,
    }
    venue = create_exchange(exchange, keys=None if paper or keys is None else load_keys(keys), api_url=api_url,
                            paper=paper, paper_options=paper_options)
    store = SqliteStore(state)
    host = BotHost(reconcile_every=reconcile_every)
    table_holder: dict[str, Any] = {}

    def render(bot: BotRunner) -> None:
        live = table_holder.get("live")
        if live is not None:
            live.update(_status_table(bot))

    bot = BotRunner(bot_id, "grid", cfg, cfg.symbol, venue, store, exchange=("paper:" if paper else "") + exchange,
                    on_change=render)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, host.request_stop)
    try:
        await host.add(bot)
        if show:
            with Live(_status_table(bot), console=console, refresh_per_second=4) as live:
                table_holder["live"] = live
                await host.run_until_stopped()
                table_holder.pop("live", None)
        else:
            console.print(f"bot {bot_id} running on {exchange}{' (paper)' if paper else ''}; Ctrl-C stops it")
            await host.run_until_stopped()
    finally:
        await host.shutdown(cancel_orders=on_exit == "cancel")
        store.close()
    console.print(f"bot {bot_id} stopped ({'orders canceled' if on_exit == 'cancel' else 'orders left open'}); "
                  f"state in {state}")


def _status_table(bot: Any) -> Table:
    info = bot.status()
    strat = info.get("strategy", {})
    table = Table(title=f"{bot.bot_id} · {bot.symbol} · {info['state']}", show_header=False)
    table.add_column("key")
    table.add_column("value", justify="right")
    rows = [
        ("price", info["price"]),
        ("open orders", str(sum(1 for lay in strat.get("layers", []) if lay.get("client_id")))),
        ("buy / sell fills", f"{strat.get('buy_fills', 0)} / {strat.get('sell_fills', 0)}"),
        ("grid profit", strat.get("grid_profit", "0")),
        ("position", strat.get("base", "0")),
        ("avg entry", strat.get("avg_entry_price") or "—"),
        ("corrections", str(info["corrections"])),
    ]
    if info.get("error"):
        rows.append(("error", info["error"]))
    for key, value in rows:
        table.add_row(key, str(value))
    return table
