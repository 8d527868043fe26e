"""App config."""

from django.apps import AppConfig


class Config(AppConfig):
    """The exchange_accounts app."""

    name = "gridfleet.server.exchange_accounts"
    label = "exchange_accounts"
    default_auto_field = "django.db.models.BigAutoField"
