"""App config."""

from django.apps import AppConfig


class Config(AppConfig):
    """The users app."""

    name = "gridfleet.server.users"
    label = "users"
    default_auto_field = "django.db.models.BigAutoField"
