"""Registration, login/refresh/logout with JWT, throttling, one's own account, password change and reset."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.core import mail
from rest_framework.test import APIClient

from gridfleet.server.users.models import Role, User
from tests.server.conftest import PASSWORD

pytestmark = pytest.mark.django_db

GOOD = "Correct-horse-battery-9"


def register(api: APIClient, **data: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    body = {"username": "newbie", "password": GOOD, "email": "newbie@example.com", **data}
    response = api.post("/api/v1/auth/register/", body, format="json")
    return response.status_code, response.json()


def login(api: APIClient, username: str, password: str = PASSWORD) -> tuple[int, dict]:  # type: ignore[type-arg]
    response = api.post("/api/v1/auth/token/", {"username": username, "password": password}, format="json")
    return response.status_code, response.json()


def bearer(access: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return api


# registration ---------------------------------------------------------------------------------------------------


def test_register_creates_a_plain_user(anon_api: APIClient) -> None:
    code, body = register(anon_api)
    assert code == 201, body
    assert set(body) == {"id", "username", "email", "role"}
    assert body["role"] == "user" and body["username"] == "newbie"
    user = User.objects.get(pk=body["id"])
    assert user.check_password(GOOD) and user.agent is None and user.role == Role.USER


def test_register_cannot_choose_its_role(anon_api: APIClient) -> None:
    code, body = register(anon_api, role="admin")
    assert code == 201 and body["role"] == "user"
    assert User.objects.get(pk=body["id"]).role == Role.USER


def test_register_with_referral_code_joins_the_agent(anon_api: APIClient, agent_user: User) -> None:
    code, body = register(anon_api, referral_code="agentcode1")  # case-insensitive
    assert code == 201, body
    assert User.objects.get(pk=body["id"]).agent == agent_user


@pytest.mark.parametrize("referral", ["NOPE", "STRANGER1"])
def test_register_with_unknown_referral_code_is_400(anon_api: APIClient, stranger_user: User, referral: str) -> None:
    stranger_user.referral_code = "STRANGER1"  # a non-agent's code is no code
    stranger_user.save()
    code, body = register(anon_api, referral_code=referral)
    assert code == 400 and "referral_code" in body
    assert not User.objects.filter(username="newbie").exists()


@pytest.mark.parametrize(("data", "field"), [
    ({"password": "short"}, "password"),
    ({"password": "password123"}, "password"),
    ({"password": "12345678901"}, "password"),
    ({"password": "newbie-example"}, "password"),
    ({"email": "not-an-email"}, "email"),
    ({"email": ""}, "email"),
    ({"username": ""}, "username"),
    ({"username": "bad name!"}, "username"),
])
def test_register_rejects_bad_input(anon_api: APIClient, data: dict[str, str], field: str) -> None:
    code, body = register(anon_api, **data)
    assert code == 400 and field in body, body
    assert isinstance(body[field], list) and body[field]


def test_register_refuses_taken_username_and_email(anon_api: APIClient, stranger_user: User) -> None:
    code, body = register(anon_api, username="stranger")
    assert code == 400 and "username" in body
    code, body = register(anon_api, email="STRANGER@example.com")
    assert code == 400 and "email" in body


def test_registration_is_throttled(anon_api: APIClient) -> None:
    codes = [register(anon_api, username=f"u{i}", email=f"u{i}@example.com")[0] for i in range(21)]
    assert codes[:20] == [201] * 20 and codes[20] == 429


# tokens -----------------------------------------------------------------------------------------------------------


def test_login_refresh_logout(anon_api: APIClient, stranger_user: User) -> None:
    code, tokens = login(anon_api, "stranger")
    assert code == 200 and set(tokens) == {"access", "refresh"}
    me = bearer(tokens["access"]).get("/api/v1/auth/me/")
    assert me.status_code == 200 and me.json()["username"] == "stranger"

    refreshed = anon_api.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 200 and {"access", "refresh"} <= set(refreshed.json())
    # rotation blacklists the old refresh token
    again = anon_api.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert again.status_code == 401

    new_refresh = refreshed.json()["refresh"]
    out = anon_api.post("/api/v1/auth/logout/", {"refresh": new_refresh}, format="json")
    assert out.status_code == 200
    after = anon_api.post("/api/v1/auth/token/refresh/", {"refresh": new_refresh}, format="json")
    assert after.status_code == 401
    twice = anon_api.post("/api/v1/auth/logout/", {"refresh": new_refresh}, format="json")
    assert twice.status_code == 400 and "refresh" in twice.json()


def test_logout_rejects_garbage_and_missing(anon_api: APIClient) -> None:
    assert anon_api.post("/api/v1/auth/logout/", {"refresh": "garbage"}, format="json").status_code == 400
    response = anon_api.post("/api/v1/auth/logout/", {}, format="json")
    assert response.status_code == 400 and "refresh" in response.json()


def test_login_with_bad_credentials_is_401(anon_api: APIClient, stranger_user: User) -> None:
    code, body = login(anon_api, "stranger", "wrong-password")
    assert code == 401 and "access" not in body
    code, body = login(anon_api, "nobody", "wrong-password")
    assert code == 401
    stranger_user.is_active = False
    stranger_user.save()
    assert login(anon_api, "stranger")[0] == 401


def test_login_is_throttled_per_ip_and_username(anon_api: APIClient, stranger_user: User,
                                               make_user: Callable[..., User]) -> None:
    make_user("other")
    codes = [login(anon_api, "stranger", "wrong-password")[0] for _ in range(10)]
    assert codes == [401] * 10
    assert login(anon_api, "stranger")[0] == 429  # even with the right password
    assert login(anon_api, "STRANGER ")[0] == 429  # same username, other spelling
    assert login(anon_api, "other")[0] == 200  # another username from the same IP still works
    other_ip = APIClient(REMOTE_ADDR="10.9.8.7")
    assert login(other_ip, "stranger")[0] == 200


def test_invalid_access_token_is_401(anon_api: APIClient) -> None:
    assert bearer("not.a.token").get("/api/v1/auth/me/").status_code == 401
    assert anon_api.get("/api/v1/auth/me/").status_code == 401


# me -----------------------------------------------------------------------------------------------------------------


def test_me_shows_and_updates_email_and_webhook(client_api: APIClient, client_user: User, agent_user: User) -> None:
    body = client_api.get("/api/v1/auth/me/").json()
    assert body["username"] == "client" and body["role"] == "user" and body["agent"] == agent_user.pk
    assert body["webhook_url"] == "" and "password" not in body
    response = client_api.patch("/api/v1/auth/me/", {"email": "new@example.com",
                                                     "webhook_url": "https://hooks.example.com/x"}, format="json")
    assert response.status_code == 200, response.json()
    client_user.refresh_from_db()
    assert client_user.email == "new@example.com" and client_user.webhook_url == "https://hooks.example.com/x"
    response = client_api.patch("/api/v1/auth/me/", {"webhook_url": ""}, format="json")
    assert response.status_code == 200 and response.json()["webhook_url"] == ""


def test_me_cannot_change_role_agent_or_username(client_api: APIClient, client_user: User) -> None:
    response = client_api.patch("/api/v1/auth/me/", {"role": "admin", "agent": None, "username": "boss",
                                                     "referral_code": "MINE"}, format="json")
    assert response.status_code == 200
    client_user.refresh_from_db()
    assert (client_user.role, client_user.username, client_user.referral_code) == ("user", "client", None)
    assert client_user.agent is not None


@pytest.mark.parametrize(("data", "field"), [
    ({"webhook_url": "ftp://example.com/x"}, "webhook_url"),
    ({"webhook_url": "not a url"}, "webhook_url"),
    ({"email": "nope"}, "email"),
    ({"email": "stranger@example.com"}, "email"),
])
def test_me_rejects_bad_values(client_api: APIClient, stranger_user: User, data: dict[str, str],
                               field: str) -> None:
    response = client_api.patch("/api/v1/auth/me/", data, format="json")
    assert response.status_code == 400 and field in response.json()


# password change ------------------------------------------------------------------------------------------------


def test_password_change_revokes_refresh_tokens(anon_api: APIClient, stranger_user: User) -> None:
    _, tokens = login(anon_api, "stranger")
    api = bearer(tokens["access"])
    wrong = api.post("/api/v1/auth/password/change/", {"old_password": "nope", "new_password": GOOD}, format="json")
    assert wrong.status_code == 400 and "old_password" in wrong.json()
    weak = api.post("/api/v1/auth/password/change/", {"old_password": PASSWORD, "new_password": "123"},
                    format="json")
    assert weak.status_code == 400 and "new_password" in weak.json()
    ok = api.post("/api/v1/auth/password/change/", {"old_password": PASSWORD, "new_password": GOOD}, format="json")
    assert ok.status_code == 200
    assert login(anon_api, "stranger")[0] == 401
    assert login(anon_api, "stranger", GOOD)[0] == 200
    refresh = anon_api.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert refresh.status_code == 401


def test_password_change_revokes_rotated_refresh_tokens_too(anon_api: APIClient, stranger_user: User) -> None:
    _, tokens = login(anon_api, "stranger")
    rotated = anon_api.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json").json()
    ok = bearer(rotated["access"]).post("/api/v1/auth/password/change/",
                                        {"old_password": PASSWORD, "new_password": GOOD}, format="json")
    assert ok.status_code == 200
    again = anon_api.post("/api/v1/auth/token/refresh/", {"refresh": rotated["refresh"]}, format="json")
    assert again.status_code == 401


def test_password_change_needs_login(anon_api: APIClient) -> None:
    response = anon_api.post("/api/v1/auth/password/change/", {"old_password": "a", "new_password": GOOD},
                             format="json")
    assert response.status_code == 401


# password reset -------------------------------------------------------------------------------------------------


def _uid_token(message: str) -> tuple[str, str]:
    uid = re.search(r"uid: (\S+)", message)
    token = re.search(r"token: (\S+)", message)
    assert uid and token
    return uid.group(1), token.group(1)


def test_password_reset_flow(anon_api: APIClient, stranger_user: User) -> None:
    response = anon_api.post("/api/v1/auth/password/reset/", {"email": "Stranger@Example.com"}, format="json")
    assert response.status_code == 200
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["stranger@example.com"]
    uid, token = _uid_token(mail.outbox[0].body)

    confirm = "/api/v1/auth/password/reset/confirm/"
    weak = anon_api.post(confirm, {"uid": uid, "token": token, "new_password": "abc"}, format="json")
    assert weak.status_code == 400 and "new_password" in weak.json()
    bad = anon_api.post(confirm, {"uid": uid, "token": token + "x", "new_password": GOOD}, format="json")
    assert bad.status_code == 400 and "token" in bad.json()
    garbage = anon_api.post(confirm, {"uid": "!!", "token": token, "new_password": GOOD}, format="json")
    assert garbage.status_code == 400 and "token" in garbage.json()
    ok = anon_api.post(confirm, {"uid": uid, "token": token, "new_password": GOOD}, format="json")
    assert ok.status_code == 200
    assert login(anon_api, "stranger", GOOD)[0] == 200
    reused = anon_api.post(confirm, {"uid": uid, "token": token, "new_password": "Another-good-pass-7"},
                           format="json")
    assert reused.status_code == 400  # the token dies with the old password hash


def test_password_reset_says_nothing_about_unknown_addresses(anon_api: APIClient, stranger_user: User) -> None:
    known = anon_api.post("/api/v1/auth/password/reset/", {"email": "stranger@example.com"}, format="json")
    unknown = anon_api.post("/api/v1/auth/password/reset/", {"email": "ghost@example.com"}, format="json")
    assert known.status_code == unknown.status_code == 200 and known.json() == unknown.json()
    assert len(mail.outbox) == 1
    bad = anon_api.post("/api/v1/auth/password/reset/", {"email": "nope"}, format="json")
    assert bad.status_code == 400 and "email" in bad.json()


def test_password_reset_skips_inactive_users_and_is_throttled(anon_api: APIClient, stranger_user: User) -> None:
    stranger_user.is_active = False
    stranger_user.save()
    codes = [anon_api.post("/api/v1/auth/password/reset/", {"email": "stranger@example.com"},
                           format="json").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    assert mail.outbox == []


def test_password_reset_answers_the_same_when_mail_fails(anon_api: APIClient, stranger_user: User,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("mail server down")

    monkeypatch.setattr("gridfleet.server.users.views.send_mail", broken)
    response = anon_api.post("/api/v1/auth/password/reset/", {"email": "stranger@example.com"}, format="json")
    assert response.status_code == 200
