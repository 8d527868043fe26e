"""Backtest jobs left ``running`` by a dead process are failed with a clear error; live runners are never touched.

Covers the heartbeat of a running job, :func:`recover_stale_jobs` (stale heartbeat anywhere; dead pid on this
host at once; a restarted process with the same pid), the runner-only result write, and ``gridfleet serve``
recovering a SQLite database at start (interrupted job failed, orphaned queued job dispatched again).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from gridfleet.server.analytics import backtests
from gridfleet.server.analytics.models import BacktestJob, JobStatus
from gridfleet.server.users.models import User

CONFIG: dict[str, Any] = {"symbol": "ETH/USDT", "grid": {"type": "arithmetic", "lower": 3100, "upper": 3400,
                                                         "levels": 31}, "investment": 5000}
ETH_FILE = "binance_spot_ETHUSDT_1m_2024-07-26_2024-08-25.csv.gz"
FIRST_OPEN_MS = 1_722_003_360_000


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _running(owner: User, runner: str, beat_age_s: float) -> BacktestJob:
    now = timezone.now()
    return BacktestJob.objects.create(owner=owner, config=CONFIG, data={"file": ETH_FILE}, status=JobStatus.RUNNING,
                                      started_at=now - timedelta(seconds=beat_age_s + 5), runner=runner,
                                      heartbeat_at=now - timedelta(seconds=beat_age_s))


@pytest.mark.django_db
def test_recovery_fails_only_abandoned_jobs(client_user: User, settings: Any) -> None:
    settings.GRIDFLEET_BACKTEST_STALE_AFTER = 60
    here = backtests.HOST
    live_elsewhere = _running(client_user, "other-host:4242:aaaa", beat_age_s=5)
    stale_elsewhere = _running(client_user, "other-host:4243:bbbb", beat_age_s=300)
    dead_here = _running(client_user, f"{here}:{_dead_pid()}:cccc", beat_age_s=1)
    restarted_here = _running(client_user, f"{here}:{os.getpid()}:old-incarnation", beat_age_s=1)
    mine = _running(client_user, backtests.PROCESS_TOKEN, beat_age_s=1)
    live_process_here = _running(client_user, f"{here}:{os.getppid()}:dddd", beat_age_s=1)
    legacy = BacktestJob.objects.create(owner=client_user, config=CONFIG, data={}, status=JobStatus.RUNNING,
                                        started_at=timezone.now() - timedelta(hours=2))  # before heartbeats
    done = BacktestJob.objects.create(owner=client_user, config=CONFIG, data={}, status=JobStatus.DONE,
                                      runner="other-host:1:x", heartbeat_at=timezone.now() - timedelta(days=1))

    failed = backtests.recover_stale_jobs()

    assert sorted(failed) == sorted([stale_elsewhere.pk, dead_here.pk, restarted_here.pk, legacy.pk])
    for job in (live_elsewhere, mine, live_process_here, done):
        before = job.status
        job.refresh_from_db()
        assert job.status == before and job.error == "" and job.finished_at is None
    for job, why in ((stale_elsewhere, "no heartbeat since"), (dead_here, "is gone"), (restarted_here, "is gone"),
                     (legacy, "no heartbeat since")):
        job.refresh_from_db()
        assert job.status == "failed" and job.finished_at is not None
        assert job.error.startswith("interrupted: the server or worker process running this backtest stopped")
        assert why in job.error and job.error.endswith("submit it again")
    assert backtests.recover_stale_jobs() == []  # idempotent


@pytest.mark.django_db
def test_the_api_shows_the_interrupted_job(client_user: User, api_for: Any) -> None:
    job = _running(client_user, f"{backtests.HOST}:{_dead_pid()}:eeee", beat_age_s=1)
    backtests.recover_at_start()
    body = api_for(client_user).get(f"/api/v1/backtests/{job.pk}/").json()
    assert body["status"] == "failed" and body["error"].startswith("interrupted:")


@pytest.mark.django_db(transaction=True)
def test_a_running_job_heartbeats_and_is_never_taken_for_dead(client_user: User, ohlcv_dir: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from gridfleet.backtest import runner

    real = runner.run_backtest
    release = threading.Event()

    def slow(*args: Any, **kwargs: Any) -> Any:
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_backtest", slow)
    job = BacktestJob.objects.create(owner=client_user, config=CONFIG, data={"file": ETH_FILE},
                                     start_ms=FIRST_OPEN_MS, end_ms=FIRST_OPEN_MS + 500 * 60_000)
    with override_settings(GRIDFLEET_DATA_DIR=str(ohlcv_dir), GRIDFLEET_BACKTEST_HEARTBEAT=0.05,
                           GRIDFLEET_BACKTEST_STALE_AFTER=0.5):
        worker = threading.Thread(target=backtests._thread_main, args=(job.pk,))
        worker.start()
        try:
            deadline = time.monotonic() + 10
            while BacktestJob.objects.get(pk=job.pk).status != "running" and time.monotonic() < deadline:
                time.sleep(0.02)
            first = BacktestJob.objects.get(pk=job.pk).heartbeat_at
            time.sleep(1.0)  # twice the stale age: only the heartbeat keeps it alive
            running = BacktestJob.objects.get(pk=job.pk)
            assert running.status == "running" and running.runner == backtests.PROCESS_TOKEN
            assert first is not None and running.heartbeat_at is not None and running.heartbeat_at > first
            assert timezone.now() - running.heartbeat_at < timedelta(seconds=0.5)
            assert backtests.recover_stale_jobs() == []
        finally:
            release.set()
            worker.join(30)
    job.refresh_from_db()
    assert job.status == "done", job.error
    assert job.summary and job.heartbeat_at is not None
    connection.close()


@pytest.mark.django_db
def test_only_the_claiming_runner_writes_the_result(client_user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    job = BacktestJob.objects.create(owner=client_user, config=CONFIG, data={"file": "missing.csv.gz"})

    def steal(*args: Any, **kwargs: Any) -> Any:  # another runner took the job over meanwhile
        BacktestJob.objects.filter(pk=job.pk).update(runner="other-host:1:zzzz")
        raise ValueError("boom")

    from gridfleet.backtest import data

    monkeypatch.setattr(data, "load_candles", steal)
    backtests.run_job(job.pk)
    job.refresh_from_db()
    assert job.status == "running" and job.error == "" and job.runner == "other-host:1:zzzz"


SEED = """
import json, os, sys, django
os.environ["DJANGO_SETTINGS_MODULE"] = "gridfleet.server.settings"
django.setup()
from django.core.management import call_command
from django.utils import timezone
call_command("migrate", interactive=False, verbosity=0)
from gridfleet.server.analytics.models import BacktestJob
from gridfleet.server.users.models import Role, User
user = User.objects.create_user("boss", password="Very-secret-pass-99", role=Role.ADMIN, is_superuser=True)
config = json.loads(sys.argv[2])
now = timezone.now()
running = BacktestJob.objects.create(owner=user, config=config, data={"file": "missing.csv.gz"}, status="running",
                                     started_at=now, heartbeat_at=now, runner=sys.argv[1])
queued = BacktestJob.objects.create(owner=user, config=config, data={"file": "missing.csv.gz"})
print(json.dumps([running.pk, queued.pk]))
"""


def test_serve_fails_interrupted_jobs_and_redispatches_queued_ones_at_start(tmp_path: Path) -> None:
    from tests.server.trading.test_serve import PASSWORD, _env, _free_port, _get, _start, _stop, _wait_ready

    db = tmp_path / "server.sqlite3"
    killed = f"{backtests.HOST}:{_dead_pid()}:killed01"  # the runner of the previous, SIGKILLed server
    seed = subprocess.run([sys.executable, "-c", SEED, killed, json.dumps(CONFIG)], env=_env(db), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert seed.returncode == 0, seed.stderr
    running_id, queued_id = json.loads(seed.stdout.strip().splitlines()[-1])
    port = _free_port()
    proc = _start(db, port)
    try:
        _wait_ready(proc, port)
        status, body = _get(f"http://127.0.0.1:{port}/api/v1/auth/token/", {"username": "boss",
                                                                             "password": PASSWORD})
        assert status == 200, body
        import urllib.request

        def job(pk: int) -> dict[str, Any]:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/backtests/{pk}/", headers={
                "Authorization": f"Bearer {json.loads(body)['access']}"})
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read())  # type: ignore[no-any-return]

        interrupted = job(running_id)
        assert interrupted["status"] == "failed"
        assert interrupted["error"].startswith("interrupted:") and "is gone" in interrupted["error"]
        deadline = time.monotonic() + 20
        while job(queued_id)["status"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
        redispatched = job(queued_id)
        assert redispatched["status"] == "failed" and "missing.csv.gz" in redispatched["error"]  # it ran
    finally:
        out = _stop(proc)
    assert "marked 1 interrupted backtest job(s) failed" in out
