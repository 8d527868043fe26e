"""API routes of the realtime app (included under ``/api/v1/``)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path
from rest_framework.routers import SimpleRouter

from gridfleet.server.realtime.views import (
    NotificationViewSet,
    WebhookSecretRotateView,
    WebhookSecretView,
    WebhookTestView,
)

router = SimpleRouter()
router.register("notifications", NotificationViewSet, basename="notification")

urlpatterns: list[URLPattern | URLResolver] = [
    *router.urls,
    path("webhook-secret/", WebhookSecretView.as_view(), name="webhook-secret"),
    path("webhook-secret/rotate/", WebhookSecretRotateView.as_view(), name="webhook-secret-rotate"),
    path("webhook-secret/test/", WebhookTestView.as_view(), name="webhook-secret-test"),
]
