"""App config."""

from django.apps import AppConfig


class Config(AppConfig):
    """Profit-share fees: settlements with a high-water mark, statements, balance guard and agent commission."""

    name = "gridfleet.server.fees"
    label = "fees"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Add the settlement and guard schedules to Celery beat (``gridfleet beat`` keeps them)."""
        from gridfleet.server.celery import app
        from gridfleet.server.fees.tasks import beat_schedule

        app.conf.beat_schedule = {**(app.conf.beat_schedule or {}), **beat_schedule()}
