"""``/ws/`` against the real ASGI app on the test channel layer (Redis db 15 when it answers)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from gridfleet.server.asgi import application
from gridfleet.server.realtime import notify
from gridfleet.server.realtime.notify import publish
from gridfleet.server.test_settings import REDIS
from gridfleet.server.users.models import Role, User

from .conftest import open_ws, run, token_for

pytestmark = pytest.mark.django_db(transaction=True)


def _is_close_4401(message: dict[str, Any]) -> bool:
    return message["type"] == "websocket.close" and message.get("code") == 4401


def _hello(message: dict[str, Any]) -> dict[str, Any]:
    assert message["type"] == "websocket.send", message
    body = json.loads(message["text"])
    assert body["type"] == "hello"
    return body


@pytest.mark.parametrize("token", [None, "", "not-a-jwt", "a.b.c"])
def test_missing_or_bad_token_is_closed_with_4401(token: str | None) -> None:
    async def go() -> None:
        _, first = await open_ws(token)
        assert _is_close_4401(first)

    run(go())


def test_expired_token_is_closed_with_4401(make_user: Callable[..., User]) -> None:
    user = make_user("late")
    token = token_for(user, lifetime=timedelta(seconds=-5))

    async def go() -> None:
        _, first = await open_ws(token)
        assert _is_close_4401(first)

    run(go())


def test_refresh_token_inactive_user_and_blacklisted_jti_are_refused(make_user: Callable[..., User]) -> None:
    user = make_user("gone")
    refresh = str(RefreshToken.for_user(user))
    blacklisted = AccessToken.for_user(user)
    outstanding = OutstandingToken.objects.create(user=user, jti=blacklisted["jti"], token=str(blacklisted),
                                                  expires_at=timezone.now() + timedelta(minutes=5))
    BlacklistedToken.objects.create(token=outstanding)
    inactive = make_user("inactive")
    inactive_token = token_for(inactive)
    User.objects.filter(pk=inactive.pk).update(is_active=False)

    async def go() -> None:
        for token in (refresh, str(blacklisted), inactive_token):
            _, first = await open_ws(token)
            assert _is_close_4401(first), token

    run(go())


def test_valid_token_by_query_or_subprotocol(make_user: Callable[..., User]) -> None:
    user = make_user("alice")
    token = token_for(user)

    async def go() -> None:
        comm, first = await open_ws(token)
        hello = _hello(first)
        assert hello["data"]["user"] == user.pk and hello["data"]["groups"] == [f"user.{user.pk}"]
        await comm.send_json_to({"type": "ping", "data": 7})
        pong = await comm.receive_json_from(timeout=5)
        assert pong["type"] == "pong" and pong["data"] == {"echo": 7}
        await comm.send_to(text_data="nonsense")
        assert (await comm.receive_json_from(timeout=5))["type"] == "error"
        await comm.disconnect()

        comm = WebsocketCommunicator(application, "/ws/", subprotocols=["jwt", token])
        connected, subprotocol = await comm.connect(timeout=5)
        assert connected and subprotocol == "jwt"  # the browser needs the chosen subprotocol echoed
        _hello(await comm.receive_output(timeout=5))
        await comm.disconnect()

    run(go())


def test_events_reach_owner_agent_and_admins_only(make_user: Callable[..., User], admin_user: User,
                                                  agent_user: User, client_user: User,
                                                  stranger_user: User) -> None:
    other_agent = make_user("agent2", role=Role.AGENT)

    async def go() -> None:
        comms = {}
        for name, user in [("admin", admin_user), ("agent", agent_user), ("client", client_user),
                           ("stranger", stranger_user), ("agent2", other_agent)]:
            comm, first = await open_ws(token_for(user))
            _hello(first)
            comms[name] = comm
        publish(client_user.pk, {"type": "fill", "bot": 12, "data": {"price": "1.5"}, "ts": 1700000000000})
        for name in ("client", "agent", "admin"):
            event = await comms[name].receive_json_from(timeout=5)
            assert event["type"] == "fill" and event["bot"] == 12 and event["data"] == {"price": "1.5"}
            assert event["ts"] == 1700000000000 and event["id"]
        for name in ("stranger", "agent2"):
            assert await comms[name].receive_nothing(timeout=0.3)
        # the stranger's event: the stranger and the admin, nobody else
        publish(stranger_user.pk, {"type": "pnl", "data": {"equity": 3}})
        for name in ("stranger", "admin"):
            event = await comms[name].receive_json_from(timeout=5)
            assert event["type"] == "pnl" and "bot" not in event
        for name in ("client", "agent", "agent2"):
            assert await comms[name].receive_nothing(timeout=0.3)
        # the agent's own event reaches it once
        publish(agent_user.pk, {"type": "bot_status", "bot": 1, "data": {"status": "running"}})
        assert (await comms["agent"].receive_json_from(timeout=5))["type"] == "bot_status"
        assert (await comms["admin"].receive_json_from(timeout=5))["type"] == "bot_status"
        for name in ("agent", "client", "stranger", "agent2"):
            assert await comms[name].receive_nothing(timeout=0.3)
        for comm in comms.values():
            await comm.disconnect()

    run(go())


def test_publish_from_a_sync_thread_and_with_no_server_loop(make_user: Callable[..., User]) -> None:
    user = make_user("bob")

    async def go() -> None:
        comm, first = await open_ws(token_for(user))
        _hello(first)
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                for i in range(n):
                    publish(user.pk, {"type": "pnl", "data": {"i": i}})
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connections.close_all()  # this thread's connection (the agent look-up)

        thread = threading.Thread(target=worker, args=(20,))
        thread.start()
        got = [(await comm.receive_json_from(timeout=5))["data"]["i"] for _ in range(20)]
        thread.join(5)
        assert not errors and got == list(range(20))  # in order
        if REDIS:  # a process serving no websockets (a worker): the background publisher thread, via Redis
            notify._server_loop = None
            thread = threading.Thread(target=worker, args=(3,))
            thread.start()
            got = [(await comm.receive_json_from(timeout=5))["data"]["i"] for _ in range(3)]
            await asyncio.get_running_loop().run_in_executor(None, thread.join, 5)
            assert not errors and got == [0, 1, 2]
            assert await asyncio.get_running_loop().run_in_executor(None, notify.flush, 5)
        await comm.disconnect()

    run(go())


def test_publish_from_async_code_does_not_block(make_user: Callable[..., User]) -> None:
    user = make_user("carol")

    async def go() -> None:
        comm, first = await open_ws(token_for(user))
        _hello(first)
        publish(user.pk, {"type": "risk_alert", "bot": 3, "data": {"message": "below range"}})
        event = await comm.receive_json_from(timeout=5)
        assert event["type"] == "risk_alert" and event["data"]["message"] == "below range"
        with pytest.raises(ValueError, match="unknown event type"):
            publish(user.pk, {"type": "bogus", "data": {}})
        await comm.disconnect()

    run(go())


def test_connection_is_closed_with_4401_when_the_token_expires(make_user: Callable[..., User]) -> None:
    user = make_user("dave")
    token = token_for(user, lifetime=timedelta(seconds=1))

    async def go() -> None:
        comm, first = await open_ws(token)
        _hello(first)
        assert json.loads((await comm.receive_output(timeout=5))["text"])["type"] == "token_expired"
        assert _is_close_4401(await comm.receive_output(timeout=5))

    run(go())
