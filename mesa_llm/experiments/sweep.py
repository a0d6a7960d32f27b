"""Running a sweep: plan the runs, skip those already done, execute the rest within the budget,
and keep the results table up to date as rows arrive.

:func:`run_sweep` is the whole of ``mesa-llm sweep`` without the terminal: the CLI adds the
progress bar and prints the statistics.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesa_llm.experiments.budget import RunEstimate, describe_estimate, estimate_run
from mesa_llm.experiments.design import PlannedRun, plan_runs
from mesa_llm.experiments.executors import ExecutorError, default_workers, make_executor
from mesa_llm.experiments.spec import SweepSpec, SweepSpecError, load_sweep_spec, read_spec_text
from mesa_llm.experiments.store import ResultsStore
from mesa_llm.experiments.worker import (
    FAILED,
    NOT_RUN_BUDGET,
    OK,
    metric_problem,
    resolve,
    run_key,
    summary_metric_names,
    unresolved_key,
)
from mesa_llm.safe_yaml import load_yaml

#: seconds between rewrites of the tables while rows arrive (the journal is written at once)
TABLE_INTERVAL_S = 1.0


@dataclass
class SweepTally:
    """Counts of the sweep so far (what the progress bar shows)."""

    total: int = 0
    done: int = 0  # ok, this invocation
    failed: int = 0  # any other status, this invocation
    skipped: int = 0  # already done before (resume)
    not_run: int = 0  # stopped by the budget
    executed: int = 0  # runs handed to an executor this invocation
    cost_usd: float = 0.0  # spent by this sweep folder, all invocations

    @property
    def finished(self) -> int:
        """Runs with a row in the table by now."""
        return self.done + self.failed + self.skipped + self.not_run


@dataclass
class SweepResult:
    """What a sweep invocation did."""

    spec: SweepSpec
    out_dir: Path
    tally: SweepTally
    factor_paths: list[str]
    estimate: str
    wall_s: float
    notes: list[str] = field(default_factory=list)


def scenario_reference(spec: SweepSpec, spec_path: Path) -> str:
    """The spec's scenario as load_scenario takes it: a shipped name, or a path (relative to the spec)."""
    text = spec.scenario
    if text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text:
        path = Path(text)
        return str(path if path.is_absolute() else (spec_path.parent / path).resolve())
    return text


@dataclass
class _Resolved:
    key: str
    error: str | None
    estimate: RunEstimate | None


def run_sweep(
    spec_path: str | Path,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    executor: str = "process",
    ray_address: str | None = None,
    max_cost_usd: float | None = None,
    notify: Callable[[str], None] | None = None,
    on_update: Callable[[SweepTally], None] | None = None,
    llm_model: str | None = None,
    llm_settings: dict[str, Any] | None = None,
    llm_model_id: str | None = None,
) -> SweepResult:
    """Run (or resume) the sweep of ``spec_path`` into ``out_dir``.

    SweepSpecError / StoreError / ExecutorError (one line) when the sweep cannot start; a run's own
    failure is a row. ``notify`` gets one-line notes (the estimate, the pilot run), ``on_update``
    the tally after every row. ``llm_model`` switches every LLM population to that model (part of
    each run's key) and ``llm_settings`` updates the scenarios' ``llm`` settings at run time (where
    that model is served; not part of the key): together, ``--local``. ``llm_model_id`` names that
    model in the key instead of ``llm_model`` (e.g. with the weights' file).
    """
    started = time.perf_counter()
    if executor not in ("process", "ray"):
        raise ExecutorError(f"unknown executor {executor!r}: use process or ray")
    if ray_address and executor != "ray":
        raise ExecutorError("--ray-address needs --executor ray")
    say = notify or (lambda _text: None)
    path = Path(spec_path)
    spec = load_sweep_spec(path)
    text = read_spec_text(path)
    with contextlib.suppress(Exception):  # the old metric names it uses: one note each
        for note in SweepSpec.metric_notes(load_yaml(text).get("metrics")):
            say(note)
    scenario = scenario_reference(spec, path)
    try:
        base = resolve(scenario, [])  # a scenario that does not load at all is the spec's error, not rows
    except ValueError as exc:
        raise SweepSpecError(f"{path}: scenario: {' '.join(str(exc).split())}") from None
    _check_levels_stay_apart(spec, path)
    plan = plan_runs(spec)
    if spec.metrics:  # before the first run, not as an error in every row after the last
        problem = _unknown_metric(spec.metrics, base, scenario, plan)
        if problem is not None:
            raise SweepSpecError(f"{path}: metrics: {' '.join(problem.split())}")
    if workers is not None and not ray_address:
        cores = default_workers()
        if workers > cores:  # more processes than cores only add memory and contention
            say(f"--workers {workers} is more than the {cores} cores this machine gives the sweep: using {cores}")
            workers = cores
    order = [r.run_id for r in plan]
    factor_paths = list(spec.factors)

    resolved: dict[tuple[str, ...], Any] = {}  # the same overrides repeat across replicates
    def _resolve(run: PlannedRun) -> _Resolved:
        key = tuple(run.overrides)
        if key not in resolved:
            try:
                scen = resolve(scenario, run.overrides)
                scen_json = scen.model_dump(mode="json")
                if llm_settings:
                    scen.llm = scen.llm.model_copy(update=llm_settings)  # its prices, for the estimate
                resolved[key] = (scen_json, None, estimate_run(scen, spec.steps, llm_model))
            except ValueError as exc:
                resolved[key] = (None, " ".join(str(exc).split())[:500], None)
        scen_json, error, est = resolved[key]
        if error is not None:
            return _Resolved(unresolved_key(scenario, run.overrides, run.seed, spec.steps), error, None)
        return _Resolved(run_key(scen_json, run.seed, spec.steps, llm_model_id or llm_model), None, est)

    store = ResultsStore(out_dir, warn=say)
    store.open(_inert_spec_text(text))  # the folder's copy of the spec, without the secrets it may name
    tally = SweepTally(total=len(plan))
    # local workers start now (their fork server imports the model while the runs are planned)
    executor_obj = make_executor(executor, workers, ray_address) if executor == "process" else None
    try:
        history = list(_journal_costs(store))
        tally.cost_usd = sum(history)
        previous = store.rows()
        todo: list[tuple[PlannedRun, _Resolved]] = []
        for run in plan:
            res = _resolve(run)
            old = previous.get(run.run_id)
            if res.error is not None:
                if not (old and old.get("key") == res.key and old.get("error") == res.error):
                    store.append(_row(run, res.key, {"status": FAILED, "error": res.error}))
                tally.failed += 1
            elif old is not None and old.get("key") == res.key and old.get("status") == OK:
                tally.skipped += 1
            else:
                todo.append((run, res))
        estimates = [res.estimate for _, res in todo if res.estimate is not None]
        estimate = describe_estimate(estimates, len(todo))
        if todo:
            say(estimate)
        if on_update:
            on_update(tally)
        if todo:
            executor_obj = executor_obj or make_executor(executor, workers, ray_address)
            if executor_obj.note:
                say(executor_obj.note)
            from mesa_llm.plugins import current_plugins

            runtime = {"llm_model": llm_model, "llm_settings": llm_settings, "plugins": current_plugins().settings()}
            _execute(spec, scenario, Path(out_dir), todo, executor_obj, store, tally, max_cost_usd, say,
                     on_update, order, factor_paths, runtime)  # fmt: skip
    finally:
        if executor_obj is not None:
            executor_obj.close()
        try:
            store.write_tables(order, factor_paths)
        finally:
            store.close()
    return SweepResult(spec, Path(out_dir), tally, factor_paths, estimate, time.perf_counter() - started)


def _journal_costs(store: ResultsStore) -> Any:
    for row in store.read():
        yield float(row.get("cost_usd") or 0.0)


def _unknown_metric(metrics: list[str], base: Any, scenario: str, plan: list[PlannedRun]) -> str | None:
    """Why one of ``metrics`` is not reported by any run of the sweep, or None: checked against the
    summary of the scenario and of each condition's first cell, each built and not run (a metric
    one condition adds, such as a good's, is accepted)."""
    names: list[list[str]] = []
    seen: set[str] = set()
    for run in [None, *plan]:
        if run is not None and run.condition in seen:
            continue
        try:
            spec = base if run is None else resolve(scenario, run.overrides)
            names.append(summary_metric_names(spec))
        except Exception:  # noqa: BLE001 - a cell that does not build is an error row of its own
            pass
        if run is not None:
            seen.add(run.condition)
    if not names:
        return None  # nothing built: each run checks its metrics
    for metric in metrics:
        problems = [metric_problem(keys, metric) for keys in names]
        if all(p is not None for p in problems):
            return problems[0]
    return None


def inert(value: Any) -> Any:
    """``value`` as results may show it: every string without secrets (a URL's login and query
    tokens, key-shaped strings; see :func:`mesa_llm.llm.errors.redact`), in lists and dicts too."""
    from mesa_llm.llm.errors import redact

    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [inert(v) for v in value]
    if isinstance(value, dict):
        return {k: inert(v) for k, v in value.items()}
    return value


def _inert_spec_text(text: str) -> str:
    """The spec's text with its secrets masked, still a spec: a mask that begins a plain YAML
    scalar is quoted (``***`` would read as an alias), and should the masked text still not parse
    to the masked spec, the masked spec is written as plain YAML instead."""
    import re

    import yaml

    from mesa_llm.safe_yaml import UnsafeYAMLError, load_yaml

    masked = re.sub(r"(^|[\s\[{,:-])(\*\*\*)(?=$|[\s,\]}#])", r"\1'***'", inert(text), flags=re.MULTILINE)
    if masked == text:
        return text
    try:
        wanted = inert(load_yaml(text))
    except UnsafeYAMLError:
        return masked  # the original does not parse either: the spec's own error is said elsewhere
    try:
        if load_yaml(masked) == wanted:
            return masked
    except UnsafeYAMLError:
        pass
    return yaml.safe_dump(wanted, sort_keys=False, allow_unicode=True)


def _check_levels_stay_apart(spec: SweepSpec, path: Path) -> None:
    """Refuse factor levels that differ only in secrets: the results show them redacted, so their
    rows could not be told apart (and their statistics would be pooled)."""
    for factor, levels in spec.factors.items():
        if not isinstance(levels, list):
            continue
        shown: dict[str, Any] = {}
        for level in levels:
            key = repr(inert(level))
            if key in shown and shown[key] != level:
                raise SweepSpecError(
                    f"{path}: factors.{factor}: two levels differ only in credentials (a URL's login or "
                    "token), which results never show: make the levels differ in something else"
                )
            shown[key] = level


def _row(run: PlannedRun, key: str, result: dict[str, Any]) -> dict[str, Any]:
    error = result.get("error")
    row: dict[str, Any] = {
        "run_id": run.run_id, "condition": run.condition, "factors": inert(run.factors), "replicate": run.replicate,
        "seed": run.seed, "key": key, "status": result.get("status"), "error": inert(error) if error is not None else None,
        "metrics": result.get("metrics") or {}, "prompt_tokens": int(result.get("prompt_tokens") or 0),
        "completion_tokens": int(result.get("completion_tokens") or 0),
        "cost_usd": float(result.get("cost_usd") or 0.0), "wall_s": result.get("wall_s"),
        "recording": result.get("recording"),
    }  # fmt: skip
    row["tokens"] = row["prompt_tokens"] + row["completion_tokens"]
    return row


def _execute(
    spec: SweepSpec,
    scenario: str,
    out_dir: Path,
    todo: list[tuple[PlannedRun, _Resolved]],
    executor: Any,
    store: ResultsStore,
    tally: SweepTally,
    budget: float | None,
    say: Callable[[str], None],
    on_update: Callable[[SweepTally], None] | None,
    order: list[str],
    factor_paths: list[str],
    runtime: dict[str, Any],
) -> None:
    """Dispatch ``todo`` (at most ``capacity`` in flight), gating every LLM run on the budget."""
    queue = list(todo)
    in_flight: dict[str, tuple[PlannedRun, _Resolved, float]] = {}  # run id -> run, key, cost reserved
    pilot_pending = budget is not None and any(r.estimate is not None and r.estimate.uses_llm for _, r in queue)

    def task(run: PlannedRun, res: _Resolved, cap: float | None) -> dict[str, Any]:
        return {"run": run.to_dict(), "scenario": scenario, "steps": spec.steps, "out_dir": str(out_dir),
                "metrics": spec.metrics, "timeout_s": spec.timeout_s, "max_cost_usd": cap, "key": res.key, **runtime}  # fmt: skip

    warned: set[str] = set()

    def record(run: PlannedRun, res: _Resolved, result: dict[str, Any]) -> None:
        store.append(_row(run, res.key, result))
        for warning in result.get("warnings") or []:  # a plugin metric that failed (its value: None)
            if warning not in warned:
                warned.add(warning)
                say(f"{run.run_id}: {warning}")
        if result.get("status") == OK:
            tally.done += 1
        elif result.get("status") == NOT_RUN_BUDGET:
            tally.not_run += 1
        else:
            tally.failed += 1
        tally.cost_usd += float(result.get("cost_usd") or 0.0)
        store.write_tables(order, factor_paths, every_s=TABLE_INTERVAL_S)
        if on_update:
            on_update(tally)

    while queue or in_flight:
        while queue:
            run, res = queue[0]
            uses_llm = res.estimate is not None and res.estimate.uses_llm
            # a budgeted LLM run waits for a free worker (its reservation is then near its start)
            if len(in_flight) >= (executor.capacity if budget is not None and uses_llm else executor.prefetch):
                break
            cap: float | None = None
            if budget is not None and uses_llm:
                reserved = sum(c for _, _, c in in_flight.values())
                available = budget - tally.cost_usd - reserved
                if available <= 1e-12:
                    if in_flight:
                        break  # wait: a run in flight may give back part of its reservation
                    spent_out = [(r, s) for r, s in queue if s.estimate is not None and s.estimate.uses_llm]
                    for run_left, res_left in spent_out:  # spent: the rest are rows, not runs
                        record(run_left, res_left, {"status": NOT_RUN_BUDGET, "error": f"the sweep's budget of ${budget:g} is spent"})
                    queue = [(r, s) for r, s in queue if not (s.estimate is not None and s.estimate.uses_llm)]
                    continue
                cap = min(available, (budget - tally.cost_usd) / executor.capacity)
                if pilot_pending:
                    cap = available  # the pilot runs alone with everything left
            queue.pop(0)
            tally.executed += 1
            executor.submit(run.run_id, task(run, res, cap))
            in_flight[run.run_id] = (run, res, cap or 0.0)
            if budget is not None and uses_llm and pilot_pending:
                break  # a pilot run alone: its real cost refines the estimate before the rest start
        if not in_flight:
            continue
        for run_id, result in executor.wait():
            run, res, _ = in_flight.pop(run_id)
            record(run, res, result)
            if pilot_pending and res.estimate is not None and res.estimate.uses_llm:
                pilot_pending = False
                left = sum(1 for _, r in queue if r.estimate is not None and r.estimate.uses_llm)
                cost = float(result.get("cost_usd") or 0.0)
                say(f"pilot run {run_id}: ${cost:.4f}; the {left} LLM runs to go would cost ~${cost * left:,.4f}")
