"""Webhook signatures: HMAC-SHA256 over ``"<timestamp>." + body`` with the user's webhook secret.

Every webhook POST carries

* ``X-Gridfleet-Timestamp``: Unix seconds when this attempt was signed (a retry is signed again);
* ``X-Gridfleet-Signature``: ``v1=<hex>`` — ``hex(HMAC_SHA256(secret, f"{timestamp}.".encode() + raw_body))``;
  during the grace period after a rotation it holds two entries, ``v1=<new>,v1=<old>``;
* ``X-Gridfleet-Delivery``: an id that stays the same across the retries of one delivery (for de-duplication).

A receiver recomputes the HMAC over the raw body it received, compares it in constant time with any ``v1=`` entry,
and rejects timestamps older than a few minutes (replays). The recipe is in docs/realtime.md.

Secrets are per user, generated on first use (``whsec_`` + 32 random bytes, URL-safe base64), Fernet-encrypted at
rest with the exchange-credential keys, readable only by their owner (``GET /api/v1/webhook-secret/``) and
rotatable (``POST /api/v1/webhook-secret/rotate/``); the previous secret keeps signing for
``REALTIME_WEBHOOK_SECRET_GRACE`` seconds (default 24 h) after a rotation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from gridfleet.server.exchange_accounts.crypto import decrypt, encrypt
from gridfleet.server.realtime.models import WebhookSecret

SCHEME = "v1"
PREFIX = "whsec_"
TIMESTAMP_HEADER = "X-Gridfleet-Timestamp"
SIGNATURE_HEADER = "X-Gridfleet-Signature"
DELIVERY_HEADER = "X-Gridfleet-Delivery"
DEFAULT_GRACE_S = 24 * 3600
DEFAULT_TOLERANCE_S = 300


def new_secret() -> str:
    """Return a fresh random secret."""
    return PREFIX + secrets.token_urlsafe(32)


def grace() -> timedelta:
    """Return how long the previous secret keeps signing after a rotation."""
    return timedelta(seconds=float(getattr(settings, "REALTIME_WEBHOOK_SECRET_GRACE", DEFAULT_GRACE_S)))


def secret_record(user: Any) -> WebhookSecret:
    """Return the user's secret record, creating it (with a fresh secret) on first use."""
    record = WebhookSecret.objects.filter(user=user).first()
    if record is not None:
        return record
    try:
        with transaction.atomic():
            return WebhookSecret.objects.create(user=user, secret_enc=encrypt(new_secret()))
    except IntegrityError:  # created concurrently: use the winner's
        return WebhookSecret.objects.get(user=user)


def describe(record: WebhookSecret) -> dict[str, Any]:
    """Return the owner's view of the record: the current secret and when the previous one stops signing."""
    previous_active = bool(record.previous_enc) and record.previous_expires_at is not None \
        and record.previous_expires_at > timezone.now()
    return {"secret": decrypt(record.secret_enc), "created_at": record.created_at, "rotated_at": record.rotated_at,
            "previous_expires_at": record.previous_expires_at if previous_active else None,
            "algorithm": "HMAC-SHA256", "signed_payload": "<X-Gridfleet-Timestamp>.<raw body>",
            "headers": [TIMESTAMP_HEADER, SIGNATURE_HEADER, DELIVERY_HEADER]}


def rotate(user: Any) -> WebhookSecret:
    """Replace the user's secret with a new one; the old one keeps signing during the grace period."""
    with transaction.atomic():
        record = secret_record(user)
        record = WebhookSecret.objects.select_for_update().get(pk=record.pk)
        now = timezone.now()
        record.previous_enc = record.secret_enc
        record.previous_expires_at = now + grace()
        record.secret_enc = encrypt(new_secret())
        record.rotated_at = now
        record.save()
    return record


def signing_secrets(user: Any) -> list[str]:
    """Return the secrets a delivery to ``user`` is signed with: the current one, then the previous one while in
    its grace period."""
    record = secret_record(user)
    out = [decrypt(record.secret_enc)]
    if record.previous_enc and record.previous_expires_at is not None and record.previous_expires_at > timezone.now():
        out.append(decrypt(record.previous_enc))
    return out


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Return the hex HMAC-SHA256 of ``f"{timestamp}." + body`` under ``secret``."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_headers(secrets_: list[str], body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """Return the timestamp and signature headers of one attempt (empty when there is no secret)."""
    if not secrets_:
        return {}
    ts = int(time.time()) if timestamp is None else timestamp
    value = ",".join(f"{SCHEME}={sign(s, ts, body)}" for s in secrets_)
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: value}


def verify(secret: str, body: bytes, timestamp: str, signature: str, *, tolerance_s: float = DEFAULT_TOLERANCE_S,
           now: float | None = None) -> bool:
    """Check a received webhook the way a receiver should (the reference implementation of the docs' recipe)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance_s:
        return False
    expected = sign(secret, ts, body)
    for part in signature.split(","):
        scheme, _, value = part.strip().partition("=")
        if scheme == SCHEME and hmac.compare_digest(value, expected):
            return True
    return False
