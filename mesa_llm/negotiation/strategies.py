"""Rule-based negotiators: the classic baselines LLM negotiators are compared with.

Each strategy reads the session view an agent gets (``NegotiationSession.view``), its own
utility function and the outcome space, and returns one action ``(name, payload)`` or None.
Time-dependent concession (Boulware, Linear, Conceder; Faratin et al. 1998), relative
tit-for-tat, hard-headed, a single-text mediator and a truthful auction bidder. Strategies
are deterministic; the ``rng`` argument exists so randomised strategies can share the
interface (and the model's seeded generator). :data:`STRATEGIES` is the explicit registry.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from mesa_llm.market.money import Money
from mesa_llm.negotiation.issues import (
    CategoricalIssue,
    ContinuousIssue,
    Issue,
    OutcomeSpace,
)
from mesa_llm.negotiation.utility import LinearAdditiveUtility

__all__ = [
    "STRATEGIES",
    "Action",
    "Boulware",
    "Conceder",
    "HardHeaded",
    "Linear",
    "MediatorStrategy",
    "NegotiatorStrategy",
    "TimeDependent",
    "TitForTat",
    "TruthfulBidder",
    "make_strategy",
]

#: One decision: an action name and its payload.
Action = tuple[str, dict[str, Any]]

_AUCTIONS = ("sealed_bid", "english")
_EPS = 1e-9
#: the most points a single ticked continuous issue is discretised into (every tick up to it)
MAX_TICK_POINTS = 2001


def _snap(issue: Issue, value: Any) -> Any:
    """The valid value of ``issue`` nearest to ``value`` (numbers clamped and put on the tick)."""
    if isinstance(issue, CategoricalIssue):
        return value if value in issue.values else issue.values[0]
    x = min(max(float(value), float(issue.low)), float(issue.high))
    if isinstance(issue, ContinuousIssue):
        if issue.tick is None:
            return x
        money = Money(issue.tick)
        lo = math.ceil(issue.low / issue.tick - _EPS)
        hi = math.floor(issue.high / issue.tick + _EPS)
        return money.to_units(min(max(money.round_to_tick(x), lo), hi))
    return int(min(max(math.floor(x + 0.5), issue.low), issue.high))


class NegotiatorStrategy(ABC):
    """A rule-based negotiator: one decision per session view.

    The generic bargaining loop serves alternating offers, calls for proposals (as buyer or
    seller) and single-text mediation (as buyer or seller): compute the outcome to propose
    now, accept the best offer it may accept if :meth:`accepts` says so, else counter with
    the proposal (in single text: veto with the proposal as counter). Subclasses define
    :meth:`propose` and may override :meth:`accepts`; as a mediator any strategy mediates
    like :class:`MediatorStrategy`; in auctions only :class:`TruthfulBidder` bids.

    ``points_per_continuous`` sets how finely continuous issues are discretised (default: one
    continuous issue on a tick gets every tick up to :data:`MAX_TICK_POINTS` points, else 101
    points; two get 21, more 11), so an agent can offer its reservation price itself rather
    than the grid point above it.
    """

    name: ClassVar[str]

    def __init__(self, *, points_per_continuous: int | None = None) -> None:
        self.points_per_continuous = points_per_continuous
        self._grids: dict[OutcomeSpace, list[dict[str, Any]]] = {}
        self._values: dict[tuple[OutcomeSpace, str], np.ndarray] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # -- the decision -----------------------------------------------------------------

    def act(
        self,
        view: Mapping[str, Any],
        utility: LinearAdditiveUtility,
        space: OutcomeSpace,
        rng: np.random.Generator,
    ) -> Action | None:
        """Decide one action for this session now, or None (nothing to do)."""
        if view.get("status") != "open" or not view.get("allowed"):
            return None
        if view.get("role") == "mediator":
            return _mediate(view, space)
        if view.get("protocol") in _AUCTIONS:
            return self.bid(view, utility, space, rng)
        if view.get("protocol") == "single_text":
            return self._answer_text(view, utility, space)
        return self._bargain(view, utility, space)

    @abstractmethod
    def propose(
        self, view: Mapping[str, Any], utility: LinearAdditiveUtility, space: OutcomeSpace
    ) -> dict[str, Any]:
        """The outcome this strategy would offer now."""

    def accepts(
        self,
        view: Mapping[str, Any],
        utility: LinearAdditiveUtility,
        terms: Mapping[str, Any],
        proposal: Mapping[str, Any],
    ) -> bool:
        """AC_combi (Baarslag et al. 2014, as NegMAS's ``ACNext`` / ``ACCombi``): accept when the
        offer is worth at least what this agent would offer next (AC_next, ``proposal``), or, in
        this agent's last round (no round left for the other side to answer a counter-offer),
        whenever it is worth at least no agreement. Never below the reservation value."""
        u = utility(terms)
        if u < utility.reservation:
            return False
        if int(view.get("rounds_left") or 0) <= 1:
            return True
        return u >= utility(proposal) - _EPS

    def bid(
        self,
        view: Mapping[str, Any],
        utility: LinearAdditiveUtility,
        space: OutcomeSpace,
        rng: np.random.Generator,
    ) -> Action | None:
        """Auction behaviour: bargaining strategies do not bid."""
        return None

    # -- protocol glue ----------------------------------------------------------------

    def _bargain(
        self, view: Mapping[str, Any], utility: LinearAdditiveUtility, space: OutcomeSpace
    ) -> Action | None:
        allowed = view["allowed"]
        if "make_offer" not in allowed and "accept_offer" not in allowed:
            return None
        standing = list(view.get("standing") or [])
        best = max(standing, key=lambda o: (utility(o["terms"]), -o["offer_id"]), default=None)
        proposal = self.propose(view, utility, space)
        if (
            best is not None
            and "accept_offer" in allowed
            and self.accepts(view, utility, best["terms"], proposal)
        ):
            return ("accept_offer", {"offer_id": best["offer_id"]})
        if "make_offer" not in allowed:
            return None
        payload: dict[str, Any] = {"terms": proposal}
        if view.get("protocol") == "call_for_proposals" and view.get("role") == "buyer":
            if best is None:
                return None  # wait for proposals
            payload["to"] = best["proposer"]
        return ("make_offer", payload)

    def _answer_text(
        self, view: Mapping[str, Any], utility: LinearAdditiveUtility, space: OutcomeSpace
    ) -> Action | None:
        allowed = view["allowed"]
        text = view.get("text")
        if text is None or "reject_offer" not in allowed:
            return None
        proposal = self.propose(view, utility, space)
        if "accept_offer" in allowed and self.accepts(view, utility, text["terms"], proposal):
            return ("accept_offer", {"offer_id": text["offer_id"]})
        return ("reject_offer", {"offer_id": text["offer_id"], "counter": proposal})

    # -- helpers ----------------------------------------------------------------------

    def _grid(self, space: OutcomeSpace) -> list[dict[str, Any]]:
        grid = self._grids.get(space)
        if grid is None:
            n = self.points_per_continuous
            if n is None:
                continuous = [i for i in space.issues if isinstance(i, ContinuousIssue)]
                n = 101 if len(continuous) <= 1 else 21 if len(continuous) == 2 else 11
                if len(continuous) == 1 and continuous[0].tick is not None:
                    issue = continuous[0]
                    assert issue.tick is not None
                    ticks = math.floor((issue.high - issue.low) / issue.tick + _EPS) + 1
                    n = max(n, min(ticks, MAX_TICK_POINTS))
            grid = space.grid(n)
            self._grids[space] = grid
        return grid

    def _utilities(
        self, utility: LinearAdditiveUtility, space: OutcomeSpace
    ) -> tuple[list[dict[str, Any]], np.ndarray]:
        grid = self._grid(space)
        # Keyed by content, not identity: policies rebuild the utility from each step's view.
        key = (space, repr(utility))
        cached = self._values.get(key)
        if cached is None:
            cached = self._values[key] = utility.many(grid)
        return grid, cached

    def _closest_to(
        self,
        target: float,
        view: Mapping[str, Any],
        utility: LinearAdditiveUtility,
        space: OutcomeSpace,
    ) -> dict[str, Any]:
        """The grid outcome with utility >= target closest to it; ties: nearest the opponent's
        last offer in normalised issue space (else the first)."""
        grid, values = self._utilities(utility, space)
        candidates = np.flatnonzero(values >= target - _EPS)
        if candidates.size == 0:
            candidates = np.flatnonzero(values >= values.max() - _EPS)
        lowest = values[candidates].min()
        ties = candidates[values[candidates] <= lowest + _EPS]
        if ties.size > 1:
            other = _opponent_last(view)
            if other is not None:
                try:
                    point = space.normalised(space.validate(other))
                except (ValueError, KeyError):
                    point = None
                if point is not None:
                    dist = [float(np.sum((space.normalised(grid[k]) - point) ** 2)) for k in ties]
                    return dict(grid[int(ties[int(np.argmin(dist))])])
        return dict(grid[int(ties[0])])

    def _max_utility(self, utility: LinearAdditiveUtility, space: OutcomeSpace) -> float:
        return float(self._utilities(utility, space)[1].max())


def _opponent_last(view: Mapping[str, Any]) -> Mapping[str, Any] | None:
    me = view.get("you")
    for offer in reversed(list(view.get("offers") or [])):
        if offer.get("proposer") != me:
            terms = offer.get("terms")
            return terms if isinstance(terms, Mapping) else None
    return None


def _time(view: Mapping[str, Any]) -> float:
    """Relative time in [0, 1]: 0 at the first round, 1 at the last round in which this agent
    can still make an offer the other side can answer.

    An offer made in the last round (``max_rounds - 1``) can no longer be accepted, so the last
    useful round is ``max_rounds - 2``; under turn-taking (alternating offers) an agent offers
    only every ``len(parties)``-th round, so its last useful round is the latest one of its own
    turns. Normalising by ``max_rounds`` instead left a Boulware seller's last offer 41% of the
    way above its reservation value (t = 18/20, 1 - 0.9 ** 5), so deals inside the zone of
    agreement failed at the deadline.
    """
    rounds = max(int(view.get("max_rounds") or 1), 1)
    now = int(view.get("round") or 0)
    last = rounds - 2
    if view.get("turn") is not None:  # turn-based: this agent's own turns only
        period = max(len(view.get("parties") or ()), 1)
        last -= (last - now) % period
    if last <= 0:
        return 1.0
    return min(max(now / last, 0.0), 1.0)


class TimeDependent(NegotiatorStrategy):
    """Concede over time (Faratin et al. 1998): aspiration u(t) = r + (u_max - r) * (1 - t ** (1 / e)).

    ``t`` runs from 0 at the first round to 1 at this agent's last offer the other side can
    still accept, so the aspiration reaches the reservation value ``r`` there. e < 1 concedes
    late (Boulware), e = 1 linearly, e > 1 early (Conceder). Offers the grid outcome with
    utility >= the aspiration closest to it; accepts by AC_combi (:meth:`accepts`).
    """

    name: ClassVar[str] = "time_dependent"

    def __init__(self, exponent: float = 1.0, *, points_per_continuous: int | None = None) -> None:
        super().__init__(points_per_continuous=points_per_continuous)
        exponent = float(exponent)
        if not math.isfinite(exponent) or exponent <= 0:
            raise ValueError(f"exponent must be a finite number > 0, got {exponent}")
        self.exponent = exponent

    def __repr__(self) -> str:
        return f"{type(self).__name__}(exponent={self.exponent})"

    def aspiration(self, t: float, utility: LinearAdditiveUtility, u_max: float) -> float:
        """The utility aimed at, at relative time ``t`` in [0, 1]."""
        r = min(utility.reservation, u_max)
        return r + (u_max - r) * (1.0 - t ** (1.0 / self.exponent))

    def propose(
        self, view: Mapping[str, Any], utility: LinearAdditiveUtility, space: OutcomeSpace
    ) -> dict[str, Any]:
        """The outcome closest to (and not below) the current aspiration."""
        target = self.aspiration(_time(view), utility, self._max_utility(utility, space))
        return self._closest_to(target, view, utility, space)


class Boulware(TimeDependent):
    """Time-dependent with e = 0.2: holds out and concedes near the deadline."""

    name: ClassVar[str] = "boulware"

    def __init__(self, exponent: float = 0.2, *, points_per_continuous: int | None = None) -> None:
        super().__init__(exponent, points_per_continuous=points_per_continuous)


class Linear(TimeDependent):
    """Time-dependent with e = 1: concedes at a constant rate."""

    name: ClassVar[str] = "linear"

    def __init__(self, exponent: float = 1.0, *, points_per_continuous: int | None = None) -> None:
        super().__init__(exponent, points_per_continuous=points_per_continuous)


class Conceder(TimeDependent):
    """Time-dependent with e = 5: concedes early."""

    name: ClassVar[str] = "conceder"

    def __init__(self, exponent: float = 5.0, *, points_per_continuous: int | None = None) -> None:
        super().__init__(exponent, points_per_continuous=points_per_continuous)


class TitForTat(NegotiatorStrategy):
    """Relative tit-for-tat: starts from its best outcome and concedes, in its own utility,
    exactly as much as the opponent's last offer improved on its previous one; never below
    the reservation value. Accepts by AC_next.

    Keeps per-session memory (the opponent's offers seen), keyed by session and agent.
    """

    name: ClassVar[str] = "tit_for_tat"

    def __init__(self, *, points_per_continuous: int | None = None) -> None:
        super().__init__(points_per_continuous=points_per_continuous)
        # (session_id, agent) -> (aspiration, last opponent utility or None, seen offer ids)
        self._memory: dict[tuple[str, Any], tuple[float, float | None, set[int]]] = {}

    def propose(
        self, view: Mapping[str, Any], utility: LinearAdditiveUtility, space: OutcomeSpace
    ) -> dict[str, Any]:
        """The outcome closest to the aspiration after mirroring the opponent's concessions."""
        key = (str(view.get("session_id")), view.get("you"))
        u_max = self._max_utility(utility, space)
        level, last, seen = self._memory.get(key, (u_max, None, set()))
        me = view.get("you")
        for offer in view.get("offers") or []:
            if offer.get("proposer") == me or offer["offer_id"] in seen:
                continue
            seen.add(offer["offer_id"])
            u = utility(offer["terms"])
            if last is not None and u > last:
                level -= u - last
            last = u
        level = max(level, min(utility.reservation, u_max))
        self._memory[key] = (level, last, seen)
        return self._closest_to(level, view, utility, space)


class HardHeaded(NegotiatorStrategy):
    """Offers its best outcome until its last turn, then accepts any offer at or above its
    reservation value (and accepts its best outcome whenever offered)."""

    name: ClassVar[str] = "hard_headed"

    def propose(
        self, view: Mapping[str, Any], utility: LinearAdditiveUtility, space: OutcomeSpace
    ) -> dict[str, Any]:
        """Its best outcome (ties: nearest the opponent's last offer)."""
        return self._closest_to(self._max_utility(utility, space), view, utility, space)

    def accepts(
        self,
        view: Mapping[str, Any],
        utility: LinearAdditiveUtility,
        terms: Mapping[str, Any],
        proposal: Mapping[str, Any],
    ) -> bool:
        """Its best outcome any time; anything acceptable on its last turn."""
        if super().accepts(view, utility, terms, proposal):
            return True
        # Under alternating offers the other party has every second round, so the last
        # turn of this agent can be the second-to-last round.
        last = 2 if view.get("protocol") == "alternating_offers" else 1
        return int(view.get("rounds_left") or 0) <= last and utility(terms) >= utility.reservation


def _midpoint(issue: Issue) -> Any:
    if isinstance(issue, CategoricalIssue):
        return issue.values[(len(issue.values) - 1) // 2]
    return _snap(issue, (float(issue.low) + float(issue.high)) / 2)


def _mediate(view: Mapping[str, Any], space: OutcomeSpace) -> Action | None:
    """The single-text mediator rule (see :class:`MediatorStrategy`)."""
    if view.get("protocol") != "single_text" or "propose_settlement" not in view["allowed"]:
        return None
    if view.get("pending_text") is not None:
        return None
    text = view.get("text")
    if text is None:
        return ("propose_settlement", {"terms": {i.name: _midpoint(i) for i in space.issues}})
    responses = dict(view.get("responses") or {})
    if "veto" not in responses.values():
        return None  # waiting for answers (or for the second acceptance)
    counters = [c for c in (view.get("counters") or {}).values() if c]
    current = text["terms"]
    terms: dict[str, Any] = {}
    for issue in space.issues:
        values = [c[issue.name] for c in counters if issue.name in c]
        if not values:
            terms[issue.name] = current[issue.name]
        elif isinstance(issue, CategoricalIssue):
            counts = Counter(values)
            top = max(counts.values())
            leaders = [v for v in issue.values if counts.get(v) == top]
            if len(leaders) == 1:
                terms[issue.name] = leaders[0]
            else:
                # the parties want different values: split the difference along the order in
                # which the scenario lists them (e.g. raw < cleaned < labelled)
                order = list(issue.values)
                mean = float(np.mean([order.index(v) for v in values]))
                here = order.index(current[issue.name])
                terms[issue.name] = order[min(range(len(order)), key=lambda i: (abs(i - mean), abs(i - here)))]
        else:
            aim = float(np.mean([float(v) for v in values]))
            cur = float(current[issue.name])
            terms[issue.name] = _snap(issue, cur + 0.5 * (aim - cur))
    return ("propose_settlement", {"terms": space.validate(terms)})


class MediatorStrategy(NegotiatorStrategy):
    """Single-text mediator: proposes the midpoint of the issue ranges first; after a veto,
    moves each numeric issue halfway towards the average of the parties' last counter-proposals
    and each categorical issue to the most common counter (when the counters disagree, to the
    value between them in the issue's listed order). Waits while answers are pending."""

    name: ClassVar[str] = "mediator"

    def act(
        self,
        view: Mapping[str, Any],
        utility: LinearAdditiveUtility,
        space: OutcomeSpace,
        rng: np.random.Generator,
    ) -> Action | None:
        """Mediate when the view's role is "mediator"; otherwise do nothing."""
        if view.get("status") != "open" or view.get("role") != "mediator":
            return None
        return _mediate(view, space)

    def propose(
        self, view: Mapping[str, Any], utility: LinearAdditiveUtility, space: OutcomeSpace
    ) -> dict[str, Any]:
        """The midpoint of the issue ranges."""
        return {i.name: _midpoint(i) for i in space.issues}


class TruthfulBidder(NegotiatorStrategy):
    """Bids by the textbook equilibria for a private ``value`` per unit.

    Sealed-bid second price: bids its value (dominant strategy). First price: the symmetric
    risk-neutral equilibrium for n bidders with independent values uniform on [a, b]:
    a + (n-1)/n * (value - a), with a the auction's ``value_low`` (0 if not shown; Krishna,
    *Auction Theory*, ch. 2; with a = 0 it is value * (n-1)/n). English: bids the
    minimum next bid while that is at most its value. Prices are rounded down to the tick.
    Does not bargain (propose returns nothing useful outside auctions: it is not called).
    """

    name: ClassVar[str] = "truthful_bidder"

    def __init__(self, value: float, *, points_per_continuous: int | None = None) -> None:
        super().__init__(points_per_continuous=points_per_continuous)
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"value must be a finite number >= 0, got {value}")
        self.value = value

    def __repr__(self) -> str:
        return f"TruthfulBidder(value={self.value})"

    def act(
        self,
        view: Mapping[str, Any],
        utility: LinearAdditiveUtility,
        space: OutcomeSpace,
        rng: np.random.Generator,
    ) -> Action | None:
        """Bid in auctions; nothing elsewhere."""
        if view.get("status") != "open" or view.get("protocol") not in _AUCTIONS:
            return None
        return self.bid(view, utility, space, rng)

    def bid(
        self,
        view: Mapping[str, Any],
        utility: LinearAdditiveUtility,
        space: OutcomeSpace,
        rng: np.random.Generator,
    ) -> Action | None:
        """The equilibrium bid for this auction, or None."""
        if "bid" not in view.get("allowed", []) or view.get("role") != "bidder":
            return None
        money = Money(view.get("tick") or 0.01)
        if view["protocol"] == "sealed_bid":
            if view.get("your_bid") is not None:
                return None
            n = max(len(view.get("bidders") or []), 1)
            low = min(float(view.get("value_low") or 0.0), self.value)
            price = (
                self.value
                if view.get("pricing") == "second_price"
                else low + (self.value - low) * (n - 1) / n
            )
            ticks = math.floor(price / money.tick_size + _EPS)
            if ticks < money.to_ticks(view.get("reserve_price") or 0.0):
                return None  # cannot win without paying more than the value
            return ("bid", {"price": money.to_units(ticks)})
        if view.get("you_lead"):
            return None
        minimum = float(view["min_bid"])
        if money.to_ticks(minimum) > math.floor(self.value / money.tick_size + _EPS):
            return None
        return ("bid", {"price": minimum})

    def propose(
        self, view: Mapping[str, Any], utility: LinearAdditiveUtility, space: OutcomeSpace
    ) -> dict[str, Any]:
        """Its best outcome (unused: TruthfulBidder only bids)."""
        return self._closest_to(self._max_utility(utility, space), view, utility, space)


#: Strategy name -> factory taking keyword parameters (an explicit registry, never mutated here).
STRATEGIES: dict[str, Callable[..., NegotiatorStrategy]] = {
    "time_dependent": TimeDependent,
    "boulware": Boulware,
    "linear": Linear,
    "conceder": Conceder,
    "tit_for_tat": TitForTat,
    "hard_headed": HardHeaded,
    "mediator": MediatorStrategy,
    "truthful_bidder": TruthfulBidder,
}


def make_strategy(name: str, **params: Any) -> NegotiatorStrategy:
    """Build a strategy by name from :data:`STRATEGIES` (ValueError naming the known ones)."""
    try:
        factory = STRATEGIES[name]
    except KeyError:
        raise ValueError(
            f"unknown negotiation strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}"
        ) from None
    return factory(**params)
