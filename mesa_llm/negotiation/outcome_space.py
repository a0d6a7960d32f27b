"""The outcome space seen in utility space: Pareto frontier, Nash, Kalai-Smorodinsky and welfare
points of a negotiation.

Two families of pure functions:

- over a finite list of outcomes (e.g. ``OutcomeSpace.grid()`` or the full enumeration of a
  discrete space) and the parties' utility functions, returning indices into ``outcomes``
  (:func:`pareto_frontier`, :func:`nash_point`, ...; ties go to the lowest index);
- exact, for two parties with :class:`~mesa_llm.negotiation.utility.LinearAdditiveUtility` over
  an :class:`~mesa_llm.negotiation.issues.OutcomeSpace` (:func:`exact_pareto_frontier`,
  :func:`exact_nash_point`, :func:`exact_distance_to_pareto`, :func:`exact_distance_to_nash`,
  :func:`max_welfare_gain`). Discrete issues (categorical, integer) are enumerated; continuous
  issues are treated as real intervals (their tick ignored), where a linear-additive utility is
  linear in each value: the utility pairs reachable by the continuous issues form a zonotope
  whose Pareto frontier is the polyline found by conceding issues in decreasing order of the
  other party's gain per unit of one's own loss (as in the fractional knapsack). The Nash
  product is a quadratic along each frontier segment, maximised in closed form.

The *gain* of a party is its utility minus its reservation value (the disagreement point).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from mesa_llm.negotiation.issues import CategoricalIssue, ContinuousIssue, OutcomeSpace
from mesa_llm.negotiation.utility import LinearAdditiveUtility

__all__ = [
    "FrontierSegment",
    "UtilityFunction",
    "distance_to_nash",
    "distance_to_pareto",
    "exact_distance_to_nash",
    "exact_distance_to_pareto",
    "exact_nash_point",
    "exact_pareto_frontier",
    "kalai_smorodinsky_point",
    "max_welfare_gain",
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


# ----------------------------------------------------------------------------- exact (two parties)

_TOL = 1e-12
#: the most combinations of discrete issue values the exact functions enumerate
MAX_DISCRETE_COMBINATIONS = 100_000


@dataclass(frozen=True)
class FrontierSegment:
    """A straight piece of the exact Pareto frontier of two parties, in utility space.

    ``start`` and ``end`` are outcomes; their utility pairs are ``start_utilities`` (the first
    party's better end) and ``end_utilities``. The outcomes in between differ only on continuous
    issues, linearly, so :meth:`outcome_at` gives every point of the segment exactly. A single
    frontier point has ``start == end``.
    """

    start: dict[str, Any]
    end: dict[str, Any]
    start_utilities: tuple[float, float]
    end_utilities: tuple[float, float]

    def outcome_at(self, s: float) -> dict[str, Any]:
        """The outcome a fraction ``s`` in [0, 1] of the way from ``start`` to ``end``."""
        return _interpolate(self.start, self.end, s)

    def utilities_at(self, s: float) -> tuple[float, float]:
        """The utility pair a fraction ``s`` of the way along the segment."""
        (a0, b0), (a1, b1) = self.start_utilities, self.end_utilities
        return (a0 + s * (a1 - a0), b0 + s * (b1 - b0))


def _interpolate(x: Mapping[str, Any], y: Mapping[str, Any], s: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in x.items():
        other = y[name]
        if value == other or isinstance(value, str):
            out[name] = value
        else:
            out[name] = float(value) + s * (float(other) - float(value))
    return out


def _contribution(utility: LinearAdditiveUtility, issue_name: str, value: Any) -> float:
    """What one issue's value adds to a linear-additive utility (weight x value score)."""
    weight = utility.weights.get(issue_name, 0.0)
    pref = utility.preferences.get(issue_name)
    if weight <= 0 or pref is None:
        return 0.0
    if isinstance(pref, Mapping):
        return weight * float(pref.get(value, 0.0))
    issue = utility.space.issue(issue_name)
    assert not isinstance(issue, CategoricalIssue)
    span = float(issue.high - issue.low)
    if not span:
        return weight
    frac = min(max((float(value) - float(issue.low)) / span, 0.0), 1.0)
    return weight * (frac if pref == "increasing" else 1.0 - frac)


def _check_parties(utilities: Sequence[LinearAdditiveUtility], space: OutcomeSpace) -> None:
    if len(utilities) != 2:
        raise ValueError(f"exact frontier needs exactly two parties, got {len(utilities)}")
    for u in utilities:
        if not isinstance(u, LinearAdditiveUtility):
            raise TypeError(f"exact frontier needs LinearAdditiveUtility, got {type(u).__name__}")
        if u.space.names != space.names:
            raise ValueError(f"utility over issues {u.space.names}, space has {space.names}")


def _polylines(
    utilities: Sequence[LinearAdditiveUtility], space: OutcomeSpace
) -> list[list[tuple[np.ndarray, dict[str, Any]]]]:
    """Per combination of discrete values: the Pareto polyline of what the continuous issues
    reach, as vertices (utility pair, outcome) from the first party's best to the second's."""
    ua, ub = utilities
    continuous = [i for i in space.issues if isinstance(i, ContinuousIssue)]
    discrete = [i for i in space.issues if not isinstance(i, ContinuousIssue)]
    axes = [i.points(0) if isinstance(i, CategoricalIssue) else list(range(i.low, i.high + 1))
            for i in discrete]  # fmt: skip
    combinations = math.prod(len(axis) for axis in axes)
    if combinations > MAX_DISCRETE_COMBINATIONS:
        raise ValueError(
            f"{combinations} combinations of discrete issue values: more than the "
            f"{MAX_DISCRETE_COMBINATIONS} the exact frontier enumerates"
        )
    # For each continuous issue: the end the first party prefers and the move to the other end.
    base: dict[str, float] = {}
    base_point = np.zeros(2)
    flips: list[tuple[float, str, float, np.ndarray]] = []  # (ratio, issue, other end, delta)
    for issue in continuous:
        lo = np.array([_contribution(u, issue.name, issue.low) for u in (ua, ub)])
        hi = np.array([_contribution(u, issue.name, issue.high) for u in (ua, ub)])
        d = hi - lo
        take_high = d[0] > _TOL or (abs(d[0]) <= _TOL and d[1] > _TOL)
        best, other = (issue.high, issue.low) if take_high else (issue.low, issue.high)
        base[issue.name] = best
        base_point += hi if take_high else lo
        delta = -d if take_high else d
        if delta[0] < -_TOL and delta[1] > _TOL:  # conceding this issue trades a for b
            flips.append((delta[1] / -delta[0], issue.name, other, delta))
    # Concede the issues that buy the second party most per unit the first loses, first.
    flips.sort(key=lambda f: -f[0])
    chain: list[tuple[np.ndarray, dict[str, float]]] = [(base_point, dict(base))]
    for _, name, other, delta in flips:
        point, values = chain[-1]
        chain.append((point + delta, {**values, name: other}))
    lines = []
    for combo in itertools.product(*axes):
        fixed = dict(zip([i.name for i in discrete], combo, strict=True))
        offset = np.array(
            [sum(_contribution(u, n, v) for n, v in fixed.items()) for u in (ua, ub)]
        )
        lines.append(
            [
                (point + offset, {n: {**fixed, **values}[n] for n in space.names})
                for point, values in chain
            ]
        )
    return lines


def _best_b(p: np.ndarray, q: np.ndarray, a: float) -> float:
    """Most of the second utility on segment p..q (p has the larger first utility) at first >= a."""
    if a > p[0] + _TOL:
        return -math.inf
    if a <= q[0] or p[0] - q[0] <= _TOL:
        return float(q[1])
    return float(q[1] + (p[1] - q[1]) * (a - q[0]) / (p[0] - q[0]))


def _best_a(p: np.ndarray, q: np.ndarray, b: float) -> float:
    """Most of the first utility on segment p..q at second >= b."""
    if b > q[1] + _TOL:
        return -math.inf
    if b <= p[1] or q[1] - p[1] <= _TOL:
        return float(p[0])
    return float(p[0] + (q[0] - p[0]) * (b - p[1]) / (q[1] - p[1]))


def exact_pareto_frontier(
    utilities: Sequence[LinearAdditiveUtility], space: OutcomeSpace
) -> list[FrontierSegment]:
    """The exact Pareto frontier of two linear-additive utilities over ``space``, as segments
    ordered from the first party's best outcome to the second's (ValueError for other than two
    parties or more than :data:`MAX_DISCRETE_COMBINATIONS` discrete combinations)."""
    _check_parties(utilities, space)
    lines = _polylines(utilities, space)
    raw: list[tuple[np.ndarray, np.ndarray, dict[str, Any], dict[str, Any]]] = []
    for line in lines:
        if len(line) == 1:
            raw.append((line[0][0], line[0][0], line[0][1], line[0][1]))
        for (p, x), (q, y) in itertools.pairwise(line):
            raw.append((p, q, x, y))
    pieces = raw if len(lines) == 1 else _undominated(raw)
    pieces.sort(key=lambda r: (-r[0][0], r[0][1]))
    return [
        FrontierSegment(dict(x), dict(y), (float(p[0]), float(p[1])), (float(q[0]), float(q[1])))
        for p, q, x, y in pieces
    ]


def _undominated(
    raw: list[tuple[np.ndarray, np.ndarray, dict[str, Any], dict[str, Any]]],
) -> list[tuple[np.ndarray, np.ndarray, dict[str, Any], dict[str, Any]]]:
    """The parts of the segments no point of any other segment Pareto-dominates.

    What a segment j (weakly) dominates is convex — the points below both its best coordinates
    and, for a segment that trades one utility for the other, below its line — so the part of
    segment k it dominates is one interval of k's parameter, found by clipping k against three
    half-planes. Strictly dominated are those points but the ones on j's own efficient points (on
    its line, for a trading j: a segment on the same line as k dominates none of it). Every j is
    clipped against k at once (numpy); k keeps the gaps of the union of the intervals. O(n^2) for
    n segments: thousands (one per combination of discrete issues) take about a second."""
    starts = np.array([p for p, *_ in raw], dtype=float)
    ends = np.array([q for _, q, *_ in raw], dtype=float)
    n = len(raw)
    best = np.maximum(starts, ends)  # (n, 2): each segment's best of both coordinates
    d = ends - starts
    trades = d[:, 0] * d[:, 1] < 0  # one utility rises as the other falls: its line bounds the region
    normal = np.where(trades[:, None], np.abs(d[:, ::-1]), 0.0)  # (|db|, |da|): up and to the right
    norm = np.hypot(normal[:, 0], normal[:, 1])
    level = (normal * starts).sum(axis=1)  # normal . x on segment j's line
    tol = 1e-9
    kept = []
    for k, (p, q, x, y) in enumerate(raw):
        point = abs(d[k, 0]) <= _TOL and abs(d[k, 1]) <= _TOL
        lo = np.zeros(n)
        hi = np.ones(n)
        # a(t) = p0 + t da <= best_a; b(t) = p1 + t db <= best_b; n.x(t) <= level (each + tol)
        for coef, rhs in (
            (np.full(n, d[k, 0]), best[:, 0] + tol - starts[k, 0]),
            (np.full(n, d[k, 1]), best[:, 1] + tol - starts[k, 1]),
            (normal @ d[k], np.where(trades, level + tol * norm - normal @ starts[k], np.inf)),
        ):
            with np.errstate(divide="ignore", invalid="ignore"):
                bound = rhs / coef
            hi = np.where(coef > 0, np.minimum(hi, bound), hi)
            lo = np.where(coef < 0, np.maximum(lo, bound), lo)
            lo = np.where((coef == 0) & (rhs < 0), 2.0, lo)
        # j's own efficient points dominate nothing of k: k on j's line (a trading j), or, for
        # a point k, the very corner of a j that does not trade
        on_line = trades & (np.abs(normal @ starts[k] - level) <= tol * np.maximum(norm, 1.0))
        if not point:
            on_line &= np.abs(normal @ d[k]) <= tol * np.maximum(norm, 1.0)  # k runs along that line
        same_corner = ~trades & (np.abs(best - starts[k]) <= tol).all(axis=1) if point else np.zeros(n, dtype=bool)
        ignore = on_line | same_corner
        ignore[k] = True  # nor does k itself
        lo[ignore], hi[ignore] = 2.0, -1.0
        covering = lo <= hi
        if point:
            if not (covering & (lo <= 0.0) & (hi >= 0.0)).any():
                kept.append((p, q, x, y))
            continue
        order = np.argsort(lo[covering], kind="stable")
        free, reach = [], 0.0
        for a, b in zip(lo[covering][order].tolist(), hi[covering][order].tolist(), strict=True):
            if a > reach + 1e-12:
                free.append((reach, min(a, 1.0)))
            reach = max(reach, b)
            if reach >= 1.0:
                break
        if reach < 1.0 - 1e-12:
            free.append((reach, 1.0))
        for s0, s1 in free:
            if s1 - s0 > 1e-12:
                kept.append((p + (q - p) * s0, p + (q - p) * s1, _interpolate(x, y, s0), _interpolate(x, y, s1)))
    return kept


def _gains_interval(
    segment: FrontierSegment, reservations: tuple[float, float]
) -> tuple[float, float] | None:
    """The part [s0, s1] of the segment where both parties gain at least nothing (None if empty)."""
    lo, hi = 0.0, 1.0
    for k in range(2):
        start, end = segment.start_utilities[k], segment.end_utilities[k]
        g0, dg = start - reservations[k], end - start
        if abs(dg) <= _TOL:
            if g0 < -_TOL:
                return None
            continue
        bound = -g0 / dg
        if dg > 0:
            lo = max(lo, bound)
        else:
            hi = min(hi, bound)
    return (lo, hi) if lo <= hi + _TOL else None


def _nash_on_frontier(
    utilities: Sequence[LinearAdditiveUtility], frontier: list[FrontierSegment]
) -> tuple[float, FrontierSegment, float] | None:
    ra, rb = (float(u.reservation) for u in utilities)
    best: tuple[float, FrontierSegment, float] | None = None
    for seg in frontier:
        interval = _gains_interval(seg, (ra, rb))
        if interval is None:
            continue
        (a0, b0), (a1, b1) = seg.start_utilities, seg.end_utilities
        ga, gb, da, db = a0 - ra, b0 - rb, a1 - a0, b1 - b0
        candidates = [interval[0], min(interval[1], 1.0)]
        if abs(da * db) > _TOL * _TOL:
            # d/ds (ga + s da)(gb + s db) = 0
            s_star = -(ga * db + gb * da) / (2 * da * db)
            if interval[0] <= s_star <= interval[1]:
                candidates.append(s_star)
        for s in candidates:
            product = (ga + s * da) * (gb + s * db)
            if best is None or product > best[0] + _TOL:
                best = (product, seg, s)
    if best is None or best[0] <= _TOL:
        return None  # no outcome gives both parties a positive gain
    return best


def exact_nash_point(
    utilities: Sequence[LinearAdditiveUtility], space: OutcomeSpace
) -> dict[str, Any] | None:
    """The Nash bargaining solution over the whole space: the outcome maximising the product of
    both parties' gains (continuous issues possibly off their tick); None when no outcome gives
    both a positive gain."""
    found = _nash_on_frontier(utilities, exact_pareto_frontier(utilities, space))
    if found is None:
        return None
    _, seg, s = found
    return seg.outcome_at(s)


def _point_segment_distance(x: np.ndarray, seg: FrontierSegment) -> float:
    p, q = np.array(seg.start_utilities), np.array(seg.end_utilities)
    d = q - p
    length = float(d @ d)
    s = 0.0 if length <= _TOL * _TOL else min(max(float((x - p) @ d) / length, 0.0), 1.0)
    return float(np.linalg.norm(x - (p + s * d)))


def exact_distance_to_pareto(
    utilities: Sequence[LinearAdditiveUtility], space: OutcomeSpace, outcome: Mapping[str, Any]
) -> float:
    """Euclidean distance in utility space from ``outcome`` to the exact Pareto frontier."""
    x = np.array([u(outcome) for u in utilities], dtype=float)
    return min(_point_segment_distance(x, seg) for seg in exact_pareto_frontier(utilities, space))


def exact_distance_to_nash(
    utilities: Sequence[LinearAdditiveUtility], space: OutcomeSpace, outcome: Mapping[str, Any]
) -> float | None:
    """Euclidean distance in utility space from ``outcome`` to the exact Nash point (None if none)."""
    found = _nash_on_frontier(utilities, exact_pareto_frontier(utilities, space))
    if found is None:
        return None
    _, seg, s = found
    x = np.array([u(outcome) for u in utilities], dtype=float)
    return float(np.linalg.norm(x - np.array(seg.utilities_at(s))))


def max_welfare_gain(
    utilities: Sequence[LinearAdditiveUtility], space: OutcomeSpace
) -> float | None:
    """The largest joint gain (sum of gains over reservation values) any outcome in which neither
    party loses gives: the surplus available to the negotiation. None when every outcome leaves
    a party below its reservation value."""
    reservations = (float(utilities[0].reservation), float(utilities[1].reservation))
    best: float | None = None
    for seg in exact_pareto_frontier(utilities, space):
        interval = _gains_interval(seg, reservations)
        if interval is None:
            continue
        for s in interval:  # the joint gain is linear along a segment
            a, b = seg.utilities_at(min(max(s, 0.0), 1.0))
            gain = a + b - sum(reservations)
            best = gain if best is None else max(best, gain)
    return best
