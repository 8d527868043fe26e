"""Settings for the test suite: PostgreSQL and Redis when they answer on 127.0.0.1, SQLite and memory otherwise."""

from __future__ import annotations

import os
import socket

os.environ.setdefault("GRIDFLEET_SECRET_KEY", "test-only-secret-key-not-for-production-" + "x" * 20)
os.environ.setdefault("GRIDFLEET_FERNET_KEYS", "V1lnvKKR0YH3cKWHqnuNf3SqTLkhdZH6XsqfJKqWkNs=")
os.environ["GRIDFLEET_TESTING"] = "1"


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


POSTGRES = os.environ.get("GRIDFLEET_TEST_POSTGRES", "auto") != "off" and _answers(5432)
REDIS = os.environ.get("GRIDFLEET_TEST_REDIS", "auto") != "off" and _answers(6379)
if REDIS and not os.environ.get("REDIS_URL"):
    os.environ["REDIS_URL"] = "redis://127.0.0.1:6379/15"

from gridfleet.server.settings import *  # noqa: E402,F403

if POSTGRES:
    DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "gridfleet", "USER": "postgres",
                             "HOST": "127.0.0.1", "PORT": "5432", "TEST": {"NAME": f"test_gridfleet_{os.getpid()}"}}}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"
CELERY_RESULT_BACKEND = "cache+memory://"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast hashing in tests only
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
