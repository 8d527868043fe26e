"""Time filters echo bad input in their message; a ``%`` in it must be a 400, not a formatting crash."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/fills/", "/api/v1/events/", "/api/v1/orders/"])
def test_percent_signs_in_a_bad_time_are_a_field_error(stranger_api: APIClient, path: str) -> None:
    response = stranger_api.get(path, {"from": "100%s%d"})
    assert response.status_code == 400, response.content
    assert "100%s%d" in response.json()["from"][0]
