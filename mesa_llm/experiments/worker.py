"""One run of a sweep, in whichever process executes it: build, run, measure, and return its row.

:func:`execute_run` takes and returns plain dicts (they cross process and Ray boundaries) and never
raises for a run's own failure: a bad scenario, an exception, a timeout become the row's ``status``
and one-line ``error``, so one broken cell never ends the sweep.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: run statuses in the results table
OK = "ok"
FAILED = "failed"
TIMEOUT = "timeout"
BUDGET_EXCEEDED = "budget_exceeded"
NOT_RUN_BUDGET = "not_run_budget"
#: longest error text kept in a row
MAX_ERROR_CHARS = 500
#: summary keys that describe the run rather than measure it
_NOT_METRICS = {"scenario", "seed", "steps", "recording", "stop_reason", "llm"}


class RunTimeout(Exception):
    """The run took longer than the sweep's per-run timeout."""


def run_key(scenario_json: dict[str, Any], seed: int, steps: int | None, llm_model: str | None = None) -> str:
    """The resume key of a run: a hash of its fully resolved scenario, seed, step count and the
    model every LLM population is switched to (``--local``), if any."""
    data = {"scenario": scenario_json, "seed": seed, "steps": steps}
    if llm_model is not None:
        data["llm_model"] = llm_model
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def unresolved_key(scenario: str, overrides: list[str], seed: int, steps: int | None) -> str:
    """The key of a run whose scenario does not resolve (its inputs, since there is no scenario)."""
    text = json.dumps({"unresolved": scenario, "overrides": overrides, "seed": seed, "steps": steps}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def resolve(scenario: str, overrides: list[str]) -> Any:
    """Load a scenario with a run's overrides, checked as ``validate`` checks it (ScenarioError if not)."""
    from mesa_llm.simulation import prepare_scenario

    return prepare_scenario(scenario, overrides)


def flatten_summary(summary: dict[str, Any]) -> dict[str, float | int | None]:
    """Every scalar of a run summary under its dotted path (``goods.widget.smith_alpha``)."""
    out: dict[str, float | int | None] = {}
    stack: list[tuple[str, Any]] = [(k, v) for k, v in summary.items() if k not in _NOT_METRICS]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{path}.{k}", v) for k, v in value.items())
        elif isinstance(value, bool):
            out[path] = int(value)
        elif value is None or isinstance(value, int | float):
            out[path] = value
    return dict(sorted(out.items()))


def metric_problem(keys: list[str], name: str) -> str | None:
    """Why metric ``name`` (a full path, or a unique last part) names none, or several, of a run
    summary's ``keys`` (one line); None when it names exactly one."""
    if name in keys:
        return None
    matches = [k for k in keys if k.endswith("." + name)]
    if len(matches) == 1:
        return None
    if matches:
        return f"{name!r} is ambiguous: " + ", ".join(matches)
    return f"{name!r} is not in the run summary (it has {', '.join(keys[:12])})"


def pick_metrics(flat: dict[str, Any], wanted: list[str] | None) -> dict[str, Any]:
    """The requested metrics (a full path, or a unique last part such as ``smith_alpha``), or all.

    ValueError (one line) when a requested metric is missing or ambiguous."""
    if wanted is None:
        return {k: _finite(v) for k, v in flat.items()}
    out: dict[str, Any] = {}
    keys = list(flat)
    for name in wanted:
        problem = metric_problem(keys, name)
        if problem is not None:
            raise ValueError(f"metric {problem}")
        out[name] = _finite(flat[name] if name in flat else flat[next(k for k in keys if k.endswith("." + name))])
    return out


class _Unanswered:
    """The chat model of a model built only to read its summary's keys: it is never asked."""

    name = "summary-keys"

    def declared_tool_mode(self, model: str) -> str:
        """No probe."""
        return "tools"

    async def complete(self, request: Any) -> Any:
        raise RuntimeError("a model built for its summary's keys calls no LLM")


def summary_metric_names(spec: Any) -> list[str]:
    """The metric names a run of ``spec`` reports (the scalars of its summary), read from a small
    copy of it (at most two agents per population) that is built, never run, and records nothing."""
    from mesa_llm.simulation import Simulation

    small = spec.model_copy(
        update={"populations": [p.model_copy(update={"count": min(p.count, 2)}) for p in spec.populations]}
    )
    small.source_dir = spec.source_dir
    with Simulation.from_scenario(small, record=False, chat_model=_Unanswered()) as sim:
        return list(flatten_summary(sim.summary().to_dict()))


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise RunTimeout in this thread after ``seconds`` (SIGALRM; main thread on POSIX only —
    elsewhere the per-step check in :func:`execute_run` enforces it between steps)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def _alarm(signum: int, frame: Any) -> None:
        raise RunTimeout(f"the run took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def execute_run(task: dict[str, Any]) -> dict[str, Any]:
    """Run one planned run and return its result row (never raises for the run's own failure).

    ``task``: ``run`` (a PlannedRun dict), ``scenario``, ``steps``, ``out_dir`` (the sweep folder),
    ``metrics``, ``timeout_s``, ``max_cost_usd`` (this run's share of the budget, or None), ``key``,
    ``plugins`` (the sweep's plugin settings: ``--no-plugins`` and ``MESA_LLM_PLUGINS`` reach every worker).
    """
    from mesa_llm.plugins import Plugins, current_plugins, using_plugins

    settings = task.get("plugins")
    with using_plugins(Plugins.from_settings(settings) if settings is not None else current_plugins()):
        return _execute_run(task)


def _execute_run(task: dict[str, Any]) -> dict[str, Any]:
    # imported before the clock starts: a fresh worker's first run must not pay for (or time out on) imports
    import mesa_llm.simulation  # noqa: F401

    started = time.perf_counter()
    run = task["run"]
    result: dict[str, Any] = {
        "status": OK, "error": None, "metrics": {}, "prompt_tokens": 0, "completion_tokens": 0,
        "cost_usd": 0.0, "recording": None,
    }  # fmt: skip
    sim = None
    api_base: str | None = None
    try:
        spec = resolve(task["scenario"], run["overrides"])
        api_base = spec.llm.api_base
        if task.get("llm_settings"):  # where the served model lives (--local): not part of the run's key
            spec.llm = spec.llm.model_copy(update=task["llm_settings"])
        cap = task.get("max_cost_usd")
        if cap is not None:
            current = spec.llm.max_cost_usd
            spec.llm = spec.llm.model_copy(update={"max_cost_usd": cap if current is None else min(current, cap)})
        from mesa_llm.analysis.plugin_metrics import plugin_columns
        from mesa_llm.simulation import Simulation

        out_dir = Path(task["out_dir"])
        # the server the sweep command started (--local) is the program's choice: it may get the key;
        # an api_base of the scenario, a factor or a condition gets none (mesa_llm.llm.consent)
        sim = Simulation.from_scenario(
            spec, seed=run["seed"], steps=task["steps"], out=out_dir / "runs", run_name=run["run_id"],
            model=task.get("llm_model"), api_base=(task.get("llm_settings") or {}).get("api_base"),
        )
        timeout = float(task["timeout_s"])
        deadline = started + timeout

        def _check(step: int) -> None:
            if time.perf_counter() > deadline:
                raise RunTimeout(f"the run took longer than {timeout:g} s (at step {step})")

        with _deadline(timeout):
            sim.run(progress=_check)
        sim.close()  # the recording complete before its plugin metrics are read
        summary = sim.summary().to_dict()
        if sim.recording_path is not None:
            result["recording"] = str(Path(sim.recording_path).resolve().relative_to(out_dir.resolve()))
        llm = summary.get("llm") or {}
        result["prompt_tokens"] = int(llm.get("prompt_tokens") or 0)
        result["completion_tokens"] = int(llm.get("completion_tokens") or 0)
        result["cost_usd"] = float(llm.get("cost_usd") or 0.0)
        # plugin metrics (of the recording) are columns in every row; `metrics` may name them too
        extra = plugin_columns(sim.recording_path)
        flat = {**flatten_summary(summary), **extra.flat()}
        result["metrics"] = {**pick_metrics(flat, task.get("metrics")), **pick_metrics(extra.flat(), None)}
        result["warnings"] = extra.errors
        if sim.status == "failed":
            result.update(status=FAILED, error=summary.get("stop_reason"))
        elif sim.status == "budget_exceeded":
            result.update(status=BUDGET_EXCEEDED, error=summary.get("stop_reason"))
    except RunTimeout as exc:
        result.update(status=TIMEOUT, error=str(exc))
    except Exception as exc:  # the run's own failure: a row, never the end of the sweep
        result.update(status=FAILED, error=f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc))
    finally:
        if sim is not None:
            with contextlib.suppress(Exception):
                sim.close(result["status"] if result["status"] != OK else None)
            if result["recording"] is None and sim.recording_path is not None:
                with contextlib.suppress(ValueError):
                    out = Path(task["out_dir"]).resolve()
                    result["recording"] = str(Path(sim.recording_path).resolve().relative_to(out))
    if result["error"] is not None:
        from mesa_llm.llm.secrets import Redactor

        # no key or api_base password reaches the table (the environment's keys, the URL's userinfo)
        scrub = Redactor.for_provider(None, (task.get("llm_settings") or {}).get("api_base") or api_base)
        result["error"] = " ".join(scrub(str(result["error"])).split())[:MAX_ERROR_CHARS]
    if result["status"] != OK and sim is not None and not result["prompt_tokens"]:
        usage = sim.mesa_model.usage.run
        result.update(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, cost_usd=usage.cost_usd)
    if result["status"] != OK:
        # only complete runs carry metrics: a partial run's numbers would bias every mean taken
        # from the table (its recording keeps them)
        result["metrics"] = {}
    result["wall_s"] = time.perf_counter() - started
    return result
