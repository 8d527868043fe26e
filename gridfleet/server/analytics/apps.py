"""App config."""

from django.apps import AppConfig


class Config(AppConfig):
    """The analytics app."""

    name = "gridfleet.server.analytics"
    label = "analytics"
    default_auto_field = "django.db.models.BigAutoField"
