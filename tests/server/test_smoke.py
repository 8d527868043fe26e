"""The server boots: settings, database (PostgreSQL when present), migrations, OpenAPI schema."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from gridfleet.server.test_settings import POSTGRES
from gridfleet.server.users.models import Role, User


@pytest.mark.django_db
def test_database_is_postgres_when_it_answers() -> None:
    assert connection.vendor == ("postgresql" if POSTGRES else "sqlite")
    user = User.objects.create_user("alice", password="s3cret-pass", role=Role.USER)
    assert User.objects.get(pk=user.pk).role == Role.USER


@pytest.mark.django_db
def test_openapi_schema_is_served() -> None:
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "gridfleet API"


def test_no_default_secrets() -> None:
    assert settings.SECRET_KEY and "django-insecure" not in settings.SECRET_KEY
    assert settings.FERNET_KEYS
