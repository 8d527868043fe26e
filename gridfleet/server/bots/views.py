"""Bot, group and risk-template endpoints: CRUD, lifecycle actions, config changes with snapshots, batches."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import ProtectedError, QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from gridfleet.server.bots.filters import BotFilter, RiskTemplateFilter
from gridfleet.server.bots.models import Bot, BotGroup, ConfigSnapshot, RiskTemplate
from gridfleet.server.bots.serializers import (
    BatchResponseSerializer,
    BatchSerializer,
    BotErrorSerializer,
    BotGroupSerializer,
    BotIdsSerializer,
    BotSerializer,
    BotTargetSerializer,
    ConfigChangeResultSerializer,
    ConfigChangeSerializer,
    ConfigSnapshotSerializer,
    RiskTemplateSerializer,
    StopSerializer,
    visible_templates,
)
from gridfleet.server.bots.services import (
    ACTIVE,
    BotOperationError,
    ConfigChange,
    ConfigInvalid,
    change_config,
    merge_patch,
    run_action,
)
from gridfleet.server.bots.state import BotStateSerializer, bot_state
from gridfleet.server.users.permissions import OwnerWritePermission, can_modify, scope_queryset

logger = logging.getLogger(__name__)

ERROR = OpenApiResponse(response=BotErrorSerializer, description="refused (bad state, runtime failure): {detail}")


def _error(exc: BotOperationError) -> Response:
    if isinstance(exc, ConfigInvalid):
        return Response({"config": exc.errors}, status=status.HTTP_400_BAD_REQUEST)
    return Response({"detail": str(exc)}, status=exc.status)


def _change_result(change: ConfigChange) -> dict[str, Any]:
    return {"dry_run": change.dry_run, "changed": bool(change.diff), "diff": change.diff, "applied": change.applied,
            "version": change.snapshot.version if change.snapshot is not None else None, "config": change.config}


def _store_initial_snapshot(bot: Bot, user: Any) -> None:
    ConfigSnapshot.objects.create(bot=bot, version=1, config=bot.config, diff={}, created_by=user, note="created")


def resolve_targets(user: Any, target: dict[str, Any]) -> tuple[list[Bot], list[dict[str, Any]]]:
    """Return (bots the caller may change, error results for the others) for ``bot_ids`` or ``group``."""
    visible = scope_queryset(Bot.objects.all(), user)
    errors: list[dict[str, Any]] = []
    if "group" in target:
        group = scope_queryset(BotGroup.objects.all(), user).filter(pk=target["group"]).first()
        if group is None:
            raise ValidationError({"group": "no such group"})
        candidates = list(visible.filter(groups=group).select_related("owner"))
    else:
        ids = list(dict.fromkeys(target["bot_ids"]))
        found = {b.pk: b for b in visible.filter(pk__in=ids).select_related("owner")}
        candidates = []
        for pk in ids:
            if pk in found:
                candidates.append(found[pk])
            else:
                errors.append({"bot": pk, "ok": False, "error": "not found"})
    bots = []
    for bot in candidates:
        if can_modify(user, bot.owner):
            bots.append(bot)
        else:
            errors.append({"bot": bot.pk, "ok": False, "error": "read-only: not your bot"})
    return bots, errors


def _batch_response(name: str, results: list[dict[str, Any]]) -> Response:
    results.sort(key=lambda r: r["bot"])
    ok = sum(1 for r in results if r["ok"])
    return Response({"action": name, "ok": ok, "failed": len(results) - ok, "results": results})


def _apply_template(bot: Bot, template: RiskTemplate, user: Any) -> dict[str, Any]:
    config = {**bot.config, "risk": template.rules}
    try:
        change = change_config(bot, config, user, note=f"risk template {template.name}"[:200])
    except ConfigInvalid as exc:
        return {"bot": bot.pk, "ok": False, "error": f"config: {exc}"}
    except BotOperationError as exc:
        return {"bot": bot.pk, "ok": False, "error": str(exc)}
    result: dict[str, Any] = {"bot": bot.pk, "ok": True, "status": bot.status}
    if change.snapshot is not None:
        result["version"] = change.snapshot.version
    return result


@extend_schema_view(
    list=extend_schema(summary="List bots", tags=["bots"]),
    retrieve=extend_schema(summary="Get a bot", tags=["bots"]),
    create=extend_schema(summary="Create a bot (config validated by the engine; stores config version 1)",
                         tags=["bots"]),
    update=extend_schema(summary="Replace a bot (config changes are snapshotted)", tags=["bots"]),
    partial_update=extend_schema(summary="Change a bot (config changes are snapshotted)", tags=["bots"]),
    destroy=extend_schema(summary="Delete a stopped bot", tags=["bots"], responses={204: None, 409: ERROR}),
)
class BotViewSet(viewsets.ModelViewSet[Bot]):
    """Bots in the caller's scope; agents read their clients' bots, admins see and drive all."""

    serializer_class = BotSerializer
    permission_classes = [IsAuthenticated, OwnerWritePermission]
    filterset_class = BotFilter
    ordering_fields = ["id", "name", "symbol", "status", "created_at", "updated_at"]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Bot]:
        """Return the bots in the caller's scope."""
        qs = Bot.objects.select_related("owner").prefetch_related("groups")
        return scope_queryset(qs, self.request.user)  # type: ignore[arg-type]

    def perform_create(self, serializer: Any) -> None:
        """Create the bot for the caller with config snapshot version 1."""
        with transaction.atomic():
            bot = serializer.save(owner=self.request.user)
            _store_initial_snapshot(bot, self.request.user)
        logger.info("bot %s created by user %s", bot.pk, self.request.user.pk)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Update fields; a changed config goes through the config-change path (snapshot, runtime)."""
        partial = kwargs.pop("partial", False)
        bot = self.get_object()
        serializer = self.get_serializer(bot, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        new_config = data.pop("config", None)
        with transaction.atomic():
            for name, value in data.items():
                setattr(bot, name, value)
            if data:  # only the edited fields: the runtime may be writing the status meanwhile
                bot.save(update_fields=[*data, "updated_at"])
            if new_config is not None:
                try:
                    change_config(bot, new_config, request.user, note="edited")
                except BotOperationError as exc:
                    transaction.set_rollback(True)
                    return _error(exc)
        bot.refresh_from_db()
        return Response(self.get_serializer(bot).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Delete the bot unless it runs (stop it first)."""
        bot = self.get_object()
        if bot.status in ACTIVE:
            return Response({"detail": f"the bot is {bot.status}: stop it first"}, status=status.HTTP_409_CONFLICT)
        try:
            bot.delete()
        except ProtectedError:
            return Response({"detail": "the bot has trading records that must be kept"},
                            status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _act(self, request: Request, name: str, **options: Any) -> Response:
        bot = self.get_object()
        try:
            run_action(bot, name, **options)
        except BotOperationError as exc:
            return _error(exc)
        return Response(self.get_serializer(bot).data)

    @extend_schema(summary="Start the bot", request=None, responses={200: BotSerializer, 409: ERROR, 502: ERROR,
                                                                      503: ERROR}, tags=["bots"])
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str | None = None) -> Response:
        """Start the bot through the runtime."""
        return self._act(request, "start")

    @extend_schema(summary="Pause the bot (orders stay)", request=None,
                   responses={200: BotSerializer, 409: ERROR, 502: ERROR}, tags=["bots"])
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        """Pause the running bot."""
        return self._act(request, "pause")

    @extend_schema(summary="Resume a paused bot", request=None,
                   responses={200: BotSerializer, 409: ERROR, 502: ERROR}, tags=["bots"])
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        """Resume the paused bot."""
        return self._act(request, "resume")

    @extend_schema(summary="Stop the bot", request=StopSerializer,
                   responses={200: BotSerializer, 409: ERROR, 502: ERROR}, tags=["bots"])
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: str | None = None) -> Response:
        """Stop the bot (``cancel_orders`` default true, ``sell_all`` default false)."""
        self.get_object()  # 404/403 before validating the body
        options = StopSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        return self._act(request, "stop", **options.validated_data)

    @extend_schema(summary="Change the config (validated, diffed, snapshotted, applied when running)",
                   request=ConfigChangeSerializer,
                   responses={200: ConfigChangeResultSerializer, 400: ERROR, 409: ERROR}, tags=["bots"])
    @action(detail=True, methods=["post"], url_path="config")
    def change_config(self, request: Request, pk: str | None = None) -> Response:
        """Validate the new config; ``dry_run`` returns the diff only, otherwise store a snapshot and apply."""
        bot = self.get_object()
        body = ConfigChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            change = change_config(bot, body.validated_data["config"], request.user,
                                   dry_run=body.validated_data["dry_run"], note=body.validated_data["note"])
        except BotOperationError as exc:
            return _error(exc)
        return Response(ConfigChangeResultSerializer(_change_result(change)).data)

    @extend_schema(summary="List the bot's config snapshots (versions)",
                   responses=ConfigSnapshotSerializer(many=True), tags=["bots"])
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def snapshots(self, request: Request, pk: str | None = None) -> Response:
        """Return every config version, oldest first."""
        bot = self.get_object()
        snapshots = bot.snapshots.select_related("created_by").order_by("version")
        return Response(ConfigSnapshotSerializer(snapshots, many=True).data)

    @extend_schema(summary="Live state: price, open orders, layers (trailing triggers), position, PnL, level profit",
                   responses=BotStateSerializer, tags=["bots"])
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def state(self, request: Request, pk: str | None = None) -> Response:
        """Return the bot's state from the in-process runtime when it runs here, else from the database."""
        return Response(bot_state(self.get_object()))

    @extend_schema(summary="Run one action on many bots; per-bot results, never all-or-nothing",
                   request=BatchSerializer, responses=BatchResponseSerializer, tags=["bots"])
    @action(detail=False, methods=["post"], filter_backends=[], pagination_class=None)
    def batch(self, request: Request) -> Response:
        """Run start/pause/resume/stop/apply_risk_template/edit on each bot and report each result."""
        body = BatchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        name = body.validated_data["action"]
        params = body.validated_data["params"]
        bots, results = resolve_targets(request.user, body.validated_data)
        template = None
        if name == "apply_risk_template":
            template = RiskTemplate.objects.filter(visible_templates(request.user), pk=params["template"]).first()
            if template is None:
                raise ValidationError({"params": {"template": "no such risk template"}})
        for bot in bots:
            if template is not None:
                results.append(_apply_template(bot, template, request.user))
                continue
            try:
                if name == "edit":
                    change = change_config(bot, merge_patch(bot.config, params["config"]), request.user,
                                           note="batch edit")
                    result: dict[str, Any] = {"bot": bot.pk, "ok": True, "status": bot.status}
                    if change.snapshot is not None:
                        result["version"] = change.snapshot.version
                else:
                    options = params if name == "stop" else {}
                    run_action(bot, name, **options)
                    result = {"bot": bot.pk, "ok": True, "status": bot.status}
            except BotOperationError as exc:
                result = {"bot": bot.pk, "ok": False, "error": (f"config: {exc}" if isinstance(exc, ConfigInvalid)
                                                                 else str(exc))}
            results.append(result)
        logger.info("batch %s by user %s on %d bots", name, request.user.pk, len(results))
        return _batch_response(name, results)


@extend_schema_view(
    list=extend_schema(summary="List groups (fleets)", tags=["groups"]),
    retrieve=extend_schema(summary="Get a group", tags=["groups"]),
    create=extend_schema(summary="Create a group of your bots", tags=["groups"]),
    update=extend_schema(summary="Replace a group (name, members)", tags=["groups"]),
    partial_update=extend_schema(summary="Change a group", tags=["groups"]),
    destroy=extend_schema(summary="Delete a group (its bots stay)", tags=["groups"]),
)
class BotGroupViewSet(viewsets.ModelViewSet[BotGroup]):
    """Groups of bots for batch operations; members are the group owner's bots."""

    serializer_class = BotGroupSerializer
    permission_classes = [IsAuthenticated, OwnerWritePermission]
    ordering_fields = ["id", "name", "created_at"]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[BotGroup]:
        """Return the groups in the caller's scope."""
        return scope_queryset(BotGroup.objects.prefetch_related("bots"), self.request.user)  # type: ignore[arg-type]

    def perform_create(self, serializer: Any) -> None:
        """Create the group for the caller."""
        serializer.save(owner=self.request.user)

    def _members(self, request: Request, add: bool) -> Response:
        group = self.get_object()
        body = BotIdsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ids = body.validated_data["bot_ids"]
        bots = list(Bot.objects.filter(owner=group.owner, pk__in=ids))
        missing = sorted(set(ids) - {b.pk for b in bots})
        if missing:
            raise ValidationError({"bot_ids": f"no such bots: {', '.join(map(str, missing))}"})
        (group.bots.add if add else group.bots.remove)(*bots)
        return Response(self.get_serializer(group).data)

    @extend_schema(summary="Add bots to the group", request=BotIdsSerializer, responses=BotGroupSerializer,
                   tags=["groups"])
    @action(detail=True, methods=["post"])
    def add(self, request: Request, pk: str | None = None) -> Response:
        """Add the owner's bots ``bot_ids`` to the group."""
        return self._members(request, add=True)

    @extend_schema(summary="Remove bots from the group", request=BotIdsSerializer, responses=BotGroupSerializer,
                   tags=["groups"])
    @action(detail=True, methods=["post"])
    def remove(self, request: Request, pk: str | None = None) -> Response:
        """Remove bots ``bot_ids`` from the group."""
        return self._members(request, add=False)


class RiskTemplatePermission(BasePermission):
    """Reads: visible templates; writes: the owner or an admin; shared templates: admins only."""

    def has_object_permission(self, request: Request, view: Any, obj: RiskTemplate) -> bool:
        """Apply the rules above."""
        if request.method in SAFE_METHODS or getattr(view, "action", None) == "apply":
            return True
        user: Any = request.user
        if obj.owner is None:
            return bool(user.is_admin_role)
        return can_modify(user, obj.owner)


@extend_schema_view(
    list=extend_schema(summary="List risk templates (yours and shared ones)", tags=["risk templates"]),
    retrieve=extend_schema(summary="Get a risk template", tags=["risk templates"]),
    create=extend_schema(summary="Create a risk template (rules validated by the engine)", tags=["risk templates"]),
    update=extend_schema(summary="Replace a risk template", tags=["risk templates"]),
    partial_update=extend_schema(summary="Change a risk template", tags=["risk templates"]),
    destroy=extend_schema(summary="Delete a risk template", tags=["risk templates"]),
)
class RiskTemplateViewSet(viewsets.ModelViewSet[RiskTemplate]):
    """Per-user risk templates plus shared ones (owner null: created and edited by admins)."""

    serializer_class = RiskTemplateSerializer
    permission_classes = [IsAuthenticated, RiskTemplatePermission]
    filterset_class = RiskTemplateFilter
    ordering_fields = ["id", "name", "created_at"]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[RiskTemplate]:
        """Return the templates the caller can see."""
        if getattr(self, "swagger_fake_view", False):
            return RiskTemplate.objects.none()
        return RiskTemplate.objects.filter(visible_templates(self.request.user)).select_related("owner")

    def perform_create(self, serializer: Any) -> None:
        """Create the template for the caller, or shared (owner null) when an admin asks."""
        shared = serializer.validated_data.pop("shared", False)
        serializer.save(owner=None if shared else self.request.user)

    def perform_update(self, serializer: Any) -> None:
        """Save; an admin may share or un-share (un-sharing makes the admin the owner)."""
        shared = serializer.validated_data.pop("shared", None)
        if shared is None:
            serializer.save()
        elif shared:
            serializer.save(owner=None)
        else:
            instance = serializer.instance
            serializer.save(owner=instance.owner if instance.owner is not None else self.request.user)

    @extend_schema(summary="Apply the template to bots: sets config.risk (snapshotted, applied when running)",
                   request=BotTargetSerializer, responses=BatchResponseSerializer, tags=["risk templates"])
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def apply(self, request: Request, pk: str | None = None) -> Response:
        """Set ``config.risk`` of each bot to the template's rules; per-bot results."""
        template = self.get_object()
        body = BotTargetSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        bots, results = resolve_targets(request.user, body.validated_data)
        results.extend(_apply_template(bot, template, request.user) for bot in bots)
        return _batch_response("apply_risk_template", results)

