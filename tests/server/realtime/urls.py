"""Test URLconf: the server's routes plus the realtime app's under ``/api/v1/`` (until the lead includes them)."""

from __future__ import annotations

from django.urls import include, path

from gridfleet.server.urls import urlpatterns as server_urlpatterns

urlpatterns = [*server_urlpatterns, path("api/v1/", include("gridfleet.server.realtime.urls"))]
