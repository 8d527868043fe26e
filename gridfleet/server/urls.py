"""URL routes: the versioned API, the OpenAPI schema and docs, and the built web UI."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/v1/", include("gridfleet.server.users.urls")),
    path("api/v1/", include("gridfleet.server.exchange_accounts.urls")),
    path("api/v1/", include("gridfleet.server.bots.urls")),
    path("api/v1/", include("gridfleet.server.trading.urls")),
    path("api/v1/", include("gridfleet.server.analytics.urls")),
    path("api/v1/", include("gridfleet.server.realtime.urls")),
    path("api/v1/", include("gridfleet.server.billing.urls")),
    path("api/v1/", include("gridfleet.server.fees.urls")),
    path("api/v1/", include("gridfleet.server.market.urls")),
    path("", include("gridfleet.server.web")),  # the built web UI (last: it never matches api/, ws/, static/)
]
