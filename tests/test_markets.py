"""MarketRules: built from real Binance exchangeInfo and from ccxt market dicts; rounding helpers; order checks."""

from __future__ import annotations

import gzip
import json
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridfleet.markets import MarketRules, OrderRuleViolation

D = Decimal
INFO_DIR = ("api", "binance_spot", "exchangeInfo")
SUBSET = "exchangeInfo_subset_BTCUSDT_ETHUSDT_SOLUSDT_BNBUSDT_XRPUSDT_ETHBTC_2024-09-08.json"


def _load(shared_data_dir: Path, name: str) -> dict[str, Any]:
    path = shared_data_dir.joinpath(*INFO_DIR, name)
    if not path.is_file():
        pytest.skip(f"exchangeInfo file not found: {path}")
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


@pytest.fixture(scope="module")
def binance_symbols(shared_data_dir: Path) -> dict[str, dict[str, Any]]:
    return {s["symbol"]: s for s in _load(shared_data_dir, SUBSET)["symbols"]}


# ---------------------------------------------------------------------------------------------- Binance


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("BTCUSDT", dict(symbol="BTC/USDT", base="BTC", quote="USDT", tick_size="0.01", step_size="0.00001",
                         min_qty="0.00001", max_qty="9000", min_price="0.01", max_price="1000000",
                         min_notional="5", max_notional="9000000", market_max_qty="129.84957276")),
        ("ETHUSDT", dict(symbol="ETH/USDT", tick_size="0.01", step_size="0.0001", min_notional="5",
                         market_max_qty="3125.75267907")),
        ("BNBUSDT", dict(tick_size="0.1", step_size="0.001", max_price="100000")),
        ("XRPUSDT", dict(tick_size="0.0001", step_size="1", min_qty="1", max_qty="9222449")),
        ("SOLUSDT", dict(tick_size="0.01", step_size="0.001", max_price="10000")),
        ("ETHBTC", dict(symbol="ETH/BTC", base="ETH", quote="BTC", tick_size="0.00001", step_size="0.0001",
                        min_notional="0.0001", max_price="922327")),
    ],
)
def test_from_binance_symbol(binance_symbols: dict[str, dict[str, Any]], symbol: str, expected: dict[str, str]) -> None:
    rules = MarketRules.from_binance_symbol(binance_symbols[symbol])
    for field, value in expected.items():
        got = getattr(rules, field)
        assert (got == D(value)) if isinstance(got, Decimal) else (got == value), field
    assert rules.market_step_size is None  # MARKET_LOT_SIZE stepSize "0.00000000" means no rule


def test_binance_rules_check_orders_like_the_exchange(binance_symbols: dict[str, dict[str, Any]]) -> None:
    btc = MarketRules.from_binance_symbol(binance_symbols["BTCUSDT"])
    btc.check_order(D("0.00012"), D("57000.01"))  # a valid order passes silently
    cases = [
        ((D("0.000125"), D(57000)), "LOT_SIZE"),
        ((D("0.00001"), D(57000)), "MIN_NOTIONAL"),  # 0.57 USDT
        ((D("0.001"), D("57000.005")), "PRICE_FILTER"),
        ((D(9001), D(1)), "LOT_SIZE"),
        ((D(200), D(100000)), "MAX_NOTIONAL"),
    ]
    for args, code in cases:
        with pytest.raises(OrderRuleViolation) as info:
            btc.check_order(*args)
        assert info.value.code == code
    with pytest.raises(OrderRuleViolation, match=r"above the maximum 129\.84957276"):
        btc.check_order(D(130), D(57000), is_market=True)
    xrp = MarketRules.from_binance_symbol(binance_symbols["XRPUSDT"])
    with pytest.raises(OrderRuleViolation, match="not a multiple of step size 1"):
        xrp.check_order(D("10.5"), D("0.55"))
    assert xrp.floor_amount(D("10.9")) == D(10)


def test_every_symbol_of_the_full_exchange_info_parses(shared_data_dir: Path) -> None:
    for name, with_max_notional in [("exchangeInfo_full_2024-09-08.json.gz", True),
                                    ("exchangeInfo_full_2020-11-01.json.gz", False)]:
        symbols = _load(shared_data_dir, name)["symbols"]
        assert len(symbols) > 1000
        for info in symbols:
            rules = MarketRules.from_binance_symbol(info)
            assert rules.symbol == f"{info['baseAsset']}/{info['quoteAsset']}"
            assert rules.tick_size is None or rules.tick_size > 0
            assert rules.step_size is None or rules.step_size > 0
        btc = MarketRules.from_binance_symbol(next(s for s in symbols if s["symbol"] == "BTCUSDT"))
        assert btc.min_notional is not None  # NOTIONAL (2024) or the older MIN_NOTIONAL (2020) filter
        assert (btc.max_notional is not None) is with_max_notional


def test_from_binance_symbol_without_filters() -> None:
    rules = MarketRules.from_binance_symbol({"baseAsset": "AAA", "quoteAsset": "BBB"})
    assert rules == MarketRules("AAA/BBB", "AAA", "BBB")


# ---------------------------------------------------------------------------------------------- ccxt

CCXT_BTC = {
    "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT",
    "precision": {"amount": 1e-05, "price": 0.01},
    "limits": {"amount": {"min": 1e-05, "max": 9000.0}, "price": {"min": 0.01, "max": 1000000.0},
               "cost": {"min": 5.0, "max": 9000000.0}, "market": {"min": 0.0, "max": 129.84957276},
               "leverage": {"min": None, "max": None}},
}


def test_from_ccxt() -> None:
    rules = MarketRules.from_ccxt(CCXT_BTC)
    assert rules == MarketRules(
        "BTC/USDT", "BTC", "USDT", tick_size=D("0.01"), step_size=D("0.00001"), min_qty=D("0.00001"),
        max_qty=D(9000), min_price=D("0.01"), max_price=D(1000000), min_notional=D(5), max_notional=D(9000000),
        market_max_qty=D("129.84957276"))
    assert str(rules.step_size) == "0.00001"  # through the float's text, not its binary value


def test_from_ccxt_with_missing_parts() -> None:
    rules = MarketRules.from_ccxt({"symbol": "X/Y", "base": "X", "quote": "Y", "precision": {"price": "0.5"},
                                   "limits": {"amount": {"min": None}, "cost": {"min": 0}}})
    assert rules == MarketRules("X/Y", "X", "Y", tick_size=D("0.5"))
    assert MarketRules.from_ccxt({"symbol": "X/Y", "base": "X", "quote": "Y"}) == MarketRules("X/Y", "X", "Y")


def test_from_ccxt_matches_from_binance(binance_symbols: dict[str, dict[str, Any]]) -> None:
    assert MarketRules.from_ccxt(CCXT_BTC) == MarketRules.from_binance_symbol(binance_symbols["BTCUSDT"])


def test_unrestricted() -> None:
    rules = MarketRules.unrestricted("ETH/BTC")
    assert (rules.base, rules.quote, rules.tick_size, rules.step_size) == ("ETH", "BTC", None, None)
    assert MarketRules.unrestricted("FOO").quote == "QUOTE"
    rules.check_order(D("0.000000001"), D("0.0000001"))  # anything positive goes
    assert rules.round_price(D("1.23456789")) == D("1.23456789")
    assert rules.floor_amount(D("0.123456789")) == D("0.123456789")
    with pytest.raises(OrderRuleViolation, match="amount must be positive"):
        rules.check_order(D(0), D(1))
    with pytest.raises(OrderRuleViolation, match="price must be positive"):
        rules.check_order(D(1), D(0))


# ---------------------------------------------------------------------------------------------- rounding

R = MarketRules("BTC/USDT", "BTC", "USDT", tick_size=D("0.01"), step_size=D("0.00001"))


@pytest.mark.parametrize(
    ("price", "nearest", "floor", "ceil"),
    [("100.005", "100.00", "100.00", "100.01"), ("100.015", "100.02", "100.01", "100.02"),
     ("100.0149", "100.01", "100.01", "100.02"), ("100.01", "100.01", "100.01", "100.01"),
     ("0.004", "0.00", "0.00", "0.01"), ("57123.456", "57123.46", "57123.45", "57123.46")],
)
def test_price_rounding(price: str, nearest: str, floor: str, ceil: str) -> None:
    p = D(price)
    assert R.round_price(p) == D(nearest)  # half-even to the nearest tick
    assert R.floor_price(p) == D(floor) == R.round_price(p, ROUND_FLOOR)
    assert R.ceil_price(p) == D(ceil) == R.round_price(p, ROUND_CEILING)


@pytest.mark.parametrize(("amount", "floored"), [("0.123456", "0.12345"), ("0.00001", "0.00001"),
                                                  ("0.000009", "0"), ("3", "3"), ("2.999999", "2.99999")])
def test_amount_floor(amount: str, floored: str) -> None:
    assert R.floor_amount(D(amount)) == D(floored)


def test_market_step_size_applies_to_market_orders_only() -> None:
    rules = MarketRules("A/B", "A", "B", step_size=D("0.001"), market_step_size=D("0.1"), max_qty=D(100),
                        market_max_qty=D(10))
    rules.check_order(D("0.05"), D(1))
    with pytest.raises(OrderRuleViolation, match=r"multiple of step size 0\.1"):
        rules.check_order(D("0.05"), D(1), is_market=True)
    rules.check_order(D(50), D(1))
    with pytest.raises(OrderRuleViolation, match="above the maximum 10"):
        rules.check_order(D(50), D(1), is_market=True)


def test_market_orders_skip_price_rules_but_not_notional() -> None:
    rules = MarketRules("A/B", "A", "B", tick_size=D(1), min_price=D(10), min_notional=D(5))
    rules.check_order(D(1), D("5.5"), is_market=True)  # off-tick and below min price: fine for a reference price
    with pytest.raises(OrderRuleViolation) as info:
        rules.check_order(D(1), D("4.5"), is_market=True)
    assert info.value.code == "MIN_NOTIONAL" and "order value 4.5 B is below the minimum 5 B" in str(info.value)
    rules.check_order(D(1), None)  # no price: no price or notional checks


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=D("0.00000001"), max_value=D(10**7), places=8),
       st.sampled_from(["0.01", "0.00001", "0.5", "1", "0.0001000"]))
def test_rounded_values_are_on_the_grid(value: Decimal, step: str) -> None:
    rules = MarketRules("A/B", "A", "B", tick_size=D(step), step_size=D(step))
    s = D(step)
    for rounded in (rules.round_price(value), rules.floor_price(value), rules.ceil_price(value),
                    rules.floor_amount(value)):
        assert rounded % s == 0
        assert abs(rounded - value) < s
    assert rules.floor_price(value) <= value <= rules.ceil_price(value)
    assert rules.floor_amount(value) <= value
    assert abs(rules.round_price(value) - value) <= s / 2
