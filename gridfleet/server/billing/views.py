"""The billing ledger API: balance, entries (CSV/XLSX), credits, vouchers, payments and agent payouts.

Views only parse input, call :mod:`.services` / :mod:`.ledger` and shape the answer. Scope: a user sees its own
wallet; an agent its own accounts and, read-only, its clients'; an admin everything. Anything outside the caller's
scope answers exactly like something that does not exist (404), and refusals carry no data.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from gridfleet.server.billing import ledger, services
from gridfleet.server.billing.filters import EntryFilter, PaymentFilter, PayoutFilter, VoucherFilter
from gridfleet.server.billing.models import Entry, Payment, Payout, Voucher
from gridfleet.server.billing.money import currency, dec_str, fmt, from_units
from gridfleet.server.billing.providers import WebhookRejected, get_provider
from gridfleet.server.billing.serializers import (
    BalanceSerializer,
    CreditSerializer,
    DecisionSerializer,
    EntrySerializer,
    NewVoucherSerializer,
    PaymentCreateSerializer,
    PaymentSerializer,
    PayoutCreateSerializer,
    PayoutSerializer,
    RedeemResultSerializer,
    RedeemSerializer,
    TransactionSerializer,
    VoucherCreateSerializer,
    VoucherSerializer,
)
from gridfleet.server.billing.services import BillingError
from gridfleet.server.trading import exports
from gridfleet.server.users.permissions import IsAdminRole, scope_queryset

TAGS = ["billing"]


class Pagination(LimitOffsetPagination):
    """``limit``/``offset`` pages; ``limit`` is capped (a huge one would overflow the database's LIMIT)."""

    max_limit = 1000


def refuse(exc: BillingError) -> Response:
    """Turn a refused request into its HTTP answer (field errors as ``{field: [message]}``)."""
    if exc.status == status.HTTP_404_NOT_FOUND:
        body: dict[str, Any] = {exc.field: ["not found"]} if exc.field else {"detail": "Not found."}
    elif exc.field and exc.status == status.HTTP_400_BAD_REQUEST:
        body = {exc.field: [str(exc)]}
    else:
        body = {"detail": str(exc)}
    return Response(body, status=exc.status)


def _minimum_balance() -> str | None:
    try:
        from gridfleet.server.fees.conf import min_balance
    except ImportError:
        return None
    return dec_str(min_balance())


# ------------------------------------------------------------------------------------------------ balance
class BalanceView(APIView):
    """``GET /billing/balance/``: a wallet balance (own; ``?user=`` for admins and agents within their scope)."""

    @extend_schema(summary="Wallet balance", tags=TAGS, responses=BalanceSerializer, parameters=[
        OpenApiParameter("user", OpenApiTypes.STR, description="id or username (admins: anyone; agents: clients)")])
    def get(self, request: Request) -> Response:
        """Return the balance and, for agents, their payable commission."""
        ref = request.query_params.get("user")
        user: Any = request.user
        if ref not in (None, ""):
            target = services.find_user(ref)
            if target is None or not services.users_in_scope(request.user).filter(pk=target.pk).exists():
                raise NotFound()
            user = target
        data: dict[str, Any] = {
            "user": user.pk, "username": user.username, "currency": currency(),
            "balance": dec_str(ledger.balance(ledger.wallet(user))), "minimum_balance": _minimum_balance(),
            "agent_payable": None, "withdrawable": None, "pending_payouts": None,
        }
        if services.is_agent(user):
            data["agent_payable"] = dec_str(ledger.balance(ledger.agent_payable(user)))
            data["withdrawable"] = dec_str(services.requestable(user))
            data["pending_payouts"] = dec_str(services.pending_payouts(user))
        return Response(data)


# ------------------------------------------------------------------------------------------------ entries
EXPORT_COLUMNS: list[exports.Column] = [
    ("id", lambda e: e.pk), ("transaction", lambda e: e.transaction_id),
    ("created_at", lambda e: e.transaction.created_at), ("kind", lambda e: e.transaction.kind),
    ("memo", lambda e: e.transaction.memo), ("account_kind", lambda e: e.account.kind),
    ("user", lambda e: e.account.user_id), ("username", lambda e: e.account.user.username if e.account.user else ""),
    ("amount", lambda e: from_units(e.amount_units)),
    ("balance_after", lambda e: None if e.balance_after_units is None else from_units(e.balance_after_units)),
    ("currency", lambda e: currency()),
]


@extend_schema(summary="Ledger entries (yours; an agent's clients'; all for admins)", tags=TAGS, parameters=[
    OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv", "xlsx"],
                     description="csv (streamed) or xlsx: every filtered row as a download"),
    OpenApiParameter("from", OpenApiTypes.STR, description="inclusive start: ISO-8601 (naive = UTC) or Unix ms"),
    OpenApiParameter("to", OpenApiTypes.STR, description="exclusive end: ISO-8601 (naive = UTC) or Unix ms")])
class EntryListView(exports.ExportableListMixin, generics.ListAPIView):  # type: ignore[type-arg]
    """``GET /billing/entries/``: paginated, filterable, exportable ledger lines."""

    pagination_class = Pagination

    serializer_class = EntrySerializer
    filterset_class = EntryFilter
    ordering_fields = ["id"]
    ordering = ["-id"]
    export_columns = EXPORT_COLUMNS
    export_basename = "ledger-entries"

    def get_queryset(self) -> QuerySet[Entry]:
        """Entries of the accounts the caller may read (admins: system accounts too)."""
        queryset = Entry.objects.select_related("account__user", "transaction")
        return scope_queryset(queryset, self.request.user, "account__user")  # type: ignore[arg-type]



# ------------------------------------------------------------------------------------------------ credits
class CreditView(APIView):
    """``POST /billing/credit/``: admins credit anyone, agents their clients; idempotent per key."""

    @extend_schema(summary="Credit (or, admins, debit) a wallet", tags=TAGS, request=CreditSerializer,
                   responses={201: TransactionSerializer, 200: TransactionSerializer})
    def post(self, request: Request) -> Response:
        """Post the credit; a replay of the key answers 200 with the first transaction."""
        if not (services.is_admin(request.user) or services.is_agent(request.user)):
            raise PermissionDenied("only admins and agents can credit wallets")
        form = CreditSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            txn = services.credit(actor=request.user, user_ref=form.validated_data["user"],
                                  amount=form.validated_data["amount"], reason=form.validated_data["reason"],
                                  idempotency_key=form.validated_data["idempotency_key"])
        except BillingError as exc:
            return refuse(exc)
        return Response(TransactionSerializer(txn).data, status=200 if txn.replayed else 201)


# ------------------------------------------------------------------------------------------------ vouchers
class VoucherView(generics.ListAPIView):  # type: ignore[type-arg]
    """``GET /billing/vouchers/`` (admins: list) and ``POST`` (admins: create, codes shown once)."""

    pagination_class = Pagination

    permission_classes = [IsAdminRole]
    serializer_class = VoucherSerializer
    queryset = Voucher.objects.select_related("redeemed_by")
    ordering_fields = ["id", "created_at"]
    ordering = ["-id"]
    filterset_class = VoucherFilter

    @extend_schema(summary="Create vouchers (codes are shown only in this answer)", tags=TAGS,
                   request=VoucherCreateSerializer, responses={201: NewVoucherSerializer(many=True)})
    def post(self, request: Request) -> Response:
        """Create ``count`` vouchers; the first code is also returned as ``code``."""
        form = VoucherCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            created = services.create_vouchers(actor=request.user, **form.validated_data)
        except BillingError as exc:
            return refuse(exc)
        items = []
        for item in created:
            row = NewVoucherSerializer(item.voucher).data
            row["code"] = item.code
            items.append(row)
        return Response({"code": created[0].code, "codes": [i.code for i in created], "amount": items[0]["amount"],
                         "vouchers": items}, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Vouchers (admins)", tags=TAGS)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """List vouchers, newest first."""
        return super().get(request, *args, **kwargs)


class RedeemThrottle(UserRateThrottle):
    """Limits guessing of voucher codes (``GRIDFLEET_BILLING_REDEEM_RATE``, default 30/min per user)."""

    scope = "billing_redeem"

    def get_rate(self) -> str:
        """Return the configured rate."""
        return str(getattr(settings, "GRIDFLEET_BILLING_REDEEM_RATE", "30/min"))


class RedeemView(APIView):
    """``POST /billing/redeem/``: credit a voucher to one's own wallet, exactly once."""

    throttle_classes = [RedeemThrottle]

    @extend_schema(summary="Redeem a voucher code", tags=TAGS, request=RedeemSerializer,
                   responses={200: RedeemResultSerializer, 400: OpenApiResponse(description="invalid or used code")})
    def post(self, request: Request) -> Response:
        """Redeem; any unknown, expired or used code is the same 400."""
        form = RedeemSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            voucher, txn = services.redeem(user=request.user, code=form.validated_data["code"])
        except BillingError as exc:
            return refuse(exc)
        return Response({"amount": fmt(voucher.amount_units), "currency": currency(), "transaction": txn.pk,
                         "balance": dec_str(ledger.balance(ledger.wallet(request.user)))})


# ------------------------------------------------------------------------------------------------ payments
class PaymentView(generics.ListAPIView):  # type: ignore[type-arg]
    """``GET /billing/payments/`` (own; agents: clients' too; admins: all) and ``POST`` (start a payment)."""

    pagination_class = Pagination

    serializer_class = PaymentSerializer
    ordering_fields = ["id", "created_at"]
    ordering = ["-id"]
    filterset_class = PaymentFilter

    def get_queryset(self) -> QuerySet[Payment]:
        """The caller's payments."""
        return scope_queryset(Payment.objects.all(), self.request.user, "user")  # type: ignore[arg-type]

    @extend_schema(summary="Start a payment through a provider", tags=TAGS, request=PaymentCreateSerializer,
                   responses={201: PaymentSerializer})
    def post(self, request: Request) -> Response:
        """Create a pending payment with the provider's checkout data (pay, then the provider confirms)."""
        form = PaymentCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            payment = services.start_payment(user=request.user, amount=form.validated_data["amount"],
                                             provider_name=form.validated_data.get("provider"))
        except BillingError as exc:
            return refuse(exc)
        return Response(PaymentSerializer(payment).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Payments", tags=TAGS)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """List payments."""
        return super().get(request, *args, **kwargs)


class PaymentConfirmView(APIView):
    """``POST /billing/payments/{id}/confirm/``: an admin confirms a (manual) payment was received."""

    permission_classes = [IsAdminRole]

    @extend_schema(summary="Confirm a payment (admins)", tags=TAGS, request=None, responses=PaymentSerializer)
    def post(self, request: Request, pk: int) -> Response:
        """Credit the payment's wallet once."""
        from gridfleet.server.billing.providers import PaymentResult

        payment = Payment.objects.filter(pk=pk).first()
        if payment is None:
            raise NotFound()
        try:
            payment = services.confirm_payment(payment.provider, PaymentResult(payment.reference, "paid"),
                                               by=request.user)
        except BillingError as exc:
            return refuse(exc)
        return Response(PaymentSerializer(payment).data)


class PaymentWebhookView(APIView):
    """``POST /billing/payments/webhook/{provider}/``: the provider's notification (authenticated by the provider,
    e.g. an HMAC signature); credits the wallet once per payment."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(summary="Payment provider webhook", tags=TAGS, request=OpenApiTypes.OBJECT,
                   responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT,
                              404: OpenApiTypes.OBJECT})
    def post(self, request: Request, provider: str) -> Response:
        """Verify and apply the notification."""
        try:
            handler = get_provider(provider)
        except KeyError:
            raise NotFound() from None
        try:
            result = handler.handle_webhook(request._request)
            payment = services.confirm_payment(handler.name, result)
        except WebhookRejected as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        except BillingError as exc:
            return refuse(exc)
        return Response({"reference": payment.reference, "status": payment.status})


# ------------------------------------------------------------------------------------------------ payouts
class PayoutView(generics.ListAPIView):  # type: ignore[type-arg]
    """``GET /billing/payouts/`` (agents: own; admins: all) and ``POST`` (agents: request a payout)."""

    pagination_class = Pagination

    serializer_class = PayoutSerializer
    ordering_fields = ["id", "requested_at"]
    ordering = ["-id"]
    filterset_class = PayoutFilter

    def get_queryset(self) -> QuerySet[Payout]:
        """Admins: all; agents: their own; others: none."""
        user: Any = self.request.user
        if services.is_admin(user):
            return Payout.objects.select_related("agent")
        return Payout.objects.select_related("agent").filter(agent=user)

    def check_permissions(self, request: Request) -> None:
        """Only agents and admins."""
        super().check_permissions(request)
        if not (services.is_admin(request.user) or services.is_agent(request.user)):
            raise PermissionDenied("payouts are for agents (and admins who decide them)")

    @extend_schema(summary="Request a commission payout (agents)", tags=TAGS, request=PayoutCreateSerializer,
                   responses={201: PayoutSerializer})
    def post(self, request: Request) -> Response:
        """File a payout request of at most the cleared commission not already requested."""
        form = PayoutCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            payout = services.request_payout(agent=request.user, amount=form.validated_data["amount"],
                                             note=form.validated_data["note"])
        except BillingError as exc:
            return refuse(exc)
        return Response(PayoutSerializer(payout).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Payout requests", tags=TAGS)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """List payout requests."""
        return super().get(request, *args, **kwargs)


class PayoutDecisionView(APIView):
    """``POST /billing/payouts/{id}/approve/`` and ``reject/`` (admins)."""

    permission_classes = [IsAdminRole]
    approve = True

    @extend_schema(tags=TAGS, request=DecisionSerializer, responses=PayoutSerializer)
    def post(self, request: Request, pk: int) -> Response:
        """Decide a pending request (approval posts agent payable → payouts, once)."""
        form = DecisionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            payout = services.decide_payout(payout_id=pk, actor=request.user, approve=self.approve,
                                            note=form.validated_data["note"])
        except BillingError as exc:
            return refuse(exc)
        return Response(PayoutSerializer(payout).data)


class PayoutApproveView(PayoutDecisionView):
    """Approve a payout."""

    approve = True


class PayoutRejectView(PayoutDecisionView):
    """Reject a payout."""

    approve = False

