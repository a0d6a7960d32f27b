"""The terminal side of ``mesa-llm sweep`` and ``mesa-llm sweep-report``: the progress bar, the
tables and the JSON; cli.py only declares the options and turns a :class:`CommandError` into one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from mesa_llm.terminal import cell, inert


class CommandError(Exception):
    """A sweep command that cannot go on: one line for the user."""


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def sweep_command(
    spec: Path,
    out: Path,
    *,
    workers: int | None,
    executor: str,
    ray_address: str | None,
    max_cost_usd: float | None,
    as_json: bool,
    local: bool = False,
    local_model: Path | None = None,
) -> None:
    """Run or resume a sweep, with a progress bar on stderr, then print its statistics; with
    ``local``, serve a small real LLM (llama.cpp) for every LLM population, as ``run --local`` does."""
    if not (local or local_model is not None):
        _sweep(spec, out, workers, executor, ray_address, max_cost_usd, as_json, None, None)
        return
    from mesa_llm.llm.local_server import LOCAL_MODEL_NAME, LocalLLMServer, LocalModelError
    from mesa_llm.scenario import LLMSettings

    try:
        server = LocalLLMServer(local_model).start()
    except LocalModelError as exc:
        raise CommandError(str(exc)) from None
    try:
        _err().print(f"note: serving {inert(server.model_path.name)} locally at {server.api_base} for every LLM population", markup=False)
        settings = server.settings_for(LOCAL_MODEL_NAME, LLMSettings())
        # the weights' file names the model in each run's key; the server's address does not
        _sweep(spec, out, workers, executor, ray_address, max_cost_usd, as_json,
               LOCAL_MODEL_NAME, settings, f"{LOCAL_MODEL_NAME}@{server.model_path.name}")  # fmt: skip
    finally:
        server.stop()


def _sweep(
    spec: Path, out: Path, workers: int | None, executor: str, ray_address: str | None,
    max_cost_usd: float | None, as_json: bool, llm_model: str | None, llm_settings: dict[str, Any] | None,
    llm_model_id: str | None = None,
) -> None:  # fmt: skip
    from mesa_llm.experiments.executors import ExecutorError
    from mesa_llm.experiments.spec import SweepSpecError
    from mesa_llm.experiments.stats import load_results, sweep_statistics
    from mesa_llm.experiments.store import StoreError
    from mesa_llm.experiments.sweep import SweepTally, run_sweep

    console = _err()
    progress = Progress(
        TextColumn(f"[bold]{escape(inert(spec.stem))}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )
    task_id = None

    def on_update(t: SweepTally) -> None:
        nonlocal task_id
        stats = f"done {t.done}  failed {t.failed}  skipped {t.skipped}" + (f"  not run {t.not_run}" if t.not_run else "") + f"  ${t.cost_usd:.4f}"
        if task_id is None:
            task_id = progress.add_task("sweep", total=t.total, stats=stats)
        progress.update(task_id, completed=t.finished, stats=stats)

    def note(text: str) -> None:
        progress.console.print(f"note: {inert(text)}", markup=False, highlight=False, soft_wrap=True)

    try:
        with progress:
            result = run_sweep(spec, out, workers=workers, executor=executor, ray_address=ray_address,
                               max_cost_usd=max_cost_usd, notify=note, on_update=on_update,
                               llm_model=llm_model, llm_settings=llm_settings, llm_model_id=llm_model_id)  # fmt: skip
        frame, factor_paths, conditions = load_results(out)
        stats = sweep_statistics(frame, factor_paths, conditions)
    except (SweepSpecError, StoreError, ExecutorError) as exc:
        raise CommandError(str(exc)) from None
    except KeyboardInterrupt:
        raise CommandError(f"interrupted: the rows finished so far are in {out}; run the same command to resume") from None
    t = result.tally
    summary = {
        "sweep": result.spec.name, "out": str(out), "total": t.total, "ok_this_time": t.done, "failed": t.failed,
        "skipped_done_before": t.skipped, "not_run_budget": t.not_run, "executed": t.executed,
        "cost_usd": t.cost_usd, "wall_s": round(result.wall_s, 3), "estimate": result.estimate,
        "results": {"parquet": str(out / "results.parquet"), "csv": str(out / "results.csv")},
    }  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps({**summary, "statistics": stats}, allow_nan=False, default=str) + "\n")
        return
    print_statistics(stats, factor_paths)
    failures = frame[~frame["status"].isin(["ok", "not_run_budget"])]
    for (condition, error), group in list(failures.groupby(["condition", "error"], dropna=False))[:5]:
        console.print(f"failed: {inert(condition)} ({len(group)} runs): {inert(error)}", markup=False, highlight=False, soft_wrap=True)
    Console(highlight=False).print(
        f"{t.total} runs: {t.done} ran ok, {t.failed} failed, {t.skipped} done before, {t.not_run} not run (budget); "
        f"cost ${t.cost_usd:.4f}; {result.wall_s:.1f} s\nresults: {inert(out / 'results.parquet')} and {inert(out / 'results.csv')}",
        markup=False,
    )


def print_statistics(stats: dict[str, Any], factor_paths: list[str]) -> None:
    """Per-cell means with CIs, and the paired comparisons, as rich tables on stdout."""
    console = Console(highlight=False)
    # A metric with one value in every run of every cell (or none at all) tells no cells apart: say it
    # once in a line instead of spending a column on it.
    constant: dict[str, Any] = {}
    for m in stats["metrics"]:
        cells = [row["metrics"][m] for row in stats["cells"]]
        means = {d["mean"] for d in cells}
        if len(means) == 1 and all(d["ci_low"] is None or d["ci_low"] == d["ci_high"] for d in cells):
            constant[m] = means.pop()
    shown = [m for m in stats["metrics"] if m not in constant]
    table = Table(title="cells: mean [95% CI] (n)")
    table.add_column("condition")
    for f in factor_paths:
        table.add_column(cell(f), justify="right")
    for m in shown:
        table.add_column(cell(m), justify="right")
    for row in stats["cells"]:
        values = []
        for m in shown:
            d = row["metrics"][m]
            if d["mean"] is None:
                values.append("-")
            elif d["ci_low"] is None:
                values.append(f"{d['mean']:.4g} ({d['n']})")
            else:
                values.append(f"{d['mean']:.4g} [{d['ci_low']:.4g}, {d['ci_high']:.4g}] ({d['n']})")
        table.add_row(cell(row["condition"]), *[cell(row["factors"][f]) for f in factor_paths], *values)
    console.print(table)
    if constant:
        same = ", ".join(f"{m} = {'-' if v is None else f'{v:.4g}'}" for m, v in constant.items())
        console.print(f"the same in every run: {inert(same)}", markup=False, soft_wrap=True)
    rows = [c for c in stats["comparisons"] if c["n_pairs"]]
    if not rows:
        return
    table = Table(title="paired comparisons (same seeds; p Holm-adjusted per metric)")
    for column in ("metric", "A − B", *factor_paths, "pairs", "mean diff [95% CI]", "d_z", "p t (Holm)", "p Wilcoxon (Holm)"):
        table.add_column(cell(column))

    def p(v: float | None) -> str:
        return "-" if v is None else f"{v:.3g}"

    for c in rows:
        ci = "" if c["diff_ci_low"] is None else f" [{c['diff_ci_low']:.4g}, {c['diff_ci_high']:.4g}]"
        table.add_row(
            cell(c["metric"]), cell(f"{c['condition_a']} − {c['condition_b']}"),
            *[cell(c["factors"][f]) for f in factor_paths], str(c["n_pairs"]),
            f"{c['mean_diff']:.4g}{ci}", p(c["effect_size_dz"]), p(c["p_t_holm"]), p(c["p_wilcoxon_holm"]),
        )  # fmt: skip
    console.print(table)


def report_command(out_dir: Path, html: Path | None, as_json: bool) -> None:
    """Statistics of a finished (or partial) sweep folder; an HTML report with ``html``."""
    from mesa_llm.experiments.report import render_sweep_report
    from mesa_llm.experiments.spec import SweepSpecError
    from mesa_llm.experiments.stats import load_results, sweep_statistics
    from mesa_llm.experiments.store import StoreError

    try:
        frame, factor_paths, conditions = load_results(out_dir)
        stats = sweep_statistics(frame, factor_paths, conditions)
        if as_json:
            sys.stdout.write(json.dumps(stats, allow_nan=False, default=str) + "\n")
        else:
            print_statistics(stats, factor_paths)
        if html is not None:
            written = render_sweep_report(out_dir, html)
            _err().print(f"report: {inert(written)}", markup=False)
    except (SweepSpecError, StoreError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"{html}: cannot write the report ({exc.strerror or exc})") from None
