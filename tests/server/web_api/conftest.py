"""Fixtures of the web-client API tests: the local fake Binance in a thread, users, clients, a private cache."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from gridfleet.backtest.data import Candles
from gridfleet.server.exchange_accounts.models import ExchangeAccount
from gridfleet.server.users.models import Role, User

testing = pytest.importorskip("gridfleet.fake_exchange.testing")

T0 = 1_747_699_200_000  # 2025-05-20 00:00 UTC
MINUTE = 60_000
N_CANDLES = 600


def _candles() -> Candles:
    """Ten hours of 1m BTC/USDT candles zig-zagging between 99,000 and 101,000."""
    times, opens, highs, lows, closes = [], [], [], [], []
    price = 100_000.0
    for i in range(N_CANDLES):
        step = 50.0 if (i // 20) % 2 == 0 else -50.0
        nxt = price + step
        times.append(T0 + i * MINUTE)
        opens.append(price)
        closes.append(nxt)
        highs.append(max(price, nxt) + 10)
        lows.append(min(price, nxt) - 10)
        price = nxt
    return Candles.from_arrays(times, opens, highs, lows, closes, [3.0] * N_CANDLES)


@pytest.fixture(scope="session")
def fake_exchange_url() -> Iterator[str]:
    """Run the fake exchange on its own loop in a thread, 300 candles into its history; yield its base URL."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        async with testing.running_fake_exchange(candles=_candles(), speed=0) as fx:
            await fx.advance(candles=300)
            box["url"] = fx.base_url
            box["stop"] = asyncio.Event()
            box["loop"] = asyncio.get_running_loop()
            ready.set()
            await box["stop"].wait()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    if not ready.wait(30) or "url" not in box:
        pytest.skip("the fake exchange did not start")
    yield box["url"]
    box["loop"].call_soon_threadsafe(box["stop"].set)
    thread.join(10)


@pytest.fixture
def dead_url() -> str:
    """A URL nothing listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def market_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocMemCache]:
    """A private, empty cache for the market-data module and the dataset list in each test."""
    cache = LocMemCache(f"market-{id(monkeypatch)}", {})
    monkeypatch.setattr("gridfleet.server.market.venue.cache", cache)
    monkeypatch.setattr("gridfleet.server.analytics.datasets.cache", cache)
    yield cache
    cache.clear()


@pytest.fixture
def users(db: Any) -> dict[str, User]:
    agent = User.objects.create_user("agent", password="pw-agent-123", role=Role.AGENT)
    return {
        "admin": User.objects.create_user("admin", password="pw-admin-123", role=Role.ADMIN),
        "agent": agent,
        "client": User.objects.create_user("client", password="pw-client-123", role=Role.USER, agent=agent),
        "alice": User.objects.create_user("alice", password="pw-alice-123", role=Role.USER),
        "bob": User.objects.create_user("bob", password="pw-bob-1234", role=Role.USER),
    }


@pytest.fixture
def client_for(users: dict[str, User]) -> Callable[[str | None], APIClient]:
    def make(name: str | None) -> APIClient:
        client = APIClient()
        if name is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(users[name]).access_token}")
        return client
    return make


@pytest.fixture
def make_account(users: dict[str, User]) -> Callable[..., ExchangeAccount]:
    def make(owner: str, api_url: str = "", exchange: str = "binance") -> ExchangeAccount:
        account = ExchangeAccount(owner=users[owner], label=f"{owner} account", exchange=exchange, api_url=api_url)
        account.set_credentials("test", "test")
        account.save()
        return account
    return make
