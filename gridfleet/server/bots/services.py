"""Bot operations shared by the endpoints, the batch endpoint and risk templates.

* :func:`validate_config` checks a strategy config with the engine and returns it normalised (amounts as strings)
  or raises :class:`ConfigInvalid` with the errors keyed by field path (``grid.lower``, ``risk.0.when``…);
* :func:`change_config` is the single config-change path: validate, diff, store an immutable
  :class:`ConfigSnapshot` and push the config to the runtime when the bot runs;
* :func:`run_action` drives the bot through the :class:`RuntimeService` (start/pause/resume/stop); starting a
  stopped bot begins a new run (``gridfleet.server.trading.runs``): fresh runtime id and log, current config.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from pydantic import ValidationError

from gridfleet.engine.risk import RiskRule
from gridfleet.engine.strategy import available_strategies, strategy_class
from gridfleet.server.bots.models import Bot, BotStatus, ConfigSnapshot
from gridfleet.server.trading.service import get_runtime

logger = logging.getLogger(__name__)

ACTIVE = (BotStatus.RUNNING, BotStatus.PAUSED)
_PATH_MESSAGE = re.compile(r"^([A-Za-z_][\w]*(?:\.[\w]+)*): (.+)$", re.DOTALL)


class BotOperationError(Exception):
    """An operation refused (bad state, bad input) or failed at the runtime; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


class ConfigInvalid(BotOperationError):
    """A config failed validation; ``errors`` maps field paths to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()), status=400)
        self.errors = errors


def pydantic_errors(exc: ValidationError, prefix: str = "") -> dict[str, list[str]]:
    """Return pydantic errors keyed by dotted field path (model-level messages ``"a.b: msg"`` are unpacked)."""
    out: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        match = _PATH_MESSAGE.match(msg)
        if match and (not loc or match.group(1).startswith(loc)):
            loc, msg = match.group(1), match.group(2)
        key = ".".join(p for p in (prefix, loc) if p) or "non_field_errors"
        out.setdefault(key, []).append(msg)
    return out


def validate_config(strategy: str, config: Any, symbol: str | None = None) -> dict[str, Any]:
    """Validate ``config`` for ``strategy`` (filling in ``symbol`` when absent); return it normalised."""
    if strategy not in available_strategies():
        raise ConfigInvalid({"strategy": [f"unknown strategy (known: {', '.join(available_strategies())})"]})
    if not isinstance(config, dict):
        raise ConfigInvalid({"non_field_errors": ["the config must be an object of keys to values"]})
    data = dict(config)
    if symbol and "symbol" not in data:
        data["symbol"] = symbol
    try:
        model = strategy_class(strategy).config_model.model_validate(data)
    except ValidationError as exc:
        raise ConfigInvalid(pydantic_errors(exc)) from None
    normalised: dict[str, Any] = model.model_dump(mode="json")
    if symbol and str(normalised.get("symbol", "")).upper() != symbol.upper():
        raise ConfigInvalid({"symbol": [f"{normalised.get('symbol')} does not match the bot's symbol {symbol}"]})
    return normalised


def validate_rules(rules: Any) -> list[dict[str, Any]]:
    """Validate a list of risk rules with the engine; return them; raise :class:`ConfigInvalid` keyed ``i.path``."""
    if not isinstance(rules, list):
        raise ConfigInvalid({"non_field_errors": ["expected a list of rules"]})
    errors: dict[str, list[str]] = {}
    names: set[str] = set()
    for i, item in enumerate(rules):
        try:
            rule = RiskRule.model_validate(item)
        except ValidationError as exc:
            errors.update(pydantic_errors(exc, prefix=str(i)))
            continue
        if rule.name in names:
            errors.setdefault(f"{i}.name", []).append(f"duplicate rule name {rule.name!r}")
        names.add(rule.name)
    if errors:
        raise ConfigInvalid(errors)
    return list(rules)


def json_diff(old: Any, new: Any, path: str = "") -> dict[str, dict[str, Any]]:
    """Return ``{"a.b": {"old": x, "new": y}}`` for every changed key (lists compare whole)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: dict[str, dict[str, Any]] = {}
        for key in [*old, *(k for k in new if k not in old)]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in new:
                out[sub] = {"old": old[key], "new": None, "removed": True}
            elif key not in old:
                out[sub] = {"old": None, "new": new[key], "added": True}
            else:
                out.update(json_diff(old[key], new[key], sub))
        return out
    if old != new:
        return {path or "": {"old": old, "new": new}}
    return {}


def merge_patch(base: Any, patch: Any) -> Any:
    """Apply a JSON merge patch (RFC 7386): objects merge recursively, ``null`` removes a key."""
    if not isinstance(patch, dict):
        return patch
    out = dict(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def next_version(bot: Bot) -> int:
    """Return the next snapshot version of ``bot``."""
    current = bot.snapshots.aggregate(v=Max("version"))["v"]
    return int(current or 0) + 1


@dataclass
class ConfigChange:
    """Outcome of a config change: the diff, the snapshot (None for a dry run or no change), runtime applied."""

    config: dict[str, Any]
    diff: dict[str, dict[str, Any]]
    snapshot: ConfigSnapshot | None = None
    applied: bool = False
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)


def change_config(bot: Bot, config: Any, user: Any, *, dry_run: bool = False, note: str = "") -> ConfigChange:
    """Validate and apply a new config: snapshot it and push it to the runtime when the bot runs."""
    new = validate_config(bot.strategy, config, bot.symbol)
    diff = json_diff(bot.config, new)
    if dry_run or not diff:
        return ConfigChange(config=new, diff=diff, dry_run=dry_run)
    with transaction.atomic():
        locked = Bot.objects.select_for_update().get(pk=bot.pk)
        diff = json_diff(locked.config, new)
        snapshot = ConfigSnapshot.objects.create(bot=locked, version=next_version(locked), config=new, diff=diff,
                                                 created_by=user if getattr(user, "is_authenticated", False) else None,
                                                 note=note[:200])
        locked.config = new
        locked.save(update_fields=["config", "updated_at"])
        applied = False
        if locked.status in ACTIVE:
            try:
                get_runtime().apply_config(locked.pk, new)
            except Exception as exc:  # the runtime refused: nothing is recorded
                raise BotOperationError(f"the running bot refused the config: {exc}", status=409) from exc
            applied = True
    bot.refresh_from_db()
    logger.info("bot %s config version %s by user %s (%d changes)", bot.pk, snapshot.version,
                getattr(user, "pk", None), len(diff))
    return ConfigChange(config=new, diff=diff, snapshot=snapshot, applied=applied)


ACTIONS = ("start", "pause", "resume", "stop")
_ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "start": (BotStatus.CREATED, BotStatus.ERROR, BotStatus.STOPPED),  # after a stop: a new run
    "pause": (BotStatus.RUNNING,),
    "resume": (BotStatus.PAUSED,),
    "stop": (BotStatus.RUNNING, BotStatus.PAUSED, BotStatus.ERROR),
}
_RESULT_STATUS = {"start": BotStatus.RUNNING, "pause": BotStatus.PAUSED, "resume": BotStatus.RUNNING,
                  "stop": BotStatus.STOPPED}


def run_action(bot: Bot, name: str, *, cancel_orders: bool = True, sell_all: bool = False) -> Bot:
    """Run a lifecycle action through the runtime and record the new status; raise :class:`BotOperationError`.

    The expected status is claimed first with a compare-and-set (two concurrent starts cannot both pass; a start
    after a stop begins the new run in the same transaction), then the runtime is called *without* any lock held
    (it writes with its own connection). The runtime may record a different outcome itself (e.g. ``error`` or
    ``paused`` on start): what it wrote wins. When the runtime raises
    without recording anything, the previous status is restored.
    """
    if name not in ACTIONS:
        raise BotOperationError(f"unknown action {name!r}", status=400)
    if bot.status not in _ALLOWED_FROM[name]:
        raise BotOperationError(f"cannot {name} a bot that is {bot.status}")
    if name == "start" and bot.mode == "live" and bot.exchange_account_id is None:
        raise BotOperationError("a live bot needs an exchange account", status=400)
    try:
        runtime = get_runtime()
    except RuntimeError as exc:
        raise BotOperationError(str(exc), status=503) from None
    previous = (bot.status, bot.status_message)
    expected = _RESULT_STATUS[name]
    with transaction.atomic():
        claimed = Bot.objects.filter(pk=bot.pk, status__in=_ALLOWED_FROM[name]).update(
            status=expected, status_message="", updated_at=timezone.now())
        if claimed and name == "start" and (previous[0] == BotStatus.STOPPED or _run_finished(bot)):
            # only the caller whose claim won gets here, and the new run exists before anyone sees the status
            _begin_new_run(bot)
    if not claimed:
        bot.refresh_from_db()
        raise BotOperationError(f"cannot {name} a bot that is {bot.status}")
    try:
        if name == "start":
            runtime.start(bot.pk)
        elif name == "stop":
            runtime.stop(bot.pk, cancel_orders=cancel_orders, sell_all=sell_all)
        else:
            runtime.command(bot.pk, name)
    except Exception as exc:
        logger.warning("bot %s: %s failed: %s", bot.pk, name, exc)
        Bot.objects.filter(pk=bot.pk, status=expected, status_message="").update(
            status=previous[0], status_message=previous[1], updated_at=timezone.now())
        bot.refresh_from_db()
        raise BotOperationError(f"{name} failed: {exc}", status=502) from exc
    bot.refresh_from_db()
    logger.info("bot %s: %s -> %s", bot.pk, name, bot.status)
    if name == "stop" and bot.status == BotStatus.STOPPED:
        _end_run(bot)
        _settle_on_stop(bot)
    return bot


def _run_finished(bot: Bot) -> bool:
    from gridfleet.server.trading.runs import run_finished

    return run_finished(bot)


def _begin_new_run(bot: Bot) -> None:
    """A start after a stop: run n + 1 with a fresh runtime id and log and the bot's current config."""
    from gridfleet.server.trading.runs import begin_new_run

    run = begin_new_run(bot)
    logger.info("bot %s: run %s begins (runtime id %s)", bot.pk, run.number, run.runtime_id)


def _end_run(bot: Bot) -> None:
    from gridfleet.server.trading.runs import end_run

    try:
        end_run(bot)
    except Exception:  # bookkeeping only: the stop itself succeeded
        logger.exception("bot %s: end of run not recorded", bot.pk)


def _settle_on_stop(bot: Bot) -> None:
    """Final profit-share settlement of a stopped bot (the fees app); a failure is logged, never raised."""
    try:
        from gridfleet.server.fees.services import settle_on_stop
    except ImportError:
        return
    try:
        settle_on_stop(bot)
    except Exception:
        logger.exception("bot %s: settlement on stop failed (the next scheduled settlement retries it)", bot.pk)
