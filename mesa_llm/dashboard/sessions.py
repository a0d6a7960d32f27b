"""The two things a dashboard page drives: a live model (`LiveSession`) and a recording being
played back (`ReplaySession`). Both feed `RunData` the events of the recording contract; neither
imports Solara.
"""

from __future__ import annotations

import bisect
import json
import shutil
import tempfile
import threading
import time
import typing
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from mesa_llm.dashboard.data import RunData
from mesa_llm.recording import load_events
from mesa_llm.scenario import (
    ScenarioError,
    ScenarioSpec,
    TimelineEntry,
    TimelineEvent,
    validate_scenario,
)
from mesa_llm.stress import stress_problems


def timeline_event_types(timeline: Any = TimelineEvent) -> dict[str, type]:
    """Every event type the scenario timeline supports (the ``type`` tag of each member of the
    `TimelineEvent` union), so types added to the timeline show up in the stress menu by themselves."""
    union = typing.get_args(timeline)[0]
    out: dict[str, type] = {}
    for cls in typing.get_args(union):
        tag = typing.get_args(cls.model_fields["type"].annotation)
        if tag:
            out[str(tag[0])] = cls
    return out


# the timeline's entry type: a scenario's own plugin events (mesa_llm.events) can be injected too
_EVENT: TypeAdapter[Any] = TypeAdapter(TimelineEntry)

# What an event of a known type does when injected into a scenario whose timeline has none of
# its kind ("{good}" is the scenario's first good). Types without a preset here are offered when
# they validate with only a good and a step (or a step alone).
_DEFAULTS: dict[str, dict[str, Any]] = {
    "shift_private": {"good": "{good}", "field": "values", "scale": 0.7, "description": "demand shock: values -30%"},
    # the stress events of mesa_llm.stress, offered where the scenario lets them act
    "flash_crash": {"magnitude": 0.2, "duration": 10, "description": "fundamentals -20%, recovering over 10 steps"},
    "volatility_spike": {"magnitude": 3.0, "duration": 10, "description": "return volatility x3 for 10 steps"},
    "liquidity_shock": {"magnitude": 4.0, "duration": 10, "description": "market makers' depth /4 for 10 steps"},
}
# Offered only when the scenario's own timeline has one (a default one would do nothing).
_ONLY_FROM_SCENARIO = frozenset({"endow", "set_params"})


class LiveSession:
    """A scenario run step by step for the live page: build, step, reset, inject a stress event.

    The model records to a JSON-lines stream in ``output_dir``; after each step the new lines are
    read back and folded into `data`, exactly as the replay viewer folds a recording. Agent states
    are recorded every step so the agents table is exact. Calls are serialised by a lock: the
    page's Step button and its Run loop share one model.

    A session lives as long as its page: `end` (called when the tab closes, or when the server
    gives up on a page that went away) stops the run, ends its recording with ``simulation_end``
    and, when the session made its own temporary folder (no ``output_dir`` given), deletes it.
    """

    def __init__(
        self,
        spec: ScenarioSpec,
        *,
        llm_model: str | None = None,
        output_dir: Path | None = None,
        chat_model: Any = None,
        source: str | None = None,
    ) -> None:
        """``llm_model``: the model of every LLM population (the CLI's ``--model``);
        ``output_dir``: where recordings are kept (default: a temporary folder deleted by `end`);
        ``chat_model``: answers every LLM call instead of litellm (tests); ``source``: the
        scenario's file, named in error messages as ``validate`` names it."""
        self.base = spec
        self.llm_model = llm_model
        self.chat_model = chat_model
        self.source = source or default_source(spec)
        self.owns_output_dir = output_dir is None
        self.output_dir = output_dir or Path(tempfile.mkdtemp(prefix="mesa_llm_dashboard_"))
        self.lock = threading.RLock()
        self.params = default_params(spec)
        self.error: str | None = None
        self.step_started: float | None = None
        self.calls_at_step_start = 0
        self.sim: Any = None  # the Simulation of the current run
        self.data = RunData()
        self._stream: Any = None
        self._partial = b""
        self._ended = threading.Event()
        self.reset()  # a scenario that does not pass the checks: no model, `error` says why

    @property
    def model(self) -> Any:
        """The Mesa model of the current run (read only: the page shows its state), or None."""
        return self.sim.mesa_model if self.sim is not None else None

    @property
    def ended(self) -> bool:
        """The session was ended (`end`): no step or reset any more."""
        return self._ended.is_set()

    @property
    def has_llm(self) -> bool:
        """Whether any population is LLM-driven."""
        return self.model is not None and bool(self.model.llm_agents)

    @property
    def steps(self) -> int:
        """Steps completed since the last reset (Mesa counts a step as it starts)."""
        if self.model is None:
            return 0
        return int(self.model.steps) - (1 if self.step_started is not None else 0)

    @property
    def max_steps(self) -> int:
        """The run's horizon."""
        return int(self.model.max_steps) if self.model is not None else 0

    @property
    def done(self) -> bool:
        """No further step: the session ended, the horizon is reached or the model stopped."""
        return self.ended or self._run_over()

    def _run_over(self) -> bool:
        # the run itself is over (a session ended mid-run is not: its recording says "interrupted")
        return self.sim is None or self.sim.done or self.steps >= self.max_steps

    def reset(self, params: dict[str, Any] | None = None) -> None:
        """A fresh model of the scenario with ``params`` (population counts, k, fee) applied;
        a value ``validate`` would refuse leaves the current model and sets `error` to the line
        ``validate`` prints."""
        from mesa_llm.simulation import Simulation

        with self.lock:
            if self.ended:
                self.error = "the session has ended: reload the page"
                return
            try:
                spec = apply_params(self.base, params if params is not None else self.params, source=self.source)
                sim = Simulation.from_scenario(spec, out=self.output_dir, model=self.llm_model, chat_model=self.chat_model)
            except ScenarioError as exc:
                self.error = f"cannot reset: {exc}"
                return
            except (ValueError, ValidationError) as exc:
                self.error = f"cannot reset: {self.source}: {_one_line(exc)}"
                return
            except OSError as exc:  # the recording's folder cannot be written
                self.error = f"cannot reset: cannot record in {self.output_dir}: {exc.strerror or exc}"
                return
            self._close_model()
            if params is not None:
                self.params = dict(params)
            self.error = None
            self.sim = sim
            self.data = RunData()
            self._stream = open(sim.recording_path, "rb") if sim.recording_path else None  # noqa: SIM115
            self._partial = b""
            if sim.mesa_model.recorder is not None:
                sim.mesa_model.recorder.flush()
            self._read_new()

    def step(self) -> bool:
        """Run one step (False when the run is over or the step failed: see `error`)."""
        with self.lock:
            if self.done:
                return False
            self.calls_at_step_start = self.model.usage.run.calls
            self.step_started = time.perf_counter()
            try:
                self.sim.step()
            except Exception as exc:  # noqa: BLE001 - shown on the page; the recording so far stays
                self.error = f"step {self.steps + 1} failed: {type(exc).__name__}: {_one_line(exc)}"
                self.sim.close()  # "failed": the recording ends with the balances as they stand
                self._read_new()
                return False
            finally:
                self.step_started = None
            if self.sim.stop_reason:
                self.error = f"stopped: {self.sim.stop_reason}"
            if self._run_over():
                self.sim.close()
            self._read_new()
            return True

    def in_flight(self) -> dict[str, Any] | None:
        """While a step runs: its number, seconds elapsed and LLM calls answered so far."""
        started = self.step_started
        if started is None or self.model is None:
            return None
        return {
            "step": self.steps + 1,  # the step deciding now
            "elapsed_s": time.perf_counter() - started,
            "calls_done": self.model.usage.run.calls - self.calls_at_step_start,
            "llm_agents": len(self.model.llm_agents),
        }

    def stress_presets(self) -> dict[str, dict[str, Any]]:
        """Stress events that can be injected now, by label: the scenario's own timeline events
        and one of every other timeline type that has a preset or needs no parameters."""
        presets: dict[str, dict[str, Any]] = {}
        for event in self.base.timeline:
            data = event.model_dump(mode="json")
            label = f"{data['type']}: {data.get('description') or 'as in the scenario'}"
            presets.setdefault(label, data)
        seen = {data["type"] for data in presets.values()}
        good = self.base.goods[0].name
        for tag in timeline_event_types():
            if tag in seen or tag in _ONLY_FROM_SCENARIO:
                continue
            defaults = _DEFAULTS.get(tag)
            candidates = (
                [{k: (v.format(good=good) if isinstance(v, str) else v) for k, v in defaults.items()}]
                if defaults is not None
                else [{"good": good}, {}]
            )
            for extra in candidates:
                data = {"type": tag, "at_step": 1, **extra}
                try:
                    event = _EVENT.validate_python(data)
                except ValidationError:
                    continue
                if stress_problems([event], self.base.populations, [g.name for g in self.base.goods]):
                    continue  # e.g. a flash crash where no one holds a fundamental value
                presets[f"{tag}: {data.get('description') or 'defaults'}"] = data
                break
        return presets

    def inject(self, label: str) -> str:
        """Schedule the preset ``label`` for the next step; returns what was scheduled."""
        with self.lock:
            if self.done:
                raise ValueError("the run is over: reset first")
            data = dict(self.stress_presets()[label])
            self.sim.schedule(data, at_step=self.steps + 1)  # validated and recorded: a replay repeats it
            self.data.mark_pending(self.steps + 1, data["type"], str(data.get("description") or ""))
            return f"{data['type']} at step {self.steps + 1}"

    def close(self) -> None:
        """The same as `end`: a closed session is over."""
        self.end()

    def end(self) -> None:
        """End the session for good (idempotent, returns at once): no further step or reset; the
        recording gets ``simulation_end`` ("interrupted" when the run was not over); a temporary
        folder the session made is deleted. A step in flight (an LLM step can take long) finishes
        first, in the background."""
        if self._ended.is_set():
            return
        self._ended.set()
        if self.lock.acquire(blocking=False):
            try:
                self._release()
            finally:
                self.lock.release()
            return

        def after_the_step() -> None:
            with self.lock:
                self._release()

        threading.Thread(target=after_the_step, name="mesa-llm-dashboard-end", daemon=True).start()

    def _release(self) -> None:
        self._close_model()
        if self.owns_output_dir:
            shutil.rmtree(self.output_dir, ignore_errors=True)

    def _close_model(self) -> None:
        if self.sim is not None:
            self.sim.close(None if self._run_over() else "interrupted")
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def _read_new(self) -> None:
        if self._stream is None:
            return
        chunk = self._partial + self._stream.read()
        *lines, self._partial = chunk.split(b"\n")
        for line in lines:
            if line.strip():
                self.data.add(json.loads(line))


def default_source(spec: ScenarioSpec) -> str:
    """How errors name a scenario whose file is not known: the file named after it in its folder
    when there is one (a shipped scenario's, as ``validate`` names it), else its name."""
    if spec.source_dir is not None:
        candidate = Path(spec.source_dir) / f"{spec.name}.yaml"
        if candidate.is_file():
            return str(candidate)
    return f"scenario {spec.name!r}"


def default_params(spec: ScenarioSpec) -> dict[str, Any]:
    """The parameters the live page lets a user change before a reset."""
    return {
        "counts": {p.label: p.count for p in spec.populations},
        "k": spec.market.k,
        "fee_per_unit": spec.market.fee_per_unit,
    }


def apply_params(spec: ScenarioSpec, params: dict[str, Any], source: str | None = None) -> ScenarioSpec:
    """A checked deep copy of ``spec`` with population counts, k and fee from ``params`` and agent
    states recorded every step.

    Checked exactly as ``mesa-llm validate`` checks a file (`checked_scenario`): a value it would
    refuse raises its `ScenarioError`, whose one line names ``source`` (the scenario's file) and
    the field."""
    data = spec.model_dump(mode="python")
    counts = params.get("counts") or {}
    for population, raw in zip(spec.populations, data["populations"], strict=True):
        for key in (population.name, population.label):
            if key is not None and key in counts:
                raw["count"] = counts[key]  # checked below, like a --set value
    for key in ("k", "fee_per_unit"):
        if key in params:
            data["market"][key] = params[key]
    data["recording"]["agent_states"] = "every_step"
    return checked_scenario(data, source or default_source(spec), spec.source_dir)


def checked_scenario(raw: dict[str, Any], source: str, source_dir: Path | None) -> ScenarioSpec:
    """``raw`` validated as ``mesa-llm validate`` validates a file: the schema, policies and their
    parameters, the size bounds and memory estimate (`validate_scenario`), then every prompt
    template resolved, compiled and rendered once (`check_prompt_templates`); ScenarioError
    naming ``source`` on any problem."""
    from mesa_llm.simulation import prepare_scenario

    spec = validate_scenario(raw, source=source)
    spec.source_dir = source_dir
    return prepare_scenario(spec, source=source)  # the prompt templates, as validate checks them


@dataclass(frozen=True)
class SharedRecording:
    """A recording loaded once per process and shared, read-only, by every replay of it."""

    path: Path
    events: list[dict[str, Any]]
    steps: list[int]
    final_step: int
    warning: str | None


# Loaded recordings by (resolved path, mtime, size): a new version of the file is loaded anew;
# a recording no session holds any more is freed.
_shared: weakref.WeakValueDictionary[tuple[str, int, int], SharedRecording] = weakref.WeakValueDictionary()
_shared_lock = threading.Lock()


def shared_recording(path: str | Path) -> SharedRecording:
    """The recording at ``path``, loaded once for all the replays of it in this process
    (RecordingError as `load_events`)."""
    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
        key = (str(resolved), stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = (str(resolved), -1, -1)  # load_events says what is wrong
    with _shared_lock:  # a second tab opened meanwhile waits for this load instead of its own
        found = _shared.get(key)
        if found is not None:
            return found
        loaded = load_events(path)
        steps = [e.get("step", 0) for e in loaded.events]  # in order: the loader checks it
        recording = SharedRecording(Path(path), loaded.events, steps, max(steps, default=0), loaded.warning)
        _shared[key] = recording
        return recording


class ReplaySession:
    """A recording played back: the panels' data at any step, from the recording alone.

    The events are the process's one loaded copy (`shared_recording`); a session keeps only its
    position and the panels' data folded so far."""

    def __init__(self, path: str | Path) -> None:
        self.recording = shared_recording(path)
        self.path = Path(path)
        self.data = RunData()
        self.position = 0  # events folded into data
        self.step = -1

    @property
    def events(self) -> list[dict[str, Any]]:
        """The recording's events (shared: never modified)."""
        return self.recording.events

    @property
    def steps(self) -> list[int]:
        """The step of each event."""
        return self.recording.steps

    @property
    def final_step(self) -> int:
        """The last step of the recording."""
        return self.recording.final_step

    @property
    def warning(self) -> str | None:
        """What the loader said about a cut recording."""
        return self.recording.warning

    def _end_of(self, step: int) -> int:
        # events are in step order: everything up to the last event of `step`
        return bisect.bisect_right(self.steps, step)

    def at(self, step: int) -> RunData:
        """The panels' data after ``step`` (0: the header only); folds forward from the current
        step, rebuilds from the start to go back."""
        step = max(0, min(step, self.final_step))
        if step < self.step:
            self.data, self.position = RunData(), 0
        end = self._end_of(step)
        self.data.add_many(self.events[self.position : end])
        self.position = max(self.position, end)
        self.step = step
        return self.data


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"[:300]
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
