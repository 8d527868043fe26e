"""Django settings for the gridfleet server.

Embedded default (no external service): SQLite at ``GRIDFLEET_DB`` (default ``gridfleet.sqlite3`` in the
working directory), in-memory channel layer and cache, Celery tasks run in-process (eager).
Production: ``DATABASE_URL=postgres://…`` and ``REDIS_URL=redis://…`` (channel layer, cache, Celery broker and
results). Secrets are never defaults: ``GRIDFLEET_SECRET_KEY`` and ``GRIDFLEET_FERNET_KEYS`` (comma-separated,
newest first, for rotation) come from the environment, or are generated once and kept in a file next to the
SQLite database (mode 0600) for the embedded setup.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent
TESTING = os.environ.get("GRIDFLEET_TESTING") == "1"


def _state_dir() -> Path:
    db = os.environ.get("GRIDFLEET_DB", "gridfleet.sqlite3")
    return Path(db).resolve().parent


def _persistent_secret(name: str, make: str) -> str:
    """Return a secret from the environment, else from ``<state dir>/.gridfleet-<name>`` (created once, 0600)."""
    env = os.environ.get(f"GRIDFLEET_{name.upper()}")
    if env:
        return env
    path = _state_dir() / f".gridfleet-{name}"
    if path.exists():
        return path.read_text().strip()
    value = Fernet.generate_key().decode() if make == "fernet" else secrets.token_urlsafe(50)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


SECRET_KEY = _persistent_secret("secret_key", "token")
FERNET_KEYS = [k.strip() for k in _persistent_secret("fernet_keys", "fernet").split(",") if k.strip()]
DEBUG = os.environ.get("GRIDFLEET_DEBUG") == "1"
ALLOWED_HOSTS = [h for h in os.environ.get("GRIDFLEET_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "channels",
    "django_celery_beat",
    "gridfleet.server.users",
    "gridfleet.server.exchange_accounts",
    "gridfleet.server.bots",
    "gridfleet.server.trading",
    "gridfleet.server.analytics",
    "gridfleet.server.realtime",
    "gridfleet.server.billing",
    "gridfleet.server.fees",
    "gridfleet.server.market",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "gridfleet.server.urls"
ASGI_APPLICATION = "gridfleet.server.asgi.application"
WSGI_APPLICATION = "gridfleet.server.wsgi.application"
AUTH_USER_MODEL = "users.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]

if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
else:
    DATABASES = {"default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("GRIDFLEET_DB", "gridfleet.sqlite3"),
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
    }}

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    # explicit socket timeout and pool size: redis-py's 5 s default timeout equals channels_redis' blocking read
    # (idle sockets crashed) and the default pool of 100 failed ~200 simultaneous connects (docs/realtime.md)
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {
        "hosts": [{"address": REDIS_URL, "socket_timeout": 30, "max_connections": 1000}], "capacity": 10_000}}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_RESULT_BACKEND = "cache+memory://"
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend",
                                "rest_framework.filters.OrderingFilter"],
    "DEFAULT_PAGINATION_CLASS": "gridfleet.server.pagination.CappedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "gridfleet.server.exceptions.api_exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "DEFAULT_THROTTLE_RATES": {"login": "10/min", "register": "20/hour", "password_reset": "5/hour"},
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=15),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=7),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "gridfleet API",
    "DESCRIPTION": "Grid trading bots, fleets, backtests and billing.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"BotStatusEnum": "gridfleet.server.bots.models.BotStatus"},
}
GRIDFLEET_DATA_DIR = os.environ.get("GRIDFLEET_DATA_DIR", str(BASE_DIR.parents[1].parent / "shared" / "data" / "ohlcv"))

EMAIL_BACKEND = os.environ.get("GRIDFLEET_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("GRIDFLEET_FROM_EMAIL", "gridfleet@localhost")

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = _state_dir() / "static"
WEB_UI_DIR = Path(os.environ.get("GRIDFLEET_WEB_DIR", BASE_DIR.parents[1] / "frontend" / "dist"))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("GRIDFLEET_LOG_LEVEL", "WARNING")},
}
