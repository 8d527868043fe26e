"""Celery tasks of the fees app: the periodic settlement and the balance guard's periodic check.

:data:`BEAT_SCHEDULE` is merged into Celery's ``beat_schedule`` when the app is ready (see ``apps.py``), like the
equity snapshots of the trading app: the settlement runs five minutes after each period ends
(``GRIDFLEET_BILLING_PERIOD``: hourly, daily (default), weekly or monthly) and settles the period that ended;
the guard re-checks users every five minutes (a warning turns into a pause once its grace period is over).
"""

from __future__ import annotations

import logging
from typing import Any

from celery.schedules import crontab

from gridfleet.server.celery import app

log = logging.getLogger(__name__)

_CRONTABS = {
    "hourly": {"minute": "5"},
    "daily": {"minute": "5", "hour": "0"},
    "weekly": {"minute": "5", "hour": "0", "day_of_week": "1"},
    "monthly": {"minute": "5", "hour": "0", "day_of_month": "1"},
}


def beat_schedule() -> dict[str, dict[str, Any]]:
    """Return the fees app's periodic tasks for the configured settlement period."""
    from gridfleet.server.fees.conf import period_kind

    return {
        "gridfleet-billing-settlement": {"task": "gridfleet.billing_settle", "schedule": crontab(
            **_CRONTABS[period_kind()])},
        "gridfleet-billing-guard": {"task": "gridfleet.billing_guard", "schedule": 300.0},
    }


@app.task(name="gridfleet.billing_settle", ignore_result=True)
def billing_settle(period: str | None = None, bot: int | None = None) -> dict[str, Any]:
    """Settle every bot for the last completed period (or ``period``, an ISO date); return a summary."""
    from gridfleet.server.fees.services import run_settlement

    report = run_settlement(period, bot)
    summary = {"period": report.period, "settled": len(report.settled), "fees": str(report.total_fees()),
               "failed": sum(1 for r in report.results if r.skipped.startswith("failed"))}
    log.info("billing settlement %s", summary)
    return summary


@app.task(name="gridfleet.billing_guard", ignore_result=True)
def billing_guard() -> dict[str, int]:
    """Re-check the balance guard of every user concerned."""
    from gridfleet.server.fees.guard import check_all

    return check_all()
