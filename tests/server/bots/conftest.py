"""Fixtures of the bot API tests: users of every role, authenticated clients, a fake runtime, a valid config."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from gridfleet.server.trading.service import set_runtime
from gridfleet.server.users.models import Role, User


class FakeRuntime:
    """Records every call; ``fail`` makes the named method raise."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail: dict[str, Exception] = {}

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, *args))
        if name in self.fail:
            raise self.fail[name]

    def start(self, bot_id: int) -> None:
        self._call("start", bot_id)

    def command(self, bot_id: int, name: str) -> None:
        self._call("command", bot_id, name)

    def apply_config(self, bot_id: int, config: dict[str, Any]) -> None:
        self._call("apply_config", bot_id, config)

    def stop(self, bot_id: int, *, cancel_orders: bool = True, sell_all: bool = False) -> None:
        self._call("stop", bot_id, cancel_orders, sell_all)

    def status(self, bot_id: int) -> dict[str, Any] | None:
        return None


@pytest.fixture
def runtime() -> Iterator[FakeRuntime]:
    fake = FakeRuntime()
    set_runtime(fake)
    yield fake
    set_runtime(None)


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
def client_for(users: dict[str, User]) -> Callable[[str], APIClient]:
    def make(name: str) -> APIClient:
        client = APIClient()
        client.force_authenticate(users[name])
        return client

    return make


def grid_config(**overrides: Any) -> dict[str, Any]:
    """Return a small valid grid config for BTC/USDT."""
    config: dict[str, Any] = {"symbol": "BTC/USDT", "grid": {"type": "arithmetic", "lower": "100000",
                                                             "upper": "120000", "levels": 5},
                              "qty_per_order": "0.002"}
    config.update(overrides)
    return config


def bot_body(**overrides: Any) -> dict[str, Any]:
    """Return a valid paper-bot creation body."""
    body: dict[str, Any] = {"name": "grid 1", "strategy": "grid", "mode": "paper", "exchange": "binance",
                            "symbol": "BTC/USDT", "config": grid_config()}
    body.update(overrides)
    return body


@pytest.fixture
def make_bot(client_for: Callable[[str], APIClient]) -> Callable[..., dict[str, Any]]:
    def make(user: str = "alice", **overrides: Any) -> dict[str, Any]:
        response = client_for(user).post("/api/v1/bots/", bot_body(**overrides), format="json")
        assert response.status_code == 201, response.json()
        data: dict[str, Any] = response.json()
        return data

    return make
