"""Bots: CRUD, engine-validated configs with field paths, lifecycle actions through the runtime, config changes
with snapshots and diffs, filters, and the scoping rules (owner, agent read-only, admin all)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from gridfleet.server.bots.models import Bot, BotGroup, ConfigSnapshot
from gridfleet.server.bots.services import json_diff, merge_patch
from gridfleet.server.exchange_accounts.models import ExchangeAccount
from gridfleet.server.users.models import User
from tests.server.bots.conftest import FakeRuntime, bot_body, grid_config

Client = Callable[[str], APIClient]
MakeBot = Callable[..., dict[str, Any]]
URL = "/api/v1/bots/"


def account_for(user: User, exchange: str = "binance") -> ExchangeAccount:
    account = ExchangeAccount(owner=user, label="k", exchange=exchange, api_url="http://127.0.0.1:1/")
    account.set_credentials("KEY-1234567890", "SECRET-1234567890")
    account.save()
    return account


@pytest.mark.django_db
def test_create_validates_and_stores_version_1(client_for: Client, users: dict[str, User]) -> None:
    response = client_for("alice").post(URL, bot_body(), format="json")
    assert response.status_code == 201, response.json()
    bot = response.json()
    assert bot["owner"] == users["alice"].pk
    assert bot["status"] == "created" and bot["config_version"] == 1
    assert bot["config"]["grid"]["lower"] == "100000"  # amounts as strings, defaults filled in
    assert bot["config"]["fees"] == {"maker": "0.001", "taker": "0.001"}
    snapshot = ConfigSnapshot.objects.get(bot_id=bot["id"])
    assert snapshot.version == 1 and snapshot.created_by == users["alice"] and snapshot.config == bot["config"]


@pytest.mark.django_db
def test_config_errors_are_field_paths_under_config(client_for: Client) -> None:
    client = client_for("alice")
    bad = grid_config(grid={"lower": "5", "upper": "4", "levels": 5}, foo=1)
    response = client.post(URL, bot_body(config=bad), format="json")
    assert response.status_code == 400
    errors = response.json()["config"]
    assert errors["grid.lower"] == ["lower (5) must be below upper (4)"]
    assert errors["foo"] == ["unknown key"]
    response = client.post(URL, bot_body(config=grid_config(qty_per_order="-1")), format="json")
    assert "qty_per_order" in response.json()["config"]
    response = client.post(URL, bot_body(symbol="ETH/USDT"), format="json")
    assert response.status_code == 400
    assert "does not match" in response.json()["config"]["symbol"][0]
    missing_symbol = grid_config()
    del missing_symbol["symbol"]
    response = client.post(URL, bot_body(config=missing_symbol), format="json")
    assert response.status_code == 201 and response.json()["config"]["symbol"] == "BTC/USDT"
    response = client.post(URL, bot_body(strategy="nope", name=""), format="json")
    assert response.status_code == 400 and {"strategy", "name"} <= set(response.json())


@pytest.mark.django_db
def test_live_bot_needs_the_callers_account(client_for: Client, users: dict[str, User]) -> None:
    client = client_for("alice")
    response = client.post(URL, bot_body(mode="live"), format="json")
    assert response.status_code == 400 and "exchange_account" in response.json()
    other = account_for(users["bob"])
    response = client.post(URL, bot_body(mode="live", exchange_account=other.pk), format="json")
    assert response.status_code == 400 and "does not exist" in response.json()["exchange_account"][0]
    wrong_venue = account_for(users["alice"], exchange="okx")
    response = client.post(URL, bot_body(mode="live", exchange_account=wrong_venue.pk), format="json")
    assert response.status_code == 400
    mine = account_for(users["alice"])
    response = client.post(URL, bot_body(mode="live", exchange_account=mine.pk), format="json")
    assert response.status_code == 201 and response.json()["exchange_account"] == mine.pk


@pytest.mark.django_db
def test_list_retrieve_update_delete(client_for: Client, make_bot: MakeBot, runtime: FakeRuntime) -> None:
    client = client_for("alice")
    bot = make_bot(name="a")
    make_bot(name="b", symbol="ETH/USDT", config=grid_config(symbol="ETH/USDT"))
    assert [b["name"] for b in client.get(URL).json()["results"]] == ["a", "b"]
    assert client.get(f"{URL}{bot['id']}/").json()["name"] == "a"
    response = client.patch(f"{URL}{bot['id']}/", {"name": "renamed"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "renamed"
    assert response.json()["config_version"] == 1
    # a config change through PATCH is snapshotted like any other
    response = client.patch(f"{URL}{bot['id']}/", {"config": grid_config(qty_per_order="0.003")}, format="json")
    assert response.status_code == 200 and response.json()["config_version"] == 2
    response = client.patch(f"{URL}{bot['id']}/", {"config": grid_config(levels=1)}, format="json")
    assert response.status_code == 400 and "levels" in response.json()["config"]
    assert client.delete(f"{URL}{bot['id']}/").status_code == 204
    assert not Bot.objects.filter(pk=bot["id"]).exists()
    assert client.get(f"{URL}{bot['id']}/").status_code == 404


@pytest.mark.django_db
def test_running_bot_cannot_be_deleted_or_moved(client_for: Client, make_bot: MakeBot, runtime: FakeRuntime) -> None:
    client = client_for("alice")
    bot = make_bot()
    assert client.post(f"{URL}{bot['id']}/start/").status_code == 200
    assert client.delete(f"{URL}{bot['id']}/").status_code == 409
    response = client.patch(f"{URL}{bot['id']}/", {"symbol": "ETH/USDT"}, format="json")
    assert response.status_code == 400 and "symbol" in response.json()


@pytest.mark.django_db
def test_lifecycle_actions_call_the_runtime(client_for: Client, make_bot: MakeBot, runtime: FakeRuntime) -> None:
    client = client_for("alice")
    pk = make_bot()["id"]
    assert client.post(f"{URL}{pk}/pause/").status_code == 409  # not running yet
    response = client.post(f"{URL}{pk}/start/")
    assert response.status_code == 200 and response.json()["status"] == "running"
    assert client.post(f"{URL}{pk}/start/").status_code == 409
    assert client.post(f"{URL}{pk}/pause/").json()["status"] == "paused"
    assert client.post(f"{URL}{pk}/resume/").json()["status"] == "running"
    response = client.post(f"{URL}{pk}/stop/", {"cancel_orders": False, "sell_all": True}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "stopped"
    assert runtime.calls == [("start", pk), ("command", pk, "pause"), ("command", pk, "resume"),
                             ("stop", pk, False, True)]
    assert client.post(f"{URL}{pk}/stop/").status_code == 409
    assert client.post(f"{URL}{pk}/stop/", {"sell_all": "maybe"}, format="json").status_code == 400


@pytest.mark.django_db
def test_runtime_failures(client_for: Client, make_bot: MakeBot, runtime: FakeRuntime) -> None:
    client = client_for("alice")
    pk = make_bot()["id"]
    runtime.fail["start"] = RuntimeError("venue down")
    response = client.post(f"{URL}{pk}/start/")
    assert response.status_code == 502 and "venue down" in response.json()["detail"]
    assert Bot.objects.get(pk=pk).status == "created"


@pytest.mark.django_db
def test_no_runtime_installed_is_503(client_for: Client, make_bot: MakeBot) -> None:
    pk = make_bot()["id"]
    assert client_for("alice").post(f"{URL}{pk}/start/").status_code == 503


@pytest.mark.django_db
def test_config_change_dry_run_snapshot_and_apply(client_for: Client, make_bot: MakeBot, runtime: FakeRuntime,
                                                  users: dict[str, User]) -> None:
    client = client_for("alice")
    pk = make_bot()["id"]
    new = grid_config(grid={"type": "arithmetic", "lower": "90000", "upper": "120000", "levels": 5})
    response = client.post(f"{URL}{pk}/config/", {"config": new, "dry_run": True}, format="json")
    assert response.status_code == 200
    result = response.json()
    assert result["dry_run"] and result["changed"] and result["version"] is None and not result["applied"]
    assert result["diff"] == {"grid.lower": {"old": "100000", "new": "90000"}}
    assert ConfigSnapshot.objects.filter(bot_id=pk).count() == 1
    # stopped bot: snapshot, no runtime call
    result = client.post(f"{URL}{pk}/config/", {"config": new, "note": "wider"}, format="json").json()
    assert result["version"] == 2 and not result["applied"] and runtime.calls == []
    # unchanged: no snapshot
    result = client.post(f"{URL}{pk}/config/", {"config": new}, format="json").json()
    assert result["changed"] is False and result["version"] is None
    # running bot: applied
    client.post(f"{URL}{pk}/start/")
    newer = {**new, "qty_per_order": "0.004"}
    result = client.post(f"{URL}{pk}/config/", {"config": newer}, format="json").json()
    assert result["version"] == 3 and result["applied"]
    assert runtime.calls[-1] == ("apply_config", pk, result["config"])
    # runtime refuses: nothing recorded
    runtime.fail["apply_config"] = ValueError("cannot shrink")
    response = client.post(f"{URL}{pk}/config/", {"config": {**newer, "qty_per_order": "0.005"}}, format="json")
    assert response.status_code == 409 and "cannot shrink" in response.json()["detail"]
    assert Bot.objects.get(pk=pk).config["qty_per_order"] == "0.004"
    # invalid config: field paths
    response = client.post(f"{URL}{pk}/config/", {"config": grid_config(slippage="2")}, format="json")
    assert response.status_code == 400 and "slippage" in response.json()["config"]
    snapshots = client.get(f"{URL}{pk}/snapshots/").json()
    assert [s["version"] for s in snapshots] == [1, 2, 3]
    assert snapshots[1]["diff"] == {"grid.lower": {"old": "100000", "new": "90000"}}
    assert snapshots[1]["note"] == "wider" and snapshots[1]["created_by_username"] == "alice"
    assert snapshots[2]["config"]["qty_per_order"] == "0.004"


@pytest.mark.django_db
def test_filters(client_for: Client, make_bot: MakeBot, runtime: FakeRuntime, users: dict[str, User]) -> None:
    client = client_for("alice")
    a = make_bot(name="a")
    b = make_bot(name="b", symbol="ETH/USDT", config=grid_config(symbol="ETH/USDT"))
    account = account_for(users["alice"])
    c = make_bot(name="c", mode="live", exchange_account=account.pk)
    client.post(f"{URL}{a['id']}/start/")
    group = BotGroup.objects.create(owner=users["alice"], name="g")
    group.bots.add(b["id"], c["id"])

    def names(query: str) -> list[str]:
        return [x["name"] for x in client.get(f"{URL}?{query}").json()["results"]]

    assert names("status=running") == ["a"]
    assert names("symbol=eth/usdt") == ["b"]
    assert names("mode=live") == ["c"]
    assert names(f"group={group.pk}") == ["b", "c"]
    assert names("status=created&mode=paper") == ["b"]
    assert client.get(f"{URL}?status=bogus").status_code == 400


@pytest.mark.django_db
def test_scoping_owner_agent_admin(client_for: Client, make_bot: MakeBot, runtime: FakeRuntime) -> None:
    theirs = make_bot("client")
    make_bot("bob")
    pk = theirs["id"]
    alice = client_for("alice")
    assert alice.get(URL).json()["results"] == []
    for method, path in (("get", ""), ("patch", ""), ("delete", ""), ("post", "start/"), ("post", "config/"),
                         ("get", "snapshots/")):
        assert getattr(alice, method)(f"{URL}{pk}/{path}", {}, format="json").status_code == 404, (method, path)
    agent = client_for("agent")
    assert [b["id"] for b in agent.get(URL).json()["results"]] == [pk]
    assert agent.get(f"{URL}{pk}/snapshots/").status_code == 200
    for path in ("start/", "pause/", "resume/", "stop/", "config/"):
        assert agent.post(f"{URL}{pk}/{path}", {"config": grid_config()}, format="json").status_code == 403, path
    assert agent.patch(f"{URL}{pk}/", {"name": "x"}, format="json").status_code == 403
    assert agent.delete(f"{URL}{pk}/").status_code == 403
    assert runtime.calls == []
    admin = client_for("admin")
    assert len(admin.get(URL).json()["results"]) == 2
    assert admin.post(f"{URL}{pk}/start/").status_code == 200
    assert runtime.calls == [("start", pk)]
    assert APIClient().get(URL).status_code == 401


def test_json_diff_and_merge_patch() -> None:
    old = {"a": 1, "b": {"c": 2, "d": [1, 2]}, "e": 5}
    new = {"a": 1, "b": {"c": 3, "d": [1]}, "f": 6}
    assert json_diff(old, new) == {"b.c": {"old": 2, "new": 3}, "b.d": {"old": [1, 2], "new": [1]},
                                   "e": {"old": 5, "new": None, "removed": True},
                                   "f": {"old": None, "new": 6, "added": True}}
    assert json_diff(old, old) == {}
    assert merge_patch(old, {"b": {"c": 9}, "e": None}) == {"a": 1, "b": {"c": 9, "d": [1, 2]}}


@pytest.mark.django_db
def test_openapi_documents_every_endpoint(client_for: Client) -> None:
    schema = client_for("alice").get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path, method in (("/api/v1/bots/batch/", "post"), ("/api/v1/bots/{id}/config/", "post"),
                         ("/api/v1/bots/{id}/stop/", "post"), ("/api/v1/risk-templates/{id}/apply/", "post"),
                         ("/api/v1/groups/{id}/add/", "post"), ("/api/v1/exchange-accounts/{id}/test/", "post")):
        assert "200" in paths[path][method]["responses"], path
    assert "requestBody" in paths["/api/v1/bots/batch/"]["post"]
    account = schema["components"]["schemas"]["ExchangeAccount"]["properties"]
    assert "api_key_masked" in account and not {"api_key", "secret", "password"} & set(account)


@pytest.mark.django_db
def test_the_status_the_runtime_records_wins(client_for: Client, make_bot: MakeBot, runtime: FakeRuntime) -> None:
    client = client_for("alice")
    pk = make_bot()["id"]

    def start_in_error(bot_id: int) -> None:  # like ServerRuntime: the runner came up in error, nothing raised
        Bot.objects.filter(pk=bot_id).update(status="error", status_message="no market BTC/USDT")

    runtime.start = start_in_error  # type: ignore[method-assign]
    response = client.post(f"{URL}{pk}/start/")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["status_message"]) == ("error", "no market BTC/USDT")

    def start_and_fail(bot_id: int) -> None:  # records the error itself, then raises
        Bot.objects.filter(pk=bot_id).update(status="error", status_message="start failed: boom")
        raise RuntimeError("boom")

    runtime.start = start_and_fail  # type: ignore[method-assign]
    assert client.post(f"{URL}{pk}/start/").status_code == 502
    assert Bot.objects.get(pk=pk).status_message == "start failed: boom"
