"""The fake exchange's state and business logic, independent of HTTP: Binance spot semantics for one symbol.

:class:`FakeVenue` owns the replayed market (:class:`~gridfleet.fake_exchange.replay.MarketReplay`), one
:class:`~gridfleet.sim.matching.MatchingEngine` per account, and the order/trade books, and answers the Binance
REST (and WebSocket API) requests with the exact JSON shapes Binance uses. Every request method takes the request
parameters as a ``dict[str, str]`` and returns a JSON-able body or raises
:class:`~gridfleet.fake_exchange.errors.BinanceError`. Events (own executions, balance changes, public trades,
book changes) are handed to sinks the server installs; the venue never does I/O itself.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import string
import time
from collections import deque
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

import numpy as np

from gridfleet.backtest.data import Candles
from gridfleet.engine.types import Fill, PlaceOrder, Side
from gridfleet.fake_exchange import errors as E
from gridfleet.fake_exchange.accounts import ENGINE_TYPES, Account, AccountSpec, OrderRecord, TradeRecord
from gridfleet.fake_exchange.errors import BinanceError
from gridfleet.fake_exchange.replay import POINTS_PER_CANDLE, MarketReplay, PricePoint
from gridfleet.markets import MarketRules, OrderRuleViolation
from gridfleet.sim.matching import MatchingEngine

ZERO = Decimal(0)
BOOK_LEVELS = 100
"""Price levels per side of the synthetic order book."""

INTERVALS_MS: dict[str, int] = {
    "1s": 1_000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000,
    "12h": 43_200_000, "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000,
}
"""Binance kline intervals the fake exchange can aggregate to (any multiple of the data timeframe)."""

_CLIENT_ID_RE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_NUMBER_RE = re.compile(E.NUMBER_PATTERN)
_INT_RE = re.compile(r"^-?[0-9]{1,20}$")
_ID_CHARS = string.ascii_letters + string.digits
_SYMBOLS_PATTERN = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'


def f8(value: Decimal | float | int | None) -> str:
    """Format a number the way Binance does: a string with 8 decimals (``None`` → ``"0.00000000"``)."""
    if value is None:
        return "0.00000000"
    if isinstance(value, Decimal):
        return f"{value:.8f}" if value.is_finite() else "0.00000000"
    return f"{float(value):.8f}"


def synthetic_symbol_info(base: str, quote: str) -> dict[str, Any]:
    """Return a plausible Binance exchangeInfo entry (tick 0.01, step 0.00001, min notional 5) for a pair."""
    return {
        "symbol": f"{base}{quote}",
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
             "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100.00000000",
             "stepSize": "0.00000000"},
            {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


# ---------------------------------------------------------------------------------------------- param parsing
def _get(params: dict[str, str], name: str) -> str | None:
    value = params.get(name)
    return None if value is None or value == "" else value


def _required(params: dict[str, str], name: str) -> str:
    value = _get(params, name)
    if value is None:
        raise E.mandatory(name)
    return value


def _decimal(params: dict[str, str], name: str) -> Decimal | None:
    raw = _get(params, name)
    if raw is None:
        return None
    if not _NUMBER_RE.match(raw):
        raise E.illegal_chars(name)
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise E.illegal_chars(name) from None


def _int(params: dict[str, str], name: str) -> int | None:
    raw = _get(params, name)
    if raw is None:
        return None
    if not _INT_RE.match(raw):
        raise E.illegal_chars(name, "^[0-9]{1,20}$")
    return int(raw)


def _limit(params: dict[str, str], default: int, maximum: int) -> int:
    limit = _int(params, "limit")
    if limit is None:
        return default
    if limit <= 0:
        raise E.illegal_chars("limit", "^[0-9]{1,20}$")
    return min(limit, maximum)


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


class FakeVenue:
    """One Binance spot symbol replayed from candles, with one matching engine per account."""

    def __init__(
        self,
        *,
        candles: Candles,
        symbol_info: dict[str, Any],
        accounts: list[AccountSpec],
        maker_fee: Decimal = Decimal("0.001"),
        taker_fee: Decimal = Decimal("0.001"),
        slippage: Decimal = ZERO,
        participation: Decimal | None = None,
        warmup: int = 0,
        speed: float = 0.0,
        seed: int = 0,
        weight_limit: int = 6000,
    ) -> None:
        self.info: dict[str, Any] = {**symbol_info, "status": "TRADING"}
        self.symbol: str = self.info["symbol"]
        self.rules = MarketRules.from_binance_symbol(self.info)
        self.filters: dict[str, dict[str, Any]] = {f["filterType"]: f for f in self.info.get("filters", [])}
        self.base_precision = int(self.info.get("baseAssetPrecision", 8))
        self.quote_precision = int(self.info.get("quoteAssetPrecision", self.info.get("quotePrecision", 8)))
        self.stp_mode = str(self.info.get("defaultSelfTradePreventionMode", "NONE"))
        self.maker_fee, self.taker_fee, self.slippage = maker_fee, taker_fee, slippage
        self.participation = participation
        self.weight_limit = weight_limit
        self.replay = MarketReplay(candles, self.rules, start_candle=warmup)
        self._specs = list(accounts)
        self._seed = seed
        self._rng = random.Random(seed)
        self._order_ids = itertools.count(1)
        self._own_trade_ids = itertools.count(1)
        self._event_ids = itertools.count(1)
        self.accounts: dict[str, Account] = {}
        self.tape: deque[PricePoint] = deque([self.replay.last], maxlen=1000)
        self.book_version = 1
        self.speed = speed
        self._anchor_wall = time.monotonic()
        self._anchor_ts = self.replay.last.timestamp
        self.public_sink: Callable[[PricePoint], None] | None = None
        self.book_sink: Callable[[], None] | None = None
        self.user_sink: Callable[[Account, dict[str, Any]], None] | None = None
        self._create_accounts()

    # ================================================================== setup / control
    def _create_accounts(self) -> None:
        self.accounts = {}
        for i, spec in enumerate(self._specs):
            engine = MatchingEngine(
                self.rules,
                maker_fee=self.maker_fee,
                taker_fee=self.taker_fee,
                balances=dict(spec.balances),
                slippage=self.slippage,
                participation=self.participation,
            )
            self.accounts[spec.api_key] = Account(spec, engine, uid=100_000_001 + i,
                                                  update_time=self.replay.last.timestamp)

    def set_participation(self, participation: Decimal | None) -> None:
        """Set the share of each point's volume resting orders may fill (None = unlimited) on every account."""
        self.participation = participation
        for acct in self.accounts.values():
            acct.engine.participation = participation

    def reset(self, *, rewind: bool = False) -> None:
        """Restore every account to its starting balances with no orders; optionally rewind the market."""
        self._create_accounts()
        if rewind:
            self.replay.rewind()
            self.tape.clear()
            self.tape.append(self.replay.last)
        self.book_version += 1
        self.reanchor()

    # ================================================================== clock
    def reanchor(self) -> None:
        """Restart the wall-clock pacing from the current point (after a manual advance or a speed change)."""
        self._anchor_wall = time.monotonic()
        self._anchor_ts = self.replay.last.timestamp

    def set_speed(self, speed: float) -> None:
        """Change the replay speed (candle-seconds per wall second; 0 = manual clock)."""
        if speed < 0:
            raise ValueError("speed must not be negative")
        self.speed = speed
        self.reanchor()

    def now(self) -> int:
        """Return the exchange clock (ms): the replayed market time, interpolated between points when running."""
        last = self.replay.last.timestamp
        if self.speed <= 0:
            return last
        nxt = self.replay.peek_next()
        if nxt is None:
            return last
        estimate = self._anchor_ts + int((time.monotonic() - self._anchor_wall) * 1000 * self.speed)
        return max(last, min(estimate, nxt.timestamp - 1))

    def seconds_until_next_point(self) -> float | None:
        """Return the wall seconds until the next point is due (<= 0: due now), or None when manual/finished."""
        if self.speed <= 0:
            return None
        nxt = self.replay.peek_next()
        if nxt is None:
            return None
        due = self._anchor_wall + (nxt.timestamp - self._anchor_ts) / (1000 * self.speed)
        return due - time.monotonic()

    # ================================================================== replay
    def target_seq(self, *, points: int | None = None, candles: int | None = None, until_ms: int | None = None) -> int:
        """Return the point number an advance request ends at (clamped to the data)."""
        last = self.replay.last
        end = self.replay.total_points - 1
        if points is not None:
            target = last.seq + points
        elif candles is not None:
            target = (last.candle + candles) * POINTS_PER_CANDLE
        elif until_ms is not None:
            target = last.seq
            ot = self.replay.candles.open_time
            idx = int(np.searchsorted(ot, until_ms, side="right")) - 1
            if idx >= 0:
                for k in range(POINTS_PER_CANDLE - 1, -1, -1):
                    seq = idx * POINTS_PER_CANDLE + k
                    if self.replay.point(seq).timestamp <= until_ms:
                        target = max(target, seq)
                        break
        else:
            raise ValueError("give points, candles or until")
        return max(last.seq, min(target, end))

    def advance_to(self, target_seq: int, *, max_points: int | None = None) -> int:
        """Replay points up to ``target_seq`` (at most ``max_points`` of them); return how many were replayed."""
        done = 0
        while self.replay.last.seq < target_seq and (max_points is None or done < max_points):
            if self.step() is None:
                break
            done += 1
        return done

    def step(self) -> PricePoint | None:
        """Replay the next price point: fill what it reaches on every account, then publish the public trade."""
        point = self.replay.step()
        if point is None:
            return None
        self.tape.append(point)
        self.book_version += 1
        for acct in self.accounts.values():
            self._match(acct, point)
        if self.public_sink is not None:
            self.public_sink(point)
        return point

    def replay_due_points(self, max_points: int = 1000) -> int:
        """Replay the points whose wall-clock time has come (running clock); return how many."""
        done = 0
        while done < max_points:
            wait = self.seconds_until_next_point()
            if wait is None or wait > 0:
                break
            self.step()
            done += 1
        return done

    def _match(self, acct: Account, point: PricePoint) -> None:
        engine = acct.engine
        if not engine.open_orders():
            return
        engine.begin_volume(point.qty)
        fills: list[Fill] = []
        while True:
            bid = engine.best_bid()
            if bid is None or bid < point.price:
                break
            fill = engine.fill_next(Side.BUY, point.timestamp)
            if fill is None:
                break
            fills.append(fill)
        while True:
            ask = engine.best_ask()
            if ask is None or ask > point.price:
                break
            fill = engine.fill_next(Side.SELL, point.timestamp)
            if fill is None:
                break
            fills.append(fill)
        for fill in fills:
            self._record_fill(acct, fill)
        if fills:
            self._emit(acct, self._account_position(acct))

    def _record_fill(self, acct: Account, fill: Fill) -> TradeRecord:
        rec = acct.orders[int(fill.client_id)]
        trade = TradeRecord(
            id=next(self._own_trade_ids),
            order_id=rec.order_id,
            price=fill.price,
            qty=fill.amount,
            commission=fill.fee,
            commission_asset=fill.fee_currency,
            time=fill.timestamp,
            is_buyer=fill.side is Side.BUY,
            is_maker=fill.is_maker,
        )
        acct.trades.append(trade)
        rec.update_time = fill.timestamp
        acct.update_time = fill.timestamp
        self.book_version += 1
        self._emit(acct, self._execution_report(rec, "TRADE", trade=trade))
        return trade

    # ================================================================== events
    def _emit(self, acct: Account, event: dict[str, Any]) -> None:
        if self.user_sink is not None:
            self.user_sink(acct, event)

    def _book_changed(self) -> None:
        self.book_version += 1
        if self.book_sink is not None:
            self.book_sink()

    def _execution_report(
        self,
        rec: OrderRecord,
        exec_type: str,
        *,
        trade: TradeRecord | None = None,
        client_id: str | None = None,
        orig_client_id: str = "",
        status: str | None = None,
        reject_reason: str = "NONE",
    ) -> dict[str, Any]:
        now = self.now()
        return {
            "e": "executionReport",
            "E": now,
            "s": self.symbol,
            "c": client_id if client_id is not None else rec.client_order_id,
            "S": rec.side.value.upper(),
            "o": rec.type,
            "f": rec.time_in_force,
            "q": f8(rec.orig_qty),
            "p": f8(rec.price),
            "P": "0.00000000",
            "F": "0.00000000",
            "g": -1,
            "C": orig_client_id,
            "x": exec_type,
            "X": status or rec.status,
            "r": reject_reason,
            "i": rec.order_id,
            "l": f8(trade.qty) if trade else "0.00000000",
            "z": f8(rec.executed_qty),
            "L": f8(trade.price) if trade else "0.00000000",
            "n": f8(trade.commission) if trade else "0",
            "N": trade.commission_asset if trade else None,
            "T": trade.time if trade else now,
            "t": trade.id if trade else -1,
            "I": next(self._event_ids),
            "w": rec.is_open,
            "m": trade.is_maker if trade else False,
            "M": False,
            "O": rec.time,
            "Z": f8(rec.cumulative_quote),
            "Y": f8(trade.price * trade.qty) if trade else "0.00000000",
            "Q": f8(rec.quote_order_qty),
            "W": rec.time,
            "V": self.stp_mode,
        }

    def _account_position(self, acct: Account) -> dict[str, Any]:
        now = self.now()
        engine = acct.engine
        assets = [self.rules.base, self.rules.quote]
        return {
            "e": "outboundAccountPosition",
            "E": now,
            "u": acct.update_time or now,
            "B": [{"a": a, "f": f8(engine.free.get(a, ZERO)), "l": f8(engine.locked.get(a, ZERO))} for a in assets],
        }

    # ================================================================== JSON shapes
    def _order_json(self, rec: OrderRecord) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "orderId": rec.order_id,
            "orderListId": -1,
            "clientOrderId": rec.client_order_id,
            "price": f8(rec.price),
            "origQty": f8(rec.orig_qty),
            "executedQty": f8(rec.executed_qty),
            "cummulativeQuoteQty": f8(rec.cumulative_quote),
            "status": rec.status,
            "timeInForce": rec.time_in_force,
            "type": rec.type,
            "side": rec.side.value.upper(),
            "stopPrice": "0.00000000",
            "icebergQty": "0.00000000",
            "time": rec.time,
            "updateTime": rec.update_time,
            "isWorking": True,
            "workingTime": rec.time,
            "origQuoteOrderQty": f8(rec.quote_order_qty),
            "selfTradePreventionMode": self.stp_mode,
        }

    def _new_order_json(self, rec: OrderRecord, resp_type: str, trades: list[TradeRecord]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "symbol": self.symbol,
            "orderId": rec.order_id,
            "orderListId": -1,
            "clientOrderId": rec.client_order_id,
            "transactTime": rec.time,
        }
        if resp_type == "ACK":
            return body
        body.update({
            "price": f8(rec.price),
            "origQty": f8(rec.orig_qty),
            "executedQty": f8(rec.executed_qty),
            "origQuoteOrderQty": f8(rec.quote_order_qty),
            "cummulativeQuoteQty": f8(rec.cumulative_quote),
            "status": rec.status,
            "timeInForce": rec.time_in_force,
            "type": rec.type,
            "side": rec.side.value.upper(),
            "workingTime": rec.time,
            "selfTradePreventionMode": self.stp_mode,
        })
        if resp_type == "FULL":
            body["fills"] = [
                {"price": f8(t.price), "qty": f8(t.qty), "commission": f8(t.commission),
                 "commissionAsset": t.commission_asset, "tradeId": t.id}
                for t in trades
            ]
        return body

    def _cancel_json(self, rec: OrderRecord, cancel_client_id: str, now: int) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "origClientOrderId": rec.client_order_id,
            "orderId": rec.order_id,
            "orderListId": -1,
            "clientOrderId": cancel_client_id,
            "transactTime": now,
            "price": f8(rec.price),
            "origQty": f8(rec.orig_qty),
            "executedQty": f8(rec.executed_qty),
            "origQuoteOrderQty": f8(rec.quote_order_qty),
            "cummulativeQuoteQty": f8(rec.cumulative_quote),
            "status": rec.status,
            "timeInForce": rec.time_in_force,
            "type": rec.type,
            "side": rec.side.value.upper(),
            "selfTradePreventionMode": self.stp_mode,
        }

    def _trade_json(self, t: TradeRecord) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "id": t.id,
            "orderId": t.order_id,
            "orderListId": -1,
            "price": f8(t.price),
            "qty": f8(t.qty),
            "quoteQty": f8(t.price * t.qty),
            "commission": f8(t.commission),
            "commissionAsset": t.commission_asset,
            "time": t.time,
            "isBuyer": t.is_buyer,
            "isMaker": t.is_maker,
            "isBestMatch": True,
        }

    # ================================================================== helpers
    def _check_symbol(self, params: dict[str, str], *, required: bool = True) -> None:
        symbol = _get(params, "symbol")
        if symbol is None:
            if required:
                raise E.mandatory("symbol")
            return
        if symbol.upper() != self.symbol:
            raise BinanceError(*E.INVALID_SYMBOL)

    def _symbols_filter(self, params: dict[str, str]) -> bool:
        """Validate ``symbol``/``symbols``; return True when our symbol is asked for (or no filter given)."""
        symbol = _get(params, "symbol")
        symbols = _get(params, "symbols")
        if symbol is not None and symbols is not None:
            raise BinanceError(-1128, "Combination of optional parameters invalid.")
        if symbol is not None:
            self._check_symbol(params)
            return True
        if symbols is not None:
            try:
                names = json.loads(symbols)
            except json.JSONDecodeError:
                raise E.illegal_chars("symbols", _SYMBOLS_PATTERN) from None
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise E.illegal_chars("symbols", _SYMBOLS_PATTERN)
            if any(n.upper() != self.symbol for n in names):
                raise BinanceError(*E.INVALID_SYMBOL)
        return True

    def new_client_id(self) -> str:
        """Return a random 22-character client order id, as Binance generates when none is given."""
        return "".join(self._rng.choice(_ID_CHARS) for _ in range(22))

    def _client_id_param(self, params: dict[str, str], name: str) -> str | None:
        value = _get(params, name)
        if value is not None and not _CLIENT_ID_RE.match(value):
            raise E.illegal_chars(name, "^[\\.A-Z\\:/a-z0-9_-]{1,36}$")
        return value

    def _rule_error(self, code: str) -> BinanceError:
        if code in ("MIN_NOTIONAL", "MAX_NOTIONAL"):
            return E.filter_failure("NOTIONAL" if "NOTIONAL" in self.filters else "MIN_NOTIONAL")
        if code in ("PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE"):
            return E.filter_failure(code)
        if code == "INSUFFICIENT_BALANCE":
            return BinanceError(-2010, E.INSUFFICIENT_BALANCE)
        if code == "DUPLICATE_ORDER":
            return BinanceError(-2010, E.DUPLICATE_ORDER)
        return BinanceError(-1013, f"Filter failure: {code}")

    def _last_price(self) -> Decimal:
        return self.replay.last.price

    # ================================================================== trading (signed)
    def new_order(self, acct: Account, params: dict[str, str], *, test: bool = False) -> dict[str, Any]:
        """``POST /api/v3/order`` (and ``/order/test``): validate, place into the matching engine, answer."""
        self._check_symbol(params)
        side_raw = _required(params, "side").upper()
        if side_raw not in ("BUY", "SELL"):
            raise BinanceError(-1117, "Invalid side.")
        side = Side.BUY if side_raw == "BUY" else Side.SELL
        order_type = _required(params, "type").upper()
        if order_type in ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"):
            raise BinanceError(-1014, "Unsupported order combination.")
        if order_type not in ENGINE_TYPES:
            raise BinanceError(-1116, "Invalid orderType.")
        tif = _get(params, "timeInForce")
        if order_type == "LIMIT":
            if tif is None:
                raise E.mandatory("timeInForce")
            tif = tif.upper()
            if tif not in ("GTC", "IOC", "FOK"):
                raise BinanceError(-1115, "Invalid timeInForce.")
        elif tif is not None:
            raise BinanceError(-1106, "Parameter 'timeInForce' sent when not required.")
        else:
            tif = "GTC"
        quantity = _decimal(params, "quantity")
        quote_qty = _decimal(params, "quoteOrderQty")
        price = _decimal(params, "price")
        resp_type = (_get(params, "newOrderRespType") or ("FULL" if order_type in ("LIMIT", "MARKET") else "ACK"))
        resp_type = resp_type.upper()
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise E.illegal_chars("newOrderRespType", "ACK, RESULT, FULL")
        client_id = self._client_id_param(params, "newClientOrderId") or self.new_client_id()
        price_now = self._last_price()

        if order_type == "MARKET":
            if price is not None:
                raise E.not_required("price")
            if quantity is None and quote_qty is None:
                raise E.either_mandatory("quantity", "quoteOrderQty")
            if quantity is not None and quote_qty is not None:
                raise E.not_required("quoteOrderQty")
            if quote_qty is not None:
                if _decimals(quote_qty) > self.quote_precision:
                    raise BinanceError(-1111, "Parameter 'quoteOrderQty' has too much precision.")
                step = self.rules.market_step_size or self.rules.step_size
                quantity = quote_qty / price_now
                quantity = (quantity // step) * step if step else quantity.quantize(Decimal("0.00000001"), ROUND_DOWN)
        else:
            if quantity is None:
                raise E.mandatory("quantity")
            if price is None:
                raise E.mandatory("price")
            if quote_qty is not None:
                raise E.not_required("quoteOrderQty")
            if _decimals(price) > self.quote_precision:
                raise BinanceError(-1111, "Parameter 'price' has too much precision.")
        assert quantity is not None
        if _decimals(quantity) > self.base_precision:
            raise BinanceError(-1111, "Parameter 'quantity' has too much precision.")

        is_market = order_type == "MARKET"
        if acct.open_order_by_client_id(client_id) is not None:
            raise BinanceError(-2010, E.DUPLICATE_ORDER)
        marketable = is_market or (
            price is not None
            and ((side is Side.BUY and price >= price_now) or (side is Side.SELL and price <= price_now))
        )
        try:
            self.rules.check_order(quantity, price_now if is_market else price, is_market=is_market)
        except OrderRuleViolation as exc:
            raise self._rule_error(exc.code) from None
        max_orders = self.filters.get("MAX_NUM_ORDERS", {}).get("maxNumOrders")
        if not marketable and max_orders is not None and len(acct.open_orders()) >= int(max_orders):
            raise E.filter_failure("MAX_NUM_ORDERS")
        if order_type == "LIMIT_MAKER" and marketable:
            raise BinanceError(-2010, E.WOULD_TAKE)
        if test:
            return {}

        now = self.now()
        order_id = next(self._order_ids)
        rec = OrderRecord(
            order_id=order_id,
            client_order_id=client_id,
            side=side,
            type=order_type,
            time_in_force=tif,
            orig_qty=quantity,
            price=None if is_market else price,
            quote_order_qty=quote_qty or ZERO,
            time=now,
            update_time=now,
            sim=None,
        )
        acct.order_times.append(time.time())
        if tif in ("IOC", "FOK") and not marketable:
            rec.final_status = "EXPIRED"
            acct.orders[order_id] = rec
            self._emit(acct, self._execution_report(rec, "EXPIRED"))
            return self._new_order_json(rec, resp_type, [])

        intent = PlaceOrder(client_id=rec.engine_id, side=side, type=ENGINE_TYPES[order_type], amount=quantity,
                            price=rec.price)
        fills, rejection = acct.engine.place(intent, price_now, now)
        if rejection is not None:
            error = self._rule_error(rejection.code)
            if rejection.code == "INSUFFICIENT_BALANCE":
                rec.final_status = "REJECTED"
                self._emit(acct, self._execution_report(rec, "REJECTED", reject_reason="INSUFFICIENT_BALANCE"))
            raise error
        rec.sim = acct.engine.orders[rec.engine_id]
        acct.orders[order_id] = rec
        acct.update_time = now
        self._emit(acct, self._execution_report(rec, "NEW", status="NEW"))
        trades = [self._record_fill(acct, fill) for fill in fills]
        self._emit(acct, self._account_position(acct))
        self._book_changed()
        return self._new_order_json(rec, resp_type, trades)

    def _lookup(self, acct: Account, params: dict[str, str]) -> OrderRecord | None:
        self._check_symbol(params)
        order_id = _int(params, "orderId")
        client_id = _get(params, "origClientOrderId")
        if order_id is None and client_id is None:
            raise E.either_mandatory("origClientOrderId", "orderId")
        return acct.find_order(order_id, client_id)

    def query_order(self, acct: Account, params: dict[str, str]) -> dict[str, Any]:
        """``GET /api/v3/order`` by ``orderId`` or ``origClientOrderId``."""
        rec = self._lookup(acct, params)
        if rec is None:
            raise BinanceError(-2013, E.ORDER_DOES_NOT_EXIST)
        return self._order_json(rec)

    def _cancel(self, acct: Account, rec: OrderRecord, cancel_client_id: str | None) -> dict[str, Any]:
        now = self.now()
        update = acct.engine.cancel(rec.engine_id, now)
        if update is None:
            raise BinanceError(-2011, E.UNKNOWN_ORDER)
        rec.update_time = now
        acct.update_time = now
        cancel_id = cancel_client_id or self.new_client_id()
        self._emit(acct, self._execution_report(rec, "CANCELED", client_id=cancel_id,
                                                orig_client_id=rec.client_order_id))
        self._emit(acct, self._account_position(acct))
        return self._cancel_json(rec, cancel_id, now)

    def cancel_order(self, acct: Account, params: dict[str, str]) -> dict[str, Any]:
        """``DELETE /api/v3/order`` by ``orderId`` or ``origClientOrderId``."""
        cancel_id = self._client_id_param(params, "newClientOrderId")
        rec = self._lookup(acct, params)
        if rec is None or not rec.is_open:
            raise BinanceError(-2011, E.UNKNOWN_ORDER)
        body = self._cancel(acct, rec, cancel_id)
        self._book_changed()
        return body

    def cancel_all(self, acct: Account, params: dict[str, str]) -> list[dict[str, Any]]:
        """``DELETE /api/v3/openOrders``: cancel every open order of the symbol."""
        self._check_symbol(params)
        open_orders = acct.open_orders()
        if not open_orders:
            raise BinanceError(-2011, E.UNKNOWN_ORDER)
        bodies = [self._cancel(acct, rec, None) for rec in open_orders]
        self._book_changed()
        return bodies

    def open_orders(self, acct: Account, params: dict[str, str]) -> list[dict[str, Any]]:
        """``GET /api/v3/openOrders`` (symbol optional)."""
        self._check_symbol(params, required=False)
        return [self._order_json(rec) for rec in acct.open_orders()]

    def all_orders(self, acct: Account, params: dict[str, str]) -> list[dict[str, Any]]:
        """``GET /api/v3/allOrders``: by ``orderId`` (>=), time window, or the most recent ``limit``."""
        self._check_symbol(params)
        order_id = _int(params, "orderId")
        start, end = _int(params, "startTime"), _int(params, "endTime")
        limit = _limit(params, 500, 1000)
        recs = list(acct.orders.values())
        if order_id is not None:
            recs = [r for r in recs if r.order_id >= order_id][:limit]
        elif start is not None or end is not None:
            recs = [r for r in recs if (start is None or r.time >= start) and (end is None or r.time <= end)]
            recs = recs[:limit] if start is not None else recs[-limit:]
        else:
            recs = recs[-limit:]
        return [self._order_json(r) for r in recs]

    def my_trades(self, acct: Account, params: dict[str, str]) -> list[dict[str, Any]]:
        """``GET /api/v3/myTrades``: by ``orderId``, ``fromId``, time window, or the most recent ``limit``."""
        self._check_symbol(params)
        order_id, from_id = _int(params, "orderId"), _int(params, "fromId")
        start, end = _int(params, "startTime"), _int(params, "endTime")
        limit = _limit(params, 500, 1000)
        trades = acct.trades
        if order_id is not None:
            trades = [t for t in trades if t.order_id == order_id]
        if from_id is not None:
            trades = [t for t in trades if t.id >= from_id][:limit]
        elif start is not None or end is not None:
            trades = [t for t in trades if (start is None or t.time >= start) and (end is None or t.time <= end)]
            trades = trades[:limit] if start is not None else trades[-limit:]
        else:
            trades = trades[-limit:]
        return [self._trade_json(t) for t in trades]

    def account_info(self, acct: Account, params: dict[str, str]) -> dict[str, Any]:
        """``GET /api/v3/account``: commissions, permissions and the balances of every asset."""
        omit_zero = (_get(params, "omitZeroBalances") or "false").lower() == "true"
        engine = acct.engine
        balances = []
        for asset in acct.assets():
            free, locked = engine.free.get(asset, ZERO), engine.locked.get(asset, ZERO)
            if omit_zero and free == 0 and locked == 0:
                continue
            balances.append({"asset": asset, "free": f8(free), "locked": f8(locked)})
        maker_bp, taker_bp = int(self.maker_fee * 10000), int(self.taker_fee * 10000)
        return {
            "makerCommission": maker_bp,
            "takerCommission": taker_bp,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": f8(self.maker_fee), "taker": f8(self.taker_fee), "buyer": f8(ZERO),
                                "seller": f8(ZERO)},
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": acct.update_time,
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": acct.uid,
        }

    def commission(self, acct: Account, params: dict[str, str]) -> dict[str, Any]:
        """``GET /api/v3/account/commission``: the account's commission rates on the symbol."""
        self._check_symbol(params)
        rates = {"maker": f8(self.maker_fee), "taker": f8(self.taker_fee), "buyer": f8(ZERO), "seller": f8(ZERO)}
        zero = {"maker": f8(ZERO), "taker": f8(ZERO), "buyer": f8(ZERO), "seller": f8(ZERO)}
        return {"symbol": self.symbol, "standardCommission": rates, "taxCommission": zero,
                "discount": {"enabledForAccount": False, "enabledForSymbol": False, "discountAsset": "BNB",
                             "discount": "0.75000000"}}

    # ================================================================== market data (public)
    def exchange_info(self, params: dict[str, str]) -> dict[str, Any]:
        """``GET /api/v3/exchangeInfo``: the real entry of the symbol, status TRADING."""
        self._symbols_filter(params)
        return {
            "timezone": "UTC",
            "serverTime": self.now(),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": self.weight_limit},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
            ],
            "exchangeFilters": [],
            "symbols": [self.info],
        }

    def _one_or_list(self, params: dict[str, str], item: dict[str, Any]) -> dict[str, Any] | list[dict[str, Any]]:
        self._symbols_filter(params)
        return item if _get(params, "symbol") is not None else [item]

    def ticker_price(self, params: dict[str, str]) -> dict[str, Any] | list[dict[str, Any]]:
        """``GET /api/v3/ticker/price``."""
        return self._one_or_list(params, {"symbol": self.symbol, "price": f8(self._last_price())})

    def _best(self) -> tuple[tuple[Decimal, Decimal], tuple[Decimal, Decimal]]:
        bids, asks = self.book(1)
        return bids[0], asks[0]

    def book_ticker(self, params: dict[str, str]) -> dict[str, Any] | list[dict[str, Any]]:
        """``GET /api/v3/ticker/bookTicker``."""
        (bp, bq), (ap, aq) = self._best()
        item = {"symbol": self.symbol, "bidPrice": f8(bp), "bidQty": f8(bq), "askPrice": f8(ap), "askQty": f8(aq)}
        return self._one_or_list(params, item)

    def ticker_24hr(self, params: dict[str, str]) -> dict[str, Any] | list[dict[str, Any]]:
        """``GET /api/v3/ticker/24hr`` (``type`` FULL or MINI) over the last 24h of replayed market."""
        kind = (_get(params, "type") or "FULL").upper()
        if kind not in ("FULL", "MINI"):
            raise BinanceError(-1139, "Invalid ticker type.")
        item = self.ticker_24hr_item(mini=kind == "MINI")
        return self._one_or_list(params, item)

    def ticker_24hr_item(self, *, mini: bool = False) -> dict[str, Any]:
        """Return the 24h ticker of the symbol (``mini``: the MINI field set)."""
        now = self.now()
        stats = self.replay.window(now - 86_400_000)
        last = self._last_price()
        open_ = Decimal(repr(stats.open))
        item: dict[str, Any] = {"symbol": self.symbol}
        if not mini:
            change = last - open_
            (bp, bq), (ap, aq) = self._best()
            item.update({
                "priceChange": f8(change),
                "priceChangePercent": f"{(change / open_ * 100) if open_ else 0:.3f}",
                "weightedAvgPrice": f8(stats.quote_volume / stats.volume if stats.volume else float(last)),
                "prevClosePrice": f8(stats.prev_close),
                "lastPrice": f8(last),
                "lastQty": f8(self.replay.last.qty),
                "bidPrice": f8(bp),
                "bidQty": f8(bq),
                "askPrice": f8(ap),
                "askQty": f8(aq),
            })
        else:
            item["lastPrice"] = f8(last)
        item.update({
            "openPrice": f8(stats.open),
            "highPrice": f8(stats.high),
            "lowPrice": f8(stats.low),
            "volume": f8(stats.volume),
            "quoteVolume": f8(stats.quote_volume),
            "openTime": stats.open_time,
            "closeTime": now,
            "firstId": stats.first_id,
            "lastId": stats.last_id,
            "count": stats.count,
        })
        return item

    def avg_price(self, params: dict[str, str]) -> dict[str, Any]:
        """``GET /api/v3/avgPrice``: mean of the last 5 minutes of points."""
        self._check_symbol(params)
        now = self.now()
        recent = [p.price for p in self.tape if p.timestamp >= now - 300_000] or [self._last_price()]
        return {"mins": 5, "price": f8(sum(recent) / len(recent)), "closeTime": now}

    def book(self, limit: int) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """Return the synthetic order book (bids, asks) around the last price, with the accounts' orders in it."""
        limit = max(1, min(limit, BOOK_LEVELS))  # synthesize only what is asked for: the grid is contiguous
        last = self.replay.last
        tick = self.rules.tick_size or Decimal("0.01")
        step = self.rules.step_size or Decimal("0.00000001")
        unit = max(step, (last.qty / 40).quantize(step, ROUND_DOWN)) if last.qty > 0 else step * 10
        bids: dict[Decimal, Decimal] = {}
        asks: dict[Decimal, Decimal] = {}
        for k in range(limit):
            qty = unit * (1 + (k * 7 + last.seq) % 5)
            bid = last.price - tick * k
            if bid > 0:
                bids[bid] = qty
            asks[last.price + tick * (k + 1)] = qty
        for acct in self.accounts.values():
            for sim in acct.engine.open_orders():
                if sim.price is None:
                    continue
                side = bids if sim.side is Side.BUY else asks
                side[sim.price] = side.get(sim.price, ZERO) + sim.remaining
        top_bids = sorted(bids.items(), key=lambda kv: -kv[0])[:limit]
        top_asks = sorted(asks.items(), key=lambda kv: kv[0])[:limit]
        return top_bids, top_asks

    def depth(self, params: dict[str, str]) -> dict[str, Any]:
        """``GET /api/v3/depth``: the synthetic book (at most 100 levels a side)."""
        self._check_symbol(params)
        limit = _limit(params, 100, 5000)
        bids, asks = self.book(limit)
        return {"lastUpdateId": self.book_version, "bids": [[f8(p), f8(q)] for p, q in bids],
                "asks": [[f8(p), f8(q)] for p, q in asks]}

    def interval_ms(self, params: dict[str, str]) -> int:
        """Validate the ``interval`` param against the data timeframe and return it in ms."""
        name = _required(params, "interval")
        iv = INTERVALS_MS.get(name)
        if iv is None or iv % self.replay.timeframe_ms != 0:
            raise BinanceError(-1120, "Invalid interval.")
        return iv

    def klines(self, params: dict[str, str]) -> list[list[object]]:
        """``GET /api/v3/klines`` from the replayed history up to now (the current candle partial)."""
        self._check_symbol(params)
        iv = self.interval_ms(params)
        start, end = _int(params, "startTime"), _int(params, "endTime")
        limit = _limit(params, 500, 1000)
        if start is not None and end is not None and start > end:
            raise BinanceError(-1127, "Lookup interval is too big.")
        return self.replay.klines(iv, start_ms=start, end_ms=end, limit=limit)

    def _trade_item(self, p: PricePoint) -> dict[str, Any]:
        return {"id": p.trade_id, "price": f8(p.price), "qty": f8(p.qty), "quoteQty": f8(p.price * p.qty),
                "time": p.timestamp, "isBuyerMaker": p.is_buyer_maker, "isBestMatch": True}

    def trades(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """``GET /api/v3/trades``: the most recent replayed points."""
        self._check_symbol(params)
        limit = _limit(params, 500, 1000)
        return [self._trade_item(p) for p in list(self.tape)[-limit:]]

    def historical_trades(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """``GET /api/v3/historicalTrades`` (from the kept tape of the last 1000 points)."""
        self._check_symbol(params)
        limit = _limit(params, 500, 1000)
        from_id = _int(params, "fromId")
        tape = list(self.tape)
        if from_id is None:
            return [self._trade_item(p) for p in tape[-limit:]]
        return [self._trade_item(p) for p in tape if p.trade_id >= from_id][:limit]

    def agg_trades(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """``GET /api/v3/aggTrades``: one aggregate trade per replayed point."""
        self._check_symbol(params)
        limit = _limit(params, 500, 1000)
        from_id, start, end = _int(params, "fromId"), _int(params, "startTime"), _int(params, "endTime")
        tape = list(self.tape)
        if from_id is not None:
            tape = [p for p in tape if p.trade_id >= from_id][:limit]
        elif start is not None or end is not None:
            tape = [p for p in tape if (start is None or p.timestamp >= start) and (end is None or p.timestamp <= end)]
            tape = tape[:limit]
        else:
            tape = tape[-limit:]
        return [self.agg_trade_item(p) for p in tape]

    def agg_trade_item(self, p: PricePoint) -> dict[str, Any]:
        """Return one point as an aggregate trade (REST shape)."""
        return {"a": p.trade_id, "p": f8(p.price), "q": f8(p.qty), "f": p.trade_id, "l": p.trade_id,
                "T": p.timestamp, "m": p.is_buyer_maker, "M": True}

    # ================================================================== stream payloads
    def trade_event(self, p: PricePoint) -> dict[str, Any]:
        """``<symbol>@trade`` payload."""
        return {"e": "trade", "E": self.now(), "s": self.symbol, "t": p.trade_id, "p": f8(p.price), "q": f8(p.qty),
                "b": 2 * p.trade_id, "a": 2 * p.trade_id + 1, "T": p.timestamp, "m": p.is_buyer_maker, "M": True}

    def agg_trade_event(self, p: PricePoint) -> dict[str, Any]:
        """``<symbol>@aggTrade`` payload."""
        return {"e": "aggTrade", "E": self.now(), "s": self.symbol, "a": p.trade_id, "p": f8(p.price),
                "q": f8(p.qty), "f": p.trade_id, "l": p.trade_id, "T": p.timestamp, "m": p.is_buyer_maker, "M": True}

    def mini_ticker_event(self) -> dict[str, Any]:
        """``<symbol>@miniTicker`` payload."""
        t = self.ticker_24hr_item(mini=True)
        return {"e": "24hrMiniTicker", "E": self.now(), "s": self.symbol, "c": t["lastPrice"], "o": t["openPrice"],
                "h": t["highPrice"], "l": t["lowPrice"], "v": t["volume"], "q": t["quoteVolume"]}

    def ticker_event(self) -> dict[str, Any]:
        """``<symbol>@ticker`` payload."""
        t = self.ticker_24hr_item()
        return {"e": "24hrTicker", "E": self.now(), "s": self.symbol, "p": t["priceChange"],
                "P": t["priceChangePercent"], "w": t["weightedAvgPrice"], "x": t["prevClosePrice"],
                "c": t["lastPrice"], "Q": t["lastQty"], "b": t["bidPrice"], "B": t["bidQty"], "a": t["askPrice"],
                "A": t["askQty"], "o": t["openPrice"], "h": t["highPrice"], "l": t["lowPrice"], "v": t["volume"],
                "q": t["quoteVolume"], "O": t["openTime"], "C": t["closeTime"], "F": t["firstId"], "L": t["lastId"],
                "n": t["count"]}

    def book_ticker_event(self) -> dict[str, Any]:
        """``<symbol>@bookTicker`` payload."""
        (bp, bq), (ap, aq) = self._best()
        now = self.now()
        return {"u": self.book_version, "s": self.symbol, "b": f8(bp), "B": f8(bq), "a": f8(ap), "A": f8(aq),
                "T": now, "E": now}

    def kline_event(self, interval: str) -> dict[str, Any] | None:
        """``<symbol>@kline_<interval>`` payload (None when the interval is not available)."""
        iv = INTERVALS_MS.get(interval)
        if iv is None or iv % self.replay.timeframe_ms != 0:
            return None
        rows = self.replay.klines(iv, limit=1)
        if not rows:
            return None
        r = rows[-1]
        open_time = int(r[0])  # type: ignore[call-overload]
        close_time = open_time + iv - 1
        first_id = (open_time - int(self.replay.candles.open_time[0])) // self.replay.timeframe_ms
        return {"e": "kline", "E": self.now(), "s": self.symbol, "k": {
            "t": open_time, "T": close_time, "s": self.symbol, "i": interval,
            "f": max(1, first_id * POINTS_PER_CANDLE + 1), "L": self.replay.last.trade_id,
            "o": r[1], "c": r[4], "h": r[2], "l": r[3], "v": r[5], "n": r[8],
            "x": self.replay.last.index == POINTS_PER_CANDLE - 1 and self.replay.last.timestamp + 1 >= close_time,
            "q": r[7], "V": r[9], "Q": r[10], "B": "0"}}

    def partial_depth_event(self, levels: int) -> dict[str, Any]:
        """``<symbol>@depth<levels>`` payload."""
        bids, asks = self.book(levels)
        return {"lastUpdateId": self.book_version, "bids": [[f8(p), f8(q)] for p, q in bids],
                "asks": [[f8(p), f8(q)] for p, q in asks]}

    # ================================================================== introspection
    def state(self) -> dict[str, Any]:
        """Return the clock, market and every account's balances, open orders and trades (``GET /_fake/state``)."""
        last = self.replay.last
        accounts = []
        for acct in self.accounts.values():
            engine = acct.engine
            accounts.append({
                "apiKey": acct.api_key,
                "balances": {a: {"free": str(engine.free.get(a, ZERO)), "locked": str(engine.locked.get(a, ZERO))}
                             for a in acct.assets()},
                "open_orders": [self._order_json(r) for r in acct.open_orders()],
                "orders": len(acct.orders),
                "trades": [self._trade_json(t) for t in acct.trades],
            })
        return {
            "symbol": self.symbol,
            "time": self.now(),
            "wall_time": int(time.time() * 1000),
            "speed": self.speed,
            "price": str(last.price),
            "point": {"seq": last.seq, "candle": last.candle, "index": last.index, "timestamp": last.timestamp},
            "candles": len(self.replay.candles),
            "timeframe_ms": self.replay.timeframe_ms,
            "replayed_points": self.replay.replayed_points,
            "finished": self.replay.finished,
            "participation": None if self.participation is None else str(self.participation),
            "accounts": accounts,
        }
