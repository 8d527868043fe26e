"""Shared fixtures of the server tests: one user per role and API clients logged in as each of them (JWT).

The cast, used by every app's tests and by the permission matrix:

* ``admin_user``    an admin (sees and changes everything);
* ``agent_user``    an agent (reseller) with one client, ``client_user`` (reads its client's objects, read-only);
* ``client_user``   a plain user whose ``agent`` is ``agent_user``;
* ``stranger_user`` a plain user with no agent (must see nothing of the others).

``admin_api``, ``agent_api``, ``client_api``, ``stranger_api`` are :class:`rest_framework.test.APIClient` objects
carrying a ``Bearer`` access token of that user; ``anon_api`` carries none. ``make_user(...)`` and
``api_for(user)`` build more. Every password is :data:`PASSWORD`.

Throttles (login, register, password reset) count in a fresh in-memory cache for each test, so tests never
throttle each other, whatever cache (Redis) the settings use.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle
from rest_framework_simplejwt.tokens import RefreshToken

from gridfleet.server.users.models import Role, User

PASSWORD = "Grid-fleet-test-pass-42"
"""The password of every fixture user."""

_serial = itertools.count()


@pytest.fixture(autouse=True)
def _isolated_throttle_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Give DRF throttles a private, empty cache for the duration of one test."""
    cache = LocMemCache(f"throttle-{next(_serial)}", {})
    monkeypatch.setattr(SimpleRateThrottle, "cache", cache)
    yield
    cache.clear()


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    """Return ``make_user(username, role="user", agent=None, **fields)`` creating a user with :data:`PASSWORD`."""

    def make(username: str, role: str = Role.USER, agent: User | None = None, **fields: Any) -> User:
        fields.setdefault("email", f"{username}@example.com")
        return User.objects.create_user(username, password=PASSWORD, role=role, agent=agent, **fields)

    return make


@pytest.fixture
def api_for() -> Callable[[User | None], APIClient]:
    """Return ``api_for(user)``: an API client authenticated with a fresh JWT access token (None: anonymous)."""

    def make(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            token = RefreshToken.for_user(user).access_token
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make


@pytest.fixture
def admin_user(make_user: Callable[..., User]) -> User:
    """An admin."""
    return make_user("admin", role=Role.ADMIN)


@pytest.fixture
def agent_user(make_user: Callable[..., User]) -> User:
    """An agent (its client is ``client_user``)."""
    return make_user("agent", role=Role.AGENT, referral_code="AGENTCODE1")


@pytest.fixture
def client_user(make_user: Callable[..., User], agent_user: User) -> User:
    """A user belonging to ``agent_user``."""
    return make_user("client", agent=agent_user)


@pytest.fixture
def stranger_user(make_user: Callable[..., User]) -> User:
    """A user with no agent, unrelated to everyone else."""
    return make_user("stranger")


@pytest.fixture
def admin_api(api_for: Callable[[User | None], APIClient], admin_user: User) -> APIClient:
    """API client logged in as ``admin_user``."""
    return api_for(admin_user)


@pytest.fixture
def agent_api(api_for: Callable[[User | None], APIClient], agent_user: User) -> APIClient:
    """API client logged in as ``agent_user``."""
    return api_for(agent_user)


@pytest.fixture
def client_api(api_for: Callable[[User | None], APIClient], client_user: User) -> APIClient:
    """API client logged in as ``client_user`` (the agent's client)."""
    return api_for(client_user)


@pytest.fixture
def stranger_api(api_for: Callable[[User | None], APIClient], stranger_user: User) -> APIClient:
    """API client logged in as ``stranger_user``."""
    return api_for(stranger_user)


@pytest.fixture
def anon_api() -> APIClient:
    """API client with no credentials."""
    return APIClient()
