"""Every list endpoint clamps absurd ``limit``/``offset`` values instead of failing in the database."""

from __future__ import annotations

import pytest
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from gridfleet.server.pagination import CappedLimitOffsetPagination

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/groups/", "/api/v1/bots/", "/api/v1/fills/"])
def test_huge_limit_and_offset_are_clamped(stranger_api: APIClient, path: str) -> None:
    response = stranger_api.get(path, {"limit": "9002374839206785581056", "offset": "99999999999999999999999999"})
    assert response.status_code == 200, response.content
    assert response.json()["results"] == []


def test_limit_is_capped_at_1000() -> None:
    request = Request(APIRequestFactory().get("/api/v1/groups/", {"limit": "5000", "offset": "7"}))
    paginator = CappedLimitOffsetPagination()
    assert paginator.get_limit(request) == 1000 and paginator.get_offset(request) == 7
