"""``api_url`` (SSRF guard): admins may set any http(s) URL, others only what GRIDFLEET_API_URL_ALLOW allows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from gridfleet.server.exchange_accounts import url_policy
from gridfleet.server.exchange_accounts.models import ExchangeAccount

URL = "/api/v1/exchange-accounts/"
Client = Callable[[str], APIClient]


def create(client: APIClient, **overrides: Any) -> Any:
    body = {"label": "main", "exchange": "binance", "api_key": "KEY-abcdefgh-1234", "secret": "SECRET-123456789"}
    body.update(overrides)
    return client.post(URL, body, format="json")


@pytest.mark.django_db
def test_test_settings_allow_loopback_for_users(client_for: Client) -> None:
    for url in ("http://127.0.0.1:8765", "http://localhost:1/", "https://[::1]:9443/api"):
        response = create(client_for("alice"), api_url=url)
        assert response.status_code == 201, (url, response.json())
        assert response.json()["api_url"] == url


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.5:6379/",
                                 "https://evil.example.com/", "http://127.0.0.2:80/", "http://localhost.evil.com/"])
def test_users_cannot_point_at_other_hosts(client_for: Client, url: str) -> None:
    response = create(client_for("alice"), api_url=url)
    assert response.status_code == 400
    message = " ".join(response.json()["api_url"])
    assert "only an admin" in message and "GRIDFLEET_API_URL_ALLOW" in message
    assert not ExchangeAccount.objects.exists()


@pytest.mark.django_db
def test_admin_may_set_any_http_url_and_the_owner_keeps_it(client_for: Client, users: dict[str, Any]) -> None:
    response = create(client_for("admin"), api_url="https://testnet.binance.vision")
    assert response.status_code == 201, response.json()
    # an admin moves a user's account to an internal gateway
    account = ExchangeAccount.objects.create(owner=users["alice"], label="a", exchange="binance")
    patch = client_for("admin").patch(f"{URL}{account.pk}/", {"api_url": "http://gateway.internal:8080"},
                                      format="json")
    assert patch.status_code == 200, patch.json()
    # the owner edits another field, and sends the URL back unchanged: both accepted
    alice = client_for("alice")
    assert alice.patch(f"{URL}{account.pk}/", {"label": "renamed"}, format="json").status_code == 200
    same = alice.patch(f"{URL}{account.pk}/", {"api_url": "http://gateway.internal:8080"}, format="json")
    assert same.status_code == 200
    # but cannot change it to another non-allowed URL; clearing it is always fine
    other = alice.patch(f"{URL}{account.pk}/", {"api_url": "http://gateway.internal:9090"}, format="json")
    assert other.status_code == 400 and "api_url" in other.json()
    account.refresh_from_db()
    assert account.api_url == "http://gateway.internal:8080"
    cleared = alice.patch(f"{URL}{account.pk}/", {"api_url": ""}, format="json")
    assert cleared.status_code == 200
    account.refresh_from_db()
    assert account.api_url == ""


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "reason"), [("ftp://127.0.0.1/", "http"),
                                             ("http://user:pw@127.0.0.1:1/", "credentials"),
                                             ("http://127.0.0.1:1/?x=1", "query")])
def test_only_plain_http_urls_even_for_admins(client_for: Client, url: str, reason: str) -> None:
    response = create(client_for("admin"), api_url=url)
    assert response.status_code == 400
    assert reason in " ".join(response.json()["api_url"])


@pytest.mark.django_db
def test_allow_list_setting(client_for: Client) -> None:
    with override_settings(GRIDFLEET_API_URL_ALLOW="https://*.binance.vision, http://10.1.2.3:8080"):
        assert create(client_for("alice"), api_url="https://testnet.binance.vision/").status_code == 201
        assert create(client_for("alice"), api_url="http://10.1.2.3:8080").status_code == 201
        assert create(client_for("alice"), api_url="http://10.1.2.3:8081").status_code == 400
        assert create(client_for("alice"), api_url="https://binance.vision.evil.com").status_code == 400
        assert create(client_for("alice"), api_url="http://127.0.0.1:1").status_code == 400  # loopback not listed
    with override_settings(GRIDFLEET_API_URL_ALLOW=""):
        assert create(client_for("alice"), api_url="http://127.0.0.1:1").status_code == 400
        assert create(client_for("admin"), api_url="http://127.0.0.1:1").status_code == 201


def test_defaults_by_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(url_policy.SETTING, raising=False)
    with override_settings(TESTING=False):
        monkeypatch.setattr(url_policy, "is_embedded", lambda: True)
        assert url_policy.allow_list() == list(url_policy.LOOPBACK)
        monkeypatch.setattr(url_policy, "is_embedded", lambda: False)
        assert url_policy.allow_list() == []
        monkeypatch.setenv(url_policy.SETTING, "http://fake.local:*")
        assert url_policy.is_allowed("http://fake.local:4321")
        assert not url_policy.is_allowed("http://127.0.0.1:4321")


def test_patterns() -> None:
    allow = ["http://127.0.0.1:*", "https://api.example.com", "bad entry", "http://*.svc:8000"]
    assert url_policy.is_allowed("http://127.0.0.1:65000/x", allow)
    assert not url_policy.is_allowed("https://127.0.0.1:1", allow)  # scheme differs
    assert url_policy.is_allowed("https://API.example.com/", allow)
    assert not url_policy.is_allowed("https://api.example.com:8443", allow)  # no port: default port only
    assert url_policy.is_allowed("http://a.b.svc:8000", allow)
    assert not url_policy.is_allowed("http://svc:8000", allow)
    with pytest.raises(ValueError, match="bad entry"):
        url_policy.parse_pattern("bad entry")
