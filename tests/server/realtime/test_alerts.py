"""Alerts: stored notification, websocket event, email (locmem outbox) and webhook (a local HTTP server)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core import mail
from django.db import connections

from gridfleet.server.bots.models import Bot
from gridfleet.server.realtime import alerts
from gridfleet.server.realtime.alerts import alert, check_webhook_url, post_webhook, wait_idle
from gridfleet.server.realtime.models import Notification
from gridfleet.server.realtime.notify import publish_journal
from gridfleet.server.trading.models import JournalEntry
from gridfleet.server.users.models import User

from .conftest import open_ws, run, token_for


class Hook:
    """A tiny webhook receiver on 127.0.0.1: answers with the scripted statuses (then 200), records bodies."""

    def __init__(self, statuses: list[int] | None = None, delay: float = 0.0) -> None:
        self.statuses = list(statuses or [])
        self.delay = delay
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                hook.bodies.append(json.loads(self.rfile.read(length)))
                hook.headers.append(dict(self.headers))
                time.sleep(hook.delay)
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Callable[..., Hook]]:
    made: list[Hook] = []

    def make(statuses: list[int] | None = None, delay: float = 0.0) -> Hook:
        made.append(Hook(statuses, delay))
        return made[-1]

    yield make
    for h in made:
        h.close()


def _with_webhook(user: User, url: str) -> User:
    user.webhook_url = url  # the users app adds the field; the instance attribute is what alerts read
    if any(f.name == "webhook_url" for f in User._meta.get_fields()):
        user.save(update_fields=["webhook_url"])
    return user


@pytest.mark.django_db
def test_alert_stores_emails_and_posts_the_webhook(make_user: Callable[..., User], hook: Callable[..., Hook]) -> None:
    h = hook()
    user = _with_webhook(make_user("erin"), h.url)
    n = alert(user, "risk_alert", "Risk alert: grid", "price below range", {"bot": 4, "price": "99.5"})
    assert wait_idle(10)
    stored = Notification.objects.get(pk=n.pk)
    assert (stored.user_id, stored.kind, stored.title, stored.read_at) == (user.pk, "risk_alert",
                                                                          "Risk alert: grid", None)
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["erin@example.com"]
    assert "Risk alert: grid" in mail.outbox[0].subject and "price below range" in mail.outbox[0].body
    assert len(h.bodies) == 1
    body = h.bodies[0]
    assert body["id"] == n.pk and body["kind"] == "risk_alert" and body["data"] == {"bot": 4, "price": "99.5"}
    assert h.headers[0]["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_no_email_or_webhook_when_the_user_has_none(make_user: Callable[..., User]) -> None:
    user = make_user("quiet", email="")
    alert(user.pk, "bot_error", "Bot error", "boom")
    assert wait_idle(10)
    assert mail.outbox == [] and Notification.objects.filter(user=user).count() == 1


def test_webhook_retries_5xx_then_succeeds_and_does_not_retry_4xx(hook: Callable[..., Hook]) -> None:
    h = hook([500, 503])
    assert post_webhook(h.url, {"kind": "x"}) is True
    assert len(h.bodies) == 3
    h = hook([404])
    assert post_webhook(h.url, {"kind": "x"}) is False
    assert len(h.bodies) == 1
    h = hook([500, 500, 500, 500, 500])
    assert post_webhook(h.url, {"kind": "x"}) is False
    assert len(h.bodies) == 4  # first try + 3 retries


def test_webhook_to_a_dead_port_fails_quietly(caplog: pytest.LogCaptureFixture) -> None:
    h = Hook()
    url = h.url
    h.close()
    assert post_webhook(url, {"kind": "x"}) is False
    assert "failed after 4 attempts" in caplog.text


@pytest.mark.django_db
def test_alert_never_blocks_on_a_slow_webhook(make_user: Callable[..., User], hook: Callable[..., Hook]) -> None:
    h = hook(delay=1.0)
    user = _with_webhook(make_user("slow"), h.url)
    started = time.perf_counter()
    alert(user, "risk_alert", "slow", "")
    assert time.perf_counter() - started < 0.5
    assert wait_idle(10) and len(h.bodies) == 1


def test_webhook_urls_to_private_addresses_are_refused_in_production(settings: Any) -> None:
    settings.REALTIME_WEBHOOK_ALLOW_PRIVATE = False
    assert check_webhook_url("ftp://example.com/x") == "not an http(s) URL"
    assert "non-public" in (check_webhook_url("http://127.0.0.1:9/hook") or "")
    assert "non-public" in (check_webhook_url("http://10.1.2.3/hook") or "")
    assert "non-public" in (check_webhook_url("http://[::1]/hook") or "")
    assert "non-public" in (check_webhook_url("http://169.254.169.254/latest") or "")
    assert post_webhook("http://127.0.0.1:9/hook", {}) is False
    settings.REALTIME_WEBHOOK_ALLOW_PRIVATE = True
    assert check_webhook_url("http://127.0.0.1:9/hook") is None


@pytest.mark.django_db(transaction=True)
def test_publish_journal_maps_kinds_to_events_and_alerts(make_user: Callable[..., User], agent_user: User,
                                                         client_user: User) -> None:
    bot = Bot.objects.create(owner=client_user, name="grid-1", symbol="BTC/USDT", config={}, status="running")

    def record(kind: str, message: str) -> None:  # what the runtime's store does, on a worker thread
        try:
            publish_journal(JournalEntry.objects.create(bot=bot, ts=1_700_000_000_000, kind=kind, message=message,
                                                        data={"price": "100"}))
        finally:
            connections.close_all()

    async def go() -> list[dict[str, Any]]:
        comm, _ = await open_ws(token_for(agent_user))  # the agent watches its client's bot
        from asgiref.sync import sync_to_async

        for kind, message in [("risk", "below range"), ("error", "exchange down"), ("state", "resumed"),
                              ("warning", "ambiguous order"), ("correction", "fill fixed")]:
            await sync_to_async(record, thread_sensitive=False)(kind, message)
        got = [await comm.receive_json_from(timeout=5) for _ in range(7)]
        assert await comm.receive_nothing(timeout=0.3)
        await comm.disconnect()
        return got

    events = run(go())
    summary = [(e["type"], e["data"].get("kind"), e["data"].get("status")) for e in events]
    assert summary == [("risk_alert", "risk", None), ("notification", "risk_alert", None),
                       ("bot_status", "error", "error"), ("notification", "bot_error", None),
                       ("bot_status", "state", "running"), ("notification", "warning", None),
                       ("notification", "correction", None)]
    assert all(e["bot"] == bot.pk and e["ts"] for e in events)
    assert events[0]["ts"] == 1_700_000_000_000 and events[0]["data"]["message"] == "below range"
    assert events[1]["data"]["id"] == Notification.objects.get(kind="risk_alert").pk
    assert wait_idle(10)
    assert sorted(Notification.objects.filter(user=client_user).values_list("kind", flat=True)) == [
        "bot_error", "risk_alert"]
    assert len(mail.outbox) == 2 and {m.to[0] for m in mail.outbox} == {"client@example.com"}


def test_wait_idle_with_nothing_pending() -> None:
    assert alerts.wait_idle(0.1)
