"""API routes of the billing ledger app (included under ``/api/v1/``)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from gridfleet.server.billing import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("billing/balance/", views.BalanceView.as_view(), name="billing-balance"),
    path("billing/entries/", views.EntryListView.as_view(), name="billing-entries"),
    path("billing/credit/", views.CreditView.as_view(), name="billing-credit"),
    path("billing/vouchers/", views.VoucherView.as_view(), name="billing-vouchers"),
    path("billing/redeem/", views.RedeemView.as_view(), name="billing-redeem"),
    path("billing/payments/", views.PaymentView.as_view(), name="billing-payments"),
    path("billing/payments/<int:pk>/confirm/", views.PaymentConfirmView.as_view(), name="billing-payment-confirm"),
    path("billing/payments/webhook/<str:provider>/", views.PaymentWebhookView.as_view(),
         name="billing-payment-webhook"),
    path("billing/payouts/", views.PayoutView.as_view(), name="billing-payouts"),
    path("billing/payouts/<int:pk>/approve/", views.PayoutApproveView.as_view(), name="billing-payout-approve"),
    path("billing/payouts/<int:pk>/reject/", views.PayoutRejectView.as_view(), name="billing-payout-reject"),
]
