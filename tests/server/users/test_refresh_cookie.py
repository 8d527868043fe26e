"""Browser mode: the refresh token lives only in an HttpOnly cookie; API clients keep the body contract."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from gridfleet.server.users.models import User
from gridfleet.server.users.refresh_cookie import COOKIE, PATH
from tests.server.conftest import PASSWORD

pytestmark = pytest.mark.django_db
WEB = {"HTTP_X_GRIDFLEET_CLIENT": "web"}


def web_login(api: APIClient, user: User) -> dict:  # type: ignore[type-arg]
    response = api.post("/api/v1/auth/token/", {"username": user.username, "password": PASSWORD}, format="json",
                        **WEB)
    assert response.status_code == 200, response.content
    return response.json()  # type: ignore[no-any-return]


def test_browser_login_puts_the_refresh_token_in_an_httponly_cookie_only(anon_api: APIClient,
                                                                          stranger_user: User) -> None:
    body = web_login(anon_api, stranger_user)
    assert set(body) == {"access"}
    cookie = anon_api.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == PATH
    assert cookie.value.count(".") == 2  # a JWT


def test_browser_refresh_rotates_the_cookie_and_the_old_token_is_dead(anon_api: APIClient,
                                                                        stranger_user: User) -> None:
    web_login(anon_api, stranger_user)
    first = anon_api.cookies[COOKIE].value
    response = anon_api.post("/api/v1/auth/token/refresh/", {}, format="json", **WEB)
    assert response.status_code == 200 and set(response.json()) == {"access"}
    second = anon_api.cookies[COOKIE].value
    assert second and second != first
    replay = APIClient().post("/api/v1/auth/token/refresh/", {"refresh": first}, format="json")
    assert replay.status_code == 401  # blacklisted after rotation


def test_cookie_is_ignored_without_the_web_header(anon_api: APIClient, stranger_user: User) -> None:
    web_login(anon_api, stranger_user)
    response = anon_api.post("/api/v1/auth/token/refresh/", {}, format="json")
    assert response.status_code == 400 and "refresh" in response.json()


def test_browser_logout_revokes_the_cookie_token_and_clears_it(anon_api: APIClient, stranger_user: User) -> None:
    web_login(anon_api, stranger_user)
    token = anon_api.cookies[COOKIE].value
    response = anon_api.post("/api/v1/auth/logout/", {}, format="json", **WEB)
    assert response.status_code == 200
    assert anon_api.cookies[COOKIE].value == ""
    assert APIClient().post("/api/v1/auth/token/refresh/", {"refresh": token}, format="json").status_code == 401


def test_api_clients_keep_the_documented_body_contract(anon_api: APIClient, stranger_user: User) -> None:
    response = anon_api.post("/api/v1/auth/token/", {"username": stranger_user.username, "password": PASSWORD},
                             format="json")
    assert set(response.json()) == {"access", "refresh"} and COOKIE not in anon_api.cookies
