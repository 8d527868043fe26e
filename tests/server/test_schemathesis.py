"""Fuzz every API operation from the OpenAPI schema against a real `gridfleet serve`: no 5xx."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ST = Path(sys.executable).parent / "st"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(not ST.exists(), reason="schemathesis is not installed")
def test_no_server_errors_on_generated_requests(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(GRIDFLEET_DB=str(tmp_path / "g.sqlite3"), GRIDFLEET_ADMIN_USERNAME="root",
               GRIDFLEET_ADMIN_PASSWORD="Very-Long-pass-123")
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "gridfleet.cli.main", "serve", "--port", str(port)],
                              env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/schema/", timeout=5)
                break
            except OSError:
                time.sleep(0.5)
        req = urllib.request.Request(f"{base}/api/v1/auth/token/", method="POST",
                                     data=json.dumps({"username": "root", "password": "Very-Long-pass-123"}).encode(),
                                     headers={"Content-Type": "application/json"})
        token = json.loads(urllib.request.urlopen(req, timeout=10).read())["access"]
        # the market-data endpoints answer a documented 503 (venue unreachable: no network here) or 502 (venue
        # error) by design; any other 5xx, there or elsewhere, still fails
        (tmp_path / "schemathesis.toml").write_text(
            '[[operations]]\ninclude-path-regex = "^/api/v1/market/"\n'
            'checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "502", "503"]\n')
        result = subprocess.run(
            [str(ST), "run", f"{base}/api/schema/", "-H", f"Authorization: Bearer {token}",
             "--checks", "not_a_server_error", "--max-examples", "8", "--seed", "1",
             "--exclude-path-regex", "/auth/(token|logout|password)"],
            capture_output=True, text=True, timeout=400, cwd=tmp_path)
        tail = "\n".join(result.stdout.splitlines()[-25:])
        print(tail)
        assert result.returncode == 0, tail
        assert "Internal Server Error" not in (tmp_path / "serve.log").read_text()
    finally:
        server.terminate()
        server.wait(20)
