"""Utility functions over an outcome space: linear additive utilities with a reservation value.

A utility function maps an outcome to [0, 1]; the *reservation value* is the utility of no
agreement (the BATNA) and the *discount* shrinks utility per round, so time has a cost. These
are an agent's private preferences: the world keeps them and never shows them to other agents.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from mesa_llm.negotiation.issues import CategoricalIssue, OutcomeError, OutcomeSpace

__all__ = ["LinearAdditiveUtility", "price_utility", "reservation_price"]

_DIRECTIONS = ("increasing", "decreasing")


class LinearAdditiveUtility:
    """u(outcome) = sum_i w_i * v_i(outcome_i) in [0, 1]; weights normalised to sum 1.

    ``preferences`` gives, per issue with a positive weight, either ``"increasing"`` /
    ``"decreasing"`` (linear over [low, high] of a numeric issue) or a mapping from categorical
    value to [0, 1] (values left out are worth 0). Issues missing from ``weights`` weigh 0.
    ``reservation`` is the utility of no agreement, normally in [0, 1]; a value above 1 means
    no outcome is better than no agreement. ``discount`` is the per-round factor in (0, 1].
    """

    __slots__ = ("space", "weights", "preferences", "reservation", "discount", "_terms")

    def __init__(
        self,
        space: OutcomeSpace,
        weights: Mapping[str, float],
        preferences: Mapping[str, str | Mapping[str, float]],
        reservation: float = 0.0,
        discount: float = 1.0,
    ) -> None:
        self.space = space
        for name in list(weights) + list(preferences):
            if name not in space:
                raise ValueError(f"unknown issue {name!r}; the issues are {space.names}")
        raw: dict[str, float] = {}
        for name in space.names:
            w = float(weights.get(name, 0.0))
            if not math.isfinite(w) or w < 0:
                raise ValueError(f"weight of issue {name!r} must be a finite number >= 0, got {w}")
            raw[name] = w
        total = sum(raw.values())
        if total <= 0:
            raise ValueError("at least one issue needs a positive weight")
        self.weights: dict[str, float] = {name: w / total for name, w in raw.items()}
        reservation = float(reservation)
        if not math.isfinite(reservation) or reservation < 0:
            raise ValueError(f"reservation value must be a finite number >= 0, got {reservation}")
        self.reservation: float = reservation
        discount = float(discount)
        if not 0 < discount <= 1:
            raise ValueError(f"discount must be in (0, 1], got {discount}")
        self.discount: float = discount

        self.preferences: dict[str, str | dict[str, float]] = {}
        # Per issue with weight > 0: (name, weight, low, span, direction, value table).
        self._terms: list[tuple[str, float, float, float, int, dict[str, float] | None]] = []
        for issue in space.issues:
            name = issue.name
            pref = preferences.get(name)
            if pref is None:
                if self.weights[name] > 0:
                    raise ValueError(f"issue {name!r} has a positive weight but no preference")
                continue
            if isinstance(issue, CategoricalIssue):
                if not isinstance(pref, Mapping):
                    raise ValueError(
                        f"issue {name!r} is categorical: its preference must map values to [0, 1]"
                    )
                table: dict[str, float] = {}
                for value, score in pref.items():
                    if value not in issue.values:
                        raise ValueError(f"issue {name!r} has no value {value!r}")
                    score = float(score)
                    if not 0 <= score <= 1:
                        raise ValueError(
                            f"issue {name!r}: value {value!r} scores {score}, outside [0, 1]"
                        )
                    table[value] = score
                self.preferences[name] = dict(table)
                self._terms.append((name, self.weights[name], 0.0, 0.0, 0, table))
            else:
                if pref not in _DIRECTIONS:
                    raise ValueError(
                        f"issue {name!r} is numeric: its preference must be 'increasing' or "
                        f"'decreasing', got {pref!r}"
                    )
                assert isinstance(pref, str)
                self.preferences[name] = pref
                direction = 1 if pref == "increasing" else -1
                low, span = float(issue.low), float(issue.high - issue.low)
                self._terms.append((name, self.weights[name], low, span, direction, None))

    def __repr__(self) -> str:
        return (
            f"LinearAdditiveUtility(weights={self.weights!r}, preferences={self.preferences!r}, "
            f"reservation={self.reservation!r}, discount={self.discount!r})"
        )

    def __call__(self, outcome: Mapping[str, Any]) -> float:
        """Utility of an outcome in [0, 1] (numeric values outside their range are clipped)."""
        total = 0.0
        for name, weight, low, span, direction, table in self._terms:
            if name not in outcome:
                raise OutcomeError(f"missing issue {name!r}")
            value = outcome[name]
            if table is not None:
                v = table.get(value, 0.0)
            else:
                if span:
                    frac = min(max((float(value) - low) / span, 0.0), 1.0)
                    v = frac if direction > 0 else 1.0 - frac
                else:  # a fixed value: nothing to prefer
                    v = 1.0
            total += weight * v
        return min(max(total, 0.0), 1.0)

    def many(self, outcomes: Iterable[Mapping[str, Any]]) -> np.ndarray:
        """Utilities of several outcomes as a float array."""
        return np.array([self(o) for o in outcomes], dtype=float)

    def discounted(self, outcome: Mapping[str, Any], round_: int) -> float:
        """Utility of the outcome reached in round ``round_``: u * discount ** round_."""
        return self(outcome) * self.discount**round_

    def acceptable(self, outcome: Mapping[str, Any], round_: int = 0) -> bool:
        """Whether the outcome beats no agreement: discounted utility >= reservation value."""
        return self.discounted(outcome, round_) >= self.reservation

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (weights normalised); rebuild with :meth:`from_dict` and the space."""
        return {
            "type": "linear_additive",
            "weights": dict(self.weights),
            "preferences": {
                k: (dict(v) if isinstance(v, dict) else v) for k, v in self.preferences.items()
            },
            "reservation": self.reservation,
            "discount": self.discount,
        }

    @classmethod
    def from_dict(cls, space: OutcomeSpace, data: Mapping[str, Any]) -> LinearAdditiveUtility:
        """Rebuild a utility from :meth:`to_dict` output over ``space``."""
        return cls(
            space,
            weights=data["weights"],
            preferences=data["preferences"],
            reservation=float(data.get("reservation", 0.0)),
            discount=float(data.get("discount", 1.0)),
        )


def price_utility(
    space: OutcomeSpace,
    *,
    buyer: bool,
    reservation_price: float,
    issue: str = "price",
    discount: float = 1.0,
) -> LinearAdditiveUtility:
    """Single-issue price haggling: the buyer prefers low prices, the seller high ones.

    The reservation value is the utility of trading at exactly ``reservation_price`` (the
    buyer's value, the seller's cost), so a deal beyond it is worse than no deal. When no price
    of the range beats it (a buyer whose value is below the minimum price) the reservation value
    is above 1 and nothing is acceptable; other issues of the space weigh 0.
    """
    target = space.issue(issue)
    if isinstance(target, CategoricalIssue):
        raise ValueError(f"issue {issue!r} is categorical, not a price")
    rp = float(reservation_price)
    if not math.isfinite(rp):
        raise ValueError(f"reservation price must be finite, got {reservation_price!r}")
    low, span = float(target.low), float(target.high - target.low)
    if span:
        frac = (rp - low) / span
        reservation = 1.0 - frac if buyer else frac
    else:
        # A fixed price: acceptable exactly when it is within the reservation price.
        ok = target.low <= rp if buyer else target.low >= rp
        reservation = 1.0 if ok else 2.0
    return LinearAdditiveUtility(
        space,
        weights={issue: 1.0},
        preferences={issue: "decreasing" if buyer else "increasing"},
        reservation=max(reservation, 0.0),
        discount=discount,
    )


def reservation_price(utility: LinearAdditiveUtility, issue: str = "price") -> float | None:
    """The worst price (in money) this utility still accepts, the other issues at their worst.

    A buyer (price ``decreasing``) accepts prices up to it, a seller (``increasing``) from it
    on. For a single-issue price utility this is exactly the reservation price it was built
    from. None when the space has no numeric ``issue``, the issue weighs nothing, or no price
    of the range alone reaches the reservation value (better terms on other issues needed).
    """
    if issue not in utility.space:
        return None
    target = utility.space.issue(issue)
    weight = utility.weights.get(issue, 0.0)
    direction = utility.preferences.get(issue)
    if isinstance(target, CategoricalIssue) or weight <= 0 or direction not in _DIRECTIONS:
        return None
    share = utility.reservation / weight  # the part of the price range's utility needed
    if share > 1.0 + 1e-12:
        return None
    share = min(max(share, 0.0), 1.0)
    low, high = float(target.low), float(target.high)
    price = low + share * (high - low) if direction == "increasing" else high - share * (high - low)
    return round(price, 6)
