"""The timeline of a run: scheduled events (value and endowment shocks, rule and parameter changes,
stress events, plugin event types) applied at the start of their step.

One schedule holds the scenario's timeline and whatever is scheduled while the run goes on
(`Simulation.schedule`, the dashboard's stress menu): the same code applies both, and each
application is recorded as a ``scheduled_event``. The rules of the built-in types:

``shift_private``: every targeted value, cost or fundamental x becomes ``max(round(x * scale) + add, 0)``
    in ticks (`mesa_llm.economics.shifted`, which ``analyze`` and the dashboard use too);
``endow``: cash and goods issued to (or, negative, retired from) each targeted agent through the
    ledger, never more than it has free;
``set_params``: targeted policies' parameters changed (validated);
stress events (`mesa_llm.stress`): run by a `StressSchedule` and undone exactly after their duration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mesa_llm.economics import shifted
from mesa_llm.scenario import Endow, SetParams, ShiftPrivate
from mesa_llm.stress import (
    STRESS_TYPES,
    FlashCrash,
    LiquidityShock,
    StressSchedule,
    VolatilitySpike,
)
from mesa_llm.timeline_events import CustomEvent

if TYPE_CHECKING:
    from mesa_llm.agents.trader import TraderAgent
    from mesa_llm.market import Ledger, Money

Record = Callable[[str, dict[str, Any], int | None], None]


@dataclass
class _Context:
    """The `TimelineContext` a plugin event is applied with."""

    step: int
    rng: np.random.Generator
    money: Money
    ledger: Ledger
    populations: Mapping[str, Sequence[TraderAgent]]
    _record: Record

    def agents(self, populations: Sequence[str] | None = None) -> list[TraderAgent]:
        labels = list(populations) if populations else list(self.populations)
        return [a for label in labels for a in self.populations.get(label, [])]

    def set_params(self, agent: TraderAgent, updates: Mapping[str, Any]) -> None:
        set_params(agent, updates)

    def record(self, event_type: str, content: dict[str, Any], agent_id: int | None = None) -> None:
        self._record(event_type, content, agent_id)


def set_params(agent: Any, updates: Mapping[str, Any]) -> None:
    """Change those of ``updates`` that are parameters of the agent's policy (validated)."""
    policy = agent.policy
    current = policy.params.model_dump()
    known = {k: v for k, v in updates.items() if k in current}
    if known:
        policy.params = type(policy.params).model_validate({**current, **known})


class Timeline:
    """Applies a run's scheduled events at the start of their step, and takes new ones."""

    def __init__(
        self,
        events: Sequence[Any],
        *,
        populations: Mapping[str, Sequence[TraderAgent]],
        goods: Sequence[str],
        money: Money,
        ledger: Ledger,
        rng: np.random.Generator,
        price_history: Callable[[str], Sequence[int]],
        record: Record,
        on_private_change: Callable[[str | None], dict[str, Any]],
    ) -> None:
        """``events`` is the scenario's timeline; ``on_private_change(field)`` is told which private
        field a shock moved (``values``, ``costs``, ``fundamental``; None: nothing private moved) and
        returns the competitive equilibrium for the record; every draw comes from ``rng``."""
        self.events: list[Any] = list(events)
        self.populations = populations
        self.money = money
        self.ledger = ledger
        self.rng = rng
        self.record = record
        self.on_private_change = on_private_change
        self.stress = StressSchedule(
            [(i, e) for i, e in enumerate(self.events) if isinstance(e, STRESS_TYPES)],  # type: ignore[misc]
            populations,
            list(goods),
            price_history,
            rng,
        )

    @property
    def withdrawn(self) -> set[int]:
        """Agents a liquidity shock keeps out of the market this step."""
        return self.stress.withdrawn

    def pending_after(self, step: int) -> bool:
        """Whether an event is still to start after ``step``, or a stress event is still running."""
        return any(e.at_step + (getattr(e, "duration", 1) or 1) - 1 > step for e in self.events)

    def schedule(self, event: Any) -> int:
        """Add one validated event (its ``at_step`` still to come); returns its index."""
        self.events.append(event)
        index = len(self.events) - 1
        if isinstance(event, STRESS_TYPES):
            assert isinstance(event, FlashCrash | VolatilitySpike | LiquidityShock)
            self.stress.add(index, event)  # a stress event (checked above)
        return index

    def apply(self, step: int) -> None:
        """Apply every event of ``step`` (in timeline order), then advance the stress events."""
        for index, event in enumerate(self.events):
            if event.at_step != step or isinstance(event, STRESS_TYPES):
                continue
            targets = [a for label in (event.populations or list(self.populations)) for a in self.populations[label]]
            extra: dict[str, Any] = {}
            if isinstance(event, ShiftPrivate):
                self._shift(event, targets)
                extra["competitive_equilibrium"] = self.on_private_change(event.field)
            elif isinstance(event, SetParams):
                for agent in targets:
                    set_params(agent, event.params)
                extra["competitive_equilibrium"] = self.on_private_change(None)
            elif isinstance(event, Endow):
                self._endow(event, targets, index)
                extra["competitive_equilibrium"] = self.on_private_change(None)
            elif isinstance(event, CustomEvent):
                ctx = _Context(step, self.rng, self.money, self.ledger, self.populations, self.record)
                extra = dict(event.apply(ctx) or {})
            self.record(
                "scheduled_event",
                {"index": index, "event": event.model_dump(mode="json"), "agents_affected": len(targets), **extra},
                None,
            )
        for content in self.stress.apply(step):
            self.record("scheduled_event", content, None)
        if self.stress.values_moved:  # a flash crash of demand: the efficiency benchmark follows
            self.on_private_change("values")

    def _shift(self, event: ShiftPrivate, targets: list[TraderAgent]) -> None:
        add = self.money.round_to_tick(event.add)
        for agent in targets:
            pv = agent.private.get(event.good)
            if pv is None:
                continue
            if event.field == "values":
                pv.values = [shifted(v, event.scale, add) for v in pv.values]
            elif event.field == "costs":
                pv.costs = [shifted(c, event.scale, add) for c in pv.costs]
            elif pv.fundamental is not None:
                pv.fundamental = shifted(pv.fundamental, event.scale, add)

    def _endow(self, event: Endow, targets: list[TraderAgent], index: int) -> None:
        cash = self.money.round_to_tick(event.cash)
        gains = {g: q for g, q in event.holdings.items() if q > 0}
        losses = {g: -q for g, q in event.holdings.items() if q < 0}
        for agent in targets:
            if cash > 0 or gains:
                self.ledger.issue(agent.unique_id, cash=max(cash, 0), holdings=gains, memo=f"timeline.{index}")
            if cash < 0 or losses:
                account = self.ledger.account(agent.unique_id)
                take_cash = min(-cash, max(account.available_cash(credit=False), 0)) if cash < 0 else 0
                take = {
                    g: min(q, max(account.holdings.get(g, 0) - account.reserved_goods.get(g, 0), 0))
                    for g, q in losses.items()
                }
                self.ledger.retire(agent.unique_id, cash=take_cash, holdings=take, memo=f"timeline.{index}")


__all__ = ["Timeline", "set_params"]
