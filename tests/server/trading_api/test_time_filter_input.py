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


@pytest.mark.parametrize("path", ["/api/v1/fills/", "/api/v1/orders/", "/api/v1/billing/entries/",
                                  "/api/v1/billing/statements/"])
def test_an_export_with_an_out_of_range_filter_answers_before_streaming(stranger_api: APIClient, path: str) -> None:
    key = "user" if "billing" in path else "bot"
    response = stranger_api.get(path, {key: "-1.6e42", "format": "csv"})
    if response.status_code == 400:  # SQLite cannot hold the number: refused before the download starts
        assert not response.streaming
    else:  # PostgreSQL compares it: an empty export, header row only
        assert response.status_code == 200
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert body.decode().count("\n") == 1
