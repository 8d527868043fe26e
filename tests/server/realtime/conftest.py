"""Fixtures of the realtime tests: a private channel-layer prefix per test, JWTs and a websocket helper.

Every test gets its own channel-layer prefix on the Redis layer (db 15), so parallel workers (whose users may
share ids) and earlier tests never see each other's ``user.<id>`` or ``admins`` groups.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Iterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from rest_framework_simplejwt.tokens import AccessToken

from gridfleet.server.asgi import application
from gridfleet.server.realtime import notify
from gridfleet.server.test_settings import REDIS


@pytest.fixture(autouse=True)
def _private_channel_layer(settings: Any) -> Iterator[None]:
    """Use a fresh channel-layer prefix (Redis) or a fresh in-memory layer for this test; fast webhook retries."""
    layer = dict(settings.CHANNEL_LAYERS["default"])
    if REDIS:
        layer["CONFIG"] = {**layer.get("CONFIG", {}), "prefix": f"rt-test-{uuid.uuid4().hex[:12]}"}
    settings.CHANNEL_LAYERS = {"default": layer}
    settings.REALTIME_WEBHOOK_BACKOFF = 0.01
    yield
    notify._server_loop = None
    # close the connection database_sync_to_async opened on asgiref's shared thread, so the test database can
    # be dropped at the end of the session
    asyncio.run(sync_to_async(connections.close_all, thread_sensitive=True)())


def token_for(user: Any, lifetime: timedelta | None = None) -> str:
    """Return an access token of ``user`` (optionally with a custom lifetime, negative = already expired)."""
    token = AccessToken.for_user(user)
    if lifetime is not None:
        token.set_exp(lifetime=lifetime)
    return str(token)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion in a fresh event loop."""
    return asyncio.run(coro)


async def open_ws(token: str | None = None, *, subprotocol: bool = False) -> tuple[WebsocketCommunicator, Any]:
    """Connect to ``/ws/`` through the real ASGI app; return the communicator and the first message (or close)."""
    if subprotocol and token is not None:
        comm = WebsocketCommunicator(application, "/ws/", subprotocols=["jwt", token])
    else:
        comm = WebsocketCommunicator(application, f"/ws/?token={token}" if token is not None else "/ws/")
    connected, _ = await comm.connect(timeout=5)
    assert connected
    first = await comm.receive_output(timeout=5)
    return comm, first
