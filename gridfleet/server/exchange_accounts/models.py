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

    def __str__(self) -> str:
        """Return the label, venue and masked key (never a secret)."""
        return f"{self.label} ({self.exchange}, {self.api_key_hint or '…'})"

    def __repr__(self) -> str:
        """Return a representation without any credential."""
        return f"<ExchangeAccount {self.pk}: {self}>"

    def set_credentials(self, api_key: str, secret: str, password: str = "") -> None:
        """Encrypt and store the credentials (and the masked key hint); does not save."""
        from gridfleet.server.exchange_accounts.crypto import encrypt, mask

        self.api_key_enc = encrypt(api_key)
        self.secret_enc = encrypt(secret)
        self.password_enc = encrypt(password)
        self.api_key_hint = mask(api_key)

    def credentials(self) -> dict[str, str]:
        """Return the decrypted keys as the exchange factory takes them: ``{"apiKey", "secret"[, "password"]}``."""
        from gridfleet.server.exchange_accounts.crypto import decrypt

        keys = {"apiKey": decrypt(self.api_key_enc), "secret": decrypt(self.secret_enc)}
        password = decrypt(self.password_enc)
        if password:
            keys["password"] = password
        return keys
