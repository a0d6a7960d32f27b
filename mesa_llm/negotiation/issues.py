"""Issues and outcome spaces: what can be negotiated, and which terms are valid.

NegMAS vocabulary: an *issue* is one negotiable dimension (price, quantity, delivery, colour),
an *outcome* is a mapping from every issue name to a value, and the *outcome space* is the set
of all valid outcomes. Validation normalises values (numbers snapped onto their tick, integral
floats to int, categorical values to their canonical spelling) and raises :class:`OutcomeError`
with a message an agent can read: it names the issue and says what is wrong.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

from mesa_llm.market.money import Money

__all__ = [
    "CategoricalIssue",
    "ContinuousIssue",
    "IntegerIssue",
    "Issue",
    "OutcomeError",
    "OutcomeSpace",
    "issue_from_dict",
]

# Relative tolerance for range checks of continuous values without a tick (float noise).
_RANGE_TOL = 1e-9


class OutcomeError(ValueError):
    """Terms are not a valid outcome; the message names the issue and why."""


@lru_cache(maxsize=64)
def _money(tick: float) -> Money:
    # Tick arithmetic is Money's job (tolerant float -> exact tick count); cache per tick size.
    return Money(tick)


def _fmt(value: float) -> str:
    return repr(float(value))


def _as_real(name: str, value: Any) -> float:
    """A finite float from a number or numeric string; OutcomeError otherwise."""
    if isinstance(value, bool):
        raise OutcomeError(f"{name}: expected a number, got {value!r}")
    if isinstance(value, numbers.Real):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise OutcomeError(f"{name}: expected a number, got {value!r}") from None
    else:
        raise OutcomeError(f"{name}: expected a number, got {value!r}")
    if not math.isfinite(result):
        raise OutcomeError(f"{name}: expected a finite number, got {value!r}")
    return result


@dataclass(frozen=True, slots=True)
class ContinuousIssue:
    """A real-valued issue in [low, high], optionally restricted to multiples of ``tick``."""

    name: str
    low: float
    high: float
    tick: float | None = None
    kind: ClassVar[str] = "continuous"

    def __post_init__(self) -> None:
        _check_name(self.name)
        low, high = float(self.low), float(self.high)
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            raise ValueError(f"issue {self.name!r}: need finite low <= high, got {low}..{high}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        if self.tick is not None:
            tick = float(self.tick)
            if not math.isfinite(tick) or tick <= 0:
                raise ValueError(f"issue {self.name!r}: tick must be > 0, got {self.tick!r}")
            object.__setattr__(self, "tick", tick)
            money = _money(tick)
            if math.ceil(low / tick - 1e-9) > math.floor(high / tick + 1e-9):
                raise ValueError(
                    f"issue {self.name!r}: no multiple of the tick {money.tick_size} "
                    f"in {low}..{high}"
                )

    def validate(self, value: Any) -> float:
        """Return ``value`` as a float on the tick grid, or raise OutcomeError."""
        x = _as_real(self.name, value)
        if self.tick is not None:
            money = _money(self.tick)
            try:
                x = money.to_units(money.to_ticks(x))
            except ValueError:
                raise OutcomeError(
                    f"{self.name}: {_fmt(x)} is not a multiple of the tick {money.tick_size}"
                ) from None
            tol = 0.0
        else:
            tol = _RANGE_TOL * max(1.0, abs(self.low), abs(self.high))
        if x < self.low - tol:
            raise OutcomeError(f"{self.name}: {_fmt(x)} is below the minimum {_fmt(self.low)}")
        if x > self.high + tol:
            raise OutcomeError(f"{self.name}: {_fmt(x)} is above the maximum {_fmt(self.high)}")
        return min(max(x, self.low), self.high)

    def points(self, n: int) -> list[float]:
        """``n`` evenly spaced valid values including both ends (snapped onto the tick, deduplicated)."""
        raw = np.linspace(self.low, self.high, n) if n > 1 and self.low < self.high else [self.low]
        if self.tick is None:
            return [float(x) for x in raw]
        money = _money(self.tick)
        lo = math.ceil(self.low / self.tick - 1e-9)
        hi = math.floor(self.high / self.tick + 1e-9)
        ticks = sorted({min(max(money.round_to_tick(float(x)), lo), hi) for x in raw})
        return [money.to_units(t) for t in ticks]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description: name, type, low, high, tick."""
        return {
            "name": self.name,
            "type": self.kind,
            "low": self.low,
            "high": self.high,
            "tick": self.tick,
        }


@dataclass(frozen=True, slots=True)
class IntegerIssue:
    """An integer issue in [low, high] (a quantity, a delivery step, a number of units)."""

    name: str
    low: int
    high: int
    kind: ClassVar[str] = "integer"

    def __post_init__(self) -> None:
        _check_name(self.name)
        for bound in (self.low, self.high):
            if isinstance(bound, bool) or not isinstance(bound, numbers.Integral):
                raise ValueError(f"issue {self.name!r}: bounds must be ints, got {bound!r}")
        object.__setattr__(self, "low", int(self.low))
        object.__setattr__(self, "high", int(self.high))
        if self.low > self.high:
            raise ValueError(f"issue {self.name!r}: need low <= high, got {self.low}..{self.high}")

    def validate(self, value: Any) -> int:
        """Return ``value`` as an int (integral floats accepted), or raise OutcomeError."""
        x = _as_real(self.name, value)
        if x != math.floor(x):
            raise OutcomeError(f"{self.name}: {value!r} is not an integer")
        n = int(x)
        if n < self.low:
            raise OutcomeError(f"{self.name}: {n} is below the minimum {self.low}")
        if n > self.high:
            raise OutcomeError(f"{self.name}: {n} is above the maximum {self.high}")
        return n

    def points(self, n: int) -> list[int]:
        """All values when there are at most 50 of them, else ``n`` evenly spaced ones incl. ends."""
        count = self.high - self.low + 1
        if count <= 50:
            return list(range(self.low, self.high + 1))
        raw = np.linspace(self.low, self.high, max(n, 2))
        return sorted({int(round(float(x))) for x in raw})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description: name, type, low, high."""
        return {"name": self.name, "type": self.kind, "low": self.low, "high": self.high}


@dataclass(frozen=True, slots=True)
class CategoricalIssue:
    """An issue with a finite set of named values (a colour, a delivery mode, a grade).

    ``values`` may be given as any sequence of distinct strings; it is stored as a tuple so
    the issue stays immutable and hashable.
    """

    name: str
    values: Sequence[str]
    kind: ClassVar[str] = "categorical"

    def __post_init__(self) -> None:
        _check_name(self.name)
        if isinstance(self.values, str):
            raise ValueError(f"issue {self.name!r}: values must be a list of strings")
        values = tuple(self.values)
        if not values:
            raise ValueError(f"issue {self.name!r}: needs at least one value")
        for v in values:
            if not isinstance(v, str) or not v:
                raise ValueError(
                    f"issue {self.name!r}: values must be non-empty strings, got {v!r}"
                )
        if len(set(values)) != len(values):
            raise ValueError(f"issue {self.name!r}: values must be distinct, got {list(values)}")
        object.__setattr__(self, "values", values)

    def validate(self, value: Any) -> str:
        """Return the canonical spelling of ``value`` (case and spaces forgiven), or raise OutcomeError."""
        if isinstance(value, str):
            if value in self.values:
                return value
            folded = value.strip().casefold()
            for v in self.values:
                if v.casefold() == folded:
                    return v
        options = ", ".join(repr(v) for v in self.values)
        raise OutcomeError(f"{self.name}: {value!r} is not one of {options}")

    def points(self, n: int) -> list[str]:
        """Every value (``n`` is ignored)."""
        return list(self.values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description: name, type, values."""
        return {"name": self.name, "type": self.kind, "values": list(self.values)}


Issue = ContinuousIssue | IntegerIssue | CategoricalIssue


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"an issue needs a non-empty name, got {name!r}")


def issue_from_dict(data: Mapping[str, Any]) -> Issue:
    """Build an issue from its ``to_dict`` form (``type`` defaults from the keys present)."""
    kind = data.get("type")
    if kind is None:
        kind = "categorical" if "values" in data else "continuous"
    name = data.get("name")
    if not isinstance(name, str):
        raise ValueError(f"an issue needs a name, got {data!r}")
    if kind == "continuous":
        return ContinuousIssue(name, float(data["low"]), float(data["high"]), data.get("tick"))
    if kind == "integer":
        return IntegerIssue(name, int(data["low"]), int(data["high"]))
    if kind == "categorical":
        return CategoricalIssue(name, tuple(data["values"]))
    raise ValueError(f"issue {name!r}: unknown type {kind!r} (continuous, integer or categorical)")


class OutcomeSpace:
    """The set of valid outcomes: one value for every issue, each valid for its issue."""

    __slots__ = ("issues", "names", "_by_name")

    def __init__(self, issues: Sequence[Issue]) -> None:
        issues = tuple(issues)
        if not issues:
            raise ValueError("an outcome space needs at least one issue")
        for issue in issues:
            if not isinstance(issue, ContinuousIssue | IntegerIssue | CategoricalIssue):
                raise TypeError(f"not an issue: {issue!r}")
        names = [issue.name for issue in issues]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"issue names must be unique, repeated: {duplicates}")
        self.issues: tuple[Issue, ...] = issues
        self.names: list[str] = names
        self._by_name: dict[str, Issue] = dict(zip(names, issues, strict=True))

    def __repr__(self) -> str:
        return f"OutcomeSpace({list(self.issues)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutcomeSpace) and self.issues == other.issues

    def __hash__(self) -> int:
        return hash(self.issues)

    def __len__(self) -> int:
        return len(self.issues)

    def __iter__(self) -> Iterator[Issue]:
        return iter(self.issues)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def issue(self, name: str) -> Issue:
        """The issue called ``name`` (KeyError naming the known issues otherwise)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no issue {name!r}; the issues are {self.names}") from None

    def validate(self, terms: Mapping[str, Any]) -> dict[str, Any]:
        """Return the normalised outcome (issues in space order); OutcomeError naming the issue otherwise."""
        if not isinstance(terms, Mapping):
            raise OutcomeError(
                f"terms must be an object with a value for each issue ({', '.join(self.names)}), "
                f"got {terms!r}"
            )
        for key in terms:
            if key not in self._by_name:
                raise OutcomeError(f"unknown issue {key!r}; the issues are {', '.join(self.names)}")
        outcome: dict[str, Any] = {}
        for issue in self.issues:
            if issue.name not in terms:
                raise OutcomeError(f"missing issue {issue.name!r}")
            outcome[issue.name] = issue.validate(terms[issue.name])
        return outcome

    def is_valid(self, terms: Mapping[str, Any]) -> bool:
        """Whether ``terms`` is a valid outcome."""
        try:
            self.validate(terms)
        except OutcomeError:
            return False
        return True

    def grid(self, points_per_continuous: int = 11) -> list[dict[str, Any]]:
        """A finite discretisation: the cartesian product of each issue's points.

        Categorical issues contribute all values; integer issues all values when there are at
        most 50, else ``points_per_continuous`` evenly spaced ones; continuous issues
        ``points_per_continuous`` evenly spaced values including both ends (on the tick).
        The size is the product over issues: keep it small for many issues.
        """
        if points_per_continuous < 1:
            raise ValueError(f"points_per_continuous must be >= 1, got {points_per_continuous}")
        axes: list[list[Any]] = [list(issue.points(points_per_continuous)) for issue in self.issues]
        return [dict(zip(self.names, combo, strict=True)) for combo in itertools.product(*axes)]

    def normalised(self, outcome: Mapping[str, Any]) -> np.ndarray:
        """The outcome as a vector in [0, 1] per issue (categorical: index / (count - 1)).

        Used to measure how far apart two outcomes are regardless of the issues' units.
        """
        vec = np.zeros(len(self.issues))
        for i, issue in enumerate(self.issues):
            value = outcome[issue.name]
            if isinstance(issue, CategoricalIssue):
                span = len(issue.values) - 1
                vec[i] = issue.values.index(value) / span if span else 0.0
            else:
                span_f = float(issue.high - issue.low)
                vec[i] = (float(value) - issue.low) / span_f if span_f else 0.0
        return vec

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description: ``{"issues": [issue.to_dict(), ...]}``."""
        return {"issues": [issue.to_dict() for issue in self.issues]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> OutcomeSpace:
        """Build a space from ``to_dict`` output (or a bare list of issue dicts)."""
        items = data["issues"] if isinstance(data, Mapping) else data
        return cls([issue_from_dict(item) for item in items])
