"""``ensure_admin``: the first admin of ``gridfleet serve``."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from gridfleet.server.users.bootstrap import ensure_admin
from gridfleet.server.users.models import Role, User

pytestmark = pytest.mark.django_db


def test_generates_a_password_when_none_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRIDFLEET_ADMIN_USERNAME", raising=False)
    monkeypatch.delenv("GRIDFLEET_ADMIN_PASSWORD", raising=False)
    user, password = ensure_admin(None, None)
    assert user is not None and user.username == "admin" and user.role == Role.ADMIN and user.is_superuser
    assert len(password) >= 20 and user.check_password(password)
    response = APIClient().post("/api/v1/auth/token/", {"username": "admin", "password": password}, format="json")
    assert response.status_code == 200
    assert ensure_admin(None, None) == (None, "")  # idempotent
    assert User.objects.count() == 1


def test_uses_the_given_credentials_and_never_echoes_them() -> None:
    user, password = ensure_admin("boss", "Given-admin-pass-31")
    assert user is not None and user.username == "boss" and user.check_password("Given-admin-pass-31")
    assert password == ""


def test_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDFLEET_ADMIN_USERNAME", "envboss")
    monkeypatch.setenv("GRIDFLEET_ADMIN_PASSWORD", "Env-admin-pass-77")
    user, password = ensure_admin(None, None)
    assert user is not None and user.username == "envboss" and user.check_password("Env-admin-pass-77")
    assert password == ""


def test_nothing_happens_when_an_admin_exists(admin_user: User) -> None:
    assert ensure_admin("another", "Given-admin-pass-31") == (None, "")
    assert not User.objects.filter(username="another").exists()


def test_weak_password_and_taken_username_are_errors(stranger_user: User) -> None:
    with pytest.raises(ValueError, match="password"):
        ensure_admin("boss", "123")
    with pytest.raises(ValueError, match="stranger"):
        ensure_admin("stranger", "Given-admin-pass-31")
    stranger_user.refresh_from_db()
    assert stranger_user.role == Role.USER
