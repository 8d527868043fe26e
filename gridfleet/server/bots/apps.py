"""App config."""

from django.apps import AppConfig


class Config(AppConfig):
    """The bots app."""

    name = "gridfleet.server.bots"
    label = "bots"
    default_auto_field = "django.db.models.BigAutoField"
