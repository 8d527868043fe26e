"""API routes of this app: ``/api/v1/exchange-accounts/``."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver
from rest_framework.routers import SimpleRouter

from gridfleet.server.exchange_accounts.views import ExchangeAccountViewSet

router = SimpleRouter()
router.register("exchange-accounts", ExchangeAccountViewSet, basename="exchange-account")

urlpatterns: list[URLPattern | URLResolver] = [*router.urls]
