"""Running backtest jobs: resolve the data file, run :func:`gridfleet.backtest.runner.run_backtest`, store.

Jobs are dispatched after the creating transaction commits. With a real Celery broker the task queue runs
them; in the embedded server (eager Celery, no broker) a daemon thread runs them so the request never blocks;
the test suite runs them eagerly (``GRIDFLEET_BACKTEST_THREAD`` setting overrides the choice).

A running job carries its runner (``host:pid:token`` of the process, :data:`PROCESS_TOKEN`) and a heartbeat that
a side thread renews every ``GRIDFLEET_BACKTEST_HEARTBEAT`` seconds (default 10). A job whose process died (a
restart, a killed worker) stays ``running`` in the database; :func:`recover_stale_jobs` — run by ``gridfleet
serve`` and ``gridfleet worker`` at start and then periodically (:func:`start_recovery_thread`) — marks it
``failed`` with a clear error when

* its heartbeat is older than ``GRIDFLEET_BACKTEST_STALE_AFTER`` seconds (default 60), wherever it ran; or
* it ran on this host in a process that is gone (its pid is dead, or it is this pid with another token: a
  restarted container) — at once, without waiting for the heartbeat to age.

A job whose runner is alive keeps its heartbeat fresh and is never touched. Only the runner that claimed a job
writes its result. In the embedded server (thread mode) jobs still ``queued`` at start (their thread died with
the old process) are dispatched again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from gridfleet.server.analytics.models import BacktestJob, JobStatus

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[3]
HOST = socket.gethostname()
PROCESS_TOKEN = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
"""This process's runner id: host, pid and a random token (a restarted process with the same pid differs)."""
INTERRUPTED = ("interrupted: the server or worker process running this backtest stopped before it finished "
               "({why}); submit it again")


def heartbeat_every() -> float:
    """Seconds between heartbeats of a running job."""
    return float(getattr(settings, "GRIDFLEET_BACKTEST_HEARTBEAT", 10.0))


def stale_after() -> float:
    """Seconds without a heartbeat after which a running job counts as abandoned."""
    return float(getattr(settings, "GRIDFLEET_BACKTEST_STALE_AFTER", 60.0))


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
    from gridfleet.server.analytics.backtest_results import result_document

    now = timezone.now()
    updated = BacktestJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, runner=PROCESS_TOKEN, heartbeat_at=now)
    if not updated:
        return
    job = BacktestJob.objects.get(pk=job_id)
    _notify(job)
    beating = _Heartbeat(job_id)
    beating.start()
    path = data_dir() / str(job.data.get("file", ""))
    try:
        config = parse_config(decimals(job.config))
        candles = load_candles(path, start=job.start_ms, end=job.end_ms)
        result = run_backtest(config, candles)
        job.summary = result_document(result)  # to_json() + the fills (bounded) for the chart
        job.status = JobStatus.DONE
    except Exception as exc:
        message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        job.error = message.replace(str(path), path.name)[:1000]
        job.status = JobStatus.FAILED
        if not isinstance(exc, ValueError):
            log.exception("backtest %s failed", job_id)
    finally:
        beating.stop()
    job.finished_at = timezone.now()
    # only the runner that claimed the job writes its result (a result beats an "interrupted" verdict)
    written = BacktestJob.objects.filter(pk=job_id, runner=PROCESS_TOKEN).update(
        summary=job.summary, status=job.status, error=job.error, finished_at=job.finished_at,
        heartbeat_at=job.finished_at)
    if written:
        _notify(job)


class _Heartbeat:
    """Renews ``heartbeat_at`` of a running job from a side thread (its own database connection)."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"backtest-heartbeat-{job_id}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=10)

    def _loop(self) -> None:
        try:
            while not self.done.wait(heartbeat_every()):
                try:
                    BacktestJob.objects.filter(pk=self.job_id, runner=PROCESS_TOKEN, status=JobStatus.RUNNING) \
                        .update(heartbeat_at=timezone.now())
                except Exception:  # a missed beat is retried; recovery only acts after several
                    log.warning("backtest %s: heartbeat failed", self.job_id, exc_info=True)
        finally:
            connection.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def runner_is_gone(runner: str) -> bool:
    """Return True when ``runner`` (``host:pid:token``) is a process of this host that no longer exists."""
    host, _, rest = runner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != HOST or not pid_text.isdigit():
        return False  # another machine: only its heartbeat tells
    pid = int(pid_text)
    if pid == os.getpid():
        return runner != PROCESS_TOKEN  # this pid, an earlier incarnation (e.g. a restarted container)
    return not _pid_alive(pid)


def recover_stale_jobs(*, now: Any = None) -> list[int]:
    """Mark ``failed`` the running jobs whose process is gone (see the module docstring); return their ids."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=stale_after())
    failed: list[int] = []
    for job in BacktestJob.objects.filter(status=JobStatus.RUNNING).only("pk", "runner", "heartbeat_at",
                                                                          "started_at", "owner_id"):
        beat = job.heartbeat_at or job.started_at
        if job.runner and runner_is_gone(job.runner):
            why = f"process {job.runner.rsplit(':', 1)[0]} is gone"
        elif beat is None or beat < cutoff:
            seen = f"since {beat.isoformat(timespec='seconds')}" if beat else "ever"
            why = f"no heartbeat {seen}"
        else:
            continue
        error = INTERRUPTED.format(why=why)
        # conditional on what was read: a heartbeat or a finish that came in meanwhile wins
        updated = BacktestJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, runner=job.runner,
                                             heartbeat_at=job.heartbeat_at).update(
            status=JobStatus.FAILED, error=error[:1000], finished_at=now)
        if updated:
            failed.append(job.pk)
            log.warning("backtest %s: %s", job.pk, error)
            job.status, job.error = JobStatus.FAILED, error
            _notify(job)
    return failed


def requeue_orphans() -> list[int]:
    """In thread mode (embedded server), dispatch again the jobs still ``queued``: their thread died with the
    previous process. (With a broker the queue still holds them.)"""
    if not _in_thread():
        return []
    ids = list(BacktestJob.objects.filter(status=JobStatus.QUEUED).order_by("pk").values_list("pk", flat=True))
    for job_id in ids:
        threading.Thread(target=_thread_main, args=(job_id,), daemon=True, name=f"backtest-{job_id}").start()
    return ids


def recover_at_start() -> dict[str, list[int]]:
    """What ``serve`` and ``worker`` run at start: fail abandoned jobs, then re-dispatch orphaned queued ones."""
    failed = recover_stale_jobs()
    requeued = requeue_orphans()
    if failed or requeued:
        log.warning("backtests: %d interrupted job(s) marked failed, %d queued job(s) dispatched again",
                    len(failed), len(requeued))
    return {"failed": failed, "requeued": requeued}


def start_recovery_thread(stop: threading.Event, every: float | None = None) -> threading.Thread:
    """Run :func:`recover_stale_jobs` every ``every`` seconds (default: half the stale age) until ``stop``."""
    period = every if every is not None else max(stale_after() / 2, 1.0)

    def loop() -> None:
        while not stop.wait(period):
            try:
                recover_stale_jobs()
            except Exception:
                log.exception("backtests: recovery sweep failed")
            finally:
                close_old_connections()
        connection.close()

    thread = threading.Thread(target=loop, name="gridfleet-backtest-recovery", daemon=True)
    thread.start()
    return thread


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
