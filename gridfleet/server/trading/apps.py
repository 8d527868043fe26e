"""App config."""

from django.apps import AppConfig


class Config(AppConfig):
    """The trading app."""

    name = "gridfleet.server.trading"
    label = "trading"
    default_auto_field = "django.db.models.BigAutoField"
