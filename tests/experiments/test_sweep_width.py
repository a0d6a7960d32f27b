"""Sweep tables, `compare` and recording paths on an 80-column terminal: names that tell things
apart are wrapped (at their dots), never cut to a shared prefix; paths are printed whole on lines
of their own."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from rich.console import Console
from typer.testing import CliRunner

from mesa_llm.cli import app
from mesa_llm.experiments.command import print_statistics, wrap_name
from mesa_llm.experiments.stats import sweep_statistics
from mesa_llm.experiments.store import results_frame

runner = CliRunner()
METRICS = ["negotiation.agreements", "negotiation.agreement_rate", "negotiation.mean_rounds_to_agreement",
           "negotiation.mean_distance_to_pareto"]  # fmt: skip
FACTOR = "populations.0.params.concession_rate"


def _stats() -> tuple[dict[str, Any], list[str]]:
    rows: dict[str, dict[str, Any]] = {}
    order = []
    for r in range(4):
        for cond in ("boulware_buyers", "conceder_buyers"):
            for i, level in enumerate((0.1, 0.5)):
                run_id = f"{cond}.p{i}.r{r}"
                order.append(run_id)
                wobble = 0.1 * ((r * 7 + 3 * i + 2 * (cond == "conceder_buyers")) % 5)  # not a constant difference
                metrics = {m: float(j + r + i + (cond == "conceder_buyers")) + 0.37 * r * r + wobble
                           for j, m in enumerate(METRICS)}  # fmt: skip
                metrics["fees.total"] = 0.0  # one value everywhere: a line, not a column
                rows[run_id] = {"run_id": run_id, "condition": cond, "factors": {FACTOR: level}, "replicate": r,
                                "seed": 10 + r, "key": run_id, "status": "ok", "error": None, "metrics": metrics,
                                "prompt_tokens": 0, "completion_tokens": 0, "tokens": 0, "cost_usd": 0.0,
                                "wall_s": 0.1, "recording": None}  # fmt: skip
    frame = results_frame(rows, order, [FACTOR])
    return sweep_statistics(frame, [FACTOR], ["boulware_buyers", "conceder_buyers"]), [FACTOR]


def _lines(text: str) -> list[str]:
    return [re.sub(r"[│┃┏┓┗┛┡┩└┘┌┐├┤┼╇╋━─┳┻┬┴]", " ", line) for line in text.splitlines()]


def test_sweep_tables_at_80_columns_keep_every_distinguishing_part() -> None:
    stats, factors = _stats()
    out = io.StringIO()
    print_statistics(stats, factors, Console(width=80, file=out, highlight=False, color_system=None))
    text = out.getvalue()
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "…" not in text  # nothing cut
    assert "the same in every run: fees.total = 0" in text and text.count("fees.total") == 1  # no column
    lines = _lines(text)
    cells_part = _lines(text.split("paired tests within")[0])  # the cells tables, before the tests
    for name in [*METRICS, FACTOR]:  # every piece of every wrapped header is in them, whole
        for piece in wrap_name(name).split("\n"):
            assert any(piece in line for line in cells_part), (piece, text)
    for condition in ("boulware_buyers", "conceder_buyers"):
        assert sum(condition in line for line in cells_part) == 2 * 2  # 2 levels x 2 tables, never folded
    for metric in METRICS:  # each metric's tests under its own full name
        assert f"{metric}: paired tests within replicate seeds" in text
    for cell in stats["cells"]:  # every value whole (a table wider than planned would fold them)
        for metric in METRICS:
            d = cell["metrics"][metric]
            half = max(d["ci_high"] - d["mean"], d["mean"] - d["ci_low"])
            assert f"{d['mean']:.4g} ±{half:.2g}" in text
    # the main effect's p and its Holm-adjusted p (within the metric's family of three tests)
    e = next(e for e in stats["effects"] if e["metric"] == METRICS[0] and e["kind"] == "main")
    assert e["p_t_holm"] != e["p_t"]
    assert any(f"{e['p_t']:.3g}" in line and line.rstrip().endswith(f"{e['p_t_holm']:.3g}") for line in lines)
    assert text.count("boulware_buyers −") == 2 * len(METRICS)  # a comparison per factor level and metric
    assert "concession_rate: 0.1 −" in text and "concession_rate 0.1" in text
    assert " p Holm" in text and "within this metric" in text


def test_wrap_name_breaks_after_dots_and_keeps_every_character() -> None:
    assert wrap_name("negotiation.mean_rounds_to_agreement") == "negotiation.\nmean_rounds_to_\nagreement"
    assert wrap_name("trades") == "trades"
    assert wrap_name("a.b", 16) == "a.b"
    assert wrap_name("abcdefgh.ijklmno") == "abcdefgh.ijklmno"  # exactly 16: one line
    assert wrap_name("abcdefgh.ijklmnop") == "abcdefgh.\nijklmnop"
    for name in METRICS + [FACTOR, "x" * 40, "plugins.sample_trades_per_step.mean"]:
        assert wrap_name(name).replace("\n", "") == name
        assert all(len(line) <= 16 or "." not in line and "_" not in line for line in wrap_name(name).split("\n"))


def test_compare_shows_both_file_names_whole_at_80_columns(tmp_path: Path) -> None:
    folder = tmp_path / "a_long_folder_name_for_the_recordings_of_one_experiment"
    for seed in ("3", "4"):
        ran = runner.invoke(app, ["run", "double_auction", "--steps", "1", "--seed", seed, "--out", str(folder)])
        assert ran.exit_code == 0, ran.output
    a, b = sorted(folder.glob("*.jsonl"))
    assert a.name[:18] == b.name[:18]  # double_auction_see... the names differ later on
    result = runner.invoke(app, ["compare", str(a), str(b)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"A: {a}" in lines and f"B: {b}" in lines


def test_recording_and_results_paths_are_never_wrapped(tmp_path: Path) -> None:
    folder = tmp_path / "recordings_of_a_study_with_a_rather_long_name" / "and_a_second_level_of_folders"
    ran = runner.invoke(app, ["run", "double_auction", "--steps", "1", "--out", str(folder)], env={"COLUMNS": "80"})
    assert ran.exit_code == 0, ran.output
    (recording,) = folder.glob("*.jsonl")
    assert f"recording: {recording}" in ran.output.splitlines()
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: w\nscenario: double_auction\nsteps: 1\nmetrics: [trades]\n", encoding="utf-8")
    out = tmp_path / "sweeps_of_a_study_with_a_rather_long_name_to_fill_the_line" / "out"
    swept = runner.invoke(app, ["sweep", str(spec), "--out", str(out), "--workers", "1"], env={"COLUMNS": "80"})
    assert swept.exit_code == 0, swept.output
    assert f"results: {out / 'results.parquet'}" in swept.output.splitlines()
    assert f"results: {out / 'results.csv'}" in swept.output.splitlines()


def test_cells_are_listed_when_every_metric_is_said_in_a_line() -> None:
    rows: dict[str, dict[str, Any]] = {}
    for i, level in enumerate(("calm", "panic")):
        rows[f"d.p{i}.r0"] = {"run_id": f"d.p{i}.r0", "condition": "d", "factors": {"regime": level}, "replicate": 0,
                              "seed": 1, "key": "k", "status": "ok", "error": None,
                              "metrics": {"trades": 3.0, "smiths_alpha": None, "late": [None, 2.0][i]}, "prompt_tokens": 0,
                              "completion_tokens": 0, "tokens": 0, "cost_usd": 0.0, "wall_s": 0.1, "recording": None}  # fmt: skip
    stats = sweep_statistics(results_frame(rows, list(rows), ["regime"]), ["regime"])
    out = io.StringIO()
    print_statistics(stats, ["regime"], Console(width=80, file=out, highlight=False, color_system=None))
    text = out.getvalue()
    assert "the same in every run: trades = 3, late = 2, smiths_alpha = -" in text  # late: one run reported it
    assert "calm" in text and "panic" in text and "runs ok" in text
