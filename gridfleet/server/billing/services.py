"""Deposits (credits, vouchers, provider payments) and agent payouts, on top of :mod:`.ledger`.

Every function here checks who may do what, then posts through :func:`.ledger.post` under a deterministic
idempotency key, inside one database transaction with the rows it decides on locked (``select_for_update``), so
concurrent requests cannot redeem a voucher twice, credit a payment twice or pay a payout twice. Views stay thin:
they parse input, call these and turn :class:`BillingError` into an HTTP answer.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone

from gridfleet.server.billing import ledger
from gridfleet.server.billing.models import (
    Account,
    AccountKind,
    Payment,
    PaymentStatus,
    Payout,
    PayoutStatus,
    Transaction,
    Voucher,
)
from gridfleet.server.billing.money import fmt, from_units, to_units
from gridfleet.server.billing.providers import PaymentResult, get_provider
from gridfleet.server.users.models import Role, User

log = logging.getLogger(__name__)

INVALID_CODE = "invalid or already used code"
VOUCHER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
VOUCHER_LENGTH = 24  # 24 symbols of 32: 120 bits
MAX_VOUCHERS = 500


class BillingError(Exception):
    """A refused billing request: ``status`` is the HTTP answer, ``field`` the input it is about (if any)."""

    def __init__(self, message: str, status: int = 400, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.field = status, field


# ------------------------------------------------------------------------------------------------ scope
def is_admin(user: Any) -> bool:
    """Return True for admins."""
    return bool(getattr(user, "is_authenticated", False) and user.is_admin_role)


def is_agent(user: Any) -> bool:
    """Return True for agents."""
    return bool(getattr(user, "is_authenticated", False) and user.role == Role.AGENT)


def users_in_scope(actor: Any) -> QuerySet[User]:
    """Return the users whose billing ``actor`` may read: all (admin), itself and its clients (agent), itself."""
    if is_admin(actor):
        return User.objects.all()
    if is_agent(actor):
        return User.objects.filter(pk=actor.pk) | User.objects.filter(agent=actor)
    return User.objects.filter(pk=actor.pk)


def find_user(ref: Any) -> User | None:
    """Return the user named by ``ref``: a numeric id or a username (None when there is none)."""
    text = str(ref).strip()
    if not text:
        return None
    user = User.objects.filter(username=text).first()
    if user is None and text.isdigit() and len(text) < 19:
        user = User.objects.filter(pk=int(text)).first()
    return user


def _after_balance_change(user: User) -> None:
    """Let the fees app re-check the user's bots (resume them after a top-up), once the deposit is committed."""
    try:
        from gridfleet.server.fees.guard import after_balance_change
    except ImportError:
        return

    def run() -> None:
        try:
            after_balance_change(user)
        except Exception:  # the deposit stands whatever the guard does
            log.exception("billing: after_balance_change(%s) failed", user.pk)

    transaction.on_commit(run)


# ------------------------------------------------------------------------------------------------ credits
def credit(*, actor: Any, user_ref: Any, amount: Decimal, reason: str, idempotency_key: str) -> Transaction:
    """Credit (or, admins only, debit with a negative amount) a user's wallet; idempotent per (actor, key).

    Admins may credit anyone; agents only their own clients (and only credit). A user outside the actor's scope is
    reported exactly like a missing one (404). The returned transaction has ``replayed`` True on a replay.
    """
    if not (is_admin(actor) or is_agent(actor)):
        raise BillingError("only admins and agents can credit wallets", status=403)
    user = find_user(user_ref)
    if user is None or not (is_admin(actor) or user.agent_id == actor.pk):
        raise BillingError("no such user", status=404, field="user")
    if amount == 0:
        raise BillingError("must not be zero", field="amount")
    if amount < 0 and not is_admin(actor):
        raise BillingError("only admins can debit (a negative amount)", status=403, field="amount")
    reason = reason.strip()
    if not reason:
        raise BillingError("a reason is required", field="reason")
    key = f"credit:{actor.pk}:{idempotency_key}"
    if amount > 0:
        kind, lines = "credit", [(ledger.wallet(user), amount), (ledger.system_account(AccountKind.DEPOSITS), -amount)]
    else:
        kind, lines = "adjustment", [(ledger.wallet(user), amount),
                                     (ledger.system_account(AccountKind.ADJUSTMENTS), -amount)]
    try:
        txn = ledger.post(key=key, kind=kind, lines=lines, memo=reason, user=user, created_by=actor,
                          data={"reason": reason, "by": actor.username, "idempotency_key": idempotency_key})
    except ledger.InsufficientFunds as exc:
        raise BillingError(f"this debit would overdraw the wallet: {exc}", field="amount") from exc
    except ledger.IdempotencyConflict as exc:
        raise BillingError("this idempotency_key was already used for a different credit", status=409,
                           field="idempotency_key") from exc
    except ledger.LedgerError as exc:
        raise BillingError(str(exc), field="amount") from exc
    if amount > 0 and not txn.replayed:
        _after_balance_change(user)
    return txn


# ------------------------------------------------------------------------------------------------ vouchers
def normalize_code(code: str) -> str:
    """Return a voucher code without separators, upper case (how it is hashed)."""
    return re.sub(r"[\s\-_]", "", str(code)).upper()


def code_hash(code: str) -> str:
    """Return the stored SHA-256 of a voucher code."""
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def _new_code() -> str:
    raw = "".join(secrets.choice(VOUCHER_ALPHABET) for _ in range(VOUCHER_LENGTH))
    return "-".join(raw[i:i + 4] for i in range(0, VOUCHER_LENGTH, 4))


@dataclass(frozen=True)
class NewVoucher:
    """A created voucher with its plain code (shown once, never stored)."""

    voucher: Voucher
    code: str


def create_vouchers(*, actor: Any, amount: Decimal, count: int = 1, expires_at: datetime | None = None) -> list[
        NewVoucher]:
    """Create ``count`` vouchers of ``amount`` (admins only); return them with their codes (stored hashed)."""
    if not is_admin(actor):
        raise BillingError("only admins can create vouchers", status=403)
    if amount <= 0:
        raise BillingError("must be more than 0", field="amount")
    if not 1 <= count <= MAX_VOUCHERS:
        raise BillingError(f"between 1 and {MAX_VOUCHERS}", field="count")
    if expires_at is not None and expires_at <= timezone.now():
        raise BillingError("must be in the future", field="expires_at")
    units = to_units(amount)
    created = []
    with transaction.atomic():
        for _ in range(count):
            code = _new_code()
            voucher = Voucher.objects.create(code_hash=code_hash(code), hint=code[:4], amount_units=units,
                                             created_by=actor, expires_at=expires_at)
            created.append(NewVoucher(voucher, code))
    return created


def redeem(*, user: Any, code: str) -> tuple[Voucher, Transaction]:
    """Redeem a voucher into the user's wallet, exactly once; :class:`BillingError` (400, :data:`INVALID_CODE`)
    for an unknown, expired or used code, whoever used it."""
    normalized = normalize_code(code or "")
    if len(normalized) != VOUCHER_LENGTH or set(normalized) - set(VOUCHER_ALPHABET):
        raise BillingError(INVALID_CODE, field="code")
    digest = code_hash(normalized)
    wallet = ledger.wallet(user)
    deposits = ledger.system_account(AccountKind.DEPOSITS)

    def attempt() -> tuple[Voucher, Transaction]:
        with transaction.atomic():
            voucher = Voucher.objects.select_for_update().filter(code_hash=digest).first()
            if voucher is None or voucher.redeemed_at is not None or (
                    voucher.expires_at is not None and voucher.expires_at <= timezone.now()):
                raise BillingError(INVALID_CODE, field="code")
            amount = from_units(voucher.amount_units)
            txn = ledger.post(key=f"voucher:{voucher.pk}", kind="voucher",
                              lines=[(wallet, amount), (deposits, -amount)], memo=f"voucher {voucher.hint}…",
                              user=user, created_by=user,
                              data={"voucher": voucher.pk})
            voucher.redeemed_by, voucher.redeemed_at, voucher.transaction = user, timezone.now(), txn
            voucher.save(update_fields=["redeemed_by", "redeemed_at", "transaction"])
            _after_balance_change(user)
            return voucher, txn

    return ledger.with_retries(attempt)


# ------------------------------------------------------------------------------------------------ payments
def start_payment(*, user: Any, amount: Decimal, provider_name: str | None = None) -> Payment:
    """Start a provider payment for ``user``: a pending :class:`Payment` with the provider's checkout data."""
    if amount <= 0:
        raise BillingError("must be more than 0", field="amount")
    try:
        provider = get_provider(provider_name)
    except KeyError:
        raise BillingError("unknown payment provider", field="provider") from None
    checkout = provider.create_checkout(user, amount)
    reference = str(checkout.get("reference") or "")
    if not reference:
        raise BillingError("the payment provider returned no reference", status=502)
    return Payment.objects.create(provider=provider.name, reference=reference[:120], user=user,
                                  amount_units=to_units(amount), checkout=checkout)


def confirm_payment(provider_name: str, result: PaymentResult, *, by: Any = None) -> Payment:
    """Apply a provider's verdict: credit a paid payment once (key ``payment:<provider>:<reference>``), mark a
    failed one. Repeated notifications change nothing; a paid payment never becomes failed."""

    def attempt() -> tuple[Payment, bool]:
        with transaction.atomic():
            payment = (Payment.objects.select_for_update().select_related("user")
                       .filter(provider=provider_name, reference=result.reference).first())
            if payment is None:
                raise BillingError("unknown payment reference", status=404, field="reference")
            if result.amount is not None and to_units(result.amount) != payment.amount_units:
                raise BillingError(f"amount {result.amount} differs from the checkout amount "
                                   f"{fmt(payment.amount_units)}", field="amount")
            if payment.status == PaymentStatus.PAID or result.status == "pending":
                return payment, False
            if result.status == "failed":
                payment.status = PaymentStatus.FAILED
                payment.save(update_fields=["status", "updated_at"])
                return payment, False
            amount = from_units(payment.amount_units)
            txn = ledger.post(key=f"payment:{payment.provider}:{payment.reference}", kind="payment",
                              lines=[(ledger.wallet(payment.user), amount),
                                     (ledger.system_account(AccountKind.DEPOSITS), -amount)],
                              memo=f"{payment.provider} payment {payment.reference}", user=payment.user,
                              created_by=by if getattr(by, "is_authenticated", False) else None,
                              data={"payment": payment.pk, "provider": payment.provider})
            payment.status, payment.transaction = PaymentStatus.PAID, txn
            payment.save(update_fields=["status", "transaction", "updated_at"])
            _after_balance_change(payment.user)
            return payment, True

    payment, _ = ledger.with_retries(attempt)
    return payment


# ------------------------------------------------------------------------------------------------ payouts
def _withdrawable(agent: User) -> Decimal:
    payable = ledger.balance(ledger.agent_payable(agent))
    try:
        from gridfleet.server.fees.commission import withdrawable
    except ImportError:
        return payable
    return min(payable, Decimal(withdrawable(agent)))


def pending_payouts(agent: User) -> Decimal:
    """Return the total of the agent's payout requests awaiting a decision."""
    total = Payout.objects.filter(agent=agent, status=PayoutStatus.PENDING).aggregate(s=Sum("amount_units"))["s"]
    return from_units(total)


def requestable(agent: User) -> Decimal:
    """Return how much commission the agent may request now: cleared commission less pending requests."""
    return max(Decimal(0), _withdrawable(agent) - pending_payouts(agent))


def request_payout(*, agent: Any, amount: Decimal, note: str = "") -> Payout:
    """File an agent's payout request for at most :func:`requestable` (serialized per agent)."""
    if not is_agent(agent):
        raise BillingError("only agents can request payouts", status=403)
    if amount <= 0:
        raise BillingError("must be more than 0", field="amount")
    account = ledger.agent_payable(agent)

    def attempt() -> Payout:
        with transaction.atomic():
            Account.objects.select_for_update().get(pk=account.pk)  # one request at a time per agent
            available = requestable(agent)
            if amount > available:
                raise BillingError(f"at most {available} can be requested now (cleared commission less pending "
                                   "requests)", field="amount")
            return Payout.objects.create(agent=agent, amount_units=to_units(amount), note=note[:500])

    return ledger.with_retries(attempt)


def decide_payout(*, payout_id: int, actor: Any, approve: bool, note: str = "") -> Payout:
    """Approve (post agent payable → payouts, once) or reject a pending payout request (admins only)."""
    if not is_admin(actor):
        raise BillingError("only admins can decide payouts", status=403)

    def attempt() -> Payout:
        with transaction.atomic():
            payout = Payout.objects.select_for_update().select_related("agent").filter(pk=payout_id).first()
            if payout is None:
                raise BillingError("no such payout", status=404)
            if payout.status != PayoutStatus.PENDING:
                raise BillingError(f"this payout is already {payout.status}", status=409)
            if approve:
                amount = from_units(payout.amount_units)
                try:
                    payout.transaction = ledger.post(
                        key=f"payout:{payout.pk}", kind="payout", user=payout.agent, created_by=actor,
                        lines=[(ledger.agent_payable(payout.agent), -amount),
                               (ledger.system_account(AccountKind.PAYOUTS), amount)],
                        memo=f"commission payout {payout.pk}", data={"payout": payout.pk})
                except ledger.InsufficientFunds as exc:
                    raise BillingError(f"the agent's payable no longer covers this payout: {exc}", status=409) from exc
            payout.status = PayoutStatus.APPROVED if approve else PayoutStatus.REJECTED
            payout.decided_by, payout.decided_at, payout.decision_note = actor, timezone.now(), note[:500]
            payout.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "transaction"])
            return payout

    return ledger.with_retries(attempt)
