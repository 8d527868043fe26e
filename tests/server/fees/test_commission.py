"""Agent commission on collected fees: direct, sub-agent split, cap, clearing window, clawback on refund."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from gridfleet.server.fees import commission
from gridfleet.server.fees.models import AgentProfile, CommissionLine, Settlement, StatementStatus, UserFeeProfile
from gridfleet.server.fees.services import FeeError, refund, settle_bot
from gridfleet.server.users.models import Role, User
from tests.server.fees.conftest import add_snapshot, day, fund, make_priced_bot

D = Decimal


def _payable(agent: User) -> Decimal:
    from gridfleet.server.billing import ledger

    return D(ledger.balance(ledger.agent_payable(agent)))


def _revenue() -> Decimal:
    from gridfleet.server.billing import ledger

    return D(ledger.balance(ledger.system_account("platform_revenue")))


def _earning_line(owner: User, price: str = "200") -> Settlement:
    """Settle a bot of ``owner`` whose net profit is 10 × price − 1000 at 10 % (price 200: fee 100)."""
    UserFeeProfile.objects.update_or_create(user=owner, defaults={"rate": D("0.1")})
    fund(owner, "1000")
    bot = make_priced_bot(owner)
    add_snapshot(bot, day(1), price)
    line = settle_bot(bot, "p1", day(2)).settlement
    assert line is not None and line.status == StatementStatus.PAID
    return line


def test_direct_agent_commission(make_user: Callable[..., User]) -> None:
    agent = make_user("agent", role=Role.AGENT)
    AgentProfile.objects.create(agent=agent, commission_rate=D("0.3"))
    client = make_user("client", agent=agent)
    before = _revenue()
    line = _earning_line(client)
    assert line.fee_units == 100 * 10**8 and line.commission_units == 30 * 10**8
    assert _payable(agent) == D(30)
    assert _revenue() - before == D(70)
    (c,) = CommissionLine.objects.filter(settlement=line)
    assert (c.agent_id, c.role, c.amount_units) == (agent.pk, "direct", 30 * 10**8)


def test_sub_agent_is_paid_out_of_the_parent_share_and_the_total_is_capped(make_user: Callable[..., User],
                                                                          settings: Any) -> None:
    parent = make_user("parent", role=Role.AGENT)
    sub = make_user("sub", role=Role.AGENT, agent=parent)
    AgentProfile.objects.create(agent=parent, commission_rate=D("0.3"))
    AgentProfile.objects.create(agent=sub, commission_rate=D("0.1"))
    client = make_user("client", agent=sub)
    line = _earning_line(client)
    assert _payable(sub) == D(10) and _payable(parent) == D(20)
    assert line.commission_units == 30 * 10**8
    roles = dict(CommissionLine.objects.filter(settlement=line).values_list("role", "amount_units"))
    assert roles == {"sub": 10 * 10**8, "parent": 20 * 10**8}
    # the cap: parent 0.9 is capped at 0.5 of the fee in total
    settings.GRIDFLEET_BILLING_COMMISSION_CAP = "0.5"
    AgentProfile.objects.filter(agent=parent).update(commission_rate=D("0.9"))
    other = make_user("other", agent=sub)
    line2 = _earning_line(other)
    assert line2.commission_units == 50 * 10**8
    assert _payable(sub) == D(20) and _payable(parent) == D(60)


def test_no_commission_on_own_fees_or_without_a_rate(make_user: Callable[..., User]) -> None:
    agent = make_user("agent", role=Role.AGENT)
    AgentProfile.objects.create(agent=agent, commission_rate=D("0.3"))
    line = _earning_line(agent)  # an agent trading itself: no self-referral commission
    assert line.commission_units == 0 and _payable(agent) == 0
    plain_agent = make_user("plain", role=Role.AGENT)  # no rate set by an admin
    client = make_user("client", agent=plain_agent)
    assert _earning_line(client).commission_units == 0


def test_agent_link_validation(make_user: Callable[..., User]) -> None:
    parent = make_user("parent", role=Role.AGENT)
    sub = make_user("sub", role=Role.AGENT, agent=parent)
    user = make_user("u")
    with pytest.raises(commission.AgentLinkError, match="own agent"):
        commission.validate_agent_link(parent, parent)
    with pytest.raises(commission.AgentLinkError, match="cycle"):
        commission.validate_agent_link(parent, sub)
    with pytest.raises(commission.AgentLinkError, match="one sub-agent level"):
        commission.validate_agent_link(make_user("third", role=Role.AGENT), sub)
    with pytest.raises(commission.AgentLinkError, match="only an agent"):
        commission.validate_agent_link(make_user("x"), user)
    commission.validate_agent_link(user, sub)  # a user under a sub-agent is fine


def test_clearing_window_and_withdrawable(make_user: Callable[..., User], settings: Any) -> None:
    agent = make_user("agent", role=Role.AGENT)
    AgentProfile.objects.create(agent=agent, commission_rate=D("0.2"))
    client = make_user("client", agent=agent)
    line = _earning_line(client)
    assert _payable(agent) == D(20)
    assert commission.pending(agent) == D(20) and commission.withdrawable(agent) == 0
    CommissionLine.objects.filter(settlement=line).update(created_at=line.created_at - timedelta(days=8))
    assert commission.pending(agent) == 0 and commission.withdrawable(agent) == D(20)
    settings.GRIDFLEET_BILLING_CLEARING_DAYS = "10"
    assert commission.withdrawable(agent) == 0


def test_refund_claws_back_commission_proportionally(make_user: Callable[..., User],
                                                     admin_user: User) -> None:
    from gridfleet.server.billing.models import Transaction

    parent = make_user("parent", role=Role.AGENT)
    sub = make_user("sub", role=Role.AGENT, agent=parent)
    AgentProfile.objects.create(agent=parent, commission_rate=D("0.3"))
    AgentProfile.objects.create(agent=sub, commission_rate=D("0.1"))
    client = make_user("client", agent=sub)
    line = _earning_line(client)
    wallet_before = D(900)
    from tests.server.fees.conftest import wallet_balance

    assert wallet_balance(client) == wallet_before
    refund(line, fraction=D("0.25"), reason="goodwill", by=admin_user)
    assert wallet_balance(client) == D(925)
    assert _payable(sub) == D("7.5") and _payable(parent) == D(15)
    lines = dict(CommissionLine.objects.filter(settlement=line).values_list("role", "clawed_back_units"))
    assert lines == {"sub": D("2.5") * 10**8, "parent": 5 * 10**8}
    line.refresh_from_db()
    assert line.refunded_units == 25 * 10**8
    assert Transaction.objects.filter(key=f"refund:{line.ledger_key}:1").exists()
    # by amount, then more than is left is refused
    refund(line, amount=D(75), reason="rest", by=admin_user)
    assert wallet_balance(client) == D(1000) and _payable(sub) == 0 and _payable(parent) == 0
    with pytest.raises(FeeError):
        refund(line, amount=D("0.01"), reason="too much", by=admin_user)
    assert commission.earned(sub) == 0
