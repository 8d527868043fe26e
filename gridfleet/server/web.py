"""The built web UI (``settings.WEB_UI_DIR``, e.g. ``frontend/dist``) served by the Django app, SPA style.

* a file that exists under the UI directory is served as is (hashed ``assets/…`` with a one-year cache,
  everything else revalidated);
* any other path (a client-side route such as ``/bots/12``) gets ``index.html``;
* when the UI is not built, a small placeholder page says so and links the API docs.

Mount it last, after the API: ``re_path(WEB_UI_ROUTE, web.index)`` (the route never matches ``api/``, ``ws/``
or ``static/``); :data:`urlpatterns` does exactly that.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseNotFound
from django.urls import URLPattern, re_path
from django.utils.html import escape

WEB_UI_ROUTE = r"^(?P<path>(?!api/|ws/|static/).*)$"

PLACEHOLDER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gridfleet</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}}
code{{background:#f3f3f3;padding:.1rem .3rem;border-radius:3px}}</style></head>
<body><h1>gridfleet server is running</h1>
<p>The web UI is not built (nothing at <code>{where}</code>). Build it with
<code>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</code>, or point <code>GRIDFLEET_WEB_DIR</code> at a
built copy.</p>
<p>The API is available: <a href="/api/docs/">API docs</a> · <a href="/api/schema/">OpenAPI schema</a>.</p>
</body></html>
"""


def _ui_dir() -> Path:
    return Path(settings.WEB_UI_DIR)


def _file(root: Path, path: str) -> Path | None:
    """Return the file for ``path`` inside ``root`` (never outside it), or None."""
    if not path or path.endswith("/"):
        return None
    try:
        candidate = (root / path).resolve()
        candidate.relative_to(root.resolve())
    except (ValueError, OSError):
        return None
    return candidate if candidate.is_file() else None


def index(request: HttpRequest, path: str = "") -> HttpResponse:
    """Serve a UI file, else the SPA's ``index.html``, else the placeholder page."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    root = _ui_dir()
    found = _file(root, path)
    if found is not None:
        content_type, encoding = mimetypes.guess_type(found.name)
        response: HttpResponse = FileResponse(found.open("rb"), content_type=content_type or
                                              "application/octet-stream")
        if encoding:
            response["Content-Encoding"] = encoding
        hashed = path.startswith("assets/")
        response["Cache-Control"] = "public, max-age=31536000, immutable" if hashed else "no-cache"
        return response
    if path.startswith("assets/"):
        return HttpResponseNotFound("not found")  # a missing bundle must not be answered with HTML
    page = root / "index.html"
    if page.is_file():
        response = HttpResponse(page.read_bytes(), content_type="text/html; charset=utf-8")
        response["Cache-Control"] = "no-cache"
        return response
    response = HttpResponse(PLACEHOLDER.format(where=escape(str(root))), content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    return response


urlpatterns: list[URLPattern] = [re_path(WEB_UI_ROUTE, index, name="web-ui")]
