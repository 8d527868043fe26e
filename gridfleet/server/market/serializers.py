"""Request and response shapes of the market-data, strategy and preview endpoints (documented in the schema)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from gridfleet.server.market.venue import MAX_CANDLES, TIMEFRAMES_MS

DECIMAL_HELP = "decimal string"
SYMBOL_PATTERN = r"^[A-Za-z0-9]{1,16}/[A-Za-z0-9]{1,16}$"


def _dec(help_text: str = DECIMAL_HELP, **kwargs: Any) -> serializers.CharField:
    return serializers.CharField(help_text=help_text, **kwargs)


class MarketErrorSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """The venue could not be read: ``detail`` says why (shown to the user as is)."""

    detail = serializers.CharField()
    code = serializers.CharField(help_text="venue_unavailable (503) or venue_error (502)")


class MarketQuerySerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Which market: an exchange (ccxt id) and a symbol, optionally through one of your exchange accounts."""

    exchange = serializers.CharField(required=False, allow_blank=True, max_length=32,
                                     help_text="ccxt exchange id (default: the account's exchange, else binance)")
    symbol = serializers.RegexField(SYMBOL_PATTERN, max_length=32, help_text="BASE/QUOTE, e.g. BTC/USDT",
                                    error_messages={"invalid": "expected BASE/QUOTE, e.g. BTC/USDT"})
    account = serializers.IntegerField(required=False, min_value=1, max_value=2**62,
                                       help_text="id of one of your exchange accounts: its api_url is used")

    def validate_symbol(self, value: str) -> str:
        """Normalise to upper-case BASE/QUOTE."""
        value = value.strip().upper()
        if value.count("/") != 1 or not all(part.isalnum() for part in value.split("/")):
            raise serializers.ValidationError("expected BASE/QUOTE, e.g. BTC/USDT")
        return value


class CandlesQuerySerializer(MarketQuerySerializer):
    """Recent candles of one market."""

    timeframe = serializers.ChoiceField(choices=list(TIMEFRAMES_MS), default="1h")
    limit = serializers.IntegerField(default=200, min_value=1, max_value=MAX_CANDLES)
    since = serializers.IntegerField(required=False, min_value=0, max_value=2**53,
                                     help_text="first candle's open time, Unix ms (default: the latest candles)")


class MarketRulesSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Precision and limits of a market (null: no rule)."""

    symbol = serializers.CharField()
    base = serializers.CharField()
    quote = serializers.CharField()
    tick_size = _dec(allow_null=True)
    step_size = _dec(allow_null=True)
    min_qty = _dec(allow_null=True)
    max_qty = _dec(allow_null=True)
    min_price = _dec(allow_null=True)
    max_price = _dec(allow_null=True)
    min_notional = _dec(allow_null=True)
    max_notional = _dec(allow_null=True)


class CandlesSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Candles, oldest first: ``[open_time_ms, open, high, low, close, volume]`` (numbers as decimal strings)."""

    exchange = serializers.CharField()
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    candles = serializers.ListField(child=serializers.ListField(), help_text="[[ts_ms, o, h, l, c, v], …]")


class TickerSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """The last traded price and the market's rules."""

    exchange = serializers.CharField()
    symbol = serializers.CharField()
    price = _dec()
    timestamp = serializers.IntegerField(help_text="Unix ms")
    market = MarketRulesSerializer()


class StrategySerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A registered strategy and the JSON Schema of its config (form-friendly: see docs/server-web-api.md)."""

    name = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    supports_preview = serializers.BooleanField()
    supports_live_edit = serializers.BooleanField()
    config_schema = serializers.JSONField()
    example_config = serializers.JSONField()


class PreviewRequestSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A config to lay out on a market; the venue gives the price and the rules unless ``price``/``offline``."""

    strategy = serializers.CharField(default="grid", max_length=32)
    exchange = serializers.CharField(required=False, allow_blank=True, max_length=32,
                                     help_text="ccxt exchange id (default: the account's exchange, else binance)")
    symbol = serializers.CharField(required=False, allow_blank=True, max_length=32,
                                   help_text="BASE/QUOTE (default: the config's symbol)")
    config = serializers.JSONField(help_text="the strategy config (GET /api/v1/strategies/ has its schema)")
    exchange_account = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=2**62,
                                                help_text="one of your exchange accounts (its api_url is used)")
    mode = serializers.ChoiceField(choices=["paper", "live"], default="paper")
    price = serializers.DecimalField(max_digits=38, decimal_places=18, required=False, allow_null=True,
                                     min_value=0, help_text="start price (default: the venue's last price)")
    offline = serializers.BooleanField(default=False, help_text="do not ask the venue (no rules, price given or "
                                                                "mid-range)")

    def validate_symbol(self, value: str) -> str:
        """Normalise to upper-case BASE/QUOTE."""
        return MarketQuerySerializer.validate_symbol(self, value) if value.strip() else ""  # type: ignore[arg-type]

    def validate_price(self, value: Any) -> Any:
        """Positive only."""
        if value is not None and value <= 0:
            raise serializers.ValidationError("must be positive")
        return value


class PreviewWarningSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Something to fix or know before starting."""

    code = serializers.CharField(help_text="levels_too_dense, thin_spacing, order_refused, initial_buy_refused, "
                                           "price_outside_range, investment_short, investment_unused, "
                                           "market_unavailable, price_unavailable, live_without_account, "
                                           "insufficient_balance, balance_unavailable")
    severity = serializers.ChoiceField(choices=["warning", "error"])
    message = serializers.CharField()
    level = serializers.IntegerField(allow_null=True)


class PreviewLevelSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """One level and the order the bot starts with there."""

    level = serializers.IntegerField()
    price = _dec()
    side = serializers.ChoiceField(choices=["buy", "sell", "empty", "off"])
    layer = serializers.IntegerField(allow_null=True)
    qty = _dec(allow_null=True)
    notional = _dec(allow_null=True)
    order = serializers.CharField(allow_null=True, help_text="limit, trailing (rebound/pullback) or null")
    refused = serializers.CharField(allow_null=True, help_text="the venue's reason when it would refuse the order")
    note = serializers.CharField()


class PreviewLayerSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """One layer (interval) and what a round trip earns after fees."""

    index = serializers.IntegerField()
    buy_price = _dec()
    sell_price = _dec()
    qty = _dec()
    enabled = serializers.BooleanField()
    side = serializers.ChoiceField(choices=["buy", "sell"])
    rebound_pct = _dec()
    pullback_pct = _dec()
    take_profit_pct = _dec(allow_null=True)
    spacing_pct = _dec()
    profit = _dec(help_text="quote earned by one round trip after fees")
    profit_pct = _dec()


class InvestmentSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Money the layout needs at the price."""

    quote_for_buys = _dec(help_text="Σ price × qty of the resting buys")
    base_for_sells = _dec(help_text="base the sell layers hold")
    initial_buy_quote = _dec(help_text="quote the initial market buy of that base costs (with slippage)")
    fee_reserve = _dec()
    total_quote = _dec(help_text="everything in quote, starting from quote only")
    quote_with_base = _dec(help_text="quote needed when you already hold base_for_sells")
    configured = _dec(allow_null=True, help_text="the config's investment")


class BalancesSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Free balances of the account (live previews by the account's owner)."""

    base = _dec()
    quote = _dec()
    needed_quote = _dec(help_text="quote the layout needs given the base held")


class PreviewSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """The layout a grid starts with (all amounts decimal strings)."""

    strategy = serializers.CharField()
    exchange = serializers.CharField()
    symbol = serializers.CharField()
    base = serializers.CharField()
    quote = serializers.CharField()
    mode = serializers.CharField()
    price = _dec()
    price_source = serializers.ChoiceField(choices=["given", "ticker", "mid_range"])
    price_timestamp = serializers.IntegerField(allow_null=True)
    market = MarketRulesSerializer(allow_null=True, help_text="null when the venue could not be read")
    qty_per_order = _dec()
    empty_level = serializers.IntegerField()
    buy_orders = serializers.IntegerField()
    sell_orders = serializers.IntegerField()
    investment = InvestmentSerializer()
    min_spacing_pct = _dec()
    max_spacing_pct = _dec()
    profit_per_grid_pct = serializers.DictField(child=serializers.CharField(), help_text="{min, max} after fees")
    levels = PreviewLevelSerializer(many=True)
    layers = PreviewLayerSerializer(many=True)
    warnings = PreviewWarningSerializer(many=True)
    balances = BalancesSerializer(allow_null=True, help_text="live mode with your own account: its free balances")
    config = serializers.JSONField(help_text="the validated config, defaults filled in")
