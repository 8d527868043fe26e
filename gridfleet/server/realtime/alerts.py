"""Alerts: a stored :class:`Notification`, a ``notification`` websocket event, an email and a webhook POST.

:func:`alert` writes the notification and publishes it at once; the email (Django's email backend, to the
user's address) and the webhook (JSON POST to the user's ``webhook_url`` when set) go out on a small background
thread pool, so the caller never waits for SMTP or a slow endpoint. The webhook has a 5 s timeout and is retried
3 times (after 1, 2, 4 s × ``REALTIME_WEBHOOK_BACKOFF``) on network errors, 429 and 5xx; 4xx are not retried.
Failures are logged, never raised.

Every webhook is signed (HMAC-SHA256 over ``"<timestamp>." + body`` with the user's webhook secret, headers
``X-Gridfleet-Timestamp``, ``X-Gridfleet-Signature``, ``X-Gridfleet-Delivery``; see ``webhook_signing.py`` and
docs/realtime.md). The secrets are read when the alert is raised, so the background thread needs no database.

Webhook URLs must be http(s); unless ``REALTIME_WEBHOOK_ALLOW_PRIVATE`` (default: ``DEBUG`` or tests) they must
resolve to public addresses only (no loopback, private, link-local or reserved targets) and redirects are not
followed, so a user cannot make the server call its own internal services.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder

from gridfleet.server.realtime.models import Notification
from gridfleet.server.realtime.notify import publish
from gridfleet.server.realtime.webhook_signing import DELIVERY_HEADER, signature_headers, signing_secrets

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = 5.0
WEBHOOK_RETRIES = 3

_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="gridfleet-alerts")
_pending: set[Future[Any]] = set()


def notification_payload(n: Notification) -> dict[str, Any]:
    """Return the JSON form of a notification (the API's, the websocket event's and the webhook's ``data``)."""
    return {"id": n.pk, "kind": n.kind, "title": n.title, "body": n.body, "data": n.data,
            "created_at": n.created_at.isoformat() if n.created_at else None,
            "read_at": n.read_at.isoformat() if n.read_at else None}


def alert(user: Any, kind: str, title: str, body: str = "", data: dict[str, Any] | None = None) -> Notification:
    """Store a notification for ``user`` (a User or its id), publish it, and email/webhook it in the background."""
    from gridfleet.server.users.models import User

    if not isinstance(user, User):
        user = User.objects.get(pk=user)
    data = json.loads(json.dumps(data or {}, cls=DjangoJSONEncoder))
    n = Notification.objects.create(user=user, kind=kind, title=title[:200], body=body, data=data)
    payload = notification_payload(n)
    publish(user.pk, {"type": "notification", "bot": data.get("bot"), "data": payload}, agent_id=user.agent_id)
    email = (user.email or "").strip()
    webhook = (getattr(user, "webhook_url", "") or "").strip()
    if email:
        _submit(_send_email, email, title, body, payload)
    if webhook:
        try:
            keys = signing_secrets(user)
        except Exception:  # never send unsigned: a receiver must be able to trust every delivery
            log.exception("alerts: no webhook secret for user %s; webhook not sent", user.pk)
        else:
            _submit(post_webhook, webhook, {"type": "notification", "user": user.pk, **payload}, keys)
    return n


def _submit(fn: Any, *args: Any) -> None:
    future = _executor.submit(fn, *args)
    _pending.add(future)
    future.add_done_callback(_pending.discard)


def wait_idle(timeout: float = 10.0) -> bool:
    """Wait until queued emails and webhooks are done (tests, shutdown); return True when none is left."""
    _done, not_done = wait(list(_pending), timeout=timeout)
    return not not_done


def _send_email(address: str, title: str, body: str, payload: dict[str, Any]) -> None:
    try:
        send_mail(f"[gridfleet] {title}", f"{body}\n\n{json.dumps(payload.get('data') or {}, indent=2)}\n",
                  settings.DEFAULT_FROM_EMAIL, [address], fail_silently=False)
    except Exception:
        log.exception("alerts: email to %s failed", address)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _allow_private() -> bool:
    default = settings.DEBUG or getattr(settings, "TESTING", False)
    return bool(getattr(settings, "REALTIME_WEBHOOK_ALLOW_PRIVATE", default))


def check_webhook_url(url: str) -> str | None:
    """Return why ``url`` may not be called (``None`` when it may)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return "not an http(s) URL"
    if _allow_private():
        return None
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except OSError as exc:
        return f"host not resolved ({exc})"
    for info in infos:
        if not ipaddress.ip_address(info[4][0].split("%")[0]).is_global:
            return f"{parts.hostname} resolves to a non-public address"
    return None


def post_webhook(url: str, payload: dict[str, Any], secrets: list[str] | None = None, *,
                 retries: int = WEBHOOK_RETRIES) -> bool:
    """POST ``payload`` as JSON to ``url``, retrying; return True on a 2xx answer (never raises).

    With ``secrets`` (the user's current secret, then the previous one during a rotation's grace period) each
    attempt is signed afresh: ``X-Gridfleet-Timestamp`` and ``X-Gridfleet-Signature: v1=<hex>[,v1=<hex>]``.
    """
    refused = check_webhook_url(url)
    if refused:
        log.warning("alerts: webhook %s refused: %s", url, refused)
        return False
    body = json.dumps(payload, cls=DjangoJSONEncoder).encode()
    backoff = float(getattr(settings, "REALTIME_WEBHOOK_BACKOFF", 1.0))
    delivery = uuid.uuid4().hex
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "gridfleet-webhook/1",
            "X-Gridfleet-Event": str(payload.get("kind", "")), DELIVERY_HEADER: delivery,
            **signature_headers(secrets or [], body)})
        try:
            with _opener.open(request, timeout=WEBHOOK_TIMEOUT) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, ValueError) as exc:
            log.warning("alerts: webhook %s attempt %d failed: %s", url, attempt + 1, exc)
            continue
        if 200 <= status < 300:
            return True
        if status != 429 and status < 500:
            log.warning("alerts: webhook %s answered %d; not retried", url, status)
            return False
        log.warning("alerts: webhook %s attempt %d answered %d", url, attempt + 1, status)
    log.error("alerts: webhook %s failed after %d attempts", url, retries + 1)
    return False
