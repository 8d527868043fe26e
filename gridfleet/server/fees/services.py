"""Settlements: mark a bot to market, charge the profit share above its high-water mark, record the statement.

:func:`settle_bot` is idempotent per (bot, period): the statement line is unique per (bot, period), the bot's fee
state row is locked (``select_for_update``) for the whole settlement, and the fee is posted to the ledger under
the key ``fee:{bot_id}:{period}`` in the same database transaction. A fee the wallet cannot cover is recorded as
**due** (no partial posting) and collected by :func:`collect_due` at a later settlement or right after a top-up
(the balance guard is told either way).

Equity is computed from the bot's fills (the engine's Portfolio: quote flow after quote fees, base after base
fees) and its capital: equity = capital put in + quote flow + base × mark price; net profit = equity − capital put
in. A bot started again after a stop (a new run) keeps its HWM; the ended runs' net profit is frozen at their last
settlement and the current run's (its own fills only) is added to it.

Mark price: the most recent of the bot's latest equity snapshot (the price the runtime saw) and its latest fill at
or before the settlement time; for a settlement "now" of a running bot, the runtime's live price first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from gridfleet.billing.profit_share import ZERO, equity, floor_amount, round_fee, settle
from gridfleet.server.bots.models import Bot, BotStatus
from gridfleet.server.fees import conf
from gridfleet.server.fees.models import (
    BotFeeState,
    CapitalKind,
    CapitalMovement,
    CommissionLine,
    FeeRefund,
    FeeSettings,
    Settlement,
    StatementStatus,
    UserFeeProfile,
    from_units,
    to_units,
)
from gridfleet.server.trading.models import EquitySnapshot, Fill

log = logging.getLogger(__name__)


class FeeError(Exception):
    """A fee operation refused; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------------------------------------ rates
def fee_rate(user: Any) -> Decimal:
    """Return the user's profit-share rate: their own (set by an admin or their agent) or the platform default."""
    rate = UserFeeProfile.objects.filter(user=user).values_list("rate", flat=True).first()
    return Decimal(rate) if rate is not None else Decimal(FeeSettings.current().default_rate)


def min_balance_for(user: Any) -> Decimal:
    """Return the user's minimum wallet balance (their override, else the setting)."""
    units = UserFeeProfile.objects.filter(user=user).values_list("min_balance_units", flat=True).first()
    return from_units(units) if units is not None else conf.min_balance()


# ------------------------------------------------------------------------------------------------ capital
def initial_capital(bot: Bot) -> Decimal:
    """Return the investment (quote) of the config the bot's current run started with (the bot's config before
    runs are recorded), 0 when it sizes orders by quantity only."""
    config = bot.config or {}
    if _has_runs():
        from gridfleet.server.trading.models import BotRun

        started = BotRun.objects.filter(runtime_id=bot.runtime_id).values_list("config", flat=True).first()
        if isinstance(started, dict) and started:
            config = started
    raw = config.get("investment")
    try:
        value = Decimal(str(raw)) if raw not in (None, "") else ZERO
    except Exception:
        value = ZERO
    return floor_amount(value) if value.is_finite() and value > 0 else ZERO


def fee_state(bot: Bot, *, lock: bool = False) -> BotFeeState:
    """Return the bot's fee state, created with its initial capital (the config's investment) on first use."""
    state = BotFeeState.objects.filter(bot=bot).first()
    if state is None:
        capital = initial_capital(bot)
        try:
            with transaction.atomic():
                state = BotFeeState.objects.create(bot=bot, capital_units=to_units(capital), run=current_run(bot))
                CapitalMovement.objects.create(bot=bot, kind=CapitalKind.INITIAL, amount_units=to_units(capital),
                                               capital_after_units=to_units(capital), key=f"capital:{bot.pk}:initial",
                                               note="the bot's investment at start")
        except IntegrityError:  # created concurrently
            pass
    qs = BotFeeState.objects.select_for_update() if lock else BotFeeState.objects
    return qs.get(bot=bot)


# ------------------------------------------------------------------------------------------------ marking
@dataclass
class Mark:
    """A bot's position at one moment and its mark price."""

    base: Decimal
    quote_flow: Decimal
    price: Decimal | None
    source: str  # runtime, snapshot, fill, none


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _has_runs() -> bool:
    return any(f.name == "run" for f in Fill._meta.get_fields())


def current_run(bot: Bot) -> int:
    """Return the number of the bot's current run (1 before the trading app records runs)."""
    if not _has_runs():
        return 1
    from gridfleet.server.trading.models import BotRun

    number = BotRun.objects.filter(runtime_id=bot.runtime_id).values_list("number", flat=True).first()
    if number is None:  # the current run is not recorded yet: it follows the last recorded one
        last = BotRun.objects.filter(bot=bot).order_by("-number").values_list("number", flat=True).first()
        number = 1 if last is None else last + 1
    return int(number)


def mark_bot(bot: Bot, as_of: datetime, *, live: bool = False, run: int | None = None) -> Mark:
    """Book the fills of one run (default: the current) up to ``as_of`` and pick the mark price (see the module
    docstring)."""
    from gridfleet.server.analytics.compute import book_fills

    cutoff = _ms(as_of)
    fills = Fill.objects.filter(bot=bot, ts__lte=cutoff)
    if _has_runs():
        fills = fills.filter(run=current_run(bot) if run is None else run)
    book = book_fills(bot.symbol, fills.order_by("ts", "id"))
    p = book.portfolio
    price: Decimal | None = None
    source = "none"
    if live:
        try:
            from gridfleet.server.trading.service import get_runtime

            status = get_runtime().status(bot.pk)
        except Exception:
            status = None
        raw = (status or {}).get("price")
        if raw not in (None, "", "None", "0"):
            try:
                candidate = Decimal(str(raw))
                if candidate.is_finite() and candidate > 0:
                    price, source = candidate, "runtime"
            except Exception:
                pass
    if price is None:
        snap = EquitySnapshot.objects.filter(bot=bot, ts__lte=cutoff).order_by("-ts", "-id").first()
        snap_ts = snap.ts if snap is not None else None
        if snap is not None and snap.price > 0 and (book.last_fill_ts is None or snap_ts >= book.last_fill_ts):
            price, source = Decimal(snap.price), "snapshot"
        elif book.last_fill_price is not None:
            price, source = Decimal(book.last_fill_price), "fill"
    return Mark(base=p.base, quote_flow=p.quote_flow, price=price, source=source)


# ------------------------------------------------------------------------------------------------ settling
@dataclass
class SettleResult:
    """What :func:`settle_bot` did: ``created`` False means the period was settled before (or skipped)."""

    bot_id: int
    period: str
    settlement: Settlement | None
    created: bool
    skipped: str = ""


def ledger_key(bot_id: int, period: str) -> str:
    """Return the ledger idempotency key of a bot's fee for one period."""
    return f"fee:{bot_id}:{period}"


def settle_bot(bot: Bot, period: str, as_of: datetime, *, reason: str = "scheduled", live: bool = False,
               final: bool | None = None) -> SettleResult:
    """Settle one bot for ``period`` at ``as_of`` (idempotent per (bot, period)); return what happened.

    ``final``: mark the fee state closed (the bot stopped; default: the bot's status is stopped).
    """
    from gridfleet.server.billing.ledger import with_retries

    collect_due(bot.owner)
    try:  # a deadlock or serialization failure aborts the whole transaction: it is retried as a whole
        result = with_retries(lambda: _settle_locked(bot, period, as_of, reason, live, final))
    except IntegrityError:  # a concurrent settlement of the same (bot, period) won the unique constraint
        existing = Settlement.objects.filter(bot=bot, period=period).first()
        return SettleResult(bot.pk, period, existing, False, "already settled")
    if result.created and result.settlement is not None and result.settlement.fee_units > 0:
        # a fee was taken (the balance may now be under the minimum) or is due: the guard looks again
        from gridfleet.server.fees.guard import check_user

        try:
            check_user(bot.owner)
        except Exception:
            log.exception("balance guard failed for user %s", bot.owner_id)
    return result


def _settle_locked(bot: Bot, period: str, as_of: datetime, reason: str, live: bool,
                   final: bool | None) -> SettleResult:
    with transaction.atomic():
        state = fee_state(bot, lock=True)
        bot = Bot.objects.select_related("owner", "owner__agent", "owner__agent__agent").get(pk=bot.pk)
        existing = Settlement.objects.filter(bot=bot, period=period).first()
        if existing is not None:
            return SettleResult(bot.pk, period, existing, False, "already settled")
        run = current_run(bot)
        if state.closed and run <= state.run:
            return SettleResult(bot.pk, period, None, False, "the bot stopped and was settled for the last time")
        if state.last_as_of is not None and as_of < state.last_as_of:
            return SettleResult(bot.pk, period, None, False,
                                f"already settled through {state.last_as_of.isoformat()} (period {state.last_period})")
        if run > state.run:
            _begin_run(bot, state, run, as_of)
        mark = mark_bot(bot, as_of, live=live, run=state.run)
        capital = state.capital
        run_net = equity(mark.quote_flow, mark.base, mark.price if mark.price is not None else ZERO)
        net = floor_amount(from_units(state.closed_runs_net_units) + run_net)
        value = capital + net
        rate = fee_rate(bot.owner)
        step = settle(net, state.hwm, rate)
        settlement = Settlement.objects.create(
            bot=bot, user=bot.owner, period=period, reason=reason, as_of=as_of,
            mark_price="" if mark.price is None else format(mark.price, "f"), mark_source=mark.source,
            base=format(mark.base, "f"), quote_flow=format(mark.quote_flow, "f"),
            equity_units=to_units(floor_amount(value)), capital_units=state.capital_units,
            net_profit_units=to_units(net), hwm_before_units=state.hwm_units,
            hwm_after_units=to_units(step.hwm_after), rate=rate, fee_units=to_units(step.fee),
            status=StatementStatus.NO_FEE if step.fee == 0 else StatementStatus.DUE,
            ledger_key=ledger_key(bot.pk, period))
        if step.fee > 0:
            _collect(settlement, bot.owner)
        state.hwm_units = to_units(step.hwm_after)
        state.last_period, state.last_as_of = period, as_of
        state.closed = bot.status == BotStatus.STOPPED if final is None else final
        if state.closed:  # the run is over: its net profit is frozen into the bot's cumulative net profit
            state.closed_runs_net_units = to_units(net)
        state.save(update_fields=["hwm_units", "last_period", "last_as_of", "closed", "closed_runs_net_units",
                                  "run", "capital_units", "updated_at"])
    log.info("settled bot %s period %s: net %s hwm %s -> %s fee %s (%s)", bot.pk, period, net, step.hwm_before,
             step.hwm_after, step.fee, settlement.status)
    return SettleResult(bot.pk, period, settlement, True)


def _begin_run(bot: Bot, state: BotFeeState, run: int, as_of: datetime) -> None:
    """The bot started a new run since the last settlement: freeze the previous run's net profit (when its stop
    was not settled) and put in the new run's investment as its capital (a capital movement, never profit)."""
    if not state.closed:
        mark = mark_bot(bot, as_of, run=state.run)
        run_net = equity(mark.quote_flow, mark.base, mark.price if mark.price is not None else ZERO)
        state.closed_runs_net_units = to_units(floor_amount(from_units(state.closed_runs_net_units) + run_net))
    capital = initial_capital(bot)
    delta = to_units(capital) - state.capital_units
    state.run, state.closed, state.capital_units = run, False, to_units(capital)
    CapitalMovement.objects.get_or_create(key=f"capital:{bot.pk}:initial:run{run}", defaults={
        "bot": bot, "kind": CapitalKind.INITIAL, "amount_units": delta, "capital_after_units": state.capital_units,
        "note": f"run {run} started with its investment"})


def _collect(settlement: Settlement, payer: Any) -> bool:
    """Post a due fee with its commission lines (inside the caller's transaction); return True when collected."""
    from gridfleet.server.billing import ledger
    from gridfleet.server.fees.commission import shares

    fee = from_units(settlement.fee_units)
    parts = shares(payer, fee)
    commission = sum((s.amount for s in parts), ZERO)
    lines: list[tuple[Any, Decimal]] = [(ledger.wallet(payer), -fee)]
    if fee - commission > 0:
        lines.append((ledger.system_account("platform_revenue"), fee - commission))
    lines.extend((ledger.agent_payable(s.agent), s.amount) for s in parts)
    try:
        with transaction.atomic():
            ledger.post(key=settlement.ledger_key, kind="fee", lines=lines, user=payer,
                        memo=f"profit share {settlement.rate} of bot {settlement.bot_id}, period {settlement.period}",
                        data={"bot": settlement.bot_id, "period": settlement.period, "settlement": settlement.pk})
    except ledger.InsufficientFunds:
        return False
    for s in parts:
        CommissionLine.objects.create(settlement=settlement, agent=s.agent, role=s.role, rate=s.rate,
                                      amount_units=to_units(s.amount))
    settlement.status = StatementStatus.PAID
    settlement.commission_units = to_units(commission)
    settlement.collected_at = timezone.now()
    settlement.save(update_fields=["status", "commission_units", "collected_at"])
    return True


def collect_due(user: Any) -> tuple[int, int]:
    """Try to collect the user's due fees, oldest first, each all or nothing; return (collected, still due)."""
    from gridfleet.server.billing.ledger import with_retries

    def collect_one(pk: int) -> bool | None:
        with transaction.atomic():
            row = Settlement.objects.select_for_update().filter(pk=pk, status=StatementStatus.DUE).first()
            return None if row is None else _collect(row, row.user)

    collected = 0
    ids = list(Settlement.objects.filter(user=user, status=StatementStatus.DUE).order_by("as_of", "id")
               .values_list("pk", flat=True))
    for n, pk in enumerate(ids):
        done = with_retries(lambda pk=pk: collect_one(pk))  # retried whole after a deadlock/serialization failure
        if done is None:
            continue
        if not done:
            return collected, len(ids) - n
        collected += 1
    return collected, 0


def fees_due(user: Any) -> Decimal:
    """Return the sum of the user's fees recorded as due (not collected)."""
    units = Settlement.objects.filter(user=user, status=StatementStatus.DUE).aggregate(s=Sum("fee_units"))["s"]
    return from_units(units or 0)


# ------------------------------------------------------------------------------------------------ schedules
_EPSILON = timedelta(microseconds=1)


@dataclass
class RunReport:
    """What a settlement run did."""

    period: str
    results: list[SettleResult] = field(default_factory=list)

    @property
    def settled(self) -> list[SettleResult]:
        """Return the settlements written by this run."""
        return [r for r in self.results if r.created]

    def total_fees(self) -> Decimal:
        """Return the fees of the settlements written by this run."""
        return sum((from_units(r.settlement.fee_units) for r in self.settled if r.settlement), ZERO)


def bots_to_settle() -> Iterable[Bot]:
    """Return the bots a scheduled run settles: every bot that ever started and is not closed."""
    return (Bot.objects.exclude(status=BotStatus.CREATED)
            .exclude(Q(status=BotStatus.STOPPED) & Q(fee_state__closed=True))
            .select_related("owner").order_by("pk"))


def run_settlement(period_text: str | None = None, bot_id: int | None = None, *, now: datetime | None = None,
                   reason: str = "scheduled") -> RunReport:
    """Settle every bot (or one) for the last completed period, or for the period containing ``period_text``.

    A period that has not ended yet is settled as of now (the end-of-period run then finds it settled: the gain
    after now is charged at the next period's settlement, never twice, never lost).
    """
    now = now or timezone.now()
    period = conf.parse_period(period_text) if period_text else conf.previous_period(now)
    if period.start > now:
        raise FeeError(f"period {period.label} has not started yet", status=400)
    as_of = min(period.end - _EPSILON, now)
    if bot_id is not None:
        bot = Bot.objects.filter(pk=bot_id).select_related("owner").first()
        if bot is None:
            raise FeeError(f"bot {bot_id} does not exist", status=404)
        bots: Iterable[Bot] = [bot]
    else:
        bots = bots_to_settle()
    report = RunReport(period.label)
    for bot in bots:
        try:
            report.results.append(settle_bot(bot, period.label, as_of, reason=reason, live=as_of >= now))
        except Exception as exc:  # one bot's failure never blocks the others; reported and retried next run
            log.exception("settlement of bot %s for %s failed", bot.pk, period.label)
            report.results.append(SettleResult(bot.pk, period.label, None, False, f"failed: {exc}"))
    return report



def settle_on_stop(bot: Bot) -> SettleResult:
    """Final settlement of a bot run that just stopped (period ``stop`` for the first run, ``stop:run<n>`` for
    later ones): marks it to market now and closes it."""
    run = current_run(bot)
    return settle_bot(bot, "stop" if run == 1 else f"stop:run{run}", timezone.now(), reason="stop", live=False,
                      final=True)


# ------------------------------------------------------------------------------------------------ capital moves
def move_capital(bot: Bot, amount: Decimal, *, withdraw: bool, key: str, by: Any, note: str = "",
                 ) -> tuple[CapitalMovement, SettleResult | None]:
    """Add capital to (or withdraw it from) a bot; a withdrawal settles the bot first. Idempotent per ``key``."""
    if amount <= 0:
        raise FeeError("amount must be positive", status=400)
    units = to_units(amount)
    done = CapitalMovement.objects.filter(key=key).first()
    if done is not None:
        if done.bot_id != bot.pk or abs(done.amount_units) != units:
            raise FeeError("this idempotency key was used for a different capital movement")
        return done, None
    result = None
    if withdraw:
        _check_withdrawal(bot, fee_state(bot), amount)  # refused before anything is settled or written
        now = timezone.now()
        result = settle_bot(bot, f"withdrawal:{now.strftime('%Y%m%dT%H%M%S.%f')}", now, reason="withdrawal",
                            live=True, final=False)
    with transaction.atomic():
        state = fee_state(bot, lock=True)
        if withdraw:
            _check_withdrawal(bot, state, amount)
        signed = -units if withdraw else units
        state.capital_units += signed
        state.save(update_fields=["capital_units", "updated_at"])
        movement = CapitalMovement.objects.create(
            bot=bot, kind=CapitalKind.WITHDRAW if withdraw else CapitalKind.ADD, amount_units=signed,
            capital_after_units=state.capital_units, key=key, note=note[:200],
            created_by=by if getattr(by, "is_authenticated", False) else None)
    return movement, result


def _check_withdrawal(bot: Bot, state: BotFeeState, amount: Decimal) -> None:
    """Refuse a withdrawal of more than the bot's quote (capital put in + quote flow of its fills)."""
    free_quote = state.capital + mark_bot(bot, timezone.now()).quote_flow
    if amount > free_quote:
        raise FeeError(f"cannot withdraw {amount}: the bot holds {floor_amount(free_quote)} in quote "
                       "(capital + trading result); sell or stop it first", status=400)


# ------------------------------------------------------------------------------------------------ refunds
def refund(settlement: Settlement, *, fraction: Decimal | None = None, amount: Decimal | None = None, reason: str,
           by: Any) -> FeeRefund:
    """Refund part of a collected fee: reverse that fraction of the fee's ledger transaction (wallet, revenue and
    the agents' commission alike) and record the clawback on the commission lines."""
    from gridfleet.server.billing import ledger
    from gridfleet.server.billing.models import Transaction
    from gridfleet.server.fees.commission import clawback_units

    if (fraction is None) == (amount is None):
        raise FeeError("give either fraction or amount", status=400)
    if not reason.strip():
        raise FeeError("a reason is required", status=400)
    with transaction.atomic():
        row = Settlement.objects.select_for_update().get(pk=settlement.pk)
        if row.status != StatementStatus.PAID:
            raise FeeError(f"only a collected fee can be refunded (this one is {row.status})")
        fee = from_units(row.fee_units)
        left = from_units(row.fee_units - row.refunded_units)
        if amount is not None:
            if amount <= 0 or amount > left:
                raise FeeError(f"amount must be more than 0 and at most {left} (not refunded yet)", status=400)
            fraction = amount / fee
        assert fraction is not None
        if fraction <= 0 or fraction > 1:
            raise FeeError("fraction must be more than 0 and at most 1", status=400)
        value = round_fee(fee * fraction)
        if value <= 0 or value > left:
            raise FeeError(f"a refund of {value} does not fit: {left} is left to refund", status=400)
        n = row.refunds.count() + 1
        key = f"refund:{row.ledger_key}:{n}"
        txn = Transaction.objects.get(key=row.ledger_key)
        try:
            with transaction.atomic():
                ledger.reverse(txn, key=key, memo=reason[:200], created_by=by, fraction=fraction)
        except ledger.InsufficientFunds as exc:
            raise FeeError(f"the refund cannot be posted: {exc} (an agent may have been paid this commission "
                           "already)") from exc
        except ledger.LedgerError as exc:
            raise FeeError(f"the refund cannot be posted: {exc}") from exc
        for line in row.commissions.all():
            back = clawback_units(line, fraction)
            if back:
                line.clawed_back_units += back
                line.save(update_fields=["clawed_back_units"])
        row.refunded_units += to_units(value)
        row.save(update_fields=["refunded_units"])
        done = FeeRefund.objects.create(settlement=row, fraction=format(fraction, "f"), amount_units=to_units(value),
                                        reason=reason[:500], ledger_key=key,
                                        created_by=by if getattr(by, "is_authenticated", False) else None)
    from gridfleet.server.fees.guard import after_balance_change

    try:
        after_balance_change(row.user)  # the refund raised the wallet: due fees, paused bots
    except Exception:
        log.exception("balance guard after the refund of statement %s failed", row.pk)
    return done

