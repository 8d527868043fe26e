"""API tests of the billing ledger endpoints, with the permission rules of every role.

Cast (tests/server/conftest.py): admin, agent, client (the agent's), stranger (no agent), anonymous.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from openpyxl import load_workbook
from rest_framework.test import APIClient

from gridfleet.server.billing import ledger
from gridfleet.server.billing.audit import run_audit
from gridfleet.server.billing.models import Entry, Transaction, Voucher
from gridfleet.server.users.models import User

pytestmark = pytest.mark.django_db
D = Decimal
API = "/api/v1/billing/"


def _credit(api: APIClient, user: Any, amount: str, key: str, reason: str = "top-up") -> Any:
    return api.post(f"{API}credit/", {"user": user, "amount": amount, "reason": reason, "idempotency_key": key},
                    format="json")


def _balance(user: User) -> Decimal:
    return ledger.balance(ledger.wallet(user))


# ------------------------------------------------------------------------------------------------ credit
def test_admin_credits_by_username_and_id_idempotently(admin_api: APIClient, client_user: User) -> None:
    first = _credit(admin_api, "client", "12.5", "k-1")
    assert first.status_code == 201, first.data
    assert first.data["replayed"] is False
    assert {line["amount"] for line in first.data["lines"]} == {"12.50000000", "-12.50000000"}
    again = _credit(admin_api, "client", "12.5", "k-1")
    assert again.status_code == 200 and again.data["id"] == first.data["id"] and again.data["replayed"] is True
    assert _credit(admin_api, str(client_user.pk), "0.00000001", "k-2").status_code == 201
    assert _balance(client_user) == D("12.50000001")
    conflict = _credit(admin_api, "client", "13", "k-1")
    assert conflict.status_code == 409 and "idempotency_key" in conflict.data["detail"]
    assert _balance(client_user) == D("12.50000001")


@pytest.mark.parametrize("body, field", [
    ({"user": "client", "amount": "1.123456789", "reason": "r", "idempotency_key": "k"}, "amount"),
    ({"user": "client", "amount": "abc", "reason": "r", "idempotency_key": "k"}, "amount"),
    ({"user": "client", "amount": 1.5, "reason": "r", "idempotency_key": "k"}, "amount"),
    ({"user": "client", "amount": "0", "reason": "r", "idempotency_key": "k"}, "amount"),
    ({"user": "client", "amount": "1", "reason": "", "idempotency_key": "k"}, "reason"),
    ({"user": "client", "amount": "1", "reason": "r"}, "idempotency_key"),
    ({"amount": "1", "reason": "r", "idempotency_key": "k"}, "user"),
    ({"user": "client", "amount": "99999999999999999999", "reason": "r", "idempotency_key": "k"}, "amount"),
])
def test_credit_bad_input_is_400_with_field(admin_api: APIClient, client_user: User, body: dict[str, Any],
                                            field: str) -> None:
    response = admin_api.post(f"{API}credit/", body, format="json")
    assert response.status_code == 400, response.data
    assert field in response.data
    assert not Transaction.objects.exists()


def test_admin_debit_and_overdraw_refused(admin_api: APIClient, agent_api: APIClient, client_user: User) -> None:
    _credit(admin_api, "client", "5", "dep")
    debit = _credit(admin_api, "client", "-2", "fix", reason="correction")
    assert debit.status_code == 201 and debit.data["kind"] == "adjustment"
    assert _balance(client_user) == D(3)
    over = _credit(admin_api, "client", "-3.00000001", "fix2", reason="too much")
    assert over.status_code == 400 and "overdraw" in over.data["amount"][0]
    assert _balance(client_user) == D(3)
    assert _credit(agent_api, "client", "-1", "agent-debit").status_code == 403
    assert _balance(client_user) == D(3)


def test_user_cannot_credit_anyone(client_api: APIClient, stranger_api: APIClient, anon_api: APIClient,
                                   client_user: User, stranger_user: User) -> None:
    for api, target in ((client_api, "client"), (client_api, "stranger"), (stranger_api, "client")):
        response = _credit(api, target, "100", "steal")
        assert response.status_code == 403
        assert set(response.data) == {"detail"}
    assert _credit(anon_api, "client", "100", "anon").status_code == 401
    assert not Transaction.objects.exists()


def test_agent_credits_only_its_clients(agent_api: APIClient, agent_user: User, client_user: User,
                                        stranger_user: User, admin_user: User) -> None:
    assert _credit(agent_api, "client", "7", "a1").status_code == 201
    assert _balance(client_user) == D(7)
    for target in ("stranger", "admin", "agent", "nobody-at-all", str(stranger_user.pk)):
        response = _credit(agent_api, target, "7", f"a-{target}")
        assert response.status_code == 404, target
        assert response.data == {"user": ["not found"]}
    assert _balance(stranger_user) == D(0)
    assert Transaction.objects.count() == 1


# ------------------------------------------------------------------------------------------------ balance
def test_balance_own_and_in_scope(admin_api: APIClient, agent_api: APIClient, client_api: APIClient,
                                  stranger_api: APIClient, client_user: User, stranger_user: User,
                                  agent_user: User) -> None:
    _credit(admin_api, "client", "3.25", "c")
    own = client_api.get(f"{API}balance/")
    assert own.status_code == 200
    assert own.data["balance"] == "3.25000000" and own.data["currency"] == "USDT"
    assert own.data["user"] == client_user.pk and own.data["agent_payable"] is None
    assert agent_api.get(f"{API}balance/", {"user": client_user.pk}).data["balance"] == "3.25000000"
    assert admin_api.get(f"{API}balance/", {"user": "client"}).data["balance"] == "3.25000000"
    agent_own = agent_api.get(f"{API}balance/").data
    assert agent_own["agent_payable"] == "0.00000000" and agent_own["withdrawable"] == "0.00000000"
    for api, target in ((agent_api, stranger_user.pk), (client_api, stranger_user.pk), (stranger_api, "client"),
                        (client_api, agent_user.pk), (client_api, 987654321)):
        response = api.get(f"{API}balance/", {"user": target})
        assert response.status_code == 404
        assert "balance" not in response.data


# ------------------------------------------------------------------------------------------------ entries
def _seed_entries(admin_api: APIClient) -> None:
    assert _credit(admin_api, "client", "10", "c1", reason="MARKCLIENT").status_code == 201
    assert _credit(admin_api, "stranger", "20", "s1", reason="MARKSTRANGER").status_code == 201
    assert _credit(admin_api, "agent", "30", "g1", reason="MARKAGENT").status_code == 201


def test_entries_scoped_per_role(admin_api: APIClient, agent_api: APIClient, client_api: APIClient,
                                 stranger_api: APIClient, client_user: User, stranger_user: User,
                                 agent_user: User) -> None:
    _seed_entries(admin_api)
    own = client_api.get(f"{API}entries/")
    assert own.status_code == 200 and own.data["count"] == 1
    row = own.data["results"][0]
    assert row["amount"] == "10.00000000" and row["balance_after"] == "10.00000000"
    assert row["memo"] == "MARKCLIENT" and row["kind"] == "credit" and row["account_kind"] == "wallet"
    assert "MARKSTRANGER" not in str(own.content) and "MARKAGENT" not in str(own.content)
    agent_rows = agent_api.get(f"{API}entries/").data
    assert {r["user"] for r in agent_rows["results"]} == {client_user.pk, agent_user.pk}
    assert "MARKSTRANGER" not in str(agent_rows)
    # someone else's id in the filter answers like a missing id: nothing
    assert client_api.get(f"{API}entries/", {"user": stranger_user.pk}).data["count"] == 0
    assert agent_api.get(f"{API}entries/", {"user": stranger_user.pk}).data["count"] == 0
    assert stranger_api.get(f"{API}entries/", {"user": client_user.pk}).data["count"] == 0
    admin_rows = admin_api.get(f"{API}entries/").data
    assert admin_rows["count"] == 6  # both sides of three credits (system accounts included)
    assert admin_api.get(f"{API}entries/", {"user": stranger_user.pk}).data["count"] == 1
    assert admin_api.get(f"{API}entries/", {"account_kind": "deposits"}).data["count"] == 3


def test_entries_filters_pagination_and_bad_filters(admin_api: APIClient, client_api: APIClient,
                                                    client_user: User) -> None:
    for n in range(5):
        _credit(admin_api, "client", f"{n + 1}", f"c{n}")
    page = client_api.get(f"{API}entries/", {"limit": 2, "offset": 1}).data
    assert page["count"] == 5 and len(page["results"]) == 2
    assert page["results"][0]["amount"] == "4.00000000"  # newest first
    assert client_api.get(f"{API}entries/", {"kind": "credit"}).data["count"] == 5
    assert client_api.get(f"{API}entries/", {"kind": "fee"}).data["count"] == 0
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert client_api.get(f"{API}entries/", {"from": tomorrow}).data["count"] == 0
    assert client_api.get(f"{API}entries/", {"to": tomorrow}).data["count"] == 5
    bad = client_api.get(f"{API}entries/", {"from": "yesterday-ish"})
    assert bad.status_code == 400 and "from" in bad.data
    percent = client_api.get(f"{API}entries/", {"from": "100%s"})
    assert percent.status_code == 400 and "from" in percent.data
    capped = client_api.get(f"{API}entries/", {"limit": "9002374839206785581056"})
    assert capped.status_code == 200 and capped.data["count"] == 5 and len(capped.data["results"]) == 5
    huge = client_api.get(f"{API}entries/", {"to": "99999999999999999999"})
    assert huge.status_code == 400 and "to" in huge.data


def test_entries_csv_and_xlsx_exports(admin_api: APIClient, client_api: APIClient, client_user: User,
                                      stranger_user: User) -> None:
    _seed_entries(admin_api)
    response = client_api.get(f"{API}entries/", {"format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1 and rows[0]["amount"] == "10" and rows[0]["memo"] == "MARKCLIENT"
    assert rows[0]["currency"] == "USDT"
    xlsx = admin_api.get(f"{API}entries/", {"format": "xlsx"})
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    values = list(sheet.values)
    assert values[0][0] == "id" and len(values) == 7


# ------------------------------------------------------------------------------------------------ vouchers
def test_vouchers_create_list_redeem_once(admin_api: APIClient, client_api: APIClient, stranger_api: APIClient,
                                          client_user: User, stranger_user: User) -> None:
    created = admin_api.post(f"{API}vouchers/", {"amount": "25.5", "count": 3}, format="json")
    assert created.status_code == 201, created.data
    codes = created.data["codes"]
    assert len(codes) == 3 and created.data["code"] == codes[0] and len(set(codes)) == 3
    assert created.data["amount"] == "25.50000000"
    assert all(len(c.replace("-", "")) == 24 for c in codes)
    # only hashes are stored
    assert not Voucher.objects.filter(code_hash__in=codes).exists()
    listed = admin_api.get(f"{API}vouchers/")
    assert listed.status_code == 200 and listed.data["count"] == 3
    assert all(codes[0] not in str(row) for row in listed.data["results"])
    redeemed = client_api.post(f"{API}redeem/", {"code": codes[0].lower()}, format="json")
    assert redeemed.status_code == 200, redeemed.data
    assert redeemed.data["amount"] == "25.50000000" and redeemed.data["balance"] == "25.50000000"
    for api in (client_api, stranger_api):
        again = api.post(f"{API}redeem/", {"code": codes[0]}, format="json")
        assert again.status_code == 400 and again.data == {"code": ["invalid or already used code"]}
    wrong = client_api.post(f"{API}redeem/", {"code": "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF"}, format="json")
    assert wrong.status_code == 400 and wrong.data == {"code": ["invalid or already used code"]}
    assert client_api.post(f"{API}redeem/", {"code": "x"}, format="json").data == {
        "code": ["invalid or already used code"]}
    assert _balance(client_user) == D("25.5") and _balance(stranger_user) == D(0)
    statuses = {row["status"] for row in admin_api.get(f"{API}vouchers/").data["results"]}
    assert statuses == {"active", "redeemed"}


def test_expired_voucher_refused_like_unknown(admin_api: APIClient, client_api: APIClient, client_user: User) -> None:
    code = admin_api.post(f"{API}vouchers/", {"amount": "1"}, format="json").data["code"]
    Voucher.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client_api.post(f"{API}redeem/", {"code": code}, format="json")
    assert response.status_code == 400 and response.data == {"code": ["invalid or already used code"]}
    past = admin_api.post(f"{API}vouchers/", {"amount": "1", "expires_at": "2001-01-01T00:00:00Z"}, format="json")
    assert past.status_code == 400 and "expires_at" in past.data


def test_vouchers_admin_only(agent_api: APIClient, client_api: APIClient, anon_api: APIClient) -> None:
    for api in (agent_api, client_api):
        assert api.post(f"{API}vouchers/", {"amount": "5"}, format="json").status_code == 403
        response = api.get(f"{API}vouchers/")
        assert response.status_code == 403 and "results" not in response.data
    assert anon_api.post(f"{API}redeem/", {"code": "x"}, format="json").status_code == 401
    assert not Voucher.objects.exists()


@pytest.mark.parametrize("body, field", [({"amount": "-1"}, "amount"), ({"amount": "1", "count": 0}, "count"),
                                         ({"amount": "1", "count": 501}, "count"), ({}, "amount")])
def test_voucher_bad_input(admin_api: APIClient, body: dict[str, Any], field: str) -> None:
    response = admin_api.post(f"{API}vouchers/", body, format="json")
    assert response.status_code == 400 and field in response.data
    assert not Voucher.objects.exists()


# ------------------------------------------------------------------------------------------------ payments
def test_manual_payment_checkout_and_admin_confirm(admin_api: APIClient, client_api: APIClient,
                                                   stranger_api: APIClient, client_user: User) -> None:
    started = client_api.post(f"{API}payments/", {"amount": "40"}, format="json")
    assert started.status_code == 201, started.data
    assert started.data["status"] == "pending" and started.data["reference"].startswith("man_")
    assert "instructions" in started.data["checkout"]
    assert stranger_api.get(f"{API}payments/").data["count"] == 0
    assert client_api.get(f"{API}payments/").data["count"] == 1
    pk = started.data["id"]
    assert client_api.post(f"{API}payments/{pk}/confirm/").status_code == 403
    assert _balance(client_user) == D(0)
    confirmed = admin_api.post(f"{API}payments/{pk}/confirm/")
    assert confirmed.status_code == 200 and confirmed.data["status"] == "paid"
    assert admin_api.post(f"{API}payments/{pk}/confirm/").status_code == 200  # idempotent
    assert _balance(client_user) == D(40)
    assert Transaction.objects.filter(kind="payment").count() == 1
    assert admin_api.post(f"{API}payments/987654/confirm/").status_code == 404


def test_payment_webhook_signed_and_idempotent(client_api: APIClient, anon_api: APIClient, client_user: User,
                                               settings: Any) -> None:
    import json

    from gridfleet.server.billing.providers import SIGNATURE_HEADER, sign

    reference = client_api.post(f"{API}payments/", {"amount": "15"}, format="json").data["reference"]
    url = f"{API}payments/webhook/manual/"

    def hook(payload: dict[str, Any], secret: str | None = "whsec") -> Any:
        body = json.dumps(payload).encode()
        headers = {"HTTP_X_GRIDFLEET_SIGNATURE": sign(body, secret)} if secret else {}
        return anon_api.post(url, body, content_type="application/json", **headers)

    paid = {"reference": reference, "status": "paid", "amount": "15"}
    assert hook(paid).status_code == 403  # no secret configured: webhooks disabled
    settings.GRIDFLEET_BILLING_WEBHOOK_SECRET = "whsec"
    assert hook(paid, secret="wrong").status_code == 403
    assert hook(paid, secret=None).status_code == 403
    assert hook({**paid, "amount": "16"}).status_code == 400
    assert hook({**paid, "reference": "man_nope"}).status_code == 404
    assert _balance(client_user) == D(0)
    for _ in range(3):
        response = hook(paid)
        assert response.status_code == 200 and response.data["status"] == "paid"
    assert hook({**paid, "status": "failed"}).data["status"] == "paid"  # a paid payment stays paid
    assert _balance(client_user) == D(15)
    assert Transaction.objects.filter(key=f"payment:manual:{reference}").count() == 1
    assert anon_api.post(f"{API}payments/webhook/unknown/", {}, format="json").status_code == 404
    assert SIGNATURE_HEADER == "X-Gridfleet-Signature"


# ------------------------------------------------------------------------------------------------ payouts
def _earn(agent: User, amount: str, key: str) -> None:
    ledger.post(key=key, kind="commission", lines=[(ledger.agent_payable(agent), D(amount)),
                                                   (ledger.system_account("platform_revenue"), -D(amount))])


@pytest.fixture
def no_clearing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the fees app's clearing window (if present) release everything: withdrawable = payable."""
    try:
        import gridfleet.server.fees.commission as commission
    except ImportError:
        return
    monkeypatch.setattr(commission, "withdrawable", lambda agent: ledger.balance(ledger.agent_payable(agent)))


def test_payout_request_approve_reject(no_clearing: None, admin_api: APIClient, agent_api: APIClient,
                                       client_api: APIClient, agent_user: User) -> None:
    _earn(agent_user, "100", "earn1")
    assert client_api.post(f"{API}payouts/", {"amount": "1"}, format="json").status_code == 403
    assert client_api.get(f"{API}payouts/").status_code == 403
    too_much = agent_api.post(f"{API}payouts/", {"amount": "100.00000001"}, format="json")
    assert too_much.status_code == 400 and "amount" in too_much.data
    first = agent_api.post(f"{API}payouts/", {"amount": "60", "note": "bank"}, format="json")
    assert first.status_code == 201 and first.data["status"] == "pending" and first.data["amount"] == "60.00000000"
    # pending requests count against what may be requested
    assert agent_api.post(f"{API}payouts/", {"amount": "41"}, format="json").status_code == 400
    assert agent_api.get(f"{API}balance/").data["withdrawable"] == "40.00000000"
    second = agent_api.post(f"{API}payouts/", {"amount": "40"}, format="json")
    assert second.status_code == 201
    assert agent_api.post(f"{API}payouts/{first.data['id']}/approve/").status_code == 403
    approved = admin_api.post(f"{API}payouts/{first.data['id']}/approve/", {"note": "paid by wire"}, format="json")
    assert approved.status_code == 200 and approved.data["status"] == "approved"
    assert approved.data["transaction"] is not None
    assert admin_api.post(f"{API}payouts/{first.data['id']}/approve/").status_code == 409  # never twice
    assert admin_api.post(f"{API}payouts/{first.data['id']}/reject/").status_code == 409
    rejected = admin_api.post(f"{API}payouts/{second.data['id']}/reject/", {"note": "docs missing"}, format="json")
    assert rejected.status_code == 200 and rejected.data["status"] == "rejected"
    assert ledger.balance(ledger.agent_payable(agent_user)) == D(40)
    assert ledger.balance(ledger.system_account("payouts")) == D(60)
    assert agent_api.get(f"{API}payouts/").data["count"] == 2
    assert admin_api.post(f"{API}payouts/987654/approve/").status_code == 404
    assert Transaction.objects.filter(kind="payout").count() == 1
    assert run_audit().ok


def test_payout_limited_by_withdrawable(admin_api: APIClient, agent_api: APIClient, agent_user: User,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gridfleet.server.fees.commission")
    import gridfleet.server.fees.commission as commission

    _earn(agent_user, "50", "earn")
    monkeypatch.setattr(commission, "withdrawable", lambda agent: D(20))  # 30 still in the clearing window
    assert agent_api.post(f"{API}payouts/", {"amount": "20.00000001"}, format="json").status_code == 400
    assert agent_api.post(f"{API}payouts/", {"amount": "20"}, format="json").status_code == 201


def test_approval_refused_when_payable_shrank(no_clearing: None, admin_api: APIClient, agent_api: APIClient,
                                              agent_user: User) -> None:
    _earn(agent_user, "10", "earn")
    payout = agent_api.post(f"{API}payouts/", {"amount": "10"}, format="json").data
    ledger.post(key="clawback", kind="reversal", lines=[(ledger.agent_payable(agent_user), D(-5)),
                                                        (ledger.system_account("platform_revenue"), D(5))])
    response = admin_api.post(f"{API}payouts/{payout['id']}/approve/")
    assert response.status_code == 409 and "no longer covers" in response.data["detail"]
    assert ledger.balance(ledger.agent_payable(agent_user)) == D(5)
    assert Entry.objects.filter(transaction__kind="payout").count() == 0


def test_anonymous_refused_everywhere(anon_api: APIClient) -> None:
    for path in ("balance/", "entries/", "vouchers/", "payments/", "payouts/"):
        assert anon_api.get(f"{API}{path}").status_code == 401
    for path in ("credit/", "vouchers/", "redeem/", "payments/", "payouts/", "payouts/1/approve/",
                 "payments/1/confirm/"):
        assert anon_api.post(f"{API}{path}", {}, format="json").status_code == 401


def test_guard_hook_called_after_a_top_up(admin_api: APIClient, client_user: User, monkeypatch: pytest.MonkeyPatch,
                                          django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    guard = pytest.importorskip("gridfleet.server.fees.guard")
    calls: list[int] = []
    monkeypatch.setattr(guard, "after_balance_change", lambda user: calls.append(user.pk))
    with django_capture_on_commit_callbacks(execute=True):
        assert _credit(admin_api, "client", "1", "g").status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        assert _credit(admin_api, "client", "1", "g").status_code == 200  # a replay changes nothing
    assert calls == [client_user.pk]


class _TestProvider:
    """A provider registered through the settings: its webhook trusts a shared token header."""

    name = "testpay"

    def create_checkout(self, user: Any, amount: Decimal) -> dict[str, Any]:
        return {"reference": f"tp-{user.pk}-{amount}", "url": "https://pay.example/checkout"}

    def handle_webhook(self, request: Any) -> Any:
        import json

        from gridfleet.server.billing.providers import PaymentResult, WebhookRejected

        if request.headers.get("X-Test-Token") != "t0k":
            raise WebhookRejected("bad token", 403)
        body = json.loads(request.body)
        return PaymentResult(reference=body["ref"], status=body["state"], amount=None)


def test_custom_provider_from_settings(client_api: APIClient, anon_api: APIClient, client_user: User,
                                       settings: Any) -> None:
    from gridfleet.server.billing.providers import PaymentProvider, get_provider

    settings.GRIDFLEET_BILLING_PAYMENT_PROVIDERS = {
        "manual": "gridfleet.server.billing.providers.ManualProvider",
        "testpay": "tests.server.billing.test_api._TestProvider"}
    assert isinstance(get_provider("testpay"), PaymentProvider)
    started = client_api.post(f"{API}payments/", {"amount": "9.99", "provider": "testpay"}, format="json")
    assert started.status_code == 201 and started.data["checkout"]["url"].startswith("https://")
    assert client_api.post(f"{API}payments/", {"amount": "1", "provider": "nope"}, format="json").status_code == 400
    url = f"{API}payments/webhook/testpay/"
    body = {"ref": started.data["reference"], "state": "paid"}
    assert anon_api.post(url, body, format="json").status_code == 403
    for _ in range(2):
        assert anon_api.post(url, body, format="json", HTTP_X_TEST_TOKEN="t0k").status_code == 200
    assert _balance(client_user) == D("9.99")


def test_cli_has_billing_audit() -> None:
    from typer.testing import CliRunner

    from gridfleet.cli.main import app

    result = CliRunner().invoke(app, ["billing", "--help"])
    assert result.exit_code == 0 and "audit" in result.output
