"""Compiled (numba) plain-grid backtest kernel for fast parameter sweeps.

The kernel reproduces the plain-grid semantics of the engine and the golden cases in float64:

- Levels ``k = 0..n-1``: arithmetic ``lower + k·(upper−lower)/(n−1)``, geometric
  ``lower·(upper/lower)^(k/(n−1))``; the end levels are exactly ``lower`` and ``upper`` (as in the engine).
- ``P0`` is the first candle's open. The level nearest ``P0`` (the lower one on a tie) stays empty; a buy
  limit rests at every level below it and a sell limit at every level above it, each for ``qty`` base. The
  base for the sells is bought at ``P0·(1+slippage)`` with one market order paying the taker fee.
- Every interval between two adjacent levels holds exactly one order, so the whole order book is the index
  ``e`` of the one empty level (the *gap*): buys at every level ``< e``, sells at every level ``> e``. A
  filled buy at level ``e−1`` places a sell at ``e`` (the gap moves down); a filled sell at ``e+1`` places a
  buy at ``e`` (the gap moves up).
- Each candle's price path is ``prev_close → open → (low → high if close ≥ open, else high → low) → close``.
  A resting limit fills at its own price when the path reaches or crosses it. Because every segment is
  monotonic and the current price always lies strictly between the nearest buy and the nearest sell, it is
  enough to test each path point against those two prices; fills cascade (buys highest first going down,
  sells lowest first going up) and counter-orders can fill later on the same path.
- Fees are charged in quote: notional × rate (maker for limit fills, taker for the market buy).

When no order can fill in a candle (its lowest point is above the nearest buy and its highest below the
nearest sell) the work per candle is O(1): two comparisons, the equity update and the drawdown tracking.

Public names: :func:`grid_levels`, :func:`order_qty`, :func:`run_grid_kernel` (one run),
:func:`sweep_kernel` (many runs in parallel), :data:`RESULT_COLUMNS`, :func:`run_sweep` (Python wrapper) and
:func:`expand_param_grid` (parameter-grid parsing).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import numba
import numpy as np
from numba import prange

__all__ = [
    "GRID_TYPES",
    "RESULT_COLUMNS",
    "expand_param_grid",
    "grid_levels",
    "order_qty",
    "run_grid_kernel",
    "run_sweep",
    "sweep_kernel",
]

GRID_TYPES: tuple[str, ...] = ("arithmetic", "geometric")
"""Grid spacings the kernel supports."""

RESULT_COLUMNS: tuple[str, ...] = (
    "buy_fills",
    "sell_fills",
    "final_quote",
    "final_base",
    "fees_paid",
    "grid_profit",
    "max_drawdown_pct",
    "final_equity",
    "time_in_range",
    "empty_level_index",
    "initial_market_buy_base",
    "qty",
    "total_return_pct",
)
"""Column order of the 2D array returned by :func:`sweep_kernel` (one row per combo).

The first eleven columns are, in order, the eleven values returned by :func:`run_grid_kernel`; ``qty`` is the
order size used and ``total_return_pct`` is ``(final_equity / investment − 1) × 100``. Counts are stored as
float64 (they are exact integers).
"""

_N_COLS = 13
_INT_COLUMNS = frozenset({"buy_fills", "sell_fills", "time_in_range", "empty_level_index"})
_COMBO_KEYS = ("type", "lower", "upper", "levels")


# ------------------------------------------------------------------------------------------ levels


def grid_levels(kind: str, lower: float, upper: float, n: int) -> np.ndarray:
    """Return the ``n`` level prices of a grid as a float64 array.

    ``kind`` is ``"arithmetic"`` (``lower + k·(upper−lower)/(n−1)``) or ``"geometric"``
    (``lower·(upper/lower)^(k/(n−1))``). The formulas are evaluated with Python floats (so results do not
    depend on numpy's vectorised ``pow``) and the end levels are pinned to exactly ``lower`` and ``upper``.
    Raises ``ValueError`` for an unknown kind, ``n < 2``, ``lower <= 0`` or ``lower >= upper``.
    """
    lower = float(lower)
    upper = float(upper)
    if kind not in GRID_TYPES:
        raise ValueError(f"grid type: expected one of {GRID_TYPES}, got {kind!r}")
    if isinstance(n, bool) or int(n) != n or n < 2:
        raise ValueError(f"levels: need an integer >= 2, got {n!r}")
    n = int(n)
    if not (lower > 0.0):
        raise ValueError(f"lower: must be > 0, got {lower!r}")
    if not (lower < upper):
        raise ValueError(f"lower ({lower!r}) must be below upper ({upper!r})")
    if kind == "arithmetic":
        span = upper - lower
        prices = [lower + k * span / (n - 1) for k in range(n)]
    else:
        ratio = upper / lower
        prices = [lower * ratio ** (k / (n - 1)) for k in range(n)]
    prices[0] = lower
    prices[-1] = upper
    return np.array(prices, dtype=np.float64)


# ----------------------------------------------------------------------------------------- kernels


@numba.njit(cache=True, nogil=True)
def _nearest_level(levels: np.ndarray, price: float) -> int:
    """Index of the level nearest ``price`` (the lower index on a tie)."""
    best = 0
    best_dist = abs(levels[0] - price)
    for k in range(1, levels.shape[0]):
        d = abs(levels[k] - price)
        if d < best_dist:
            best = k
            best_dist = d
    return best


@numba.njit(cache=True, nogil=True)
def order_qty(levels: np.ndarray, start_price: float, investment: float, step: float) -> float:
    """Return the base quantity per order that spends ``investment`` on one order per interval.

    ``q = investment / (Σ buy-level prices + start_price · number of sell levels)``, rounded down to
    ``step`` (no rounding when ``step <= 0``). The buy levels are those below the level nearest
    ``start_price``, the sell levels those above it. A tolerance of ``max(1e-9, 1e-12·q/step)`` steps absorbs
    the binary representation error of decimal step sizes (a quotient that is a whole number of steps stays
    one), and for steps of the form ``1/integer`` (``1e-5``…) the result is ``k / (1/step)``, the float
    nearest the decimal value. The result can be 0 when the investment is smaller than one step per interval.
    """
    n = levels.shape[0]
    gap = _nearest_level(levels, start_price)
    denominator = 0.0
    for k in range(gap):
        denominator += levels[k]
    denominator += start_price * (n - 1 - gap)
    q = investment / denominator
    if step > 0.0:
        x = q / step
        k_steps = np.floor(x + max(1e-9, 1e-12 * x))
        inv = 1.0 / step
        inv_round = np.floor(inv + 0.5)
        exact_inverse = inv_round >= 1.0 and abs(inv - inv_round) <= 1e-9 * inv_round
        q = k_steps / inv_round if exact_inverse else k_steps * step
    return float(q)


@numba.njit(cache=True, nogil=True)
def _path_bounds(open_: np.ndarray, high: np.ndarray, low: np.ndarray,
                 close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per candle, the lowest and highest of open/high/low/close (robust to inconsistent candles)."""
    n_candles = open_.shape[0]
    pmin = np.empty(n_candles, dtype=np.float64)
    pmax = np.empty(n_candles, dtype=np.float64)
    for i in range(n_candles):
        lo = min(low[i], open_[i], close[i], high[i])
        hi = max(high[i], open_[i], close[i], low[i])
        pmin[i] = lo
        pmax[i] = hi
    return pmin, pmax


@numba.njit(cache=True, nogil=True)
def _simulate(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
              pmin: np.ndarray, pmax: np.ndarray, levels: np.ndarray, qty: float, investment: float,
              maker: float, taker: float, slippage: float
              ) -> tuple[int, int, float, float, float, float, float, float, int, int, float]:
    """One plain-grid run; ``pmin``/``pmax`` are the per-candle path bounds from :func:`_path_bounds`."""
    n_candles = open_.shape[0]
    n = levels.shape[0]
    lower = levels[0]
    upper = levels[n - 1]

    # lv[k + 1] = level k; lv[0] = -inf and lv[n + 1] = +inf stand for "no buy" / "no sell" so that the
    # nearest buy (level e-1) is always lv[e] and the nearest sell (level e+1) is always lv[e + 2].
    lv = np.empty(n + 2, dtype=np.float64)
    lv[0] = -np.inf
    for k in range(n):
        lv[k + 1] = levels[k]
    lv[n + 1] = np.inf

    p0 = open_[0]
    e = _nearest_level(levels, p0)
    e0 = e
    base0 = qty * (n - 1 - e)
    notional = base0 * (p0 * (1.0 + slippage))
    fee = notional * taker
    quote = investment - (notional + fee)
    fees = fee

    buys = 0
    sells = 0
    profit = 0.0
    in_range = 0
    peak = investment
    mdd = 0.0
    base = base0
    buy_px = lv[e]
    sell_px = lv[e + 2]

    for i in range(n_candles):
        if (pmin[i] <= buy_px) | (pmax[i] >= sell_px):
            o = open_[i]
            c = close[i]
            if c >= o:
                p2 = low[i]
                p3 = high[i]
            else:
                p2 = high[i]
                p3 = low[i]
            for j in range(4):
                if j == 0:
                    p = o
                elif j == 1:
                    p = p2
                elif j == 2:
                    p = p3
                else:
                    p = c
                while p <= buy_px:
                    notional = buy_px * qty
                    fee = notional * maker
                    quote -= notional + fee
                    fees += fee
                    buys += 1
                    e -= 1
                    buy_px = lv[e]
                    sell_px = lv[e + 2]
                while p >= sell_px:
                    notional = sell_px * qty
                    fee = notional * maker
                    quote += notional - fee
                    fees += fee
                    profit += (sell_px - lv[e + 1]) * qty
                    sells += 1
                    e += 1
                    buy_px = lv[e]
                    sell_px = lv[e + 2]
            base = qty * (n - 1 - e)
        c = close[i]
        eq = quote + base * c
        if eq > peak:
            peak = eq
        elif peak - eq > mdd * peak:
            mdd = max(mdd, (peak - eq) / peak)
        in_range += (c >= lower) & (c <= upper)

    final_equity = quote + base * close[n_candles - 1]
    return (buys, sells, quote, base, fees, profit, mdd * 100.0, final_equity, in_range, e0, base0)


@numba.njit(cache=True, nogil=True)
def run_grid_kernel(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
                    levels: np.ndarray, qty: float, investment: float, maker: float, taker: float,
                    slippage: float
                    ) -> tuple[int, int, float, float, float, float, float, float, int, int, float]:
    """Run one plain-grid backtest over float64 candle arrays and a sorted float64 ``levels`` array.

    Returns ``(buy_fills, sell_fills, final_quote, final_base, fees_paid, grid_profit, max_drawdown_pct,
    final_equity, time_in_range, empty_level_index, initial_market_buy_base)``:

    - ``grid_profit``: Σ over sell fills of ``(sell price − level below) × qty`` (gross, before fees);
    - ``max_drawdown_pct``: largest fall from a running peak of equity ``quote + base × close`` sampled at
      every candle close, the first peak being ``investment``;
    - ``final_equity``: ``quote + base × last close``;
    - ``time_in_range``: number of candles whose close lies within ``[levels[0], levels[-1]]``;
    - ``empty_level_index``: the initial gap (level nearest the first open);
    - ``initial_market_buy_base``: base bought at the start, ``qty × number of sell levels``.

    The arrays must be non-empty and of equal length; no validation is done here (see :func:`run_sweep`).
    """
    pmin, pmax = _path_bounds(open_, high, low, close)
    return _simulate(open_, high, low, close, pmin, pmax, levels, qty, investment, maker, taker, slippage)


@numba.njit(parallel=True, cache=True)
def sweep_kernel(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
                 levels2d: np.ndarray, n_levels: np.ndarray, qtys: np.ndarray, investment: float,
                 maker: float, taker: float, slippage: float) -> np.ndarray:
    """Run many plain-grid backtests on the same candles in parallel (one ``prange`` iteration per combo).

    ``levels2d[r, :n_levels[r]]`` holds the sorted levels of combo ``r`` (the rest of the row is padding and
    ignored); ``qtys[r]`` its order size. Returns a ``(combos, len(RESULT_COLUMNS))`` float64 array whose
    columns follow :data:`RESULT_COLUMNS`. Each row equals what :func:`run_grid_kernel` returns for the same
    inputs, bit for bit.
    """
    n_combos = levels2d.shape[0]
    out = np.empty((n_combos, _N_COLS), dtype=np.float64)
    pmin, pmax = _path_bounds(open_, high, low, close)
    for r in prange(n_combos):
        n = n_levels[r]
        levels = levels2d[r, :n]
        res = _simulate(open_, high, low, close, pmin, pmax, levels, qtys[r], investment, maker, taker,
                        slippage)
        out[r, 0] = res[0]
        out[r, 1] = res[1]
        out[r, 2] = res[2]
        out[r, 3] = res[3]
        out[r, 4] = res[4]
        out[r, 5] = res[5]
        out[r, 6] = res[6]
        out[r, 7] = res[7]
        out[r, 8] = res[8]
        out[r, 9] = res[9]
        out[r, 10] = res[10]
        out[r, 11] = qtys[r]
        out[r, 12] = (res[7] / investment - 1.0) * 100.0
    return out


# ----------------------------------------------------------------------------------------- wrapper


def _as_candles(name: str, values: Any) -> np.ndarray:
    arr = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    return arr


def _combo_levels(combo: Mapping[str, Any]) -> np.ndarray:
    """Validate one combo and return its levels; ValueError messages name the combo."""
    missing = [k for k in ("lower", "upper", "levels") if k not in combo]
    if missing:
        raise ValueError(f"combo {dict(combo)!r}: missing {', '.join(missing)}")
    kind = combo.get("type", "arithmetic")
    try:
        lower = float(combo["lower"])
        upper = float(combo["upper"])
    except (TypeError, ValueError):
        raise ValueError(f"combo {dict(combo)!r}: lower and upper must be numbers") from None
    n = combo["levels"]
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise ValueError(f"combo {dict(combo)!r}: levels must be an integer, got {n!r}")
    if kind not in GRID_TYPES:
        raise ValueError(f"combo {dict(combo)!r}: type must be one of {GRID_TYPES}, got {kind!r}")
    if not (math.isfinite(lower) and math.isfinite(upper)):
        raise ValueError(f"combo {dict(combo)!r}: lower and upper must be finite")
    if lower <= 0:
        raise ValueError(f"combo {dict(combo)!r}: lower must be > 0")
    if lower >= upper:
        raise ValueError(f"combo {dict(combo)!r}: lower must be below upper")
    if n < 2:
        raise ValueError(f"combo {dict(combo)!r}: levels must be >= 2")
    return grid_levels(kind, lower, upper, int(n))


def run_sweep(open: Any, high: Any, low: Any, close: Any, combos: Sequence[Mapping[str, Any]], *,
              qty: float | None, investment: float, maker: float, taker: float, slippage: float = 0.0,
              step: float = 0.0) -> list[dict[str, Any]]:
    """Backtest every grid in ``combos`` on the same candles and return one result dict per combo.

    ``open``/``high``/``low``/``close`` are equal-length 1-D sequences (numpy arrays, pandas Series…).
    Each combo is ``{"type": "arithmetic"|"geometric", "lower": float, "upper": float, "levels": int}``
    (``type`` defaults to arithmetic). ``qty`` is the base size of every order; when it is ``None`` it is
    derived per combo from ``investment`` with :func:`order_qty` (rounded down to ``step``). Fee rates are
    fractions; ``slippage`` applies to the initial market buy.

    Each result dict holds the combo's keys, then every name in :data:`RESULT_COLUMNS` (counts as ``int``),
    i.e. the metrics of :func:`run_grid_kernel` plus ``qty`` and ``total_return_pct``.
    Raises ``ValueError`` for invalid candles, parameters or combos (the message names the offending combo).
    """
    arrays = [_as_candles(name, v) for name, v in (("open", open), ("high", high), ("low", low),
                                                     ("close", close))]
    n_candles = arrays[0].shape[0]
    if n_candles == 0:
        raise ValueError("candles: need at least one candle")
    if any(a.shape[0] != n_candles for a in arrays):
        raise ValueError(f"candles: open/high/low/close lengths differ: {[a.shape[0] for a in arrays]}")
    if not all(np.isfinite(a).all() for a in arrays):
        raise ValueError("candles: prices must be finite (no NaN or inf)")
    if not (investment > 0 and math.isfinite(investment)):
        raise ValueError(f"investment: must be a positive finite number, got {investment!r}")
    for name, rate in (("maker", maker), ("taker", taker)):
        if not (0 <= rate < 1):
            raise ValueError(f"{name}: fee rate must be in [0, 1), got {rate!r}")
    if not (0 <= slippage < 1):
        raise ValueError(f"slippage: must be in [0, 1), got {slippage!r}")
    if not (step >= 0 and math.isfinite(step)):
        raise ValueError(f"step: must be >= 0, got {step!r}")
    if qty is not None and not (qty > 0 and math.isfinite(qty)):
        raise ValueError(f"qty: must be a positive finite number or None, got {qty!r}")
    if len(combos) == 0:
        return []

    all_levels = [_combo_levels(c) for c in combos]
    width = max(lv.shape[0] for lv in all_levels)
    levels2d = np.zeros((len(combos), width), dtype=np.float64)
    n_levels = np.empty(len(combos), dtype=np.int64)
    qtys = np.empty(len(combos), dtype=np.float64)
    p0 = float(arrays[0][0])
    for r, (combo, lv) in enumerate(zip(combos, all_levels, strict=True)):
        levels2d[r, : lv.shape[0]] = lv
        n_levels[r] = lv.shape[0]
        if qty is None:
            q = float(order_qty(lv, p0, float(investment), float(step)))
            if not q > 0:
                raise ValueError(f"combo {dict(combo)!r}: investment {investment!r} is too small for one "
                                 f"order per interval at step {step!r}")
            qtys[r] = q
        else:
            qtys[r] = float(qty)

    table = sweep_kernel(arrays[0], arrays[1], arrays[2], arrays[3], levels2d, n_levels, qtys,
                         float(investment), float(maker), float(taker), float(slippage))
    results: list[dict[str, Any]] = []
    for combo, row in zip(combos, table, strict=True):
        res: dict[str, Any] = dict(combo)
        for name, value in zip(RESULT_COLUMNS, row.tolist(), strict=True):
            res[name] = int(value) if name in _INT_COLUMNS else value
        results.append(res)
    return results


# --------------------------------------------------------------------------------------- grid spec


def _parse_number(key: str, text: str, as_int: bool) -> Decimal | int:
    text = text.strip()
    try:
        if as_int:
            return int(text)
        value = Decimal(text)
    except (ValueError, InvalidOperation):
        kind = "an integer" if as_int else "a number"
        raise ValueError(f"{key}: expected {kind}, got {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"{key}: expected a finite number, got {text!r}")
    return value


def _expand_value(key: str, value: Any) -> list[Any]:
    if key == "type":
        items = [s.strip() for s in value.split(",")] if isinstance(value, str) else list(value)
        if not items:
            raise ValueError("type: empty list")
        for item in items:
            if item not in GRID_TYPES:
                raise ValueError(f"type: expected one of {GRID_TYPES}, got {item!r}")
        return items
    as_int = key == "levels"
    if isinstance(value, bool):
        raise ValueError(f"{key}: expected a number, got {value!r}")
    if isinstance(value, int | float | np.integer | np.floating):
        value = [value]
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError(f"{key}: empty value")
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError(f"{key}: a range is start:stop:step, got {text!r}")
            start, stop, stride = (_parse_number(key, p, as_int) for p in parts)
            if stride <= 0:
                raise ValueError(f"{key}: range step must be > 0, got {text!r}")
            if stop < start:
                raise ValueError(f"{key}: range stop is below start in {text!r}")
            count = int((stop - start) // stride) + 1
            raw: list[Any] = [start + i * stride for i in range(count)]
        else:
            raw = [_parse_number(key, p, as_int) for p in text.split(",")]
    else:
        raw = []
        for item in value:
            if isinstance(item, bool):
                raise ValueError(f"{key}: expected a number, got {item!r}")
            if isinstance(item, str):
                raw.append(_parse_number(key, item, as_int))
            elif as_int:
                if int(item) != item:
                    raise ValueError(f"{key}: expected an integer, got {item!r}")
                raw.append(int(item))
            else:
                raw.append(item)
        if not raw:
            raise ValueError(f"{key}: empty list")
    if as_int:
        return [int(v) for v in raw]
    return [float(v) for v in raw]


def expand_param_grid(spec: Mapping[str, str | Sequence[Any] | float | int]) -> list[dict[str, Any]]:
    """Expand a sweep specification into the cartesian product of its values, as combo dicts.

    Keys are ``type`` (optional, default ``"arithmetic"``), ``lower``, ``upper`` and ``levels``. A value is:

    - a range ``"start:stop:step"``: ``start, start+step, …`` up to and including ``stop`` when ``stop`` is
      on the step (``"10:100:5"`` → 10, 15, …, 100); integers for ``levels``, decimal numbers for prices
      (computed exactly in decimal, so ``"0.1:0.3:0.1"`` gives 0.1, 0.2, 0.3);
    - a comma list ``"100000,105000"`` (for ``type``: ``"arithmetic,geometric"``);
    - a list of values or a single number.

    Combos are ordered like ``itertools.product`` over the keys in the spec's order. Combos are not checked
    for ``lower < upper`` here; :func:`run_sweep` rejects invalid ones. Raises ``ValueError`` for unknown or
    missing keys and malformed values.
    """
    unknown = [k for k in spec if k not in _COMBO_KEYS]
    if unknown:
        raise ValueError(f"sweep spec: unknown key(s) {unknown}; expected {list(_COMBO_KEYS)}")
    missing = [k for k in ("lower", "upper", "levels") if k not in spec]
    if missing:
        raise ValueError(f"sweep spec: missing key(s) {missing}")
    keys = list(spec)
    if "type" not in spec:
        keys.insert(0, "type")
    values = [_expand_value(k, spec[k]) if k in spec else ["arithmetic"] for k in keys]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]
