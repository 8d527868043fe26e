"""``gridfleet serve`` (the whole server in one process), ``gridfleet worker`` and ``gridfleet beat`` (scale-out).

``serve``: migrate, create the first admin when there is none, install the in-process bot runtime, resume the
bots whose status is running, and serve HTTP (API, web UI) and websockets (``/ws/``) with daphne on host:port.
SIGTERM / Ctrl-C stop it cleanly: bots stop being hosted (their orders stay on the book and they resume on the
next start).

``worker``: a Celery worker process (thread pool; queues ``celery`` and ``gridfleet.worker.<name>``) that also
hosts bots under leases (:func:`gridfleet.server.trading.tasks.run_worker_host`). ``serve`` and ``worker`` both
fail the backtest jobs a dead process left ``running`` (heartbeats, ``analytics/backtests.py``) at start and
periodically. ``beat``: Celery beat with the
equity-snapshot schedule. Both need ``DATABASE_URL`` and ``REDIS_URL``.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from typing import Annotated, Any

import typer

from gridfleet.cli.common import console, fail, friendly_errors


def _mod(name: str) -> Any:
    """Import a Django/server module lazily and untyped (the CLI is type-checked; Django ships no stubs)."""
    return importlib.import_module(name)


def setup_django() -> None:
    """Configure Django with the server settings (``GRIDFLEET_DB`` / ``DATABASE_URL``, ``REDIS_URL``)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gridfleet.server.settings")
    _mod("django").setup()


def prepare_database(*, quiet: bool = False) -> None:
    """Apply migrations and create the first admin when there is none (printing how to log in)."""
    _mod("django.core.management").call_command("migrate", interactive=False, verbosity=0)
    try:
        ensure_admin = _mod("gridfleet.server.users.bootstrap").ensure_admin
    except (ImportError, AttributeError):
        ensure_admin = _ensure_admin
    try:
        user, generated = ensure_admin(None, None)
    except ValueError as exc:
        fail(str(exc))
    if user is None or quiet:
        return
    if generated:
        console.print(f"created the admin [bold]{user.username}[/] with the password [bold]{generated}[/] "
                      "(shown once: change it after logging in)")
    else:
        console.print(f"created the admin [bold]{user.username}[/]: log in with the password from "
                      "GRIDFLEET_ADMIN_PASSWORD")


def _ensure_admin(username: str | None, password: str | None) -> tuple[Any, str]:
    """Fallback when the users app has no bootstrap helper: the same rules, minimal."""
    import secrets

    models = _mod("gridfleet.server.users.models")
    Role, User = models.Role, models.User
    if User.objects.filter(role=Role.ADMIN).exists() or User.objects.filter(is_superuser=True).exists():
        return None, ""
    username = username or os.environ.get("GRIDFLEET_ADMIN_USERNAME") or "admin"
    password = password or os.environ.get("GRIDFLEET_ADMIN_PASSWORD") or ""
    generated = "" if password else secrets.token_urlsafe(18)
    user = User.objects.create_user(username, password=password or generated, role=Role.ADMIN, is_staff=True,
                                    is_superuser=True)
    return user, generated


def _periodic(name: str, every: float, job: str, stop: threading.Event) -> threading.Thread:
    """Call ``job`` (``"module:function"``) every ``every`` seconds until ``stop`` (serve has no Celery beat)."""
    def loop() -> None:
        close_old_connections = _mod("django.db").close_old_connections
        module, function = job.split(":")
        call = getattr(_mod(module), function)
        while not stop.wait(every):
            try:
                call()
            except Exception:
                logging.getLogger("gridfleet.server").exception("%s failed", name)
            finally:
                close_old_connections()
    thread = threading.Thread(target=loop, name=f"gridfleet-{name}", daemon=True)
    thread.start()
    return thread


def _billing_pass() -> None:
    """Settle the last completed billing period (idempotent per bot and period) and re-check the balance guard."""
    _mod("gridfleet.server.fees.services").run_settlement()
    _mod("gridfleet.server.fees.guard").check_all()


def _shared_rate_limits() -> None:
    """With ``REDIS_URL``, every exchange rate limiter of this process is a token bucket in Redis shared with the
    other processes (``gridfleet.exchanges.redis_ratelimit``); without it, in-process buckets."""
    url = os.environ.get("REDIS_URL", "")
    if url and os.environ.get("GRIDFLEET_SHARED_RATE_LIMITS", "1") != "0":
        from gridfleet.exchanges.redis_ratelimit import install_redis_rate_limits

        install_redis_rate_limits(url)


def _recover_backtests(stop: threading.Event) -> None:
    """Fail the backtest jobs a dead process left running (re-dispatch orphaned queued ones in thread mode), then
    keep sweeping until ``stop`` (``gridfleet.server.analytics.backtests``)."""
    backtests = _mod("gridfleet.server.analytics.backtests")
    try:
        recovered = backtests.recover_at_start()
    except Exception:  # never keeps the server from starting; the periodic sweep retries
        logging.getLogger("gridfleet.server").exception("backtest recovery at start failed")
    else:
        if recovered["failed"]:
            console.print(f"marked {len(recovered['failed'])} interrupted backtest job(s) failed")
    backtests.start_recovery_thread(stop)


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``worker`` and ``beat`` to ``app``."""

    @app.command("serve")
    @friendly_errors
    def serve(
        host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", "-p", help="TCP port.")] = 8000,
        resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Resume bots marked running.")] = True,
        reconcile_every: Annotated[float, typer.Option("--reconcile-every", help="Seconds.")] = 15.0,
        snapshot_every: Annotated[float, typer.Option("--snapshot-every", help="Equity snapshot period, s.")] = 60.0,
        billing_every: Annotated[float, typer.Option(
            "--billing-every", help="Seconds between billing passes (settle the last period, balance guard).")]
            = 300.0,
        runtime_kind: Annotated[str, typer.Option(
            "--runtime", help="inprocess: bots run here; workers: bots run in `gridfleet worker` processes.")]
            = "inprocess",
    ) -> None:
        """Run the server: API, websockets, web UI and the bots, in one process (SQLite by default)."""
        if runtime_kind not in ("inprocess", "workers"):
            fail("--runtime: choose inprocess or workers")
        if runtime_kind == "workers" and not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
            fail("--runtime workers needs DATABASE_URL and REDIS_URL (shared with the workers)")
        logging.basicConfig(level=os.environ.get("GRIDFLEET_LOG_LEVEL", "WARNING"),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        setup_django()
        prepare_database()
        _shared_rate_limits()
        server_cls = _mod("daphne.server").Server
        set_runtime = _mod("gridfleet.server.trading.service").set_runtime
        if runtime_kind == "workers":
            runtime = _mod("gridfleet.server.trading.tasks").WorkerRuntime()
        else:
            runtime = _mod("gridfleet.server.trading.runtime").ServerRuntime(reconcile_every=reconcile_every)
        set_runtime(runtime)
        stop = threading.Event()
        _recover_backtests(stop)
        try:
            if runtime_kind == "inprocess" and resume:
                resumed = runtime.resume_all()
                if resumed:
                    console.print(f"resumed {len(resumed)} bot(s)")
            if runtime_kind == "inprocess":
                _periodic("snapshots", snapshot_every, "gridfleet.server.trading.tasks:snapshot_local", stop)
                _periodic("billing", billing_every, "gridfleet.cli.serve_cmd:_billing_pass", stop)
            application = _mod("gridfleet.server.asgi").application
            console.print(f"gridfleet serving on http://{host}:{port}/ (API /api/v1/, docs /api/docs/, "
                          "websockets /ws/); Ctrl-C stops")
            server_cls(application, endpoints=[f"tcp:port={port}:interface={host}"], signal_handlers=True,
                   verbosity=0).run()
        finally:
            stop.set()
            set_runtime(None)
            if runtime_kind == "inprocess":
                runtime.shutdown()
        console.print("gridfleet server stopped (bots resume on the next start)")

    @app.command("worker")
    @friendly_errors
    def worker(
        name: Annotated[str, typer.Option("--name", help="Worker name (default host-pid).")] = "",
        capacity: Annotated[int, typer.Option("--capacity", help="Most bots hosted by this worker.")] = 200,
        concurrency: Annotated[int, typer.Option("--concurrency", help="Celery task threads.")] = 4,
        ttl: Annotated[float, typer.Option("--lease-ttl", help="Lease TTL, seconds.")] = 30.0,
        renew_every: Annotated[float, typer.Option("--renew-every", help="Lease renewal period, s.")] = 10.0,
    ) -> None:
        """Run a Celery worker that also hosts bots under leases (needs DATABASE_URL and REDIS_URL)."""
        if not os.environ.get("REDIS_URL"):
            fail("gridfleet worker needs REDIS_URL (the broker) and DATABASE_URL (shared with the API)")
        logging.basicConfig(level=os.environ.get("GRIDFLEET_LOG_LEVEL", "INFO"),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        setup_django()
        celery_app = _mod("gridfleet.server.celery").app
        tasks = _mod("gridfleet.server.trading.tasks")
        worker_name = name or tasks.default_worker_name()
        stop = threading.Event()
        _recover_backtests(stop)
        _shared_rate_limits()
        hosting = threading.Thread(target=tasks.run_worker_host, name="gridfleet-host", daemon=True,
                                   kwargs={"worker_name": worker_name, "capacity": capacity, "ttl": ttl,
                                           "renew_every": renew_every})
        hosting.start()
        try:
            celery_app.worker_main(["worker", "--pool", "threads", "--concurrency", str(concurrency),
                                    "--hostname", f"{worker_name}@%h", "--loglevel", "INFO",
                                    "-Q", f"celery,{tasks.worker_queue(worker_name)}"])
        finally:
            stop.set()
            host = tasks.current_worker_host()
            if host is not None:
                host.stopping.set()
            hosting.join(timeout=60)

    @app.command("beat")
    @friendly_errors
    def beat() -> None:
        """Run Celery beat (equity snapshots every minute; schedules editable in the database)."""
        if not os.environ.get("REDIS_URL"):
            fail("gridfleet beat needs REDIS_URL (the broker) and DATABASE_URL")
        setup_django()
        celery_app = _mod("gridfleet.server.celery").app
        schedule = _mod("gridfleet.server.trading.tasks").BEAT_SCHEDULE
        celery_app.conf.beat_schedule = {**(celery_app.conf.beat_schedule or {}), **schedule}
        celery_app.start(["beat", "--loglevel", "INFO",
                          "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"])
