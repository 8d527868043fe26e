"""Running backtest jobs: resolve the data file, run :func:`gridfleet.backtest.runner.run_backtest`, store.

Jobs are dispatched after the creating transaction commits. With a real Celery broker the task queue runs
them; in the embedded server (eager Celery, no broker) a daemon thread runs them so the request never blocks;
the test suite runs them eagerly (``GRIDFLEET_BACKTEST_THREAD`` setting overrides the choice).
"""

from __future__ import annotations

import logging
import os
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from gridfleet.server.analytics.models import BacktestJob, JobStatus

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[3]


def data_dir() -> Path:
    """Return the candle directory: setting/env ``GRIDFLEET_DATA_DIR``, else ``<repo>/../shared/data/ohlcv``."""
    configured = getattr(settings, "GRIDFLEET_DATA_DIR", None) or os.environ.get("GRIDFLEET_DATA_DIR")
    if configured:
        return Path(configured).resolve()
    return (REPO_ROOT / ".." / "shared" / "data" / "ohlcv").resolve()


def check_file_name(name: str) -> str:
    """Return ``name`` if it is a plain file name inside the data dir; raise ``ValueError`` otherwise."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        raise ValueError("must be the name of a file in the server's data directory (no path)")
    if not name.endswith((".csv", ".csv.gz", ".parquet")):
        raise ValueError("must be a .csv, .csv.gz or .parquet candle file")
    return name


def decimals(value: Any) -> Any:
    """Return JSON data with floats turned into Decimals through their shortest repr (0.1 stays 0.1)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decimals(v) for v in value]
    return value


def _notify(job: BacktestJob) -> None:
    try:
        from gridfleet.server.realtime.notify import publish  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return
    try:
        publish(job.owner_id, {"type": "notification", "data": {
            "kind": "backtest", "id": job.pk, "status": job.status, "error": job.error or None}})
    except Exception:  # a notification never fails a job
        log.exception("backtest %s: notification failed", job.pk)


def run_job(job_id: int) -> None:
    """Run one queued job to ``done`` or ``failed`` (never raises for a bad config or data file)."""
    from gridfleet.backtest.data import load_candles
    from gridfleet.backtest.runner import run_backtest
    from gridfleet.engine.config import parse_config

    updated = BacktestJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now())
    if not updated:
        return
    job = BacktestJob.objects.get(pk=job_id)
    _notify(job)
    path = data_dir() / str(job.data.get("file", ""))
    try:
        config = parse_config(decimals(job.config))
        candles = load_candles(path, start=job.start_ms, end=job.end_ms)
        result = run_backtest(config, candles)
        job.summary = result.to_json()
        job.status = JobStatus.DONE
    except Exception as exc:
        message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        job.error = message.replace(str(path), path.name)[:1000]
        job.status = JobStatus.FAILED
        if not isinstance(exc, ValueError):
            log.exception("backtest %s failed", job_id)
    job.finished_at = timezone.now()
    job.save(update_fields=["summary", "status", "error", "finished_at"])
    _notify(job)


def _in_thread() -> bool:
    explicit = getattr(settings, "GRIDFLEET_BACKTEST_THREAD", None)
    if explicit is not None:
        return bool(explicit)
    return bool(getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False) and not getattr(settings, "TESTING", False))


def _thread_main(job_id: int) -> None:
    close_old_connections()
    try:
        run_job(job_id)
    finally:
        connection.close()


def dispatch(job: BacktestJob) -> None:
    """Queue ``job`` once the current transaction commits (task queue, or a thread in the embedded server)."""
    from gridfleet.server.analytics.tasks import run_backtest_job

    job_id = job.pk
    if _in_thread():
        transaction.on_commit(lambda: threading.Thread(target=_thread_main, args=(job_id,), daemon=True,
                                                       name=f"backtest-{job_id}").start())
    else:
        transaction.on_commit(lambda: run_backtest_job.delay(job_id))
