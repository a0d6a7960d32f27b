"""Pricing policies for the firms of a posted-price market (``mesa_llm.policies`` entry points).

- ``nash``: the static best response to the rivals' last prices (best-response dynamics reach the
  one-shot Bertrand-Nash prices within a few steps);
- ``monopoly``: the firm's part of the joint-profit-maximising prices;
- ``penetration`` / ``premium`` (seed 000's A/B): a fixed markup over cost, as a multiple of the
  Nash markup (``markup``: 0.5 below the competitive price, 2.0 about the monopoly price in
  Calvano's baseline), with an optional advertising spend per step;
- ``q_learning``: Calvano, Calzolari, Denicolò and Pastorello (AER 2020): m prices on
  [p_N - xi (p_M - p_N), p_M + xi (p_M - p_N)] (the market's own grid when it has one), the state
  is last step's prices, Q-learning with rate ``alpha``, discount ``delta`` and exploration
  ``exp(-beta t)``, Q initialised to the discounted profit against uniformly random rivals.

LLM pricers are the built-in ``policy: llm`` with this plugin's prompts (``scenarios/prompts``).
Each reads the market's part of its observation (``observation.mechanisms["posted_price"]``) and
every random draw comes from the ``rng`` the world passes in.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from mesa_llm.actions import ActionBase, Decision
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.policies import DecisionPolicy, PolicyParams
from mesa_llm_consumer_markets.economics import LogitDemand, calvano_grid
from mesa_llm_consumer_markets.mechanism import NAME, Advertise, PostPrice


def market_part(observation: Observation) -> dict[str, Any] | None:
    """The posted-price market's part of an observation (None for an agent that is not a firm)."""
    part = observation.mechanisms.get(NAME)
    return part if isinstance(part, dict) else None


def demand_of(part: dict[str, Any]) -> LogitDemand:
    """The market's logit demand, as its observation part states it."""
    d = part["demand"]
    return LogitDemand.of(d["quality"], d["outside_quality"], d["mu"], d["cost"])


def admissible(price: float, part: dict[str, Any]) -> float:
    """``price`` made postable: the nearest grid price (with a grid), else clamped to the range and
    rounded to the tick."""
    grid = part.get("price_grid")
    if grid:
        return float(min(grid, key=lambda g: abs(g - price)))
    low, high = part["price_range"]
    tick = part["tick_size"]
    ticks = round(min(max(price, low), high) / tick)
    snapped = round(ticks * tick, 10)
    return snapped if low - 1e-12 <= snapped <= high + 1e-12 else float(low)


#: theory per demand (solving is ~1 ms; every firm asks every step)
_THEORY: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = {}


def theory(demand: LogitDemand) -> tuple[np.ndarray, np.ndarray]:
    """(Nash prices, monopoly prices) of ``demand``, computed once per demand."""
    key = (demand.quality, demand.outside_quality, demand.mu, demand.cost)
    found = _THEORY.get(key)
    if found is None:
        found = _THEORY[key] = (demand.nash_prices(), demand.monopoly_prices())
        while len(_THEORY) > 64:
            del _THEORY[next(iter(_THEORY))]
    return found


def _post(observation: Observation, price: float, advertising: float = 0.0) -> Decision:
    if "post_price" not in observation.available_actions:
        return Decision()
    actions: list[ActionBase] = [PostPrice(price=price)]
    part = market_part(observation)
    if advertising > 0 and part is not None and "advertise" in observation.available_actions:
        left = float(part.get("marketing_budget_left") or 0.0)
        amount = round(round(min(advertising, left, observation.account.available_cash) / observation.tick_size) * observation.tick_size, 10)
        if amount > 0:
            actions.append(Advertise(amount=amount))
    return Decision(actions=actions)


class NashPricer(DecisionPolicy):
    """Posts its static best response to the rivals' last prices."""

    name: ClassVar[str] = "nash"
    summary: ClassVar[str] = "best response to the rivals' last prices (reaches the Bertrand-Nash prices)"

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        part = market_part(observation)
        if part is None:
            return Decision()
        demand = demand_of(part)
        price = demand.best_response(part["you"], np.asarray(part["last_prices"], dtype=float))
        return _post(observation, admissible(price, part))


class MonopolyPricer(DecisionPolicy):
    """Posts its part of the prices that maximise the firms' joint profit."""

    name: ClassVar[str] = "monopoly"
    summary: ClassVar[str] = "its part of the joint-profit-maximising (monopoly) prices"

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        part = market_part(observation)
        if part is None:
            return Decision()
        _, monopoly = theory(demand_of(part))
        return _post(observation, admissible(float(monopoly[part["you"]]), part))


class MarkupParams(PolicyParams):
    """A fixed markup over cost, as a multiple of the Nash markup, and advertising per step."""

    markup: float = Field(default=1.0, ge=0, le=100, description="markup over cost as a multiple of the Nash markup")
    advertising: float = Field(default=0.0, ge=0, description="advertising spend per step (currency units, budget allowing)")


class _MarkupPricer(DecisionPolicy):
    Params: ClassVar[type[PolicyParams]] = MarkupParams

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        part = market_part(observation)
        if part is None:
            return Decision()
        params: MarkupParams = self.params  # type: ignore[assignment]
        k = part["you"]
        nash, _ = theory(demand_of(part))
        cost = part["marginal_cost"]
        return _post(observation, admissible(cost + params.markup * (float(nash[k]) - cost), part), params.advertising)


class PenetrationParams(MarkupParams):
    """Penetration pricing's markup (default half the Nash markup) and advertising."""

    markup: float = Field(default=0.5, ge=0, le=100, description="markup over cost as a multiple of the Nash markup")


class PremiumParams(MarkupParams):
    """Premium pricing's markup (default twice the Nash markup) and advertising."""

    markup: float = Field(default=2.0, ge=0, le=100, description="markup over cost as a multiple of the Nash markup")


class PenetrationPricer(_MarkupPricer):
    """Penetration pricing: a low markup (half the Nash markup by default) to win share."""

    name: ClassVar[str] = "penetration"
    summary: ClassVar[str] = "low price for share: cost + 0.5 x the Nash markup (seed 000's A/B arm)"
    Params: ClassVar[type[PolicyParams]] = PenetrationParams


class PremiumPricer(_MarkupPricer):
    """Premium pricing: a high markup (twice the Nash markup by default, about the monopoly price)."""

    name: ClassVar[str] = "premium"
    summary: ClassVar[str] = "high price for margin: cost + 2 x the Nash markup (seed 000's A/B arm)"
    Params: ClassVar[type[PolicyParams]] = PremiumParams


# ---------------------------------------------------------------------------- Q-learning


class QLearningParams(PolicyParams):
    """Calvano et al.'s Q-learning pricer (their baseline values by default)."""

    m: int = Field(default=15, ge=2, le=100, description="prices on the grid (when the market has none)")
    xi: float = Field(default=0.1, ge=0, le=10, description="grid extension beyond Nash and monopoly")
    alpha: float = Field(default=0.15, gt=0, le=1, description="learning rate")
    beta: float = Field(default=4e-6, ge=0, le=1000, description="exploration decay: epsilon_t = exp(-beta t)")
    delta: float = Field(default=0.95, ge=0, lt=1, description="discount factor")


def initial_q(profits: np.ndarray, firm: int, m: int, firms: int, delta: float) -> np.ndarray:
    """Calvano et al.'s Q_0: each own price's profit averaged over uniformly random rival prices,
    discounted forever: ``sum_{a_-i} pi_i(a_i, a_-i) / ((1 - delta) m^(n-1))`` (the same in every
    state). ``profits`` holds every joint action's profits, shape (m^n, n), actions in row-major
    order (firm 0 the slowest)."""
    own = profits[:, firm].reshape((m,) * firms)
    others = tuple(axis for axis in range(firms) if axis != firm)
    return own.mean(axis=others) / (1.0 - delta)


class QLearningPricer(DecisionPolicy):
    """Learns which grid price to post in each state (last step's prices) by Q-learning."""

    name: ClassVar[str] = "q_learning"
    summary: ClassVar[str] = "Calvano et al. (2020) Q-learning on a price grid; state = last prices"
    Params: ClassVar[type[PolicyParams]] = QLearningParams

    def __init__(self, params: PolicyParams | None = None) -> None:
        super().__init__(params)
        self.grid: np.ndarray | None = None
        self.q: np.ndarray | None = None
        self.t = 0
        self._last: tuple[int, int] | None = None  # (state, action) of the last step

    def _setup(self, part: dict[str, Any]) -> None:
        p: QLearningParams = self.params  # type: ignore[assignment]
        demand = demand_of(part)
        if part.get("price_grid"):
            grid = np.asarray(part["price_grid"], dtype=float)
        else:
            nash, monopoly = theory(demand)
            raw = calvano_grid(float(nash.mean()), float(monopoly.mean()), p.m, p.xi)
            grid = np.unique(np.asarray([admissible(x, part) for x in raw]))
        firms = len(part["firm_ids"])
        m = len(grid)
        mesh = np.stack(np.meshgrid(*([grid] * firms), indexing="ij"), axis=-1).reshape(-1, firms)
        profits = demand.profits_many(mesh)
        self.grid = grid
        self.q = np.tile(initial_q(profits, part["you"], m, firms, p.delta), (m**firms, 1))

    def state(self, prices: list[float]) -> int:
        """The state index of a price vector (each price at its nearest grid point)."""
        assert self.grid is not None
        m = len(self.grid)
        index = 0
        for price in prices:
            index = index * m + int(np.abs(self.grid - price).argmin())
        return index

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        part = market_part(observation)
        if part is None or "post_price" not in observation.available_actions:
            return Decision()
        p: QLearningParams = self.params  # type: ignore[assignment]
        if self.q is None:
            self._setup(part)
        assert self.q is not None and self.grid is not None
        state = self.state(part["last_prices"])
        if self._last is not None and part["history"]:
            previous, action = self._last
            reward = part["history"][-1]["profit"] / part["num_consumers"]
            target = reward + p.delta * float(self.q[state].max())
            self.q[previous, action] += p.alpha * (target - self.q[previous, action])
        epsilon = math.exp(-p.beta * self.t)
        self.t += 1
        if rng.random() < epsilon:
            action = int(rng.integers(len(self.grid)))
        else:
            action = int(self.q[state].argmax())
        self._last = (state, action)
        return Decision(actions=[PostPrice(price=float(self.grid[action]))])


__all__ = [
    "MonopolyPricer",
    "NashPricer",
    "PenetrationPricer",
    "PremiumPricer",
    "QLearningPricer",
    "admissible",
    "demand_of",
    "initial_q",
    "market_part",
    "theory",
]
