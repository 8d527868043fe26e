"""Payment providers: the pluggable hook through which deposits arrive from outside (cards, crypto gateways…).

A provider implements :class:`PaymentProvider`:

* ``create_checkout(user, amount)`` starts a payment and returns a JSON-able dict with at least ``reference``
  (the provider's payment id, unique per provider) and whatever the client needs to pay (a URL, an address,
  instructions…). The server stores a pending :class:`~gridfleet.server.billing.models.Payment`.
* ``handle_webhook(request)`` authenticates the provider's notification (signature, shared secret…) and returns a
  :class:`PaymentResult`; it raises :class:`WebhookRejected` for anything it cannot trust. The server then credits
  the wallet once per (provider, reference) (idempotency key ``payment:<provider>:<reference>``): a repeated
  notification changes nothing.

Providers are registered by dotted path in the setting ``GRIDFLEET_BILLING_PAYMENT_PROVIDERS`` (name → class);
``GRIDFLEET_BILLING_PAYMENT_PROVIDER`` names the default. Built in: ``manual`` (:class:`ManualProvider`), for
bank transfers or crypto sent to the operator: the checkout gives instructions and a reference, and the payment is
confirmed by an admin (``POST /api/v1/billing/payments/{id}/confirm/``) or by a webhook signed with HMAC-SHA256
using ``GRIDFLEET_BILLING_WEBHOOK_SECRET``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any, Protocol, runtime_checkable

from django.conf import settings
from django.utils.module_loading import import_string

from gridfleet.server.billing.money import currency, parse_amount


class WebhookRejected(Exception):
    """A webhook that cannot be trusted or understood (``status``: the HTTP answer, 400 or 403)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PaymentResult:
    """What a provider's webhook says about one payment."""

    reference: str
    status: str  # "paid", "failed" or "pending"
    amount: Decimal | None = None  # when the provider reports it: must equal the checkout amount
    raw: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class PaymentProvider(Protocol):
    """The interface of a payment provider (see the module docstring)."""

    name: str

    def create_checkout(self, user: Any, amount: Decimal) -> dict[str, Any]:
        """Start a payment of ``amount`` for ``user``; return at least ``{"reference": ...}``."""
        ...

    def handle_webhook(self, request: Any) -> PaymentResult:
        """Authenticate and parse a notification (a DRF/Django request); raise :class:`WebhookRejected`."""
        ...


SIGNATURE_HEADER = "X-Gridfleet-Signature"


def sign(body: bytes, secret: str) -> str:
    """Return the ``X-Gridfleet-Signature`` value of ``body``: ``sha256=<hex HMAC>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class ManualProvider:
    """Payments made outside gridfleet (bank transfer, crypto to the operator's address), confirmed by an admin or
    by a signed webhook ``{"reference", "status", "amount"}``."""

    name = "manual"

    def create_checkout(self, user: Any, amount: Decimal) -> dict[str, Any]:
        """Return a fresh reference and payment instructions."""
        reference = "man_" + secrets.token_hex(12)
        return {"reference": reference,
                "instructions": f"Send {amount} {currency()} to the operator quoting the reference {reference}; "
                                "your balance is credited when the operator confirms the payment."}

    def handle_webhook(self, request: Any) -> PaymentResult:
        """Check the HMAC signature of the raw body, then read ``reference``, ``status`` and ``amount``."""
        secret = getattr(settings, "GRIDFLEET_BILLING_WEBHOOK_SECRET", "") or ""
        if not secret:
            raise WebhookRejected("webhooks are disabled: GRIDFLEET_BILLING_WEBHOOK_SECRET is not set", 403)
        body: bytes = request.body
        given = request.headers.get(SIGNATURE_HEADER, "")
        if not hmac.compare_digest(given.encode(), sign(body, secret).encode()):
            raise WebhookRejected("bad or missing signature", 403)
        try:
            payload = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise WebhookRejected("the body is not JSON") from exc
        if not isinstance(payload, dict):
            raise WebhookRejected("the body must be a JSON object")
        reference, status = payload.get("reference"), payload.get("status")
        if not isinstance(reference, str) or not reference:
            raise WebhookRejected("reference: required")
        if status not in ("paid", "failed", "pending"):
            raise WebhookRejected("status: one of paid, failed, pending")
        amount = None
        if payload.get("amount") is not None:
            try:
                amount = parse_amount(payload["amount"])
            except ValueError as exc:
                raise WebhookRejected(f"amount: {exc}") from exc
        return PaymentResult(reference=reference, status=status, amount=amount, raw=payload)


DEFAULT_PROVIDERS = {"manual": "gridfleet.server.billing.providers.ManualProvider"}


def provider_names() -> list[str]:
    """Return the names of the registered providers."""
    return sorted(getattr(settings, "GRIDFLEET_BILLING_PAYMENT_PROVIDERS", None) or DEFAULT_PROVIDERS)


def default_provider() -> str:
    """Return the name of the default provider."""
    return str(getattr(settings, "GRIDFLEET_BILLING_PAYMENT_PROVIDER", "manual"))


@cache
def _load(name: str, path: str) -> PaymentProvider:
    provider = import_string(path)()
    if not isinstance(provider, PaymentProvider):
        raise TypeError(f"{path} does not implement PaymentProvider")
    return provider


def get_provider(name: str | None = None) -> PaymentProvider:
    """Return the provider registered as ``name`` (default: the default provider); KeyError when unknown."""
    registry = getattr(settings, "GRIDFLEET_BILLING_PAYMENT_PROVIDERS", None) or DEFAULT_PROVIDERS
    name = name or default_provider()
    if name not in registry:
        raise KeyError(name)
    return _load(name, registry[name])
