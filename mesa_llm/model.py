"""The Mesa model: builds a scenario's market and agents and runs the step pipeline.

One step, one direction (DESIGN.md): scheduled events -> observe (every agent, from the state at
step start) -> decide (every agent; no agent sees another's same-step actions) -> validate and
resolve (actions applied in a seeded random order; rejections recorded and shown next step) ->
clear and settle (call auction per good, ledger) -> invariants -> collect (DataCollector) ->
record (the step's events are flushed to the recording). All randomness comes from ``self.rng``.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mesa

from mesa_llm.actions import (
    Decision,
)
from mesa_llm.agents.llm_policy import LLMPolicy
from mesa_llm.agents.policies import PolicyRegistry, default_policy_registry
from mesa_llm.agents.prompts import PromptLibrary
from mesa_llm.agents.roles import Role
from mesa_llm.agents.trader import TraderAgent
from mesa_llm.economics import (
    CompetitiveEquilibrium,
    Efficiency,
    InducedSurplus,
    competitive_equilibrium,
    efficiency,
)
from mesa_llm.llm import ChatModel
from mesa_llm.llm_wiring import AsyncBridge, LLMWiring, mechanisms, resolve_llm_models
from mesa_llm.market import Money
from mesa_llm.market.ledger import HOUSE
from mesa_llm.negotiation import Contract
from mesa_llm.populations import PopulationBuilder
from mesa_llm.recording import SimulationRecorder
from mesa_llm.run_summary import LLMActivity, PriceStats, RunSummary, versions
from mesa_llm.scenario import (
    SCENARIO_NAME_PATTERN,
    Endow,
    ScenarioError,
    ScenarioSpec,
    SetParams,
    ShiftPrivate,
    capacity_problems,
)
from mesa_llm.social import AllianceRegistry, Mailbox, Reputation
from mesa_llm.stress import STRESS_TYPES, StressSchedule
from mesa_llm.world.exchange import Clearing, Exchange
from mesa_llm.world.observer import Observer
from mesa_llm.world.regulation import MarketRules
from mesa_llm.world.resolver import ActionResolver
from mesa_llm.world.state import WorldState

DEFAULT_HISTORY_STEPS = 500
"""Steps of DataCollector history a model keeps by default (see `BoundedDataCollector`)."""


class BoundedDataCollector(mesa.DataCollector):
    """A Mesa DataCollector that keeps only the rows of the last `max_rows` collections.

    A run's memory must not grow with its length, and the full history is in the recording
    anyway. The frames it returns are the tail of what an unbounded collector would return, with
    the same index: ``get_model_vars_dataframe()`` is indexed by collection number (0 for the
    first collection ever, as in Mesa), the agent frame by (Step, AgentID).
    """

    def __init__(self, *args: Any, max_rows: int | None = DEFAULT_HISTORY_STEPS, **kwargs: Any) -> None:
        """Like `mesa.DataCollector`; `max_rows` None keeps everything."""
        if max_rows is not None and max_rows < 1:
            raise ValueError(f"the data collector must keep at least 1 step, got {max_rows}")
        super().__init__(*args, **kwargs)
        self.max_rows = max_rows
        #: collections dropped from the front of the model history
        self.dropped_rows = 0

    def collect(self, model: Any) -> None:
        """Collect as Mesa does, then drop the rows beyond `max_rows`."""
        super().collect(model)
        limit = self.max_rows
        if limit is None:
            return
        excess = 0
        for values in self.model_vars.values():
            excess = max(excess, len(values) - limit)
            if len(values) > limit:
                del values[: len(values) - limit]
        self.dropped_rows += excess
        for records in (self._agent_records, getattr(self, "_agenttype_records", {})):
            while len(records) > limit:
                del records[next(iter(records))]  # the oldest step (dicts keep insertion order)

    def get_model_vars_dataframe(self) -> Any:
        """The model variables of the rows kept, indexed by collection number."""
        frame = super().get_model_vars_dataframe()
        if self.dropped_rows:
            frame.index = frame.index + self.dropped_rows
        return frame


@dataclass(slots=True)
class StepTotals:
    """Per-step aggregates used by the DataCollector and the run summary."""

    trades: int = 0
    volume: int = 0


class MarketModel(mesa.Model):
    """A market scenario as a Mesa model: agents, exchange, ledger, recorder, data collector."""

    def __init__(
        self,
        scenario: ScenarioSpec,
        *,
        seed: int | None = None,
        steps: int | None = None,
        recorder: SimulationRecorder | None = None,
        output_dir: str | Path = "recordings",
        record: bool = True,
        run_name: str | None = None,
        policy_registry: PolicyRegistry | None = None,
        check_invariants: bool | None = None,
        llm_model: str | None = None,
        chat_model: ChatModel | None = None,
        resolved_models: dict[str, str | None] | None = None,
        parent: dict[str, Any] | None = None,
        history_steps: int | None = DEFAULT_HISTORY_STEPS,
        api_base: str | None = None,
        prompt_libraries: dict[str, PromptLibrary] | None = None,
    ) -> None:
        """Build the market and agents of ``scenario``.

        ``history_steps`` bounds the DataCollector's history to the last that many steps (None:
        keep all; the recording holds every step anyway), so memory does not grow with the run.

        ``llm_model`` overrides the model of every LLM population (the CLI's ``--model``);
        ``chat_model`` answers every LLM agent's calls instead of litellm (tests, replays);
        ``resolved_models`` fixes each LLM population's model (a replay uses the recorded ones);
        ``parent`` names the recording this run replays or forks (kept in the header).

        ``api_base`` is the caller's own OpenAI-compatible server (the CLI's ``--api-base``): it
        replaces ``llm.api_base`` and, unlike an api_base the scenario names, receives the
        provider's key (see :mod:`mesa_llm.llm.consent`). ``prompt_libraries`` (population ->
        library) replace the scenario's prompt templates (a replay's, from the recording's texts).
        """
        # a spec changed after validation (a script, a fork) still builds no more agents than the machine runs
        if problems := capacity_problems(scenario.populations, len(scenario.goods)):
            raise ScenarioError(scenario.name, problems)
        self.parent = parent
        if api_base is not None:
            scenario = scenario.model_copy(update={"llm": scenario.llm.model_copy(update={"api_base": api_base})})
        self.seed_value = scenario.seed if seed is None else seed
        super().__init__(seed=self.seed_value)
        self.scenario = scenario
        self.max_steps = steps if steps is not None else scenario.steps
        self.money = Money(scenario.tick_size)
        self.check_invariants = (
            scenario.market.check_invariants if check_invariants is None else check_invariants
        )
        self.policy_registry = policy_registry or default_policy_registry()
        to_ticks = self.money.to_ticks
        goods = []
        for g in scenario.goods:
            lo = to_ticks(g.min_price) if g.min_price is not None else 1
            hi = to_ticks(g.max_price) if g.max_price is not None else max(to_ticks(g.reference_price) * 10, lo + 1)
            goods.append((g.name, to_ticks(g.reference_price), lo, hi))
        self.rules = MarketRules(
            self.money,
            price_caps={g: to_ticks(p) for g, p in scenario.rules.price_caps.items()},
            price_floors={g: to_ticks(p) for g, p in scenario.rules.price_floors.items()},
            position_limits=dict(scenario.rules.position_limits),
            max_fine=to_ticks(scenario.rules.max_fine) if scenario.rules.max_fine is not None else None,
        )
        self.exchange = Exchange(
            goods,
            self.money,
            rules=self.rules,
            k=scenario.market.k,
            fee_per_unit=self.money.round_to_tick(scenario.market.fee_per_unit),
            max_orders_per_step=scenario.market.max_orders_per_step,
            price_history=scenario.market.price_history,
        )
        self.llm_model_override = llm_model
        self.notices: list[str] = []
        self.resolved_models = (
            dict(resolved_models) if resolved_models is not None else resolve_llm_models(scenario, llm_model, chat_model)
        )
        self.llm = LLMWiring(
            scenario,
            self.resolved_models,
            llm_model,
            chat_model,
            seed=self.seed_value,
            trusted_api_base=api_base,
            prompt_libraries=prompt_libraries,
        )
        self.usage = self.llm.usage
        self.stop_status: str | None = None
        self._states_step: int | None = None  # the step whose agent_state events were recorded last
        self._async: AsyncBridge | None = None
        #: per LLM population: calls, tool calls and applied actions (the summary's inert-agent check)
        self.llm_activity = LLMActivity()
        self.builder = PopulationBuilder(
            self,
            scenario=scenario,
            money=self.money,
            exchange=self.exchange,
            rng=self.rng,
            policy_registry=self.policy_registry,
            llm=self.llm,
            resolved_models=self.resolved_models,
            rules_view=self._market_rules_view,
        )
        for population in scenario.populations:
            self.builder.add_population(population)
        self.traders: list[TraderAgent] = self.builder.traders
        self.populations: dict[str, list[TraderAgent]] = self.builder.populations
        self.initial_cash: dict[int, int] = self.builder.initial_cash
        self.notices.extend(self.builder.notices)
        for agent in self.traders:
            if agent.policy.is_llm:
                self.llm_activity.add_agent(agent.unique_id, agent.population)
        self.llm.agent_ids.extend(a.unique_id for a in self.traders)  # recipients in the LLM tool schemas
        self.notices.extend(self.llm.notices)  # after the populations: tool-mode probes add theirs
        self.equilibria = self._equilibria()
        #: equilibrium at the start of the run
        self.initial_equilibria = self.equilibria
        #: the most surplus the run could still realise (ticks): the initial maximum, re-based at
        #: every value/cost shock to what was realised so far plus the new equilibrium's maximum
        self.surplus_benchmark = sum(eq.max_surplus for eq in self.equilibria.values())
        #: the induced-value economy's realised surplus (intermediaries pass units on, add none)
        self.induced_surplus = InducedSurplus()
        self._induced = any(pv.values or pv.costs for a in self.traders for pv in a.private.values())
        self.totals = StepTotals()
        self.run_trades = 0
        self.run_volume = 0
        self.trade_value: dict[str, int] = {g: 0 for g in self.exchange.goods}
        self.trade_units: dict[str, int] = {g: 0 for g in self.exchange.goods}
        #: running aggregates of each good's trade prices (not the prices: memory stays bounded)
        self.price_stats: dict[str, PriceStats] = {g: PriceStats() for g in self.exchange.goods}
        self.stop_reason: str | None = None
        self.contract_units: dict[str, int] = {}
        self.mailbox = Mailbox()
        self.alliances = AllianceRegistry()
        rep = scenario.social.reputation
        self.reputation = Reputation(
            initial=rep.initial,
            fulfilled_gain=rep.fulfilled_gain,
            breach_loss=rep.breach_loss,
            fine_loss=rep.fine_loss,
            flag_loss=rep.flag_loss,
        )
        for agent in self.traders:
            self.reputation.register(agent.unique_id)
        self.desk = self.builder.build_desk(self.rules, self.reputation)
        self.stress = StressSchedule(
            [(i, e) for i, e in enumerate(scenario.timeline) if isinstance(e, STRESS_TYPES)],
            self.populations,
            list(self.exchange.goods),
            lambda good: list(self.exchange.goods[good].history),
            self.rng,
        )
        self._social_active = bool(
            self.desk is not None
            or scenario.social.alliances
            or any(a.role is Role.REGULATOR for a in self.traders)
        )
        self._last_messages: list[dict[str, Any]] = []
        self._last_trades: list[dict[str, Any]] = []
        self._by_id: dict[int, TraderAgent] = {a.unique_id: a for a in self.traders}
        #: the game master's shared state, handed to its parts (they never reach back into the model)
        self.world = WorldState(
            scenario=scenario,
            money=self.money,
            rules=self.rules,
            exchange=self.exchange,
            mailbox=self.mailbox,
            alliances=self.alliances,
            reputation=self.reputation,
            desk=self.desk,
            agents=self._by_id,
        )
        self.resolver = ActionResolver(self.world, rng=self.rng, record=self._record)
        self.datacollector = BoundedDataCollector(
            max_rows=history_steps,
            model_reporters={
                "price": lambda m: m.primary_price(),
                "volume": lambda m: m.totals.volume,
                "trades": lambda m: m.totals.trades,
                "efficiency": lambda m: m.efficiency(),
                "prices": lambda m: m.exchange.snapshot_prices(),
            },
            agent_reporters={
                "wealth": lambda a: a.model.wealth(a),
                "cash": lambda a: a.model.money.to_units(a.model.exchange.ledger.account(a.unique_id).cash),
                "surplus": lambda a: a.model.money.to_units(a.model.agent_surplus(a)),
            },
        )
        self.recorder = recorder
        if run_name is not None and not re.fullmatch(SCENARIO_NAME_PATTERN, run_name):
            # the run name is the recording's file stem: it must not steer the file out of output_dir
            raise ValueError(f"run_name {run_name[:80]!r}: use letters, digits, '_', '.' or '-' only")
        if self.recorder is None and record:
            self.recorder = SimulationRecorder(
                self,
                output_dir=output_dir,
                simulation_id=self._simulation_id(),
                run_name=run_name or self.default_run_name(),
            )
        self.observer = Observer(
            self.world,
            horizon=self.max_steps,
            record=self._record if self.recorder is not None and scenario.recording.observations else None,
            reputation_shown=scenario.social.reputation_shown if self._social_active else 0,
        )
        self._record_start()

    # ------------------------------------------------------------------ construction

    def _market_rules_view(self, population: str | None = None, role: Role | None = None) -> dict[str, Any]:
        """Tick size, admissible price ranges and the mechanisms an agent of ``population`` with
        ``role`` takes part in (see :func:`~mesa_llm.llm_wiring.mechanisms`), for LLM system prompts."""
        to_units = self.money.to_units
        return {
            "tick_size": self.money.tick_size,
            "goods": [
                {"name": name, "min_price": to_units(low), "max_price": to_units(high)}
                for name, (low, high) in ((g, self.exchange.admissible(g)) for g in self.exchange.goods)
            ],
            **mechanisms(self.scenario, population, role if role is not None else Role.TRADER),
        }

    def chat_model_for(self, model_name: str) -> ChatModel:
        """The chat model answering ``model_name`` (see :meth:`LLMWiring.chat_model_for`)."""
        return self.llm.chat_model_for(model_name)

    def _llm_header(self) -> dict[str, Any]:
        return self.llm.header(self.llm_agents)

    @property
    def llm_agents(self) -> list[TraderAgent]:
        """Agents whose decisions come from an LLM."""
        return [a for a in self.traders if a.policy.is_llm]

    def _equilibria(self) -> dict[str, CompetitiveEquilibrium]:
        out = {}
        for good in self.exchange.goods:
            values: list[int] = []
            costs: list[int] = []
            for agent in self.traders:
                pv = agent.private.get(good)
                if pv is None:
                    continue
                values.extend(pv.values[agent.units_bought.get(good, 0) :])
                costs.extend(pv.costs[agent.units_sold.get(good, 0) :])
            out[good] = competitive_equilibrium(values, costs)
        return out

    def _simulation_id(self) -> str:
        spec_json = json.dumps(self.scenario.model_dump(mode="json"), sort_keys=True)
        digest = hashlib.sha256(f"{spec_json}|{self.seed_value}|{self.max_steps}".encode())
        return digest.hexdigest()[:8]

    def default_run_name(self) -> str:
        """``<scenario>_seed<seed>_<UTC time>``: the default recording file stem."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return f"{self.scenario.name}_seed{self.seed_value}_{stamp}"

    # ------------------------------------------------------------------ recording helpers

    def _record(self, event_type: str, content: dict[str, Any], agent_id: int | None = None) -> None:
        if agent_id is not None and agent_id in self.llm_activity.population_of:
            self.llm_activity.note(event_type, content, agent_id)  # counted with or without a recorder
        if self.recorder is not None:
            self.recorder.record_event(event_type, content, agent_id=agent_id, as_given=True)

    def _record_start(self) -> None:
        if self.recorder is None:
            return
        to_units = self.money.to_units
        agents = []
        for a in self.traders:
            account = self.exchange.ledger.account(a.unique_id)
            agents.append(
                {
                    "agent_id": a.unique_id,
                    "name": a.name,
                    "role": a.role.value,
                    "population": a.population,
                    "policy": a.policy.name,
                    "policy_params": a.policy.params.model_dump(mode="json"),
                    "model": a.persona.model,
                    "private": {
                        good: {
                            "values": [to_units(v) for v in pv.values],
                            "costs": [to_units(c) for c in pv.costs],
                            "fundamental": to_units(pv.fundamental) if pv.fundamental is not None else None,
                        }
                        for good, pv in a.private.items()
                    },
                    "endowment": {"cash": to_units(account.cash), "holdings": dict(account.holdings)},
                    "utilities": {space: u.to_dict() for space, u in a.utilities.items()},
                }
            )
        self.recorder.record_model_event(
            "simulation_start",
            {
                "scenario": {
                    "name": self.scenario.name,
                    "spec": self.llm.public_spec(),  # no api_base credentials
                    "source_dir": str(self.scenario.source_dir) if self.scenario.source_dir else None,
                },
                "parent": self.parent,
                "seed": self.seed_value,
                "steps": self.max_steps,
                "tick_size": self.money.tick_size,
                "versions": versions(),
                "plugins": self.scenario.plugins_used(),  # (group, name, distribution, version) of each
                "goods": {
                    name: {
                        "reference_price": to_units(s.reference_price),
                        "min_price": to_units(s.min_price),
                        "max_price": to_units(s.max_price),
                    }
                    for name, s in self.exchange.goods.items()
                },
                "competitive_equilibrium": self.equilibrium_report(),
                "agents": agents,
                "llm": self._llm_header(),
                "notices": list(self.notices),
                "negotiation": {
                    "spaces": {n: sp.to_dict() for n, sp in self.desk.spaces.items()} if self.desk else {},
                },
                "rules": self.rules.view(),
            },
        )

    def equilibrium_report(self) -> dict[str, dict[str, Any]]:
        """Competitive equilibrium per good in currency units (None where undefined)."""
        to_units = self.money.to_units
        tick = self.money.tick_size
        out = {}
        for good, eq in self.equilibria.items():
            out[good] = {
                "quantity": eq.quantity,
                "price_low": to_units(eq.price_low) if eq.price_low is not None else None,
                "price_high": to_units(eq.price_high) if eq.price_high is not None else None,
                "price": round(eq.price * tick, self.money.decimals + 1) if eq.price is not None else None,
                "max_surplus": to_units(eq.max_surplus),
            }
        return out

    # ------------------------------------------------------------------ metrics

    def primary_price(self) -> float | None:
        """Last clearing price of the first good (currency units)."""
        state = next(iter(self.exchange.goods.values()))
        return self.money.to_units(state.last_price) if state.last_price is not None else None

    def realised_surplus(self) -> int:
        """Gains from trade of the induced-value economy so far (ticks; `mesa_llm.economics`)."""
        return self.induced_surplus.realised

    def efficiency_report(self) -> Efficiency:
        """Allocative efficiency so far (in [0, 1]) or None with the reason: realised surplus over
        the most the run could realise (the CE maximum, re-based at value/cost shocks)."""
        return efficiency(self.realised_surplus(), self.surplus_benchmark, induced=self._induced)

    def efficiency(self) -> float | None:
        """Allocative efficiency so far in [0, 1]; None if undefined (`efficiency_report` says why)."""
        return self.efficiency_report().value

    def agent_surplus(self, agent: TraderAgent) -> int:
        """An agent's realised surplus (ticks): its gains on induced values plus its net cash flow."""
        cash = self.exchange.ledger.account(agent.unique_id).cash
        return agent.realised_surplus + cash - self.initial_cash[agent.unique_id]

    def wealth(self, agent: TraderAgent) -> float:
        """Cash plus holdings marked at the last (or reference) price, in currency units."""
        account = self.exchange.ledger.account(agent.unique_id)
        ticks = account.cash + sum(
            q * self.exchange.reference_price(g) for g, q in account.holdings.items() if q
        )
        return self.money.to_units(ticks)

    # ------------------------------------------------------------------ the step

    def step(self) -> None:
        """One step of the pipeline (Mesa increments ``self.steps`` before this runs)."""
        step = self.steps
        self.totals = StepTotals()
        self._record("step_start", {"step": step})
        self._apply_timeline(step)
        for content in self.stress.apply(step):
            self._record("scheduled_event", content)
        self._open_sessions(step)
        self._deliver_messages()
        self.exchange.begin_step()
        observations = self.observer.observe(step, self._last_messages, self._last_trades)
        if self.stress.withdrawn:  # a liquidity shock keeps these agents out of the market
            observations = [(a, o) for a, o in observations if a.unique_id not in self.stress.withdrawn]
        self.llm.begin_step()
        decisions = self._decide(observations)
        self.resolver.resolve(decisions, step)
        clearings = self.exchange.clear(step)
        self._settle_records(clearings, step)
        if self.desk is not None:
            events, fulfilled = self.desk.advance(step)
            for event_type, content, agent_id in events:
                self._record(event_type, content, agent_id)
            self._count_contracts(fulfilled, step)
        if self.check_invariants:
            self.exchange.ledger.check_invariants()
        self.datacollector.collect(self)
        budget = self.usage.budget_exceeded()
        if budget is not None and self.stop_reason is None:
            self.stop_reason = budget
            self.stop_status = "budget_exceeded"
        failing = self.llm.end_step(final=step >= self.max_steps)
        if failing is not None and self.stop_reason is None:
            self.stop_reason = failing
            self.stop_status = "failed"
        # the last step's balances, also when the run stops early, so the recording reconciles
        if (
            self.scenario.recording.agent_states == "every_step"
            or step >= self.max_steps
            or self.stop_reason is not None
        ):
            self._record_agent_states()
        self._record(
            "step_end", {"step": step, "trades": self.totals.trades, "volume": self.totals.volume}
        )
        if self.stop_reason is not None:
            self.running = False
        if self.recorder is not None:
            self.recorder.flush()
        if step >= self.max_steps:
            self.running = False

    def preview_observations(self) -> list[tuple[TraderAgent, Any]]:
        """Every agent's observation of step 1 with every session the scenario schedules open,
        whenever it opens, without running a step (the prompt-template check renders them)."""
        for at_step in sorted({s.at_step for s in self.scenario.negotiation.sessions}):
            self._open_sessions(at_step)
        self.exchange.begin_step()
        return self.observer.observe(1)

    def _apply_timeline(self, step: int) -> None:
        for index, event in enumerate(self.scenario.timeline):
            if event.at_step != step or isinstance(event, STRESS_TYPES):
                continue
            targets = [
                a
                for label in (event.populations or list(self.populations))
                for a in self.populations[label]
            ]
            if isinstance(event, ShiftPrivate):
                for agent in targets:
                    pv = agent.private.get(event.good)
                    if pv is None:
                        continue
                    shift = self.money.round_to_tick(event.add)

                    def moved(x: int, shift: int = shift, scale: float = event.scale) -> int:
                        return max(round(x * scale) + shift, 0)

                    if event.field == "values":
                        pv.values = [moved(v) for v in pv.values]
                    elif event.field == "costs":
                        pv.costs = [moved(c) for c in pv.costs]
                    elif pv.fundamental is not None:
                        pv.fundamental = moved(pv.fundamental)
                self.equilibria = self._equilibria()
                if event.field in ("values", "costs"):
                    self.surplus_benchmark = self.realised_surplus() + sum(
                        eq.max_surplus for eq in self.equilibria.values()
                    )
            elif isinstance(event, SetParams):
                for agent in targets:
                    policy = agent.policy
                    current = policy.params.model_dump()
                    updates = {k: v for k, v in event.params.items() if k in current}
                    if updates:
                        policy.params = type(policy.params).model_validate({**current, **updates})
            elif isinstance(event, Endow):
                cash = self.money.round_to_tick(event.cash)
                for agent in targets:
                    gains = {g: q for g, q in event.holdings.items() if q > 0}
                    losses = {g: -q for g, q in event.holdings.items() if q < 0}
                    if cash > 0 or gains:
                        self.exchange.ledger.issue(
                            agent.unique_id, cash=max(cash, 0), holdings=gains, memo=f"timeline.{index}"
                        )
                    if cash < 0 or losses:
                        account = self.exchange.ledger.account(agent.unique_id)
                        take_cash = min(-cash, max(account.available_cash(credit=False), 0)) if cash < 0 else 0
                        take = {
                            g: min(q, max(account.holdings.get(g, 0) - account.reserved_goods.get(g, 0), 0))
                            for g, q in losses.items()
                        }
                        self.exchange.ledger.retire(
                            agent.unique_id, cash=take_cash, holdings=take, memo=f"timeline.{index}"
                        )
            self._record(
                "scheduled_event",
                {
                    "index": index,
                    "event": event.model_dump(mode="json"),
                    "agents_affected": len(targets),
                    "competitive_equilibrium": self.equilibrium_report(),
                },
            )

    def _open_sessions(self, step: int) -> None:
        if self.desk is None:
            return
        populations = {label: [a.unique_id for a in members] for label, members in self.populations.items()}
        for spec in self.scenario.negotiation.sessions:
            if spec.at_step == step:
                for event_type, content, agent_id in self.desk.open_scheduled(spec, populations, step):
                    self._record(event_type, content, agent_id)

    def _count_contracts(self, fulfilled: list[Contract], step: int) -> None:
        """Fulfilled contracts move units: count them (and the surplus they realise) for both parties."""
        for contract in fulfilled:
            if contract.good is None:
                continue
            units = self.money.to_units(contract.price)
            self._fill(contract.good, contract.quantity, contract.buyer_id, contract.seller_id, contract.price, units, step)
            self.contract_units[contract.good] = self.contract_units.get(contract.good, 0) + contract.quantity

    def _deliver_messages(self) -> None:
        delivered = self.mailbox.deliver()
        seen: dict[int, dict[str, Any]] = {}
        for recipient_id, messages in delivered.items():
            agent = self._by_id.get(recipient_id)
            if agent is None:
                continue
            for message in messages:
                view = message.view()
                agent.inbox.append(view)
                seen.setdefault(message.message_id, {**view, "recipient_ids": list(message.recipient_ids)})
        self._last_messages = [seen[k] for k in sorted(seen)]

    def _decide(self, observations: list[tuple[TraderAgent, Any]]) -> list[tuple[TraderAgent, Decision | None]]:
        """Every agent decides from its own observation; a failing policy loses only its own step.

        Rule-based policies decide in agent order (they draw from ``self.rng``); LLM policies
        decide concurrently (their calls bounded by the per-model limiter). What they produced
        while deciding (LLM calls, plans, failures) is recorded afterwards in agent order, so the
        recording does not depend on which call finished first.
        """
        decisions: list[Decision | None] = [None] * len(observations)
        crashes: dict[int, str] = {}
        llm_jobs: list[int] = []
        for index, (agent, obs) in enumerate(observations):
            if agent.policy.is_llm:
                llm_jobs.append(index)
                continue
            try:
                decisions[index] = agent.decide(obs, self.rng)
            except Exception as exc:  # noqa: BLE001 - one agent's failure must not stop the others
                crashes[index] = f"{type(exc).__name__}: {exc}"
        if llm_jobs:
            results = self._run_async(self._decide_llm([observations[i] for i in llm_jobs]))
            for index, result in zip(llm_jobs, results, strict=True):
                if isinstance(result, BaseException):
                    crashes[index] = f"{type(result).__name__}: {result}"
                else:
                    decisions[index] = result
        out: list[tuple[TraderAgent, Decision | None]] = []
        for index, (agent, _) in enumerate(observations):
            decision = decisions[index]
            if index in crashes:
                self._record("agent_error", {"stage": "decide", "error": crashes[index]}, agent.unique_id)
            elif decision is not None:
                for event_type, content in decision.events:
                    self._record(event_type, content, agent.unique_id)
                if decision.plan:
                    self._record("plan", {"text": decision.plan}, agent.unique_id)
                if decision.failure:
                    self._record(
                        "agent_error",
                        {"stage": "decide", "error": decision.failure, "fatal": decision.fatal},
                        agent.unique_id,
                    )
                    if decision.fatal and self.stop_reason is None:
                        self.stop_reason = decision.failure
                        self.stop_status = "failed"
                    decision = None
            out.append((agent, decision))
        return out

    async def _decide_llm(self, jobs: list[tuple[TraderAgent, Any]]) -> list[Decision | BaseException]:
        tasks = []
        for agent, obs in jobs:
            policy = agent.policy
            assert isinstance(policy, LLMPolicy)
            tasks.append(policy.adecide(obs, self.rng))
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    def _run_async(self, coro: Coroutine[Any, Any, Any]) -> Any:
        if self._async is None:
            self._async = AsyncBridge()
        return self._async.run(coro)

    def _mean_fundamental(self, good: str) -> float | None:
        """The mean of the agents' fundamental values of ``good`` (units), None when none has one."""
        values = [pv.fundamental for a in self.traders if (pv := a.private.get(good)) is not None and pv.fundamental is not None]
        if not values:
            return None
        return round(self.money.to_units(1) * sum(values) / len(values), 6)

    def _settle_records(self, clearings: list[Clearing], step: int) -> None:
        to_units = self.money.to_units
        self._last_trades = []
        for c in clearings:
            self._record(
                "clearing",
                {
                    "good": c.good,
                    "price": to_units(c.price) if c.price is not None else None,
                    "volume": c.volume,
                    "price_range": (
                        [to_units(c.price_low), to_units(c.price_high)]
                        if c.price_low is not None and c.price_high is not None
                        else None
                    ),
                    "excess_demand": c.excess_demand,
                    "excess_supply": c.excess_supply,
                    "buy_orders": c.buy_orders,
                    "sell_orders": c.sell_orders,
                    "bid_after": to_units(c.bid_after) if c.bid_after is not None else None,
                    "ask_after": to_units(c.ask_after) if c.ask_after is not None else None,
                    # the mean fundamental value now (after shocks and stress events): the line
                    # prices are read against, recorded because volatility spikes draw it at random
                    "fundamental": self._mean_fundamental(c.good),
                },
            )
            for t in c.trades:
                price_units = to_units(t.price)
                self._record(
                    "trade",
                    {
                        "good": t.good,
                        "price": price_units,
                        "quantity": t.quantity,
                        "buyer_id": t.buyer_id,
                        "seller_id": t.seller_id,
                        "buy_order_id": t.buy_order_id,
                        "sell_order_id": t.sell_order_id,
                        "buyer_fee": to_units(t.buyer_fee),
                        "seller_fee": to_units(t.seller_fee),
                    },
                )
                self._last_trades.append(
                    {"good": t.good, "price": price_units, "quantity": t.quantity, "buyer_id": t.buyer_id, "seller_id": t.seller_id}
                )
                self._fill(t.good, t.quantity, t.buyer_id, t.seller_id, t.price, price_units, step)
                self.totals.trades += 1
                self.totals.volume += t.quantity
                self.trade_value[t.good] += t.price * t.quantity
                self.trade_units[t.good] += t.quantity
                self.price_stats[t.good].add(t.price)
        self.run_trades += self.totals.trades
        self.run_volume += self.totals.volume

    def _fill(self, good: str, quantity: int, buyer_id: int, seller_id: int, price: int, units: float, step: int) -> None:
        """Count moved units for both parties and in the induced-value economy's surplus."""
        buyer, seller = self._by_id[buyer_id], self._by_id[seller_id]
        self.induced_surplus.fill(
            good, quantity, buyer.induced_units(good, "buy", quantity), seller.induced_units(good, "sell", quantity)
        )
        buyer.record_fill(good, "buy", quantity, price, units, step)
        seller.record_fill(good, "sell", quantity, price, units, step)

    def _record_agent_states(self) -> None:
        if self.recorder is None:
            return
        self._states_step = self.steps
        to_units = self.money.to_units
        for agent in self.traders:
            account = self.exchange.ledger.account(agent.unique_id)
            self._record(
                "agent_state",
                {
                    "cash": to_units(account.cash),
                    "holdings": dict(account.holdings),
                    "reserved_cash": to_units(account.reserved_cash),
                    "units_bought": dict(agent.units_bought),
                    "units_sold": dict(agent.units_sold),
                    "surplus": to_units(self.agent_surplus(agent)),
                    "wealth": self.wealth(agent),
                },
                agent.unique_id,
            )

    # ------------------------------------------------------------------ running

    def run(self, progress: Callable[[int], None] | None = None) -> RunSummary:
        """Run to the horizon (or until stopped), close the recording, and return the summary."""
        status = "completed"
        # What model construction left alive (e.g. litellm's modules) needs no rescans. Only that:
        # freezing after every step would also pin each step's cyclic garbage until the run ends,
        # and nothing kept per step grows with the run any more (the recorder streams).
        gc.freeze()
        try:
            while self.running and self.steps < self.max_steps:
                self.step()
                if progress is not None:
                    progress(self.steps)
        except KeyboardInterrupt:
            status = "interrupted"
            self.stop_reason = "interrupted by the user"
            raise
        except Exception as exc:
            status = "failed"
            self.stop_reason = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            gc.unfreeze()
            self.finish(self.stop_status or status)
        return self.summary()

    def finish(self, status: str = "completed") -> None:
        """Record the end of the run and close the recording (idempotent)."""
        if getattr(self, "_finished", False):
            return
        self._finished = True
        if self._async is not None:
            self._async.close()
            self._async = None
        if self.recorder is None:
            return
        if status in ("failed", "interrupted") and self._states_step != self.steps:
            self._record_agent_states()  # a step cut by an exception: its balances as they stand
        if self.stop_reason:
            self._record("run_stopped", {"reason": self.stop_reason, "status": status})
        if self.llm_agents:
            self._record("llm_usage", self.usage.to_dict())
        house = self.exchange.ledger.account(HOUSE)
        # where fees and fines went: with it every agent's cash reconciles from the recording alone
        self.recorder.record_simulation_end(
            status, house={"cash": self.money.to_units(house.cash), "holdings": dict(house.holdings)}
        )
        self.recorder.close()

    @property
    def recording_path(self) -> Path | None:
        """The JSON-lines recording of this run, if recording."""
        return self.recorder.jsonl_path if self.recorder is not None else None

    def summary(self) -> RunSummary:
        """Trades, volume, prices against equilibrium and efficiency of the run so far."""
        to_units = self.money.to_units
        goods = {}
        for good in self.exchange.goods:
            eq = self.initial_equilibria[good]
            units = self.trade_units[good]
            last = self.exchange.goods[good].last_price
            goods[good] = {
                "trades": self.price_stats[good].count,
                "volume": units,
                "mean_price": round(self.trade_value[good] / units * self.money.tick_size, self.money.decimals + 2) if units else None,
                "last_price": to_units(last) if last is not None else None,
                "ce_price": round(eq.price * self.money.tick_size, self.money.decimals + 1) if eq.price is not None else None,
                "ce_quantity": eq.quantity,
                "smith_alpha": self.price_stats[good].smith_alpha(eq.price),
                "contract_volume": self.contract_units.get(good, 0),
            }
        return RunSummary(
            scenario=self.scenario.name,
            seed=self.seed_value,
            steps=self.steps,
            trades=self.run_trades,
            volume=self.run_volume,
            efficiency=(report := self.efficiency_report()).value,
            efficiency_note=report.reason,
            goods=goods,
            recording=str(self.recording_path) if self.recording_path is not None else None,
            stop_reason=self.stop_reason,
            llm=self.llm.summary(self.llm_agents, self.llm_activity, self.steps),
            negotiation=self.desk.stats() if self.desk is not None else None,
        )
