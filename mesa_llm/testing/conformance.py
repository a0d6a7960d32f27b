"""The conformance checks of :mod:`mesa_llm.testing`: ``check_policy`` and ``check_scenario``.

Both build real runs of small scenarios (no LLM: every LLM population runs its rule-based
fallback, as without a model), so what they check is what a run does.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from mesa_llm.actions import ActionBase, ActionRegistry, ActionValidationError, Decision
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.policies import DecisionPolicy, PolicyRegistry, default_policy_registry
from mesa_llm.scenario import (
    PopulationSpec,
    ScenarioError,
    ScenarioSpec,
    load_scenario,
    shipped_scenarios,
    validate_scenario,
)
from mesa_llm.simulation import Simulation, prepare_scenario

#: steps check_policy runs by default (each run twice)
POLICY_STEPS = 5
#: the shipped scenario a policy no shipped scenario uses is tried in (its traders switched to it)
DEFAULT_SCENARIO = "double_auction"
#: problems named in one AssertionError (the rest are counted)
_MAX_SHOWN = 3


def _fail(subject: str, problems: list[str]) -> AssertionError:
    shown = "; ".join(problems[:_MAX_SHOWN])
    more = f" (and {len(problems) - _MAX_SHOWN} more problems)" if len(problems) > _MAX_SHOWN else ""
    return AssertionError(f"{subject}: {shown}{more}")


def _no_llm(spec: ScenarioSpec) -> dict[str, str | None]:
    """Every LLM population without a model: it runs its rule-based fallback (offline, seeded)."""
    return {p.label: None for p in spec.populations if p.wants_llm}


# --------------------------------------------------------------------------- check_policy


def _state(value: Any) -> Any:
    """A deep, plain copy of an observation's content (dataclasses as dicts, private caches left out)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _state(getattr(value, f.name)) for f in dataclasses.fields(value) if not f.name.startswith("_")}
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, Mapping):
        return {k: _state(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_state(v) for v in value]
    return copy.deepcopy(value)


def _changed_path(before: Any, after: Any, path: str = "") -> str:
    """The first field path where two `_state` values differ."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in list(before) + [k for k in after if k not in before]:
            if key not in before or key not in after:
                return f"{path}{key}"
            if before[key] != after[key]:
                return _changed_path(before[key], after[key], f"{path}{key}.")
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for i, (a, b) in enumerate(zip(before, after, strict=True)):
            if a != b:
                return _changed_path(a, b, f"{path}{i}.")
    return path.rstrip(".") or "(the observation)"


_ACTIONS = ActionRegistry()


class _Rejected(Exception):
    """A decision that failed the check: raised in place of returning it to the world."""


def _decision_problems(decision: Any, observation: Observation, where: str, actions: ActionRegistry = _ACTIONS) -> list[str]:
    """Why ``decision`` is not a schema-valid Decision of actions the observation offers (``actions``:
    the run's, a plugin mechanism's own included)."""
    if not isinstance(decision, Decision):
        return [f"{where}: decide() returned {type(decision).__name__}, not a Decision"]
    problems = []
    if decision.plan is not None and not isinstance(decision.plan, str):
        problems.append(f"{where}: the plan is {type(decision.plan).__name__}, not text")
    for action in decision.actions:
        if not isinstance(action, ActionBase):
            problems.append(f"{where}: {type(action).__name__} is not an action (mesa_llm.actions)")
            continue
        tool = action.tool_name
        if tool not in actions.names() or actions.action_class(tool) is not type(action):
            problems.append(f"{where}: {type(action).__name__} is not one of mesa_llm.actions' actions (or the run's mechanisms')")
            continue
        if tool not in observation.available_actions:
            problems.append(
                f"{where}: {tool} is not one of the observation's available_actions "
                f"({', '.join(observation.available_actions) or 'none'})"
            )
        # the arguments as an LLM would send them: JSON the tool's schema admits, parsed back
        arguments = action.arguments()
        try:
            parsed = actions.parse(tool, json.loads(json.dumps(arguments, allow_nan=False)))
        except (TypeError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, ActionValidationError) else f"not JSON ({exc})"
            problems.append(f"{where}: {tool} arguments {arguments!r:.200} are invalid: {reason}")
            continue
        schema = type(action).tool_schema()["function"]["parameters"]
        unknown = sorted(set(arguments) - set(schema["properties"]))
        if unknown or parsed.arguments() != arguments:
            problems.append(f"{where}: {tool} arguments {arguments!r:.200} do not match its schema")
    return problems


def _decision_record(decision: Any) -> Any:
    if not isinstance(decision, Decision):
        return repr(decision)
    return (
        [a.model_dump(mode="json") if isinstance(a, BaseModel) else repr(a) for a in decision.actions],
        decision.plan,
    )


def _uses(population: PopulationSpec, name: str) -> bool:
    """Whether agents of ``population`` run policy ``name`` in a run without LLM."""
    return (population.fallback_policy if population.wants_llm else population.policy_name) == name


def _scenario_for(
    cls: type[DecisionPolicy],
    scenario: str | Path | ScenarioSpec | None,
    params: Mapping[str, Any] | None,
    registry: PolicyRegistry,
) -> ScenarioSpec:
    """The scenario to check ``cls`` in: the one given (it must use the policy), else the shipped
    scenario with the fewest agents that uses it, else `DEFAULT_SCENARIO` with every population
    switched to it; ``params`` replace the policy's parameters wherever it is used."""
    name = cls.name
    if scenario is not None:
        spec = scenario if isinstance(scenario, ScenarioSpec) else load_scenario(scenario, registry=registry)
        if not any(_uses(p, name) for p in spec.populations):
            raise AssertionError(f"check_policy({cls.__name__}): scenario {spec.name!r} has no population using policy {name!r}")
    else:
        candidates = []
        for shipped in shipped_scenarios().values():
            loaded = load_scenario(shipped, registry=registry)
            if any(_uses(p, name) for p in loaded.populations):
                candidates.append((sum(p.count for p in loaded.populations), loaded.name, loaded))
        if candidates:
            spec = min(candidates, key=lambda c: c[:2])[2]
        else:
            base = load_scenario(DEFAULT_SCENARIO, registry=registry)
            switched = [p.model_copy(update={"policy": name, "params": dict(params or {})}) for p in base.populations]
            spec = base.model_copy(update={"populations": switched})
    if params is not None:
        spec = spec.model_copy(
            update={
                "populations": [
                    p.model_copy(update={"fallback": p.fallback.model_copy(update={"params": dict(params)})})
                    if p.wants_llm and p.fallback is not None and _uses(p, name)
                    else p.model_copy(update={"params": dict(params)}) if _uses(p, name) else p
                    for p in spec.populations
                ]
            }
        )
    # validated again: the switched policy's parameters and every reference
    source_dir = spec.source_dir
    checked = validate_scenario(spec.model_dump(mode="json"), source=f"{spec.name} (for {name})", registry=registry)
    checked.source_dir = source_dir
    return checked


def _policy_run(
    cls: type[DecisionPolicy], spec: ScenarioSpec, registry: PolicyRegistry, steps: int, seed: int | None
) -> tuple[list[Any], list[str]]:
    """Run ``spec`` with every decision of a ``cls`` agent checked: (decision log, problems)."""
    sim = Simulation.from_scenario(
        spec, seed=seed, steps=steps, record=False, policy_registry=registry, resolved_models=_no_llm(spec)
    )
    model = sim.mesa_model
    log: list[Any] = []
    problems: list[str] = []
    checked = [a for a in model.traders if type(a.policy) is cls]
    if not checked:
        sim.close()
        raise AssertionError(f"check_policy({cls.__name__}): no agent of scenario {spec.name!r} runs policy {cls.name!r}")

    def wrap(original: Callable[[Observation, np.random.Generator], Decision]) -> Callable[..., Decision]:
        def decide(observation: Observation, rng: np.random.Generator) -> Decision:
            where = f"step {observation.step}, agent {observation.agent_id} ({observation.role})"
            before = _state(observation)
            try:
                decision = original(observation, rng)
            except Exception as exc:
                problems.append(f"{where}: decide() raised {type(exc).__name__}: {exc}")
                raise
            after = _state(observation)
            if after != before:
                problems.append(
                    f"{where}: decide() changed its observation ({_changed_path(before, after)}); "
                    "observations are read-only (copy what you keep)"
                )
            found = _decision_problems(decision, observation, where, model.llm.action_registry)
            log.append((observation.step, observation.agent_id, _decision_record(decision)))
            if found:
                problems.extend(found)
                # what failed the check never reaches the world (the model records an agent error)
                raise _Rejected(found[0])
            return decision

        return decide

    for agent in checked:
        vars(agent.policy)["decide"] = wrap(agent.policy.decide)  # this run's instance only
    try:
        sim.run()
    except Exception as exc:  # the world failed on something the policy did
        problems.append(f"the run failed at step {sim.steps}: {type(exc).__name__}: {exc}")
    finally:
        sim.close()
    return log, problems


def check_policy(
    cls: type[DecisionPolicy],
    *,
    scenario: str | Path | ScenarioSpec | None = None,
    steps: int = POLICY_STEPS,
    seed: int | None = None,
    params: Mapping[str, Any] | None = None,
) -> None:
    """Check a rule-based policy class in ``steps`` steps of a real run, run twice with one seed.

    Every decision must be a ``Decision`` whose actions are ``mesa_llm.actions`` actions with
    arguments their JSON schema admits, each one of the observation's ``available_actions``; the
    two runs must decide exactly the same (every random draw from the ``rng`` passed to ``decide``);
    ``decide`` must leave its observation as it was. ``scenario`` (a name, a path or a spec) must
    have a population using the policy; without one, the smallest shipped scenario using it is
    taken, else ``double_auction`` with its populations switched to it (``params``: the policy's
    parameters there). The class need not be installed: it is registered for the check.
    Raises AssertionError naming the first problems (step, agent, what).
    """
    if not (isinstance(cls, type) and issubclass(cls, DecisionPolicy)):
        raise TypeError(f"check_policy expects a DecisionPolicy subclass, got {cls!r}")
    if cls.is_llm:
        raise TypeError(f"check_policy checks rule-based policies; {cls.__name__} talks to an LLM (is_llm)")
    subject = f"check_policy({cls.__name__})"
    registry = default_policy_registry()
    registry.register(cls)
    try:
        spec = _scenario_for(cls, scenario, params, registry)
    except ScenarioError as exc:
        raise AssertionError(f"{subject}: {exc}") from None
    runs = min(steps, spec.steps)
    first, problems = _policy_run(cls, spec, registry, runs, seed)
    if problems:
        raise _fail(subject, problems)
    if not first:
        raise AssertionError(f"{subject}: the policy never decided in {runs} steps of {spec.name!r}")
    second, problems = _policy_run(cls, spec, registry, runs, seed)
    if problems:
        raise _fail(subject, problems)
    for a, b in zip(first, second, strict=False):
        if a != b:
            raise AssertionError(
                f"{subject}: not reproducible: at step {a[0]}, agent {a[1]} decided {a[2]!r:.200} in one run "
                f"and {b[2]!r:.200} in another with the same seed; draw every random number from the rng "
                "passed to decide() (not random, numpy.random or the clock)"
            )
    if len(first) != len(second):
        raise AssertionError(f"{subject}: not reproducible: {len(first)} decisions in one run, {len(second)} in another")


# --------------------------------------------------------------------------- check_scenario


def _recorded_run(spec: ScenarioSpec, steps: int, folder: Path) -> list[dict[str, Any]]:
    with Simulation.from_scenario(spec, steps=steps, out=folder, run_name="check", resolved_models=_no_llm(spec)) as sim:
        sim.run()
    assert sim.recording_path is not None
    return [json.loads(line) for line in Path(sim.recording_path).read_text(encoding="utf-8").splitlines() if line]


def _comparable(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "timestamp"}


def check_scenario(path_or_name: str | Path, *, steps: int = 3) -> None:
    """Check a scenario (a file, a shipped or plugin name): it validates as ``mesa-llm validate``
    does (schema, policies, templates); ``steps`` steps run without failure (no agent error) and,
    run twice with its seed, give identical recordings apart from timestamps (LLM populations run
    their rule-based fallback). Raises AssertionError naming the first problem."""
    subject = f"check_scenario({str(path_or_name)!r})"
    try:
        spec = prepare_scenario(path_or_name)  # as mesa-llm validate checks it, prompt templates too
    except ScenarioError as exc:
        raise AssertionError(f"{subject}: does not validate: {exc}") from None
    runs = min(steps, spec.steps)
    with tempfile.TemporaryDirectory(prefix="mesa_llm_check_") as tmp:
        first = _recorded_run(spec, runs, Path(tmp) / "a")
        second = _recorded_run(spec, runs, Path(tmp) / "b")
    end = first[-1]["content"] if first and first[-1]["event_type"] == "simulation_end" else {}
    if end.get("status") != "completed":
        raise AssertionError(f"{subject}: the run did not complete (status {end.get('status')!r})")
    errors = [e for e in first if e["event_type"] == "agent_error"]
    if errors:
        e = errors[0]
        raise AssertionError(
            f"{subject}: agent {e['agent_id']} failed at step {e['step']}: {e['content'].get('error')}"
            + (f" (and {len(errors) - 1} more agent errors)" if len(errors) > 1 else "")
        )
    for i, (a, b) in enumerate(zip(first, second, strict=False)):
        if _comparable(a) != _comparable(b):
            keys = sorted(k for k in set(a["content"]) | set(b["content"]) if a["content"].get(k) != b["content"].get(k))
            raise AssertionError(
                f"{subject}: two runs with seed {spec.seed} differ at event {i} (step {a.get('step')}, "
                f"{a.get('event_type')}, agent {a.get('agent_id')}) in {', '.join(keys) or 'its header'}; "
                "every random draw must come from the model's seeded generator"
            )
    if len(first) != len(second):
        raise AssertionError(f"{subject}: two runs with seed {spec.seed} recorded {len(first)} and {len(second)} events")


__all__ = ["check_policy", "check_scenario"]
