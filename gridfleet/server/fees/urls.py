"""API routes of the fees app (included under ``/api/v1/``)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path
from rest_framework.routers import SimpleRouter

from gridfleet.server.fees import views

router = SimpleRouter()
router.register("billing/statements", views.StatementViewSet, basename="fee-statement")

urlpatterns: list[URLPattern | URLResolver] = [
    path("billing/settle/", views.SettleView.as_view(), name="billing-settle"),
    path("billing/fee-settings/", views.FeeSettingsView.as_view(), name="billing-fee-settings"),
    path("billing/fee-rates/<int:user_id>/", views.FeeRateView.as_view(), name="billing-fee-rate"),
    path("billing/agent-commissions/<int:agent_id>/", views.CommissionRateView.as_view(),
         name="billing-agent-commission"),
    path("billing/bots/<int:bot_id>/capital/", views.CapitalView.as_view(), name="billing-bot-capital"),
    path("billing/revenue/", views.RevenueView.as_view(), name="billing-revenue"),
    path("billing/guard/", views.GuardView.as_view(), name="billing-guard"),
    path("agents/me/", views.AgentSummaryView.as_view(), name="agent-summary"),
    *router.urls,
]
