"""Channel-layer settings fix-up for Redis (applied by the app's ``ready()``).

redis-py ≥ 6 gives every connection a 5 s ``socket_timeout``; channels_redis blocks on ``BZPOPMIN`` for 5 s
(``brpop_timeout``) while waiting for messages, so an idle websocket's receive hits the socket timeout and the
consumer dies with close code 1011 after ~5 s without events. The pool also holds only 100 connections and
fails (does not wait) beyond that. And all the websockets of one server process share ONE Redis queue whose
``capacity`` (default 100) is per process, not per connection: a burst of more than 100 undelivered events to a
process is dropped silently by ``group_send``.

:func:`normalize_layers` turns plain Redis URLs in ``hosts`` into ``{"address": url, "socket_timeout": 30,
"max_connections": 1000}`` and, for the core layer, sets ``capacity`` to 10,000 unless configured; explicit
settings are left alone. (``channels_redis.pubsub.RedisPubSubChannelLayer`` has no such queue and measured
3× faster under load: see ``docs/realtime.md``.)
"""

from __future__ import annotations

from typing import Any

REDIS_HOST_DEFAULTS: dict[str, Any] = {"socket_timeout": 30, "max_connections": 1000}
REDIS_CONFIG_DEFAULTS: dict[str, Any] = {"capacity": 10_000}


def normalize_layers(layers: dict[str, Any]) -> dict[str, Any]:
    """Return ``CHANNEL_LAYERS`` with safe Redis connection options filled in (idempotent)."""
    result = {}
    for name, layer in layers.items():
        backend = str(layer.get("BACKEND", ""))
        config = layer.get("CONFIG") or {}
        if backend.startswith("channels_redis.") and "hosts" in config:
            hosts = []
            for host in config["hosts"]:
                if isinstance(host, (str, bytes)):
                    host = {"address": host.decode() if isinstance(host, bytes) else host}
                if isinstance(host, dict) and "address" in host:
                    host = {**REDIS_HOST_DEFAULTS, **host}
                hosts.append(host)
            defaults = REDIS_CONFIG_DEFAULTS if backend == "channels_redis.core.RedisChannelLayer" else {}
            layer = {**layer, "CONFIG": {**defaults, **config, "hosts": hosts}}
        result[name] = layer
    return result
