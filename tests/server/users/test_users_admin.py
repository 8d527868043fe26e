"""User administration (``/users/``) and agents' endpoints (``/agents/…``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from gridfleet.server.users.models import Role, User
from gridfleet.server.users.views import REFERRAL_ALPHABET, REFERRAL_LENGTH

pytestmark = pytest.mark.django_db


def ids(response: object) -> list[int]:
    body = response.json()  # type: ignore[attr-defined]
    return [row["id"] for row in body["results"]]


@pytest.fixture
def cast(admin_user: User, agent_user: User, client_user: User, stranger_user: User) -> dict[str, User]:
    return {"admin": admin_user, "agent": agent_user, "client": client_user, "stranger": stranger_user}


# listing and reading ------------------------------------------------------------------------------------------------


def test_admin_lists_everyone(admin_api: APIClient, cast: dict[str, User]) -> None:
    response = admin_api.get("/api/v1/users/")
    assert response.status_code == 200
    assert sorted(ids(response)) == sorted(u.pk for u in cast.values())
    row = next(r for r in response.json()["results"] if r["id"] == cast["client"].pk)
    assert row["agent"] == cast["agent"].pk and row["role"] == "user" and "password" not in row


def test_admin_filters_by_role_and_agent(admin_api: APIClient, cast: dict[str, User]) -> None:
    assert ids(admin_api.get("/api/v1/users/?role=agent")) == [cast["agent"].pk]
    assert ids(admin_api.get(f"/api/v1/users/?agent={cast['agent'].pk}")) == [cast["client"].pk]
    assert ids(admin_api.get("/api/v1/users/?search=STRAN")) == [cast["stranger"].pk]
    assert ids(admin_api.get("/api/v1/users/?ordering=-id"))[0] == max(u.pk for u in cast.values())


def test_agent_lists_only_its_clients(agent_api: APIClient, cast: dict[str, User]) -> None:
    response = agent_api.get("/api/v1/users/")
    assert response.status_code == 200 and ids(response) == [cast["client"].pk]
    assert agent_api.get(f"/api/v1/users/{cast['client'].pk}/").status_code == 200
    for other in ("admin", "agent", "stranger"):
        assert agent_api.get(f"/api/v1/users/{cast[other].pk}/").status_code == 404


def test_users_get_403_and_anonymous_401(client_api: APIClient, stranger_api: APIClient, anon_api: APIClient,
                                         cast: dict[str, User]) -> None:
    for api in (client_api, stranger_api):
        assert api.get("/api/v1/users/").status_code == 403
        assert api.get(f"/api/v1/users/{cast['client'].pk}/").status_code == 403
        assert api.patch(f"/api/v1/users/{cast['client'].pk}/", {"role": "admin"}, format="json").status_code == 403
    assert anon_api.get("/api/v1/users/").status_code == 401
    assert anon_api.get(f"/api/v1/users/{cast['client'].pk}/").status_code == 401
    assert User.objects.get(pk=cast["client"].pk).role == Role.USER


def test_agent_is_read_only_on_its_clients(agent_api: APIClient, cast: dict[str, User]) -> None:
    client = cast["client"]
    assert agent_api.patch(f"/api/v1/users/{client.pk}/", {"is_active": False}, format="json").status_code == 403
    assert agent_api.patch(f"/api/v1/users/{cast['stranger'].pk}/", {"is_active": False},
                           format="json").status_code == 404
    client.refresh_from_db()
    assert client.is_active


def test_no_create_or_delete(admin_api: APIClient, cast: dict[str, User]) -> None:
    assert admin_api.post("/api/v1/users/", {"username": "x"}, format="json").status_code == 405
    assert admin_api.delete(f"/api/v1/users/{cast['stranger'].pk}/").status_code == 405


# admin changes ------------------------------------------------------------------------------------------------------


def test_admin_sets_role_agent_and_active(admin_api: APIClient, cast: dict[str, User]) -> None:
    stranger, agent = cast["stranger"], cast["agent"]
    response = admin_api.patch(f"/api/v1/users/{stranger.pk}/", {"agent": agent.pk}, format="json")
    assert response.status_code == 200 and response.json()["agent"] == agent.pk
    response = admin_api.patch(f"/api/v1/users/{stranger.pk}/", {"agent": None, "is_active": False}, format="json")
    assert response.status_code == 200
    stranger.refresh_from_db()
    assert stranger.agent is None and not stranger.is_active
    response = admin_api.patch(f"/api/v1/users/{stranger.pk}/", {"role": "agent", "is_active": True}, format="json")
    assert response.status_code == 200 and response.json()["role"] == "agent"


def test_admin_cannot_change_username_email_or_code(admin_api: APIClient, cast: dict[str, User]) -> None:
    stranger = cast["stranger"]
    response = admin_api.patch(f"/api/v1/users/{stranger.pk}/", {"username": "x", "email": "x@example.com",
                                                                 "referral_code": "FREE"}, format="json")
    assert response.status_code == 200
    stranger.refresh_from_db()
    assert (stranger.username, stranger.email, stranger.referral_code) == ("stranger", "stranger@example.com", None)


def test_agent_assignment_rules(admin_api: APIClient, cast: dict[str, User], make_user: Callable[..., User]) -> None:
    agent, client, stranger = cast["agent"], cast["client"], cast["stranger"]

    def patch(user: User, **data: object) -> tuple[int, dict]:  # type: ignore[type-arg]
        response = admin_api.patch(f"/api/v1/users/{user.pk}/", data, format="json")
        return response.status_code, response.json()

    assert patch(stranger, agent=client.pk) == (400, {"agent": ["client is not an agent."]})
    code, body = patch(agent, agent=agent.pk)
    assert code == 400 and "agent" in body
    code, body = patch(stranger, agent=999_999)
    assert code == 400 and "agent" in body
    # a sub-agent chain: top <- agent ; making top a client of agent would be a cycle
    top = make_user("top", role=Role.AGENT)
    assert patch(agent, agent=top.pk)[0] == 200
    code, body = patch(top, agent=agent.pk)
    assert code == 400 and "cycles" in body["agent"][0]
    # an agent with clients keeps its role until they are reassigned
    code, body = patch(agent, role="user")
    assert code == 400 and "role" in body
    assert patch(client, agent=None)[0] == 200
    assert patch(agent, role="user")[0] == 200


def test_admin_cannot_lock_itself_out(admin_api: APIClient, cast: dict[str, User]) -> None:
    admin = cast["admin"]
    code = admin_api.patch(f"/api/v1/users/{admin.pk}/", {"role": "user"}, format="json")
    assert code.status_code == 400 and "role" in code.json()
    code = admin_api.patch(f"/api/v1/users/{admin.pk}/", {"is_active": False}, format="json")
    assert code.status_code == 400 and "is_active" in code.json()
    admin.refresh_from_db()
    assert admin.role == Role.ADMIN and admin.is_active


def test_bad_role_is_400(admin_api: APIClient, cast: dict[str, User]) -> None:
    response = admin_api.patch(f"/api/v1/users/{cast['stranger'].pk}/", {"role": "god"}, format="json")
    assert response.status_code == 400 and "role" in response.json()


def test_deactivated_user_loses_access(admin_api: APIClient, stranger_api: APIClient, cast: dict[str, User]) -> None:
    assert stranger_api.get("/api/v1/auth/me/").status_code == 200
    admin_api.patch(f"/api/v1/users/{cast['stranger'].pk}/", {"is_active": False}, format="json")
    assert stranger_api.get("/api/v1/auth/me/").status_code == 401


# agents ---------------------------------------------------------------------------------------------------------


def test_agent_rotates_its_referral_code(agent_api: APIClient, anon_api: APIClient, agent_user: User) -> None:
    first = agent_api.post("/api/v1/agents/referral-code/")
    assert first.status_code == 200
    code = first.json()["referral_code"]
    assert len(code) == REFERRAL_LENGTH and set(code) <= set(REFERRAL_ALPHABET)
    second = agent_api.post("/api/v1/agents/referral-code/").json()["referral_code"]
    assert second != code
    agent_user.refresh_from_db()
    assert agent_user.referral_code == second
    old = anon_api.post("/api/v1/auth/register/", {"username": "late", "password": "Correct-horse-battery-9",
                                                   "email": "late@example.com", "referral_code": code},
                        format="json")
    assert old.status_code == 400 and "referral_code" in old.json()
    new = anon_api.post("/api/v1/auth/register/", {"username": "late", "password": "Correct-horse-battery-9",
                                                   "email": "late@example.com", "referral_code": second},
                        format="json")
    assert new.status_code == 201
    assert User.objects.get(username="late").agent == agent_user


def test_only_agents_have_codes_and_clients(admin_api: APIClient, client_api: APIClient, anon_api: APIClient,
                                            agent_user: User) -> None:
    for api, code in ((admin_api, 403), (client_api, 403), (anon_api, 401)):
        assert api.post("/api/v1/agents/referral-code/").status_code == code
        assert api.get("/api/v1/agents/me/clients/").status_code == code


def test_agent_lists_its_clients_minimally(agent_api: APIClient, client_user: User, stranger_user: User,
                                           make_user: Callable[..., User], agent_user: User) -> None:
    second = make_user("second", agent=agent_user)
    other_agent = make_user("other-agent", role=Role.AGENT)
    make_user("not-mine", agent=other_agent)
    response = agent_api.get("/api/v1/agents/me/clients/")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [r["id"] for r in rows] == [client_user.pk, second.pk]
    assert set(rows[0]) == {"id", "username", "email", "is_active", "date_joined"}


def test_at_most_one_sub_agent_level(admin_api: APIClient, make_user: Callable[..., User]) -> None:
    top, middle, low = (make_user(name, role=Role.AGENT) for name in ("top", "middle", "low"))

    def set_agent(user: User, agent: User) -> tuple[int, dict]:  # type: ignore[type-arg]
        response = admin_api.patch(f"/api/v1/users/{user.pk}/", {"agent": agent.pk}, format="json")
        return response.status_code, response.json()

    assert set_agent(middle, top)[0] == 200  # middle is a sub-agent of top
    code, body = set_agent(low, middle)  # low under a sub-agent: two levels
    assert code == 400 and "one sub-agent level" in body["agent"][0]
    code, body = set_agent(top, low)  # top has a sub-agent, so it cannot become one
    assert code == 400 and "one sub-agent level" in body["agent"][0]
    plain = make_user("plain")
    assert set_agent(plain, middle)[0] == 200  # a plain user may belong to a sub-agent
    assert User.objects.get(pk=low.pk).agent_id is None and User.objects.get(pk=top.pk).agent_id is None
