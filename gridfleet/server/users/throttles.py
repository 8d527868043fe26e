"""Throttles of the authentication endpoints (rates in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


def _field(request: Request, name: str) -> str:
    data = request.data
    value = data.get(name, "") if isinstance(data, Mapping) else ""
    return str(value).strip().lower()


class _IdentThrottle(SimpleRateThrottle):
    """Count per client IP (authenticated or not), plus whatever :meth:`extra` adds."""

    def extra(self, request: Request) -> str:
        """Return what is counted together with the IP (nothing here)."""
        return ""

    def get_cache_key(self, request: Request, view: Any) -> str:
        """Return the cache key: scope + hash of IP and extra, so no user input lands in a cache key as is."""
        ident = f"{self.get_ident(request)}|{self.extra(request)}"
        return self.cache_format % {"scope": self.scope, "ident": hashlib.sha256(ident.encode()).hexdigest()}


class LoginRateThrottle(_IdentThrottle):
    """Token endpoint: rate ``login`` per IP and username."""

    scope = "login"

    def extra(self, request: Request) -> str:
        """Count per username too."""
        return _field(request, "username")


class RegisterRateThrottle(_IdentThrottle):
    """Registration: rate ``register`` per IP."""

    scope = "register"


class PasswordResetRateThrottle(_IdentThrottle):
    """Password reset e-mails: rate ``password_reset`` per IP."""

    scope = "password_reset"


class PasswordResetConfirmRateThrottle(_IdentThrottle):
    """Password reset confirmation (guessing tokens): rate ``login`` per IP and uid."""

    scope = "login"

    def extra(self, request: Request) -> str:
        """Count per uid too."""
        return "reset:" + _field(request, "uid")
