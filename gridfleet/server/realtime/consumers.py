"""The ``/ws/`` consumer: one authenticated connection receiving its user's (agent's, admin's) events."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from gridfleet.server.realtime.notify import ADMINS_GROUP, agent_group, encode, now_ms, register_server_loop, user_group

log = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
"""Close code for a missing, invalid or expired token (also sent when the token expires mid-connection)."""

GROUP_OPS_AT_ONCE = 32
"""At most this many group joins/leaves in flight per process: a burst of (re)connections must not exhaust the
Redis connection pool (redis-py's asyncio pool holds 100 connections and fails, not waits, beyond that)."""

_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _group_slot() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slot = _slots.get(loop)
    if slot is None:
        slot = _slots[loop] = asyncio.Semaphore(GROUP_OPS_AT_ONCE)
    return slot


def groups_of(user: Any) -> list[str]:
    """Return the groups a connection of ``user`` joins: admins ``admins`` only; agents also ``agent.<id>``."""
    if user.is_admin_role:
        return [ADMINS_GROUP]
    groups = [user_group(user.pk)]
    if user.is_agent:
        groups.append(agent_group(user.pk))
    return groups


class EventsConsumer(AsyncWebsocketConsumer):
    """Push events to the client; answer ``{"type": "ping"}`` with a ``pong``."""

    groups: list[str]
    _expiry: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        """Accept and join the user's groups, or accept and close with 4401 (so browsers see the code)."""
        register_server_loop()
        self.groups = []
        user = self.scope.get("user")
        subprotocol = self.scope.get("jwt_subprotocol")
        if user is None or not user.is_authenticated:
            await self.accept(subprotocol)
            await self.close(code=CLOSE_UNAUTHORIZED, reason="unauthorized")
            return
        groups = groups_of(user)
        async with _group_slot():
            for group in groups:
                await self.channel_layer.group_add(group, self.channel_name)
        self.groups = groups
        await self.accept(subprotocol)
        await self._send("hello", {"user": user.pk, "role": "admin" if user.is_admin_role else user.role,
                                   "groups": groups, "token_exp": self.scope.get("token_exp")})
        exp = self.scope.get("token_exp")
        if exp is not None:
            self._expiry = asyncio.get_running_loop().create_task(self._close_at(exp))

    async def _close_at(self, exp: float) -> None:
        await asyncio.sleep(max(0.0, exp - time.time()))
        await self._send("token_expired", {})
        await self.close(code=CLOSE_UNAUTHORIZED, reason="token expired")

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Leave the groups (bounded like the joins; a failure only leaves a membership that expires), then stop."""
        groups, self.groups = self.groups, []
        try:
            async with _group_slot():
                for group in groups:
                    await self.channel_layer.group_discard(group, self.channel_name)
        except Exception:
            log.warning("realtime: leaving %s failed", groups, exc_info=True)
        await super().websocket_disconnect(message)

    async def disconnect(self, code: int) -> None:
        """Stop the expiry timer."""
        if self._expiry is not None:
            self._expiry.cancel()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Answer pings; report anything else as an error message."""
        try:
            message = json.loads(text_data or "")
        except ValueError:
            message = None
        if isinstance(message, dict) and message.get("type") == "ping":
            await self._send("pong", {"echo": message.get("data")})
        else:
            await self._send("error", {"detail": "expected JSON {\"type\": \"ping\"}"})

    async def realtime_event(self, message: dict[str, Any]) -> None:
        """Forward an event published with :func:`gridfleet.server.realtime.notify.publish`."""
        await self.send(text_data=message["text"])

    async def _send(self, kind: str, data: dict[str, Any]) -> None:
        await self.send(text_data=encode({"type": kind, "data": data, "ts": now_ms()}))
