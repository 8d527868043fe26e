"""Incremental technical indicators fed one closed candle at a time.

Every indicator is exact-decimal (``Decimal`` in, ``Decimal`` out, no floats), costs O(1) or O(period) per
candle and reports ``None`` until it has seen enough candles ("warmed up").

Indicators (``IndicatorSpec.name``):

* ``ma``   -- simple moving average of the last ``period`` source values.
* ``ema``  -- exponential moving average, ``alpha = 2 / (period + 1)``, seeded with the SMA of the first
  ``period`` values (first value after ``period`` candles).
* ``rsi``  -- Wilder's RSI: the first average gain/loss is the simple mean of the first ``period`` changes,
  then ``avg = (avg * (period - 1) + x) / period``; ``RSI = 100 * gain / (gain + loss)`` (so 100 when there
  were no losses, 0 when there were no gains, and 50 when the source did not move at all). First value after
  ``period + 1`` candles.
* ``atr``  -- Wilder's average true range. ``TR = max(high - low, |high - prev_close|, |low - prev_close|)``
  (``high - low`` for the very first candle); the first ATR is the mean of the first ``period`` TRs, then
  Wilder smoothing. Always reads high/low/close (``source`` does not apply). First value after ``period``
  candles.
* ``boll`` -- Bollinger band: ``middle = SMA(period)``, ``upper/lower = middle +/- k * sigma`` with the
  *population* standard deviation of the same window. First value after ``period`` candles.

Use :func:`make_indicator` to build one from an :class:`IndicatorSpec`; ``spec.key`` (e.g. ``"rsi(14)"``,
``"boll(20,2,upper)"``) identifies identical specs so a caller computes each of them once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from decimal import Context, Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gridfleet.engine.types import Candle

__all__ = [
    "ATR",
    "EMA",
    "RSI",
    "SMA",
    "BollBand",
    "BollingerBand",
    "Indicator",
    "IndicatorName",
    "IndicatorSpec",
    "PriceSource",
    "make_indicator",
    "source_value",
]

# Running sums are kept with a wide context so adding and removing window values never rounds; outputs are
# then computed in the caller's (current) decimal context.
_EXACT = Context(prec=80)
_ZERO = Decimal(0)
_TWO = Decimal(2)
_HUNDRED = Decimal(100)
_MAX_PERIOD = 100_000


class IndicatorName(StrEnum):
    """Which indicator a spec describes."""

    MA = "ma"
    EMA = "ema"
    RSI = "rsi"
    ATR = "atr"
    BOLL = "boll"


class BollBand(StrEnum):
    """Which Bollinger band a ``boll`` spec reads."""

    UPPER = "upper"
    MIDDLE = "middle"
    LOWER = "lower"


class PriceSource(StrEnum):
    """Which candle value a price indicator reads (``hl2`` = (high+low)/2, ``hlc3``, ``ohlc4`` likewise)."""

    OPEN = "open"
    HIGH = "high"
    LOW = "low"
    CLOSE = "close"
    HL2 = "hl2"
    HLC3 = "hlc3"
    OHLC4 = "ohlc4"


def _canon(value: Decimal) -> str:
    """Return a canonical plain-text form of a decimal (``2.0`` and ``2`` both give ``"2"``)."""
    return format(value.normalize(), "f")


class IndicatorSpec(BaseModel):
    """Describe one indicator: name, period and (for ``boll``) the band and the std multiplier ``k``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: IndicatorName
    period: int = Field(ge=1, le=_MAX_PERIOD)
    k: Decimal = Field(default=Decimal(2), gt=0, le=100)
    band: BollBand = BollBand.MIDDLE
    source: PriceSource = PriceSource.CLOSE

    @model_validator(mode="after")
    def _check_applicable(self) -> IndicatorSpec:
        """Reject parameters that do not apply to the chosen indicator."""
        if self.name is not IndicatorName.BOLL:
            # explicit defaults are tolerated so that a plain model_dump() validates back
            if self.k != 2:
                raise ValueError(f"'k' only applies to the 'boll' indicator, not to '{self.name}'")
            if self.band is not BollBand.MIDDLE:
                raise ValueError(f"'band' only applies to the 'boll' indicator, not to '{self.name}'")
        if self.name is IndicatorName.ATR and self.source is not PriceSource.CLOSE:
            raise ValueError("'source' does not apply to 'atr' (it always reads high, low and close)")
        return self

    @property
    def key(self) -> str:
        """Return the stable identity of this spec, e.g. ``"rsi(14)"`` or ``"boll(20,2,upper)"``."""
        parts = [str(self.period)]
        if self.name is IndicatorName.BOLL:
            parts += [_canon(self.k), self.band.value]
        if self.name is not IndicatorName.ATR and self.source is not PriceSource.CLOSE:
            parts.append(self.source.value)
        return f"{self.name.value}({','.join(parts)})"

    @property
    def warmup(self) -> int:
        """Return how many candles the indicator needs before its first value."""
        return self.period + 1 if self.name is IndicatorName.RSI else self.period

    def __str__(self) -> str:
        """Return the key."""
        return self.key


def source_value(candle: Candle, source: PriceSource | str) -> Decimal:
    """Return the value of ``candle`` that ``source`` names."""
    source = PriceSource(source)
    if source is PriceSource.CLOSE:
        return candle.close
    if source is PriceSource.OPEN:
        return candle.open
    if source is PriceSource.HIGH:
        return candle.high
    if source is PriceSource.LOW:
        return candle.low
    if source is PriceSource.HL2:
        return (candle.high + candle.low) / 2
    if source is PriceSource.HLC3:
        return (candle.high + candle.low + candle.close) / 3
    return (candle.open + candle.high + candle.low + candle.close) / 4


class Indicator(ABC):
    """Hold the incremental state of one indicator; feed it closed candles with :meth:`update`."""

    def __init__(self, spec: IndicatorSpec) -> None:
        self.spec = spec
        self.count = 0  # candles seen
        self._value: Decimal | None = None

    @property
    def key(self) -> str:
        """Return the spec key, e.g. ``"ema(20)"``."""
        return self.spec.key

    @property
    def value(self) -> Decimal | None:
        """Return the latest value, or None while warming up."""
        return self._value

    @property
    def ready(self) -> bool:
        """Return True once the indicator has a value."""
        return self._value is not None

    def update(self, candle: Candle) -> Decimal | None:
        """Feed one closed candle and return the new value (None while warming up)."""
        self.count += 1
        self._value = self._step(candle)
        return self._value

    def reset(self) -> None:
        """Forget every candle seen."""
        self.count = 0
        self._value = None
        self._reset()

    @abstractmethod
    def _step(self, candle: Candle) -> Decimal | None:
        """Advance the state by one candle and return the value."""

    @abstractmethod
    def _reset(self) -> None:
        """Clear the indicator-specific state."""

    def __repr__(self) -> str:
        """Return a debug representation with the current value."""
        return f"<{type(self).__name__} {self.key}={self._value}>"


class _Window:
    """Keep the last ``size`` values with their exact sum."""

    __slots__ = ("size", "sum", "values")

    def __init__(self, size: int) -> None:
        self.size = size
        self.values: deque[Decimal] = deque()
        self.sum = _ZERO

    def push(self, x: Decimal) -> bool:
        """Append ``x`` (dropping the oldest value when full); return True when the window is full."""
        self.values.append(x)
        self.sum = _EXACT.add(self.sum, x)
        if len(self.values) > self.size:
            self.sum = _EXACT.subtract(self.sum, self.values.popleft())
        return len(self.values) == self.size

    def clear(self) -> None:
        """Empty the window."""
        self.values.clear()
        self.sum = _ZERO


class SMA(Indicator):
    """Simple moving average of the source over ``period`` candles."""

    def __init__(self, spec: IndicatorSpec) -> None:
        super().__init__(spec)
        self._window = _Window(spec.period)

    def _step(self, candle: Candle) -> Decimal | None:
        if not self._window.push(source_value(candle, self.spec.source)):
            return None
        return self._window.sum / self.spec.period

    def _reset(self) -> None:
        self._window.clear()


class EMA(Indicator):
    """Exponential moving average (``alpha = 2/(period+1)``) seeded with the SMA of the first ``period``."""

    def __init__(self, spec: IndicatorSpec) -> None:
        super().__init__(spec)
        self.alpha = _TWO / (spec.period + 1)
        self._seed = _ZERO
        self._ema: Decimal | None = None

    def _step(self, candle: Candle) -> Decimal | None:
        x = source_value(candle, self.spec.source)
        if self._ema is None:
            self._seed = _EXACT.add(self._seed, x)
            if self.count < self.spec.period:
                return None
            self._ema = self._seed / self.spec.period
        else:
            self._ema = self._ema + self.alpha * (x - self._ema)
        return self._ema

    def _reset(self) -> None:
        self._seed = _ZERO
        self._ema = None


class _Wilder:
    """Wilder smoothing: mean of the first ``period`` inputs, then ``(avg*(period-1) + x)/period``."""

    __slots__ = ("avg", "n", "period", "seed")

    def __init__(self, period: int) -> None:
        self.period = period
        self.n = 0
        self.seed = _ZERO
        self.avg: Decimal | None = None

    def push(self, x: Decimal) -> Decimal | None:
        """Feed one input; return the smoothed average once ``period`` inputs were seen."""
        if self.avg is None:
            self.n += 1
            self.seed = _EXACT.add(self.seed, x)
            if self.n == self.period:
                self.avg = self.seed / self.period
        else:
            self.avg = (self.avg * (self.period - 1) + x) / self.period
        return self.avg

    def clear(self) -> None:
        """Forget every input."""
        self.n = 0
        self.seed = _ZERO
        self.avg = None


class RSI(Indicator):
    """Wilder's relative strength index (0..100) of the source."""

    def __init__(self, spec: IndicatorSpec) -> None:
        super().__init__(spec)
        self._prev: Decimal | None = None
        self._gain = _Wilder(spec.period)
        self._loss = _Wilder(spec.period)

    def _step(self, candle: Candle) -> Decimal | None:
        x = source_value(candle, self.spec.source)
        prev, self._prev = self._prev, x
        if prev is None:
            return None
        change = x - prev
        gain = self._gain.push(change if change > 0 else _ZERO)
        loss = self._loss.push(-change if change < 0 else _ZERO)
        if gain is None or loss is None:
            return None
        total = gain + loss
        if total == 0:
            return Decimal(50)
        return _HUNDRED * gain / total

    def _reset(self) -> None:
        self._prev = None
        self._gain.clear()
        self._loss.clear()


class ATR(Indicator):
    """Wilder's average true range."""

    def __init__(self, spec: IndicatorSpec) -> None:
        super().__init__(spec)
        self._prev_close: Decimal | None = None
        self._tr = _Wilder(spec.period)

    def _step(self, candle: Candle) -> Decimal | None:
        tr = candle.high - candle.low
        if self._prev_close is not None:
            tr = max(tr, abs(candle.high - self._prev_close), abs(candle.low - self._prev_close))
        self._prev_close = candle.close
        return self._tr.push(tr)

    def _reset(self) -> None:
        self._prev_close = None
        self._tr.clear()


class BollingerBand(Indicator):
    """One Bollinger band: SMA(period) +/- k x population standard deviation of the same window."""

    def __init__(self, spec: IndicatorSpec) -> None:
        super().__init__(spec)
        self._window = _Window(spec.period)

    def _step(self, candle: Candle) -> Decimal | None:
        if not self._window.push(source_value(candle, self.spec.source)):
            return None
        mean = self._window.sum / self.spec.period
        band = self.spec.band
        if band is BollBand.MIDDLE:
            return mean
        # O(period): summing squared deviations from the mean avoids the cancellation of sum(x^2) - n*mean^2.
        var = sum(((x - mean) ** 2 for x in self._window.values), _ZERO) / self.spec.period
        width = self.spec.k * var.sqrt()
        return mean + width if band is BollBand.UPPER else mean - width

    def _reset(self) -> None:
        self._window.clear()


_CLASSES: dict[IndicatorName, type[Indicator]] = {
    IndicatorName.MA: SMA,
    IndicatorName.EMA: EMA,
    IndicatorName.RSI: RSI,
    IndicatorName.ATR: ATR,
    IndicatorName.BOLL: BollingerBand,
}


def make_indicator(spec: IndicatorSpec | dict[str, Any]) -> Indicator:
    """Build a fresh indicator from a spec (or a dict that validates as one)."""
    if not isinstance(spec, IndicatorSpec):
        spec = IndicatorSpec.model_validate(spec)
    return _CLASSES[spec.name](spec)
