"""The connection test against the local fake Binance (real ccxt client, real HTTP)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from gridfleet.backtest.data import Candles

testing = pytest.importorskip("gridfleet.fake_exchange.testing")

T0 = 1_747_699_200_000
CANDLES = Candles.from_arrays([T0 + i * 60_000 for i in range(5)], [30000.0] * 5, [30100.0] * 5, [29900.0] * 5,
                              [30000.0] * 5, [4.0] * 5)


@pytest.fixture(scope="module")
def fake_exchange_url() -> Iterator[str]:
    """Run the fake exchange on its own event loop in a thread; yield its base URL."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        async with testing.running_fake_exchange(candles=CANDLES, speed=0) as fx:
            box["url"] = fx.base_url
            box["stop"] = asyncio.Event()
            box["loop"] = asyncio.get_running_loop()
            ready.set()
            await box["stop"].wait()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    if not ready.wait(30):
        pytest.skip("the fake exchange did not start")
    yield box["url"]
    box["loop"].call_soon_threadsafe(box["stop"].set)
    thread.join(10)


@pytest.mark.django_db
def test_connection_test_against_the_fake_exchange(client_for: Callable[[str], APIClient],
                                                   fake_exchange_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = client_for("alice")
    good = client.post("/api/v1/exchange-accounts/", {"label": "fake", "exchange": "binance", "api_key": "test",
                                                      "secret": "test", "api_url": fake_exchange_url}, format="json")
    assert good.status_code == 201, good.json()
    response = client.post(f"/api/v1/exchange-accounts/{good.json()['id']}/test/")
    assert response.status_code == 200
    assert response.json()["ok"] is True, response.json()
    bad = client.post("/api/v1/exchange-accounts/", {"label": "bad", "exchange": "binance",
                                                     "api_key": "no-such-key-123456", "secret": "wrong-secret-987",
                                                     "api_url": fake_exchange_url}, format="json")
    response = client.post(f"/api/v1/exchange-accounts/{bad.json()['id']}/test/")
    assert response.status_code == 200
    result = response.json()
    assert result["ok"] is False
    assert "no-such-key-123456" not in result["message"] and "wrong-secret-987" not in result["message"]
    assert "no-such-key-123456" not in caplog.text and "wrong-secret-987" not in caplog.text
