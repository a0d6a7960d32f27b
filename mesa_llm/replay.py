"""Replays and forks of recorded runs.

A replay rebuilds the run from its recording's header (the fully resolved scenario, the seed, the
models of the LLM populations), answers every LLM call from the recorded responses (no network,
no key) and compares what the world does, step by step, with what was recorded. A fork replays
up to a step and then goes on live, with another model for every LLM agent or for some of them,
or another policy for some agents, into a new recording whose header names its parent.

Recordings are shared, so a recording is data: nothing in it picks a file to read or a host to
call. Prompt templates come from the texts the header holds, each checked against its recorded
SHA-256, or from the shipped template with that hash (never from the recorded ``source_dir`` or an
override path); a recorded ``llm.api_base`` (or ``llm.cache`` folder) is shown, never used: a fork
calls the server given with ``api_base`` (``--api-base``), else each model's provider. The counts a
header claims are checked against what it lists before anything is built.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesa_llm.agents.prompts import MAX_TEMPLATE_BYTES, PromptLibrary
from mesa_llm.llm import ChatModel, ChatRequest, ChatResponse
from mesa_llm.llm.recorded_chat import Divergence, ReplayChatModel
from mesa_llm.llm.secrets import public_url
from mesa_llm.plugins import recorded_plugin_problems
from mesa_llm.recording import LoadedRecording, RecordingError, load_events
from mesa_llm.resources import prompts_dir
from mesa_llm.scenario import ScenarioError, ScenarioSpec, validate_scenario
from mesa_llm.simulation import Simulation

#: content fields that legitimately differ between a run and its replay
_VOLATILE = {"latency_s", "attempt_latencies_s", "cached"}
#: events not compared step by step (the header names the parent; usage totals differ)
_SKIPPED = {"simulation_start", "simulation_end", "llm_usage", "run_stopped", "event_scheduled"}
#: what a run took from outside, submitted again by a replay: events scheduled while it ran
#: (replayed after the step they were recorded in) and external agents' actions (before their step)
_STEERING = ("event_scheduled", "external_actions")
#: subfolder of ``output_dir`` that replays and forks are written to: not next to the runs, so
#: ``load_recordings(output_dir)`` does not count them as runs (see its ``include_forks``)
REPLAYS_DIR = "replays"
#: events that move no cash and no goods: a run cut during a step whose recorded part holds only
#: these closed with the balances of its last complete step
_BALANCE_NEUTRAL = {
    "step_start", "observation", "plan", "llm_call", "action", "action_rejected", "message",
    "order", "order_cancelled", "order_expired", "offer", "agent_state", "run_stopped",
    "llm_usage", "simulation_end", "event_scheduled", "external_actions",
}


class ReplayError(ValueError):
    """A recording that cannot be replayed (no header, unknown scenario fields, ...)."""


#: a template name as a recording may give it: relative, no ``..``, no odd characters
_TEMPLATE_NAME = re.compile(r"^(?!.*(?:^|/)\.{1,2}(?:/|$))[A-Za-z0-9_.-]{1,100}(?:/[A-Za-z0-9_.-]{1,100}){0,7}$")


def _limit(spec_field: str) -> int:
    """The largest value ``ScenarioSpec`` accepts in an integer field (its ``le`` bound)."""
    for bound in ScenarioSpec.model_fields[spec_field].metadata:
        le = getattr(bound, "le", None)
        if le is not None:
            return int(le)
    raise AssertionError(f"ScenarioSpec.{spec_field} has no upper bound")


@dataclass
class RecordedPrompts:
    """The prompt templates of a recording, ready to render: one library per LLM population built
    from the recording's own texts (or the shipped templates with the recorded hashes), and the
    templates it cannot reproduce (``population/name``)."""

    libraries: dict[str, PromptLibrary]
    missing: list[str]


def _shipped_text(name: str) -> str | None:
    """The shipped template ``name`` (inside the packaged ``prompts/`` only), or None."""
    root = prompts_dir().resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _some(names: list[str], shown: int = 8) -> str:
    """The first ``shown`` names, and how many more (a hostile header can list thousands)."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _hashes_to(text: Any, digest: str) -> bool:
    """Whether ``text`` is a template's source of SHA-256 ``digest`` (and no larger than a file may be)."""
    return (
        isinstance(text, str)
        and len(text) <= MAX_TEMPLATE_BYTES
        and hashlib.sha256(text.encode("utf-8")).hexdigest() == digest
    )


def recorded_prompts(header: Mapping[str, Any], spec: ScenarioSpec) -> RecordedPrompts:
    """Each LLM population's templates as the recording says they were: the header's text of each
    recorded template when its SHA-256 is the recorded one, else the shipped template of that name
    when its hash is, else missing (it then renders from the shipped one, if any). No other file
    is read: not the recorded ``source_dir``, not an override path."""
    llm = _mapping(header.get("llm"))
    hashes_by_pop = _mapping(llm.get("prompts"))
    texts = _mapping(llm.get("prompt_texts"))
    libraries: dict[str, PromptLibrary] = {}
    missing: list[str] = []
    agents = header.get("agents")
    # populations whose agents did run the LLM loop (without a model they ran their rule-based
    # fallback, rendered no prompt, and a replay rebuilds them the same way)
    ran_llm = {a.get("population") for a in agents if isinstance(a, dict) and a.get("policy") == "llm"} if isinstance(agents, list) else None
    for pop in spec.populations:
        if not pop.wants_llm or pop.count == 0 or (ran_llm is not None and pop.label not in ran_llm):
            continue
        hashes = hashes_by_pop.get(pop.label)
        if not isinstance(hashes, dict):
            hashes = {}
            # no record of this population's templates: only overrides make that matter
            missing.extend(f"{pop.label}/{name}" for name in {**spec.llm.templates, **pop.templates})
        found: dict[str, str] = {}
        for name, digest in hashes.items():
            if not isinstance(name, str) or not _TEMPLATE_NAME.match(name) or not isinstance(digest, str):
                missing.append(f"{pop.label}/{str(name)[:100]!r}")
                continue
            text = next((t for t in (texts.get(digest), _shipped_text(name)) if _hashes_to(t, digest)), None)
            if text is None:
                missing.append(f"{pop.label}/{name}")
            else:
                found[name] = text
        libraries[pop.label] = PromptLibrary(texts=found)
    return RecordedPrompts(libraries, missing)


def _check_counts(source: Path, loaded: LoadedRecording, spec: ScenarioSpec, horizon: int) -> None:
    """Refuse (ReplayError, one line) a recording whose claims it cannot back, before anything is
    built: every agent the scenario has is listed in the header, the horizon is one a scenario may
    have, and every step up to the last complete one is recorded (a small file must not make the
    replay run a million steps it does not hold)."""
    header = loaded.header or {}
    claimed = sum(p.count for p in spec.populations)
    agents = header.get("agents")
    listed = len(agents) if isinstance(agents, list) else 0
    if claimed != listed:
        raise ReplayError(
            f"{source}: the recorded scenario has {claimed:,} agents but the header lists {listed:,}: "
            "not a recording of that scenario (nothing was built)"
        )
    most = _limit("steps")
    if not 1 <= horizon <= most:
        raise ReplayError(f"{source}: {horizon:,} steps: a run has 1 to {most:,} steps (nothing was built)")
    ended = {e["step"] for e in loaded.events if e["event_type"] == "step_end"}
    if sum(1 for step in ended if 1 <= step <= loaded.complete_steps) < loaded.complete_steps:
        first = next(step for step in range(1, loaded.complete_steps + 1) if step not in ended)
        raise ReplayError(
            f"{source}: step {first} has no step_end, yet the recording goes on to step "
            f"{loaded.complete_steps:,}: its steps have gaps (nothing was built)"
        )


@dataclass
class ReplayResult:
    """What a replay or fork did."""

    source: Path
    #: the Mesa model of the replay (``simulation.mesa_model``)
    model: Any
    steps: int
    replayed_calls: int
    live_calls: int
    divergence: Divergence | None
    mismatched_requests: int
    final_state_matches: bool | None
    fork_step: int | None = None
    notes: list[str] = field(default_factory=list)
    failed_live_calls: int = 0
    #: the replay wrote to a temporary folder removed afterwards (``verify`` without an output folder)
    discarded: bool = False

    @property
    def recording(self) -> Path | None:
        """The new recording written by the replay or fork (None when nothing was kept)."""
        return None if self.discarded else self.model.recording_path

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the CLI's ``--json``)."""
        return {
            "source": str(self.source),
            "recording": str(self.recording) if self.recording else None,
            "steps": self.steps,
            "replayed_llm_calls": self.replayed_calls,
            "live_llm_calls": self.live_calls,
            "failed_live_llm_calls": self.failed_live_calls,
            "divergence": str(self.divergence) if self.divergence else None,
            "mismatched_requests": self.mismatched_requests,
            "final_state_matches": self.final_state_matches,
            "fork_step": self.fork_step,
            "notes": self.notes,
        }


class _ForkChatModel:
    """Replays recorded answers up to the fork step, then asks live models."""

    def __init__(
        self,
        replay: ReplayChatModel,
        fork_step: int | None,
        step: Callable[[], int],
        live: Callable[[int | None, str], ChatModel],
    ) -> None:
        self.name = replay.name
        self.replay = replay
        self.fork_step = fork_step
        self.step = step
        self.live = live
        self.live_calls = 0
        self.failed_live_calls = 0

    def declared_tool_mode(self, model: str) -> str:
        """The recorded decision: a replay never probes (a fork keeps it for its new models too)."""
        return self.replay.declared_tool_mode(model)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        if self.fork_step is None or self.step() <= self.fork_step:
            return await self.replay.complete(request)
        self.live_calls += 1
        try:
            return await self.live(request.agent_id, request.model).complete(request)
        except Exception:
            # counted so that a fork whose live part failed says so (the run itself goes on)
            self.failed_live_calls += 1
            raise


def _normalise(event: Mapping[str, Any]) -> tuple[Any, ...]:
    content = event.get("content") or {}
    if isinstance(content, dict) and _VOLATILE & content.keys():
        content = {k: v for k, v in content.items() if k not in _VOLATILE}
    return (event.get("event_type"), event.get("agent_id"), content)


def _by_step(events: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """The compared events of each step. Balances recorded after a step's ``step_end`` are the
    closing balances of a run cut between steps (Ctrl-C): compared at the cut, not as the step's."""
    out: dict[int, list[dict[str, Any]]] = {}
    ended: set[int] = set()
    for event in events:
        kind = event.get("event_type")
        step = int(event.get("step", 0))
        if kind in _SKIPPED or (kind == "agent_state" and step in ended):
            continue
        if kind == "step_end":
            ended.add(step)
        out.setdefault(step, []).append(event)
    return out


def _first_difference(
    step: int, recorded: list[dict[str, Any]], replayed: list[dict[str, Any]]
) -> Divergence | None:
    for i in range(max(len(recorded), len(replayed))):
        if i >= len(recorded):
            extra = replayed[i]
            return Divergence(
                step,
                extra.get("agent_id"),
                str(extra.get("event_type")),
                None,
                "the replay produced an event the recording does not have",
            )
        if i >= len(replayed):
            missing = recorded[i]
            return Divergence(
                step,
                missing.get("agent_id"),
                str(missing.get("event_type")),
                missing.get("event_id"),
                "the recording has an event the replay did not produce",
            )
        a, b = _normalise(recorded[i]), _normalise(replayed[i])
        if isinstance(a[2], dict) and isinstance(b[2], dict) and b[2].keys() - a[2].keys():
            # fields added to an event type since the recording was made (the recording contract
            # lets versions add fields) are not a divergence; a field the recording has still is
            b = (b[0], b[1], {k: v for k, v in b[2].items() if k in a[2]})
        if a != b:
            event = recorded[i]
            detail = "content differs"
            if a[0] != b[0] or a[1] != b[1]:
                detail = f"the replay produced {b[0]} (agent {b[1]}) instead"
            else:
                keys = sorted(k for k in set(a[2]) | set(b[2]) if a[2].get(k) != b[2].get(k))
                detail = f"content differs in {', '.join(keys)}: recorded {_short(a[2], keys)}, replayed {_short(b[2], keys)}"
            return Divergence(
                step,
                event.get("agent_id"),
                str(event.get("event_type")),
                event.get("event_id"),
                detail,
            )
    return None


def _short(content: Mapping[str, Any], keys: list[str]) -> str:
    text = repr({k: content.get(k) for k in keys[:3]})
    return text if len(text) <= 200 else text[:199] + "…"


def _final_states(events: list[dict[str, Any]], upto: int | None = None) -> dict[Any, tuple[Any, Any]]:
    """Each agent's last recorded cash and holdings (at or before step ``upto`` when given)."""
    states: dict[Any, tuple[Any, Any]] = {}
    for event in events:
        if event.get("event_type") == "agent_state" and (upto is None or int(event.get("step") or 0) <= upto):
            content = event["content"]
            states[event.get("agent_id")] = (content.get("cash"), content.get("holdings"))
    return states


def _states_at_cut(events: list[dict[str, Any]], cut: int) -> tuple[dict[Any, tuple[Any, Any]] | None, str | None]:
    """The recorded balances at the end of step ``cut`` (the last complete step), to set against
    the replay's there, or None and why they cannot be known. A run interrupted (Ctrl-C) or failed
    during step ``cut + 1`` closed with its balances as they stood: those of step ``cut`` when the
    recorded part of that step moved no money or goods, else a mid-step state no replay reaches."""
    later = [e for e in events if int(e.get("step") or 0) > cut]
    if any(e.get("event_type") == "agent_state" for e in later):
        moved = sorted({str(e.get("event_type")) for e in later} - _BALANCE_NEUTRAL)
        if moved:
            return None, (
                f"the run was cut during step {cut + 1} after it recorded {', '.join(moved[:4])} events: "
                f"its closing balances are not those of a step, so the {cut} complete steps were "
                "compared event by event and the balances not compared"
            )
        return _final_states(events), None
    states = _final_states(events, cut)
    if not states:
        return None, (
            f"the recording holds no balances (agent_state) up to step {cut} (a run killed before it "
            "closed): the steps were compared event by event and the balances not compared"
        )
    return states, None


def load_for_replay(path: str | Path) -> LoadedRecording:
    """Load a recording and check it carries what a replay needs."""
    loaded = load_events(path)
    header = loaded.header
    if not header or "scenario" not in header or "spec" not in header["scenario"]:
        raise ReplayError(f"{path}: no simulation_start header with the scenario: cannot replay")
    return loaded


def replay(
    path: str | Path,
    *,
    verify: bool = False,
    until_step: int | None = None,
    then_model: str | None = None,
    agent_models: Mapping[int, str] | None = None,
    agent_policies: Mapping[int, tuple[str, dict[str, Any]]] | None = None,
    live_chat_model: Callable[[int | None, str], ChatModel] | None = None,
    steps: int | None = None,
    output_dir: str | Path | None = None,
    api_base: str | None = None,
    record: bool = True,
) -> ReplayResult:
    """Replay a recording (``until_step`` None) or fork it after ``until_step``.

    A fork continues live after ``until_step``: every LLM agent with ``then_model`` (when given),
    agents in ``agent_models`` with their model, the rest with their recorded model; agents in
    ``agent_policies`` switch to that rule-based policy (name, params). ``live_chat_model(agent_id,
    model)`` supplies the live chat models (tests inject doubles); by default litellm is used.
    With ``verify`` the replay stops at the first divergence from the recording.

    The new recording goes to ``output_dir/replays/`` (`REPLAYS_DIR`), its header's ``parent``
    naming the source, so that the runs of ``output_dir`` stay the runs. Without ``output_dir``
    a ``verify`` keeps nothing (it replays into a temporary folder, removed afterwards) and any
    other replay or fork writes under ``recordings/``.

    A recording cut short (Ctrl-C, a failure, ``kill -9``) replays to its last complete step;
    the balances are compared there, the replay closing with them as a cut run does.
    """
    source = Path(path)
    scratch: Path | None = None
    if output_dir is None:
        # a check keeps nothing: never a copy of the run under the current folder
        scratch = Path(tempfile.mkdtemp(prefix="mesa_llm_verify_")) if verify and record else None
        output_dir = scratch if scratch is not None else "recordings"
    try:
        return _replay(
            source, verify=verify, until_step=until_step, then_model=then_model, agent_models=agent_models,
            agent_policies=agent_policies, live_chat_model=live_chat_model, steps=steps,
            output_dir=output_dir, api_base=api_base, record=record, discarded=scratch is not None,
        )
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _replay(
    source: Path,
    *,
    verify: bool,
    until_step: int | None,
    then_model: str | None,
    agent_models: Mapping[int, str] | None,
    agent_policies: Mapping[int, tuple[str, dict[str, Any]]] | None,
    live_chat_model: Callable[[int | None, str], ChatModel] | None,
    steps: int | None,
    output_dir: str | Path,
    api_base: str | None,
    record: bool,
    discarded: bool,
) -> ReplayResult:
    """`replay` into ``output_dir`` (``discarded``: a temporary folder the caller removes)."""
    loaded = load_for_replay(source)
    header = loaded.header
    assert header is not None
    raw = dict(header["scenario"]["spec"])
    # the plugins the run used (its header names them): a missing policy or event type is one line
    plugin_errors, plugin_notes = recorded_plugin_problems(header.get("plugins"))
    if plugin_errors:
        raise ReplayError(f"{source}: {'; '.join(plugin_errors)}")
    try:
        spec = validate_scenario(raw, source=f"{source} (recorded scenario)")
    except ScenarioError as exc:
        raise ReplayError(str(exc)) from None
    fork = until_step is not None
    last_recorded = loaded.complete_steps
    horizon = steps if steps is not None else int(header.get("steps") or last_recorded)
    _check_counts(source, loaded, spec, horizon)
    notes: list[str] = []
    # the recording's folder, server and cache are not this machine's to use (see the module doc)
    spec.source_dir = None
    recorded_base = public_url(spec.llm.api_base)
    cache = spec.llm.cache if spec.llm.cache == "memory" else None
    spec.llm = spec.llm.model_copy(update={"api_base": None, "cache": cache})
    if fork and recorded_base and api_base is None:
        notes.append(
            f"the recording's run called {recorded_base}; this fork calls each model's own provider "
            f"(repeat --api-base {recorded_base} to call that server: it then gets your API key)"
        )
    prompts = recorded_prompts(header, spec)
    if prompts.missing and verify:
        raise ReplayError(
            f"{source}: cannot verify: the recording holds neither the text of the prompt templates "
            f"{_some(prompts.missing)} nor a hash of a shipped one (nothing was built)"
        )
    recorded_models: dict[str, str | None] = dict((header.get("llm") or {}).get("models") or {})
    for pop in spec.populations:
        if pop.wants_llm:
            recorded_models.setdefault(pop.label, None)
    if fork and (then_model is not None or agent_models):
        _check_fork_reaches_agents(source, header, spec, recorded_models, then_model, agent_models or {})
        if live_chat_model is None:  # litellm: an unknown provider or model is one line before step 1
            from mesa_llm.llm.litellm_backend import model_problem

            for new_model in sorted({m for m in [then_model, *(agent_models or {}).values()] if m}):
                problem = model_problem(new_model, api_base)
                if problem is not None:
                    raise ReplayError(f"{source}: cannot fork: {problem} (nothing was built)")
    # a replay stops where the recording stops (a run cut by a crash), but keeps its horizon
    target = horizon if fork else min(horizon, last_recorded)
    if until_step is not None and until_step > last_recorded:
        raise ReplayError(
            f"{source}: cannot fork after step {until_step}: the recording has {last_recorded} complete steps"
        )

    replayer = ReplayChatModel(loaded.events, verify=verify, name="replay")
    holder: dict[str, Any] = {}
    live_cache: dict[tuple[int | None, str], ChatModel] = {}

    def live(agent_id: int | None, recorded_model: str) -> ChatModel:
        chosen = recorded_model
        if then_model is not None:
            chosen = then_model
        if agent_models and agent_id is not None and agent_id in agent_models:
            chosen = agent_models[agent_id]
        key = (agent_id if live_chat_model is not None else None, chosen)
        if key not in live_cache:
            if live_chat_model is not None:
                live_cache[key] = live_chat_model(agent_id, chosen)
            else:
                # the wiring's own litellm model: chat_model_for() would hand back the injected
                # fork model itself, which asked itself again until the recursion limit
                live_cache[key] = holder["model"].llm.live_chat_model_for(chosen)
        return live_cache[key]

    chat = _ForkChatModel(
        replayer, until_step if fork else None, lambda: holder["model"].steps, live
    )
    parent = {
        "recording": str(source),
        "simulation_id": (loaded.events[0].get("event_id") or "").rsplit("_", 1)[0]
        if loaded.events
        else None,
        "kind": "fork" if fork else "replay",
        "fork_step": until_step if fork else None,
        "then_model": then_model,
        "agent_models": {str(k): v for k, v in (agent_models or {}).items()},
        "agent_policies": {str(k): v[0] for k, v in (agent_policies or {}).items()},
    }
    try:
        sim = Simulation.from_scenario(
            spec,
            seed=int(header["seed"]),
            steps=horizon,
            out=Path(output_dir) / REPLAYS_DIR,
            record=record,
            run_name=_safe_stem(f"{source.stem}_{'fork' if fork else 'replay'}"),
            chat_model=chat,
            resolved_models=recorded_models,
            parent=parent,
            api_base=api_base,
            prompt_libraries=prompts.libraries,  # the recording's own texts (checked against their hashes)
        )
    except ValueError as exc:  # e.g. a recorded template that does not compile
        raise ReplayError(f"{source}: cannot rebuild the run: {exc}") from None
    model = sim.mesa_model
    holder["model"] = model
    notes.extend(plugin_notes)
    if prompts.missing:
        notes.append(
            "prompt templates the recording does not hold (rendered from the shipped ones instead): "
            + _some(prompts.missing)
        )
    # what the replay will render, against what was recorded (a header may list fewer templates)
    recorded_hashes = _mapping(_mapping(header.get("llm")).get("prompts"))
    changed = sorted(
        f"{pop}/{name}"
        for pop, hashes in model.llm_header()["prompts"].items()
        for name, digest in hashes.items()
        if _mapping(recorded_hashes.get(pop)).get(name) != digest and f"{pop}/{name}" not in prompts.missing
    )
    divergence: Divergence | None = None
    if changed:
        notes.append(f"prompt templates changed since the recording: {_some(changed)}")
        if verify:
            divergence = Divergence(0, None, "simulation_start", None, f"prompt templates changed: {_some(changed)}")
    recorded_steps = _by_step(loaded.events)
    steering = _steering(loaded.events)
    status = "completed"

    def at_fork() -> None:
        _switch_models(model, then_model, agent_models or {})
        for agent_id, (name, params) in (agent_policies or {}).items():
            agent = model.world.agents.get(agent_id)
            if agent is None:
                raise ReplayError(f"no agent {agent_id} to give policy {name!r}")
            agent.policy = model.policy_registry.create(name, params)

    try:
        _resubmit(sim, steering, sim.steps, scheduled=True)
        if fork and until_step == 0:
            at_fork()  # live from the first step
        while divergence is None and not sim.done and sim.steps < target:
            if not fork or sim.steps < (until_step or 0):
                _resubmit(sim, steering, sim.steps + 1, scheduled=False)
            sim.step()
            if not fork or sim.steps < (until_step or 0):
                _resubmit(sim, steering, sim.steps, scheduled=True)
            step = model.steps
            if fork and step == until_step:
                at_fork()
            if replayer.divergences and verify:
                first = replayer.divergences[0]
                divergence = Divergence(
                    step, first.agent_id, first.event_type, first.event_id, first.detail
                )
                status = "diverged"
                break
            replaying = not fork or step <= (until_step or 0)
            if verify and replaying and model.recorder is not None:
                replayed = [e.to_dict() for e in model.recorder.get_events_by_step(step)]
                replayed = [e for e in replayed if e["event_type"] not in _SKIPPED]
                divergence = _first_difference(step, recorded_steps.get(step, []), replayed)
                if divergence is not None:
                    status = "diverged"
                    break
    finally:
        if status == "completed" and model.steps < horizon and model.stop_status is None:
            status = "replayed_to_cut"
        sim.close(model.stop_status or status)
    final_matches: bool | None = None
    if (
        not fork
        and divergence is None
        and model.steps == last_recorded
        and model.recording_path is not None
    ):
        replayed_events = load_events(model.recording_path).events
        # like with like: both sides' balances at the end of the last complete step
        recorded_states, why_not = _states_at_cut(loaded.events, last_recorded)
        if recorded_states is None:
            notes.append(str(why_not))
        else:
            final_matches = _final_states(replayed_events) == recorded_states
        if final_matches is False and verify:
            divergence = Divergence(
                model.steps, None, "agent_state", None, "final balances differ from the recording"
            )
    return ReplayResult(
        source=source,
        model=model,
        steps=model.steps,
        replayed_calls=replayer.served,
        live_calls=chat.live_calls,
        divergence=divergence,
        mismatched_requests=len(replayer.divergences),
        final_state_matches=final_matches,
        fork_step=until_step if fork else None,
        notes=notes,
        failed_live_calls=chat.failed_live_calls,
        discarded=discarded,
    )


def _check_fork_reaches_agents(
    source: Path,
    header: Mapping[str, Any],
    spec: ScenarioSpec,
    recorded_models: Mapping[str, str | None],
    then_model: str | None,
    agent_models: Mapping[int, str],
) -> None:
    """Refuse (one line, before anything is built) a fork whose new model would reach no agent:
    no LLM population, or LLM populations that ran rule-based (no model was configured)."""
    llm_pops = [p for p in spec.populations if p.wants_llm and p.count > 0]
    live = {p.label for p in llm_pops if recorded_models.get(p.label)}
    if then_model is not None and not live:
        why = (
            f"its LLM populations ({_some([p.label for p in llm_pops])}) ran rule-based: no model was configured"
            if llm_pops
            else "the scenario has no LLM population"
        )
        raise ReplayError(
            f"{source}: --then-model {then_model} reaches no agent: {why}; run the scenario with --model "
            "(or llm.model) to record LLM agents, then fork that recording (nothing was built)"
        )
    listed = header.get("agents")
    agents: list[Any] = listed if isinstance(listed, list) else []
    population = {a.get("agent_id"): a.get("population") for a in agents if isinstance(a, dict)}
    for agent_id, new_model in agent_models.items():
        if population.get(agent_id) not in live:
            raise ReplayError(
                f"{source}: --agent-model {agent_id}={new_model} reaches no agent: agent {agent_id} "
                "did not run as an LLM agent (give it a policy with --agent-policy instead; nothing was built)"
            )


def _steering(events: list[dict[str, Any]]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """The recorded events a run took from outside, by (type, step)."""
    out: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for event in events:
        if event.get("event_type") in _STEERING:
            out.setdefault((str(event["event_type"]), int(event.get("step") or 0)), []).append(event)
    return out


def _resubmit(sim: Simulation, steering: Mapping[tuple[str, int], list[dict[str, Any]]], step: int, *, scheduled: bool) -> None:
    """Schedule again the events recorded as scheduled in ``step`` (``scheduled``), or submit the
    external agents' recorded actions of ``step``, as the run took them (through the same checks)."""
    try:
        if scheduled:
            for event in steering.get(("event_scheduled", step), []):
                data = dict(_mapping(_mapping(event.get("content")).get("event")))
                sim.schedule(data, at_step=data.get("at_step"))
            return
        for event in steering.get(("external_actions", step), []):
            sim.act(event["agent_id"], list(_mapping(event.get("content")).get("actions") or []))
    except (ValueError, TypeError) as exc:
        raise ReplayError(f"cannot replay what the run took from outside at step {step}: {exc}") from None


def _switch_models(
    model: Any, then_model: str | None, agent_models: Mapping[int, str]
) -> None:
    """From the fork on, LLM agents ask (and record) their new model."""
    from mesa_llm.agents.llm_policy import LLMPolicy

    for agent in model.llm_agents:
        new = agent_models.get(agent.unique_id, then_model)
        if new is None:
            continue
        policy = agent.policy
        if isinstance(policy, LLMPolicy) and policy.context is not None:
            policy.context.model = new
            agent.persona = agent.persona.model_copy(update={"model": new})
    unknown = [a for a in agent_models if a not in {x.unique_id for x in model.llm_agents}]
    if unknown:
        raise ReplayError(f"agent {unknown[0]} is not an LLM agent: give it a policy instead")


__all__ = [
    "REPLAYS_DIR",
    "Divergence",
    "RecordingError",
    "ReplayError",
    "RecordedPrompts",
    "ReplayResult",
    "load_for_replay",
    "recorded_prompts",
    "replay",
]


def _safe_stem(stem: str) -> str:
    """A recording file stem made of safe characters only (the source may be named anything)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", stem).lstrip("._-")[:64]
    return cleaned or "recording"
