"""Users with a role: admin, agent (reseller) or user; a user may belong to an agent."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    """What a user may do."""

    ADMIN = "admin", "admin"
    AGENT = "agent", "agent"
    USER = "user", "user"


class User(AbstractUser):
    """A person using gridfleet."""

    role = models.CharField(max_length=8, choices=Role.choices, default=Role.USER)
    agent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="clients",
                              limit_choices_to={"role": Role.AGENT})
    referral_code = models.CharField(max_length=16, unique=True, null=True, blank=True)
    webhook_url = models.URLField(max_length=500, blank=True, default="",
                                  help_text="Where alerts (risk rules, errors) are POSTed as JSON; empty: none.")

    @property
    def is_admin_role(self) -> bool:
        """Return True for admins (and Django superusers)."""
        return self.role == Role.ADMIN or self.is_superuser

    @property
    def is_agent(self) -> bool:
        """Return True for agents."""
        return self.role == Role.AGENT
