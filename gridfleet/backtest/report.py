"""Self-contained HTML backtest report (plotly charts, metrics table, configuration).

:func:`write_report` writes ONE HTML file that needs no network to view: plotly.js is embedded once, all data
is inline. It shows a candlestick chart with the grid levels and the buy/sell fills, the equity curve with a
drawdown subplot, the profit per grid level, the metrics and the configuration. Every piece of text that goes
into the HTML is escaped.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from gridfleet.backtest.data import Candles, describe_gaps, format_ms
from gridfleet.backtest.metrics import drawdown_series, resample_indices

__all__ = [
    "MAX_CANDLE_BARS",
    "MAX_EQUITY_POINTS",
    "MAX_FILL_MARKERS",
    "METRIC_LABELS",
    "downsample_candles",
    "format_metric",
    "write_report",
]

MAX_CANDLE_BARS: int = 3000
"""At most this many candlestick bars are drawn; longer series are time-bucketed (OHLC aggregated)."""

MAX_EQUITY_POINTS: int = 2000
"""At most this many equity points are drawn (see :func:`gridfleet.backtest.metrics.resample_equity`)."""

MAX_FILL_MARKERS: int = 20_000
"""At most this many fill markers per side are drawn (evenly thinned beyond that; the count is shown)."""

METRIC_LABELS: dict[str, str] = {
    "total_return_pct": "Total return",
    "annualized_return_pct": "Annualized return",
    "max_drawdown_pct": "Max drawdown",
    "sharpe": "Sharpe ratio",
    "sortino": "Sortino ratio",
    "win_rate": "Win rate",
    "profit_factor": "Profit factor",
    "round_trips": "Round trips",
    "time_in_range_pct": "Time in range",
    "initial_equity": "Initial equity",
    "final_equity": "Final equity",
    "duration_days": "Duration",
}
"""Human-readable labels of the metrics of :func:`gridfleet.backtest.metrics.compute_metrics`, in display order."""

_PCT_KEYS = {"total_return_pct", "annualized_return_pct", "max_drawdown_pct", "win_rate", "time_in_range_pct"}
_SIGNED_KEYS = {"total_return_pct", "annualized_return_pct"}
_RATIO_KEYS = {"sharpe", "sortino", "profit_factor"}
_MONEY_KEYS = {"initial_equity", "final_equity"}
_NONE_TEXT = {
    "profit_factor": "n/a (no losing trip)",
    "annualized_return_pct": "n/a (too large)",
    "time_in_range_pct": "n/a",
}

_GREEN = "#0f9d58"
_RED = "#d93025"
_BUY_MARKER = "#047857"
_SELL_MARKER = "#b91c1c"
_CANDLE_UP = "#26a69a"
_CANDLE_DOWN = "#ef5350"
_BLUE = "#2563eb"
_FONT = "-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
_PLOT_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"],
}


# --------------------------------------------------------------------------------------------- formatting


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _to_float(value: Any) -> float:
    return float(value)


def _fmt_number(x: float, decimals: int = 2) -> str:
    if not math.isfinite(x):
        return "∞" if x > 0 else ("−∞" if x < 0 else "n/a")
    return f"{x:,.{decimals}f}"


def _fmt_price(x: float) -> str:
    """Format a price with a precision that suits its magnitude."""
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.2f}"
    if ax >= 1:
        return f"{x:,.4f}".rstrip("0").rstrip(".") if ax < 10 else f"{x:,.2f}"
    if ax == 0:
        return "0"
    return f"{x:.8g}"


def _fmt_generic(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating | Decimal):
        x = float(value)
        if not math.isfinite(x):
            return _fmt_number(x)
        if x != 0 and abs(x) < 0.01:
            return f"{x:.6g}"
        return _fmt_number(x, 2 if abs(x) >= 1 else 4)
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def format_metric(key: str, value: Any) -> str:
    """Format one metric value for display (plain text, not escaped): percentages, ratios, money, counts.

    ``None`` becomes a short explanation for the known metrics (e.g. profit factor without a losing trip)
    or an em dash.
    """
    if value is None:
        return _NONE_TEXT.get(key, "—")
    if key in _PCT_KEYS:
        x = float(value)
        sign = "+" if key in _SIGNED_KEYS and x > 0 else ""
        return f"{sign}{_fmt_number(x)} %"
    if key in _RATIO_KEYS:
        return _fmt_number(float(value))
    if key in _MONEY_KEYS:
        return _fmt_number(float(value))
    if key == "duration_days":
        return f"{_fmt_number(float(value))} days"
    if key == "round_trips":
        return f"{int(value):,}"
    return _fmt_generic(value)


def _metric_class(key: str, value: Any) -> str:
    if value is None or key not in _SIGNED_KEYS:
        return ""
    x = float(value)
    return "pos" if x > 0 else ("neg" if x < 0 else "")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if is_dataclass(obj) and not isinstance(obj, type):
        return asdict(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    return str(obj)


def _iso(ms: np.ndarray | Sequence[int]) -> list[str]:
    """Unix ms → ISO-like UTC strings plotly parses as dates."""
    arr = np.asarray(ms, dtype=np.int64).astype("datetime64[ms]")
    return [s.replace("T", " ") for s in np.datetime_as_string(arr, unit="s")]


# --------------------------------------------------------------------------------------------- data prep


def downsample_candles(candles: Candles, max_bars: int = MAX_CANDLE_BARS) -> tuple[dict[str, np.ndarray], int]:
    """Aggregate candles into at most about ``max_bars`` time buckets for drawing.

    Buckets are ``k`` timeframes wide with ``k = ceil(covered span / timeframe / max_bars)``; each bucket gets
    the first open, the max high, the min low and the last close of its candles and is stamped with the
    bucket's start time. Returns the arrays (keys ``open_time, open, high, low, close``) and ``k`` (1 = not
    aggregated).
    """
    n = len(candles)
    out = {
        "open_time": candles.open_time,
        "open": candles.open,
        "high": candles.high,
        "low": candles.low,
        "close": candles.close,
    }
    if n <= max_bars or candles.timeframe_ms <= 0:
        return out, 1
    t0 = int(candles.open_time[0])
    span_candles = (int(candles.open_time[-1]) - t0) // candles.timeframe_ms + 1
    k = max(1, math.ceil(span_candles / max_bars))
    width = k * candles.timeframe_ms
    bucket = (candles.open_time - t0) // width
    starts = np.flatnonzero(np.concatenate(([True], np.diff(bucket) != 0)))
    ends = np.concatenate((starts[1:], [n])) - 1
    return {
        "open_time": t0 + bucket[starts] * width,
        "open": candles.open[starts],
        "high": np.maximum.reduceat(candles.high, starts),
        "low": np.minimum.reduceat(candles.low, starts),
        "close": candles.close[ends],
    }, k


def _thin(idx: np.ndarray, limit: int) -> np.ndarray:
    if len(idx) <= limit:
        return idx
    keep = np.linspace(0, len(idx) - 1, limit).round().astype(np.int64)
    return idx[np.unique(keep)]


def _tf_label(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms} ms"


# --------------------------------------------------------------------------------------------- figures


def _base_layout(height: int) -> dict[str, Any]:
    return {
        "template": "plotly_white",
        "height": height,
        "margin": {"l": 70, "r": 24, "t": 16, "b": 40},
        "font": {"family": _FONT, "size": 12, "color": "#1f2937"},
        "hovermode": "closest",
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.01, "xanchor": "left", "x": 0},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
    }


def _price_figure(
    candles: Candles, levels: Sequence[float], fills: Sequence[Mapping[str, Any]]
) -> tuple[go.Figure, str]:
    bars, k = downsample_candles(candles)
    x = _iso(bars["open_time"])
    fig = go.Figure()
    fig.add_trace(
        go.Candlestick(
            x=x,
            open=bars["open"],
            high=bars["high"],
            low=bars["low"],
            close=bars["close"],
            name="price",
            increasing={"line": {"color": _CANDLE_UP, "width": 1}, "fillcolor": _CANDLE_UP},
            decreasing={"line": {"color": _CANDLE_DOWN, "width": 1}, "fillcolor": _CANDLE_DOWN},
            whiskerwidth=0,
        )
    )
    if levels:
        x0, x1 = _iso([candles.start_ms, candles.end_ms])
        lx: list[str | None] = []
        ly: list[float | None] = []
        for lvl in sorted(levels):
            lx += [x0, x1, None]
            ly += [lvl, lvl, None]
        fig.add_trace(
            go.Scatter(
                x=lx,
                y=ly,
                mode="lines",
                name=f"grid levels ({len(levels)})",
                line=(
                    {"color": "rgba(71, 85, 105, 0.55)", "width": 1, "dash": "dot"}
                    if len(levels) <= 30
                    else {"color": "rgba(71, 85, 105, 0.22)", "width": 0.6}
                ),
                hovertemplate="level %{y:,.8g}<extra></extra>",
            )
        )
    notes: list[str] = []
    if fills:
        ts = np.array([int(f["timestamp"]) for f in fills], dtype=np.int64)
        price = np.array([_to_float(f["price"]) for f in fills], dtype=np.float64)
        amount = np.array([_to_float(f.get("amount", 0.0)) for f in fills], dtype=np.float64)
        fee = np.array([_to_float(f.get("fee", 0.0)) for f in fills], dtype=np.float64)
        side = np.array([str(getattr(f["side"], "value", f["side"])).lower() for f in fills])
        marker_size = 11 if len(fills) <= 200 else (8 if len(fills) <= 2000 else 6)
        for name, marker_symbol, color in (
            ("buy", "triangle-up", _BUY_MARKER),
            ("sell", "triangle-down", _SELL_MARKER),
        ):
            all_idx = np.flatnonzero(side == name)
            if len(all_idx) == 0:
                continue
            idx = _thin(all_idx, MAX_FILL_MARKERS)
            if len(idx) < len(all_idx):
                notes.append(f"{len(idx):,} of {len(all_idx):,} {name} fills drawn")
            text = [
                f"{name.upper()} {amount[i]:.8g} @ {_fmt_price(price[i])}<br>fee {fee[i]:.6g}<br>"
                f"{format_ms(int(ts[i]), seconds=True)} UTC"
                for i in idx
            ]
            fig.add_trace(
                go.Scatter(
                    x=_iso(ts[idx]),
                    y=price[idx],
                    mode="markers",
                    name=f"{name}s ({len(all_idx):,})",
                    marker={
                        "symbol": marker_symbol,
                        "size": marker_size,
                        "color": color,
                        "line": {"color": "#ffffff", "width": 0.8 if len(fills) <= 200 else 0},
                    },
                    opacity=1.0 if len(fills) <= 200 else 0.75,
                    text=text,
                    hovertemplate="%{text}<extra></extra>",
                )
            )
    if len(candles.gaps) <= 200:
        for g in candles.gaps:
            g0, g1 = _iso([g.start_ms, g.end_ms])
            fig.add_vrect(x0=g0, x1=g1, fillcolor="rgba(234, 179, 8, 0.18)", line_width=0, layer="below")
    layout = _base_layout(560)
    fig.update_layout(**layout)
    fig.update_xaxes(
        rangeslider_visible=False,
        showgrid=True,
        gridcolor="#eef2f7",
        title_text="time (UTC)",
        range=_iso([candles.start_ms, candles.end_ms]),
    )
    fig.update_yaxes(showgrid=True, gridcolor="#eef2f7", tickformat=",~r", title_text="price")
    if k > 1:
        notes.insert(
            0,
            f"{len(candles):,} {_tf_label(candles.timeframe_ms)} candles aggregated into "
            f"{len(bars['open_time']):,} bars of {_tf_label(k * candles.timeframe_ms)}",
        )
    if candles.gaps:
        notes.append("shaded bands = missing candles (gaps)")
    return fig, "; ".join(notes)


def _equity_figure(equity: Sequence[tuple[int, float]], initial_equity: float | None) -> go.Figure:
    t = np.array([int(p[0]) for p in equity], dtype=np.int64)
    e = np.array([float(p[1]) for p in equity], dtype=np.float64)
    dd = drawdown_series(e)
    idx = resample_indices(t, MAX_EQUITY_POINTS)
    if len(idx) < len(t):
        starts = np.concatenate(([0], idx[:-1] + 1))
        dd_shown = np.maximum.reduceat(dd, starts)  # worst drawdown inside each bucket
    else:
        dd_shown = dd
    x = _iso(t[idx])
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.7, 0.3])
    fig.add_trace(
        go.Scatter(
            x=x,
            y=e[idx],
            mode="lines",
            name="equity",
            line={"color": _BLUE, "width": 1.6},
            hovertemplate="%{x|%Y-%m-%d %H:%M} UTC<br>equity %{y:,.2f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    if initial_equity is not None and len(x):
        fig.add_trace(
            go.Scatter(
                x=[x[0], x[-1]],
                y=[initial_equity, initial_equity],
                mode="lines",
                name="initial equity",
                line={"color": "#94a3b8", "width": 1, "dash": "dash"},
                hoverinfo="skip",
            ),
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=-dd_shown,
            mode="lines",
            name="drawdown",
            fill="tozeroy",
            line={"color": _RED, "width": 1},
            fillcolor="rgba(217, 48, 37, 0.18)",
            hovertemplate="%{x|%Y-%m-%d %H:%M} UTC<br>drawdown %{y:.2f} %<extra></extra>",
        ),
        row=2,
        col=1,
    )
    fig.update_layout(**_base_layout(480))
    fig.update_xaxes(showgrid=True, gridcolor="#eef2f7")
    fig.update_xaxes(title_text="time (UTC)", row=2, col=1)
    fig.update_yaxes(showgrid=True, gridcolor="#eef2f7")
    fig.update_yaxes(title_text="equity", tickformat=",.2f", row=1, col=1)
    fig.update_yaxes(title_text="drawdown %", ticksuffix=" %", row=2, col=1)
    return fig


def _levels_figure(per_level_profit: Mapping[float, float]) -> go.Figure:
    items = sorted((float(k), float(v)) for k, v in per_level_profit.items())
    labels = [_fmt_price(k) for k, _ in items]
    values = [v for _, v in items]
    colors = [_GREEN if v > 0 else (_RED if v < 0 else "#94a3b8") for v in values]
    fig = go.Figure(
        go.Bar(
            x=values,
            y=labels,
            orientation="h",
            marker={"color": colors},
            hovertemplate="level %{y}<br>profit %{x:,.4f}<extra></extra>",
            name="profit",
        )
    )
    height = int(min(900, max(320, 60 + 18 * len(items))))
    layout = _base_layout(height)
    layout["showlegend"] = False
    layout["margin"] = {"l": 90, "r": 24, "t": 16, "b": 40}
    fig.update_layout(**layout)
    fig.update_yaxes(type="category", title_text="grid level (price)")
    fig.update_xaxes(title_text="net profit (quote)", tickformat=",~r", zeroline=True, zerolinecolor="#64748b")
    return fig


# --------------------------------------------------------------------------------------------- HTML

_CSS = """
:root { --fg:#1f2937; --muted:#64748b; --line:#e5e7eb; --bg:#f5f7fa; --card:#ffffff;
        --green:#0f9d58; --red:#d93025; --accent:#2563eb; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg);
       font: 14px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
.page { max-width: 1320px; margin: 0 auto; padding: 28px 28px 48px; }
header h1 { margin: 0 0 4px; font-size: 24px; font-weight: 650; letter-spacing: -0.01em; }
header .sub { margin: 0; color: var(--muted); }
.cards { display:grid; grid-template-columns: repeat(auto-fit, minmax(136px, 1fr)); gap: 12px; margin: 20px 0; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:12px 14px; }
.card .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.card .value { font-size:20px; font-weight:600; font-variant-numeric: tabular-nums; margin-top:2px;
               white-space:nowrap; }
.card .hint { color:var(--muted); font-size:11.5px; }
.pos { color: var(--green); } .neg { color: var(--red); }
.panel { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:16px 18px;
         margin-bottom:16px; }
.panel h2 { margin:0 0 4px; font-size:16px; font-weight:600; }
.panel .note { margin:0 0 8px; color:var(--muted); font-size:12.5px; }
.row { display:grid; grid-template-columns: minmax(300px, 2fr) 3fr; gap:16px; align-items:stretch;
       margin-bottom:16px; }
.row .panel { margin-bottom:0; }
@media (max-width: 900px) { .row { grid-template-columns: 1fr; } }
table.metrics { width:100%; border-collapse:collapse; font-variant-numeric: tabular-nums; }
table.metrics th, table.metrics td { padding:7px 8px; border-bottom:1px solid var(--line); text-align:left; }
table.metrics td.num { text-align:right; font-weight:600; white-space:nowrap; }
table.metrics tr:last-child th, table.metrics tr:last-child td { border-bottom:none; }
table.metrics th { font-weight:500; }
table.metrics th code { display:block; color:var(--muted); font-size:11px; font-weight:400; }
pre { margin:0; padding:12px 14px; background:#f8fafc; border:1px solid var(--line); border-radius:8px;
      overflow:auto; font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; max-height:520px; }
.empty { color:var(--muted); font-style:italic; padding:24px 0; }
dl.facts { display:grid; grid-template-columns: max-content 1fr; gap:4px 16px; margin:0 0 10px; }
dl.facts dt { color:var(--muted); } dl.facts dd { margin:0; font-variant-numeric: tabular-nums; }
footer { color:var(--muted); font-size:12px; margin-top:20px; text-align:center; }
"""

_CARD_LABELS = {"annualized_return_pct": "Annualized", "sharpe": "Sharpe", "max_drawdown_pct": "Max drawdown"}

_CARD_KEYS = (
    "total_return_pct",
    "annualized_return_pct",
    "max_drawdown_pct",
    "sharpe",
    "win_rate",
    "round_trips",
    "profit_factor",
    "time_in_range_pct",
)


def _fig_html(fig: go.Figure, div_id: str, include_js: bool) -> str:
    return str(
        pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs=include_js,
            config=_PLOT_CONFIG,
            div_id=div_id,
            default_height=f"{fig.layout.height}px",
        )
    )


def _panel(title: str, body: str, note: str = "") -> str:
    note_html = f'<p class="note">{_esc(note)}</p>' if note else ""
    return f'<section class="panel"><h2>{_esc(title)}</h2>{note_html}{body}</section>'


def _metrics_table(metrics: Mapping[str, Any]) -> str:
    keys = [k for k in METRIC_LABELS if k in metrics] + [k for k in metrics if k not in METRIC_LABELS]
    rows = []
    for key in keys:
        label = METRIC_LABELS.get(key, key.replace("_", " ").capitalize())
        value = metrics[key]
        cls = _metric_class(key, value)
        rows.append(
            f"<tr><th>{_esc(label)}<code>{_esc(key)}</code></th>"
            f'<td class="num {cls}">{_esc(format_metric(key, value))}</td></tr>'
        )
    if not rows:
        return '<p class="empty">no metrics</p>'
    return f'<table class="metrics"><tbody>{"".join(rows)}</tbody></table>'


def _cards(metrics: Mapping[str, Any]) -> str:
    cards = []
    for key in _CARD_KEYS:
        if key not in metrics:
            continue
        value = metrics[key]
        cls = _metric_class(key, value)
        if value is None:  # short value in the card, the explanation as a hint below
            text, hint = "n/a", _NONE_TEXT.get(key, "").removeprefix("n/a").strip(" ()")
        else:
            text, hint = format_metric(key, value), ""
        hint_html = f'<div class="hint">{_esc(hint)}</div>' if hint else ""
        cards.append(
            f'<div class="card"><div class="label">{_esc(_CARD_LABELS.get(key, METRIC_LABELS[key]))}</div>'
            f'<div class="value {cls}">{_esc(text)}</div>{hint_html}</div>'
        )
    return f'<section class="cards">{"".join(cards)}</section>' if cards else ""


def _fills_summary(fills: Sequence[Mapping[str, Any]]) -> str:
    buys = sum(1 for f in fills if str(getattr(f["side"], "value", f["side"])).lower() == "buy")
    sells = len(fills) - buys
    fees = sum(_to_float(f.get("fee", 0.0)) for f in fills)
    return f"{len(fills):,} ({buys:,} buys, {sells:,} sells), fees {_fmt_generic(fees)}"


def write_report(
    path: str | Path,
    *,
    title: str,
    candles: Candles,
    levels: list[float],
    fills: list[dict[str, Any]],
    equity: list[tuple[int, float]],
    metrics: dict[str, Any],
    per_level_profit: dict[float, float],
    config: dict[str, Any],
) -> None:
    """Write a self-contained HTML backtest report to ``path`` (parent directories are created).

    ``candles`` are the backtested candles (drawn as a candlestick chart, time-bucketed to at most
    :data:`MAX_CANDLE_BARS` bars), ``levels`` the grid prices (horizontal lines), ``fills`` dicts with keys
    ``timestamp`` (ms), ``side`` (``"buy"``/``"sell"``), ``price``, ``amount``, ``fee`` (markers: green
    triangle-up buys, red triangle-down sells), ``equity`` ``(timestamp_ms, equity)`` points (equity curve and
    drawdown subplot), ``metrics`` the dict of :func:`gridfleet.backtest.metrics.compute_metrics` (any extra
    keys are shown too), ``per_level_profit`` net profit per grid level price (bar chart), ``config`` the run
    configuration (shown as pretty JSON). plotly.js is embedded once, so the file opens offline.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    level_list = [_to_float(v) for v in levels]
    fill_list = list(fills)

    sections: list[str] = []
    js_done = False

    def chart(fig: go.Figure, div_id: str) -> str:
        nonlocal js_done
        html_text = _fig_html(fig, div_id, include_js=not js_done)
        js_done = True
        return html_text

    if len(candles):
        price_fig, note = _price_figure(candles, level_list, fill_list)
        sections.append(_panel("Price, grid levels and fills", chart(price_fig, "chart-price"), note))
    else:
        sections.append(_panel("Price, grid levels and fills", '<p class="empty">no candles</p>'))

    init = metrics.get("initial_equity")
    if equity:
        eq_fig = _equity_figure(equity, float(init) if init is not None else None)
        eq_note = "drawdown = % below the running equity peak"
        if len(equity) > MAX_EQUITY_POINTS:
            eq_note += f"; {len(equity):,} points resampled to at most {MAX_EQUITY_POINTS:,}"
        sections.append(_panel("Equity and drawdown", chart(eq_fig, "chart-equity"), eq_note))
    else:
        sections.append(_panel("Equity and drawdown", '<p class="empty">no equity data</p>'))

    if per_level_profit:
        lv_body = chart(_levels_figure(per_level_profit), "chart-levels")
        total = sum(float(v) for v in per_level_profit.values())
        lv_note = f"{len(per_level_profit):,} levels, total {_fmt_generic(total)}"
    else:
        lv_body, lv_note = '<p class="empty">no closed round trips</p>', ""
    row = (
        '<div class="row">'
        + _panel("Metrics", _metrics_table(metrics))
        + _panel("Profit per grid level", lv_body, lv_note)
        + "</div>"
    )

    if len(candles):
        facts = [
            ("Period", f"{format_ms(candles.start_ms)} .. {format_ms(candles.end_ms)} UTC"),
            ("Candles", f"{len(candles):,} × {_tf_label(candles.timeframe_ms)}"),
            ("Price range", f"{_fmt_price(float(candles.low.min()))} .. {_fmt_price(float(candles.high.max()))}"),
        ]
    else:
        facts = [("Candles", "0")]
    facts.append(("Fills", _fills_summary(fill_list)))
    if level_list:
        facts.append(
            ("Grid", f"{len(level_list):,} levels, {_fmt_price(min(level_list))} .. {_fmt_price(max(level_list))}")
        )
    facts_html = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in facts)
    gaps_text = describe_gaps(candles) if len(candles) else "no candles"
    data_body = f'<dl class="facts">{facts_html}</dl><pre>{_esc(gaps_text)}</pre>'

    config_json = json.dumps(config, indent=2, default=_json_default, ensure_ascii=False)

    if len(candles):
        subtitle = (
            f"{format_ms(candles.start_ms)} → {format_ms(candles.end_ms)} UTC · "
            f"{len(candles):,} {_tf_label(candles.timeframe_ms)} candles · "
            f"{len(fill_list):,} fills · {len(level_list):,} grid levels"
        )
    else:
        subtitle = "no candles"
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")

    doc = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="gridfleet">
<title>{_esc(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<main class="page">
<header><h1>{_esc(title)}</h1><p class="sub">{_esc(subtitle)}</p></header>
{_cards(metrics)}
{sections[0]}
{sections[1]}
{row}
{_panel("Data", data_body)}
{_panel("Configuration", f"<pre>{_esc(config_json)}</pre>")}
<footer>Generated by gridfleet on {_esc(generated)} · self-contained report, no network needed</footer>
</main>
</body>
</html>
"""
    out.write_text(doc, encoding="utf-8")
