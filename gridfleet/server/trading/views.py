"""Read-only trading data: orders, fills, journal events (paginated, filterable, CSV/XLSX export) and positions.

Everything is scoped by :func:`gridfleet.server.users.permissions.scope_queryset` through the owning bot:
admins see all, agents their own and (read-only) their clients', users their own; other rows never appear and
single objects outside the scope are 404.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from gridfleet.server.analytics.compute import bot_fills, latest_snapshots, position
from gridfleet.server.bots.models import Bot
from gridfleet.server.trading import exports
from gridfleet.server.trading.exports import Column
from gridfleet.server.trading.filters import BotRunFilter, FillFilter, JournalFilter, OrderFilter
from gridfleet.server.trading.models import BotRun
from gridfleet.server.trading.serializers import (
    BotRunSerializer,
    FillSerializer,
    JournalEntrySerializer,
    OrderSerializer,
    PositionSerializer,
)
from gridfleet.server.users.permissions import scope_queryset

FORMAT_PARAM = OpenApiParameter(
    "format", OpenApiTypes.STR, enum=["json", "csv", "xlsx"],
    description="csv (streamed) or xlsx: export every filtered row (no pagination) as a download",
)
RANGE_PARAMS = [
    OpenApiParameter("from", OpenApiTypes.STR, description="inclusive start: ISO-8601 (naive = UTC) or Unix ms"),
    OpenApiParameter("to", OpenApiTypes.STR, description="exclusive end: ISO-8601 (naive = UTC) or Unix ms"),
]


def _columns(serializer_fields: list[str], extra: dict[str, Any] | None = None) -> list[Column]:
    extra = extra or {}

    def getter(name: str) -> Any:
        if name in extra:
            return extra[name]
        if name == "bot":
            return lambda obj: obj.bot_id
        return lambda obj: getattr(obj, name)

    return [(name, getter(name)) for name in serializer_fields]


class ExportableReadOnlyViewSet(exports.ExportableListMixin, viewsets.ReadOnlyModelViewSet):  # type: ignore[type-arg]
    """List/retrieve scoped through ``bot__owner``; ``?format=csv|xlsx`` on the list exports all filtered rows."""

    def get_queryset(self) -> QuerySet[Any]:
        """Return the caller's rows."""
        model = self.get_serializer_class().Meta.model
        return scope_queryset(model.objects.all(), self.request.user, "bot__owner")  # type: ignore[arg-type]


@extend_schema_view(
    list=extend_schema(summary="A bot's orders (yours, or your clients' for agents)",
                       parameters=[FORMAT_PARAM, *RANGE_PARAMS], tags=["trading"]),
    retrieve=extend_schema(summary="One order", tags=["trading"]),
)
class OrderViewSet(ExportableReadOnlyViewSet):
    """Orders tracked from intent to final state."""

    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    ordering_fields = ["id", "created_at", "updated_at", "price", "amount", "status", "level"]
    ordering = ["id"]
    export_basename = "orders"
    export_columns = _columns(OrderSerializer.Meta.fields)


@extend_schema_view(
    list=extend_schema(summary="Fills (executions)", parameters=[FORMAT_PARAM, *RANGE_PARAMS], tags=["trading"]),
    retrieve=extend_schema(summary="One fill", tags=["trading"]),
)
class FillViewSet(ExportableReadOnlyViewSet):
    """Executions of the bots' orders."""

    serializer_class = FillSerializer
    filterset_class = FillFilter
    ordering_fields = ["id", "ts", "price", "amount", "fee"]
    ordering = ["ts", "id"]
    export_basename = "fills"
    export_columns = _columns(FillSerializer.Meta.fields, {"time": lambda obj: exports.ms_iso(obj.ts)})


@extend_schema_view(
    list=extend_schema(summary="Journal events (corrections, warnings, risk alerts, state changes)",
                       parameters=[FORMAT_PARAM, *RANGE_PARAMS], tags=["trading"]),
    retrieve=extend_schema(summary="One journal event", tags=["trading"]),
)
class JournalEntryViewSet(ExportableReadOnlyViewSet):
    """The bots' journals."""

    serializer_class = JournalEntrySerializer
    filterset_class = JournalFilter
    ordering_fields = ["id", "ts", "kind"]
    ordering = ["ts", "id"]
    export_basename = "events"
    export_columns = _columns(JournalEntrySerializer.Meta.fields, {"time": lambda obj: exports.ms_iso(obj.ts)})


@extend_schema_view(
    list=extend_schema(
        summary="Per-bot positions: base held, average entry price, realised PnL, grid profit, last price",
        parameters=[OpenApiParameter("bot", OpenApiTypes.INT, description="only this bot"),
                    OpenApiParameter("symbol", OpenApiTypes.STR, description="only bots on this symbol")],
        responses=PositionSerializer(many=True), tags=["trading"]),
)
class PositionViewSet(viewsets.GenericViewSet):  # type: ignore[type-arg]
    """Positions computed from each bot's fills (average cost) and its latest equity snapshot."""

    serializer_class = PositionSerializer
    filter_backends: ClassVar[list[Any]] = []

    def get_queryset(self) -> QuerySet[Bot]:
        """Return the caller's bots, optionally one bot or one symbol."""
        qs = scope_queryset(Bot.objects.all(), self.request.user, "owner")  # type: ignore[arg-type]
        bot = self.request.query_params.get("bot")
        if bot:
            qs = qs.filter(pk=int(bot)) if bot.isdigit() else qs.none()
        symbol = self.request.query_params.get("symbol")
        if symbol:
            qs = qs.filter(symbol__iexact=symbol)
        return qs.order_by("id")

    def list(self, request: Request) -> Response:
        """A page of positions."""
        queryset = self.get_queryset()
        page = self.paginate_queryset(queryset)
        bots = list(page if page is not None else queryset)
        pks = [b.pk for b in bots]
        books = bot_fills(pks)
        snaps = latest_snapshots(pks)
        data = [position(b, books[b.pk], snaps.get(b.pk)) for b in bots]
        if page is not None:
            return self.get_paginated_response(data)
        return Response(data)


__all__ = ["FillViewSet", "JournalEntryViewSet", "OrderViewSet", "PositionViewSet"]


@extend_schema_view(
    list=extend_schema(summary="Runs of the bots (a start after a stop begins a new run); ?bot= one bot's",
                       tags=["trading"]),
)
class BotRunViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    """Each run of a bot: number, runtime id (client-id prefix), the config it started with, start and end."""

    serializer_class = BotRunSerializer
    filterset_class = BotRunFilter
    ordering_fields = ["id", "number", "started_at"]
    ordering = ["bot", "number"]

    def get_queryset(self) -> QuerySet[BotRun]:
        """The runs of the bots in the caller's scope."""
        return scope_queryset(BotRun.objects.all(), self.request.user, "bot__owner")  # type: ignore[arg-type]
