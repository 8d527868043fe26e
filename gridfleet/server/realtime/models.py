"""Stored notifications: what a user was alerted about (risk alerts, bot errors), read or not."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Notification(models.Model):
    """One alert for one user; ``read_at`` is set when the user marks it read."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "read_at", "id"])]

    def __str__(self) -> str:
        """Return the title."""
        return self.title


class WebhookSecret(models.Model):
    """A user's webhook signing secret (Fernet-encrypted at rest); after a rotation the previous secret keeps
    signing too until ``previous_expires_at``, so receivers can switch without losing deliveries."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True,
                                related_name="webhook_secret")
    secret_enc = models.TextField()
    previous_enc = models.TextField(blank=True, default="")
    previous_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        """Return whose secret this is (never the secret)."""
        return f"webhook secret of user {self.user_id}"

    __repr__ = __str__
