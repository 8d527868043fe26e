"""Settings of the daphne server the load test starts: the test settings on a temp SQLite file.

``GRIDFLEET_LOAD_DB`` is the SQLite file, ``GRIDFLEET_LOAD_PREFIX`` the channel-layer prefix shared with the
test process (which publishes through Redis); the URLconf adds the realtime API.
"""

from __future__ import annotations

import os

from gridfleet.server.test_settings import *  # noqa: F403
from gridfleet.server.test_settings import CHANNEL_LAYERS

DATABASES = {"default": {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.environ["GRIDFLEET_LOAD_DB"],
    "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
}}
ROOT_URLCONF = "tests.server.realtime.urls"
if os.environ.get("GRIDFLEET_LOAD_PREFIX"):
    CHANNEL_LAYERS = {"default": {**CHANNEL_LAYERS["default"],
                                  "CONFIG": {**CHANNEL_LAYERS["default"].get("CONFIG", {}),
                                             "prefix": os.environ["GRIDFLEET_LOAD_PREFIX"]}}}
if os.environ.get("GRIDFLEET_LOAD_LAYER") == "pubsub":  # compare the pub/sub layer (not the project default)
    CHANNEL_LAYERS = {"default": {**CHANNEL_LAYERS["default"],
                                  "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer"}}
