"""The ``gridfleet`` command line: grid previews, config schema, backtests, parameter sweeps, risk templates."""

from __future__ import annotations

import csv
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from gridfleet.cli import billing_cmd, fake_exchange_cmd, run_cmd, serve_cmd
from gridfleet.cli.common import console, fail, friendly_errors, load_config_file, load_market
from gridfleet.engine.config import GridConfig, config_to_dict
from gridfleet.engine.levels import level_prices
from gridfleet.engine.preview import preview_grid

app = typer.Typer(no_args_is_help=True, add_completion=False, help="gridfleet: fleets of crypto grid trading bots.")
grid_app = typer.Typer(no_args_is_help=True, help="Inspect grid layouts.")
config_app = typer.Typer(no_args_is_help=True, help="Config format.")
risk_app = typer.Typer(no_args_is_help=True, help="Risk rule templates.")
app.add_typer(grid_app, name="grid")
app.add_typer(config_app, name="config")
app.add_typer(risk_app, name="risk")
app.add_typer(billing_cmd.app, name="billing")
run_cmd.register(app)
fake_exchange_cmd.register(app)
serve_cmd.register(app)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Grid config file (YAML or JSON).")]
ExchangeInfoOpt = Annotated[
    Path | None, typer.Option("--exchange-info", help="Binance exchangeInfo JSON (.gz ok) for tick/step/limits.")
]


# ---------------------------------------------------------------------------------------------------- grid
@grid_app.command("preview")
@friendly_errors
def grid_preview(
    config: ConfigOpt,
    price: Annotated[str | None, typer.Option("--price", "-p", help="Start price (default: mid-range).")] = None,
    exchange_info: ExchangeInfoOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print the levels, per-level quantity and order side a config starts with at a price."""
    cfg = load_config_file(config)
    market = load_market(exchange_info, cfg.symbol)
    prices = level_prices(cfg.grid, market)
    p0 = Decimal(price) if price is not None else (prices[0] + prices[-1]) / 2
    if p0 <= 0:
        fail("--price must be positive")
    preview = build_preview(cfg, prices, p0, market)
    if as_json:
        console.print_json(json.dumps(preview, default=str))
        return
    table = Table(title=f"{cfg.symbol} grid at {p0}: {len(prices)} levels ({cfg.grid.type.value})")
    for col in ("level", "price", "side", "qty", "value", "note"):
        table.add_column(col, justify="right" if col not in ("side", "note") else "left")
    for row in reversed(preview["levels"]):
        side = row["side"]
        style = {"buy": "green", "sell": "red"}.get(side, "dim")
        table.add_row(str(row["level"]), _short(row["price"]), f"[{style}]{side}[/]", str(row["qty"] or ""),
                      str(row["value"] or ""), row["note"])
    console.print(table)
    console.print(f"qty per order [bold]{preview['qty_per_order']}[/]  initial market buy "
                  f"[bold]{preview['initial_market_buy']}[/] {preview['base']}  "
                  f"quote needed ≈ [bold]{preview['quote_needed']}[/] {preview['quote']}")
    for warning in preview["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}")


def _short(value: Decimal) -> str:
    """Return a price with at most 8 decimals and no trailing zeros."""
    text = f"{value.quantize(Decimal('1e-8')):f}" if value.as_tuple().exponent < -8 else f"{value:f}"  # type: ignore[operator]
    return text.rstrip("0").rstrip(".") if "." in text else text


def build_preview(cfg: GridConfig, prices: list[Decimal], p0: Decimal, market: Any) -> dict[str, Any]:
    """Return the starting layout of ``cfg`` at ``p0`` (levels, sides, quantities, warnings) for the table.

    The computation is :func:`gridfleet.engine.preview.preview_grid` (shared with the server's preview endpoint).
    """
    preview = preview_grid(cfg, p0, market)
    rows = [{"level": r.level, "price": r.price, "side": r.side, "qty": r.qty,
             "value": r.notional.quantize(Decimal("0.01")) if r.notional is not None else None, "note": r.note}
            for r in preview.levels]
    return {
        "symbol": preview.symbol, "base": preview.base, "quote": preview.quote, "start_price": p0,
        "empty_level_index": preview.empty_level, "qty_per_order": preview.qty_per_order,
        "initial_market_buy": preview.base_for_sells, "quote_needed": preview.total_quote.quantize(Decimal("0.01")),
        "min_spacing_pct": preview.min_spacing_pct, "levels": rows,
        "warnings": [w.message for w in preview.warnings],
    }


# ---------------------------------------------------------------------------------------------------- config
@config_app.command("schema")
def config_schema(
    strategy: Annotated[str, typer.Option("--strategy", help="Strategy whose config schema to print.")] = "grid",
) -> None:
    """Print the JSON Schema of a strategy's config (drives the web forms)."""
    from gridfleet.engine.strategy import available_strategies, strategy_class

    if strategy not in available_strategies():
        fail(f"unknown strategy {strategy!r} (known: {', '.join(available_strategies())})")
    typer.echo(json.dumps(strategy_class(strategy).config_schema(), indent=2))


@config_app.command("validate")
@friendly_errors
def config_validate(config: ConfigOpt) -> None:
    """Validate a config file and print it with every default filled in."""
    cfg = load_config_file(config)
    typer.echo(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


# ---------------------------------------------------------------------------------------------------- backtest
@app.command("backtest")
@friendly_errors
def backtest(
    config: ConfigOpt,
    data: Annotated[Path, typer.Option("--data", "-d", help="Candles (CSV, CSV.gz, Parquet) or trades CSV.")],
    start: Annotated[str | None, typer.Option("--from", help="First candle (ISO date/time, UTC).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="End (exclusive, ISO date/time, UTC).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the summary JSON here.")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write the HTML report here.")] = None,
    trades: Annotated[Path | None, typer.Option("--trades", help="Write every fill as CSV here.")] = None,
    exchange_info: ExchangeInfoOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Backtest a grid config on historical candles."""
    from gridfleet.backtest.data import describe_gaps, load_candles
    from gridfleet.backtest.runner import run_backtest, run_backtest_trades
    from gridfleet.backtest.trades import is_trades_file, load_trades

    cfg = load_config_file(config)
    market = load_market(exchange_info, cfg.symbol)
    if data.is_file() and data.suffix != ".parquet" and is_trades_file(data):
        if report is not None:
            fail("--report draws candles: backtest candle data for a report (trades data given)")
        started = time.perf_counter()
        result = run_backtest_trades(cfg, load_trades(data, start=start, end=end), market=market)
        print_summary(result.summary, time.perf_counter() - started)
        _write_outputs(result, json_out, trades)
        return
    candles = load_candles(data, start=start, end=end)
    if candles.gaps:
        console.print(f"[yellow]note:[/] {describe_gaps(candles).splitlines()[0]}")
    started = time.perf_counter()
    if quiet or len(candles) < 200_000:
        result = run_backtest(cfg, candles, market=market)
    else:
        with Progress(TextColumn("backtest"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                      TimeRemainingColumn(), console=console, transient=True) as bar:
            task = bar.add_task("run", total=len(candles))
            result = run_backtest(cfg, candles, market=market,
                                  progress=lambda i, n: bar.update(task, completed=i))
    elapsed = time.perf_counter() - started
    print_summary(result.summary, elapsed)
    _write_outputs(result, json_out, trades)
    if report is not None:
        from gridfleet.backtest.report import write_report

        write_report(report, title=f"{cfg.symbol} grid backtest", candles=candles,
                     levels=[float(p) for p in result.levels], fills=result.fill_rows(),
                     equity=result.equity_curve, metrics=result.summary,
                     per_level_profit={float(k): v for k, v in result.per_level_profit.items()},
                     config=config_to_dict(cfg))
        console.print(f"HTML report: {report}")


def _write_outputs(result: Any, json_out: Path | None, trades: Path | None) -> None:
    """Write the summary JSON and the fills CSV when asked."""
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.to_json(), indent=2, default=str))
        console.print(f"summary JSON: {json_out}")
    if trades is not None:
        trades.parent.mkdir(parents=True, exist_ok=True)
        rows = result.fill_rows()
        with trades.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["timestamp"])
            writer.writeheader()
            writer.writerows(rows)
        console.print(f"fills CSV: {trades} ({len(rows)} fills)")


SUMMARY_ROWS = [
    ("candles", "candles"), ("start_price", "start price"), ("last_close", "last close"),
    ("buy_fills", "buy fills"), ("sell_fills", "sell fills"), ("round_trips", "round trips"),
    ("grid_profit", "grid profit"), ("unrealized_pnl", "unrealised PnL"), ("fees_paid", "fees paid"),
    ("final_equity", "final equity"), ("total_return_pct", "total return %"),
    ("annualized_return_pct", "annualised return %"), ("max_drawdown_pct", "max drawdown %"),
    ("sharpe", "Sharpe"), ("sortino", "Sortino"), ("win_rate", "win rate %"), ("profit_factor", "profit factor"),
    ("time_in_range_pct", "time in range %"),
]


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        try:
            d = Decimal(value)
        except ArithmeticError:
            return value
        return f"{d:,.6f}".rstrip("0").rstrip(".") if d == d.to_integral_value() or abs(d) < 1000 else f"{d:,.2f}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return "—" if value is None else str(value)


def print_summary(summary: dict[str, Any], elapsed: float) -> None:
    """Print the one-screen backtest summary."""
    table = Table(title=f"{summary['symbol']} backtest", show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, label in SUMMARY_ROWS:
        if key in summary:
            table.add_row(label, _fmt(summary[key]))
    console.print(table)
    rate = summary["candles"] / elapsed if elapsed > 0 else 0
    console.print(f"[dim]{summary['candles']:,} candles in {elapsed:.2f} s ({rate:,.0f} candles/s)[/]")


# ---------------------------------------------------------------------------------------------------- sweep
@app.command("sweep")
@friendly_errors
def sweep(
    config: ConfigOpt,
    data: Annotated[Path, typer.Option("--data", "-d", help="Candles: CSV, CSV.gz or Parquet.")],
    levels: Annotated[str | None, typer.Option("--grid.levels", help="e.g. 10:100:5 or 20,30,40")] = None,
    lower: Annotated[str | None, typer.Option("--grid.lower", help="e.g. 90000:100000:2500")] = None,
    upper: Annotated[str | None, typer.Option("--grid.upper", help="e.g. 110000:125000:2500")] = None,
    grid_type: Annotated[str | None, typer.Option("--grid.type", help="arithmetic,geometric")] = None,
    start: Annotated[str | None, typer.Option("--from", help="First candle (ISO, UTC).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="End, exclusive (ISO, UTC).")] = None,
    top: Annotated[int, typer.Option("--top", help="How many results to show.")] = 20,
    metric: Annotated[str, typer.Option("--metric", help="Rank by this result column.")] = "total_return_pct",
    ascending: Annotated[bool, typer.Option("--ascending", help="Smaller is better (e.g. max_drawdown_pct).")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write all results as JSON here.")] = None,
    write_config: Annotated[Path | None, typer.Option("--write-config", help="Write the best config here.")] = None,
    verify: Annotated[int, typer.Option("--verify", help="Re-run the best N with the event backtester.")] = 0,
) -> None:
    """Evaluate every combination of grid parameters with the compiled kernel and rank them."""
    from gridfleet.backtest.data import load_candles
    from gridfleet.backtest.sweep_kernel import RESULT_COLUMNS, expand_param_grid, run_sweep

    cfg = load_config_file(config)
    if cfg.grid.type.value == "custom":
        fail("sweep: a custom grid has no range to sweep; use an arithmetic or geometric grid")
    if cfg.layers or cfg.risk or cfg.trailing.rebound_pct or cfg.trailing.pullback_pct or cfg.participation:
        fail("sweep: the kernel evaluates plain grids; remove layers, trailing, risk and participation from the "
             "config (or backtest those settings one by one)")
    if metric not in RESULT_COLUMNS:
        fail(f"--metric: unknown column {metric!r} (choose from {', '.join(RESULT_COLUMNS)})")
    spec: dict[str, Any] = {
        "type": grid_type or cfg.grid.type.value,
        "lower": lower or str(cfg.grid.lower),
        "upper": upper or str(cfg.grid.upper),
        "levels": levels or str(cfg.grid.levels),
    }
    combos = [c for c in expand_param_grid(spec) if c["lower"] < c["upper"]]
    if not combos:
        fail("sweep: no combination has lower < upper")
    candles = load_candles(data, start=start, end=end)
    started = time.perf_counter()
    results = run_sweep(candles.open, candles.high, candles.low, candles.close, combos,
                        qty=float(cfg.qty_per_order) if cfg.qty_per_order is not None else None,
                        investment=float(cfg.investment) if cfg.investment is not None else _capital_for(cfg, candles),
                        maker=float(cfg.fees.maker), taker=float(cfg.fees.taker), slippage=float(cfg.slippage))
    elapsed = time.perf_counter() - started
    results.sort(key=lambda r: r[metric], reverse=not ascending)
    evals = len(candles) * len(combos)
    table = Table(title=f"{len(combos)} grids × {len(candles):,} candles, ranked by {metric}")
    for col in ("#", "type", "lower", "upper", "levels", "total_return_pct", "max_drawdown_pct", "buy_fills",
                "sell_fills", "grid_profit", "fees_paid"):
        table.add_column(col, justify="right")
    for rank, r in enumerate(results[:top], 1):
        table.add_row(str(rank), r["type"][:5], f"{r['lower']:g}", f"{r['upper']:g}", str(r["levels"]),
                      f"{r['total_return_pct']:.3f}", f"{r['max_drawdown_pct']:.2f}", str(r["buy_fills"]),
                      str(r["sell_fills"]), f"{r['grid_profit']:.2f}", f"{r['fees_paid']:.2f}")
    console.print(table)
    console.print(f"[dim]{evals:,} candle-evaluations in {elapsed:.2f} s "
                  f"({evals / max(elapsed, 1e-9):,.0f} per second)[/]")
    best_cfg = _with_grid(cfg, results[0])
    if verify > 0:
        _verify(cfg, candles, results[:verify])
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"metric": metric, "candles": len(candles), "results": results}, indent=2))
        console.print(f"results JSON: {json_out}")
    if write_config is not None:
        write_config.parent.mkdir(parents=True, exist_ok=True)
        write_config.write_text(yaml.safe_dump(config_to_dict(best_cfg), sort_keys=False))
        console.print(f"best config written to {write_config} (use it with: gridfleet backtest -c {write_config})")


def _with_grid(cfg: GridConfig, combo: dict[str, Any]) -> GridConfig:
    """Return ``cfg`` with the grid of a sweep result (validated)."""
    data = config_to_dict(cfg)
    data["grid"] = {"type": combo["type"], "lower": repr(float(combo["lower"])),
                    "upper": repr(float(combo["upper"])), "levels": int(combo["levels"])}
    return GridConfig.model_validate(data)


def _capital_for(cfg: GridConfig, candles: Any) -> float:
    from gridfleet.backtest.runner import required_capital

    return float(required_capital(cfg, Decimal(repr(float(candles.open[0])))))


def _verify(cfg: GridConfig, candles: Any, results: list[dict[str, Any]]) -> None:
    """Re-run sweep results through the event-driven backtester and compare."""
    from gridfleet.backtest.runner import run_backtest

    for r in results:
        res = run_backtest(_with_grid(cfg, r), candles).summary
        same = (res["buy_fills"], res["sell_fills"]) == (r["buy_fills"], r["sell_fills"])
        mark = "[green]same[/]" if same and abs(float(res["final_quote"]) - r["final_quote"]) < 1e-6 * max(
            1.0, abs(r["final_quote"])) else "[red]DIFFERENT[/]"
        console.print(f"verify {r['type']} {r['lower']:g}-{r['upper']:g}×{r['levels']}: event backtester "
                      f"{res['buy_fills']}/{res['sell_fills']} fills, final quote {float(res['final_quote']):,.6f} "
                      f"→ {mark}")


# ---------------------------------------------------------------------------------------------------- risk
@risk_app.command("validate")
@friendly_errors
def risk_validate(path: Annotated[Path, typer.Argument(help="Risk template file (YAML or JSON).")]) -> None:
    """Validate a risk template file and print its rules."""
    from gridfleet.engine.risk import RiskTemplate

    if not path.is_file():
        fail(f"template file not found: {path}")
    text = path.read_text(encoding="utf-8")
    template = RiskTemplate.from_json(text) if path.suffix.lower() == ".json" else RiskTemplate.from_yaml(text)
    console.print(f"template [bold]{template.name}[/]: {len(template.rules)} rule(s)")
    for rule in template.rules:
        console.print(f"  • {rule.name}: {rule.action.value}")


# ---------------------------------------------------------------------------------------------------- demo
@app.command("demo")
@friendly_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Where to write the demo outputs.")] = Path("out"),
) -> None:
    """Backtest the example grid on real Binance candles and write the JSON, fills and HTML report."""
    root = Path(__file__).resolve().parents[2]
    data = (root / ".." / "shared" / "data" / "ohlcv" / "binance_spot_BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz")
    example = root / "examples" / "btc_range_grid.yaml"
    if not data.is_file():
        fail(f"demo data not found at {data.resolve()}; run `gridfleet backtest --config {example} --data FILE` "
             "with your own candles (columns open_time,open,high,low,close,volume)")
    console.print(f"[bold]gridfleet demo[/]: {example.name} on {data.name}")
    backtest(config=example, data=data.resolve(), start=None, end=None, json_out=out / "demo-backtest.json",
             report=out / "demo-report.html", trades=out / "demo-fills.csv", exchange_info=None, quiet=False)


if __name__ == "__main__":
    app()
