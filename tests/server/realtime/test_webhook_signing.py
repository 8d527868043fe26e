"""Signed webhooks: HMAC-SHA256 over ``"<timestamp>." + body`` with the owner's secret, checked by a local receiver
with an independent implementation of the docs' recipe; secret readable by its owner only, rotatable."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from gridfleet.server.exchange_accounts import crypto
from gridfleet.server.realtime import webhook_signing
from gridfleet.server.realtime.alerts import alert, post_webhook, wait_idle
from gridfleet.server.realtime.models import WebhookSecret
from gridfleet.server.users.models import User

SECRET_URL = "/api/v1/webhook-secret/"


class Receiver:
    """A webhook receiver on 127.0.0.1 keeping the raw body and headers of every request; scripted statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.requests: list[tuple[bytes, dict[str, str]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append((raw, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(statuses: list[int] | None = None) -> Receiver:
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.close()


def receiver_verifies(secret: str, raw: bytes, headers: dict[str, str], tolerance: int = 300) -> bool:
    """The recipe of docs/realtime.md, written independently of the server's code."""
    timestamp = headers["x-gridfleet-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    given = [p.strip()[3:] for p in headers["x-gridfleet-signature"].split(",") if p.strip().startswith("v1=")]
    return any(hmac.compare_digest(expected, g) for g in given)


def hooked(user: User, url: str) -> User:
    user.webhook_url = url
    user.save(update_fields=["webhook_url"])
    return user


@pytest.mark.django_db
def test_alert_webhook_is_signed_with_the_owners_secret(make_user: Callable[..., User],
                                                        api_for: Callable[[User | None], APIClient],
                                                        receiver: Callable[..., Receiver]) -> None:
    r = receiver()
    user = hooked(make_user("erin"), r.url)
    secret = api_for(user).get(SECRET_URL).json()["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    alert(user, "risk_alert", "Risk alert", "below range", {"bot": 3})
    assert wait_idle(10)
    [(raw, headers)] = r.requests
    assert json.loads(raw)["kind"] == "risk_alert"
    assert receiver_verifies(secret, raw, headers)
    assert len(headers["x-gridfleet-delivery"]) == 32
    assert abs(int(headers["x-gridfleet-timestamp"]) - time.time()) < 5
    # a tampered body, another user's secret, or a replay outside the tolerance do not verify
    assert not receiver_verifies(secret, raw.replace(b"risk_alert", b"risk_alarm"), headers)
    assert not receiver_verifies(api_for(make_user("other")).get(SECRET_URL).json()["secret"], raw, headers)
    old = {**headers, "x-gridfleet-timestamp": str(int(headers["x-gridfleet-timestamp"]) - 600)}
    assert not receiver_verifies(secret, raw, old)
    # the server's reference verify() agrees
    assert webhook_signing.verify(secret, raw, headers["x-gridfleet-timestamp"], headers["x-gridfleet-signature"])
    assert not webhook_signing.verify(secret, raw + b" ", headers["x-gridfleet-timestamp"],
                                      headers["x-gridfleet-signature"])
    assert not webhook_signing.verify(secret, raw, "nan", headers["x-gridfleet-signature"])


@pytest.mark.django_db
def test_retries_are_signed_again_with_one_delivery_id(receiver: Callable[..., Receiver], settings: Any) -> None:
    settings.REALTIME_WEBHOOK_BACKOFF = 0.01
    r = receiver([503, 500])
    assert post_webhook(r.url, {"kind": "x"}, ["whsec_test-secret"]) is True
    assert len(r.requests) == 3
    assert len({h["x-gridfleet-delivery"] for _, h in r.requests}) == 1
    assert all(receiver_verifies("whsec_test-secret", raw, h) for raw, h in r.requests)


@pytest.mark.django_db
def test_secret_is_owner_only_and_encrypted_at_rest(admin_api: APIClient, client_api: APIClient,
                                                    agent_api: APIClient, anon_api: APIClient,
                                                    client_user: User, admin_user: User) -> None:
    mine = client_api.get(SECRET_URL).json()
    assert client_api.get(SECRET_URL).json()["secret"] == mine["secret"]  # stable until rotated
    assert admin_api.get(SECRET_URL).json()["secret"] != mine["secret"]  # the admin gets its own
    assert agent_api.get(SECRET_URL).json()["secret"] != mine["secret"]
    assert anon_api.get(SECRET_URL).status_code == 401
    assert anon_api.post(f"{SECRET_URL}rotate/").status_code == 401
    assert anon_api.post(f"{SECRET_URL}test/").status_code == 401
    stored = WebhookSecret.objects.get(user=client_user)
    assert mine["secret"] not in stored.secret_enc and "whsec_" not in repr(stored) + str(stored)
    assert crypto.decrypt(stored.secret_enc) == mine["secret"]
    assert mine["algorithm"] == "HMAC-SHA256" and "X-Gridfleet-Signature" in mine["headers"]


@pytest.mark.django_db
def test_rotation_signs_with_both_secrets_during_the_grace_period(make_user: Callable[..., User],
                                                                  api_for: Callable[[User | None], APIClient],
                                                                  receiver: Callable[..., Receiver]) -> None:
    r = receiver()
    user = hooked(make_user("rot"), r.url)
    api = api_for(user)
    old = api.get(SECRET_URL).json()["secret"]
    rotated = api.post(f"{SECRET_URL}rotate/")
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != old and api.get(SECRET_URL).json()["secret"] == new
    assert rotated.json()["previous_expires_at"] is not None
    alert(user, "bot_error", "boom")
    assert wait_idle(10)
    raw, headers = r.requests[-1]
    assert headers["x-gridfleet-signature"].count("v1=") == 2
    assert receiver_verifies(new, raw, headers) and receiver_verifies(old, raw, headers)
    # once the grace period is over only the new secret signs
    WebhookSecret.objects.filter(user=user).update(previous_expires_at=timezone.now() - timedelta(seconds=1))
    alert(user, "bot_error", "boom again")
    assert wait_idle(10)
    raw, headers = r.requests[-1]
    assert headers["x-gridfleet-signature"].count("v1=") == 1
    assert receiver_verifies(new, raw, headers) and not receiver_verifies(old, raw, headers)
    assert api.get(SECRET_URL).json()["previous_expires_at"] is None


@pytest.mark.django_db
def test_test_endpoint_sends_a_signed_ping(make_user: Callable[..., User],
                                           api_for: Callable[[User | None], APIClient],
                                           receiver: Callable[..., Receiver]) -> None:
    user = make_user("pinger")
    api = api_for(user)
    assert api.post(f"{SECRET_URL}test/").json() == {"ok": False,
                                                     "message": "no webhook_url set (PATCH /api/v1/auth/me/)"}
    r = receiver([500])
    hooked(user, r.url)
    assert api.post(f"{SECRET_URL}test/").json()["ok"] is False  # one attempt only, no retry
    assert len(r.requests) == 1
    response = api.post(f"{SECRET_URL}test/").json()
    assert response["ok"] is True
    raw, headers = r.requests[-1]
    assert json.loads(raw)["type"] == "ping" and headers["x-gridfleet-event"] == "ping"
    assert receiver_verifies(api.get(SECRET_URL).json()["secret"], raw, headers)


@pytest.mark.django_db
def test_fernet_key_rotation_reencrypts_webhook_secrets(client_api: APIClient, client_user: User,
                                                        settings: Any) -> None:
    secret = client_api.get(SECRET_URL).json()["secret"]
    client_api.post(f"{SECRET_URL}rotate/")
    new_key = Fernet.generate_key().decode()
    with override_settings(FERNET_KEYS=[new_key, *settings.FERNET_KEYS]):
        crypto.rotate_keys()
    with override_settings(FERNET_KEYS=[new_key]):
        record = WebhookSecret.objects.get(user=client_user)
        assert crypto.decrypt(record.previous_enc) == secret
        assert client_api.get(SECRET_URL).json()["secret"] == crypto.decrypt(record.secret_enc)
