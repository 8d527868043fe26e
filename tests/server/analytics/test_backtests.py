"""Backtests as jobs: POST → 202 queued → (eager task after commit) done/failed; validation; scoping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from gridfleet.backtest.data import load_candles
from gridfleet.backtest.runner import run_backtest
from gridfleet.engine.config import parse_config
from gridfleet.server.analytics import backtests
from gridfleet.server.analytics.models import BacktestJob
from gridfleet.server.users.models import User

pytestmark = pytest.mark.django_db

ETH_FILE = "binance_spot_ETHUSDT_1m_2024-07-26_2024-08-25.csv.gz"
FIRST_OPEN_MS = 1_722_003_360_000  # the file's first candle
TO_MS = FIRST_OPEN_MS + 2000 * 60_000  # exclusive: the first 2,000 one-minute candles
CONFIG = {"symbol": "ETH/USDT", "grid": {"type": "arithmetic", "lower": 3100, "upper": 3400, "levels": 31},
          "investment": 5000, "fees": {"maker": 0.001, "taker": 0.001}}


@pytest.fixture
def data_dir(ohlcv_dir: Path) -> Any:
    """Point the server's data directory at the shared OHLCV files."""
    with override_settings(GRIDFLEET_DATA_DIR=str(ohlcv_dir)):
        yield ohlcv_dir


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, dict[str, Any]]]:
    """Capture realtime notifications."""
    from gridfleet.server.realtime import notify

    calls: list[tuple[int, dict[str, Any]]] = []
    monkeypatch.setattr(notify, "publish", lambda user_id, event, **kw: calls.append((user_id, event)))
    return calls


def _post(api: APIClient, body: dict[str, Any], capture: Any) -> Any:
    with capture(execute=True):
        return api.post("/api/v1/backtests/", body, format="json")


def test_backtest_job_end_to_end(data_dir: Path, client_api: APIClient, client_user: User,
                                 django_capture_on_commit_callbacks: Any,
                                 published: list[tuple[int, dict[str, Any]]]) -> None:
    response = _post(client_api, {"config": CONFIG, "data": {"file": ETH_FILE}, "to": TO_MS},
                     django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued"
    job_id = response.json()["id"]
    job = client_api.get(f"/api/v1/backtests/{job_id}/").json()
    assert job["status"] == "done", job["error"]
    assert job["error"] == "" and job["end_ms"] == TO_MS and job["started_at"] and job["finished_at"]
    direct = run_backtest(parse_config(backtests.decimals(CONFIG)),
                          load_candles(data_dir / ETH_FILE, end=TO_MS)).to_json()
    summary = job["summary"]
    assert summary["candles"] == direct["candles"] == 2000
    for key in ("start_time", "end_time", "final_equity", "total_pnl", "grid_profit", "realized_pnl",
                "unrealized_pnl", "buy_fills", "sell_fills", "fees_paid", "round_trips", "qty_per_order"):
        assert summary[key] == direct[key], key
    for key in ("total_return_pct", "max_drawdown_pct", "sharpe", "win_rate", "annualized_return_pct"):
        assert summary[key] == pytest.approx(direct[key]), key
    assert summary["equity_curve"] == direct["equity_curve"] and len(summary["equity_curve"]) <= 2000
    assert summary["sell_fills"] > 0  # the window actually traded
    # the list is light: no curve
    listed = client_api.get("/api/v1/backtests/").json()["results"]
    assert [j["id"] for j in listed] == [job_id]
    assert "equity_curve" not in listed[0]["summary"] and listed[0]["summary"]["final_equity"]
    # notified: running, then done
    assert [(u, e["data"]["status"]) for u, e in published] == [(client_user.pk, "running"), (client_user.pk, "done")]
    assert published[-1][1]["type"] == "notification" and published[-1][1]["data"]["id"] == job_id


def test_bad_config_is_400_with_field_messages(data_dir: Path, client_api: APIClient,
                                               django_capture_on_commit_callbacks: Any) -> None:
    bad = {**CONFIG, "grid": {"type": "arithmetic", "lower": 3500, "upper": 3400, "levels": 31}}
    response = _post(client_api, {"config": bad, "data": {"file": ETH_FILE}}, django_capture_on_commit_callbacks)
    assert response.status_code == 400
    errors = response.json()["config"]
    assert list(errors) == ["grid.lower"] and "below upper" in errors["grid.lower"][0]
    response = _post(client_api, {"config": {**CONFIG, "levls": 3, "fees": {"maker": -1}},
                                  "data": {"file": ETH_FILE}}, django_capture_on_commit_callbacks)
    errors = response.json()["config"]
    assert errors["levls"] == ["unknown key"] and "fees.maker" in errors
    no_size = {k: v for k, v in CONFIG.items() if k != "investment"}
    errors = _post(client_api, {"config": no_size, "data": {"file": ETH_FILE}},
                   django_capture_on_commit_callbacks).json()["config"]
    assert list(errors) == ["investment"]
    assert BacktestJob.objects.count() == 0


@pytest.mark.parametrize("body, field", [
    ({"data": {"file": "../secrets.csv"}}, "data"),
    ({"data": {"file": "/etc/passwd"}}, "data"),
    ({"data": {"file": "notes.txt"}}, "data"),
    ({"data": {}}, "data"),
    ({"data": {"file": ETH_FILE}, "from": "soon"}, "from"),
    ({"data": {"file": ETH_FILE}, "from": "2024-08-01", "to": "2024-07-30"}, "to"),
])
def test_bad_request_is_400(body: dict[str, Any], field: str, client_api: APIClient,
                            django_capture_on_commit_callbacks: Any) -> None:
    response = _post(client_api, {"config": CONFIG, **body}, django_capture_on_commit_callbacks)
    assert response.status_code == 400 and field in response.json(), response.content


def test_bad_data_file_fails_the_job(data_dir: Path, client_api: APIClient,
                                     django_capture_on_commit_callbacks: Any) -> None:
    response = _post(client_api, {"config": CONFIG, "data": {"file": "missing.csv.gz"}},
                     django_capture_on_commit_callbacks)
    assert response.status_code == 202
    job = client_api.get(f"/api/v1/backtests/{response.json()['id']}/").json()
    assert job["status"] == "failed" and job["summary"] is None
    assert job["error"] == "missing.csv.gz: file not found"  # one line, no server path
    # a window without candles fails the same way
    response = _post(client_api, {"config": CONFIG, "data": {"file": ETH_FILE}, "from": "2030-01-01"},
                     django_capture_on_commit_callbacks)
    job = client_api.get(f"/api/v1/backtests/{response.json()['id']}/").json()
    assert job["status"] == "failed" and job["error"].startswith(f"{ETH_FILE}: no candles in window")
    assert "\n" not in job["error"] and str(data_dir) not in job["error"]


def test_dispatch_mode() -> None:
    with override_settings(GRIDFLEET_BACKTEST_THREAD=None, CELERY_TASK_ALWAYS_EAGER=True, TESTING=False):
        assert backtests._in_thread()  # embedded server: never block the request
    with override_settings(GRIDFLEET_BACKTEST_THREAD=None, CELERY_TASK_ALWAYS_EAGER=False, TESTING=False):
        assert not backtests._in_thread()  # a broker: the task queue
    with override_settings(GRIDFLEET_BACKTEST_THREAD=None, CELERY_TASK_ALWAYS_EAGER=True, TESTING=True):
        assert not backtests._in_thread()  # tests: eager, synchronous after commit
