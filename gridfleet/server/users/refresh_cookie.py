"""Browser mode for JWT refresh tokens: kept in an HttpOnly cookie, never readable by page scripts.

API clients keep the documented contract (``{access, refresh}`` in the body). The web client sends the header
``X-Gridfleet-Client: web`` on the login, refresh and logout calls; then the refresh token travels only in the
``gridfleet_refresh`` cookie (HttpOnly, SameSite=Strict, path ``/api/v1/auth/``, Secure over HTTPS) and the
response body carries just the access token, which the page keeps in memory. A cross-site page can neither read
the cookie nor send the custom header without a CORS preflight, which the server never grants, so the cookie cannot
be used for CSRF.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response

COOKIE = "gridfleet_refresh"
HEADER = "HTTP_X_GRIDFLEET_CLIENT"
PATH = "/api/v1/auth/"


def browser_mode(request: Request) -> bool:
    """Return True when the caller is the web client (it asked for the cookie)."""
    return request.META.get(HEADER, "").strip().lower() == "web"


def fill_from_cookie(request: Request) -> None:
    """In browser mode with no refresh token in the body, take the one in the cookie."""
    if not browser_mode(request) or request.data.get("refresh"):
        return
    token = request.COOKIES.get(COOKIE)
    if token and hasattr(request.data, "_mutable"):  # a QueryDict (form data)
        request.data._mutable = True
    if token:
        request.data["refresh"] = token


def move_to_cookie(request: Request, response: Response) -> Response:
    """In browser mode move ``refresh`` from a successful response body into the cookie."""
    if not browser_mode(request) or response.status_code != 200 or not isinstance(response.data, dict):
        return response
    token = response.data.pop("refresh", None)
    if token:
        lifetime = settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
        response.set_cookie(COOKIE, token, max_age=int(lifetime.total_seconds()), path=PATH, httponly=True,
                            samesite="Strict", secure=request.is_secure())
    return response


def clear(response: Response) -> None:
    """Remove the cookie (logout)."""
    response.delete_cookie(COOKIE, path=PATH, samesite="Strict")
