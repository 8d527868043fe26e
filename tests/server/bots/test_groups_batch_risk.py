"""Groups (fleets) and membership, batch operations with per-bot results, risk templates and applying them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from gridfleet.server.bots.models import Bot, ConfigSnapshot, RiskTemplate
from gridfleet.server.users.models import User
from tests.server.bots.conftest import FakeRuntime

Client = Callable[[str], APIClient]
MakeBot = Callable[..., dict[str, Any]]
RULES = [{"name": "below-range", "when": {"metric": "price", "op": "<", "value": {"metric": "lower"}},
          "action": "stop_and_sell"},
         {"name": "deep-drawdown", "when": {"metric": "drawdown_pct", "op": ">", "value": 15}, "action": "stop"}]


@pytest.mark.django_db
def test_group_crud_and_membership(client_for: Client, make_bot: MakeBot, users: dict[str, User]) -> None:
    client = client_for("alice")
    a, b = make_bot(name="a")["id"], make_bot(name="b")["id"]
    bobs = make_bot("bob")["id"]
    response = client.post("/api/v1/groups/", {"name": "fleet", "bot_ids": [a]}, format="json")
    assert response.status_code == 201, response.json()
    group = response.json()
    assert group["bot_ids"] == [a] and group["owner"] == users["alice"].pk
    gid = group["id"]
    assert client.post("/api/v1/groups/", {"name": "fleet"}, format="json").status_code == 400  # unique name
    response = client.post("/api/v1/groups/", {"name": "x", "bot_ids": [bobs]}, format="json")
    assert response.status_code == 400 and "bot_ids" in response.json()  # only own bots
    assert client.post(f"/api/v1/groups/{gid}/add/", {"bot_ids": [b]}, format="json").json()["bot_ids"] == [a, b]
    assert client.post(f"/api/v1/groups/{gid}/add/", {"bot_ids": [bobs]}, format="json").status_code == 400
    assert client.post(f"/api/v1/groups/{gid}/remove/", {"bot_ids": [a]}, format="json").json()["bot_ids"] == [b]
    response = client.patch(f"/api/v1/groups/{gid}/", {"name": "renamed", "bot_ids": [a, b]}, format="json")
    assert response.json() == {**group, "name": "renamed", "bot_ids": [a, b]}
    assert client.get(f"/api/v1/bots/{a}/").json()["groups"] == [gid]
    assert [g["id"] for g in client.get("/api/v1/groups/").json()["results"]] == [gid]
    assert client.get(f"/api/v1/groups/{gid}/").json()["name"] == "renamed"
    assert client_for("bob").get(f"/api/v1/groups/{gid}/").status_code == 404
    assert client_for("bob").post(f"/api/v1/groups/{gid}/add/", {"bot_ids": [bobs]},
                                  format="json").status_code == 404
    assert client.delete(f"/api/v1/groups/{gid}/").status_code == 204
    assert Bot.objects.filter(pk__in=[a, b]).count() == 2


@pytest.mark.django_db
def test_group_agent_reads_clients_groups_admin_all(client_for: Client, make_bot: MakeBot) -> None:
    bot = make_bot("client")["id"]
    gid = client_for("client").post("/api/v1/groups/", {"name": "g", "bot_ids": [bot]}, format="json").json()["id"]
    agent = client_for("agent")
    assert agent.get(f"/api/v1/groups/{gid}/").status_code == 200
    assert agent.patch(f"/api/v1/groups/{gid}/", {"name": "x"}, format="json").status_code == 403
    assert agent.post(f"/api/v1/groups/{gid}/remove/", {"bot_ids": [bot]}, format="json").status_code == 403
    admin = client_for("admin")
    assert admin.patch(f"/api/v1/groups/{gid}/", {"name": "by admin"}, format="json").status_code == 200


@pytest.mark.django_db
def test_batch_per_bot_results(client_for: Client, make_bot: MakeBot, runtime: FakeRuntime) -> None:
    client = client_for("alice")
    a, b, c = (make_bot(name=n)["id"] for n in "abc")
    bobs = make_bot("bob")["id"]
    client.post(f"/api/v1/bots/{b}/start/")
    runtime.calls.clear()
    response = client.post("/api/v1/bots/batch/", {"action": "start", "bot_ids": [a, b, c, bobs, 999999]},
                           format="json")
    assert response.status_code == 200
    data = response.json()
    assert data["ok"] == 2 and data["failed"] == 3
    results = {r["bot"]: r for r in data["results"]}
    assert results[a] == {"bot": a, "ok": True, "status": "running"}
    assert results[b]["ok"] is False and "running" in results[b]["error"]
    assert results[bobs] == {"bot": bobs, "ok": False, "error": "not found"}
    assert results[999999]["error"] == "not found"
    assert runtime.calls == [("start", a), ("start", c)]
    # a runtime failure on one bot does not stop the others
    runtime.fail["command"] = RuntimeError("boom")
    data = client.post("/api/v1/bots/batch/", {"action": "pause", "bot_ids": [a, b]}, format="json").json()
    assert [r["ok"] for r in data["results"]] == [False, False] and "boom" in data["results"][0]["error"]
    del runtime.fail["command"]
    gid = client.post("/api/v1/groups/", {"name": "g", "bot_ids": [a, c]}, format="json").json()["id"]
    data = client.post("/api/v1/bots/batch/", {"action": "stop", "group": gid,
                                               "params": {"sell_all": True}}, format="json").json()
    assert data["ok"] == 2 and runtime.calls[-2:] == [("stop", a, True, True), ("stop", c, True, True)]
    assert Bot.objects.get(pk=a).status == "stopped"


@pytest.mark.django_db
def test_batch_edit_merges_config_per_bot(client_for: Client, make_bot: MakeBot, runtime: FakeRuntime) -> None:
    client = client_for("alice")
    a, b = make_bot(name="a")["id"], make_bot(name="b")["id"]
    client.post(f"/api/v1/bots/{b}/start/")
    Bot.objects.filter(pk=a).update(config={**Bot.objects.get(pk=a).config, "investment": None,
                                            "qty_per_order": None})  # broken on purpose: edit must fail for a
    data = client.post("/api/v1/bots/batch/", {"action": "edit", "bot_ids": [a, b],
                                               "params": {"config": {"trailing": {"rebound_pct": "0.3"}}}},
                       format="json").json()
    results = {r["bot"]: r for r in data["results"]}
    assert results[a]["ok"] is False and results[a]["error"].startswith("config: investment")
    assert results[b] == {"bot": b, "ok": True, "status": "running", "version": 2}
    assert Bot.objects.get(pk=b).config["trailing"]["rebound_pct"] == "0.3"
    assert runtime.calls[-1][0:2] == ("apply_config", b)


@pytest.mark.django_db
def test_batch_validation_and_agent_read_only(client_for: Client, make_bot: MakeBot, runtime: FakeRuntime) -> None:
    client = client_for("alice")
    a = make_bot()["id"]
    assert client.post("/api/v1/bots/batch/", {"action": "explode", "bot_ids": [a]}, format="json").status_code == 400
    assert client.post("/api/v1/bots/batch/", {"action": "start"}, format="json").status_code == 400
    assert client.post("/api/v1/bots/batch/", {"action": "start", "bot_ids": [a], "group": 1},
                       format="json").status_code == 400
    assert client.post("/api/v1/bots/batch/", {"action": "edit", "bot_ids": [a]}, format="json").status_code == 400
    assert client.post("/api/v1/bots/batch/", {"action": "start", "group": 999}, format="json").status_code == 400
    theirs = make_bot("client")["id"]
    data = client_for("agent").post("/api/v1/bots/batch/", {"action": "start", "bot_ids": [theirs]},
                                    format="json").json()
    assert data["results"] == [{"bot": theirs, "ok": False, "error": "read-only: not your bot"}]
    data = client_for("admin").post("/api/v1/bots/batch/", {"action": "start", "bot_ids": [theirs, a]},
                                    format="json").json()
    assert data["ok"] == 2


@pytest.mark.django_db
def test_risk_template_crud_and_validation(client_for: Client, users: dict[str, User]) -> None:
    client = client_for("alice")
    response = client.post("/api/v1/risk-templates/", {"name": "mine", "rules": RULES}, format="json")
    assert response.status_code == 201, response.json()
    tid = response.json()["id"]
    assert response.json()["shared"] is False and response.json()["owner"] == users["alice"].pk
    bad = [{"name": "x", "when": {"metric": "price", "op": "<<", "value": 1}}, RULES[0], RULES[0]]
    response = client.post("/api/v1/risk-templates/", {"name": "bad", "rules": bad}, format="json")
    assert response.status_code == 400
    errors = response.json()["rules"]
    assert any(k.startswith("0.when") for k in errors) and "duplicate" in errors["2.name"][0]
    assert client.post("/api/v1/risk-templates/", {"name": "x", "rules": {}}, format="json").status_code == 400
    response = client.post("/api/v1/risk-templates/", {"name": "s", "rules": RULES, "shared": True}, format="json")
    assert response.status_code == 400 and "shared" in response.json()
    assert client.patch(f"/api/v1/risk-templates/{tid}/", {"description": "d"}, format="json").status_code == 200
    assert client_for("bob").get(f"/api/v1/risk-templates/{tid}/").status_code == 404
    assert client_for("admin").get(f"/api/v1/risk-templates/{tid}/").status_code == 200
    assert client.delete(f"/api/v1/risk-templates/{tid}/").status_code == 204


@pytest.mark.django_db
def test_shared_templates_visible_to_all_editable_by_admin(client_for: Client) -> None:
    admin = client_for("admin")
    response = admin.post("/api/v1/risk-templates/", {"name": "house", "rules": RULES, "shared": True},
                          format="json")
    assert response.status_code == 201 and response.json()["shared"] is True and response.json()["owner"] is None
    tid = response.json()["id"]
    for name in ("alice", "agent", "client"):
        client = client_for(name)
        assert tid in [t["id"] for t in client.get("/api/v1/risk-templates/").json()["results"]]
        assert client.patch(f"/api/v1/risk-templates/{tid}/", {"name": "x"}, format="json").status_code == 403
        assert client.delete(f"/api/v1/risk-templates/{tid}/").status_code == 403
    response = admin.put(f"/api/v1/risk-templates/{tid}/", {"name": "house 2", "rules": RULES[:1]}, format="json")
    assert response.status_code == 200 and response.json()["shared"] is True  # a PUT without `shared` keeps it
    assert RiskTemplate.objects.get(pk=tid).owner is None


@pytest.mark.django_db
def test_apply_template_sets_risk_through_the_config_path(client_for: Client, make_bot: MakeBot,
                                                          runtime: FakeRuntime) -> None:
    client = client_for("alice")
    a, b = make_bot(name="a")["id"], make_bot(name="b")["id"]
    bobs = make_bot("bob")["id"]
    client.post(f"/api/v1/bots/{b}/start/")
    tid = client_for("admin").post("/api/v1/risk-templates/", {"name": "house", "rules": RULES, "shared": True},
                                   format="json").json()["id"]
    data = client.post(f"/api/v1/risk-templates/{tid}/apply/", {"bot_ids": [a, b, bobs]}, format="json").json()
    assert data["ok"] == 2 and data["failed"] == 1
    bot_a = Bot.objects.get(pk=a)
    assert [r["name"] for r in bot_a.config["risk"]] == ["below-range", "deep-drawdown"]
    snapshot = ConfigSnapshot.objects.get(bot_id=a, version=2)
    assert snapshot.note == "risk template house" and "risk" in snapshot.diff
    assert runtime.calls[-1][0:2] == ("apply_config", b)
    # batch endpoint, by group
    own = client.post("/api/v1/risk-templates/", {"name": "one", "rules": RULES[:1]}, format="json").json()["id"]
    gid = client.post("/api/v1/groups/", {"name": "g", "bot_ids": [a]}, format="json").json()["id"]
    data = client.post("/api/v1/bots/batch/", {"action": "apply_risk_template", "group": gid,
                                               "params": {"template": own}}, format="json").json()
    assert data["results"] == [{"bot": a, "ok": True, "status": "created", "version": 3}]
    assert len(Bot.objects.get(pk=a).config["risk"]) == 1
    # bob cannot use alice's template
    response = client_for("bob").post("/api/v1/bots/batch/", {"action": "apply_risk_template", "bot_ids": [bobs],
                                                              "params": {"template": own}}, format="json")
    assert response.status_code == 400
    assert client_for("bob").post(f"/api/v1/risk-templates/{own}/apply/", {"bot_ids": [bobs]},
                                  format="json").status_code == 404
