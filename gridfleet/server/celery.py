"""The Celery application (workers host bots and run backtests; beat schedules snapshots and settlements)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gridfleet.server.settings")
app = Celery("gridfleet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
