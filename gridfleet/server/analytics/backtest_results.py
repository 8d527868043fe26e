"""The stored result of a backtest job: the backtest's JSON plus its fills (bounded) for the chart.

``summary`` (what :meth:`BacktestResult.to_json` gives: figures, a ≤2,000-point ``equity_curve`` of
``[ts_ms, equity]``, ``levels``, ``per_level_profit``) gets:

* ``fills``: at most :data:`MAX_FILLS` fills ``{timestamp, side, price, amount, fee, fee_currency, level, tag}``
  (decimal strings); when there were more, an even sample by position that keeps the first and the last;
* ``fills_total`` and ``fills_truncated``;
* ``events``: at most :data:`MAX_EVENTS` risk/strategy events ``[ts_ms, kind, message]`` (the first ones).
"""

from __future__ import annotations

from typing import Any

MAX_FILLS = 2000
MAX_EVENTS = 200
FILL_FIELDS = ("timestamp", "side", "price", "amount", "fee", "fee_currency", "level", "tag")


def sample_indices(n: int, cap: int) -> list[int]:
    """Return at most ``cap`` indices of ``range(n)``, evenly spread, first and last included."""
    if n <= cap:
        return list(range(n))
    if cap <= 1:
        return [n - 1][:cap]
    step = (n - 1) / (cap - 1)
    return sorted({round(i * step) for i in range(cap)})


def result_document(result: Any) -> dict[str, Any]:
    """Return the JSON stored as a job's ``summary`` (see the module doc)."""
    out: dict[str, Any] = result.to_json()
    rows = result.fill_rows()
    out["fills_total"] = len(rows)
    out["fills_truncated"] = len(rows) > MAX_FILLS
    out["fills"] = [{k: rows[i][k] for k in FILL_FIELDS} for i in sample_indices(len(rows), MAX_FILLS)]
    out["events"] = [[int(t), kind, message] for t, kind, message in list(result.events)[:MAX_EVENTS]]
    return out
