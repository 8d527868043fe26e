"""The OpenAPI schema documents every users/auth/agents endpoint with request and response bodies."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

BODIES = {  # path -> method -> needs a request body
    "/api/v1/auth/register/": {"post": True},
    "/api/v1/auth/token/": {"post": True},
    "/api/v1/auth/token/refresh/": {"post": True},
    "/api/v1/auth/logout/": {"post": True},
    "/api/v1/auth/me/": {"get": False, "patch": True},
    "/api/v1/auth/password/change/": {"post": True},
    "/api/v1/auth/password/reset/": {"post": True},
    "/api/v1/auth/password/reset/confirm/": {"post": True},
    "/api/v1/users/": {"get": False},
    "/api/v1/users/{id}/": {"get": False, "patch": True},
    "/api/v1/agents/referral-code/": {"post": False},
    "/api/v1/agents/me/clients/": {"get": False},
}


def test_every_endpoint_is_documented() -> None:
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path, methods in BODIES.items():
        assert path in schema["paths"], path
        for method, has_body in methods.items():
            operation = schema["paths"][path][method]
            assert operation.get("summary"), (path, method)
            assert ("requestBody" in operation) == has_body, (path, method)
            ok = next(code for code in operation["responses"] if code.startswith("2"))
            assert "content" in operation["responses"][ok], (path, method)
    register = schema["components"]["schemas"]["RegisterRequest"]
    assert {"username", "password", "email"} <= set(register["required"])
    assert "referral_code" in register["properties"]
