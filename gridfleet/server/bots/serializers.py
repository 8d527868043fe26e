"""Serializers of bots, config snapshots, groups, risk templates and the action/batch payloads."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from gridfleet.engine.strategy import available_strategies
from gridfleet.server.bots.models import Bot, BotGroup, BotMode, ConfigSnapshot, RiskTemplate
from gridfleet.server.bots.services import ACTIVE, ConfigInvalid, validate_config, validate_rules
from gridfleet.server.exchange_accounts.models import ExchangeAccount


def _request_user(serializer: serializers.BaseSerializer[Any]) -> Any:
    request = serializer.context.get("request")
    return getattr(request, "user", None)


class BotSerializer(serializers.ModelSerializer[Bot]):
    """A bot. ``config`` is validated by the engine and stored normalised (amounts as strings)."""

    owner = serializers.PrimaryKeyRelatedField(read_only=True)
    strategy = serializers.CharField(max_length=32, default="grid")
    exchange_account = serializers.PrimaryKeyRelatedField(
        queryset=ExchangeAccount.objects.all(), required=False, allow_null=True,
        help_text="required for live bots; one of the bot owner's accounts",
    )
    config = serializers.JSONField(help_text="the strategy config (see `gridfleet config schema`)")
    groups = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    config_version = serializers.SerializerMethodField()

    class Meta:
        model = Bot
        fields = ["id", "owner", "name", "strategy", "mode", "exchange", "symbol", "exchange_account", "config",
                  "config_version", "status", "status_message", "runtime_id", "groups", "created_at", "updated_at"]
        read_only_fields = ["id", "owner", "status", "status_message", "runtime_id", "groups", "created_at",
                            "updated_at", "config_version"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        bot = self.instance if isinstance(self.instance, Bot) else None
        owner = bot.owner if bot is not None else _request_user(self)
        field: Any = self.fields["exchange_account"]
        field.queryset = (ExchangeAccount.objects.filter(owner=owner) if getattr(owner, "pk", None)
                          else ExchangeAccount.objects.none())

    def get_config_version(self, bot: Bot) -> int | None:
        """Return the version of the current config (its latest snapshot)."""
        latest = bot.snapshots.order_by("-version").values_list("version", flat=True).first()
        return int(latest) if latest is not None else None

    def validate_strategy(self, value: str) -> str:
        """Accept registered strategies only."""
        if value not in available_strategies():
            raise serializers.ValidationError(f"unknown strategy (known: {', '.join(available_strategies())})")
        return value

    def validate_symbol(self, value: str) -> str:
        """Normalise the symbol to upper case ``BASE/QUOTE``."""
        value = value.strip().upper()
        if value.count("/") != 1 or not all(value.split("/")):
            raise serializers.ValidationError("expected BASE/QUOTE, e.g. BTC/USDT")
        return value

    def validate_exchange(self, value: str) -> str:
        """Lower-case the exchange id."""
        return value.strip().lower()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Check the account (owner's, same exchange; required for live) and the config (engine, symbol)."""
        bot: Bot | None = self.instance  # type: ignore[assignment]
        owner = bot.owner if bot is not None else _request_user(self)

        def current(name: str, default: Any = None) -> Any:
            if name in attrs:
                return attrs[name]
            return getattr(bot, name) if bot is not None else default

        if bot is not None and bot.status in ACTIVE:
            locked = [n for n in ("strategy", "mode", "exchange", "symbol", "exchange_account")
                      if n in attrs and attrs[n] != getattr(bot, n)]
            if locked:
                raise serializers.ValidationError({n: "stop the bot before changing this" for n in locked})
        account: ExchangeAccount | None = current("exchange_account")
        mode = current("mode", BotMode.PAPER)
        exchange = current("exchange", "binance")
        if account is not None:
            if owner is None or account.owner_id != owner.pk:
                raise serializers.ValidationError({"exchange_account": "no such exchange account"})
            if account.exchange != exchange:
                raise serializers.ValidationError(
                    {"exchange_account": f"this account is on {account.exchange}, the bot on {exchange}"})
        if mode == BotMode.LIVE and account is None:
            raise serializers.ValidationError({"exchange_account": "a live bot needs an exchange account"})
        if "config" in attrs or bot is None or "symbol" in attrs or "strategy" in attrs:
            config = attrs.get("config", bot.config if bot is not None else None)
            try:
                attrs["config"] = validate_config(current("strategy", "grid"), config, current("symbol"))
            except ConfigInvalid as exc:
                raise serializers.ValidationError({"config": exc.errors}) from None
        return attrs


class ConfigChangeRowSerializer(serializers.Serializer[Any]):
    """One changed config value, ready for a diff table."""

    path = serializers.CharField(help_text='dotted path, e.g. "grid.lower" or "layers" (lists compare whole)')
    kind = serializers.ChoiceField(choices=["changed", "added", "removed"])
    old = serializers.JSONField(allow_null=True)
    new = serializers.JSONField(allow_null=True)


def diff_rows(diff: Any) -> list[dict[str, Any]]:
    """Return a stored ``{"a.b": {"old", "new", "added"?, "removed"?}}`` diff as sorted rows for a table."""
    rows = []
    for path, change in sorted((diff or {}).items()):
        if not isinstance(change, dict):
            continue
        kind = "added" if change.get("added") else "removed" if change.get("removed") else "changed"
        rows.append({"path": path, "kind": kind, "old": change.get("old"), "new": change.get("new")})
    return rows


class ConfigSnapshotSerializer(serializers.ModelSerializer[ConfigSnapshot]):
    """An immutable config version: who changed what, when (``changes``: the diff as rows)."""

    created_by = serializers.PrimaryKeyRelatedField(read_only=True)
    created_by_username = serializers.CharField(source="created_by.username", read_only=True, default=None)
    changes = serializers.SerializerMethodField()

    class Meta:
        model = ConfigSnapshot
        fields = ["id", "bot", "version", "config", "diff", "changes", "created_by", "created_by_username",
                  "created_at", "note"]
        read_only_fields = fields

    @extend_schema_field(ConfigChangeRowSerializer(many=True))
    def get_changes(self, snapshot: ConfigSnapshot) -> list[dict[str, Any]]:
        """Return the diff against the previous version as rows (path, kind, old, new)."""
        return diff_rows(snapshot.diff)


class BotErrorSerializer(serializers.Serializer[Any]):
    """An error: why the request was refused."""

    detail = serializers.CharField()


class StopSerializer(serializers.Serializer[Any]):
    """Options of ``stop``."""

    cancel_orders = serializers.BooleanField(default=True)
    sell_all = serializers.BooleanField(default=False)


class ConfigChangeSerializer(serializers.Serializer[Any]):
    """A new config; with ``dry_run`` only the diff is returned."""

    config = serializers.JSONField()
    dry_run = serializers.BooleanField(default=False)
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class ConfigChangeResultSerializer(serializers.Serializer[Any]):
    """Outcome of a config change."""

    dry_run = serializers.BooleanField()
    changed = serializers.BooleanField()
    diff = serializers.JSONField(help_text='{"grid.lower": {"old": "100", "new": "90"}, …}')
    applied = serializers.BooleanField(help_text="pushed to the running bot")
    version = serializers.IntegerField(allow_null=True)
    config = serializers.JSONField()


class BotTargetSerializer(serializers.Serializer[Any]):
    """Which bots: a list of ids or a group (exactly one)."""

    bot_ids = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=1000)
    group = serializers.IntegerField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Require exactly one of ``bot_ids`` and ``group``."""
        if ("bot_ids" in attrs) == ("group" in attrs):
            raise serializers.ValidationError("give either bot_ids or group")
        return attrs


BATCH_ACTIONS = ("start", "pause", "resume", "stop", "apply_risk_template", "edit")


class BatchSerializer(BotTargetSerializer):
    """A batch operation. ``params``: stop → {cancel_orders, sell_all}; apply_risk_template → {template};
    edit → {config: JSON merge patch applied to each bot's config}."""

    action = serializers.ChoiceField(choices=BATCH_ACTIONS)
    params = serializers.DictField(required=False, default=dict)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Check the parameters each action needs."""
        attrs = super().validate(attrs)
        params = attrs["params"]
        if attrs["action"] == "apply_risk_template" and not isinstance(params.get("template"), int):
            raise serializers.ValidationError({"params": {"template": "the id of a risk template is required"}})
        if attrs["action"] == "edit" and not isinstance(params.get("config"), dict):
            raise serializers.ValidationError({"params": {"config": "an object (merge patch) is required"}})
        if attrs["action"] == "stop":
            stop = StopSerializer(data=params)
            if not stop.is_valid():
                raise serializers.ValidationError({"params": stop.errors})
            attrs["params"] = stop.validated_data
        return attrs


class BatchResultSerializer(serializers.Serializer[Any]):
    """One bot's result in a batch."""

    bot = serializers.IntegerField()
    ok = serializers.BooleanField()
    error = serializers.CharField(required=False)
    status = serializers.CharField(required=False)
    version = serializers.IntegerField(required=False)


class BatchResponseSerializer(serializers.Serializer[Any]):
    """Per-bot results (never all-or-nothing)."""

    action = serializers.CharField()
    ok = serializers.IntegerField(help_text="number of bots that succeeded")
    failed = serializers.IntegerField()
    results = BatchResultSerializer(many=True)


class BotGroupSerializer(serializers.ModelSerializer[BotGroup]):
    """A group (fleet) of the owner's bots."""

    owner = serializers.PrimaryKeyRelatedField(read_only=True)
    bot_ids = serializers.ListField(child=serializers.IntegerField(), required=False,
                                    help_text="ids of the owner's bots in the group")

    class Meta:
        model = BotGroup
        fields = ["id", "owner", "name", "bot_ids", "created_at"]
        read_only_fields = ["id", "owner", "created_at"]

    def to_representation(self, instance: BotGroup) -> dict[str, Any]:
        """Add the member ids."""
        return {
            "id": instance.pk, "owner": instance.owner_id, "name": instance.name,
            "bot_ids": sorted(instance.bots.values_list("pk", flat=True)),
            "created_at": serializers.DateTimeField().to_representation(instance.created_at),
        }

    def validate_name(self, value: str) -> str:
        """Names are unique per owner."""
        group: BotGroup | None = self.instance  # type: ignore[assignment]
        owner = group.owner if group is not None else _request_user(self)
        clash = BotGroup.objects.filter(owner=owner, name=value)
        if group is not None:
            clash = clash.exclude(pk=group.pk)
        if clash.exists():
            raise serializers.ValidationError("you already have a group with this name")
        return value

    def validate_bot_ids(self, value: list[int]) -> list[int]:
        """Only the group owner's bots."""
        group: BotGroup | None = self.instance  # type: ignore[assignment]
        owner = group.owner if group is not None else _request_user(self)
        found = set(Bot.objects.filter(owner=owner, pk__in=value).values_list("pk", flat=True))
        missing = sorted(set(value) - found)
        if missing:
            raise serializers.ValidationError(f"no such bots: {', '.join(map(str, missing))}")
        return sorted(set(value))

    def create(self, validated_data: dict[str, Any]) -> BotGroup:
        """Create the group and set its members."""
        bot_ids = validated_data.pop("bot_ids", [])
        group = BotGroup.objects.create(**validated_data)
        group.bots.set(bot_ids)
        return group

    def update(self, instance: BotGroup, validated_data: dict[str, Any]) -> BotGroup:
        """Rename and/or replace the members."""
        bot_ids = validated_data.pop("bot_ids", None)
        for name, value in validated_data.items():
            setattr(instance, name, value)
        instance.save()
        if bot_ids is not None:
            instance.bots.set(bot_ids)
        return instance


class BotIdsSerializer(serializers.Serializer[Any]):
    """Bots to add to or remove from a group."""

    bot_ids = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=1000)


class RiskTemplateSerializer(serializers.ModelSerializer[RiskTemplate]):
    """A named rule set. ``shared`` templates (owner null) are visible to all and editable by admins only."""

    owner = serializers.PrimaryKeyRelatedField(read_only=True)
    shared = serializers.BooleanField(required=False, help_text="admins only: share with everyone")
    rules = serializers.JSONField(help_text="a list of engine risk rules (docs/risk.md)")

    class Meta:
        model = RiskTemplate
        fields = ["id", "owner", "shared", "name", "description", "rules", "created_at", "updated_at"]
        read_only_fields = ["id", "owner", "created_at", "updated_at"]

    def validate_rules(self, value: Any) -> list[dict[str, Any]]:
        """Validate every rule with the engine's RiskRule."""
        try:
            return validate_rules(value)
        except ConfigInvalid as exc:
            raise serializers.ValidationError(exc.errors) from None

    def validate_shared(self, value: bool) -> bool:
        """Only admins share templates."""
        user = _request_user(self)
        instance: RiskTemplate | None = self.instance  # type: ignore[assignment]
        was = instance is not None and instance.owner_id is None
        if value != was and not (user is not None and user.is_admin_role):
            raise serializers.ValidationError("only admins can share templates")
        return value

    def validate_name(self, value: str) -> str:
        """Reject an empty name."""
        if not value.strip():
            raise serializers.ValidationError("a name is required")
        return value.strip()


def visible_templates(user: Any) -> Q:
    """Return the filter of the risk templates ``user`` can see (own/clients' by scope, plus shared)."""
    if user.is_admin_role:
        return Q()
    if user.role == "agent":
        return Q(owner__isnull=True) | Q(owner=user) | Q(owner__agent=user)
    return Q(owner__isnull=True) | Q(owner=user)

