"""Candles, ticker and market rules through the real ccxt client against the local fake Binance."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from gridfleet.server.market import venue

pytestmark = pytest.mark.django_db


def test_candles_come_from_the_venue_as_decimal_strings_and_are_cached(
        client_for: Callable[[str], APIClient], make_account: Callable[..., object], fake_exchange_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    account = make_account("alice", fake_exchange_url)
    api = client_for("alice")
    url = f"/api/v1/market/candles/?symbol=btc/usdt&timeframe=1m&limit=50&account={account.pk}"  # type: ignore[attr-defined]
    response = api.get(url)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["exchange"] == "binance" and body["symbol"] == "BTC/USDT" and body["timeframe"] == "1m"
    rows = body["candles"]
    assert len(rows) == 50
    times = [r[0] for r in rows]
    assert times == sorted(times) and all(b - a == 60_000 for a, b in itertools.pairwise(times))
    for row in rows:
        assert all(isinstance(v, str) for v in row[1:])
        o, h, lo, c, v = (Decimal(x) for x in row[1:])
        assert lo <= min(o, c) <= max(o, c) <= h and v >= 0
        assert Decimal("98000") < c < Decimal("102000")
    calls: list[str] = []
    real = venue._with_venue

    async def counting(*args: object, **kwargs: object) -> object:
        calls.append("venue")
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(venue, "_with_venue", counting)
    assert api.get(url).json() == body  # served from the cache
    assert calls == []
    hourly = api.get(f"/api/v1/market/candles/?symbol=BTC/USDT&timeframe=1h&account={account.pk}")  # type: ignore[attr-defined]
    assert hourly.status_code == 200 and 1 <= len(hourly.json()["candles"]) <= 200


def test_ticker_and_rules_carry_the_markets_precision_and_limits(
        client_for: Callable[[str], APIClient], make_account: Callable[..., object], fake_exchange_url: str) -> None:
    account = make_account("alice", fake_exchange_url)
    api = client_for("alice")
    ticker = api.get(f"/api/v1/market/ticker/?symbol=BTC/USDT&account={account.pk}")  # type: ignore[attr-defined]
    assert ticker.status_code == 200, ticker.content
    body = ticker.json()
    assert Decimal("99000") <= Decimal(body["price"]) <= Decimal("102000") and body["timestamp"] > 0
    assert body["market"]["tick_size"] == "0.01" and body["market"]["step_size"] == "0.00001"
    assert Decimal(body["market"]["min_notional"]) > 0
    rules = api.get(f"/api/v1/market/rules/?symbol=BTC/USDT&account={account.pk}")  # type: ignore[attr-defined]
    assert rules.status_code == 200 and rules.json() == body["market"]


def test_bad_parameters_are_400_with_field_messages(
        client_for: Callable[[str], APIClient], make_account: Callable[..., object], fake_exchange_url: str) -> None:
    account = make_account("alice", fake_exchange_url)
    api = client_for("alice")
    base = "/api/v1/market/candles/"
    assert "symbol" in api.get(base).json()
    assert "symbol" in api.get(base, {"symbol": "BTCUSDT"}).json()
    assert "timeframe" in api.get(base, {"symbol": "BTC/USDT", "timeframe": "7m"}).json()
    assert "limit" in api.get(base, {"symbol": "BTC/USDT", "limit": 0}).json()
    assert "exchange" in api.get(base, {"symbol": "BTC/USDT", "exchange": "nosuchexchange"}).json()
    mismatch = api.get(base, {"symbol": "BTC/USDT", "exchange": "okx", "account": account.pk})  # type: ignore[attr-defined]
    assert mismatch.status_code == 400 and "exchange" in mismatch.json()
    unknown = api.get(base, {"symbol": "DOGE/EUR", "account": account.pk})  # type: ignore[attr-defined]
    assert unknown.status_code == 400 and "symbol" in unknown.json(), unknown.content


def test_an_unreachable_venue_is_a_clear_503_and_is_not_asked_again_at_once(
        client_for: Callable[[str], APIClient], make_account: Callable[..., object], dead_url: str) -> None:
    account = make_account("alice", dead_url)
    api = client_for("alice")
    started = time.monotonic()
    response = api.get(f"/api/v1/market/candles/?symbol=BTC/USDT&account={account.pk}")  # type: ignore[attr-defined]
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "venue_unavailable" and "binance" in body["detail"] and dead_url in body["detail"]
    assert time.monotonic() - started < venue.TOTAL_TIMEOUT_S + 2
    again = time.monotonic()
    assert api.get(f"/api/v1/market/ticker/?symbol=BTC/USDT&account={account.pk}").status_code == 503  # type: ignore[attr-defined]
    assert time.monotonic() - again < 0.5  # remembered: no new attempt


def test_a_venue_that_does_not_answer_times_out(client_for: Callable[[str], APIClient],
                                                make_account: Callable[..., object],
                                                settings: object) -> None:
    """A server that accepts the connection and never answers: the request ends at the timeout with a 503."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    settings.GRIDFLEET_MARKET_TIMEOUT_S = 1.5  # type: ignore[attr-defined]
    try:
        account = make_account("alice", f"http://127.0.0.1:{listener.getsockname()[1]}")
        started = time.monotonic()
        response = client_for("alice").get(f"/api/v1/market/ticker/?symbol=BTC/USDT&account={account.pk}")  # type: ignore[attr-defined]
        assert response.status_code == 503, response.content
        assert "did not answer" in response.json()["detail"] or "cannot reach" in response.json()["detail"]
        assert time.monotonic() - started < 5
    finally:
        stop.set()
        for conn in accepted:
            conn.close()
        listener.close()


def test_market_data_needs_a_login_and_someone_elses_account_is_404(
        client_for: Callable[[str | None], APIClient], make_account: Callable[..., object],
        fake_exchange_url: str) -> None:
    theirs = make_account("bob", fake_exchange_url)
    for path in ("candles", "ticker", "rules"):
        url = f"/api/v1/market/{path}/?symbol=BTC/USDT"
        assert client_for(None).get(url).status_code == 401
        foreign = client_for("alice").get(f"{url}&account={theirs.pk}")  # type: ignore[attr-defined]
        missing = client_for("alice").get(f"{url}&account=987654321")
        assert foreign.status_code == missing.status_code == 404
        assert foreign.content == missing.content
        assert client_for("bob").get(f"{url}&account={theirs.pk}").status_code == 200  # type: ignore[attr-defined]
        # an agent reads through its client's account (read-only use: public market data, no keys involved)
        mine = make_account("client", fake_exchange_url)
        assert client_for("agent").get(f"{url}&account={mine.pk}").status_code == 200  # type: ignore[attr-defined]
