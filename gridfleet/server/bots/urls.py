"""API routes of this app: ``/api/v1/bots/``, ``/api/v1/groups/``, ``/api/v1/risk-templates/``."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver
from rest_framework.routers import SimpleRouter

from gridfleet.server.bots.views import BotGroupViewSet, BotViewSet, RiskTemplateViewSet

router = SimpleRouter()
router.register("bots", BotViewSet, basename="bot")
router.register("groups", BotGroupViewSet, basename="bot-group")
router.register("risk-templates", RiskTemplateViewSet, basename="risk-template")

urlpatterns: list[URLPattern | URLResolver] = [*router.urls]
