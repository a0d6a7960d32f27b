"""The posted-price consumer market: firms post prices (and may advertise); consumers choose.

Each step every firm may ``post_price`` (in force from this step's clearing until it posts again) and,
with a marketing budget, ``advertise``. When the step clears, the consumers choose:

- ``consumers: logit`` — every consumer buys one unit from one firm or takes the outside option,
  by logit demand ``q_i = exp((a_i - p_i)/mu) / (sum_j exp((a_j - p_j)/mu) + exp(a0/mu))``
  (Calvano et al. 2020). ``demand: expected`` splits the consumers by these shares (integers, by
  largest remainder: the continuum model up to one consumer); ``demand: sampled`` lets each consumer
  draw its choice (a multinomial draw from the run's generator).
- ``consumers: bass`` — a new product: each consumer who has not adopted yet adopts in a step with
  probability ``p + q * (share of adopters among its contacts)`` (Bass 1969); contacts are everyone
  (``contacts: fully_mixed``) or a Watts-Strogatz small world (``contacts: small_world``, networkx,
  seeded from the run's generator). An adopter buys one unit, from the firms split by their logit
  shares among themselves.

Advertising: a firm's spend A this step (currency units, out of its ``marketing_budget`` and its
cash, paid outside the economy) raises, by ``lift * (1 - exp(-A / scale))``, its quality ``a_i``
(logit) or, summed over the firms, the innovation coefficient ``p`` (Bass) for this step.

Consumers are not Mesa agents: 1,000-10,000 of them as agents cost ~0.6 s a step just to observe
(measured: 10,000 idle agents, 0.58 s a step) against ~1 ms here. They are numpy arrays (who has
adopted, the contact network) with ONE ledger account (``consumers``) holding their cash and what
they bought; it is funded at the start with enough for every consumer to buy one unit at the highest
admissible price in every step (logit) or once (Bass). Every purchase settles through the ledger:
production issues the units to the firm and retires its marginal cost (paid outside the economy),
the units go to the consumers' account and the price to the firm. A firm pricing below cost that
cannot pay the loss sells only the units it can pay for (the others' buyers get nothing).

Recorded: ``posted_price_setup`` once (the demand, the one-shot Bertrand-Nash and joint-profit
prices and profits, the grid, the consumers' account) and ``posted_price_outcome`` every step
(prices, quantities, shares, revenue, cost, profit, profit per consumer, advertising; Bass:
adopters). Every random draw comes from the run's generator.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mesa_llm.actions import ActionBase, RejectedAction
from mesa_llm.market import LedgerError, OffTickError
from mesa_llm.mechanisms import Mechanism, MechanismContext, MechanismParams, Recorded
from mesa_llm_consumer_markets.economics import EquilibriumError, LogitDemand, calvano_grid

if TYPE_CHECKING:
    from mesa_llm.agents.roles import Role
    from mesa_llm.agents.trader import TraderAgent

#: the mechanism's name: the entry point's, the ``type`` of its scenario entry, its observation key
NAME = "posted_price"
#: the ledger account of the consumers
CONSUMERS = "consumers"
#: longest list of grid prices named in a message
_SHOWN = 6


# ---------------------------------------------------------------------------- actions


class PostPrice(ActionBase):
    """Set your price per unit, in force from this step until you post another."""

    tool_name: ClassVar[str] = "post_price"
    type: Literal["post_price"] = "post_price"
    price: float = Field(gt=0, allow_inf_nan=False, description="price per unit in currency units, a multiple of the tick size")

    @classmethod
    def narrow_schema(cls, parameters: dict[str, Any], observation: Any) -> None:
        part = (getattr(observation, "mechanisms", None) or {}).get(NAME)
        if not isinstance(part, dict):
            return
        described = parameters["properties"]["price"].get("description")
        grid = part.get("price_grid")
        if grid:
            schema: dict[str, Any] = {"type": "number", "enum": list(grid)}
        else:
            low, high = part["price_range"]
            schema = {"type": "number", "minimum": low, "maximum": high}
        if described:
            schema["description"] = described
        parameters["properties"]["price"] = schema


class Advertise(ActionBase):
    """Spend part of your marketing budget on advertising this step."""

    tool_name: ClassVar[str] = "advertise"
    type: Literal["advertise"] = "advertise"
    amount: float = Field(gt=0, allow_inf_nan=False, description="currency units, a multiple of the tick size")

    @classmethod
    def narrow_schema(cls, parameters: dict[str, Any], observation: Any) -> None:
        part = (getattr(observation, "mechanisms", None) or {}).get(NAME)
        if isinstance(part, dict) and part.get("marketing_budget_left"):
            left = part["marketing_budget_left"]
            parameters["properties"]["amount"] = {"type": "number", "minimum": 0, "maximum": left}


# ---------------------------------------------------------------------------- parameters


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class BassSpec(_Part):
    """The Bass model of ``consumers: bass``."""

    p: float = Field(default=0.03, ge=0, le=1, description="innovation: adoption probability per step without adopters around")
    q: float = Field(default=0.38, ge=0, le=1, description="imitation: added probability when every contact has adopted")
    contacts: Literal["fully_mixed", "small_world"] = "fully_mixed"
    neighbours: int = Field(default=10, ge=2, le=1000, description="small world: contacts per consumer (even)")
    rewire: float = Field(default=0.1, ge=0, le=1, description="small world: probability of rewiring each contact")


class AdvertisingSpec(_Part):
    """How advertising works: spend A raises quality (logit) or p (Bass) by lift * (1 - exp(-A/scale))."""

    lift: float = Field(default=0.0, ge=0, description="the most advertising can add (quality units, or Bass p)")
    scale: float = Field(default=100.0, gt=0, description="spend (currency units) giving 63% of the lift")


class PriceGridSpec(_Part):
    """Calvano et al.'s grid: ``points`` prices on [p_N - xi (p_M - p_N), p_M + xi (p_M - p_N)]."""

    points: int = Field(default=15, ge=2, le=1000)
    xi: float = Field(default=0.1, ge=0, le=10)


def _per_firm(value: float | list[float], what: str, *, non_negative: bool = False) -> float | list[float]:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ValueError(f"give one {what} or one per firm")
    for v in values:
        if not math.isfinite(v):
            raise ValueError(f"{what} must be finite numbers")
        if non_negative and v < 0:
            raise ValueError(f"{what} cannot be negative, got {v:g}")
    return value


class PostedPriceParams(MechanismParams):
    """A posted-price consumer market (one ``mechanisms`` entry of a scenario)."""

    type: Literal["posted_price"]
    good: str = Field(min_length=1, max_length=64, description="the product (one of the scenario's goods)")
    firms: str | list[str] = Field(description="the population(s) of the firms, in order")
    num_consumers: int = Field(default=1000, ge=1, le=1_000_000, description="consumers (the market size M)")
    consumers: Literal["logit", "bass"] = Field(default="logit", description="how consumers choose")
    demand: Literal["expected", "sampled"] = "expected"
    quality: float | list[float] = Field(default=2.0, description="a_i, one or one per firm")
    outside_quality: float = Field(default=0.0, description="a_0, the outside option's quality")
    mu: float = Field(default=0.25, gt=0, description="horizontal differentiation (> 0)")
    cost: float | list[float] = Field(default=1.0, description="marginal cost c_i (>= 0), one or one per firm")
    price_grid: PriceGridSpec | None = Field(default=None, description="prices must be on this grid (Calvano)")
    initial_price: float | list[float] | None = Field(default=None, description="prices in force before any post (default: the good's reference price)")
    marketing_budget: float = Field(default=0.0, ge=0, description="advertising each firm may spend over the run")
    advertising: AdvertisingSpec = Field(default_factory=AdvertisingSpec)
    bass: BassSpec = Field(default_factory=BassSpec)
    history_shown: int = Field(default=10, ge=0, le=1000, description="own past steps in an observation")

    @field_validator("quality")
    @classmethod
    def _quality(cls, value: float | list[float]) -> float | list[float]:
        return _per_firm(value, "qualities")

    @field_validator("cost")
    @classmethod
    def _cost(cls, value: float | list[float]) -> float | list[float]:
        return _per_firm(value, "marginal costs", non_negative=True)

    @field_validator("initial_price")
    @classmethod
    def _initial(cls, value: float | list[float] | None) -> float | list[float] | None:
        if value is not None:
            _per_firm(value, "initial prices", non_negative=True)
        return value

    @field_validator("firms")
    @classmethod
    def _firms(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("name at least one population of firms")
        return value

    @property
    def firm_populations(self) -> list[str]:
        """The firms' population labels, in order."""
        return [self.firms] if isinstance(self.firms, str) else list(self.firms)


def _spread(value: float | list[float] | None, n: int) -> list[float] | None:
    if value is None:
        return None
    return [float(value)] * n if not isinstance(value, list) else [float(v) for v in value]


def _fmt(values: Any) -> str:
    return "[" + ", ".join(f"{float(v):.6g}" for v in values) + "]"


# ---------------------------------------------------------------------------- the theory of one entry


class Theory:
    """What an entry's parameters imply before anything runs: the firms, the demand, the one-shot
    Bertrand-Nash and joint-profit prices and profits, and the price grid (ticks)."""

    def __init__(self, params: PostedPriceParams, scenario: Any) -> None:
        """ValueError with a ``field: problem`` line when the entry does not fit the scenario."""
        self.params = params
        labels = {p.label: p for p in scenario.populations}
        missing = [f for f in params.firm_populations if f not in labels]
        if missing:
            raise ValueError(f"firms: no population {missing[0]!r} (populations: {', '.join(labels)})")
        self.firms = sum(labels[f].count for f in params.firm_populations)
        if self.firms < 1:
            raise ValueError("firms: the firms' populations have no agents")
        goods = {g.name: g for g in scenario.goods}
        good = goods.get(params.good)
        if good is None:
            raise ValueError(f"good: no good {params.good!r} in the scenario's goods ({', '.join(goods)})")
        self.tick = float(scenario.tick_size)
        self.low = float(good.min_price) if good.min_price is not None else self.tick
        self.high = float(good.max_price) if good.max_price is not None else max(float(good.reference_price) * 10, self.low + self.tick)
        n = self.firms
        quality, cost = _spread(params.quality, n), _spread(params.cost, n)
        assert quality is not None and cost is not None
        for name, values in (("quality", quality), ("cost", cost)):
            if len(values) != n:
                raise ValueError(f"{name}: {len(values)} values for {n} firms (give one, or one per firm)")
        for c in cost:
            if not _on_tick(c, self.tick):
                raise ValueError(f"cost: {c:g} is not a multiple of the tick size {self.tick:g}")
        self.demand = LogitDemand.of(quality, params.outside_quality, params.mu, cost)
        where = f"quality {_fmt(quality)}, outside_quality {params.outside_quality:g}, mu {params.mu:g}, cost {_fmt(cost)}"
        try:
            self.nash = self.demand.nash_prices()
        except EquilibriumError as exc:
            raise ValueError(f"mu: {exc} for {where}") from None
        try:
            self.monopoly = self.demand.monopoly_prices()
        except EquilibriumError as exc:
            raise ValueError(f"mu: {exc} for {where}") from None
        self.nash_profits = self.demand.profits(self.nash)
        self.monopoly_profits = self.demand.profits(self.monopoly)
        if params.consumers == "logit":
            for label, prices in (("Nash", self.nash), ("monopoly", self.monopoly)):
                if prices.min() < self.low or prices.max() > self.high:
                    raise ValueError(
                        f"good: the {label} prices {_fmt(prices)} leave {params.good!r}'s admissible range "
                        f"[{self.low:g}, {self.high:g}] (widen min_price / max_price)"
                    )
        self.grid: list[float] | None = None
        if params.price_grid is not None:
            if not (np.allclose(self.nash, self.nash[0]) and np.allclose(self.monopoly, self.monopoly[0])):
                raise ValueError("price_grid: Calvano's grid needs symmetric firms (one Nash and one monopoly price)")
            raw = calvano_grid(float(self.nash[0]), float(self.monopoly[0]), params.price_grid.points, params.price_grid.xi)
            ticks = sorted({round(p / self.tick) for p in raw})
            if len(ticks) < len(raw):
                raise ValueError(f"price_grid: {len(raw)} prices closer than the tick size {self.tick:g}: fewer points or a smaller tick")
            self.grid = [round(t * self.tick, 10) for t in ticks]
            if self.grid[0] < self.low or self.grid[-1] > self.high:
                raise ValueError(
                    f"price_grid: the grid [{self.grid[0]:g}, {self.grid[-1]:g}] leaves {params.good!r}'s admissible "
                    f"range [{self.low:g}, {self.high:g}]"
                )
        initial = _spread(params.initial_price, n) or [float(good.reference_price)] * n
        if len(initial) != n:
            raise ValueError(f"initial_price: {len(initial)} values for {n} firms (give one, or one per firm)")
        for p in initial:
            problem = self.price_problem(p)
            if problem is not None:
                raise ValueError(f"initial_price: {problem}")
        self.initial = initial
        if params.consumers == "bass":
            hazard = params.bass.p + params.bass.q + params.advertising.lift
            if hazard > 1:
                raise ValueError(f"bass: p + q + advertising.lift = {hazard:g} is more than 1 (a probability per step)")
            if params.bass.contacts == "small_world" and params.bass.neighbours >= params.num_consumers:
                raise ValueError(f"bass.neighbours: {params.bass.neighbours} contacts for {params.num_consumers} consumers")
        if not _on_tick(params.marketing_budget, self.tick):
            raise ValueError(f"marketing_budget: {params.marketing_budget:g} is not a multiple of the tick size {self.tick:g}")

    def price_problem(self, price: float) -> str | None:
        """Why ``price`` cannot be posted (off the tick, the range or the grid), or None."""
        if not _on_tick(price, self.tick):
            return f"{price:g} is not a multiple of the tick size {self.tick:g}"
        if not self.low - 1e-12 <= price <= self.high + 1e-12:
            return f"{price:g} is outside the admissible range [{self.low:g}, {self.high:g}]"
        if self.grid is not None and not any(abs(price - g) < self.tick / 2 for g in self.grid):
            shown = ", ".join(f"{g:g}" for g in self.grid[:_SHOWN]) + (", ..." if len(self.grid) > _SHOWN else "")
            return f"{price:g} is not on the price grid ({len(self.grid)} prices from {self.grid[0]:g} to {self.grid[-1]:g}: {shown})"
        return None

    def header(self) -> dict[str, Any]:
        """The theory as recorded in ``posted_price_setup``."""
        return {
            "quality": list(self.demand.quality),
            "outside_quality": self.demand.outside_quality,
            "mu": self.demand.mu,
            "cost": list(self.demand.cost),
            "nash_prices": [float(p) for p in self.nash],
            "monopoly_prices": [float(p) for p in self.monopoly],
            "nash_profits": [float(p) for p in self.nash_profits],
            "monopoly_profits": [float(p) for p in self.monopoly_profits],
            "price_grid": self.grid,
        }


def _on_tick(value: float, tick: float) -> bool:
    ticks = value / tick
    return math.isclose(ticks, round(ticks), rel_tol=1e-9, abs_tol=1e-9)


def largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """``total`` split in proportion to ``weights`` (summing to 1) as integers summing to ``total``
    (Hamilton's method: floors, then one more to the largest remainders, ties to the first)."""
    exact = weights * total
    out = np.floor(exact).astype(np.int64)
    short = int(total - out.sum())
    if short > 0:
        order = np.argsort(-(exact - out), kind="stable")
        out[order[:short]] += 1
    return out


# ---------------------------------------------------------------------------- the mechanism


class PostedPriceMarket(Mechanism):
    """Firms post prices; consumers choose among them and an outside option (logit) or adopt (Bass)."""

    name: ClassVar[str] = NAME
    summary: ClassVar[str] = "posted prices and advertising; consumers choose by logit demand or adopt by the Bass model"
    Params: ClassVar[type[MechanismParams]] = PostedPriceParams
    actions: ClassVar[tuple[type[ActionBase], ...]] = (PostPrice, Advertise)

    @classmethod
    def scenario_problems(cls, params: MechanismParams, scenario: Any) -> list[str]:
        assert isinstance(params, PostedPriceParams)
        if sum(getattr(m, "type", None) == NAME for m in scenario.mechanisms) > 1:
            return ["type: one posted_price market per scenario"]
        try:
            Theory(params, scenario)
        except ValueError as exc:
            return [str(exc)]
        return []

    @classmethod
    def sized_populations(cls, params: MechanismParams) -> list[str]:
        assert isinstance(params, PostedPriceParams)
        return params.firm_populations  # qualities, costs and initial prices may be one per firm

    def __init__(self, params: MechanismParams | None = None, context: MechanismContext | None = None) -> None:
        super().__init__(params, context)
        assert isinstance(params, PostedPriceParams)
        self.p: PostedPriceParams = params
        ctx = self.context
        self.theory = Theory(params, ctx.scenario)
        self.money = ctx.money
        self.firm_ids: list[int] = []
        self.index: dict[int, int] = {}
        n = self.theory.firms
        self.prices = np.array([ctx.money.to_ticks(round(p, 10)) for p in self.theory.initial], dtype=np.int64)
        self.cost_ticks = np.array([ctx.money.to_ticks(round(c, 10)) for c in self.theory.demand.cost], dtype=np.int64)
        self.budget_left = np.full(n, ctx.money.to_ticks(round(params.marketing_budget, 10)), dtype=np.int64)
        self.spent = np.zeros(n, dtype=np.int64)  # advertising this step (ticks)
        self.posted = np.zeros(n, dtype=bool)  # posted a price this step
        self.history: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        # the run so far (live metrics)
        self.steps = 0
        self.price_sum = np.zeros(n)
        self.profit_sum = np.zeros(n)  # per consumer
        self.adopted: np.ndarray | None = None
        self.adoption: list[int] = [0]
        self.contacts: Any = None
        self.degree: np.ndarray | None = None

    # ---------------------------------------------------------------- start

    def start(self) -> None:
        """Map the firms, fund the consumers' account, build the contact network, record the setup."""
        ctx, p = self.context, self.p
        self.firm_ids = [i for label in p.firm_populations for i in ctx.populations[label]]
        self.index = {a: k for k, a in enumerate(self.firm_ids)}
        high = ctx.money.to_ticks(round(self.theory.high, 10))
        purchases = p.num_consumers * (ctx.horizon if p.consumers == "logit" else 1)
        funds = high * purchases
        ctx.ledger.open_account(CONSUMERS, cash=funds)
        if p.consumers == "bass":
            self.adopted = np.zeros(p.num_consumers, dtype=bool)
            if p.bass.contacts == "small_world":
                self._small_world()
        content = {
            "good": p.good,
            "firms": list(self.firm_ids),
            "num_consumers": p.num_consumers,
            "consumers": p.consumers,
            "demand": p.demand,
            "consumer_account": CONSUMERS,
            "consumer_cash": ctx.money.to_units(funds),
            "initial_prices": [ctx.money.to_units(int(t)) for t in self.prices],
            "marketing_budget": p.marketing_budget,
            "advertising": p.advertising.model_dump(),
            **self.theory.header(),
        }
        if p.consumers == "bass":
            content["bass"] = p.bass.model_dump()
            if self.degree is not None:
                content["mean_contacts"] = float(self.degree.mean())
        ctx.record("posted_price_setup", content, None)

    def _small_world(self) -> None:
        import networkx as nx
        from scipy import sparse

        bass = self.p.bass
        seed = int(self.context.rng.integers(0, 2**31 - 1))  # networkx draws from its own generator, seeded from the run's
        k = bass.neighbours - bass.neighbours % 2
        graph = nx.watts_strogatz_graph(self.p.num_consumers, k, bass.rewire, seed=seed)
        matrix = nx.to_scipy_sparse_array(graph, nodelist=range(self.p.num_consumers), format="csr", dtype=np.float64)
        self.contacts = sparse.csr_array(matrix)
        self.degree = np.asarray(self.contacts.sum(axis=1)).ravel()

    # ---------------------------------------------------------------- tools

    def _is_firm_population(self, population: str | None) -> bool:
        return population is not None and population in self.p.firm_populations

    def tools(self, population: str | None, role: Role) -> list[str]:
        if not self._is_firm_population(population):
            return []
        return ["post_price", "advertise"] if self.p.marketing_budget > 0 else ["post_price"]

    def available(self, agent: TraderAgent, step: int) -> list[str]:
        k = self.index.get(agent.unique_id)
        if k is None:
            return []
        out = ["post_price"]
        if self.budget_left[k] > 0 and self.context.ledger.available_cash(agent.unique_id) > 0:
            out.append("advertise")
        return out

    # ---------------------------------------------------------------- the step

    def begin_step(self, step: int) -> None:
        self.spent[:] = 0
        self.posted[:] = False

    def act(self, agent: TraderAgent, action: ActionBase, step: int) -> list[Recorded]:
        k = self.index.get(agent.unique_id)
        if k is None:
            raise RejectedAction(f"only the firms ({', '.join(self.p.firm_populations)}) post prices in this market")
        if isinstance(action, PostPrice):
            if self.posted[k]:
                raise RejectedAction("you already posted a price this step")
            problem = self.theory.price_problem(action.price)
            if problem is not None:
                raise RejectedAction(f"price {problem}")
            self.prices[k] = self.money.to_ticks(round(action.price, 10))
            self.posted[k] = True
            return []
        assert isinstance(action, Advertise)
        try:
            ticks = self.money.to_ticks(action.amount)
        except (OffTickError, ValueError) as exc:
            raise RejectedAction(str(exc)) from None
        if ticks > self.budget_left[k]:
            raise RejectedAction(
                f"advertising {action.amount:g} exceeds your marketing budget left, {self.money.to_units(int(self.budget_left[k])):g}"
            )
        try:  # paid outside the economy (the media), from the firm's own cash
            self.context.ledger.retire(agent.unique_id, cash=ticks, memo="advertising")
        except LedgerError:
            raise RejectedAction(f"insufficient funds: advertising {action.amount:g} needs that much available cash") from None
        self.budget_left[k] -= ticks
        self.spent[k] += ticks
        return []

    def _lift(self, spend_ticks: np.ndarray) -> np.ndarray:
        adv = self.p.advertising
        if adv.lift == 0:
            return np.zeros(len(spend_ticks))
        spend = spend_ticks * self.money.tick_size
        return adv.lift * (1.0 - np.exp(-spend / adv.scale))

    def clear(self, step: int) -> None:
        """The consumers choose at the prices in force; purchases settle; the outcome is recorded."""
        ctx, p, money = self.context, self.p, self.money
        n = len(self.firm_ids)
        prices = self.prices * money.tick_size
        base = self.theory.demand
        extra: dict[str, Any] = {}
        if p.consumers == "logit":
            quality = np.asarray(base.quality) + self._lift(self.spent)
            demand = LogitDemand.of(quality, base.outside_quality, base.mu, base.cost)
            shares = demand.shares(prices)
            weights = np.append(shares, max(1.0 - shares.sum(), 0.0))
            weights = weights / weights.sum()
            counts = (
                largest_remainder(p.num_consumers, weights) if p.demand == "expected" else ctx.rng.multinomial(p.num_consumers, weights)
            )
            wanted = counts[:n].astype(np.int64)
            extra["outside"] = int(counts[n])
        else:
            assert self.adopted is not None
            innovation = p.bass.p + float(self._lift(np.array([self.spent.sum()]))[0])
            adopters = int(self.adopted.sum())
            if self.contacts is None:
                share: Any = adopters / p.num_consumers
            else:
                assert self.degree is not None
                share = (self.contacts @ self.adopted.astype(np.float64)) / np.maximum(self.degree, 1.0)
            hazard = np.clip(innovation + p.bass.q * share, 0.0, 1.0)
            draws = ctx.rng.random(p.num_consumers)
            new = ~self.adopted & (draws < hazard)
            self.adopted |= new
            total_new = int(new.sum())
            shares = base.shares(prices)
            inside = shares / shares.sum() if shares.sum() > 0 else np.full(n, 1.0 / n)
            wanted = (
                largest_remainder(total_new, inside) if p.demand == "expected" else ctx.rng.multinomial(total_new, inside)
            ).astype(np.int64)
            self.adoption.append(int(self.adopted.sum()))
            extra.update(
                adopters_new=total_new, adopters=self.adoption[-1], adoption_rate=self.adoption[-1] / p.num_consumers,
                innovation=innovation, imitation=p.bass.q,
            )  # fmt: skip
        sold = self._settle(wanted)
        revenue = sold * self.prices
        cost = sold * self.cost_ticks
        profit = revenue - cost
        per_consumer = (prices - np.asarray(base.cost)) * sold / p.num_consumers
        to_units = money.to_units
        content: dict[str, Any] = {
            "good": p.good,
            "firms": list(self.firm_ids),
            "prices": [to_units(int(t)) for t in self.prices],
            "quantities": [int(q) for q in sold],
            "shares": [float(q) / p.num_consumers for q in sold],
            "revenue": [to_units(int(r)) for r in revenue],
            "cost": [to_units(int(c)) for c in cost],
            "profit": [to_units(int(x)) for x in profit],
            "profit_per_consumer": [float(x) for x in per_consumer],
            "advertising": [to_units(int(s)) for s in self.spent],
            **extra,
        }
        if int((wanted - sold).sum()):
            content["rationed"] = [int(w - s) for w, s in zip(wanted, sold, strict=True)]
        ctx.record("posted_price_outcome", content, None)
        self.steps += 1
        self.price_sum += prices
        self.profit_sum += per_consumer
        shown = p.history_shown
        for k in range(n):
            entry = {
                "step": step, "price": content["prices"][k], "quantity": content["quantities"][k],
                "share": content["shares"][k], "revenue": content["revenue"][k], "profit": content["profit"][k],
            }  # fmt: skip
            if content["advertising"][k]:
                entry["advertising"] = content["advertising"][k]
            history = self.history[k]
            history.append(entry)
            if len(history) > shown:
                del history[: len(history) - shown]

    def _settle(self, wanted: np.ndarray) -> np.ndarray:
        """Produce and deliver each firm's units through the ledger; the units sold per firm."""
        ledger, good = self.context.ledger, self.p.good
        sold = wanted.copy()
        for k, firm in enumerate(self.firm_ids):
            q = int(wanted[k])
            if q <= 0:
                continue
            price, cost = int(self.prices[k]), int(self.cost_ticks[k])
            if price < cost:  # a loss per unit: the firm sells only what it can pay for
                q = min(q, max(ledger.available_cash(firm), 0) // (cost - price))
                sold[k] = q
                if q <= 0:
                    continue
            ledger.issue(firm, holdings={good: q}, memo="production")
            ledger.transfer_goods(firm, CONSUMERS, good, q, memo="sale")
            ledger.transfer_cash(CONSUMERS, firm, price * q, memo="sale")
            if cost:
                ledger.retire(firm, cash=cost * q, memo="production cost")
        return sold

    # ---------------------------------------------------------------- views

    def observe(self, agent: TraderAgent, step: int) -> dict[str, Any] | None:
        k = self.index.get(agent.unique_id)
        if k is None:
            return None
        to_units, p, theory = self.money.to_units, self.p, self.theory
        part: dict[str, Any] = {
            "good": p.good,
            "you": k,
            "firm_ids": list(self.firm_ids),
            "price": to_units(int(self.prices[k])),
            "marginal_cost": theory.demand.cost[k],
            "last_prices": [to_units(int(t)) for t in self.prices],
            "price_range": [theory.low, theory.high],
            "price_grid": theory.grid,
            "tick_size": self.money.tick_size,
            "consumers": p.consumers,
            "num_consumers": p.num_consumers,
            "demand": {
                "quality": list(theory.demand.quality),
                "outside_quality": theory.demand.outside_quality,
                "mu": theory.demand.mu,
                "cost": list(theory.demand.cost),
            },
            "history": list(self.history[k]),
        }
        if p.marketing_budget > 0:
            part["marketing_budget_left"] = to_units(int(self.budget_left[k]))
        if self.adopted is not None:
            part["adopters"] = self.adoption[-1]
        return part

    def prompt_rules(self, population: str | None, role: Role) -> dict[str, Any] | None:
        if not self._is_firm_population(population):
            return None
        theory = self.theory
        costs = set(theory.demand.cost)
        return {
            "good": self.p.good,
            "firms": theory.firms,
            "consumers": self.p.consumers,
            "num_consumers": self.p.num_consumers,
            "price_range": [theory.low, theory.high],
            "price_grid": theory.grid,
            "tick_size": self.money.tick_size,
            "marginal_cost": next(iter(costs)) if len(costs) == 1 else None,
            "marketing_budget": self.p.marketing_budget,
            "outside_option": self.p.consumers == "logit",
        }

    def metrics(self) -> dict[str, Any]:
        """Mean price and profit per consumer so far, their profit gain; Bass: adoption."""
        theory = self.theory
        # the same keys before the first step (None), so a sweep can name them up front
        out: dict[str, Any] = {"steps": self.steps, "mean_price": None, "mean_profit_per_consumer": None}
        if self.p.consumers == "logit":
            out["profit_gain"] = None
        if self.steps:
            mean_profit = float(self.profit_sum.sum() / (self.steps * len(self.profit_sum)))
            out["mean_price"] = float(self.price_sum.mean() / self.steps)
            out["mean_profit_per_consumer"] = mean_profit
            if self.p.consumers == "logit":
                from mesa_llm_consumer_markets.economics import profit_gain

                out["profit_gain"] = profit_gain(
                    mean_profit, float(theory.nash_profits.mean()), float(theory.monopoly_profits.mean())
                )
        out["nash_prices"] = [float(x) for x in theory.nash]
        out["monopoly_prices"] = [float(x) for x in theory.monopoly]
        if self.adopted is not None:
            out["adopters"] = self.adoption[-1]
            out["adoption_rate"] = self.adoption[-1] / self.p.num_consumers
        return out

    @classmethod
    def report_figures(cls, recording: Any) -> list[tuple[str, str, Any]]:
        from mesa_llm_consumer_markets.report import figures

        return figures(recording)


__all__ = ["Advertise", "PostPrice", "PostedPriceMarket", "PostedPriceParams", "Theory", "largest_remainder"]
