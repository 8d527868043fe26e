"""``/api/v1/notifications/``: own notifications only, paginated, ``?unread=1``, marking read."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from gridfleet.server.realtime.models import Notification
from gridfleet.server.users.models import User

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.server.realtime.urls")]

URL = "/api/v1/notifications/"


def _make(user: User, n: int) -> list[Notification]:
    return [Notification.objects.create(user=user, kind="risk_alert", title=f"t{i}", body="b", data={"i": i})
            for i in range(n)]


def test_list_is_own_only_newest_first_and_paginated(client_user: User, stranger_user: User, admin_user: User,
                                                     api_for: Callable[[User | None], APIClient]) -> None:
    mine = _make(client_user, 3)
    _make(stranger_user, 2)
    body = api_for(client_user).get(URL).json()
    assert body["count"] == 3 and [r["id"] for r in body["results"]] == [n.pk for n in reversed(mine)]
    assert set(body["results"][0]) == {"id", "kind", "title", "body", "data", "created_at", "read_at", "read"}
    page = api_for(client_user).get(URL, {"limit": 1, "offset": 1}).json()
    assert page["count"] == 3 and [r["id"] for r in page["results"]] == [mine[1].pk]
    assert api_for(admin_user).get(URL).json()["count"] == 0  # admins too see only their own


def test_read_unread_filter_and_scoping(client_user: User, stranger_user: User, agent_user: User,
                                        api_for: Callable[[User | None], APIClient]) -> None:
    a, b = _make(client_user, 2)
    (theirs,) = _make(stranger_user, 1)
    api = api_for(client_user)
    response = api.post(f"{URL}{a.pk}/read/")
    assert response.status_code == 200 and response.json()["read"] is True
    first_read_at = response.json()["read_at"]
    assert api.post(f"{URL}{a.pk}/read/").json()["read_at"] == first_read_at  # idempotent
    assert [r["id"] for r in api.get(URL, {"unread": "1"}).json()["results"]] == [b.pk]
    assert api.get(URL).json()["count"] == 2
    assert api.post(f"{URL}{theirs.pk}/read/").status_code == 404
    assert api_for(agent_user).post(f"{URL}{a.pk}/read/").status_code == 404  # agents do not read clients'
    assert api.get(f"{URL}{theirs.pk}/").status_code == 404
    assert Notification.objects.get(pk=theirs.pk).read_at is None
    assert api.post(f"{URL}read-all/").json() == {"marked": 1}
    assert api.get(URL, {"unread": "1"}).json()["count"] == 0


def test_anonymous_is_refused(anon_api: APIClient) -> None:
    assert anon_api.get(URL).status_code == 401
    assert anon_api.post(f"{URL}1/read/").status_code == 401


@override_settings(ROOT_URLCONF="tests.server.realtime.urls")
def test_the_app_urls_resolve() -> None:
    from django.urls import reverse

    assert reverse("notification-list") == URL
    assert reverse("notification-read", args=[5]) == f"{URL}5/read/"
