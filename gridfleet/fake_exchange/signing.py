"""HMAC-SHA256 request signatures, computed and checked the way Binance spot does.

REST: the signature covers ``totalParams`` = the query string concatenated with the request body, each exactly as
sent, without the ``signature`` parameter itself. WebSocket API: it covers the request params sorted by name and
joined as ``key=value&...`` (again without ``signature``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any


def hmac_sha256(secret: str, payload: str) -> str:
    """Return the lowercase hex HMAC-SHA256 of ``payload`` keyed with ``secret``."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def strip_signature(raw: str) -> tuple[str, str | None]:
    """Split a raw url-encoded string into (the string without ``signature=...``, the signature or None)."""
    if not raw:
        return "", None
    kept: list[str] = []
    signature: str | None = None
    for part in raw.split("&"):
        if part.startswith("signature="):
            signature = part[len("signature="):]
        else:
            kept.append(part)
    return "&".join(kept), signature


def rest_payload(query_string: str, body: str) -> tuple[str, str | None]:
    """Return (the signed payload ``query + body``, the signature sent in either part, or None)."""
    query, sig_q = strip_signature(query_string)
    body_part, sig_b = strip_signature(body)
    return query + body_part, sig_q if sig_q is not None else sig_b


def ws_value(value: Any) -> str:
    """Render a WebSocket API param value the way it is signed (JSON booleans as ``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def ws_payload(params: Mapping[str, Any]) -> str:
    """Return the signed payload of WebSocket API ``params``: sorted ``key=value`` pairs without ``signature``."""
    return "&".join(f"{k}={ws_value(v)}" for k, v in sorted(params.items()) if k != "signature")


def signature_matches(secret: str, payload: str, signature: str) -> bool:
    """Return True when ``signature`` (hex, any case) is the HMAC-SHA256 of ``payload`` under ``secret``."""
    return hmac.compare_digest(hmac_sha256(secret, payload), signature.strip().lower())
