"""Celery tasks of the analytics app."""

from __future__ import annotations

from gridfleet.server.celery import app


@app.task(name="gridfleet.backtest_job", ignore_result=True)
def run_backtest_job(job_id: int) -> None:
    """Run the backtest job ``job_id`` (see :func:`gridfleet.server.analytics.backtests.run_job`)."""
    from gridfleet.server.analytics.backtests import run_job

    run_job(job_id)
