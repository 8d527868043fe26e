"""Fault injection: dropped connections, hangs, 429s, 5xx, lost responses, slow or flaky websockets, partial fills.

A :class:`FaultConfig` holds the switches (percentages are 0-100 chances per request); it can be changed at run
time (``POST /_fake/faults``). :class:`FaultInjector` rolls the dice with a seeded RNG so a run is reproducible
and counts what it injected (shown by ``GET /_fake/faults`` and ``GET /_fake/state``).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any


class HttpFault(StrEnum):
    """A fault applied to one REST request."""

    DROP = "drop"  # close the connection without answering
    TIMEOUT = "timeout"  # hang longer than a client timeout, then close
    RATE_LIMIT = "rate_limit"  # 429 + Retry-After + -1003
    ERROR_5XX = "error_5xx"  # 503 with a Binance error body, or a bare 502 from the "gateway"
    LOSE_RESPONSE = "lose_response"  # process the request, then close without answering


_PCT_FIELDS = ("drop_pct", "timeout_pct", "rate_limit_pct", "error_5xx_pct", "lose_response_pct")


@dataclass(slots=True)
class FaultConfig:
    """The fault switches. All off by default."""

    drop_pct: float = 0.0
    timeout_pct: float = 0.0
    timeout_s: float = 15.0  # how long a "timeout" request hangs before the connection is closed
    rate_limit_pct: float = 0.0
    error_5xx_pct: float = 0.0
    lose_response_pct: float = 0.0
    ws_delay_ms: float = 0.0
    ws_disconnect_every_s: float = 0.0
    partial_fill: float | None = None  # participation: share of each price point's volume our orders may fill
    include_public: bool = False  # also apply the HTTP faults to public (unsigned) endpoints

    def update(self, data: dict[str, Any]) -> None:
        """Validate and apply the given fields (unknown names or bad values raise ValueError, nothing applied)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        staged = FaultConfig(**asdict(self))
        for name, value in data.items():
            setattr(staged, name, _coerce(name, value))
        for f in fields(self):
            setattr(self, f.name, getattr(staged, f.name))

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-able dict."""
        return asdict(self)


def _coerce(name: str, value: Any) -> Any:
    if name == "include_public":
        if not isinstance(value, bool):
            raise ValueError("include_public must be true or false")
        return value
    if name == "partial_fill":
        if value is None or value == 0:
            return None
        number = _number(name, value)
        if not 0 < number <= 1:
            raise ValueError("partial_fill must be a participation rate in (0, 1], or null to switch it off")
        return number
    number = _number(name, value)
    if name in _PCT_FIELDS and not 0 <= number <= 100:
        raise ValueError(f"{name} must be between 0 and 100")
    if number < 0:
        raise ValueError(f"{name} must not be negative")
    return number


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None


@dataclass(slots=True)
class FaultInjector:
    """Rolls the dice for each request with a seeded RNG and counts the faults it injected."""

    config: FaultConfig = field(default_factory=FaultConfig)
    seed: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Seed the RNG."""
        self._rng = random.Random(self.seed)

    def reseed(self, seed: int | None = None) -> None:
        """Restart the RNG (with a new seed, or the original one)."""
        if seed is not None:
            self.seed = seed
        self._rng = random.Random(self.seed)

    def _roll(self, pct: float) -> bool:
        return pct > 0 and self._rng.random() * 100 < pct

    def applies_to(self, *, signed: bool) -> bool:
        """Return True when HTTP faults apply to an endpoint (signed ones, or every one with include_public)."""
        return signed or self.config.include_public

    def before_request(self) -> HttpFault | None:
        """Pick the fault (if any) to apply before a request is processed."""
        c = self.config
        for fault, pct in (
            (HttpFault.DROP, c.drop_pct),
            (HttpFault.TIMEOUT, c.timeout_pct),
            (HttpFault.RATE_LIMIT, c.rate_limit_pct),
            (HttpFault.ERROR_5XX, c.error_5xx_pct),
        ):
            if self._roll(pct):
                self.record(fault)
                return fault
        return None

    def lose_response(self) -> bool:
        """Return True when the response of a processed request should be lost."""
        if self._roll(self.config.lose_response_pct):
            self.record(HttpFault.LOSE_RESPONSE)
            return True
        return False

    def choose(self, options: int) -> int:
        """Return a seeded choice in ``range(options)`` (e.g. which 5xx flavour to answer)."""
        return self._rng.randrange(options)

    def record(self, kind: str) -> None:
        """Count one injected fault of ``kind``."""
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        """Return the settings and the counts as a JSON-able dict."""
        return {**self.config.to_dict(), "seed": self.seed, "injected": dict(self.counts)}
