"""The built web UI is served with an SPA fallback; a placeholder page stands in when it is not built."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import RequestFactory, override_settings

from gridfleet.server import web


def _get(path: str) -> tuple[int, bytes, str]:
    response = web.index(RequestFactory().get("/" + path), path)
    body = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]
    return response.status_code, body, response.get("Content-Type", "")


def test_placeholder_when_the_ui_is_not_built(tmp_path: Path) -> None:
    with override_settings(WEB_UI_DIR=tmp_path / "missing"):
        status, body, ctype = _get("")
        assert status == 200 and b"not built" in body and b"/api/docs/" in body and ctype.startswith("text/html")
        assert _get("bots/12")[0] == 200


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<html>app shell</html>")
    (tmp_path / "assets" / "app-1234.js").write_text("console.log(1)")
    (tmp_path / "favicon.svg").write_text("<svg/>")
    (tmp_path.parent / "secret.txt").write_text("do not serve")
    return tmp_path


def test_files_spa_fallback_and_no_escape(dist: Path) -> None:
    with override_settings(WEB_UI_DIR=dist):
        status, body, ctype = _get("assets/app-1234.js")
        assert status == 200 and body == b"console.log(1)" and "javascript" in ctype
        assert _get("favicon.svg")[1] == b"<svg/>"
        for route in ("", "bots/12", "login"):
            assert _get(route)[:2] == (200, b"<html>app shell</html>")
        assert _get("assets/missing.js")[0] == 404
        assert b"do not serve" not in _get("../secret.txt")[1]
        response = web.index(RequestFactory().post("/"), "")
        assert response.status_code == 405


def test_route_leaves_api_and_websockets_alone() -> None:
    import re

    route = re.compile(web.WEB_UI_ROUTE)
    assert route.match("bots/1") and route.match("")
    assert not route.match("api/v1/bots/") and not route.match("ws/events/") and not route.match("static/x.css")
