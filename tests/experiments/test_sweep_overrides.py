"""``mesa-llm sweep --replicates N --steps N``: the spec's counts replaced for one folder, recorded
in its manifest so a resume reuses them, and a resume with other values refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from mesa_llm.analysis import load_recording
from mesa_llm.cli import app

SPEC = """name: overrides
scenario: double_auction
replicates: 5
steps: 10
seed: 3
factors:
  market.k: [0.25, 0.75]
metrics: [allocative_efficiency, trades]
"""

runner = CliRunner()


def _sweep(spec: Path, out: Path, *extra: str):
    return runner.invoke(app, ["sweep", str(spec), "--out", str(out), "--workers", "1", *extra], env={"COLUMNS": "120"})


def test_replicates_and_steps_override_the_spec_and_a_resume_keeps_them(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    out = tmp_path / "out"
    first = _sweep(spec, out, "--replicates", "2", "--steps", "3", "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout.strip().splitlines()[-1])
    assert data["total"] == 2 * 2 and data["ok_this_time"] == 4
    table = pd.read_parquet(out / "results.parquet")
    assert sorted(set(table["replicate"])) == [0, 1]
    for path in table["recording"]:
        assert load_recording(out / path).final_step == 3  # not the spec's 10 steps
    assert json.loads((out / "manifest.json").read_text())["overrides"] == {"replicates": 2, "steps": 3}

    again = _sweep(spec, out, "--json")  # no flags: the folder's values, not the spec's 5 x 10
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout.strip().splitlines()[-1])
    assert (data["total"], data["skipped_done_before"], data["executed"]) == (4, 4, 0)
    assert "resuming with --replicates 2, --steps 3" in again.stderr

    same = _sweep(spec, out, "--steps", "3", "--json")
    assert same.exit_code == 0 and json.loads(same.stdout.strip().splitlines()[-1])["executed"] == 0

    other = _sweep(spec, out, "--replicates", "3")
    assert other.exit_code != 0
    lines = other.output.strip().splitlines()
    assert len(lines) == 1 and "--replicates 2" in lines[0] and "manifest.json" in lines[0], other.output
    assert "Traceback" not in other.output
    assert len(pd.read_parquet(out / "results.parquet")) == 4  # nothing recorded is lost


def test_a_folder_swept_with_the_specs_counts_refuses_an_override(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("replicates: 5", "replicates: 1").replace("steps: 10", "steps: 2"), encoding="utf-8")
    out = tmp_path / "out"
    assert _sweep(spec, out).exit_code == 0
    refused = _sweep(spec, out, "--steps", "4")
    assert refused.exit_code != 0 and "the spec's steps" in refused.output and "--steps 4" in refused.output


def test_an_override_the_spec_refuses_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    big = _sweep(spec, tmp_path / "big", "--replicates", "60000")  # the spec allows at most 10,000
    assert big.exit_code != 0
    lines = big.output.strip().splitlines()
    assert len(lines) == 1 and "--replicates" in lines[0] and "10000" in lines[0], big.output
    assert not (tmp_path / "big").exists()
    zero = _sweep(spec, tmp_path / "zero", "--steps", "0")
    assert zero.exit_code != 0 and not (tmp_path / "zero").exists()
