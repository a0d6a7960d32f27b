"""The Mesa model: one run's world and agents, and the step pipeline.

One step, one direction (docs/architecture/step.md): scheduled events -> observe (every agent, from the state at
step start) -> decide (every agent; no agent sees another's same-step actions) -> validate and
resolve (actions applied in a seeded random order; rejections recorded and shown next step) ->
clear and settle (call auction per good, ledger) -> invariants -> collect (DataCollector) ->
record (the step's events are flushed to the recording). All randomness comes from ``self.rng``.

A step has two halves: `prepare_step` (scheduled events, sessions, messages, observations) and
the rest (decide ... record). ``Simulation.observe`` prepares the coming step early so an external
agent sees exactly the observation the others decide on. Front-ends build and drive a model through
`mesa_llm.Simulation`; what the run records, tallies and schedules lives in `payloads`, `tallies`,
`timeline` and `collector`.
"""

from __future__ import annotations

import gc
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mesa

from mesa_llm import payloads
from mesa_llm.actions import ActionRegistry, Decision
from mesa_llm.agents.policies import PolicyRegistry, default_policy_registry
from mesa_llm.agents.prompts import PromptLibrary
from mesa_llm.agents.roles import Role
from mesa_llm.agents.trader import TraderAgent
from mesa_llm.collector import DEFAULT_HISTORY_STEPS, BoundedDataCollector, market_collector
from mesa_llm.decisions import collect, decide_llm, decide_rule_based
from mesa_llm.event_bus import EventBus
from mesa_llm.gc_pause import collector_paused, young_passes_spaced
from mesa_llm.llm import ChatModel
from mesa_llm.llm_wiring import AsyncBridge, LLMWiring, resolve_llm_models, rules_view
from mesa_llm.market import Money
from mesa_llm.market.ledger import HOUSE
from mesa_llm.mechanisms.base import MechanismContext, mechanism_classes
from mesa_llm.mechanisms.call_market import CallMarketMechanism
from mesa_llm.mechanisms.negotiation import NegotiationMechanism
from mesa_llm.populations import PopulationBuilder
from mesa_llm.record_batch import record_many
from mesa_llm.recording import SimulationEvent, SimulationRecorder
from mesa_llm.run_summary import LLMActivity, RunSummary
from mesa_llm.scenario import SCENARIO_NAME_PATTERN, ScenarioError, ScenarioSpec, capacity_problems
from mesa_llm.tallies import MarketTallies
from mesa_llm.text_batch import LeanItem
from mesa_llm.timeline import Timeline
from mesa_llm.world.build import build_exchange, build_social
from mesa_llm.world.observer import Observer, deliver_messages
from mesa_llm.world.resolver import ActionResolver
from mesa_llm.world.state import Content, WorldState

__all__ = ["DEFAULT_HISTORY_STEPS", "BoundedDataCollector", "MarketModel", "resolve_llm_models"]


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
        """Build the market and agents of ``scenario`` (front-ends use `mesa_llm.Simulation`).

        ``history_steps``: DataCollector steps kept (None: all; the recording has every step).
        ``llm_model``: every LLM population's model (``--model``); ``chat_model`` answers every LLM
        call instead of litellm (tests, replays); ``resolved_models`` fixes each LLM population's
        model (replays); ``parent`` names the recording replayed or forked. ``api_base``: the caller's
        own server (``--api-base``), which, unlike one a scenario names, gets the provider's key
        (`mesa_llm.llm.consent`); ``prompt_libraries`` (population -> library) replace the
        scenario's templates (a replay's, from the recorded texts).
        """
        # a spec changed after validation (a script, a fork) still builds no more agents than the machine runs
        if problems := capacity_problems(scenario.populations, len(scenario.goods)):
            raise ScenarioError(scenario.name, problems)
        self.parent = parent
        if api_base is not None:  # the caller's own server
            scenario = scenario.model_copy(update={"llm": scenario.llm.model_copy(update={"api_base": api_base})})
        self.seed_value = scenario.seed if seed is None else seed
        super().__init__(seed=self.seed_value)
        self.scenario = scenario
        self.max_steps = steps if steps is not None else scenario.steps
        self.money = money = Money(scenario.tick_size)
        self.check_invariants = scenario.market.check_invariants if check_invariants is None else check_invariants
        self.policy_registry = policy_registry or default_policy_registry()
        self.rules, self.exchange = build_exchange(scenario, money)
        self.llm_model_override = llm_model
        self.notices: list[str] = []
        self.resolved_models = dict(resolved_models) if resolved_models is not None else resolve_llm_models(scenario, llm_model, chat_model)
        plugin_classes = mechanism_classes(scenario)
        self.llm = LLMWiring(scenario, self.resolved_models, llm_model, chat_model, seed=self.seed_value,
                             trusted_api_base=api_base, prompt_libraries=prompt_libraries,
                             actions=ActionRegistry().with_actions(tuple(a for c in plugin_classes for a in c.actions)))  # fmt: skip
        self.usage = self.llm.usage
        self.stop_status: str | None = None  # why the run stopped early (a status) ...
        self.stop_reason: str | None = None  # ... and in words
        self._states_step: int | None = None  # the step whose agent_state events were recorded last
        self._async: AsyncBridge | None = None
        self._finished = False  # finish() ran
        #: per LLM population: calls, tool calls and applied actions (the summary's inert-agent check)
        self.llm_activity = LLMActivity()
        builder = PopulationBuilder(
            self, scenario=scenario, money=money, exchange=self.exchange, rng=self.rng,
            policy_registry=self.policy_registry, llm=self.llm, resolved_models=self.resolved_models,
            rules_view=lambda population, role: rules_view(scenario, money, self.exchange, population, role, self.plugin_mechanisms),
        )  # fmt: skip
        #: the scenario's plugin mechanisms (built before the agents, started once they exist)
        self.plugin_mechanisms = [
            cls(entry, MechanismContext(scenario, money, self.exchange.ledger, self.rng, self._record, builder.by_id,
                                        builder.population_ids, self.max_steps, i))
            for i, (cls, entry) in enumerate(zip(plugin_classes, scenario.mechanisms, strict=True))
        ]  # fmt: skip
        self.llm.mechanism_tools = lambda population, role: [t for m in self.plugin_mechanisms for t in m.tools(population, role)]
        for population in scenario.populations:
            builder.add_population(population)
        self.traders: list[TraderAgent] = builder.traders
        self.populations: dict[str, list[TraderAgent]] = builder.populations
        self.initial_cash: dict[int, int] = builder.initial_cash
        self.notices.extend(builder.notices)
        for agent in (a for a in self.traders if a.policy.is_llm):
            self.llm_activity.add_agent(agent.unique_id, agent.population)
        self.llm.agent_ids.extend(a.unique_id for a in self.traders)  # recipients in the LLM tool schemas
        self.notices.extend(self.llm.notices)  # after the populations: tool-mode probes add theirs
        self._by_id = payloads.by_id(self.traders)
        self.tallies = MarketTallies(list(self.exchange.goods), money, self._by_id)
        self.mailbox, self.alliances, self.reputation = build_social(scenario)
        for agent in self.traders:
            self.reputation.register(agent.unique_id)
        self.desk = builder.build_desk(self.rules, self.reputation)
        self.call_market = CallMarketMechanism(self.exchange, enabled=scenario.market.call_market, money=money,
                                               record=self._record, traders=self.traders, encoded=record or recorder is not None,
                                               record_many=self._record_many)  # fmt: skip
        self.negotiation = NegotiationMechanism(
            self.desk, sessions=scenario.negotiation.sessions, populations=self.populations, record=self._record
        ) if self.desk is not None else None  # fmt: skip
        builtin = [self.call_market] + ([self.negotiation] if self.negotiation is not None else [])
        #: subscribers to the run's events as they happen (`mesa_llm.Simulation.subscribe`)
        self.events = EventBus()
        self._event_count = 0  # events published without a recorder (their ids)
        self._run_id = self._simulation_id()
        self.timeline = Timeline(
            scenario.timeline, populations=self.populations, goods=list(self.exchange.goods), money=money,
            ledger=self.exchange.ledger, rng=self.rng,
            price_history=lambda good: list(self.exchange.goods[good].history),
            record=self._record, on_private_change=self._private_changed,
        )  # fmt: skip
        self._last_messages: list[dict[str, Any]] = []
        #: the game master's shared state, handed to its parts (they never reach back into the model)
        self.world = WorldState(
            scenario=scenario, money=money, rules=self.rules, exchange=self.exchange, mailbox=self.mailbox,
            alliances=self.alliances, reputation=self.reputation, desk=self.desk, agents=self._by_id,
            mechanisms=(*builtin, *self.plugin_mechanisms),
        )  # fmt: skip
        self.resolver = ActionResolver(self.world, rng=self.rng, record=self._record, encoded=record or recorder is not None,
                                       record_many=self._record_many)  # fmt: skip
        self.datacollector = market_collector(history_steps)
        self.recorder = recorder
        if run_name is not None and not re.fullmatch(SCENARIO_NAME_PATTERN, run_name):
            # the run name is the recording's file stem: it must not steer the file out of output_dir
            raise ValueError(f"run_name {run_name[:80]!r}: use letters, digits, '_', '.' or '-' only")
        if self.recorder is None and record:
            self.recorder = SimulationRecorder(self, output_dir=output_dir, simulation_id=self._run_id,
                                               run_name=run_name or self.default_run_name())  # fmt: skip
        self.llm.keep_encoded = getattr(self.recorder, "keep_encoded", None)  # tool lists encoded once in llm_calls
        social_active = self.desk is not None or scenario.social.alliances or any(a.role is Role.REGULATOR for a in self.traders)
        recording = self.recorder is not None and scenario.recording.observations
        self.observer = Observer(
            self.world, horizon=self.max_steps, reputation_shown=scenario.social.reputation_shown if social_active else 0,
            record=self._record if recording else None, encode=getattr(self.recorder, "encode", None) if recording else None,
            record_many=self._record_many if recording else None,
        )  # fmt: skip
        #: the step whose first half (`prepare_step`) has run, and its observations
        self._prepared: tuple[int, Sequence[tuple[TraderAgent, Any]]] | None = None
        #: the step events are recorded under: the step being run, else the last one run
        self.current_step = 0
        self._record_start()
        for mechanism in self.plugin_mechanisms:
            mechanism.start()

    def agent(self, agent_id: int) -> TraderAgent:
        """The agent with ``agent_id`` (KeyError if there is none)."""
        return self._by_id[agent_id]

    @property
    def llm_agents(self) -> list[TraderAgent]:
        """Agents whose decisions come from an LLM."""
        return [a for a in self.traders if a.policy.is_llm]

    def llm_header(self) -> dict[str, Any]:
        """The LLM part of the recording header: settings, models, prompt template hashes, tool modes."""
        return self.llm.header(self.llm_agents)

    @property
    def recording_path(self) -> Path | None:
        """The JSON-lines recording of this run, if recording."""
        return self.recorder.jsonl_path if self.recorder is not None else None

    def default_run_name(self) -> str:
        """``<scenario>_seed<seed>_<UTC time>``: the default recording file stem."""
        return f"{self.scenario.name}_seed{self.seed_value}_{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"

    def efficiency(self) -> float | None:
        """Allocative efficiency so far in [0, 1]; None if undefined (``tallies.efficiency_report()``
        says why): realised surplus over the most the run could realise."""
        return self.tallies.efficiency_report().value

    def agent_surplus(self, agent: TraderAgent) -> int:
        """An agent's realised surplus (ticks): its gains on induced values plus its net cash flow."""
        cash = self.exchange.ledger.account(agent.unique_id).cash
        return agent.realised_surplus + cash - self.initial_cash[agent.unique_id]

    def wealth(self, agent: TraderAgent) -> float:
        """Cash plus holdings marked at the last (or reference) price, in currency units."""
        account = self.exchange.ledger.account(agent.unique_id)
        ticks = account.cash + sum(q * self.exchange.reference_price(g) for g, q in account.holdings.items() if q)
        return self.money.to_units(ticks)

    def summary(self) -> RunSummary:
        """Trades, volume, prices against equilibrium, fees and efficiency of the run so far."""
        tallies = self.tallies
        report = tallies.efficiency_report()
        return RunSummary(
            scenario=self.scenario.name, seed=self.seed_value, steps=self.steps, trades=tallies.trades,
            volume=tallies.volume, allocative_efficiency=report.value, allocative_efficiency_note=report.reason,
            goods=tallies.goods_summary({g: s.last_price for g, s in self.exchange.goods.items()}),
            recording=str(self.recording_path) if self.recording_path is not None else None,
            stop_reason=self.stop_reason, llm=self.llm.summary(self.llm_agents, self.llm_activity, self.steps),
            negotiation=self.desk.stats() if self.desk is not None else None,
            fees=tallies.fees(),
            mechanisms={m.name: m.metrics() for m in self.plugin_mechanisms} or None,
        )  # fmt: skip

    def _simulation_id(self) -> str:
        spec_json = json.dumps(self.scenario.model_dump(mode="json"), sort_keys=True)
        digest = hashlib.sha256(f"{spec_json}|{self.seed_value}|{self.max_steps}".encode())
        return digest.hexdigest()[:8]

    def _private_changed(self, field: str | None) -> dict[str, Any]:
        if field is not None:
            self.tallies.rebase(field)
        return self.tallies.equilibrium_report()

    def _record(self, event_type: str, content: Content, agent_id: int | None = None, encoded: str | None = None) -> None:
        """Record one event: tallies and activity counts, the recording (`SimulationRecorder.record_lean`:
        ``encoded`` is the content's JSON text, ``content`` then maybe a function making it), subscribers."""
        wanted = self.events.wants(event_type)
        if callable(content) and (wanted or agent_id in self.llm_activity.population_of):
            content = content()
        if event_type == "trade" or event_type == "contract":
            self.tallies.on_event(event_type, content, self.current_step)  # type: ignore[arg-type]
        if agent_id is not None and agent_id in self.llm_activity.population_of:
            self.llm_activity.note(event_type, content, agent_id)  # type: ignore[arg-type]  # counted with or without a recorder
        event = None if self.recorder is None else self.recorder.record_lean(
            event_type, content, agent_id, step=self.current_step, encoded=encoded, need_event=wanted)  # fmt: skip
        if wanted:
            if event is None:
                self._event_count += 1
                event = SimulationEvent(f"{self._run_id}_{self._event_count:06d}", datetime.now(UTC), self.current_step,
                                        agent_id, event_type, content, {})  # type: ignore[arg-type]  # fmt: skip
            self.events.publish(event)

    def _record_many(self, items: Iterable[LeanItem]) -> None:
        """`_record` for each ``(event_type, content, agent_id, encoded)`` in order, in effect (`record_batch`)."""
        record_many(items, self.current_step, self.recorder, self.tallies, self.llm_activity, self.events.wants, self._record)

    def _record_start(self) -> None:
        if self.recorder is not None:
            self.recorder.record_model_event("simulation_start", payloads.simulation_start(self))

    def _record_agent_states(self) -> None:
        if self.recorder is None:
            return
        self._states_step = self.steps
        ledger, money = self.exchange.ledger, self.money
        self._record_many([("agent_state", payloads.agent_state_record(agent, ledger, money, self.agent_surplus(agent),
                                                                       self.wealth(agent)), agent.unique_id, None)
                           for agent in self.traders])  # fmt: skip

    def prepare_step(self) -> Sequence[tuple[TraderAgent, Any]]:
        """The first half of the coming step (``steps + 1``): scheduled events, sessions, messages,
        every agent's observation (recorded). Runs once per step; `step` runs it when nobody did."""
        if self._prepared is not None and self._prepared[0] == self.steps + 1:
            return self._prepared[1]
        return self._prepare(self.steps + 1)

    def _prepare(self, step: int) -> Sequence[tuple[TraderAgent, Any]]:
        self.current_step = step
        self.tallies.begin_step()
        self._record("step_start", {"step": step})
        self.timeline.apply(step)
        self._last_messages = deliver_messages(self.mailbox, self._by_id)
        for mechanism in self.world.mechanisms:  # the desk opens the sessions scheduled now
            mechanism.begin_step(step)
        observations = self.observer.observe(step, self._last_messages, self.call_market.last_trades)
        if self.timeline.withdrawn:  # a liquidity shock keeps these agents out of the market
            observations = [(a, o) for a, o in observations if a.unique_id not in self.timeline.withdrawn]
        self._prepared = (step, observations)
        return observations

    def next_open_step(self) -> int:
        """The first step an event scheduled now can still act at (a prepared step has begun)."""
        prepared = self._prepared
        return prepared[0] + 1 if prepared is not None and prepared[0] > self.steps else self.steps + 1

    def schedule(self, event: Any) -> None:
        """Add a validated timeline event (recorded as ``event_scheduled``, so a replay adds it too)."""
        index = self.timeline.schedule(event)
        self._record("event_scheduled", {"index": index, "event": event.model_dump(mode="json")})

    def step(self) -> None:
        """One step of the pipeline (Mesa increments ``self.steps`` before this runs), the cyclic
        collector paused until the step's temporaries are freed (`mesa_llm.gc_pause`)."""
        with collector_paused():
            self._finish_step(self._decide(self._begin_decide()))

    async def astep(self) -> None:
        """`step` for an event loop (LLM calls on the caller's loop), the collector paused as in `step`."""
        self.steps += 1  # what Mesa's step wrapper does for `step`
        with collector_paused():
            observations = self._begin_decide()
            rule_based, llm_jobs, crashes = decide_rule_based(observations, self.rng)
            results = await decide_llm([observations[i] for i in llm_jobs], self.rng) if llm_jobs else []
            self._finish_step(self._collect(observations, rule_based, llm_jobs, results, crashes))

    def _begin_decide(self) -> Sequence[tuple[TraderAgent, Any]]:
        prepared = self._prepared
        observations = prepared[1] if prepared is not None and prepared[0] == self.steps else self._prepare(self.steps)
        self.current_step = self.steps
        self.llm.begin_step()
        return observations

    def _finish_step(self, decisions: list[tuple[TraderAgent, Decision | None]]) -> None:
        step = self.steps
        self._prepared = None
        self.resolver.resolve(decisions, step)
        for mechanism in self.world.mechanisms:  # clearing and settlement, each recorded
            mechanism.clear(step)
        if self.check_invariants:
            self.exchange.ledger.check_invariants()
        self.datacollector.collect(self)
        budget = self.usage.budget_exceeded()
        if budget is not None and self.stop_reason is None:
            self.stop_reason, self.stop_status = budget, "budget_exceeded"
        failing = self.llm.end_step(final=step >= self.max_steps)
        if failing is not None and self.stop_reason is None:
            self.stop_reason, self.stop_status = failing, "failed"
        if self.stop_reason is None and self.desk is not None and not self.scenario.market.call_market \
                and not self.timeline.pending_after(step) and self.desk.auctions_over(step):  # nothing left to run
            self.stop_reason, self.stop_status = "every auction has closed and nothing else is active", "completed"
        # the last step's balances, also when the run stops early, so the recording reconciles
        if self.scenario.recording.agent_states == "every_step" or step >= self.max_steps or self.stop_reason is not None:
            self._record_agent_states()
        tallies = self.tallies
        self._record("step_end", {"step": step, "trades": tallies.step_trades, "volume": tallies.step_volume})
        if self.stop_reason is not None or step >= self.max_steps:
            self.running = False
        if self.recorder is not None:
            self.recorder.flush()

    def _decide(self, observations: Sequence[tuple[TraderAgent, Any]]) -> list[tuple[TraderAgent, Decision | None]]:
        """Every agent decides from its own observation (`mesa_llm.decisions`)."""
        rule_based, llm_jobs, crashes = decide_rule_based(observations, self.rng)
        self._async = self._async or AsyncBridge()  # one event loop for the whole run
        results = self._async.run(decide_llm([observations[i] for i in llm_jobs], self.rng)) if llm_jobs else []
        return self._collect(observations, rule_based, llm_jobs, results, crashes)

    def _collect(self, observations: Any, decisions: Any, llm_jobs: Any, results: Any, crashes: Any) -> list[tuple[TraderAgent, Decision | None]]:
        out, fatal = collect(observations, decisions, llm_jobs, results, crashes, self._record)
        if fatal is not None and self.stop_reason is None:
            self.stop_reason, self.stop_status = fatal, "failed"
        return out

    def preview_observations(self) -> Sequence[tuple[TraderAgent, Any]]:
        """Every agent's observation of step 1 with every session the scenario schedules open,
        whenever it opens, without running a step (the prompt-template check renders them)."""
        if self.negotiation is not None:
            for at_step in sorted({s.at_step for s in self.scenario.negotiation.sessions}):
                self.negotiation.open_scheduled(at_step)
        self.exchange.begin_step()
        return self.observer.observe(1)

    def run(self, progress: Callable[[int], None] | None = None) -> RunSummary:
        """Run to the horizon (or until stopped), close the recording, and return the summary."""
        status = "completed"
        # what building left alive (litellm's modules, the agents) needs no rescans; frozen once only
        gc.freeze()
        try:
            with young_passes_spaced():  # most of what a step leaves dies within a step or two
                while self.running and self.steps < self.max_steps:
                    self.step()
                    if progress is not None:
                        progress(self.steps)
        except KeyboardInterrupt:
            status, self.stop_reason = "interrupted", "interrupted by the user"
            raise
        except Exception as exc:
            status, self.stop_reason = "failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            gc.unfreeze()
            self.finish(self.stop_status or status)
        return self.summary()

    def finish(self, status: str = "completed") -> None:
        """Record the end of the run and close the recording (idempotent)."""
        if self._finished:
            return
        self._finished = True
        if self._async is not None:
            self._async.close()
            self._async = None
        self.events.close()
        if self.recorder is None:
            return
        self.current_step = self.steps
        if status in ("failed", "interrupted", "replayed_to_cut") and self._states_step != self.steps:
            self._record_agent_states()  # a step cut by an exception: its balances as they stand
        if self.stop_reason:
            self._record("run_stopped", {"reason": self.stop_reason, "status": status})
        if self.llm_agents:
            self._record("llm_usage", self.usage.to_dict())
        # where fees and fines went: with it every agent's cash reconciles from the recording alone
        self.recorder.record_simulation_end(status, house=payloads.house_record(self.exchange.ledger, self.money, HOUSE))
        self.recorder.close()
