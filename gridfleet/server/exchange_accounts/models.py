"""Exchange API keys, encrypted at rest (Fernet/MultiFernet with key rotation), never returned."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ExchangeAccount(models.Model):
    """One API key on one exchange; the secret fields hold Fernet tokens, never plain text."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exchange_accounts")
    label = models.CharField(max_length=100)
    exchange = models.CharField(max_length=32)
    api_key_enc = models.TextField()
    secret_enc = models.TextField()
    password_enc = models.TextField(blank=True, default="")
    api_key_hint = models.CharField(max_length=16, blank=True, default="")  # masked, e.g. "abcd…wxyz"
    api_url = models.URLField(blank=True, default="")  # e.g. the local fake exchange
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
