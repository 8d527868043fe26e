"""Exchange accounts: CRUD, credentials encrypted and never returned or logged, key rotation, connection test."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings
from rest_framework.test import APIClient

from gridfleet.exchanges.base import AuthenticationError, Balance
from gridfleet.server.exchange_accounts import crypto
from gridfleet.server.exchange_accounts.models import ExchangeAccount
from gridfleet.server.users.models import User

API_KEY = "AKEYabcdefghijklmnopWXYZ"
SECRET = "SECRET-0123456789-very-secret"
PASSWORD = "pass-phrase-42"
URL = "/api/v1/exchange-accounts/"
Client = Callable[[str], APIClient]


def create(client: APIClient, **overrides: Any) -> Any:
    body = {"label": "main", "exchange": "binance", "api_key": API_KEY, "secret": SECRET, "password": PASSWORD}
    body.update(overrides)
    return client.post(URL, body, format="json")


def assert_no_secret(text: str) -> None:
    for secret in (API_KEY, SECRET, PASSWORD):
        assert secret not in text


@pytest.mark.django_db
def test_create_stores_encrypted_and_returns_masked_key(client_for: Client, users: dict[str, User]) -> None:
    response = create(client_for("alice"))
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["api_key_masked"] == "AKEY…WXYZ"
    assert data["owner"] == users["alice"].pk
    assert not {"api_key", "secret", "password", "api_key_enc", "secret_enc"} & set(data)
    assert_no_secret(response.content.decode())
    account = ExchangeAccount.objects.get(pk=data["id"])
    assert_no_secret(account.api_key_enc + account.secret_enc + account.password_enc)
    assert account.credentials() == {"apiKey": API_KEY, "secret": SECRET, "password": PASSWORD}
    assert_no_secret(repr(account) + str(account))


@pytest.mark.django_db
def test_no_response_contains_secrets(client_for: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = client_for("alice")
    pk = create(client).json()["id"]
    bodies = [client.get(URL), client.get(f"{URL}{pk}/"),
              client.patch(f"{URL}{pk}/", {"label": "renamed"}, format="json"),
              client.put(f"{URL}{pk}/", {"label": "x", "exchange": "binance", "api_key": API_KEY, "secret": SECRET},
                         format="json")]
    with mock.patch("gridfleet.exchanges.factory.create_exchange", side_effect=AuthenticationError(
            f"binance {{\"code\":-2015,\"msg\":\"Invalid API-key {API_KEY}\"}} signature=abc{SECRET}")):
        bodies.append(client.post(f"{URL}{pk}/test/"))
    for response in bodies:
        assert response.status_code == 200, response.content
        assert_no_secret(response.content.decode())
    assert bodies[-1].json()["ok"] is False
    assert "authentication failed" in bodies[-1].json()["message"]
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    assert_no_secret(caplog.text)


@pytest.mark.django_db
def test_validation_errors_name_fields(client_for: Client) -> None:
    client = client_for("alice")
    response = client.post(URL, {"label": "x", "exchange": "nosuchex"}, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert {"exchange", "api_key", "secret"} <= set(errors)
    assert "unknown exchange" in errors["exchange"][0]
    response = create(client, api_url="not a url")
    assert response.status_code == 400 and "api_url" in response.json()


@pytest.mark.django_db
def test_update_replaces_credentials_only_as_a_pair(client_for: Client) -> None:
    client = client_for("alice")
    pk = create(client).json()["id"]
    response = client.patch(f"{URL}{pk}/", {"api_key": "NEWKEY-0000-1111-2222"}, format="json")
    assert response.status_code == 400 and "secret" in response.json()
    response = client.patch(f"{URL}{pk}/", {"api_key": "NEWKEY-0000-1111-2222", "secret": "s2"}, format="json")
    assert response.status_code == 200
    assert response.json()["api_key_masked"] == "NEWK…2222"
    account = ExchangeAccount.objects.get(pk=pk)
    assert account.credentials() == {"apiKey": "NEWKEY-0000-1111-2222", "secret": "s2"}


@pytest.mark.django_db
def test_scoping_owner_agent_admin(client_for: Client, users: dict[str, User]) -> None:
    mine = create(client_for("client")).json()["id"]
    create(client_for("bob"))
    assert client_for("alice").get(f"{URL}{mine}/").status_code == 404
    assert client_for("alice").delete(f"{URL}{mine}/").status_code == 404
    assert [a["id"] for a in client_for("alice").get(URL).json()["results"]] == []
    agent = client_for("agent")
    assert agent.get(f"{URL}{mine}/").status_code == 200  # agents read their clients' accounts
    assert [a["id"] for a in agent.get(URL).json()["results"]] == [mine]
    assert agent.patch(f"{URL}{mine}/", {"label": "x"}, format="json").status_code == 403
    assert agent.post(f"{URL}{mine}/test/").status_code == 403
    assert agent.delete(f"{URL}{mine}/").status_code == 403
    assert len(client_for("admin").get(URL).json()["results"]) == 2
    assert client_for("admin").patch(f"{URL}{mine}/", {"label": "by admin"}, format="json").status_code == 200
    assert client_for("client").delete(f"{URL}{mine}/").status_code == 204
    assert APIClient().get(URL).status_code == 401


@pytest.mark.django_db
def test_delete_refused_while_a_bot_uses_the_account(client_for: Client) -> None:
    client = client_for("alice")
    pk = create(client).json()["id"]
    body = {"name": "live", "mode": "live", "symbol": "BTC/USDT", "exchange_account": pk,
            "config": {"grid": {"lower": "1", "upper": "2", "levels": 3}, "qty_per_order": "1"}}
    assert client.post("/api/v1/bots/", body, format="json").status_code == 201
    response = client.patch(f"{URL}{pk}/", {"exchange": "okx"}, format="json")
    assert response.status_code == 400 and "exchange" in response.json()
    response = client.delete(f"{URL}{pk}/")
    assert response.status_code == 409
    assert ExchangeAccount.objects.filter(pk=pk).exists()


@pytest.mark.django_db
def test_key_rotation_reencrypts_with_the_newest_key(client_for: Client, settings: Any) -> None:
    pk = create(client_for("alice")).json()["id"]
    old_tokens = ExchangeAccount.objects.values_list("api_key_enc", "secret_enc", "password_enc").get(pk=pk)
    old_key = settings.FERNET_KEYS[0]
    new_key = Fernet.generate_key().decode()
    with override_settings(FERNET_KEYS=[new_key, old_key]):
        assert ExchangeAccount.objects.get(pk=pk).credentials()["secret"] == SECRET  # old tokens still read
        assert crypto.rotate_keys() == 1
        account = ExchangeAccount.objects.get(pk=pk)
        assert account.api_key_enc not in old_tokens
        for token in (account.api_key_enc, account.secret_enc, account.password_enc):
            Fernet(new_key.encode()).decrypt(token.encode())  # the new key alone decrypts
    with override_settings(FERNET_KEYS=[new_key]):  # the old key can now be dropped
        assert ExchangeAccount.objects.get(pk=pk).credentials() == {"apiKey": API_KEY, "secret": SECRET,
                                                                    "password": PASSWORD}
        assert client_for("alice").get(f"{URL}{pk}/").json()["api_key_masked"] == "AKEY…WXYZ"
    with override_settings(FERNET_KEYS=[Fernet.generate_key().decode()]), \
            pytest.raises(crypto.DecryptionError) as info:
        ExchangeAccount.objects.get(pk=pk).credentials()
    assert_no_secret(str(info.value))


def test_mask() -> None:
    assert crypto.mask("abcdefghijklmnopwxyz") == "abcd…wxyz"
    assert crypto.mask("short") == "…"
    assert SECRET not in crypto.mask(SECRET)


class _FakeAdapter:
    def __init__(self, balances: dict[str, Balance]) -> None:
        self.balances = balances
        self.closed = False

    async def fetch_balances(self) -> dict[str, Balance]:
        return self.balances

    async def close(self) -> None:
        self.closed = True


@pytest.mark.django_db
def test_connection_test_through_the_factory(client_for: Client) -> None:
    client = client_for("alice")
    pk = create(client, api_url="http://127.0.0.1:9/").json()["id"]
    adapter = _FakeAdapter({"USDT": Balance(free=Decimal(100), used=Decimal(0)),
                            "BTC": Balance(free=Decimal(0), used=Decimal(0))})
    with mock.patch("gridfleet.exchanges.factory.create_exchange", return_value=adapter) as factory:
        response = client.post(f"{URL}{pk}/test/")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "message": "connected to binance: 1 assets with a balance"}
    args, kwargs = factory.call_args
    assert args == ("binance",)
    assert kwargs["keys"] == {"apiKey": API_KEY, "secret": SECRET, "password": PASSWORD}
    assert kwargs["api_url"] == "http://127.0.0.1:9/"
    assert adapter.closed
