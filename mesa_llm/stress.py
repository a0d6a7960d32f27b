"""Market stress events: flash crash, volatility spike and liquidity shock (schema and mechanics).

Each stress event of a scenario's timeline starts at ``at_step``, lasts ``duration`` steps and
has a ``magnitude``; at step ``at_step + duration`` everything it changed is put back, so a
stress event is temporary by construction and its effect can be measured against the steps
before it (see :mod:`mesa_llm.analysis.stress`). The mechanics:

``flash_crash`` (``magnitude`` m in (0, 1)): a sudden, temporary drop of value. The private
    ``fundamental`` value of every targeted agent falls to (1 - m) times its level at the start,
    then recovers linearly over ``duration`` steps to exactly that level. In a market where no
    targeted agent holds a fundamental (an induced-value double auction), the buyers' redemption
    values drop and recover the same way: demand collapses for a moment and comes back. Fundamental (and
    value-driven LLM) traders sell into the drop and buy the recovery, so the price falls by
    about m and comes back; nothing is permanent. (Like a burst of panic news that is retracted:
    the "temporary fundamental drop" reading of the flash-crash scenario of the Ray financial-ABM
    seed.) It needs targeted populations with a ``fundamental`` for the good.
``volatility_spike`` (``magnitude`` m > 1): return volatility times about m. Every targeted
    policy's ``sigma`` (noise traders' price noise) is multiplied by m, and each step every
    targeted fundamental value takes a common news shock exp(e), e ~ N(0, s), drawn i.i.d. around
    its level at the start (so it mean-reverts and ends where it began), with
    s = sigma_before * sqrt(m^2 - 1) and sigma_before the standard deviation of log returns of
    the good's recent clearing prices: added to the market's own noise, that makes the total
    about m * sigma_before. (Noise traders' sigma alone does not move a call market's price:
    their wide limits are absorbed by the market makers' quotes.)
``liquidity_shock`` (``magnitude`` m > 1): depth and volume withdrawn. Of the targeted agents
    (default: every market maker) a share 1 - 1/m, drawn with the model's generator, stops
    trading for the duration; the others quote m times less (``size``, ``max_size`` divided by m,
    at least 1), m times less often (``activity`` / m) and m times wider (``spread`` x m, below 1).

The world applies these through :class:`StressSchedule`, handed the agents, the exchange's
price history and the model's seeded generator explicitly (it never imports the model).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "STRESS_TYPES",
    "FlashCrash",
    "LiquidityShock",
    "StressEvent",
    "StressSchedule",
    "VolatilitySpike",
    "stress_problems",
]

#: the widest spread a liquidity shock widens a quote to (a spread of 1 would quote a bid of 0)
MAX_SPREAD = 0.9
#: the return volatility assumed when the price history is too short to measure one
DEFAULT_SIGMA = 0.01


class _StressBase(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    at_step: int = Field(ge=1, description="first step of the event")
    duration: int = Field(ge=1, le=1_000_000, description="steps it lasts; undone at at_step + duration")
    populations: list[str] | None = Field(default=None, description="targeted populations (see each type)")
    good: str | None = Field(default=None, description="the good (all goods if omitted)")
    description: str = ""

    @property
    def end_step(self) -> int:
        """The step at which the event is undone (the first step after it)."""
        return self.at_step + self.duration


class FlashCrash(_StressBase):
    """A sudden, temporary drop of fundamental values by ``magnitude`` that recovers linearly
    over ``duration`` steps (targets: every population with a fundamental, if omitted)."""

    type: Literal["flash_crash"]
    magnitude: float = Field(gt=0, lt=1, description="fractional drop at the trough, e.g. 0.1")


class VolatilitySpike(_StressBase):
    """Return volatility times about ``magnitude`` for ``duration`` steps (noise sigma x m, plus
    common news shocks on fundamental values)."""

    type: Literal["volatility_spike"]
    magnitude: float = Field(gt=1, le=100, description="volatility multiplier, e.g. 3")


class LiquidityShock(_StressBase):
    """Liquidity providers withdraw for ``duration`` steps: a share 1 - 1/m stops, the rest quote
    m times less, less often and wider (targets: every market maker, if omitted)."""

    type: Literal["liquidity_shock"]
    magnitude: float = Field(gt=1, le=1000, description="depth divisor, e.g. 4")


StressEvent = FlashCrash | VolatilitySpike | LiquidityShock
STRESS_TYPES: tuple[type[_StressBase], ...] = (FlashCrash, VolatilitySpike, LiquidityShock)


class _Private(Protocol):
    fundamental: int | None


class StressedAgent(Protocol):
    """What the schedule needs of an agent: id, role, private information and its policy."""

    unique_id: int
    private: dict[str, Any]
    policy: Any

    @property
    def role(self) -> Any: ...


def _targets(event: _StressBase, populations: Mapping[str, Sequence[Any]], default: Callable[[Any], bool]) -> list[Any]:
    if event.populations:
        return [a for label in event.populations for a in populations.get(label, [])]
    return [a for members in populations.values() for a in members if default(a)]


def _has_fundamental(agent: Any, good: str | None) -> bool:
    return any(
        pv.fundamental is not None for g, pv in agent.private.items() if good is None or g == good
    )


def _is_market_maker(agent: Any) -> bool:
    return str(getattr(agent.role, "value", agent.role)) == "market_maker"


@dataclass(slots=True)
class _Active:
    """What one running event changed, so it can be undone exactly."""

    event: StressEvent
    index: int
    #: (agent, good) -> fundamental (ticks) at the start
    fundamentals: dict[tuple[int, str], int] = field(default_factory=dict)
    #: (agent, good) -> induced values (ticks) at the start (a flash crash where none holds a fundamental)
    values: dict[tuple[int, str], list[int]] = field(default_factory=dict)
    #: agent id -> {param: (before, during)}
    params: dict[int, dict[str, tuple[Any, Any]]] = field(default_factory=dict)
    #: good -> sd of the news shock (volatility spike)
    news_sd: dict[str, float] = field(default_factory=dict)
    withdrawn: set[int] = field(default_factory=set)


class StressSchedule:
    """Runs the stress events of a timeline: starts, steps and undoes them.

    ``populations`` maps population labels to agents; ``price_history(good)`` gives the good's
    recent clearing prices (ticks, oldest first); every draw comes from ``rng`` (the model's).
    """

    def __init__(
        self,
        events: Iterable[tuple[int, StressEvent]],
        populations: Mapping[str, Sequence[Any]],
        goods: Sequence[str],
        price_history: Callable[[str], Sequence[int]],
        rng: np.random.Generator,
    ) -> None:
        self.events = list(events)
        self.populations = populations
        self.goods = list(goods)
        self.price_history = price_history
        self.rng = rng
        self._by_id = {a.unique_id: a for members in populations.values() for a in members}
        self._active: list[_Active] = []
        #: whether the last `apply` moved induced values (the efficiency benchmark must follow)
        self.values_moved = False

    def add(self, index: int, event: StressEvent) -> None:
        """Schedule one more event (the dashboard injects one for the next step); ``index`` is its
        place in the timeline, named in its records."""
        self.events.append((index, event))

    @property
    def withdrawn(self) -> set[int]:
        """Agents a liquidity shock keeps out of the market this step."""
        out: set[int] = set()
        for active in self._active:
            out |= active.withdrawn
        return out

    def apply(self, step: int) -> list[dict[str, Any]]:
        """Advance every event to ``step`` (end, start, then move the running ones); the
        contents of the ``scheduled_event`` records of events that start or end now."""
        records: list[dict[str, Any]] = []
        self.values_moved = False
        for active in [a for a in self._active if a.event.end_step <= step]:
            self.values_moved = self.values_moved or bool(active.values)
            self._undo(active)
            self._active.remove(active)
            records.append(self._record(active, "end", 0))
        for index, event in self.events:
            if event.at_step == step:
                active = _Active(event, index)
                affected = self._start(active)
                self._active.append(active)
                records.append(self._record(active, "start", affected))
        for active in self._active:
            self._move(active, step)
            self.values_moved = self.values_moved or bool(active.values)
        return records

    # ------------------------------------------------------------------ the three kinds

    def _goods(self, event: _StressBase) -> list[str]:
        return [event.good] if event.good is not None else list(self.goods)

    def _start(self, active: _Active) -> int:
        event = active.event
        goods = self._goods(event)
        if isinstance(event, FlashCrash | VolatilitySpike):
            targets = _targets(event, self.populations, lambda a: True)
            for agent in targets:
                for good in goods:
                    pv = agent.private.get(good)
                    if pv is not None and pv.fundamental is not None:
                        active.fundamentals[(agent.unique_id, good)] = pv.fundamental
            if isinstance(event, FlashCrash) and not active.fundamentals:
                for agent in targets:  # no fundamentals: a crash of demand (induced values)
                    for good in goods:
                        pv = agent.private.get(good)
                        if pv is not None and pv.values:
                            active.values[(agent.unique_id, good)] = list(pv.values)
            if isinstance(event, VolatilitySpike):
                for agent in targets:
                    self._scale_params(active, agent, {"sigma": event.magnitude})
                for good in goods:
                    active.news_sd[good] = self._sigma_before(good) * math.sqrt(event.magnitude**2 - 1)
            return len(targets)
        targets = _targets(event, self.populations, _is_market_maker)
        m = event.magnitude
        order = self.rng.permutation(len(targets))
        leaving = round(len(targets) * (1 - 1 / m))
        for position, i in enumerate(order.tolist()):
            agent = targets[i]
            if position < leaving:
                active.withdrawn.add(agent.unique_id)
            else:
                self._scale_params(
                    active, agent, {"size": 1 / m, "max_size": 1 / m, "activity": 1 / m, "spread": m}
                )
        return len(targets)

    def _move(self, active: _Active, step: int) -> None:
        event = active.event
        if isinstance(event, FlashCrash):
            # 1 - m at the first step, back to 1 at end_step (linear recovery)
            depth = event.magnitude * (1 - (step - event.at_step) / event.duration)
            for (agent_id, good), base in active.fundamentals.items():
                self._by_id[agent_id].private[good].fundamental = max(round(base * (1 - depth)), 1)
            for (agent_id, good), values in active.values.items():
                self._by_id[agent_id].private[good].values = [max(round(v * (1 - depth)), 0) for v in values]
        elif isinstance(event, VolatilitySpike):
            # one common shock per good and step, drawn in a fixed order (reproducible)
            shocks = {good: float(self.rng.normal(0.0, sd)) for good, sd in active.news_sd.items()}
            for (agent_id, good), base in active.fundamentals.items():
                self._by_id[agent_id].private[good].fundamental = max(round(base * math.exp(shocks[good])), 1)

    def _undo(self, active: _Active) -> None:
        for (agent_id, good), base in active.fundamentals.items():
            self._by_id[agent_id].private[good].fundamental = base
        for (agent_id, good), values in active.values.items():
            self._by_id[agent_id].private[good].values = list(values)
        for agent_id, changed in active.params.items():
            policy = self._by_id[agent_id].policy
            current = policy.params.model_dump()
            # put back only what still holds the stressed value (a set_params in between wins)
            restore = {k: before for k, (before, during) in changed.items() if current.get(k) == during}
            if restore:
                policy.params = type(policy.params).model_validate({**current, **restore})

    def _scale_params(self, active: _Active, agent: Any, factors: Mapping[str, float]) -> None:
        policy = agent.policy
        params = getattr(policy, "params", None)
        if params is None:
            return
        current = params.model_dump()
        updates: dict[str, Any] = {}
        for name, factor in factors.items():
            value = current.get(name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if isinstance(value, int):
                updates[name] = max(int(value * factor), 1)
            elif name == "spread":
                updates[name] = min(value * factor, MAX_SPREAD)
            elif name == "activity":
                updates[name] = min(value * factor, 1.0)
            else:
                updates[name] = value * factor
        if updates:
            policy.params = type(params).model_validate({**current, **updates})
            active.params[agent.unique_id] = {k: (current[k], v) for k, v in updates.items()}

    def _sigma_before(self, good: str) -> float:
        prices = np.asarray(list(self.price_history(good)), dtype=float)
        prices = prices[prices > 0]
        if len(prices) < 3:
            return DEFAULT_SIGMA
        sigma = float(np.std(np.diff(np.log(prices)), ddof=1))
        return sigma if sigma > 0 else DEFAULT_SIGMA

    def _record(self, active: _Active, phase: str, affected: int) -> dict[str, Any]:
        content: dict[str, Any] = {
            "index": active.index,
            "event": active.event.model_dump(mode="json"),
            "phase": phase,
        }
        if phase == "start":
            content["agents_affected"] = affected
            if active.news_sd:
                content["news_sd"] = {g: round(s, 6) for g, s in active.news_sd.items()}
            if active.withdrawn:
                content["withdrawn"] = sorted(active.withdrawn)
            if active.values:
                content["acts_on"] = "values"
        return content


def stress_problems(
    timeline: Sequence[Any], populations: Sequence[Any], goods: Sequence[str]
) -> list[str]:
    """One line per stress event that cannot act: a flash crash or volatility spike whose targets
    hold no ``fundamental`` for the good; a liquidity shock with no agents to withdraw."""
    problems = []
    by_label = {p.label: p for p in populations}
    for i, event in enumerate(timeline):
        if not isinstance(event, STRESS_TYPES):
            continue
        if event.good is not None and event.good not in goods:
            problems.append(f"timeline.{i}.good: unknown good {event.good!r}")
            continue
        chosen = [by_label[n] for n in event.populations or [] if n in by_label]
        if isinstance(event, FlashCrash):
            pool = chosen or list(populations)
            if not any(
                p.count > 0
                and any(
                    s.fundamental is not None or s.values is not None
                    for g, s in p.private.items()
                    if event.good in (None, g)
                )
                for p in pool
            ):
                problems.append(
                    f"timeline.{i}: flash_crash acts on fundamental values (or, without them, on buyers' "
                    "induced values), and no targeted population has either"
                    + (f" for {event.good!r}" if event.good else "")
                )
        elif isinstance(event, LiquidityShock):
            pool = chosen or [p for p in populations if p.role.value == "market_maker"]
            if sum(p.count for p in pool) == 0:
                problems.append(
                    f"timeline.{i}: liquidity_shock has no agents to withdraw "
                    "(no market makers; name the populations)"
                )
    return problems
