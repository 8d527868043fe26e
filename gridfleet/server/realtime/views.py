"""Notifications API (a user's own notifications, newest first, marking them read) and the webhook secret."""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gridfleet.server.realtime.alerts import check_webhook_url, post_webhook
from gridfleet.server.realtime.models import Notification
from gridfleet.server.realtime.webhook_signing import describe, rotate, secret_record, signing_secrets

logger = logging.getLogger(__name__)


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


class WebhookSecretSerializer(serializers.Serializer):
    """The caller's webhook signing secret and how deliveries are signed."""

    secret = serializers.CharField(read_only=True, help_text="HMAC-SHA256 key of X-Gridfleet-Signature")
    created_at = serializers.DateTimeField(read_only=True)
    rotated_at = serializers.DateTimeField(read_only=True, allow_null=True)
    previous_expires_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="until then deliveries also carry a signature with the old secret")
    algorithm = serializers.CharField(read_only=True)
    signed_payload = serializers.CharField(read_only=True)
    headers = serializers.ListField(child=serializers.CharField(), read_only=True)


class WebhookTestSerializer(serializers.Serializer):
    """Result of a test delivery."""

    ok = serializers.BooleanField()
    message = serializers.CharField()


@extend_schema(tags=["notifications"])
class WebhookSecretView(APIView):
    """``GET webhook-secret/``: the caller's own secret (created on first use). Nobody else, admins included, can
    read it."""

    @extend_schema(summary="Get my webhook signing secret", responses=WebhookSecretSerializer)
    def get(self, request: Request) -> Response:
        """Return the caller's secret."""
        return Response(WebhookSecretSerializer(describe(secret_record(request.user))).data)


@extend_schema(tags=["notifications"])
class WebhookSecretRotateView(APIView):
    """``POST webhook-secret/rotate/``: a new secret; the old one keeps signing during the grace period."""

    @extend_schema(summary="Rotate my webhook signing secret", request=None, responses=WebhookSecretSerializer)
    def post(self, request: Request) -> Response:
        """Rotate and return the new secret."""
        record = rotate(request.user)
        logger.info("user %s rotated the webhook secret", request.user.pk)
        return Response(WebhookSecretSerializer(describe(record)).data)


@extend_schema(tags=["notifications"])
class WebhookTestView(APIView):
    """``POST webhook-secret/test/``: send one signed ``ping`` to the caller's ``webhook_url`` now (no retry)."""

    @extend_schema(summary="Send a signed test webhook to my webhook_url", request=None,
                   responses=WebhookTestSerializer)
    def post(self, request: Request) -> Response:
        """Deliver a ping and report whether the receiver answered 2xx."""
        user = request.user
        url = (getattr(user, "webhook_url", "") or "").strip()
        if not url:
            return Response({"ok": False, "message": "no webhook_url set (PATCH /api/v1/auth/me/)"})
        refused = check_webhook_url(url)
        if refused:
            return Response({"ok": False, "message": f"webhook_url refused: {refused}"})
        payload = {"type": "ping", "kind": "ping", "user": user.pk, "created_at": timezone.now().isoformat()}
        ok = post_webhook(url, payload, signing_secrets(user), retries=0)
        return Response({"ok": ok, "message": "delivered (2xx)" if ok else "the receiver did not answer 2xx"})
