"""The two things a dashboard page drives: a live model (`LiveSession`) and a recording being
played back (`ReplaySession`). Both feed `RunData` the events of the recording contract; neither
imports Solara.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import typing
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from mesa_llm.dashboard.data import RunData
from mesa_llm.recording import load_events
from mesa_llm.scenario import ScenarioSpec, TimelineEntry, TimelineEvent
from mesa_llm.stress import STRESS_TYPES, stress_problems


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

    The model records to a JSON-lines stream in a temporary folder (kept: it can be replayed);
    after each step the new lines are read back and folded into `data`, exactly as the replay
    viewer folds a recording. Agent states are recorded every step so the agents table is exact.
    Calls are serialised by a lock: the page's Step button and its Run loop share one model.
    """

    def __init__(
        self,
        spec: ScenarioSpec,
        *,
        llm_model: str | None = None,
        output_dir: Path | None = None,
        chat_model: Any = None,
    ) -> None:
        """``llm_model``: the model of every LLM population (the CLI's ``--model``);
        ``chat_model``: answers every LLM call instead of litellm (tests)."""
        self.base = spec
        self.llm_model = llm_model
        self.chat_model = chat_model
        self.output_dir = output_dir or Path(tempfile.mkdtemp(prefix="mesa_llm_dashboard_"))
        self.lock = threading.RLock()
        self.params = default_params(spec)
        self.error: str | None = None
        self.step_started: float | None = None
        self.calls_at_step_start = 0
        self.model: Any = None
        self.data = RunData()
        self._stream: Any = None
        self._partial = b""
        self.reset()

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
        """No further step: the horizon is reached or the model stopped."""
        return self.model is None or not self.model.running or self.steps >= self.max_steps

    def reset(self, params: dict[str, Any] | None = None) -> None:
        """A fresh model of the scenario with ``params`` (population counts, k, fee) applied;
        a bad value leaves the current model and sets `error` (one line)."""
        from mesa_llm.model import MarketModel

        with self.lock:
            try:
                spec = apply_params(self.base, params if params is not None else self.params)
                model = MarketModel(
                    spec, output_dir=self.output_dir, llm_model=self.llm_model, chat_model=self.chat_model
                )
            except (ValueError, ValidationError) as exc:
                self.error = f"cannot reset: {_one_line(exc)}"
                return
            self.close()
            if params is not None:
                self.params = dict(params)
            self.error = None
            self.model = model
            self.data = RunData()
            self._stream = open(model.recording_path, "rb") if model.recording_path else None  # noqa: SIM115
            self._partial = b""
            if model.recorder is not None:
                model.recorder.flush()
            self._read_new()

    def step(self) -> bool:
        """Run one step (False when the run is over or the step failed: see `error`)."""
        with self.lock:
            if self.done:
                return False
            self.calls_at_step_start = self.model.usage.run.calls
            self.step_started = time.perf_counter()
            try:
                self.model.step()
            except Exception as exc:  # noqa: BLE001 - shown on the page; the recording so far stays
                self.error = f"step {self.steps + 1} failed: {type(exc).__name__}: {_one_line(exc)}"
                self.model.running = False
                return False
            finally:
                self.step_started = None
            if self.model.stop_reason:
                self.error = f"stopped: {self.model.stop_reason}"
            if self.done:
                self.model.finish(self.model.stop_status or "completed")
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
            data["at_step"] = self.steps + 1
            event = _EVENT.validate_python(data)
            self.model.scenario.timeline.append(event)  # the model's own copy (see apply_params)
            if isinstance(event, STRESS_TYPES):  # stress events run from the model's schedule
                self.model.stress.add(len(self.model.scenario.timeline) - 1, event)
            self.data.mark_pending(self.steps + 1, data["type"], str(data.get("description") or ""))
            return f"{data['type']} at step {self.steps + 1}"

    def close(self) -> None:
        """Finish the current model's recording."""
        if self.model is not None:
            self.model.finish("interrupted" if not self.done else (self.model.stop_status or "completed"))
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


def default_params(spec: ScenarioSpec) -> dict[str, Any]:
    """The parameters the live page lets a user change before a reset."""
    return {
        "counts": {p.label: p.count for p in spec.populations},
        "k": spec.market.k,
        "fee_per_unit": spec.market.fee_per_unit,
    }


def apply_params(spec: ScenarioSpec, params: dict[str, Any]) -> ScenarioSpec:
    """A validated deep copy of ``spec`` with population counts, k and fee from ``params`` and
    agent states recorded every step (ValidationError/ValueError naming the field)."""
    data = spec.model_dump(mode="python")
    counts = params.get("counts") or {}
    for population in data["populations"]:
        label = population.get("name") or population.get("role")
        for key in (population.get("name"), label):
            if key in counts:
                population["count"] = int(counts[key])
    data["market"]["k"] = float(params.get("k", data["market"]["k"]))
    data["market"]["fee_per_unit"] = float(params.get("fee_per_unit", data["market"]["fee_per_unit"]))
    data["recording"]["agent_states"] = "every_step"
    new = ScenarioSpec.model_validate(data)
    new.source_dir = spec.source_dir
    return new


class ReplaySession:
    """A recording played back: the panels' data at any step, from the recording alone."""

    def __init__(self, path: str | Path) -> None:
        loaded = load_events(path)
        self.path = Path(path)
        self.warning = loaded.warning
        self.events = loaded.events
        self.steps = [e.get("step", 0) for e in self.events]
        self.final_step = max(self.steps, default=0)
        self.data = RunData()
        self.position = 0  # events folded into data
        self.step = -1

    def _end_of(self, step: int) -> int:
        # events are in step order: everything up to the last event of `step`
        import bisect

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
