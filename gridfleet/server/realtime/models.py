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
