"""Websocket routes: ``/ws/`` (JWT from ``?token=`` or the ``jwt, <token>`` subprotocol)."""

from __future__ import annotations

from django.urls import URLPattern, path

from gridfleet.server.realtime.auth import JWTAuthMiddleware
from gridfleet.server.realtime.consumers import EventsConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws/", JWTAuthMiddleware(EventsConsumer.as_asgi())),  # type: ignore[arg-type]
]
