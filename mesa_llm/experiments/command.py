"""The terminal side of ``mesa-llm sweep`` and ``mesa-llm sweep-report``: the progress bar, the
tables and the JSON; cli.py only declares the options and turns a :class:`CommandError` into one line."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from rich import box
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
from rich.text import Text

from mesa_llm.terminal import inert


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
    replicates: int | None = None,
    steps: int | None = None,
) -> None:
    """Run or resume a sweep, with a progress bar on stderr, then print its statistics; with
    ``local``, serve a small real LLM (llama.cpp) for every LLM population, as ``run --local`` does;
    ``replicates`` and ``steps`` replace the spec's (recorded in the folder's manifest)."""
    counts = {"replicates": replicates, "steps": steps}
    if not (local or local_model is not None):
        _sweep(spec, out, workers, executor, ray_address, max_cost_usd, as_json, None, None, counts=counts)
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
               LOCAL_MODEL_NAME, settings, f"{LOCAL_MODEL_NAME}@{server.model_path.name}", counts=counts)  # fmt: skip
    finally:
        server.stop()


def _sweep(
    spec: Path, out: Path, workers: int | None, executor: str, ray_address: str | None,
    max_cost_usd: float | None, as_json: bool, llm_model: str | None, llm_settings: dict[str, Any] | None,
    llm_model_id: str | None = None, counts: dict[str, int | None] | None = None,
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
                               llm_model=llm_model, llm_settings=llm_settings, llm_model_id=llm_model_id,
                               **(counts or {}))  # fmt: skip
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
        f"cost ${t.cost_usd:.4f}; {result.wall_s:.1f} s",
        markup=False,
    )
    for path in (out / "results.parquet", out / "results.csv"):  # a path on a line of its own, never folded
        Console(highlight=False).print(f"results: {inert(path)}", markup=False, soft_wrap=True)


def print_statistics(stats: dict[str, Any], factor_paths: list[str], console: Console | None = None) -> None:
    """Per-cell means with CIs, and per metric its paired tests (condition comparisons, factor main
    effects and interactions), as rich tables on stdout that fit the terminal: a metric with one
    value in every run is one line, the cells' metrics are split over as many tables as the width
    needs, and names are wrapped at their dots, never cut."""
    console = console or Console(highlight=False)
    constant: dict[str, float | None] = dict(stats.get("constant_metrics") or {})
    for m in stats["metrics"]:  # no value in any run tells no cells apart either
        if all(row["metrics"][m]["mean"] is None for row in stats["cells"]):
            constant[m] = None
    if constant:
        same = ", ".join(f"{inert(m)} = {'-' if v is None else num(v, 6)}" for m, v in constant.items())
        console.print(f"the same in every run: {same}", markup=False, highlight=False, soft_wrap=True)
    metrics = [m for m in stats["metrics"] if m not in constant]
    _print_cells(console, stats, factor_paths, metrics)
    for metric in metrics:
        _print_tests(console, stats, metric)


def wrap_name(name: str, width: int = 16) -> str:
    """``name`` on lines of at most ``width`` characters, broken after a dot or an underscore (a
    part longer than that stays whole, for the table to fold): every character is kept."""
    parts = re.findall(r"[^._]+[._]?|[._]", name) or [name]
    lines: list[str] = []
    line = ""
    for part in parts:
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    lines.append(line)
    return "\n".join(lines)


def num(value: float, digits: int = 4) -> str:
    """A number for a table: ``digits`` significant digits, but amounts too large for them (up to
    a trillion) whole, with thousands separators (35,919, not 3.592e+04)."""
    if 10**digits <= abs(value) < 1e12:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _mean_text(d: dict[str, Any], same_n: bool) -> str:
    if d["mean"] is None:
        return "-"
    n = "" if same_n else f" ({d['n']})"
    if d["ci_low"] is None:
        return f"{num(d['mean'])}{n}"
    half = max(d["ci_high"] - d["mean"], d["mean"] - d["ci_low"])  # a t interval: symmetric
    return f"{num(d['mean'])} ±{num(half, 2)}{n}"


def _width(text: str) -> int:
    return max((len(line) for line in text.split("\n")), default=0)


def _print_cells(console: Console, stats: dict[str, Any], factor_paths: list[str], metrics: list[str]) -> None:
    cells = stats["cells"]
    if not cells:
        return
    ns = {d["n"] for c in cells for m in metrics if (d := c["metrics"][m])["mean"] is not None}
    same_n = len(ns) == 1
    several = len({c["condition"] for c in cells}) > 1
    keys: list[tuple[str, list[str]]] = []  # header, values (the columns that name a cell)
    if several or not factor_paths:
        keys.append(("condition", [inert(c["condition"]) for c in cells]))
    keys += [(wrap_name(inert(f)), [inert(c["factors"][f]) for c in cells]) for f in factor_paths]
    columns = [(wrap_name(inert(m)), [_mean_text(c["metrics"][m], same_n) for c in cells]) for m in metrics]
    if not columns:  # every metric said in a line: the cells are still listed, with their runs
        columns = [("runs ok", [str(max((d["n"] for d in c["metrics"].values()), default=0)) for c in cells])]

    def need(col: tuple[str, list[str]]) -> int:  # characters of one column: content, padding, border
        return max([_width(col[0]), *(_width(v) for v in col[1])]) + 3

    base = 1 + sum(need(k) for k in keys)
    chunks: list[list[tuple[str, list[str]]]] = [[]]
    used = base
    for col in columns:
        if chunks[-1] and used + need(col) > console.width:
            chunks.append([])
            used = base
        chunks[-1].append(col)
        used += need(col)
    n_text = f"; n = {ns.pop()} runs per cell" if same_n and ns else ""
    for i, chunk in enumerate(chunks):
        part = f" ({i + 1}/{len(chunks)})" if len(chunks) > 1 else ""
        title = f"cells: mean ±95% CI half-width{n_text}{part}" if metrics else "cells"
        table = Table(title=title)
        for header, _ in keys:
            table.add_column(Text(header), overflow="fold")
        for header, _ in chunk:
            table.add_column(Text(header), justify="right", overflow="fold")
        for row in range(len(cells)):
            table.add_row(*[Text(k[1][row]) for k in keys], *[Text(c[1][row]) for c in chunk])
        console.print(table)


def _short_test(name: str) -> str:
    if name == "paired t":
        return "t"
    if name.startswith("paired t"):
        return "t, all 0"  # every pair equal: p = 1
    return "none"


#: longest word of a label kept on one line; longer ones (a factor's path) break after a dot
LONG_WORD = 24


def _break_words(text: str) -> str:
    return " ".join(wrap_name(w, LONG_WORD) if len(w) > LONG_WORD else w for w in text.split(" "))


def _compared(c: dict[str, Any]) -> str:
    if "condition_a" in c:
        where = ", ".join(f"{k} {v}" for k, v in c["factors"].items())
        return f"{c['condition_a']} − {c['condition_b']}" + (f" at {where}" if where else "")
    if c["kind"] == "main":
        return f"{c['factor']}: {c['level_a']} − {c['level_b']}"
    return f"interaction: {c['factor']} {c['level_a']} − {c['level_b']} at {c['factor_2']} {c['level_2a']} vs {c['level_2b']}"


def _print_tests(console: Console, stats: dict[str, Any], metric: str) -> None:
    rows = [c for c in stats["comparisons"] + stats.get("effects", []) if c["metric"] == metric and c["n_pairs"]]
    if not rows:
        return

    def p(v: float | None) -> str:
        return "-" if v is None else f"{v:.3g}"

    table = Table(
        title=Text(f"{inert(metric)}: paired tests within replicate seeds"),
        caption="test t: paired t-test (t, all 0: every pair equal, p = 1); p Holm: adjusted within this metric",
        box=box.SIMPLE_HEAD,
    )
    labels = [_break_words(inert(_compared(c))) for c in rows]
    # as wide as the longest word of a label (a factor's path, broken at its dots), so words wrap whole
    longest = max(len(word) for label in labels for word in label.split())
    table.add_column("compared", overflow="fold", ratio=1, min_width=min(longest, LONG_WORD))
    table.add_column("test", no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    table.add_column("A − B [95% CI]", justify="right")
    table.add_column("p", justify="right", no_wrap=True)
    table.add_column("p Holm", justify="right", no_wrap=True)
    for c, label in zip(rows, labels, strict=True):
        ci = "" if c["diff_ci_low"] is None else f"\n[{num(c['diff_ci_low'])}, {num(c['diff_ci_high'])}]"
        estimate = "-" if c["mean_diff"] is None else f"{num(c['mean_diff'])}{ci}"
        table.add_row(Text(label), _short_test(c.get("test", "paired t")), str(c["n_pairs"]),
                      estimate, p(c["p_t"]), p(c["p_t_holm"]))  # fmt: skip
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
            _err().print(f"report: {inert(written)}", markup=False, soft_wrap=True)
    except (SweepSpecError, StoreError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"{html}: cannot write the report ({exc.strerror or exc})") from None
