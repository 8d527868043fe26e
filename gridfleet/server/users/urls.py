"""API routes of this app: ``auth/…``, ``users/…``, ``agents/…`` (included under ``/api/v1/``)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path
from rest_framework.routers import SimpleRouter

from gridfleet.server.users import views

router = SimpleRouter()
router.register("users", views.UserViewSet, basename="user")

urlpatterns: list[URLPattern | URLResolver] = [
    path("auth/register/", views.RegisterView.as_view(), name="auth-register"),
    path("auth/token/", views.LoginView.as_view(), name="auth-token"),
    path("auth/token/refresh/", views.RefreshView.as_view(), name="auth-token-refresh"),
    path("auth/logout/", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/me/", views.MeView.as_view(), name="auth-me"),
    path("auth/password/change/", views.PasswordChangeView.as_view(), name="auth-password-change"),
    path("auth/password/reset/", views.PasswordResetView.as_view(), name="auth-password-reset"),
    path("auth/password/reset/confirm/", views.PasswordResetConfirmView.as_view(),
         name="auth-password-reset-confirm"),
    path("agents/referral-code/", views.ReferralCodeView.as_view(), name="agent-referral-code"),
    path("agents/me/clients/", views.AgentClientsView.as_view(), name="agent-clients"),
    *router.urls,
]
