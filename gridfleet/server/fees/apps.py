"""App config."""

from django.apps import AppConfig


class Config(AppConfig):
    """Profit-share fees: settlements with a high-water mark, statements, balance guard and agent commission."""

    name = "gridfleet.server.fees"
    label = "fees"
    default_auto_field = "django.db.models.BigAutoField"
