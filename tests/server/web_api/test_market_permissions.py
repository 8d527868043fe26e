"""The permission rules of /api/v1/market/* (listed in the matrix's EXPLICIT: they need ``?symbol=``).

Every role against every owner's exchange account: anonymous 401; an account outside the caller's scope is the
404 of a missing one (same body); an account in scope is used (public market data only: no keys are sent);
nothing in the database changes; no answer carries another owner's account label.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from gridfleet.server.exchange_accounts.models import ExchangeAccount

pytestmark = pytest.mark.django_db
OWNERS = ("admin", "agent", "client", "alice")
VISIBLE = {"admin": set(OWNERS), "agent": {"agent", "client"}, "client": {"client"}, "alice": {"alice"}}
PATHS = ("market/candles/", "market/ticker/", "market/rules/")


def _state() -> list[dict[str, Any]]:
    return list(ExchangeAccount.objects.order_by("pk").values())


@pytest.mark.parametrize("path", PATHS)
def test_market_endpoints_follow_the_ownership_rules(path: str, client_for: Callable[[str | None], APIClient],
                                                     make_account: Callable[..., ExchangeAccount],
                                                     fake_exchange_url: str) -> None:
    accounts = {o: make_account(o, fake_exchange_url) for o in OWNERS}
    for owner, account in accounts.items():
        account.label = f"MARK-{owner}-MARK"
        account.save()
    before = _state()
    url = f"/api/v1/{path}"
    assert client_for(None).get(url, {"symbol": "BTC/USDT"}).status_code == 401
    assert client_for(None).get(url, {"symbol": "BTC/USDT", "account": accounts["alice"].pk}).status_code == 401
    for caller in OWNERS:
        api = client_for(caller)
        assert api.get(url).status_code == 400  # the symbol is required
        missing = api.get(url, {"symbol": "BTC/USDT", "account": 987654321})
        assert missing.status_code == 404
        for owner, account in accounts.items():
            response = api.get(url, {"symbol": "BTC/USDT", "account": account.pk, "timeframe": "1m", "limit": 5})
            text = response.content.decode()
            assert "MARK-" not in text
            if owner in VISIBLE[caller]:
                assert response.status_code == 200, (caller, owner, text[:200])
            else:
                assert (response.status_code, text) == (404, missing.content.decode()), (caller, owner)
    assert _state() == before
