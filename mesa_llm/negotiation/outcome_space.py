"""The outcome space in utility space: Pareto frontier, Nash, Kalai-Smorodinsky and welfare points.

Pure functions over a finite list of outcomes (e.g. ``OutcomeSpace.grid()``) and the parties'
utility functions; points are returned as indices into ``outcomes``. The *gain* of a party is
its utility minus its reservation value (the disagreement point). Ties go to the lowest index,
so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

__all__ = [
    "UtilityFunction",
    "distance_to_nash",
    "distance_to_pareto",
    "kalai_smorodinsky_point",
    "max_welfare_point",
    "nash_point",
    "pareto_frontier",
    "utility_matrix",
]


class UtilityFunction(Protocol):
    """What analysis needs of a utility function (LinearAdditiveUtility satisfies it)."""

    reservation: float

    def __call__(self, outcome: Mapping[str, Any], /) -> float: ...


def utility_matrix(
    utilities: Sequence[UtilityFunction], outcomes: Sequence[Mapping[str, Any]]
) -> np.ndarray:
    """Array of shape (len(outcomes), len(utilities)): row k is outcome k in utility space."""
    if not utilities:
        raise ValueError("need at least one utility function")
    matrix = np.empty((len(outcomes), len(utilities)), dtype=float)
    for j, u in enumerate(utilities):
        for k, outcome in enumerate(outcomes):
            matrix[k, j] = u(outcome)
    return matrix


def _reservations(utilities: Sequence[UtilityFunction]) -> np.ndarray:
    return np.array([float(u.reservation) for u in utilities], dtype=float)


def _frontier(matrix: np.ndarray) -> list[int]:
    # Outcome k is dominated when some other is >= in every utility and > in at least one.
    # Sorted by utilities descending, a dominating point always comes before what it dominates,
    # so comparing each point with the frontier found so far is enough.
    order = np.lexsort(tuple(-matrix[:, j] for j in reversed(range(matrix.shape[1]))))
    kept: list[int] = []
    for k in order:
        row = matrix[k]
        if kept:
            front = matrix[kept]
            if np.any(np.all(front >= row, axis=1) & np.any(front > row, axis=1)):
                continue
        kept.append(int(k))
    return sorted(kept)


def pareto_frontier(
    utilities: Sequence[UtilityFunction], outcomes: Sequence[Mapping[str, Any]]
) -> list[int]:
    """Indices (ascending) of the outcomes no other outcome Pareto-dominates."""
    if not outcomes:
        return []
    return _frontier(utility_matrix(utilities, outcomes))


def nash_point(
    utilities: Sequence[UtilityFunction], outcomes: Sequence[Mapping[str, Any]]
) -> int | None:
    """The Nash bargaining point: argmax of the product of gains over outcomes where every gain > 0.

    None when no outcome gives every party more than its reservation value.
    """
    if not outcomes:
        return None
    gains = utility_matrix(utilities, outcomes) - _reservations(utilities)
    feasible = np.all(gains > 0, axis=1)
    if not feasible.any():
        return None
    product = np.prod(gains, axis=1)
    product[~feasible] = -np.inf
    return int(np.argmax(product))


def kalai_smorodinsky_point(
    utilities: Sequence[UtilityFunction], outcomes: Sequence[Mapping[str, Any]]
) -> int | None:
    """The Kalai-Smorodinsky point: the individually rational outcome maximising the smallest
    gain relative to each party's ideal gain (its best gain over individually rational outcomes).

    None when no outcome gives every party a positive gain.
    """
    if not outcomes:
        return None
    gains = utility_matrix(utilities, outcomes) - _reservations(utilities)
    rational = np.all(gains >= 0, axis=1)
    if not rational.any():
        return None
    ideal = gains[rational].max(axis=0)
    if np.any(ideal <= 0):
        return None
    ratio = np.where(rational, (gains / ideal).min(axis=1), -np.inf)
    best = ratio.max()
    candidates = np.flatnonzero(ratio >= best - 1e-12)
    # Among equally balanced outcomes prefer the one with most welfare (the frontier point).
    welfare = gains[candidates].sum(axis=1)
    return int(candidates[int(np.argmax(welfare))])


def max_welfare_point(
    utilities: Sequence[UtilityFunction], outcomes: Sequence[Mapping[str, Any]]
) -> int:
    """The outcome maximising the sum of utilities (ValueError for no outcomes)."""
    if not outcomes:
        raise ValueError("no outcomes")
    return int(np.argmax(utility_matrix(utilities, outcomes).sum(axis=1)))


def _point(utilities: Sequence[UtilityFunction], outcome: Mapping[str, Any]) -> np.ndarray:
    return np.array([u(outcome) for u in utilities], dtype=float)


def distance_to_pareto(
    utilities: Sequence[UtilityFunction],
    outcomes: Sequence[Mapping[str, Any]],
    outcome: Mapping[str, Any],
) -> float:
    """Euclidean distance in utility space from ``outcome`` to the nearest Pareto-frontier point.

    ``outcomes`` define the frontier (e.g. a grid); 0.0 for an outcome on it.
    """
    matrix = utility_matrix(utilities, outcomes)
    if matrix.shape[0] == 0:
        raise ValueError("no outcomes to build the frontier from")
    frontier = matrix[_frontier(matrix)]
    point = _point(utilities, outcome)
    return float(np.sqrt(((frontier - point) ** 2).sum(axis=1)).min())


def distance_to_nash(
    utilities: Sequence[UtilityFunction],
    outcomes: Sequence[Mapping[str, Any]],
    outcome: Mapping[str, Any],
) -> float | None:
    """Euclidean distance in utility space from ``outcome`` to the Nash point (None if none)."""
    index = nash_point(utilities, outcomes)
    if index is None:
        return None
    nash = _point(utilities, outcomes[index])
    return float(np.sqrt(((nash - _point(utilities, outcome)) ** 2).sum()))
