"""`Simulation`: the one public way to build, step, watch, steer and close a run.

Every front-end — the CLI, sweeps, the dashboard, replays and forks, the web API, learning
environments and your own scripts — goes through it::

    from mesa_llm import Simulation

    with Simulation.from_scenario("double_auction", seed=3, out="recordings") as sim:
        sim.subscribe("trade", lambda event: print(event.step, event.content["price"]))
        sim.run(10)
        sim.schedule({"type": "endow", "cash": 50})          # at the next step
        state = sim.state()                                  # JSON-ready
    print(sim.recording_path)                                # closed: simulation_end written

Agents of a population with ``policy: external`` act only through `Simulation.act` (a learner,
a remote client): their actions go through the same validation and resolution as any agent's.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from pydantic import BaseModel

from mesa_llm.actions import ActionBase
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.policies import PolicyRegistry
from mesa_llm.agents.policies.external import ExternalPolicy
from mesa_llm.event_bus import Callback, Subscription
from mesa_llm.gc_pause import young_passes_spaced
from mesa_llm.llm import ChatModel
from mesa_llm.model import DEFAULT_HISTORY_STEPS, MarketModel
from mesa_llm.prompt_check import check_prompt_templates
from mesa_llm.run_summary import RunSummary
from mesa_llm.scenario import (
    ScenarioError,
    ScenarioSpec,
    apply_override,
    load_scenario,
    parse_override,
    resolve_scenario_path,
    validate_scenario,
)
from mesa_llm.snapshot import SimulationState, metrics, snapshot

__all__ = ["AccountState", "ExternalAgentError", "Simulation", "SimulationClosedError", "StepReport", "prepare_scenario"]

#: what a scenario may be given as
ScenarioLike = str | Path | ScenarioSpec | Mapping[str, Any]


class ExternalAgentError(ValueError):
    """`Simulation.act` / `observe` for an agent that does not exist or is not externally driven."""


class SimulationClosedError(RuntimeError):
    """A closed (or finished) simulation was asked to step or act."""


class AccountState(TypedDict):
    """`Simulation.account`: one agent's balances in currency units (quantities are integers)."""

    cash: float
    holdings: dict[str, int]
    #: per good: the last clearing price, else the reference price
    marks: dict[str, float]
    #: goods the agent holds induced redemption values or costs for
    induced: list[str]
    #: value of units bought minus cost of units sold (induced schedules)
    realised_surplus: float
    #: realised surplus plus net cash flow since the start
    surplus: float


@dataclass
class StepReport:
    """What one step did: its number, trades and volume, and every external agent's rejected
    actions (type, arguments, reason) — what `Simulation.act` could not tell at once."""

    step: int
    trades: int
    volume: int
    rejections: dict[int, list[dict[str, Any]]] = field(default_factory=dict)


# --------------------------------------------------------------------------- scenario


logger = logging.getLogger(__name__)

#: a finished run whose stream has at least this many bytes gets its columnar copy as it closes
#: (`Simulation.columnar_copy`); 16 MiB is about 30,000 events, which load from the stream in ~0.1 s
COLUMNAR_COPY_MIN_BYTES = 16 * 2**20

_CHECKED: dict[str, None] = {}  # prompt checks passed (by scenario hash), most recent last
_CHECKED_MAX = 64


def prepare_scenario(
    scenario: ScenarioLike,
    overrides: Sequence[str] | None = None,
    *,
    check_prompts: bool = True,
    source: str | None = None,
    registry: PolicyRegistry | None = None,
) -> ScenarioSpec:
    """A scenario (shipped name, YAML path, parsed spec or raw dict) with ``--set``-style
    ``overrides`` applied and every check ``mesa-llm validate`` makes: schema, references, sizes,
    and the prompt templates compiled and rendered once (``check_prompts=False``: a replay, whose
    templates come from the recording). `ScenarioError` (one line per problem, naming the file —
    ``source`` for a spec or dict — and field) otherwise. A new spec object: the argument is never
    changed."""
    overrides = list(overrides or [])
    if isinstance(scenario, str | Path):
        spec = load_scenario(scenario, overrides=overrides, registry=registry)
        source = str(resolve_scenario_path(scenario))
    else:
        if isinstance(scenario, ScenarioSpec):
            raw = scenario.model_dump(mode="json")
            source, source_dir = source or f"<scenario {scenario.name}>", scenario.source_dir
        elif isinstance(scenario, Mapping):
            raw = json.loads(json.dumps(dict(scenario), default=str))  # a deep, plain copy
            source, source_dir = source or "<scenario dict>", None
        else:
            raise TypeError(f"a scenario is a name, a path, a ScenarioSpec or a dict, not {type(scenario).__name__}")
        for text in overrides:
            try:
                path, value = parse_override(text)
                apply_override(raw, path, value)
            except ValueError as exc:
                raise ScenarioError(source, [str(exc)]) from None
        spec = validate_scenario(raw, source=source, registry=registry)
        spec.source_dir = source_dir
    # what the prompts render from: the scenario but its LLM settings (server, budgets, timeouts)
    data = spec.model_dump(mode="json")
    data["llm"] = {"templates": data["llm"].get("templates")}
    key = json.dumps([data, str(spec.source_dir)], sort_keys=True, default=str)
    if check_prompts and key not in _CHECKED:
        problems = check_prompt_templates(
            spec, lambda small, chat: MarketModel(small, record=False, chat_model=chat, policy_registry=registry)
        )
        if problems:
            raise ScenarioError(source, problems)
        _CHECKED[key] = None
        while len(_CHECKED) > _CHECKED_MAX:
            del _CHECKED[next(iter(_CHECKED))]
    return spec


# --------------------------------------------------------------------------- the simulation


class Simulation:
    """One run of a scenario: build it with `from_scenario`, then step, watch, steer and close it."""

    def __init__(self, model: MarketModel) -> None:
        """Wrap a built model (use `from_scenario`; this is for replays and tests)."""
        self._model = model
        self._closed = False
        self._status: str | None = None  # why it ended early: failed / interrupted
        self._rejections: dict[int, list[dict[str, Any]]] = {}
        self._external = {a.unique_id for a in model.traders if getattr(a.policy, "is_external", False)}
        if self._external:
            model.events.subscribe("action_rejected", self._note_rejection)
        self._async_mode: bool | None = None  # LLM runs are driven either by step() or by astep()

    @classmethod
    def from_scenario(
        cls,
        scenario: ScenarioLike,
        *,
        overrides: Sequence[str] | None = None,
        seed: int | None = None,
        model: str | None = None,
        out: str | Path | None = None,
        record: bool = True,
        steps: int | None = None,
        api_base: str | None = None,
        chat_model: ChatModel | None = None,
        run_name: str | None = None,
        check_invariants: bool | None = None,
        history_steps: int | None = DEFAULT_HISTORY_STEPS,
        resolved_models: dict[str, str | None] | None = None,
        parent: dict[str, Any] | None = None,
        prompt_libraries: dict[str, Any] | None = None,
        policy_registry: PolicyRegistry | None = None,
    ) -> Simulation:
        """Build a run of ``scenario`` (a shipped name, a YAML path, a parsed spec or a dict),
        checked as ``mesa-llm validate`` checks it (`prepare_scenario`).

        ``overrides``: ``PATH=VALUE`` strings as ``--set`` takes them; ``seed`` / ``steps``
        override the scenario's; ``model``: the litellm model of every LLM population (as
        ``--model``); ``api_base``: the caller's own OpenAI-compatible server (it gets the
        provider's key, unlike one a scenario names: `mesa_llm.llm.consent`); ``out``: the folder of
        the recording (default ``recordings``); ``record=False`` writes none (events still reach
        subscribers); ``chat_model`` answers every LLM call in-process (tests, replays);
        ``resolved_models``, ``parent`` and ``prompt_libraries`` (templates from a recording's
        texts, then not checked again) are for replays; ``policy_registry`` names the policies a
        scenario may use (default: the built-in ones and the allowed plugins').
        """
        spec = prepare_scenario(scenario, overrides, check_prompts=prompt_libraries is None, registry=policy_registry)
        built = MarketModel(
            spec, seed=seed, steps=steps, output_dir=out if out is not None else "recordings", record=record,
            run_name=run_name, check_invariants=check_invariants, llm_model=model, chat_model=chat_model,
            resolved_models=resolved_models, parent=parent, history_steps=history_steps, api_base=api_base,
            prompt_libraries=prompt_libraries, policy_registry=policy_registry,
        )  # fmt: skip
        return cls(built)

    # ------------------------------------------------------------------ what it is

    @property
    def mesa_model(self) -> MarketModel:
        """The Mesa model underneath (``mesa_model.datacollector``, ``mesa_model.agents``)."""
        return self._model

    @property
    def scenario(self) -> ScenarioSpec:
        """The resolved scenario this run was built from."""
        return self._model.scenario

    @property
    def seed(self) -> int:
        """The run's seed."""
        return self._model.seed_value

    @property
    def steps(self) -> int:
        """Steps completed."""
        return int(self._model.steps)

    @property
    def max_steps(self) -> int:
        """The run's horizon."""
        return int(self._model.max_steps)

    @property
    def done(self) -> bool:
        """No further step: closed, the horizon reached, or the run stopped (budget, failures)."""
        m = self._model
        return self._closed or not m.running or m.steps >= m.max_steps

    @property
    def stop_reason(self) -> str | None:
        """Why the run stopped before its horizon, if it did."""
        return self._model.stop_reason

    @property
    def status(self) -> str:
        """``running``, or how it ended: ``completed``, ``failed``, ``budget_exceeded``, ``interrupted``."""
        if self._status is not None:
            return self._status
        if self._model.stop_status is not None:
            return self._model.stop_status
        return "completed" if self.done else "running"

    @property
    def recording_path(self) -> Path | None:
        """The JSON-lines recording (None with ``record=False``)."""
        return self._model.recording_path

    @property
    def header(self) -> dict[str, Any] | None:
        """The recording's ``simulation_start`` content (None with ``record=False``)."""
        recorder = self._model.recorder
        return recorder.header if recorder is not None else None

    @property
    def notices(self) -> list[str]:
        """What the run said when it was built (fallback policies, tool modes, ...)."""
        return list(self._model.notices)

    @property
    def warnings(self) -> list[str]:
        """Warnings about the LLM side (e.g. a cost budget that cannot stop the run)."""
        return list(self._model.llm.warnings)

    @property
    def external_agents(self) -> list[int]:
        """Ids of the agents driven through `act` (``policy: external``), in creation order."""
        return [a.unique_id for a in self._model.traders if a.unique_id in self._external]

    def agents(self) -> list[dict[str, Any]]:
        """Every agent: id, name, population, role and policy."""
        return [
            {"agent_id": a.unique_id, "name": a.name, "population": a.population, "role": a.role.value, "policy": a.policy.name}
            for a in self._model.traders
        ]

    def account(self, agent_id: int) -> AccountState:
        """One agent's balances now, in currency units — cheap, for per-step rewards (learning
        agents): cash, holdings, each good's mark (last price, else its reference price), the goods
        it holds induced values or costs for, the surplus those realised (value of units bought
        minus cost of units sold) and its induced surplus (that plus its net cash flow)."""
        try:
            agent = self._model.agent(agent_id)
        except (KeyError, TypeError):
            raise ExternalAgentError(f"no agent {agent_id!r}") from None
        model = self._model
        to_units = model.money.to_units
        account = model.exchange.ledger.account(agent_id)
        realised = to_units(agent.realised_surplus)
        return {
            "cash": to_units(account.cash),
            "holdings": {g: int(q) for g, q in account.holdings.items()},
            "marks": {g: to_units(model.exchange.reference_price(g)) for g in model.exchange.goods},
            "induced": [g for g, pv in agent.private.items() if pv.values or pv.costs],
            "realised_surplus": realised,
            "surplus": to_units(model.agent_surplus(agent)),
        }

    def summary(self) -> RunSummary:
        """The run summary so far (trades, prices against equilibrium, efficiency, fees, LLM use)."""
        return self._model.summary()

    def metrics(self) -> dict[str, Any]:
        """The headline metrics so far (cheap)."""
        return metrics(self._model)

    def state(self) -> SimulationState:
        """A JSON-ready snapshot: step, each agent's role, policy, cash and holdings; per good the
        best resting bid/ask, depth and last price; open sessions; alliances; reputation; metrics."""
        return snapshot(self._model, None if self.status == "running" else self.status)

    # ------------------------------------------------------------------ stepping

    def _check_open(self) -> None:
        if self._closed:
            raise SimulationClosedError("the simulation is closed")
        if self.done:
            raise SimulationClosedError(
                f"the run is over at step {self.steps}" + (f": {self.stop_reason}" if self.stop_reason else "")
            )

    def _mode(self, asynchronous: bool) -> None:
        if not self._model.llm_agents:
            return
        if self._async_mode is None:
            self._async_mode = asynchronous
        elif self._async_mode != asynchronous:
            raise RuntimeError("an LLM run is driven either by step()/run() or by astep()/arun(), not both")

    def step(self) -> StepReport:
        """Run one step and say what it did."""
        self._check_open()
        self._mode(False)
        self._rejections = {}
        try:
            self._model.step()
        except KeyboardInterrupt:
            self._stopped("interrupted", "interrupted by the user")
            raise
        except Exception as exc:
            self._stopped("failed", f"{type(exc).__name__}: {exc}")
            raise
        return self._report()

    async def astep(self) -> StepReport:
        """`step` for an event loop: LLM calls run on the running loop, async subscribers are
        awaited in order before it returns."""
        self._check_open()
        self._mode(True)
        self._rejections = {}
        try:
            await self._model.astep()
        except (KeyboardInterrupt, asyncio.CancelledError):
            self._stopped("interrupted", "interrupted")
            raise
        except Exception as exc:
            self._stopped("failed", f"{type(exc).__name__}: {exc}")
            raise
        await self._model.events.drain()
        return self._report()

    def run(self, steps: int | None = None, progress: bool | Callable[[int], None] = False) -> RunSummary:
        """Run ``steps`` more steps (default: to the horizon, or until the run stops); returns the
        summary. ``progress``: a rich progress bar on stderr (True) or a callback of the step."""
        target = self.max_steps if steps is None else min(self.steps + max(int(steps), 0), self.max_steps)
        bar = _progress_bar(self) if progress is True else None
        callback = progress if callable(progress) else None
        # what building left alive (litellm's modules, the agents) needs no rescans by the collector
        gc.freeze()
        try:
            with bar if bar is not None else contextlib.nullcontext(), young_passes_spaced():
                while not self.done and self.steps < target:
                    self.step()
                    if bar is not None:
                        bar.advance()
                    if callback is not None:
                        callback(self.steps)
        finally:
            gc.unfreeze()
        return self.summary()

    async def arun(self, steps: int | None = None) -> RunSummary:
        """`run` for an event loop (what building left alive frozen for the collector, as in `run`)."""
        target = self.max_steps if steps is None else min(self.steps + max(int(steps), 0), self.max_steps)
        gc.freeze()
        try:
            with young_passes_spaced():  # the collector's young passes spaced over the steps, as in `run`
                while not self.done and self.steps < target:
                    await self.astep()
        finally:
            gc.unfreeze()
        return self.summary()

    def _report(self) -> StepReport:
        tallies = self._model.tallies
        return StepReport(self.steps, tallies.step_trades, tallies.step_volume, dict(self._rejections))

    def _note_rejection(self, event: Any) -> None:
        if event.agent_id in self._external:
            self._rejections.setdefault(event.agent_id, []).append(dict(event.content))

    def _stopped(self, status: str, reason: str) -> None:
        self._status = status
        if self._model.stop_reason is None:
            self._model.stop_reason = reason

    # ------------------------------------------------------------------ steering

    def schedule(self, event: Mapping[str, Any] | BaseModel, at_step: int | None = None) -> dict[str, Any]:
        """Schedule a timeline event — a shock, a rule or parameter change, a stress event, a plugin
        event type — for ``at_step`` (default: the next step), validated as the scenario's own
        timeline is. Recorded (``event_scheduled``) so a replay schedules it again. Returns it."""
        self._check_open()
        data = event.model_dump(mode="json") if isinstance(event, BaseModel) else json.loads(json.dumps(dict(event), default=str))
        earliest = self._model.next_open_step()
        data["at_step"] = earliest if at_step is None else int(at_step)
        if data["at_step"] < earliest:
            raise ValueError(f"at_step {data['at_step']}: the earliest step an event can still act at is {earliest}")
        if data["at_step"] > self.max_steps:
            raise ValueError(f"at_step {data['at_step']}: after the run's last step ({self.max_steps})")
        raw = self._model.scenario.model_dump(mode="json")
        raw["timeline"] = [data]
        try:
            parsed = validate_scenario(raw, source="scheduled event").timeline[0]
        except ScenarioError as exc:
            raise ValueError(str(exc).replace("timeline.0.", "").replace("timeline.0", "event")) from None
        self._model.schedule(parsed)
        return parsed.model_dump(mode="json")

    def subscribe(self, event_type: str, callback: Callback) -> Subscription:
        """Call ``callback(event)`` for every event of ``event_type`` (``"*"``: all) as it happens —
        the same `SimulationEvent` the recorder writes (``event.to_dict()`` for JSON). Sync or async
        callbacks; one that raises is reported once and unsubscribed, never breaking the step."""
        return self._model.events.subscribe(event_type, callback)

    def unsubscribe(self, handle: Subscription | Callback) -> bool:
        """Stop a subscription (its handle, or every subscription of a callback)."""
        return self._model.events.unsubscribe(handle)

    @property
    def subscriber_errors(self) -> list[str]:
        """One line per subscriber that raised and was unsubscribed."""
        return list(self._model.events.errors)

    # ------------------------------------------------------------------ external agents

    def _external_policy(self, agent_id: Any) -> ExternalPolicy:
        if isinstance(agent_id, bool) or not isinstance(agent_id, int):
            raise ExternalAgentError(f"agent id {agent_id!r}: expected an integer")
        try:
            agent = self._model.agent(agent_id)
        except KeyError:
            raise ExternalAgentError(f"no agent {agent_id} (agents are 0..{len(self._model.traders) - 1})") from None
        if agent_id not in self._external or not isinstance(agent.policy, ExternalPolicy):
            raise ExternalAgentError(
                f"agent {agent_id} (population {agent.population!r}, policy {agent.policy.name!r}) is not driven "
                "from outside: only agents of a population with policy: external take actions through act()"
            )
        return agent.policy

    def act(self, agent_id: int, actions: Sequence[Mapping[str, Any] | ActionBase] | Mapping[str, Any] | ActionBase) -> list[dict[str, Any]]:
        """Give an external agent its actions for the coming step (``{"type": "place_order", "good":
        ..., "side": ..., "price": ..., "quantity": ...}`` dicts or action models). Returns the ones
        refused at once (type and reason: not an action, bad arguments, too many); the rest are
        validated against the world's rules when the step resolves them (see `StepReport`). Given
        nothing, the agent waits."""
        self._check_open()
        policy = self._external_policy(agent_id)
        items = [actions] if isinstance(actions, Mapping | ActionBase) else list(actions)
        return policy.submit(items)

    def observe(self, agent_id: int) -> Observation:
        """The observation ``agent_id`` decides the coming step on (``.to_dict()`` for JSON): the
        step's first half (scheduled events, messages) runs now, so it is exactly what the agent
        will be shown."""
        self._check_open()
        try:
            self._model.agent(agent_id)
        except (KeyError, TypeError):
            raise ExternalAgentError(f"no agent {agent_id!r}") from None
        for agent, observation in self._model.prepare_step():
            if agent.unique_id == agent_id:
                return observation
        raise ExternalAgentError(f"agent {agent_id} takes no part in step {self.steps + 1} (withdrawn by a liquidity shock)")

    # ------------------------------------------------------------------ ending

    def close(self, status: str | None = None) -> None:
        """End the run: ``simulation_end`` with ``status`` (default: ``completed``, or how it
        stopped — failed, budget_exceeded, interrupted) and the recording closed. Idempotent."""
        if self._closed:
            return
        self._closed = True
        final = status or self._status or self._model.stop_status or "completed"
        if status is None and self._status is None and self._model.running and self._model.steps < self._model.max_steps:
            final = self._model.stop_status or "stopped"
        self._model.finish(final)
        self._write_columnar_copy()

    #: the columnar copy (``REC.parquet/``, `mesa_llm.analysis.columnar`) of a finished run, written
    #: as it closes: ``None`` (default) when its stream is at least `COLUMNAR_COPY_MIN_BYTES` (a
    #: smaller stream loads as fast as a copy would), ``True`` always, ``False`` never
    columnar_copy: bool | None = None

    def _write_columnar_copy(self) -> None:
        recorder, path = self._model.recorder, self.recording_path
        if self.columnar_copy is False or recorder is None or path is None or not recorder.ended:
            return
        if self.columnar_copy is None and path.stat().st_size < COLUMNAR_COPY_MIN_BYTES:
            return
        from mesa_llm.analysis.columnar import write_copy  # pyarrow: only for a copy to write

        try:
            write_copy(path)
        except Exception as exc:  # the stream is the recording whatever happens to its copy
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            logger.warning("no columnar copy of %s: %s", path, reason)

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt | asyncio.CancelledError):
            self._stopped("interrupted", "interrupted by the user")
        elif exc_type is not None:
            self._stopped("failed", f"{exc_type.__name__}: {exc}")
        self.close()

    def __repr__(self) -> str:
        return f"Simulation({self.scenario.name!r}, seed={self.seed}, step {self.steps}/{self.max_steps}, {self.status})"


def _progress_bar(sim: Simulation) -> Any:
    """A transient rich progress bar on stderr (hidden when stderr is not a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    progress = Progress(
        TextColumn(f"{sim.scenario.name} seed {sim.seed}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
        TimeElapsedColumn(), console=console, transient=True, disable=not console.is_terminal,
    )  # fmt: skip

    class _Bar:
        def __enter__(self) -> _Bar:
            progress.__enter__()
            self.task = progress.add_task("run", total=sim.max_steps, completed=sim.steps)
            return self

        def __exit__(self, *exc: Any) -> None:
            progress.__exit__(*exc)

        def advance(self) -> None:
            progress.update(self.task, completed=sim.steps)

    return _Bar()

