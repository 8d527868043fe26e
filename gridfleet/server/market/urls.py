"""API routes of this app: /strategies/, /grid/preview/, /market/candles/, /market/ticker/, /market/rules/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from gridfleet.server.market import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("strategies/", views.StrategyListView.as_view(), name="strategy-list"),
    path("grid/preview/", views.GridPreviewView.as_view(), name="grid-preview"),
    path("market/candles/", views.CandlesView.as_view(), name="market-candles"),
    path("market/ticker/", views.TickerView.as_view(), name="market-ticker"),
    path("market/rules/", views.MarketRulesView.as_view(), name="market-rules"),
]
