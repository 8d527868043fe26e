"""Strategies (with their config schema), grid previews, and public market data (candles, ticker, rules)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gridfleet.server.market import venue
from gridfleet.server.market.previews import build_preview, resolve_exchange, visible_account
from gridfleet.server.market.schemas import strategies
from gridfleet.server.market.serializers import (
    CandlesQuerySerializer,
    CandlesSerializer,
    MarketErrorSerializer,
    MarketQuerySerializer,
    MarketRulesSerializer,
    PreviewRequestSerializer,
    PreviewSerializer,
    StrategySerializer,
    TickerSerializer,
)

VENUE_ERRORS = {
    400: OpenApiResponse(description="bad parameters (messages per field), or a symbol the venue does not trade"),
    404: OpenApiResponse(description="the exchange account is not yours"),
    502: OpenApiResponse(response=MarketErrorSerializer, description="the venue answered with an error"),
    503: OpenApiResponse(response=MarketErrorSerializer, description="the venue cannot be reached (no network, "
                                                                    "timeout, rate limit)"),
}


def _venue_error(exc: venue.MarketDataError) -> Response:
    if isinstance(exc, venue.UnknownMarket):
        raise ValidationError({exc.field: [exc.message]})
    code = "venue_unavailable" if isinstance(exc, venue.VenueUnavailable) else "venue_error"
    return Response({"detail": exc.message, "code": code}, status=exc.status)


def _market_query(request: Request, serializer_class: type[MarketQuerySerializer]) -> tuple[dict[str, Any], str,
                                                                                             str | None]:
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    data = dict(query.validated_data)
    account = visible_account(request.user, data.get("account"))
    exchange, api_url = resolve_exchange(data.get("exchange"), account)
    return data, exchange, api_url


class StrategyListView(APIView):
    """The registered strategies."""

    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Registered strategies with the JSON Schema of their config and an example config",
                   responses=StrategySerializer(many=True), tags=["strategies"])
    def get(self, request: Request) -> Response:
        """Return every strategy (name, title, description, config_schema, example_config)."""
        return Response(strategies())


class GridPreviewView(APIView):
    """What a grid config starts with on a market."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Preview a grid: levels, orders, investment needed, profit per grid, warnings",
        request=PreviewRequestSerializer,
        responses={200: PreviewSerializer,
                   400: OpenApiResponse(description="invalid config (messages per field under `config`) or input"),
                   404: OpenApiResponse(description="the exchange account is not yours")},
        tags=["strategies"])
    def post(self, request: Request) -> Response:
        """Lay the config out at the venue's last price (or ``price``) with the market's precision and limits.

        When the venue cannot be reached the preview is still computed (without rounding and limit checks, at
        the given price or the middle of the range) with a ``market_unavailable`` warning.
        """
        body = PreviewRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(build_preview(request.user, dict(body.validated_data)))


class CandlesView(APIView):
    """Recent OHLCV candles of a market (for the preview chart)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Recent candles of a market (cached briefly)", parameters=[CandlesQuerySerializer],
                   responses={200: CandlesSerializer, **VENUE_ERRORS}, tags=["market"])
    def get(self, request: Request) -> Response:
        """Return up to ``limit`` candles of ``timeframe``, oldest first, numbers as decimal strings."""
        data, exchange, api_url = _market_query(request, CandlesQuerySerializer)
        try:
            rows = venue.candles(exchange, data["symbol"], data["timeframe"], data["limit"], api_url,
                                 data.get("since"))
        except venue.MarketDataError as exc:
            return _venue_error(exc)
        return Response({"exchange": exchange, "symbol": data["symbol"], "timeframe": data["timeframe"],
                         "candles": rows})


class TickerView(APIView):
    """The last price of a market, with its rules."""

    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Last price and trading rules of a market (cached briefly)",
                   parameters=[MarketQuerySerializer], responses={200: TickerSerializer, **VENUE_ERRORS},
                   tags=["market"])
    def get(self, request: Request) -> Response:
        """Return the last traded price and the market's precision and limits."""
        data, exchange, api_url = _market_query(request, MarketQuerySerializer)
        try:
            rules = venue.market_rules(exchange, data["symbol"], api_url)
            ticker = venue.last_price(exchange, data["symbol"], api_url)
        except venue.MarketDataError as exc:
            return _venue_error(exc)
        from gridfleet.server.trading.exports import decimal_str

        return Response({"exchange": exchange, "symbol": data["symbol"], "price": decimal_str(ticker["price"]),
                         "timestamp": ticker["timestamp"], "market": venue.rules_to_dict(rules)})


class MarketRulesView(APIView):
    """Precision and limits of a market."""

    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Precision and limits of a market (ccxt load_markets, cached an hour)",
                   parameters=[MarketQuerySerializer], responses={200: MarketRulesSerializer, **VENUE_ERRORS},
                   tags=["market"])
    def get(self, request: Request) -> Response:
        """Return tick size, step size and the min/max limits (null: no rule)."""
        data, exchange, api_url = _market_query(request, MarketQuerySerializer)
        try:
            rules = venue.market_rules(exchange, data["symbol"], api_url)
        except venue.MarketDataError as exc:
            return _venue_error(exc)
        return Response(venue.rules_to_dict(rules), status=status.HTTP_200_OK)
