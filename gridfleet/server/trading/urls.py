"""API routes of this app: /orders/, /fills/, /events/ (journal), /positions/, /bot-runs/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from rest_framework.routers import SimpleRouter

from gridfleet.server.trading import views

router = SimpleRouter()
router.register("orders", views.OrderViewSet, basename="order")
router.register("fills", views.FillViewSet, basename="fill")
router.register("events", views.JournalEntryViewSet, basename="journal-event")
router.register("positions", views.PositionViewSet, basename="position")
router.register("bot-runs", views.BotRunViewSet, basename="bot-run")

urlpatterns: list[URLPattern | URLResolver] = [path("", include(router.urls))]
