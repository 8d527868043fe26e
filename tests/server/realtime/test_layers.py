"""Redis channel-layer settings fix-up (socket timeout above channels_redis' 5 s blocking pop, capacity)."""

from __future__ import annotations

from django.conf import settings

from gridfleet.server.realtime.layers import normalize_layers
from gridfleet.server.test_settings import REDIS

CORE = "channels_redis.core.RedisChannelLayer"


def test_plain_urls_get_a_socket_timeout_pool_size_and_capacity() -> None:
    layers = normalize_layers({"default": {"BACKEND": CORE, "CONFIG": {"hosts": ["redis://h:6379/1"]}}})
    config = layers["default"]["CONFIG"]
    assert config["hosts"] == [{"address": "redis://h:6379/1", "socket_timeout": 30, "max_connections": 1000}]
    assert config["capacity"] == 10_000
    assert normalize_layers(layers) == layers  # idempotent


def test_explicit_settings_and_other_backends_are_kept() -> None:
    explicit = {"default": {"BACKEND": CORE, "CONFIG": {"capacity": 50, "hosts": [
        {"address": "redis://h", "socket_timeout": None}, ("h", 6379)]}}}
    config = normalize_layers(explicit)["default"]["CONFIG"]
    assert config["capacity"] == 50
    assert config["hosts"] == [{"address": "redis://h", "socket_timeout": None, "max_connections": 1000},
                               ("h", 6379)]
    pubsub = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                          "CONFIG": {"hosts": ["redis://h"]}}}
    assert "capacity" not in normalize_layers(pubsub)["default"]["CONFIG"]
    memory = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert normalize_layers(memory) == memory


def test_the_app_applied_it_to_the_settings() -> None:
    if REDIS:
        assert settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["socket_timeout"] == 30
