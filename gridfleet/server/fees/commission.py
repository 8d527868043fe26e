"""Agent commission: who earns what on a collected fee, the clearing window, and the refund clawback.

* The payer's agent is ``User.agent``; that agent's parent (a sub-agent's parent) is the agent's own ``agent``.
  At most one sub-agent level: only the payer's agent and that agent's parent are ever paid (higher ancestors get
  nothing). No self-referral (nobody is paid on their own fees) and no cycles: the users API refuses both when an
  admin assigns an agent; :func:`validate_agent_link` states the whole rule for callers that assign agents; and
  :func:`shares` skips any agent that is the payer or repeats in the chain, whatever the data holds.
* On a collected fee F: a direct agent (no parent) earns min(rate, cap) × F; for a sub-agent, the parent's share
  min(parent rate, cap) × F is the whole commission, and the sub-agent's min(its rate, that) × F is paid out of
  it (:func:`gridfleet.billing.profit_share.split_commission`). ``cap`` is ``GRIDFLEET_BILLING_COMMISSION_CAP``.
* Commission credited less than ``GRIDFLEET_BILLING_CLEARING_DAYS`` ago is pending; :func:`withdrawable` is what an
  agent may be paid out now (the ledger's payout endpoint asks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import F, Sum
from django.utils import timezone

from gridfleet.billing.profit_share import split_commission
from gridfleet.server.fees import conf
from gridfleet.server.fees.models import AgentProfile, CommissionLine, CommissionRole, from_units, to_units
from gridfleet.server.users.models import Role, User

ZERO = Decimal(0)


class AgentLinkError(ValueError):
    """An agent assignment that would be a self-referral, a cycle or a second sub-agent level."""


def validate_agent_link(user: Any, agent: Any) -> None:
    """Raise :class:`AgentLinkError` when ``user`` may not belong to ``agent`` (None is always allowed)."""
    if agent is None:
        return
    if user.pk is not None and agent.pk == user.pk:
        raise AgentLinkError("a user cannot be their own agent (self-referral)")
    if agent.role != Role.AGENT:
        raise AgentLinkError("only an agent can have clients")
    parent = agent.agent if agent.agent_id is not None else None
    if parent is not None and user.pk is not None and parent.pk == user.pk:
        raise AgentLinkError("agents cannot refer each other (cycle)")
    if getattr(user, "role", None) == Role.AGENT:
        if parent is not None:
            raise AgentLinkError("at most one sub-agent level: the parent agent already belongs to an agent")
        if user.pk is not None and User.objects.filter(agent_id=user.pk, role=Role.AGENT).exists():
            raise AgentLinkError("an agent with sub-agents cannot become a sub-agent itself (one level only)")


def agent_rate(agent: Any) -> Decimal:
    """Return an agent's commission rate (0 when the admin has not set one)."""
    rate = AgentProfile.objects.filter(agent=agent).values_list("commission_rate", flat=True).first()
    return Decimal(rate) if rate is not None else ZERO


@dataclass(frozen=True)
class Share:
    """One agent's commission on one fee."""

    agent: Any
    role: str
    rate: Decimal
    amount: Decimal


def shares(payer: Any, fee: Decimal) -> list[Share]:
    """Return the commission lines of ``fee`` paid by ``payer`` (empty without an agent or at zero rates)."""
    agent = payer.agent if payer.agent_id is not None else None
    if agent is None or agent.pk == payer.pk or agent.role != Role.AGENT:
        return []
    parent = agent.agent if agent.agent_id is not None else None
    if parent is not None and (parent.role != Role.AGENT or parent.pk in (payer.pk, agent.pk)):
        parent = None
    rate = agent_rate(agent)
    parent_rate = agent_rate(parent) if parent is not None else None
    split = split_commission(fee, rate, parent_rate, conf.commission_cap())
    out: list[Share] = []
    if parent is None:
        if split.agent > 0:
            out.append(Share(agent, CommissionRole.DIRECT, rate, split.agent))
        return out
    if split.agent > 0:
        out.append(Share(agent, CommissionRole.SUB, rate, split.agent))
    if split.parent > 0:
        out.append(Share(parent, CommissionRole.PARENT, parent_rate or ZERO, split.parent))
    return out


def pending(agent: Any, now: datetime | None = None) -> Decimal:
    """Return the commission still in its clearing window (credited less than the window ago, net of clawbacks)."""
    since = (now or timezone.now()) - conf.clearing_window()
    total = CommissionLine.objects.filter(agent=agent, created_at__gt=since).aggregate(
        s=Sum(F("amount_units") - F("clawed_back_units")))["s"]
    return from_units(total or 0)


def earned(agent: Any) -> Decimal:
    """Return all commission credited to ``agent``, net of clawbacks."""
    total = CommissionLine.objects.filter(agent=agent).aggregate(s=Sum(F("amount_units") - F("clawed_back_units")))
    return from_units(total["s"] or 0)


def payable_balance(agent: Any) -> Decimal:
    """Return the balance of the agent's payable account in the ledger."""
    from gridfleet.server.billing import ledger

    return Decimal(ledger.balance(ledger.agent_payable(agent)))


def withdrawable(agent: Any) -> Decimal:
    """Return the cleared commission ``agent`` may be paid out now: payable balance − pending, at least 0."""
    balance = payable_balance(agent)
    return max(ZERO, balance - pending(agent))


def paid_out(agent: Any) -> Decimal:
    """Return the commission already paid out (earned net of clawbacks, less what is still payable)."""
    return max(ZERO, earned(agent) - payable_balance(agent))


def clawback_units(line: CommissionLine, fraction: Decimal) -> int:
    """Return the part of ``line`` a refund of ``fraction`` of the fee claws back (rounded down, like the ledger)."""
    from gridfleet.billing.profit_share import round_fee

    left = line.amount_units - line.clawed_back_units
    return min(left, to_units(round_fee(from_units(line.amount_units) * fraction)))
