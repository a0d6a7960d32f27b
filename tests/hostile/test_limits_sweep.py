"""Sweep limits that hold end to end: --workers capped at the cores, factor levels a results table
can store (or the spec refused up front in one line), journal rows validated field by field when
read back (a bad row is skipped with a one-line note naming its line, never a crash), and metrics
the run summary does not have refused before the first run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from mesa_llm.cli import app
from mesa_llm.experiments import run_sweep
from mesa_llm.experiments.executors import default_workers
from mesa_llm.experiments.spec import SweepSpecError, load_sweep_spec
from mesa_llm.experiments.store import ResultsStore, StoreError, read_journal

runner = CliRunner()
SMALL = "scenario: double_auction\nsteps: 1\nseed: 3\n"


def _one_line(output: str) -> str:
    assert "Traceback" not in output, output[-2000:]
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


def _spec(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------- --workers


def test_workers_are_capped_at_the_cores_with_a_note(tmp_path, monkeypatch):
    import mesa_llm.experiments.sweep as sweep_module

    asked: list[int | None] = []
    real = sweep_module.make_executor

    def spy(kind, workers=None, address=None):
        asked.append(workers)
        return real(kind, workers, address)

    monkeypatch.setattr(sweep_module, "make_executor", spy)
    spec = _spec(tmp_path, "name: w\n" + SMALL + "replicates: 2\n")
    notes: list[str] = []
    result = run_sweep(spec, tmp_path / "out", workers=64, notify=notes.append)
    cores = default_workers()
    assert asked and all(w is not None and w <= cores for w in asked), asked
    assert any("--workers 64" in n and f"{cores} core" in n for n in notes), notes
    assert result.tally.done == 2
    notes.clear()
    run_sweep(_spec(tmp_path, "name: w2\n" + SMALL), tmp_path / "out2", workers=cores, notify=notes.append)
    assert not any("--workers" in n for n in notes)  # at the cores: no note


def test_the_cli_notes_the_cap_on_stderr(tmp_path):
    spec = _spec(tmp_path, "name: w\n" + SMALL)
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "out"), "--workers", "500", "--json"])
    assert result.exit_code == 0, result.output
    assert "--workers 500" in result.stderr and "core" in result.stderr
    json.loads(result.stdout.strip().splitlines()[-1])  # stdout stays one JSON object


# ---------------------------------------------------------------------------------- levels


@pytest.mark.parametrize(
    ("levels", "why"),
    [
        ("[3, 100000000000000000000000]", "100000000000000000000000"),
        ("[3, -9223372036854775809]", "-9223372036854775809"),
        ("[2024-01-01]", "not a JSON value"),
        ("[!!binary aGVsbG8=]", "not a JSON value"),
        ("['" + "x" * 5000 + "']", "longer than"),
    ],
    ids=["10**23", "below_int64", "date", "binary", "huge_text"],
)
def test_a_level_no_table_can_store_refuses_the_spec_in_one_line(tmp_path, levels, why):
    spec = _spec(tmp_path, f"name: big\n{SMALL}factors:\n  populations.0.count: {levels}\n")
    with pytest.raises(SweepSpecError, match="factors.populations.0.count"):
        load_sweep_spec(spec)
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "out")], env={"COLUMNS": "1000"})
    assert result.exit_code == 2
    line = _one_line(result.output)
    assert str(spec) in line and "factors.populations.0.count" in line and why in line[:400], line
    assert not (tmp_path / "out").exists()


def test_a_condition_value_no_table_can_store_is_refused_too(tmp_path):
    spec = _spec(tmp_path, f"name: c\n{SMALL}conditions:\n  a: {{seed: 2024-01-01}}\n")
    with pytest.raises(SweepSpecError, match="conditions.a.seed: .*not a JSON value"):
        load_sweep_spec(spec)


def test_an_integer_range_past_int64_is_refused(tmp_path):
    spec = _spec(tmp_path, f"name: r\n{SMALL}design: lhs\nsamples: 2\n"
                           "factors:\n  populations.0.count: {low: 1, high: 1.0e+30, integer: true}\n")  # fmt: skip
    with pytest.raises(SweepSpecError, match="factors.populations.0.count"):
        load_sweep_spec(spec)


def test_levels_that_fit_still_make_error_rows_and_tables(tmp_path):
    # 2**62 fits int64: the scenario refuses it (an error row), and the table stores the level exactly
    spec = _spec(tmp_path, f"name: fits\n{SMALL}factors:\n  populations.0.count: [3, 4611686018427387904]\n")
    result = run_sweep(spec, tmp_path / "out", workers=1)
    assert result.tally.done == 1 and result.tally.failed == 1
    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert table["populations.0.count"].tolist() == [3, 4611686018427387904]
    again = run_sweep(spec, tmp_path / "out", workers=1)  # resumes without a crash
    assert again.tally.skipped == 1


def test_store_keeps_a_row_with_non_finite_numbers_as_nulls(tmp_path):
    store = ResultsStore(tmp_path / "out")
    store.open("name: x\n")
    try:
        store.append({"run_id": "default.p0.r0", "condition": "default", "factors": {}, "replicate": 0, "seed": 1,
                      "key": "k", "status": "ok", "error": None, "metrics": {"efficiency": float("nan")},
                      "prompt_tokens": 0, "completion_tokens": 0, "tokens": 0, "cost_usd": 0.0,
                      "wall_s": float("inf"), "recording": None})  # fmt: skip
    finally:
        store.close()
    (row,) = list(read_journal(tmp_path / "out" / "journal.jsonl"))
    assert row["metrics"] == {"efficiency": None} and row["wall_s"] is None


# ---------------------------------------------------------------------------------- journal


BAD_ROWS = [
    ({"metrics": [1, 2]}, "metrics"),
    ({"factors": "k=1"}, "factors"),
    ({"replicate": "zero"}, "replicate"),
    ({"tokens": 10**30}, "tokens"),
    ({"status": 5}, "status"),
    ({"cost_usd": "cheap"}, "cost_usd"),
    ({"metrics": {"efficiency": {"nested": 1}}}, "metrics.efficiency"),
    ({"seed": None}, "seed"),
    ({"cost_usd": 10**400}, "cost_usd"),
    ({"status": ["ok"]}, "status"),
]


def test_journal_rows_of_the_wrong_shape_are_skipped_with_a_note_and_rerun(tmp_path):
    spec = _spec(tmp_path, "name: j\n" + SMALL + "replicates: 3\n")
    out = tmp_path / "out"
    run_sweep(spec, out, workers=1)
    journal = out / "journal.jsonl"
    rows = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3
    lines = [json.dumps(rows[0])]
    for change, _ in BAD_ROWS:  # each a later, broken version of run 1
        lines.append(json.dumps({**rows[1], **change}))
    lines.append('["not", "a", "row"]')
    lines.append(json.dumps({k: v for k, v in rows[2].items() if k != "status"}))  # a field missing
    journal.write_text("\n".join(lines) + "\n", encoding="utf-8")
    notes: list[str] = []
    result = run_sweep(spec, out, workers=1, notify=notes.append)
    skipped = [n for n in notes if "journal.jsonl: line" in n]
    assert len(skipped) == len(BAD_ROWS) + 2, notes
    for number, (_, field) in enumerate(BAD_ROWS, start=2):
        assert any(f"line {number}:" in n and field in n for n in skipped), (number, field, skipped)
    assert all(len(n.splitlines()) == 1 for n in notes)
    assert result.tally.skipped == 1 and result.tally.executed == 2  # runs 1 and 2 ran again
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == 3 and (table["status"] == "ok").all()
    report = runner.invoke(app, ["sweep-report", str(out), "--json"])
    assert report.exit_code == 0, report.output


def test_a_garbled_line_in_the_middle_is_skipped_not_fatal(tmp_path):
    spec = _spec(tmp_path, "name: g\n" + SMALL + "replicates: 2\n")
    out = tmp_path / "out"
    run_sweep(spec, out, workers=1)
    journal = out / "journal.jsonl"
    first, second = journal.read_text(encoding="utf-8").splitlines()
    journal.write_text(first + "\n{garbled\n" + second + "\n", encoding="utf-8")
    notes: list[str] = []
    result = run_sweep(spec, out, workers=1, notify=notes.append)
    assert result.tally.skipped == 2 and result.tally.executed == 0
    assert any("journal.jsonl: line 2:" in n for n in notes), notes


# ---------------------------------------------------------------------------------- metrics


def test_an_unknown_metric_is_refused_before_the_first_run(tmp_path):
    spec = _spec(tmp_path, "name: m\n" + SMALL + "replicates: 2\nmetrics: [allocative_efficiency, no_such_metric]\n")
    with pytest.raises(SweepSpecError, match="metrics: 'no_such_metric' is not in the run summary"):
        run_sweep(spec, tmp_path / "out", workers=1)
    assert not (tmp_path / "out").exists()
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "out")], env={"COLUMNS": "1000"})
    assert result.exit_code == 2 and "no_such_metric" in _one_line(result.output)
    ambiguous = _spec(tmp_path, "name: a\n" + SMALL + "metrics: [price]\n", "amb.yaml")  # mean_, last_, ce_price
    with pytest.raises(SweepSpecError, match="metrics: 'price'"):
        run_sweep(ambiguous, tmp_path / "out2", workers=1)


def test_a_metric_only_one_condition_has_is_accepted(tmp_path):
    two_goods = ("[{name: widget, reference_price: 100, min_price: 1, max_price: 200}, "
                 "{name: gadget, reference_price: 50, min_price: 1, max_price: 100}]")  # fmt: skip
    spec = _spec(tmp_path, "name: c\n" + SMALL + f"conditions:\n  one: {{}}\n  two: {{goods: {two_goods}}}\n"
                           "metrics: [goods.gadget.trades]\n")  # fmt: skip
    result = run_sweep(spec, tmp_path / "out", workers=1)
    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert table.set_index("condition").loc["two", "status"] == "ok"
    assert result.tally.executed == 2


def test_a_metric_named_like_a_column_never_replaces_it():
    from mesa_llm.experiments.store import results_frame

    row = {"run_id": "a", "condition": "default", "factors": {}, "replicate": 0, "seed": 1, "key": "k",
           "status": "ok", "error": None, "metrics": {"status": 5, "seed": 9.5, "efficiency": 0.5}}  # fmt: skip
    frame = results_frame({"a": row}, ["a"], [])
    assert frame["status"].tolist() == ["ok"] and frame["seed"].tolist() == [1]
    assert frame["efficiency"].tolist() == [0.5]


@pytest.mark.parametrize("name", ["journal.jsonl", "spec.yaml", ".lock", "runs"])
def test_a_folder_whose_files_are_links_or_devices_is_refused(tmp_path, name):
    spec = _spec(tmp_path, "name: l\n" + SMALL)
    out = tmp_path / "out"
    out.mkdir()
    outside = tmp_path / "bashrc"
    outside.write_text("export PS1='$ '\n", encoding="utf-8")
    (out / name).symlink_to(outside if name != "runs" else tmp_path)
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(out)], env={"COLUMNS": "1000"})
    assert result.exit_code == 2
    assert "a symbolic link" in _one_line(result.output)
    assert outside.read_text(encoding="utf-8") == "export PS1='$ '\n"  # nothing appended out there


def test_a_journal_that_is_a_device_is_refused_not_read_forever(tmp_path):
    spec = _spec(tmp_path, "name: d\n" + SMALL)
    out = tmp_path / "out"
    run_sweep(spec, out, workers=1)
    (out / "journal.jsonl").unlink()
    os.mkfifo(out / "journal.jsonl")
    with pytest.raises(StoreError, match="journal.jsonl: not a regular file"):
        run_sweep(spec, out, workers=1)
