"""App config."""

from django.apps import AppConfig


class Config(AppConfig):
    """The realtime app."""

    name = "gridfleet.server.realtime"
    label = "realtime"
    default_auto_field = "django.db.models.BigAutoField"
