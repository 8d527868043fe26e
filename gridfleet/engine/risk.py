"""Risk rules (PLACEHOLDER: interface only; the full implementation replaces this file).

Public names the rest of the engine relies on: RiskAction, RiskRule, RiskContext, LayerContext, RiskFiring,
RiskEngine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from gridfleet.engine.types import Candle


class RiskAction(StrEnum):
    """What a fired rule does."""

    ALERT = "alert"
    STOP_BUYING = "stop_buying"
    PAUSE = "pause"
    STOP = "stop"
    STOP_AND_SELL = "stop_and_sell"
    TAKE_PROFIT = "take_profit"


class RiskRule(BaseModel):
    """One rule: a condition tree, a scope and an action."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    action: RiskAction = RiskAction.ALERT
    when: dict[str, Any] = {}


@dataclass(frozen=True)
class LayerContext:
    """Per-layer values a layer-scoped rule reads."""

    index: int
    level_price: Decimal
    position_amount: Decimal
    avg_entry_price: Decimal | None
    unrealized_pnl: Decimal


@dataclass(frozen=True)
class RiskContext:
    """Everything a rule can read at one evaluation."""

    timestamp: int
    price: Decimal
    lower: Decimal
    upper: Decimal
    position_amount: Decimal
    avg_entry_price: Decimal | None
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    equity: Decimal
    peak_equity: Decimal
    layers: dict[int, LayerContext] = field(default_factory=dict)


@dataclass(frozen=True)
class RiskFiring:
    """A rule that fired, with the values that made it fire."""

    rule: str
    action: RiskAction
    layer: int | None
    explanation: str
    values: dict[str, str]


class RiskEngine:
    """Evaluates a rule set against contexts; keeps indicator state fed by candles."""

    def __init__(self, rules: list[RiskRule]) -> None:
        self.rules = list(rules)

    @property
    def needs_candles(self) -> bool:
        """Return True when any rule reads an indicator."""
        return False

    def update_candle(self, candle: Candle) -> None:
        """Feed one closed candle to the indicators."""

    def evaluate(self, ctx: RiskContext) -> list[RiskFiring]:
        """Return the rules that fire now (edge-triggered: a rule fires when its condition becomes true)."""
        return []
