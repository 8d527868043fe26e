"""Fees API: statements (+ CSV/XLSX), settlement, fee rates, commission rates, capital, agent and revenue summaries.

Scoping: a user sees their own statements, an agent its own and its clients', an admin all. Objects outside the
caller's scope are 404; actions the caller's role may never take are 403. Amounts are decimal strings.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any, ClassVar

import django_filters
from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gridfleet.server.bots.models import Bot, BotStatus
from gridfleet.server.fees import commission, conf
from gridfleet.server.fees.models import (
    AgentProfile,
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
from gridfleet.server.fees.serializers import (
    CapitalMovementSerializer,
    CapitalRequestSerializer,
    CommissionRateSerializer,
    FeeRateSerializer,
    FeeSettingsSerializer,
    RefundSerializer,
    SettlementSerializer,
    SettleRequestSerializer,
    amount_str,
)
from gridfleet.server.fees.services import FeeError, fee_rate, fee_state, min_balance_for, move_capital, refund
from gridfleet.server.trading import exports
from gridfleet.server.trading.exports import Column, decimal_str
from gridfleet.server.users.models import Role, User
from gridfleet.server.users.permissions import IsAdminRole, can_modify, scope_queryset


def _error(exc: FeeError) -> Response:
    return Response({"detail": str(exc)}, status=exc.status)


def _money(d: Decimal) -> str:
    return decimal_str(d)


class StatementFilter(django_filters.FilterSet):
    """Filters of the statement list."""

    bot = django_filters.NumberFilter(field_name="bot_id")
    user = django_filters.NumberFilter(field_name="user_id")
    period = django_filters.CharFilter(field_name="period")
    period_from = django_filters.CharFilter(field_name="period", lookup_expr="gte")
    period_to = django_filters.CharFilter(field_name="period", lookup_expr="lte")
    status = django_filters.ChoiceFilter(choices=StatementStatus.choices)

    class Meta:
        model = Settlement
        fields = ["bot", "user", "period", "status"]


def _col(name: str) -> Column:
    if name in ("equity", "capital", "net_profit", "hwm_before", "hwm_after", "fee", "commission", "refunded"):
        return name, lambda obj, f=f"{name}_units": from_units(getattr(obj, f))
    if name == "username":
        return name, lambda obj: obj.user.username
    if name == "bot_name":
        return name, lambda obj: obj.bot.name
    if name == "symbol":
        return name, lambda obj: obj.bot.symbol
    if name in ("bot", "user"):
        return name, lambda obj, f=f"{name}_id": getattr(obj, f)
    return name, lambda obj, f=name: getattr(obj, f)


@extend_schema_view(
    list=extend_schema(summary="Fee statements (yours; an agent's clients'; all for admins); ?format=csv|xlsx",
                       tags=["billing"], parameters=[OpenApiParameter("format", str, enum=["json", "csv", "xlsx"])]),
    retrieve=extend_schema(summary="One statement line", tags=["billing"]),
)
class StatementViewSet(exports.ExportableListMixin, viewsets.ReadOnlyModelViewSet):  # type: ignore[type-arg]
    """Settlement statement lines: period, equity, net profit, HWM before/after, rate, fee."""

    serializer_class = SettlementSerializer
    filterset_class = StatementFilter
    ordering_fields = ["id", "as_of", "period", "fee_units", "net_profit_units"]
    ordering = ["-as_of", "-id"]
    export_columns: ClassVar[list[Column]] = [_col(n) for n in SettlementSerializer.Meta.fields]
    export_basename = "statements"

    def get_queryset(self) -> QuerySet[Settlement]:
        """The caller's statement lines."""
        qs = Settlement.objects.select_related("user", "bot")
        return scope_queryset(qs, self.request.user, "user")  # type: ignore[arg-type]

    @extend_schema(summary="Admin: refund part of a fee (claws back the commission proportionally)",
                   request=RefundSerializer, tags=["billing"], responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["post"])
    def refund(self, request: Request, pk: str | None = None) -> Response:
        """Refund ``fraction`` of the fee or ``amount``, with a ``reason``."""
        if not request.user.is_admin_role:  # type: ignore[union-attr]
            self.get_object()  # 404 outside the caller's scope, before saying 403
            raise PermissionDenied("only an admin can refund a fee")
        line = self.get_object()
        body = RefundSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            row = refund(line, fraction=body.validated_data.get("fraction"), amount=body.validated_data.get("amount"),
                         reason=body.validated_data["reason"], by=request.user)
        except FeeError as exc:
            return _error(exc)
        line.refresh_from_db()
        return Response({"refund": {"id": row.pk, "amount": amount_str(row.amount_units), "fraction": row.fraction,
                                    "reason": row.reason, "ledger_key": row.ledger_key},
                         "statement": SettlementSerializer(line).data}, status=status.HTTP_201_CREATED)


class SettleView(APIView):
    """Admin: run a settlement now."""

    permission_classes = [IsAdminRole]

    @extend_schema(summary="Admin: settle now (optional period ISO date and bot)", request=SettleRequestSerializer,
                   tags=["billing"], responses=OpenApiTypes.OBJECT)
    def post(self, request: Request) -> Response:
        """Settle every bot (or one) for the period (default: the last completed one)."""
        from gridfleet.server.fees.services import run_settlement

        body = SettleRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        period = body.validated_data.get("period") or None
        try:
            report = run_settlement(period, body.validated_data.get("bot"), reason="manual")
        except ValueError as exc:
            return Response({"period": [str(exc)]}, status=400)
        except FeeError as exc:
            return _error(exc)
        return Response({
            "period": report.period, "settled": len(report.settled), "fees": _money(report.total_fees()),
            "results": [{"bot": r.bot_id, "created": r.created, "skipped": r.skipped,
                         "statement": SettlementSerializer(r.settlement).data if r.settlement else None}
                        for r in report.results]})


class FeeSettingsView(APIView):
    """Admin: the platform default rate and bounds."""

    permission_classes = [IsAdminRole]

    @extend_schema(summary="Admin: platform fee settings", responses=FeeSettingsSerializer, tags=["billing"])
    def get(self, request: Request) -> Response:
        """Return the settings."""
        return Response(FeeSettingsSerializer(FeeSettings.current()).data)

    @extend_schema(summary="Admin: change the default fee rate and bounds", request=FeeSettingsSerializer,
                   responses=FeeSettingsSerializer, tags=["billing"])
    def put(self, request: Request) -> Response:
        """Change the settings (partial bodies allowed)."""
        row = FeeSettings.current()
        body = FeeSettingsSerializer(row, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        body.save(updated_by=request.user)
        return Response(body.data)


def _visible_user(request: Request, user_id: int) -> User:
    """Return the user ``user_id`` when the caller may see it (itself; an agent's clients; anyone for admins)."""
    me: User = request.user  # type: ignore[assignment]
    if me.is_admin_role:
        found = User.objects.filter(pk=user_id).first()
    elif me.role == Role.AGENT:
        found = User.objects.filter(Q(pk=me.pk) | Q(agent=me), pk=user_id).first()
    else:
        found = me if me.pk == user_id else None
    if found is None:
        raise NotFound()
    return found


def _rate_doc(user: User) -> dict[str, Any]:
    profile = UserFeeProfile.objects.filter(user=user).first()
    s = FeeSettings.current()
    return {"user": user.pk, "username": user.username, "rate": _money(fee_rate(user)),
            "own_rate": None if profile is None or profile.rate is None else _money(profile.rate),
            "default_rate": _money(s.default_rate), "min_rate": _money(s.min_rate), "max_rate": _money(s.max_rate),
            "min_balance": _money(min_balance_for(user)), "currency": conf.currency()}


class FeeRateView(APIView):
    """A user's fee rate: read by the user, their agent and admins; set by admins or (within bounds) their agent."""

    permission_classes = [IsAuthenticated]

    @extend_schema(summary="A user's fee rate", tags=["billing"], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, user_id: int) -> Response:
        """Return the rate that applies, the user's own rate and the bounds."""
        return Response(_rate_doc(_visible_user(request, user_id)))

    @extend_schema(summary="Set a user's fee rate (admin; an agent for its clients, within the bounds)",
                   request=FeeRateSerializer, tags=["billing"], responses=OpenApiTypes.OBJECT)
    def put(self, request: Request, user_id: int) -> Response:
        """Set (or with null clear) the user's own rate; admins may also set their minimum balance."""
        target = _visible_user(request, user_id)
        me: User = request.user  # type: ignore[assignment]
        is_agent_of = me.role == Role.AGENT and target.agent_id == me.pk
        if not (me.is_admin_role or is_agent_of):
            raise PermissionDenied("only an admin or the user's agent can set a fee rate")
        body = FeeRateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        rate = body.validated_data["rate"]
        s = FeeSettings.current()
        if not me.is_admin_role:
            if "min_balance" in body.validated_data:
                raise PermissionDenied("only an admin can set a minimum balance")
            if rate is not None and not s.min_rate <= rate <= s.max_rate:
                return Response({"rate": [f"must be between {s.min_rate} and {s.max_rate}"]}, status=400)
        profile, _ = UserFeeProfile.objects.get_or_create(user=target)
        profile.rate, profile.rate_set_by, profile.rate_set_at = rate, me, timezone.now()
        if "min_balance" in body.validated_data:
            mb = body.validated_data["min_balance"]
            profile.min_balance_units = None if mb is None else to_units(mb)
        profile.save()
        return Response(_rate_doc(target))


class CommissionRateView(APIView):
    """An agent's commission rate: set by admins, read by admins and the agent."""

    permission_classes = [IsAuthenticated]

    def _agent(self, request: Request, agent_id: int) -> User:
        me: User = request.user  # type: ignore[assignment]
        if not (me.is_admin_role or me.pk == agent_id):
            raise NotFound()
        agent = User.objects.filter(pk=agent_id, role=Role.AGENT).first()
        if agent is None:
            raise NotFound()
        return agent

    def _doc(self, agent: User) -> dict[str, Any]:
        parent = agent.agent if agent.agent_id else None
        return {"agent": agent.pk, "username": agent.username, "commission_rate": _money(commission.agent_rate(agent)),
                "parent": parent.pk if parent else None, "cap": _money(conf.commission_cap()),
                "clearing_days": conf.clearing_window().days}

    @extend_schema(summary="An agent's commission rate", tags=["billing"], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, agent_id: int) -> Response:
        """Return the agent's rate, parent and the platform cap."""
        return Response(self._doc(self._agent(request, agent_id)))

    @extend_schema(summary="Admin: set an agent's commission rate", request=CommissionRateSerializer,
                   tags=["billing"], responses=OpenApiTypes.OBJECT)
    def put(self, request: Request, agent_id: int) -> Response:
        """Set the rate."""
        agent = self._agent(request, agent_id)
        if not request.user.is_admin_role:  # type: ignore[union-attr]
            raise PermissionDenied("only an admin can set commission rates")
        body = CommissionRateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        AgentProfile.objects.update_or_create(agent=agent, defaults={
            "commission_rate": body.validated_data["commission_rate"], "updated_by": request.user})
        return Response(self._doc(agent))


class CapitalView(APIView):
    """A bot's capital: read (scope), add or withdraw (owner or admin; a withdrawal settles first)."""

    permission_classes = [IsAuthenticated]

    def _bot(self, request: Request, bot_id: int) -> Bot:
        bot = scope_queryset(Bot.objects.select_related("owner"), request.user, "owner").filter(  # type: ignore[arg-type]
            pk=bot_id).first()
        if bot is None:
            raise NotFound()
        return bot

    def _doc(self, bot: Bot) -> dict[str, Any]:
        state = fee_state(bot)
        moves = CapitalMovement.objects.filter(bot=bot).order_by("id")
        return {"bot": bot.pk, "capital": _money(state.capital), "hwm": _money(state.hwm),
                "last_period": state.last_period, "currency": conf.currency(),
                "guard_paused": state.guard_paused_at is not None,
                "movements": CapitalMovementSerializer(moves, many=True).data}

    @extend_schema(summary="A bot's capital put in, HWM and capital movements", tags=["billing"],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, bot_id: int) -> Response:
        """Return the bot's capital state."""
        return Response(self._doc(self._bot(request, bot_id)))

    @extend_schema(summary="Add capital to a bot or withdraw it (settles first)", request=CapitalRequestSerializer,
                   tags=["billing"], responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, bot_id: int) -> Response:
        """Move capital: ``{action: add|withdraw, amount, idempotency_key?, note?}``."""
        bot = self._bot(request, bot_id)
        if not can_modify(request.user, bot.owner):  # type: ignore[arg-type]
            raise PermissionDenied("only the bot's owner or an admin can move its capital")
        body = CapitalRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        key = f"capital:{bot.pk}:{data.get('idempotency_key') or uuid.uuid4().hex}"
        try:
            movement, settled = move_capital(bot, data["amount"], withdraw=data["action"] == "withdraw", key=key,
                                             by=request.user, note=data.get("note", ""))
        except FeeError as exc:
            return _error(exc)
        out = self._doc(bot)
        out["movement"] = CapitalMovementSerializer(movement).data
        out["settlement"] = SettlementSerializer(settled.settlement).data if settled and settled.settlement else None
        return Response(out, status=status.HTTP_201_CREATED)


def _sum_units(qs: QuerySet[Any], expr: Any) -> Decimal:
    return from_units(qs.aggregate(s=Sum(expr))["s"] or 0)


class AgentSummaryView(APIView):
    """An agent's dashboard: clients, their running bots, fees generated and commission, per period."""

    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Agent: clients, running bots, fees and commission (earned, pending, withdrawable, "
                           "paid) per period", tags=["agents"], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        """Return the calling agent's summary."""
        me: User = request.user  # type: ignore[assignment]
        if me.role != Role.AGENT:
            raise PermissionDenied("only agents have an agent summary")
        clients = list(User.objects.filter(agent=me).order_by("id"))
        ids = [c.pk for c in clients]
        running = Bot.objects.filter(owner_id__in=ids, status=BotStatus.RUNNING)
        fees = Settlement.objects.filter(user_id__in=ids)
        lines = CommissionLine.objects.filter(agent=me)
        per_client_fees = dict(fees.filter(status=StatementStatus.PAID).values("user_id").annotate(
            s=Sum(F("fee_units") - F("refunded_units"))).values_list("user_id", "s"))
        per_client_bots = dict(running.values("owner_id").annotate(n=Count("id")).values_list("owner_id", "n"))
        periods: dict[str, dict[str, Any]] = defaultdict(lambda: {"fees": 0, "commission": 0})
        for period, s in fees.filter(status=StatementStatus.PAID).values("period").annotate(
                s=Sum(F("fee_units") - F("refunded_units"))).values_list("period", "s"):
            periods[period]["fees"] = s or 0
        for period, s in lines.values("settlement__period").annotate(
                s=Sum(F("amount_units") - F("clawed_back_units"))).values_list("settlement__period", "s"):
            periods[period]["commission"] = s or 0
        earned = commission.earned(me)
        pending = commission.pending(me)
        return Response({
            "agent": me.pk, "username": me.username, "referral_code": me.referral_code,
            "commission_rate": _money(commission.agent_rate(me)), "currency": conf.currency(),
            "clients": [{"id": c.pk, "username": c.username, "running_bots": per_client_bots.get(c.pk, 0),
                         "fees": amount_str(per_client_fees.get(c.pk, 0)), "fee_rate": _money(fee_rate(c))}
                        for c in clients],
            "running_bots": [{"id": b.pk, "name": b.name, "symbol": b.symbol, "owner": b.owner_id}
                             for b in running.order_by("id")],
            "fees_generated": _money(_sum_units(fees.filter(status=StatementStatus.PAID),
                                                F("fee_units") - F("refunded_units"))),
            "fees_due": _money(_sum_units(fees.filter(status=StatementStatus.DUE), F("fee_units"))),
            "commission": {"earned": _money(earned), "pending": _money(pending),
                           "withdrawable": _money(commission.withdrawable(me)),
                           "paid": _money(commission.paid_out(me))},
            "periods": [{"period": p, "fees": amount_str(v["fees"]), "commission": amount_str(v["commission"])}
                        for p, v in sorted(periods.items(), reverse=True)],
        })


class RevenueView(APIView):
    """Admin: platform revenue from fees, per period."""

    permission_classes = [IsAdminRole]

    @extend_schema(summary="Admin: platform fee revenue, commission and fees due, per period", tags=["billing"],
                   parameters=[OpenApiParameter("period_from", str), OpenApiParameter("period_to", str)],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        """Return totals and per-period rows."""
        qs = Settlement.objects.all()
        if request.query_params.get("period_from"):
            qs = qs.filter(period__gte=request.query_params["period_from"])
        if request.query_params.get("period_to"):
            qs = qs.filter(period__lte=request.query_params["period_to"])
        paid = qs.filter(status=StatementStatus.PAID)
        refunds = FeeRefund.objects.filter(settlement__in=paid)
        claw = CommissionLine.objects.filter(settlement__in=paid)

        def totals(rows: QuerySet[Settlement]) -> dict[str, Any]:
            collected = _sum_units(rows, "fee_units")
            refunded = _sum_units(rows, "refunded_units")
            comm = _sum_units(CommissionLine.objects.filter(settlement__in=rows),
                              F("amount_units") - F("clawed_back_units"))
            return {"fees_collected": _money(collected), "refunded": _money(refunded), "commission": _money(comm),
                    "platform_revenue": _money(collected - refunded - comm)}

        rows = []
        for period in paid.values_list("period", flat=True).distinct().order_by("-period"):
            rows.append({"period": period, **totals(paid.filter(period=period))})
        return Response({
            "currency": conf.currency(), **totals(paid),
            "fees_due": _money(_sum_units(qs.filter(status=StatementStatus.DUE), "fee_units")),
            "statements": qs.count(), "refunds": refunds.count(), "commission_lines": claw.count(),
            "periods": rows})


class GuardView(APIView):
    """The caller's billing standing: balance, fees due, minimum and the balance guard's state."""

    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Your billing standing and balance guard state", tags=["billing"],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        """Return the standing."""
        from gridfleet.server.fees.guard import standing
        from gridfleet.server.fees.models import GuardState

        me: User = request.user  # type: ignore[assignment]
        s = standing(me)
        g = GuardState.objects.filter(user=me).first()
        return Response({"balance": _money(s.balance), "fees_due": _money(s.due), "min_balance": _money(s.minimum),
                         "currency": conf.currency(), "active_bots": s.active_bots,
                         "guard": g.status if g else "ok", "reason": g.reason if g else "",
                         "fee_rate": _money(fee_rate(me))})
