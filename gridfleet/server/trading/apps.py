"""App config."""

import os

from django.apps import AppConfig


class Config(AppConfig):
    """The trading app."""

    name = "gridfleet.server.trading"
    label = "trading"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """With ``GRIDFLEET_RUNTIME=workers`` (API processes of a scale-out deployment) bots run in Celery workers."""
        if os.environ.get("GRIDFLEET_RUNTIME") == "workers":
            from gridfleet.server.trading.service import set_runtime
            from gridfleet.server.trading.tasks import WorkerRuntime

            set_runtime(WorkerRuntime())
