"""The grid bot's configuration: a frozen, validated pydantic model loadable from YAML or JSON.

Amounts and prices are ``Decimal``. Numbers in YAML/JSON are read through their text form, so ``0.002`` is
exactly ``Decimal("0.002")``. Unknown keys are refused so that a typo never silently changes a bot.
"""

from __future__ import annotations

import json
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gridfleet.engine.risk import RiskRule

NonNegDec = Annotated[Decimal, Field(ge=0)]
PosDec = Annotated[Decimal, Field(gt=0)]
Pct = Annotated[Decimal, Field(ge=0, lt=100)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GridType(StrEnum):
    """How level prices are spaced."""

    ARITHMETIC = "arithmetic"
    GEOMETRIC = "geometric"
    CUSTOM = "custom"


class GridSpec(_Frozen):
    """Grid range and spacing. ``levels`` counts both bounds; ``custom`` takes an explicit ``prices`` list."""

    type: GridType = GridType.ARITHMETIC
    lower: PosDec | None = None
    upper: PosDec | None = None
    levels: int | None = Field(default=None, ge=2, le=1000)
    prices: list[PosDec] | None = None

    @model_validator(mode="after")
    def _check(self) -> GridSpec:
        if self.type is GridType.CUSTOM:
            if not self.prices:
                raise ValueError("grid.prices: a custom grid needs a list of at least 2 prices")
            if self.lower is not None or self.upper is not None or self.levels is not None:
                raise ValueError("grid: a custom grid takes 'prices' only, not lower/upper/levels")
            if len(self.prices) < 2:
                raise ValueError("grid.prices: a custom grid needs at least 2 distinct prices")
            if any(b <= a for a, b in zip(self.prices, self.prices[1:], strict=False)):
                raise ValueError("grid.prices: prices must be strictly increasing (sorted, no duplicates)")
        else:
            if self.prices is not None:
                raise ValueError(f"grid.prices: only a custom grid takes 'prices' (type is {self.type.value})")
            missing = [k for k in ("lower", "upper", "levels") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"grid.{missing[0]}: required for a {self.type.value} grid")
            assert self.lower is not None and self.upper is not None
            if self.lower >= self.upper:
                raise ValueError(f"grid.lower: lower ({self.lower}) must be below upper ({self.upper})")
        return self


class Fees(_Frozen):
    """Trading fee rates as fractions (0.001 = 0.1 %)."""

    maker: Annotated[Decimal, Field(ge=0, lt=1)] = Decimal("0.001")
    taker: Annotated[Decimal, Field(ge=0, lt=1)] = Decimal("0.001")


class Trailing(_Frozen):
    """Rebound buy / pullback sell, in percent. 0 means a plain resting limit order."""

    rebound_pct: Pct = Decimal(0)
    pullback_pct: Pct = Decimal(0)
    order_type: Literal["market", "limit"] = "market"


class LayerOverride(_Frozen):
    """Per-layer settings. A layer is the grid interval whose buy level is ``level`` (0 = lowest)."""

    level: int = Field(ge=0)
    qty: PosDec | None = None
    enabled: bool = True
    rebound_pct: Pct | None = None
    pullback_pct: Pct | None = None
    take_profit_pct: Annotated[Decimal, Field(gt=0, lt=1000)] | None = None


class GridConfig(_Frozen):
    """Everything a grid bot needs to start. ``qty_per_order`` and/or ``investment`` size the orders."""

    symbol: str = Field(pattern=r"^[A-Za-z0-9]+/[A-Za-z0-9]+$")
    grid: GridSpec
    investment: PosDec | None = None
    qty_per_order: PosDec | None = None
    fees: Fees = Fees()
    trailing: Trailing = Trailing()
    layers: list[LayerOverride] = []
    risk: list[RiskRule] = []
    slippage: Annotated[Decimal, Field(ge=0, lt=1)] = Decimal("0.0005")
    participation: Annotated[Decimal, Field(gt=0, le=1)] | None = None

    @field_validator("symbol")
    @classmethod
    def _upper_symbol(cls, v: str) -> str:
        return v.upper()

    @model_validator(mode="after")
    def _check(self) -> GridConfig:
        if self.investment is None and self.qty_per_order is None:
            raise ValueError("investment: give investment (quote) and/or qty_per_order (base)")
        seen: set[int] = set()
        n = self.level_count
        for i, layer in enumerate(self.layers):
            if layer.level in seen:
                raise ValueError(f"layers.{i}.level: layer {layer.level} is configured twice")
            if layer.level > n - 2:
                raise ValueError(
                    f"layers.{i}.level: layer {layer.level} does not exist (a {n}-level grid has layers 0..{n - 2})"
                )
            seen.add(layer.level)
        return self

    @property
    def level_count(self) -> int:
        """Return the number of grid levels."""
        if self.grid.type is GridType.CUSTOM:
            assert self.grid.prices is not None
            return len(self.grid.prices)
        assert self.grid.levels is not None
        return self.grid.levels

    def layer(self, level: int) -> LayerOverride | None:
        """Return the override for layer ``level``, if any."""
        for layer in self.layers:
            if layer.level == level:
                return layer
        return None


class ConfigError(ValueError):
    """A config could not be parsed or validated; the message names the field."""


def _plain_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"{loc}: {msg}" if loc and not msg.startswith(loc) else msg)
    return "; ".join(parts)


def parse_config(data: dict[str, Any]) -> GridConfig:
    """Validate a config mapping; raise :class:`ConfigError` naming the bad field."""
    try:
        return GridConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_plain_errors(exc)) from None


def config_from_text(text: str, *, fmt: Literal["yaml", "json"] = "yaml") -> GridConfig:
    """Parse YAML or JSON text into a validated config (numbers are read exactly through their text)."""
    try:
        data = json.loads(text, parse_float=Decimal) if fmt == "json" else yaml.load(text, Loader=_DecimalLoader)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigError(f"not valid {fmt.upper()}: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise ConfigError("the config must be a mapping of keys to values")
    return parse_config(data)


def config_to_dict(config: GridConfig) -> dict[str, Any]:
    """Return the config as JSON-able data (decimals as strings, defaults included)."""
    return config.model_dump(mode="json")


class _DecimalLoader(yaml.SafeLoader):
    """SafeLoader that reads YAML floats as Decimal through their text."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
    special = {".inf": "Infinity", ".nan": "NaN"}.get(text.lstrip("+-").lower())
    if special is not None:  # YAML's .inf / .nan: let validation refuse them with the field's name
        return Decimal(("-" if text.startswith("-") else "") + special)
    return Decimal(text)


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)
