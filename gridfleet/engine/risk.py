"""Risk rules: declarative condition trees over bot metrics and indicators, evaluated edge-triggered.

A rule set is plain data (YAML/JSON friendly, see ``docs/risk.md``)::

    - name: stop-loss-below-range
      scope: global                  # or {layers: [0, 3, 5]} or {layers: all}
      when:
        any:
          - {metric: price, op: "<", value: {metric: lower}}
          - all:
              - {metric: drawdown_pct, op: ">=", value: 15}
              - {indicator: {name: rsi, period: 14}, op: "<", value: 30}
      action: stop_and_sell
      cooldown_s: 0
      once: false

:class:`RiskEngine` evaluates the rules against a :class:`RiskContext`; a rule (per layer for layer-scoped
rules) fires when its condition goes from false to true, subject to ``cooldown_s`` and ``once``. Every
:class:`RiskFiring` carries a one-line explanation and the values it read. Nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeAlias

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gridfleet.engine.indicators import Indicator, IndicatorSpec, make_indicator
from gridfleet.engine.types import Candle

__all__ = [
    "AllOf",
    "AnyOf",
    "Compare",
    "Condition",
    "IndicatorRef",
    "LayerContext",
    "LayerScope",
    "Metric",
    "MetricRef",
    "Not",
    "Op",
    "Operand",
    "RiskAction",
    "RiskContext",
    "RiskEngine",
    "RiskFiring",
    "RiskRule",
    "RiskTemplate",
    "RuleStatus",
    "builtin_templates",
    "load_rules",
]

_HUNDRED = Decimal(100)
_EXPLAIN_QUANTUM = Decimal("1e-8")


# ----------------------------------------------------------------------------------------------------
# Vocabulary
# ----------------------------------------------------------------------------------------------------


class RiskAction(StrEnum):
    """What a fired rule does."""

    ALERT = "alert"
    STOP_BUYING = "stop_buying"
    PAUSE = "pause"
    STOP = "stop"
    STOP_AND_SELL = "stop_and_sell"
    TAKE_PROFIT = "take_profit"


class Metric(StrEnum):
    """A value a rule can read from the :class:`RiskContext` (see ``docs/risk.md`` for definitions)."""

    PRICE = "price"
    LOWER = "lower"
    UPPER = "upper"
    POSITION_AMOUNT = "position_amount"
    POSITION_NOTIONAL = "position_notional"
    AVG_ENTRY_PRICE = "avg_entry_price"
    AVG_PRICE_DEVIATION_PCT = "avg_price_deviation_pct"
    REALIZED_PNL = "realized_pnl"
    UNREALIZED_PNL = "unrealized_pnl"
    TOTAL_PNL = "total_pnl"
    EQUITY = "equity"
    PEAK_EQUITY = "peak_equity"
    DRAWDOWN_PCT = "drawdown_pct"
    RANGE_POSITION_PCT = "range_position_pct"
    LEVEL_PRICE = "level_price"


#: Metrics that resolve to the layer's own value inside a layer-scoped rule.
LAYER_METRICS: frozenset[Metric] = frozenset(
    {
        Metric.POSITION_AMOUNT,
        Metric.POSITION_NOTIONAL,
        Metric.AVG_ENTRY_PRICE,
        Metric.AVG_PRICE_DEVIATION_PCT,
        Metric.UNREALIZED_PNL,
        Metric.LEVEL_PRICE,
    }
)


class Op(StrEnum):
    """A comparison operator of a leaf condition."""

    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="
    NE = "!="
    CROSSES_ABOVE = "crosses_above"
    CROSSES_BELOW = "crosses_below"


_STRICT = ConfigDict(extra="forbid", frozen=True)
_BY_NAME = ConfigDict(
    extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
)


# ----------------------------------------------------------------------------------------------------
# Rule models
# ----------------------------------------------------------------------------------------------------


class MetricRef(BaseModel):
    """Refer to a metric as the right-hand operand: ``{metric: lower}``."""

    model_config = _STRICT
    metric: Metric


class IndicatorRef(BaseModel):
    """Refer to an indicator as the right-hand operand: ``{indicator: {name: ema, period: 50}}``."""

    model_config = _STRICT
    indicator: IndicatorSpec


# Union tags are written <like-this> so error locations can drop them (see _validation_message).
_T_NUMBER, _T_METRIC, _T_INDICATOR = "<number>", "<metric-ref>", "<indicator-ref>"
_T_LEAF, _T_ALL, _T_ANY, _T_NOT = "<leaf>", "<all>", "<any>", "<not>"


def _operand_kind(v: Any) -> str:
    """Return the tag of a right-hand operand: a reference by its key, anything else a number."""
    if isinstance(v, MetricRef):
        return _T_METRIC
    if isinstance(v, IndicatorRef):
        return _T_INDICATOR
    if isinstance(v, dict):
        # a dict without either key goes to MetricRef, which reports the missing field
        return _T_INDICATOR if "indicator" in v else _T_METRIC
    return _T_NUMBER


Operand: TypeAlias = Annotated[
    Annotated[Decimal, Tag(_T_NUMBER)]
    | Annotated[MetricRef, Tag(_T_METRIC)]
    | Annotated[IndicatorRef, Tag(_T_INDICATOR)],
    Discriminator(_operand_kind),
]


class Compare(BaseModel):
    """Compare a metric or an indicator (left) with a number, metric or indicator (``value``)."""

    model_config = _STRICT
    metric: Metric | None = None
    indicator: IndicatorSpec | None = None
    op: Op
    value: Operand

    @model_validator(mode="after")
    def _one_left_operand(self) -> Compare:
        """Require exactly one of ``metric`` and ``indicator``."""
        if (self.metric is None) == (self.indicator is None):
            raise ValueError("a leaf condition needs exactly one of 'metric' or 'indicator'")
        return self


class AllOf(BaseModel):
    """True when every child is true (AND)."""

    model_config = _BY_NAME
    all_: list[Condition] = Field(alias="all", min_length=1)


class AnyOf(BaseModel):
    """True when at least one child is true (OR)."""

    model_config = _BY_NAME
    any_: list[Condition] = Field(alias="any", min_length=1)


class Not(BaseModel):
    """True when the child is false."""

    model_config = _BY_NAME
    not_: Condition = Field(alias="not")


_COMBINATORS = {"all": _T_ALL, "any": _T_ANY, "not": _T_NOT}


def _condition_kind(v: Any) -> str | None:
    """Return the tag of a condition node: its combinator, or leaf."""
    if isinstance(v, Compare):
        return _T_LEAF
    if isinstance(v, AllOf):
        return _T_ALL
    if isinstance(v, AnyOf):
        return _T_ANY
    if isinstance(v, Not):
        return _T_NOT
    if isinstance(v, dict):
        tags = [tag for k, tag in _COMBINATORS.items() if k in v or f"{k}_" in v]
        if len(tags) > 1:
            return None
        return tags[0] if tags else _T_LEAF
    return None


Condition: TypeAlias = Annotated[
    Annotated[Compare, Tag(_T_LEAF)]
    | Annotated[AllOf, Tag(_T_ALL)]
    | Annotated[AnyOf, Tag(_T_ANY)]
    | Annotated[Not, Tag(_T_NOT)],
    Discriminator(
        _condition_kind,
        custom_error_type="invalid_condition",
        custom_error_message=(
            "a condition is a mapping: a leaf {metric|indicator, op, value} or exactly one of all/any/not"
        ),
    ),
]

AllOf.model_rebuild()
AnyOf.model_rebuild()
Not.model_rebuild()


class LayerScope(BaseModel):
    """Evaluate a rule once per layer: the listed layer indices, or ``all`` layers of the context."""

    model_config = _STRICT
    layers: list[int] | Literal["all"]

    @field_validator("layers")
    @classmethod
    def _check_layers(cls, v: list[int] | Literal["all"]) -> list[int] | Literal["all"]:
        """Require a non-empty list of distinct non-negative indices."""
        if isinstance(v, list):
            if not v:
                raise ValueError("layers must not be empty (use 'all' for every layer)")
            if any(i < 0 for i in v):
                raise ValueError("layer indices must be >= 0")
            if len(set(v)) != len(v):
                raise ValueError("layer indices must be distinct")
        return v


def iter_conditions(node: Condition) -> Iterator[Condition]:
    """Yield ``node`` and every node below it, depth first."""
    yield node
    if isinstance(node, AllOf):
        for child in node.all_:
            yield from iter_conditions(child)
    elif isinstance(node, AnyOf):
        for child in node.any_:
            yield from iter_conditions(child)
    elif isinstance(node, Not):
        yield from iter_conditions(node.not_)


def _leaf_specs(leaf: Compare) -> list[IndicatorSpec]:
    """Return the indicator specs a leaf reads."""
    specs = [leaf.indicator] if leaf.indicator is not None else []
    if isinstance(leaf.value, IndicatorRef):
        specs.append(leaf.value.indicator)
    return specs


def _leaf_metrics(leaf: Compare) -> list[Metric]:
    """Return the metrics a leaf reads."""
    metrics = [leaf.metric] if leaf.metric is not None else []
    if isinstance(leaf.value, MetricRef):
        metrics.append(leaf.value.metric)
    return metrics


class RiskRule(BaseModel):
    """One rule: a condition tree, a scope, an action and the firing limits ``cooldown_s`` / ``once``."""

    model_config = _STRICT
    name: str = Field(min_length=1, max_length=200)
    scope: Literal["global"] | LayerScope = "global"
    when: Condition
    action: RiskAction = RiskAction.ALERT
    cooldown_s: float = Field(default=0, ge=0, allow_inf_nan=False)
    once: bool = False

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        """Require a name without surrounding blanks or line breaks (it leads every explanation)."""
        if v != v.strip() or "\n" in v or "\r" in v:
            raise ValueError("name must not have leading/trailing blanks or line breaks")
        return v

    @field_validator("when")
    @classmethod
    def _check_scope_metrics(cls, v: Condition, info: ValidationInfo) -> Condition:
        """Reject ``level_price`` in a global rule: only a layer has a level price."""
        if isinstance(info.data.get("scope"), LayerScope):
            return v
        for node in iter_conditions(v):
            if isinstance(node, Compare) and Metric.LEVEL_PRICE in _leaf_metrics(node):
                raise ValueError("metric 'level_price' needs a layer scope (scope: {layers: ...})")
        return v

    @property
    def is_layer_scoped(self) -> bool:
        """Return True when the rule is evaluated per layer."""
        return isinstance(self.scope, LayerScope)

    @property
    def indicator_specs(self) -> list[IndicatorSpec]:
        """Return every indicator spec the rule reads (in tree order, duplicates included)."""
        out: list[IndicatorSpec] = []
        for node in iter_conditions(self.when):
            if isinstance(node, Compare):
                out.extend(_leaf_specs(node))
        return out


def _check_unique_names(rules: Sequence[RiskRule]) -> None:
    """Raise ValueError when two rules share a name."""
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise ValueError(f"duplicate rule name {rule.name!r}")
        seen.add(rule.name)


# ----------------------------------------------------------------------------------------------------
# Contexts and results
# ----------------------------------------------------------------------------------------------------


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
    """Everything a rule can read at one evaluation (``timestamp`` in ms since epoch)."""

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
    """A rule that fired, with a one-line explanation and every operand value it read (as strings)."""

    rule: str
    action: RiskAction
    layer: int | None
    explanation: str
    values: dict[str, str]


@dataclass(frozen=True)
class RuleStatus:
    """The current truth of one rule (per layer for layer scope), with the reason and the values read."""

    rule: str
    layer: int | None
    active: bool
    explanation: str
    values: dict[str, str]


# ----------------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------------

_Resolved: TypeAlias = tuple[Decimal | None, str]  # (value, why undefined) -- reason is "" when defined


def _fmt_full(v: Decimal) -> str:
    """Return a lossless plain-text form of ``v`` (no exponent)."""
    return format(v, "f")


def _fmt_short(v: Decimal) -> str:
    """Return ``v`` for humans: plain text, at most 8 decimals."""
    exponent = v.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -8:
        v = v.quantize(_EXPLAIN_QUANTUM).normalize()
    return format(v, "f")


def _pct(num: Decimal, den: Decimal) -> Decimal:
    """Return ``num / den x 100`` (multiplying first keeps exact results short: 25, not 25.00)."""
    return num * _HUNDRED / den


class _Resolver:
    """Resolve metric and indicator values for one (context, layer), caching each name."""

    def __init__(self, ctx: RiskContext, layer: LayerContext | None, indicators: Mapping[str, Indicator]):
        self.ctx = ctx
        self.layer = layer
        self.indicators = indicators
        self.cache: dict[str, _Resolved] = {}

    def metric(self, m: Metric) -> _Resolved:
        """Return the value of metric ``m`` (layer value when in a layer and the layer has it)."""
        got = self.cache.get(m.value)
        if got is None:
            got = self._metric(m)
            self.cache[m.value] = got
        return got

    def indicator(self, spec: IndicatorSpec) -> _Resolved:
        """Return the current value of an indicator."""
        ind = self.indicators[spec.key]
        if ind.value is None:
            return None, f"not warmed up: {ind.count}/{spec.warmup} candles"
        return ind.value, ""

    def _metric(self, m: Metric) -> _Resolved:
        c, lay = self.ctx, self.layer
        where = "" if lay is None else f" in layer {lay.index}"
        if lay is not None and m in LAYER_METRICS:
            amount, avg = lay.position_amount, lay.avg_entry_price
        else:
            amount, avg = c.position_amount, c.avg_entry_price
        if m is Metric.PRICE:
            return c.price, ""
        if m is Metric.LOWER:
            return c.lower, ""
        if m is Metric.UPPER:
            return c.upper, ""
        if m is Metric.POSITION_AMOUNT:
            return amount, ""
        if m is Metric.POSITION_NOTIONAL:
            return amount * c.price, ""
        if m is Metric.AVG_ENTRY_PRICE:
            return (avg, "") if avg is not None else (None, f"no position{where}")
        if m is Metric.AVG_PRICE_DEVIATION_PCT:
            if avg is None:
                return None, f"no position{where}"
            if avg == 0:
                return None, f"avg_entry_price is 0{where}"
            return _pct(c.price - avg, avg), ""
        if m is Metric.REALIZED_PNL:
            return c.realized_pnl, ""
        if m is Metric.UNREALIZED_PNL:
            return (lay.unrealized_pnl if lay is not None else c.unrealized_pnl), ""
        if m is Metric.TOTAL_PNL:
            return c.realized_pnl + c.unrealized_pnl, ""
        if m is Metric.EQUITY:
            return c.equity, ""
        if m is Metric.PEAK_EQUITY:
            return c.peak_equity, ""
        if m is Metric.DRAWDOWN_PCT:
            if c.peak_equity <= 0:
                return None, "peak_equity <= 0"
            return _pct(c.peak_equity - c.equity, c.peak_equity), ""
        if m is Metric.RANGE_POSITION_PCT:
            if c.upper <= c.lower:
                return None, "upper <= lower"
            return _pct(c.price - c.lower, c.upper - c.lower), ""
        # LEVEL_PRICE (validation keeps it out of global rules)
        return (lay.level_price, "") if lay is not None else (None, "no layer")


@dataclass(slots=True)
class _Side:
    """One compiled operand: a literal number, a metric or an indicator."""

    label: str  # values key and explanation label; "" for a literal
    number: Decimal | None = None
    metric: Metric | None = None
    spec: IndicatorSpec | None = None

    def resolve(self, r: _Resolver) -> _Resolved:
        """Return the operand's current value."""
        if self.metric is not None:
            return r.metric(self.metric)
        if self.spec is not None:
            return r.indicator(self.spec)
        return self.number, ""


def _side(operand: Metric | IndicatorSpec | Decimal | MetricRef | IndicatorRef) -> _Side:
    """Compile an operand."""
    if isinstance(operand, MetricRef):
        operand = operand.metric
    elif isinstance(operand, IndicatorRef):
        operand = operand.indicator
    if isinstance(operand, Metric):
        return _Side(label=operand.value, metric=operand)
    if isinstance(operand, IndicatorSpec):
        return _Side(label=operand.key, spec=operand)
    return _Side(label="", number=operand)


@dataclass(slots=True)
class _Leaf:
    """A compiled leaf; ``slot`` indexes the per-(rule, layer) previous-values list."""

    path: str
    slot: int
    left: _Side
    op: Op
    right: _Side


@dataclass(slots=True)
class _Node:
    """A compiled combinator (``all``, ``any`` or ``not``)."""

    kind: str
    path: str
    children: list[_Tree]


_Tree: TypeAlias = _Leaf | _Node


@dataclass(slots=True)
class _LeafResult:
    """What one leaf saw at one evaluation."""

    left: Decimal | None
    right: Decimal | None
    why_undefined: str  # "" when both operands are defined
    prev: tuple[Decimal | None, Decimal | None] | None
    result: bool


def _compile(node: Condition, path: str, leaves: list[_Leaf]) -> _Tree:
    """Compile a condition tree; ``leaves`` collects the leaves in slot order."""
    if isinstance(node, Compare):
        left = node.metric if node.metric is not None else node.indicator
        assert left is not None  # guaranteed by Compare validation
        leaf = _Leaf(path=path, slot=len(leaves), left=_side(left), op=node.op, right=_side(node.value))
        leaves.append(leaf)
        return leaf
    if isinstance(node, Not):
        sub = "not" if path == "when" else f"{path}.not"
        return _Node("not", path, [_compile(node.not_, sub, leaves)])
    kind, children = ("all", node.all_) if isinstance(node, AllOf) else ("any", node.any_)
    prefix = kind if path == "when" else f"{path}.{kind}"
    return _Node(kind, path, [_compile(c, f"{prefix}[{i}]", leaves) for i, c in enumerate(children)])


def _compare(op: Op, a: Decimal, b: Decimal, prev: tuple[Decimal | None, Decimal | None] | None) -> bool:
    """Apply ``op``; crossing operators also need the previous (defined) values."""
    if op is Op.LT:
        return a < b
    if op is Op.LE:
        return a <= b
    if op is Op.GT:
        return a > b
    if op is Op.GE:
        return a >= b
    if op is Op.EQ:
        return a == b
    if op is Op.NE:
        return a != b
    if prev is None or prev[0] is None or prev[1] is None:
        return False
    pa, pb = prev[0], prev[1]
    if op is Op.CROSSES_ABOVE:
        return pa <= pb and a > b
    return pa >= pb and a < b  # CROSSES_BELOW


class _Eval:
    """Evaluate a compiled tree once, remembering every leaf result and every operand value read."""

    def __init__(self, resolver: _Resolver, prev: Sequence[tuple[Decimal | None, Decimal | None]] | None):
        self.resolver = resolver
        self.prev = prev
        self.leaves: dict[int, _LeafResult] = {}
        self.values: dict[str, str] = {}

    def run(self, node: _Tree) -> bool:
        """Return the truth of ``node``; all leaves run (no short-circuit) so state stays complete."""
        if isinstance(node, _Leaf):
            return self._leaf(node)
        results = [self.run(c) for c in node.children]
        if node.kind == "all":
            return all(results)
        if node.kind == "any":
            return any(results)
        return not results[0]

    def _read(self, side: _Side) -> _Resolved:
        value, why = side.resolve(self.resolver)
        if side.label:
            self.values[side.label] = _fmt_full(value) if value is not None else "undefined"
        return value, why

    def _leaf(self, leaf: _Leaf) -> bool:
        a, why_a = self._read(leaf.left)
        b, why_b = self._read(leaf.right)
        prev = self.prev[leaf.slot] if self.prev is not None else None
        why = ""
        if a is None:
            why = f"{leaf.left.label} undefined ({why_a})"
        elif b is None:
            why = f"{leaf.right.label} undefined ({why_b})"
        result = False
        if a is not None and b is not None:
            result = _compare(leaf.op, a, b, prev)
            if leaf.op in (Op.CROSSES_ABOVE, Op.CROSSES_BELOW) and prev is not None:
                for side, old in ((leaf.left, prev[0]), (leaf.right, prev[1])):
                    if side.label:
                        self.values[f"{side.label} (prev)"] = "undefined" if old is None else _fmt_full(old)
        self.leaves[leaf.slot] = _LeafResult(a, b, why, prev, result)
        return result

    # ---- explanation --------------------------------------------------------------------------------------

    def explain(self, node: _Tree, want: bool) -> list[str]:
        """Return the clauses that make ``node`` evaluate to ``want`` (which it does)."""
        if isinstance(node, _Leaf):
            return [self._explain_leaf(node)]
        if node.kind == "not":
            return self.explain(node.children[0], not want)
        results = [self._truth(c) for c in node.children]
        if (node.kind == "all") == want:
            # all->true or any->false: every child has the value `want`
            picked = node.children
        else:
            # all->false or any->true: the children that have the value `want` decide
            picked = [c for c, r in zip(node.children, results, strict=True) if r == want]
        out: list[str] = []
        for c in picked:
            out.extend(self.explain(c, want))
        return out

    def _truth(self, node: _Tree) -> bool:
        if isinstance(node, _Leaf):
            return self.leaves[node.slot].result
        results = [self._truth(c) for c in node.children]
        if node.kind == "all":
            return all(results)
        if node.kind == "any":
            return any(results)
        return not results[0]

    def _explain_leaf(self, leaf: _Leaf) -> str:
        res = self.leaves[leaf.slot]
        where = f" ({leaf.path})"
        if res.why_undefined:
            return f"{res.why_undefined}{where}"
        assert res.left is not None and res.right is not None
        text = f"{_operand_text(leaf.left, res.left)} {leaf.op.value} {_operand_text(leaf.right, res.right)}"
        if leaf.op in (Op.CROSSES_ABOVE, Op.CROSSES_BELOW):
            if res.prev is None or res.prev[0] is None or res.prev[1] is None:
                text += " [no previous values]"
            else:
                text += f" [was {_fmt_short(res.prev[0])} vs {_fmt_short(res.prev[1])}]"
        if not res.result:
            text = f"not ({text})"
        return text + where


def _operand_text(side: _Side, value: Decimal) -> str:
    """Return ``label value`` (or just the value for a literal)."""
    return f"{side.label} {_fmt_short(value)}" if side.label else _fmt_short(value)


@dataclass(slots=True)
class _RuleState:
    """Edge/cooldown/once bookkeeping and previous leaf values of one rule (one layer for layer scope)."""

    active: bool = False
    pending: bool = False
    fired: int = 0
    last_fired_ms: int | None = None
    prev: list[tuple[Decimal | None, Decimal | None]] | None = None


@dataclass(slots=True)
class _CompiledRule:
    """A rule with its compiled tree."""

    rule: RiskRule
    tree: _Tree
    leaves: list[_Leaf]


class RiskEngine:
    """Evaluate a rule set against contexts, edge-triggered; keep indicator state fed by candles.

    Firing semantics (per rule, and per layer for layer-scoped rules):

    * the condition is evaluated at every :meth:`evaluate`; the rule fires when it goes from false to true
      (the first evaluation counts as coming from false);
    * ``once``: after one firing the rule never fires again in this engine's life (until :meth:`reset`);
    * ``cooldown_s``: a rising edge within ``cooldown_s`` of the last firing is held back; it fires at the
      first evaluation after the cooldown if the condition is still true (it is dropped if the condition went
      false meanwhile);
    * ``crosses_above/below`` compare with the operand values of the previous :meth:`evaluate`.
    """

    def __init__(self, rules: Sequence[RiskRule]) -> None:
        self.rules = list(rules)
        _check_unique_names(self.rules)
        self._compiled: list[_CompiledRule] = []
        self._indicators: dict[str, Indicator] = {}
        for rule in self.rules:
            leaves: list[_Leaf] = []
            tree = _compile(rule.when, "when", leaves)
            self._compiled.append(_CompiledRule(rule, tree, leaves))
            for spec in rule.indicator_specs:
                if spec.key not in self._indicators:
                    self._indicators[spec.key] = make_indicator(spec)
        self._states: dict[tuple[int, int | None], _RuleState] = {}
        self._last_candle: int | None = None

    @property
    def needs_candles(self) -> bool:
        """Return True when any rule reads an indicator."""
        return bool(self._indicators)

    @property
    def indicators(self) -> dict[str, Indicator]:
        """Return the indicators the rules read, by key (one instance per distinct spec)."""
        return dict(self._indicators)

    def indicator_values(self) -> dict[str, Decimal | None]:
        """Return the current value of every indicator by key (None while warming up)."""
        return {k: ind.value for k, ind in self._indicators.items()}

    def update_candle(self, candle: Candle) -> None:
        """Feed one closed candle to every indicator once; ignore a candle not newer than the last one fed."""
        if self._last_candle is not None and candle.open_time <= self._last_candle:
            return
        self._last_candle = candle.open_time
        for ind in self._indicators.values():
            ind.update(candle)

    def reset(self) -> None:
        """Forget firing state, previous values and indicator state."""
        self._states.clear()
        self._last_candle = None
        for ind in self._indicators.values():
            ind.reset()

    def _targets(self, rule: RiskRule, ctx: RiskContext) -> list[LayerContext | None]:
        """Return what a rule is evaluated against: ``[None]`` for global, the present layers otherwise."""
        scope = rule.scope
        if not isinstance(scope, LayerScope):
            return [None]
        if scope.layers == "all":
            return [ctx.layers[i] for i in sorted(ctx.layers)]
        return [ctx.layers[i] for i in sorted(scope.layers) if i in ctx.layers]

    def _run(
        self,
        cr: _CompiledRule,
        ctx: RiskContext,
        layer: LayerContext | None,
        state: _RuleState | None,
        cache: dict[int | None, _Resolver],
    ) -> tuple[bool, _Eval]:
        key = None if layer is None else layer.index
        resolver = cache.get(key)
        if resolver is None:
            resolver = cache[key] = _Resolver(ctx, layer, self._indicators)
        ev = _Eval(resolver, state.prev if state is not None else None)
        return ev.run(cr.tree), ev

    def evaluate(self, ctx: RiskContext) -> list[RiskFiring]:
        """Return the rules that fire now, in rule order (then layer order); update the firing state."""
        firings: list[RiskFiring] = []
        cache: dict[int | None, _Resolver] = {}
        for ri, cr in enumerate(self._compiled):
            rule = cr.rule
            targets = self._targets(rule, ctx)
            if rule.is_layer_scoped:
                # a layer missing from the context counts as "condition false"; its once/cooldown memory stays
                present = {t.index for t in targets if t is not None}
                for (sri, li), st in self._states.items():
                    if sri == ri and li not in present:
                        st.active = st.pending = False
                        st.prev = None
            for layer in targets:
                skey = (ri, None if layer is None else layer.index)
                state = self._states.get(skey)
                if state is None:
                    state = self._states[skey] = _RuleState()
                active, ev = self._run(cr, ctx, layer, state, cache)
                state.prev = [(ev.leaves[lf.slot].left, ev.leaves[lf.slot].right) for lf in cr.leaves]
                if self._should_fire(rule, state, active, ctx.timestamp):
                    firings.append(
                        RiskFiring(
                            rule=rule.name,
                            action=rule.action,
                            layer=None if layer is None else layer.index,
                            explanation=self._explanation(rule, layer, ev, cr.tree, True),
                            values=ev.values,
                        )
                    )
                state.active = active
        return firings

    @staticmethod
    def _should_fire(rule: RiskRule, state: _RuleState, active: bool, now_ms: int) -> bool:
        """Apply edge, once and cooldown; update the firing bookkeeping; return True to fire."""
        if not active:
            state.pending = False
            return False
        if not (state.pending or not state.active):
            return False  # still true, nothing held back
        if rule.once and state.fired:
            state.pending = False
            return False
        last = state.last_fired_ms
        if last is not None and now_ms - last < rule.cooldown_s * 1000:
            state.pending = True
            return False
        state.pending = False
        state.fired += 1
        state.last_fired_ms = now_ms
        return True

    def status(self, ctx: RiskContext) -> list[RuleStatus]:
        """Return the current truth of every rule (per layer) with its reason; change no state."""
        out: list[RuleStatus] = []
        cache: dict[int | None, _Resolver] = {}
        for ri, cr in enumerate(self._compiled):
            for layer in self._targets(cr.rule, ctx):
                state = self._states.get((ri, None if layer is None else layer.index))
                active, ev = self._run(cr, ctx, layer, state, cache)
                out.append(
                    RuleStatus(
                        rule=cr.rule.name,
                        layer=None if layer is None else layer.index,
                        active=active,
                        explanation=self._explanation(cr.rule, layer, ev, cr.tree, active),
                        values=ev.values,
                    )
                )
        return out

    @staticmethod
    def _explanation(rule: RiskRule, layer: LayerContext | None, ev: _Eval, tree: _Tree, want: bool) -> str:
        head = rule.name if layer is None else f"{rule.name} [layer {layer.index}]"
        return f"{head}: {'; '.join(ev.explain(tree, want))}"


# ----------------------------------------------------------------------------------------------------
# Templates
# ----------------------------------------------------------------------------------------------------


def _validation_message(what: str, err: ValidationError) -> str:
    """Return a compact one-error-per-line message naming the field path of each error."""
    lines = []
    for e in err.errors(include_url=False):
        # drop the union tags pydantic inserts into the location ("<leaf>", "<number>", ...)
        loc = [str(p) for p in e["loc"] if not str(p).startswith("<")]
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"  {'.'.join(loc) or '(top level)'}: {msg}")
    return f"invalid {what}:\n" + "\n".join(lines)


class RiskTemplate(BaseModel):
    """A named, reusable rule set; serialises to and from YAML or JSON text."""

    model_config = _STRICT
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    rules: list[RiskRule]

    @model_validator(mode="after")
    def _unique(self) -> RiskTemplate:
        """Reject duplicate rule names."""
        _check_unique_names(self.rules)
        return self

    def to_data(self) -> dict[str, Any]:
        """Return plain data (str/int/float/bool/list/dict; decimals as strings), defaults left out."""
        data = self.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        data.setdefault("description", "")
        data.setdefault("rules", [])
        for rule, out in zip(self.rules, data["rules"], strict=True):
            out["action"] = rule.action.value  # always spell the action out
        return data

    def to_yaml(self) -> str:
        """Return the template as YAML text."""
        return yaml.safe_dump(self.to_data(), sort_keys=False, allow_unicode=True)

    def to_json(self) -> str:
        """Return the template as JSON text."""
        return json.dumps(self.to_data(), indent=2, ensure_ascii=False)

    @classmethod
    def from_data(cls, data: Any) -> RiskTemplate:
        """Validate plain data as a template; raise ValueError naming the offending fields."""
        if not isinstance(data, dict):
            raise ValueError(f"invalid risk template: expected a mapping, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise ValueError(_validation_message("risk template", err)) from None

    @classmethod
    def from_yaml(cls, text: str) -> RiskTemplate:
        """Parse a template from YAML text; raise ValueError on bad YAML or an invalid template."""
        return cls.from_data(_load_yaml(text))

    @classmethod
    def from_json(cls, text: str) -> RiskTemplate:
        """Parse a template from JSON text; raise ValueError on bad JSON or an invalid template."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"invalid JSON: {err}") from None
        return cls.from_data(data)


def _load_yaml(text: str) -> Any:
    """Parse YAML text (safe loader); raise ValueError on a syntax error."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"invalid YAML: {err}") from None


def load_rules(text: str) -> list[RiskRule]:
    """Parse a YAML (or JSON) list of rules; raise ValueError naming the offending fields."""
    data = _load_yaml(text)
    if not isinstance(data, list):
        raise ValueError(f"invalid rules: expected a list of rules, got {type(data).__name__}")
    rules: list[RiskRule] = []
    errors: list[str] = []
    for i, item in enumerate(data):
        try:
            rules.append(RiskRule.model_validate(item))
        except ValidationError as err:
            errors.append(_validation_message(f"rule {i}", err))
    if errors:
        raise ValueError("\n".join(errors))
    _check_unique_names(rules)
    return rules


_BUILTIN_YAML = """
- name: conservative
  description: Stop and sell below the range or on a 15% drawdown; stop buying when the position is far under
    water; alert above the range.
  rules:
    - name: stop-loss-below-range
      when: {metric: price, op: "<", value: {metric: lower}}
      action: stop_and_sell
      once: true
    - name: max-drawdown
      when: {metric: drawdown_pct, op: ">=", value: 15}
      action: stop_and_sell
      once: true
    - name: deep-underwater
      when: {metric: avg_price_deviation_pct, op: "<=", value: -10}
      action: stop_buying
    - name: above-range
      when: {metric: price, op: ">", value: {metric: upper}}
      action: alert
      cooldown_s: 3600
- name: trend-guard
  description: Pause buying while the trend is down (fast EMA below slow EMA and RSI weak); alert on recovery.
  rules:
    - name: downtrend
      when:
        all:
          - {indicator: {name: ema, period: 20}, op: "<", value: {indicator: {name: ema, period: 50}}}
          - {indicator: {name: rsi, period: 14}, op: "<", value: 40}
      action: stop_buying
    - name: trend-recovered
      when:
        indicator: {name: ema, period: 20}
        op: crosses_above
        value: {indicator: {name: ema, period: 50}}
      action: alert
- name: layer-take-profit
  description: Take profit on a layer whose position is 5% in the money; alert on a layer 8% under water.
  rules:
    - name: layer-tp
      scope: {layers: all}
      when:
        all:
          - {metric: position_amount, op: ">", value: 0}
          - {metric: avg_price_deviation_pct, op: ">=", value: 5}
      action: take_profit
    - name: layer-underwater
      scope: {layers: all}
      when: {metric: avg_price_deviation_pct, op: "<=", value: -8}
      action: alert
      cooldown_s: 3600
"""


def builtin_templates() -> dict[str, RiskTemplate]:
    """Return the built-in templates by name (fresh objects; templates are immutable anyway)."""
    data = _load_yaml(_BUILTIN_YAML)
    return {t.name: t for t in (RiskTemplate.from_data(d) for d in data)}
