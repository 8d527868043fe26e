"""Websocket authentication: a simplejwt access token from ``?token=`` or ``Sec-WebSocket-Protocol: jwt, <token>``.

:class:`JWTAuthMiddleware` puts ``scope["user"]`` (an ``AnonymousUser`` when the token is missing or invalid),
``scope["auth_error"]`` (why, or ``None``), ``scope["token_exp"]`` (expiry, epoch seconds) and
``scope["jwt_subprotocol"]`` (``"jwt"`` when the token came as a subprotocol, to echo it back on accept).
The consumer turns an anonymous scope into close code 4401.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

SUBPROTOCOL = "jwt"


def token_from_scope(scope: dict[str, Any]) -> tuple[str | None, bool]:
    """Return ``(token, via_subprotocol)`` from the query string or the ``jwt, <token>`` subprotocol pair."""
    protocols = [p.strip() for p in scope.get("subprotocols") or []]
    if SUBPROTOCOL in protocols:
        i = protocols.index(SUBPROTOCOL)
        if i + 1 < len(protocols) and protocols[i + 1]:
            return protocols[i + 1], True
    query = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
    token = (query.get("token") or [""])[0].strip()
    return (token or None), False


def authenticate_token(raw: str) -> tuple[Any, float | None, str | None]:
    """Return ``(user, exp, error)`` for an access token; ``user`` is anonymous when the token is refused.

    Refused: malformed, bad signature, expired, not an access token, unknown or inactive user, password changed
    since (simplejwt's revoke claim when enabled), or the token's ``jti`` is on the blacklist.
    """
    auth = JWTAuthentication()
    try:
        token = auth.get_validated_token(raw.encode())
        user = auth.get_user(token)
    except (InvalidToken, TokenError, AuthenticationFailed) as exc:
        return AnonymousUser(), None, type(exc).__name__
    jti = token.get("jti")
    if jti and _blacklisted(str(jti)):
        return AnonymousUser(), None, "blacklisted"
    exp = token.get("exp")
    return user, (float(exp) if exp is not None else None), None


def _blacklisted(jti: str) -> bool:
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

    return BlacklistedToken.objects.filter(token__jti=jti).exists()


class JWTAuthMiddleware:
    """ASGI middleware authenticating websocket connections with a JWT access token."""

    def __init__(self, inner: Any) -> None:
        """Wrap ``inner``."""
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        """Authenticate, then call the wrapped application with the enriched scope."""
        raw, via_protocol = token_from_scope(scope)
        if raw is None:
            user, exp, error = AnonymousUser(), None, "missing token"
        else:
            user, exp, error = await database_sync_to_async(authenticate_token)(raw)
        scope = {**scope, "user": user, "auth_error": error, "token_exp": exp,
                 "jwt_subprotocol": SUBPROTOCOL if via_protocol else None}
        return await self.inner(scope, receive, send)
