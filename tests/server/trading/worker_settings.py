"""Settings of the ``gridfleet worker`` / ``gridfleet beat`` subprocesses of test_worker_beat_processes.py: the
server settings (``DATABASE_URL``, ``REDIS_URL`` from the environment) with every broker key under a prefix of
that test run, so parallel runs sharing the Redis never take each other's Celery messages."""

from __future__ import annotations

import os

from gridfleet.server.settings import *  # noqa: F403

CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": os.environ["GRIDFLEET_TEST_BROKER_PREFIX"]}
CELERY_BEAT_MAX_LOOP_INTERVAL = 1  # beat looks at its (2-s test) schedule every second
