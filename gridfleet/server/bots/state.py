"""A bot's live state for its detail page: status, price, open orders, layers, position, PnL, per-level profit.

Two sources, named in the answer's ``source``:

* ``runtime``: the bot runs in this process (``gridfleet serve``): layers (side, state RESTING / WAITING / ARMED /
  SUSPENDED, the price that arms a trailing layer and the rebound/pullback price that fires it), position and
  PnL come from the running strategy, read on the bots' event loop (a consistent snapshot), and per-level profit
  from its matched buy/sell round trips;
* ``database``: the bot runs elsewhere (a Celery worker) or not at all: open orders, fills and the latest equity
  snapshot. Layers are the config's intervals, ``resting`` where an open order sits and ``null`` (unknown)
  otherwise; per-level profit pairs each layer's sells with its buys (client ids carry the layer), the base
  bought at the start standing in for layers that sold before they bought.

Open orders always come from the database (the runtime records every order before sending it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from rest_framework import serializers

from gridfleet.engine.types import Side
from gridfleet.server.analytics.compute import book_fills, split_symbol
from gridfleet.server.bots.models import Bot
from gridfleet.server.trading.exports import decimal_str
from gridfleet.server.trading.models import EquitySnapshot, Fill, Order

ZERO = Decimal(0)
LIVE_ORDER_STATUSES = ("pending", "open", "partially_filled", "cancel_requested")
RUNTIME_TIMEOUT_S = 5.0


def _s(value: Decimal | None) -> str | None:
    return None if value is None else decimal_str(value)


def _level_prices(config: dict[str, Any]) -> list[Decimal]:
    from gridfleet.engine.config import GridConfig
    from gridfleet.engine.levels import level_prices

    try:
        return level_prices(GridConfig.model_validate(config).grid)
    except Exception:  # a config of another strategy: no levels
        return []


def _open_orders(bot: Bot, prices: list[Decimal]) -> list[dict[str, Any]]:
    index = {p: i for i, p in enumerate(prices)}
    out = []
    for o in Order.objects.filter(bot=bot, status__in=LIVE_ORDER_STATUSES).order_by("-price", "id"):
        price = o.price.normalize() if o.price is not None else None
        level = next((i for p, i in index.items() if price is not None and p == price), None)
        if level is None and o.level is not None and o.tag == "grid" and prices:  # prices not on the tick grid
            level = o.level if o.side == "buy" else o.level + 1
        out.append({"client_id": o.client_id, "side": o.side, "type": o.type, "price": _s(o.price),
                    "amount": _s(o.amount), "filled": _s(o.filled), "status": o.status, "layer": o.level,
                    "level": level, "tag": o.tag})
    return out


def per_level_from_fills(runtime_id: str, fills: Iterable[Fill], base: str, quote: str,
                         prices: list[Decimal]) -> list[dict[str, Any]]:
    """Realised profit per layer from a bot's fills (client ids ``<runtime id>-<layer>-<cycle><b|s>``)."""
    pattern = re.compile(rf"^{re.escape(runtime_id)}-(\d+)-\d+([bs])$")
    held: dict[int, Decimal] = {}
    cost: dict[int, Decimal] = {}
    profit: dict[int, Decimal] = {}
    trips: dict[int, int] = {}
    reserve, reserve_cost = ZERO, ZERO
    for f in fills:
        fee_base = f.fee if f.fee_currency.upper() == base else ZERO
        fee_quote = f.fee if f.fee_currency.upper() == quote else ZERO
        match = pattern.match(f.client_id)
        layer = int(match.group(1)) if match else None
        if f.side.lower() == Side.BUY:
            amount, spent = f.amount - fee_base, f.price * f.amount + fee_quote
            if layer is None:
                reserve, reserve_cost = reserve + amount, reserve_cost + spent
            else:
                held[layer] = held.get(layer, ZERO) + amount
                cost[layer] = cost.get(layer, ZERO) + spent
            continue
        if layer is None:
            continue  # a one-off sell (risk exit, stop): not a grid round trip
        sold = f.amount + fee_base
        have = held.get(layer, ZERO)
        if have > 0:
            share = min(sold / have, Decimal(1))
            sold_cost = cost.get(layer, ZERO) * share
            held[layer], cost[layer] = have - have * share, cost.get(layer, ZERO) - sold_cost
        elif reserve > 0:  # the base bought at the start, allocated to the sell layers
            unit = reserve_cost / reserve
            take = min(sold, reserve)
            sold_cost = unit * take
            reserve, reserve_cost = reserve - take, reserve_cost - sold_cost
        else:
            sold_cost = ZERO
        profit[layer] = profit.get(layer, ZERO) + f.price * f.amount - fee_quote - sold_cost
        if f.order_complete:
            trips[layer] = trips.get(layer, 0) + 1
    return [_level_row(i, prices, trips.get(i, 0), profit[i]) for i in sorted(profit)]


def _level_row(layer: int, prices: list[Decimal], trips: int, profit: Decimal) -> dict[str, Any]:
    return {"layer": layer, "buy_price": _s(prices[layer]) if layer < len(prices) else None,
            "sell_price": _s(prices[layer + 1]) if layer + 1 < len(prices) else None,
            "round_trips": trips, "profit": decimal_str(profit)}


def _hosted_runner(bot: Bot) -> Any:
    try:
        from gridfleet.server.trading.service import get_runtime

        runtime = get_runtime()
    except RuntimeError:
        return None, None
    hosted = getattr(runtime, "hosted", None)
    runner = getattr(hosted, "runners", {}).get(bot.pk) if hosted is not None else None
    if runner is None or getattr(runner, "strategy", None) is None:
        return None, None
    return hosted, runner


async def _runtime_snapshot(runner: Any) -> dict[str, Any]:
    """Read the running strategy on its own loop (nothing changes it meanwhile)."""
    s = runner.strategy
    price = runner.price
    layers = []
    for lay in getattr(s, "layers", []):
        state = lay.state.value
        arm = trigger = None
        trailing = lay.rebound if lay.side is Side.BUY else lay.pullback
        if trailing > 0 and state == "waiting":
            arm = lay.buy_price if lay.side is Side.BUY else lay.sell_price
        elif state == "armed":
            if lay.side is Side.BUY:
                trigger = min(lay.extreme * (1 + lay.rebound), lay.sell_price)
            else:
                trigger = max(lay.extreme * (1 - lay.pullback), lay.buy_price)
        layers.append({
            "index": lay.index, "buy_price": _s(lay.buy_price), "sell_price": _s(lay.sell_price),
            "side": lay.side.value, "state": state, "qty": _s(lay.qty), "held": _s(lay.held),
            "entry_price": _s(lay.entry_price) if lay.held > 0 else None, "enabled": lay.enabled,
            "client_id": lay.client_id, "suspend_reason": lay.suspend_reason or None,
            "rebound_pct": _s(lay.rebound * 100), "pullback_pct": _s(lay.pullback * 100),
            "arm_price": _s(arm), "trigger_price": _s(trigger),
            "extreme": _s(lay.extreme) if state == "armed" else None,
        })
    p = s.portfolio
    by_layer: dict[int, tuple[int, Decimal]] = {}
    for trip in p.round_trips:
        n, total = by_layer.get(trip.level, (0, ZERO))
        by_layer[trip.level] = (n + 1, total + trip.profit)
    prices = list(getattr(s, "prices", []))
    return {
        "strategy_state": getattr(getattr(s, "state", None), "value", None), "buying": getattr(s, "buying", None),
        "price": price, "levels": prices, "layers": layers,
        "position": {"base": _s(p.base), "reserve": _s(getattr(s, "reserve", ZERO)), "cost_basis": _s(p.cost_basis),
                     "avg_entry_price": _s(p.avg_entry_price), "quote_flow": _s(p.quote_flow)},
        "pnl": {"realized": _s(p.realized_pnl), "grid_profit": _s(p.grid_profit),
                "unrealized": _s(p.unrealized_pnl(price)) if price else None,
                "fees": {k: _s(v) for k, v in sorted(p.fees.items())},
                "buy_fills": p.buy_fills, "sell_fills": p.sell_fills},
        "per_level_profit": [_level_row(i, prices, n, total) for i, (n, total) in sorted(by_layer.items())],
        "error": runner.error or None,
    }


def bot_state(bot: Bot) -> dict[str, Any]:
    """Return the state document of ``bot`` (see the module doc)."""
    base, quote = split_symbol(bot.symbol)
    out: dict[str, Any] = {"bot": bot.pk, "name": bot.name, "status": bot.status,
                           "status_message": bot.status_message, "symbol": bot.symbol, "base": base,
                           "quote": quote, "exchange": bot.exchange, "mode": bot.mode}
    hosted, runner = _hosted_runner(bot)
    snap: dict[str, Any] | None = None
    if hosted is not None:
        try:
            snap = hosted.call(_runtime_snapshot(runner), timeout=RUNTIME_TIMEOUT_S)
        except Exception:  # the loop is busy or the bot just left: answer from the database
            snap = None
    if snap is not None:
        prices = snap.pop("levels")
        out.update(source="runtime", last_price=_s(snap.pop("price")) or None, price_timestamp=None,
                   levels=[_s(p) for p in prices], **snap)
        out["open_orders"] = _open_orders(bot, prices)
        return out
    prices = _level_prices(bot.config)
    fills = list(Fill.objects.filter(bot=bot).order_by("ts", "id"))
    book = book_fills(bot.symbol, fills)
    snapshot = EquitySnapshot.objects.filter(bot=bot).order_by("-ts", "-id").first()
    price = snapshot.price if snapshot is not None else book.last_fill_price
    orders = _open_orders(bot, prices)
    resting = {o["layer"]: o for o in orders if o["layer"] is not None}
    per_level = per_level_from_fills(bot.runtime_id, fills, base, quote, prices)
    p = book.portfolio
    out.update(
        source="database", last_price=_s(price), price_timestamp=snapshot.ts if snapshot is not None else
        book.last_fill_ts, levels=[_s(x) for x in prices], strategy_state=None, buying=None,
        layers=[{"index": i, "buy_price": _s(prices[i]), "sell_price": _s(prices[i + 1]),
                 "side": resting[i]["side"] if i in resting else None,
                 "state": "resting" if i in resting else None, "qty": resting[i]["amount"] if i in resting else None,
                 "held": None, "entry_price": None, "enabled": None,
                 "client_id": resting[i]["client_id"] if i in resting else None, "suspend_reason": None,
                 "rebound_pct": None, "pullback_pct": None, "arm_price": None, "trigger_price": None,
                 "extreme": None} for i in range(max(len(prices) - 1, 0))],
        position={"base": _s(p.base), "reserve": None, "cost_basis": _s(p.cost_basis),
                  "avg_entry_price": _s(p.avg_entry_price), "quote_flow": _s(p.quote_flow)},
        pnl={"realized": _s(p.realized_pnl),
             "grid_profit": decimal_str(sum((Decimal(r["profit"]) for r in per_level), ZERO)),
             "unrealized": _s(p.unrealized_pnl(price)) if price is not None else None,
             "fees": {k: _s(v) for k, v in sorted(p.fees.items())},
             "buy_fills": p.buy_fills, "sell_fills": p.sell_fills},
        per_level_profit=per_level, error=None, open_orders=orders)
    return out


# ---------------------------------------------------------------------------------------------------- schema
class _OrderSerializer(serializers.Serializer):  # type: ignore[type-arg]
    client_id = serializers.CharField()
    side = serializers.CharField()
    type = serializers.CharField()
    price = serializers.CharField(allow_null=True)
    amount = serializers.CharField()
    filled = serializers.CharField()
    status = serializers.CharField()
    layer = serializers.IntegerField(allow_null=True)
    level = serializers.IntegerField(allow_null=True, help_text="grid level at the order's price, if any")
    tag = serializers.CharField()


class _LayerSerializer(serializers.Serializer):  # type: ignore[type-arg]
    index = serializers.IntegerField()
    buy_price = serializers.CharField()
    sell_price = serializers.CharField()
    side = serializers.CharField(allow_null=True)
    state = serializers.CharField(allow_null=True, help_text="resting, waiting, armed, suspended (null: unknown)")
    qty = serializers.CharField(allow_null=True)
    held = serializers.CharField(allow_null=True)
    entry_price = serializers.CharField(allow_null=True)
    enabled = serializers.BooleanField(allow_null=True)
    client_id = serializers.CharField(allow_null=True)
    suspend_reason = serializers.CharField(allow_null=True)
    rebound_pct = serializers.CharField(allow_null=True)
    pullback_pct = serializers.CharField(allow_null=True)
    arm_price = serializers.CharField(allow_null=True, help_text="a waiting trailing layer arms at this price")
    trigger_price = serializers.CharField(allow_null=True, help_text="an armed layer fires its order here")
    extreme = serializers.CharField(allow_null=True, help_text="low (buy) or high (sell) tracked while armed")


class _PerLevelSerializer(serializers.Serializer):  # type: ignore[type-arg]
    layer = serializers.IntegerField()
    buy_price = serializers.CharField(allow_null=True)
    sell_price = serializers.CharField(allow_null=True)
    round_trips = serializers.IntegerField()
    profit = serializers.CharField()


class _PositionSerializer(serializers.Serializer):  # type: ignore[type-arg]
    base = serializers.CharField()
    reserve = serializers.CharField(allow_null=True)
    cost_basis = serializers.CharField()
    avg_entry_price = serializers.CharField(allow_null=True)
    quote_flow = serializers.CharField()


class _PnlSerializer(serializers.Serializer):  # type: ignore[type-arg]
    realized = serializers.CharField()
    grid_profit = serializers.CharField()
    unrealized = serializers.CharField(allow_null=True)
    fees = serializers.DictField(child=serializers.CharField())
    buy_fills = serializers.IntegerField()
    sell_fills = serializers.IntegerField()


class BotStateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A bot's live state (decimal strings); ``source`` says where it comes from."""

    bot = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    status_message = serializers.CharField()
    symbol = serializers.CharField()
    base = serializers.CharField()
    quote = serializers.CharField()
    exchange = serializers.CharField()
    mode = serializers.CharField()
    source = serializers.ChoiceField(choices=["runtime", "database"])
    last_price = serializers.CharField(allow_null=True)
    price_timestamp = serializers.IntegerField(allow_null=True)
    strategy_state = serializers.CharField(allow_null=True)
    buying = serializers.BooleanField(allow_null=True)
    levels = serializers.ListField(child=serializers.CharField())
    layers = _LayerSerializer(many=True)
    open_orders = _OrderSerializer(many=True)
    position = _PositionSerializer()
    pnl = _PnlSerializer()
    per_level_profit = _PerLevelSerializer(many=True)
    error = serializers.CharField(allow_null=True)
