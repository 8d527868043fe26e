"""API routes of this app: /analytics/bots/{id}/, /analytics/users/{id}/, /analytics/me/, /backtests/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from rest_framework.routers import SimpleRouter

from gridfleet.server.analytics import views

router = SimpleRouter()
router.register("backtests", views.BacktestJobViewSet, basename="backtest")

urlpatterns: list[URLPattern | URLResolver] = [
    path("analytics/bots/<int:pk>/", views.BotAnalyticsView.as_view(), name="analytics-bot"),
    path("analytics/users/<int:pk>/", views.UserAnalyticsView.as_view(), name="analytics-user"),
    path("analytics/me/", views.MyAnalyticsView.as_view(), name="analytics-me"),
    path("", include(router.urls)),
]
