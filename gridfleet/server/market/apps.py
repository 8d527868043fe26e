"""The market-data and strategy endpoints the web client's bot editor needs (no models)."""

from __future__ import annotations

from django.apps import AppConfig


class MarketConfig(AppConfig):
    """Strategies and their schemas, grid previews, candles, tickers and market rules."""

    name = "gridfleet.server.market"
    label = "market"
    verbose_name = "market data and previews"
