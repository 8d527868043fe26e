"""Notifications API: a user's own notifications, newest first, and marking them read."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from gridfleet.server.realtime.models import Notification


class NotificationSerializer(serializers.ModelSerializer):
    """A notification (read-only)."""

    read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "kind", "title", "body", "data", "created_at", "read_at", "read"]
        read_only_fields = fields

    def get_read(self, obj: Notification) -> bool:
        """Return True once marked read."""
        return obj.read_at is not None


class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """``GET notifications/`` (own only, paginated; ``?unread=1``), ``POST notifications/{id}/read/``,
    ``POST notifications/read-all/``. Everyone, admins included, sees only their own notifications."""

    serializer_class = NotificationSerializer
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[Notification]:
        """Return the caller's notifications, newest first; only unread ones with ``?unread=1``."""
        qs = Notification.objects.filter(user=self.request.user).order_by("-id")
        if self.request.query_params.get("unread", "").lower() in {"1", "true", "yes"}:
            qs = qs.filter(read_at__isnull=True)
        return qs

    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        """Mark one notification read (idempotent); return it."""
        n = self.get_object()
        if n.read_at is None:
            n.read_at = timezone.now()
            n.save(update_fields=["read_at"])
        return Response(self.get_serializer(n).data)

    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request: Request) -> Response:
        """Mark every unread notification of the caller read; return how many."""
        count = Notification.objects.filter(user=request.user, read_at__isnull=True).update(read_at=timezone.now())
        return Response({"marked": count})
