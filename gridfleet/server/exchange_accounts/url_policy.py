"""Who may point an exchange account at a custom ``api_url`` (the server then sends its requests there).

An ``api_url`` makes the server open HTTP(S) and websocket connections to that address, so letting anyone set any
URL would let users make the server call internal services (server-side request forgery). The policy:

* admins may set any ``http``/``https`` URL;
* everyone else may set only a URL that matches the allow-list ``GRIDFLEET_API_URL_ALLOW`` (a Django setting or
  the environment variable; comma-separated patterns ``scheme://host[:port]``, where ``port`` may be ``*`` and the
  host may start with ``*.`` for any subdomain; a pattern without a port matches the scheme's default port);
* when ``GRIDFLEET_API_URL_ALLOW`` is not set, the embedded server (SQLite, one machine) and the test settings allow
  loopback (``http(s)://127.0.0.1:*``, ``localhost``, ``[::1]``) so the local fake exchange works; a production
  server (``DATABASE_URL``) allows nothing but what the admins set. ``GRIDFLEET_API_URL_ALLOW=""`` (empty)
  disallows everything for non-admins in every mode.

A URL an admin already stored on an account is kept when its owner edits other fields (or sends it back unchanged).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

SETTING = "GRIDFLEET_API_URL_ALLOW"
LOOPBACK = ("http://127.0.0.1:*", "https://127.0.0.1:*", "http://localhost:*", "https://localhost:*",
            "http://[::1]:*", "https://[::1]:*")
DEFAULT_PORTS = {"http": 80, "https": 443}


class ApiUrlError(ValueError):
    """The URL is malformed or not allowed; the message says why (meant for the user)."""


@dataclass(frozen=True)
class Pattern:
    """One allow-list entry: scheme, host (``*.`` prefix: any subdomain) and port (None: any)."""

    scheme: str
    host: str
    port: int | None

    def matches(self, scheme: str, host: str, port: int) -> bool:
        """Return True when the parsed URL parts match this entry."""
        if scheme != self.scheme or (self.port is not None and port != self.port):
            return False
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and host != self.host[2:]
        return host == self.host


def parse_pattern(text: str) -> Pattern:
    """Parse ``scheme://host[:port|:*]``; raise :class:`ValueError` naming the bad entry."""
    text = text.strip()
    any_port = text.endswith(":*")
    parts = urlsplit(text[:-2] if any_port else text)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.username or parts.path not in ("", "/"):
        raise ValueError(f"{SETTING}: bad entry {text!r} (expected scheme://host[:port], port may be *)")
    try:
        port = None if any_port else (parts.port or DEFAULT_PORTS[scheme])
    except ValueError as exc:
        raise ValueError(f"{SETTING}: bad port in {text!r}") from exc
    return Pattern(scheme, parts.hostname.lower(), port)


def is_embedded() -> bool:
    """Return True for the embedded, one-machine server (SQLite)."""
    return str(settings.DATABASES["default"]["ENGINE"]).endswith("sqlite3")


def allow_list() -> list[str]:
    """Return the configured allow-list entries (see the module docstring for the defaults)."""
    raw = getattr(settings, SETTING, None)
    if raw is None:
        raw = os.environ.get(SETTING)
    if raw is None:
        return list(LOOPBACK) if is_embedded() or getattr(settings, "TESTING", False) else []
    if isinstance(raw, str):
        raw = raw.split(",")
    return [entry.strip() for entry in raw if entry.strip()]


def split_url(url: str) -> tuple[str, str, int]:
    """Return (scheme, host, port) of an ``api_url``; raise :class:`ApiUrlError` for anything but plain http(s)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ApiUrlError("not a valid URL") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ApiUrlError("only http:// and https:// URLs are supported")
    if not parts.hostname:
        raise ApiUrlError("the URL has no host")
    if parts.username or parts.password:
        raise ApiUrlError("credentials in the URL are not allowed (store keys in api_key/secret)")
    if parts.query or parts.fragment:
        raise ApiUrlError("the URL must not have a query or fragment")
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def is_allowed(url: str, patterns: list[str] | None = None) -> bool:
    """Return True when ``url`` matches an allow-list entry (bad entries are ignored, never widen the list)."""
    scheme, host, port = split_url(url)
    for entry in allow_list() if patterns is None else patterns:
        try:
            pattern = parse_pattern(entry)
        except ValueError:
            continue
        if pattern.matches(scheme, host, port):
            return True
    return False


def check_api_url(url: str, *, is_admin: bool, current: str = "") -> str:
    """Return the URL when this caller may store it; raise :class:`ApiUrlError` with the reason otherwise.

    ``current`` is the account's stored URL: sending it back unchanged is always accepted.
    """
    url = url.strip()
    if not url or url == current:
        return url
    split_url(url)
    if is_admin or is_allowed(url):
        return url
    allowed = ", ".join(allow_list()) or "none"
    raise ApiUrlError(f"only an admin may point an account at this URL; allowed for everyone here: {allowed} "
                      f"(setting {SETTING})")
