"""Profit-share fee math with a high-water mark (pure Python, exact ``Decimal``; no Django, no I/O).

The definition (docs/billing.md):

* **net profit** of a bot = equity − net capital put in, where equity is quote + base × mark price (after trading
  fees) and capital added to or taken from the bot moves "capital put in", not profit;
* at a settlement, **fee** = rate × max(0, net profit − HWM), rounded *down* to 8 decimal places (the user's
  favour); then **HWM** = max(HWM, net profit). The HWM starts at 0.

Losses, realised or not, must be recovered before any new fee, and a gain that was charged once is never charged
again. Worked example at 10 %: +200 → fee 20 (HWM 200); −150 (net 50) → 0; +100 (net 150) → 0; +150 (net 300)
→ 10 (HWM 300).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_FLOOR, Decimal, localcontext

ZERO = Decimal(0)
ONE = Decimal(1)
QUANTUM = Decimal("1e-8")
"""Fees and ledger amounts have 8 decimal places (1 minor unit = 10^-8 of the settlement currency)."""
PRECISION = 80
"""Working precision (significant digits) for products of 38-digit database decimals: never rounds."""


def round_fee(amount: Decimal) -> Decimal:
    """Return ``amount`` rounded down (toward zero) to 8 decimal places."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return amount.quantize(QUANTUM, rounding=ROUND_DOWN)


def floor_amount(amount: Decimal) -> Decimal:
    """Return ``amount`` rounded toward −∞ to 8 decimal places (how a net profit is stored: never overstated)."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return amount.quantize(QUANTUM, rounding=ROUND_FLOOR)


def check_rate(rate: Decimal) -> Decimal:
    """Return ``rate`` when 0 ≤ rate ≤ 1; raise ``ValueError`` otherwise."""
    if not isinstance(rate, Decimal) or not rate.is_finite():
        raise ValueError("the fee rate must be a finite Decimal")
    if rate < ZERO or rate > ONE:
        raise ValueError(f"the fee rate must be between 0 and 1 (got {rate})")
    return rate


def equity(quote: Decimal, base: Decimal, mark_price: Decimal) -> Decimal:
    """Return quote + base × mark price, exactly."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return quote + base * mark_price


def net_profit(equity_now: Decimal, capital_in: Decimal) -> Decimal:
    """Return cumulative net profit: equity now − net capital put in."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return equity_now - capital_in


@dataclass(frozen=True, slots=True)
class FeeStep:
    """The outcome of one settlement."""

    net_profit: Decimal
    hwm_before: Decimal
    hwm_after: Decimal
    rate: Decimal
    fee: Decimal

    @property
    def fee_base(self) -> Decimal:
        """Return the new profit charged: max(0, net profit − HWM before)."""
        return max(ZERO, self.net_profit - self.hwm_before)


def settle(net: Decimal, hwm: Decimal, rate: Decimal) -> FeeStep:
    """Return the fee and the new HWM of one settlement at net profit ``net`` with HWM ``hwm``."""
    check_rate(rate)
    with localcontext() as ctx:
        ctx.prec = PRECISION
        gain = net - hwm
        fee = round_fee(rate * gain) if gain > ZERO else ZERO
        return FeeStep(net_profit=net, hwm_before=hwm, hwm_after=max(hwm, net), rate=rate, fee=fee)


@dataclass(frozen=True, slots=True)
class Observation:
    """One settlement's inputs: the bot's equity (marked) and the net capital put in at that moment."""

    equity: Decimal
    capital_in: Decimal
    rate: Decimal

    @property
    def net_profit(self) -> Decimal:
        """Return equity − capital put in."""
        return net_profit(self.equity, self.capital_in)


def settle_all(observations: Iterable[Observation], hwm: Decimal = ZERO) -> list[FeeStep]:
    """Settle a sequence of observations in order, carrying the HWM; return one step per observation."""
    steps: list[FeeStep] = []
    for obs in observations:
        step = settle(obs.net_profit, hwm, obs.rate)
        steps.append(step)
        hwm = step.hwm_after
    return steps


def settle_nets(nets: Sequence[Decimal], rate: Decimal, hwm: Decimal = ZERO) -> list[FeeStep]:
    """Settle a sequence of net profits at one rate (the worked example: cumulative nets 200, 50, 150, 300)."""
    return settle_all((Observation(n, ZERO, rate) for n in nets), hwm)


def total_fees(steps: Iterable[FeeStep]) -> Decimal:
    """Return the sum of the fees of ``steps``."""
    return sum((s.fee for s in steps), ZERO)


@dataclass(frozen=True, slots=True)
class CommissionSplit:
    """How one collected fee is shared: the direct agent, its parent agent (for a sub-agent) and the platform."""

    fee: Decimal
    agent: Decimal
    parent: Decimal

    @property
    def platform(self) -> Decimal:
        """Return what the platform keeps."""
        return self.fee - self.agent - self.parent

    @property
    def total(self) -> Decimal:
        """Return the total commission."""
        return self.agent + self.parent


def split_commission(fee: Decimal, agent_rate: Decimal | None, parent_rate: Decimal | None,
                     cap: Decimal) -> CommissionSplit:
    """Return the commission of one collected fee.

    ``agent_rate`` is the rate of the payer's agent (None: no agent). When that agent is a sub-agent,
    ``parent_rate`` is its parent's rate: the parent's share (parent_rate × fee) is the whole commission and the
    sub-agent's commission (agent_rate × fee, at most the parent's share) is paid out of it. The total never
    exceeds ``cap`` × fee. Each part is rounded down to 8 dp; the platform keeps the rest.
    """
    for r in (agent_rate, parent_rate, cap):
        if r is not None:
            check_rate(r)
    if fee < ZERO:
        raise ValueError("a fee cannot be negative")
    if agent_rate is None or fee == ZERO:
        return CommissionSplit(fee, ZERO, ZERO)
    with localcontext() as ctx:
        ctx.prec = PRECISION
        if parent_rate is None:
            return CommissionSplit(fee, round_fee(min(agent_rate, cap) * fee), ZERO)
        total_rate = min(parent_rate, cap)
        sub_rate = min(agent_rate, total_rate)
        total = round_fee(total_rate * fee)
        sub = round_fee(sub_rate * fee)
        return CommissionSplit(fee, sub, total - sub)
