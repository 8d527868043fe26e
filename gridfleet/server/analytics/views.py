"""Analytics of bots and users, and backtests as jobs."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gridfleet.server.analytics import compute
from gridfleet.server.analytics.backtests import dispatch
from gridfleet.server.analytics.datasets import list_datasets
from gridfleet.server.analytics.models import BacktestJob
from gridfleet.server.analytics.serializers import (
    BacktestCreateSerializer,
    BacktestJobListSerializer,
    BacktestJobSerializer,
    BacktestQueuedSerializer,
    BotAnalyticsSerializer,
    DatasetSerializer,
    UserAnalyticsSerializer,
)
from gridfleet.server.bots.models import Bot
from gridfleet.server.users.models import User
from gridfleet.server.users.permissions import scope_queryset


class BotAnalyticsView(APIView):
    """Figures of one bot the caller may see."""

    @extend_schema(summary="Analytics of one bot", responses=BotAnalyticsSerializer, tags=["analytics"])
    def get(self, request: Request, pk: int) -> Response:
        """Return the bot's analytics (404 outside the caller's scope)."""
        bot = get_object_or_404(scope_queryset(Bot.objects.all(), request.user, "owner"), pk=pk)  # type: ignore[arg-type]
        return Response(compute.bot_analytics(bot))


def _user_document(user: User) -> dict[str, Any]:
    bots = list(Bot.objects.filter(owner=user).order_by("id"))
    return compute.user_analytics(user.pk, bots)


class UserAnalyticsView(APIView):
    """Figures of all of a user's bots together: yourself, an agent's clients, anyone for admins."""

    @extend_schema(summary="Analytics of a user's bots", responses=UserAnalyticsSerializer, tags=["analytics"])
    def get(self, request: Request, pk: int) -> Response:
        """Return the user's aggregated analytics (404 outside the caller's scope)."""
        me: User = request.user  # type: ignore[assignment]
        users = User.objects.all()
        if not me.is_admin_role:
            users = users.filter(pk=me.pk) | users.filter(agent=me) if me.is_agent else users.filter(pk=me.pk)
        return Response(_user_document(get_object_or_404(users, pk=pk)))


class MyAnalyticsView(APIView):
    """The caller's own figures."""

    @extend_schema(summary="Analytics of your bots", responses=UserAnalyticsSerializer, tags=["analytics"])
    def get(self, request: Request) -> Response:
        """Return the caller's aggregated analytics."""
        return Response(_user_document(request.user))  # type: ignore[arg-type]


@extend_schema_view(
    list=extend_schema(
        summary="Backtest jobs in your scope (newest first): yours; an agent's clients' too; all for admins",
        tags=["backtests"],
        parameters=[OpenApiParameter("owner", int, description="only this user's jobs"),
                    OpenApiParameter("mine", bool, description="only your own jobs")]),
    retrieve=extend_schema(summary="One backtest job (poll until status is done or failed)", tags=["backtests"]),
    create=extend_schema(
        summary="Queue a backtest", request=BacktestCreateSerializer, tags=["backtests"],
        responses={202: BacktestQueuedSerializer,
                   400: OpenApiResponse(description="invalid config (messages per field) or data/window")}),
)
class BacktestJobViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                         viewsets.GenericViewSet):  # type: ignore[type-arg]
    """Backtests run as jobs: POST returns 202 at once; poll the job for its status and summary."""

    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[BacktestJob]:
        """The jobs in the caller's scope (``users/permissions.py``): a user's own, an agent's own and its
        clients' (read-only: there are no writes on a job), an admin's all; ``?owner=<id>`` / ``?mine=1`` narrow."""
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return BacktestJob.objects.none()
        jobs = scope_queryset(BacktestJob.objects.all(), self.request.user)  # type: ignore[arg-type]
        if self.action == "list":
            params = self.request.query_params
            owner = params.get("owner", "").strip()
            if owner:
                if not owner.isdigit():
                    raise ValidationError({"owner": ["must be a user id"]})
                jobs = jobs.filter(owner_id=int(owner))
            if params.get("mine", "").lower() in {"1", "true", "yes"}:
                jobs = jobs.filter(owner=self.request.user)
        return jobs.order_by("-id")

    def get_serializer_class(self) -> Any:
        """The create, list and detail shapes."""
        if self.action == "create":
            return BacktestCreateSerializer
        if self.action == "list":
            return BacktestJobListSerializer
        return BacktestJobSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Validate, store the job as queued and dispatch it after commit."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        v = serializer.validated_data
        job = BacktestJob.objects.create(owner=request.user, config=v["config"], data=dict(v["data"]),
                                         start_ms=v["from"], end_ms=v["to"])
        dispatch(job)
        return Response({"id": job.pk, "status": job.status}, status=status.HTTP_202_ACCEPTED,
                        headers={"Location": f"{request.path.rstrip('/')}/{job.pk}/"})

    @extend_schema(summary="Candle files a backtest can use (symbol, timeframe, date range from the file name)",
                   responses=DatasetSerializer(many=True), tags=["backtests"])
    @action(detail=False, methods=["get"], pagination_class=None)
    def datasets(self, request: Request) -> Response:
        """Return the candle files of the server's data directory (``file`` goes into ``data.file``)."""
        return Response(list_datasets())
