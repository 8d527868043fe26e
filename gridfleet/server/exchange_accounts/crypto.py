"""Encryption of exchange API credentials at rest: MultiFernet over ``settings.FERNET_KEYS`` (newest first).

Tokens written with any listed key decrypt; new tokens always use the newest key. After putting a new key first
in ``GRIDFLEET_FERNET_KEYS``, :func:`rotate_keys` re-encrypts every stored credential with it, after which the
old keys can be dropped. Plain credentials are never logged or put in exception messages.
"""

from __future__ import annotations

import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

ENCRYPTED_FIELDS = ("api_key_enc", "secret_enc", "password_enc")


class DecryptionError(Exception):
    """A stored credential cannot be decrypted with any configured key (the message holds no secret)."""


def fernet() -> MultiFernet:
    """Return the MultiFernet over the configured keys (the first one encrypts)."""
    keys = list(settings.FERNET_KEYS)
    if not keys:
        raise RuntimeError("settings.FERNET_KEYS is empty: no key to encrypt exchange credentials with")
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


def encrypt(value: str) -> str:
    """Return the Fernet token of ``value`` ("" stays "")."""
    if not value:
        return ""
    return fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    """Return the plain text of a token ("" stays ""); raise :class:`DecryptionError` when no key fits."""
    if not token:
        return ""
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("stored credential cannot be decrypted with the configured FERNET_KEYS") from None


def mask(value: str) -> str:
    """Return a hint that identifies a key without revealing it: ``abcd…wxyz`` (``…`` alone when short)."""
    value = value.strip()
    if len(value) < 12:
        return "…" + value[-2:] if len(value) >= 8 else "…"
    return f"{value[:4]}…{value[-4:]}"


def rotate_keys() -> int:
    """Re-encrypt every stored credential with the newest key; return the number of accounts rewritten."""
    from gridfleet.server.exchange_accounts.models import ExchangeAccount

    multi = fernet()
    count = 0
    with transaction.atomic():
        for account in ExchangeAccount.objects.select_for_update().order_by("pk"):
            for field in ENCRYPTED_FIELDS:
                token = getattr(account, field)
                if token:
                    try:
                        setattr(account, field, multi.rotate(token.encode()).decode())
                    except InvalidToken:
                        raise DecryptionError(
                            f"exchange account {account.pk}: {field} cannot be decrypted with the configured keys"
                        ) from None
            account.save(update_fields=[*ENCRYPTED_FIELDS, "updated_at"])
            count += 1
        secrets = _rotate_other_secrets(multi)
    logger.info("re-encrypted the credentials of %d exchange accounts (and %d other secrets) with the newest key",
                count, secrets)
    return count


# other apps' Fernet-encrypted fields, re-encrypted by rotate_keys too: model label -> fields
OTHER_ENCRYPTED = {"realtime.WebhookSecret": ("secret_enc", "previous_enc")}


def _rotate_other_secrets(multi: MultiFernet) -> int:
    from django.apps import apps

    count = 0
    for label, fields in OTHER_ENCRYPTED.items():
        try:
            model = apps.get_model(label)
        except LookupError:
            continue
        for row in model.objects.select_for_update().order_by("pk"):
            for field in fields:
                token = getattr(row, field)
                if token:
                    try:
                        setattr(row, field, multi.rotate(token.encode()).decode())
                    except InvalidToken:
                        raise DecryptionError(f"{label} {row.pk}: {field} cannot be decrypted with the configured "
                                              "keys") from None
            row.save(update_fields=list(fields))
            count += 1
    return count
