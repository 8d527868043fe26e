"""Query filters of the bot list: ``?status=running&symbol=BTC/USDT&mode=paper&group=3``."""

from __future__ import annotations

import django_filters

from gridfleet.server.bots.models import Bot, BotMode, BotStatus, RiskTemplate


class BotFilter(django_filters.FilterSet):
    """Filter bots by status, symbol (case-insensitive), mode, group, strategy, exchange and account."""

    status = django_filters.MultipleChoiceFilter(choices=BotStatus.choices)
    symbol = django_filters.CharFilter(field_name="symbol", lookup_expr="iexact")
    mode = django_filters.ChoiceFilter(choices=BotMode.choices)
    group = django_filters.NumberFilter(field_name="groups", label="group id")
    strategy = django_filters.CharFilter()
    exchange = django_filters.CharFilter(lookup_expr="iexact")
    # plain numbers: a model-choice filter would answer "invalid choice" for ids that do not exist, which tells a
    # caller which ids exist outside their scope
    exchange_account = django_filters.NumberFilter(field_name="exchange_account_id", label="exchange account id")

    class Meta:
        model = Bot
        fields = ["status", "symbol", "mode", "group", "strategy", "exchange", "exchange_account"]


class RiskTemplateFilter(django_filters.FilterSet):
    """Filter risk templates by owner id (a plain number, for the same reason as above)."""

    owner = django_filters.NumberFilter(field_name="owner_id", label="owner user id")

    class Meta:
        model = RiskTemplate
        fields = ["owner"]
