"""Several runs at once: ``summary_metrics(load_recordings(dir))`` is a table of the runs (it
raised a raw AttributeError), and every stacked table says which run, scenario, seed and — for
a sweep's runs — which condition and cell each row comes from."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from mesa_llm.analysis import load_recording, load_recordings, summary_metrics
from mesa_llm.cli import app
from mesa_llm.experiments import run_sweep

SPEC = """name: tables
scenario: double_auction
replicates: 2
steps: 2
seed: 11
factors:
  market.k: [0.25, 0.75]
conditions:
  zic: {populations.0.policy: zi_c}
  ziu: {populations.0.policy: zi_u}
metrics: [trades]
"""
LEAD = ["run_id", "scenario", "seed", "condition", "cell"]


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tables")
    (folder / "spec.yaml").write_text(SPEC, encoding="utf-8")
    run_sweep(folder / "spec.yaml", folder / "out", workers=1)
    return folder / "out"


@pytest.mark.parametrize("sub", ["", "runs"])
def test_summary_metrics_of_a_sweeps_runs_is_a_table_with_their_cells(sweep_dir: Path, sub: str) -> None:
    runs = load_recordings(sweep_dir / sub if sub else sweep_dir)  # the sweep folder or its runs/
    table = summary_metrics(runs)
    assert isinstance(table, pd.DataFrame) and len(table) == 8
    assert list(table.columns[:5]) == LEAD
    results = pd.read_parquet(sweep_dir / "results.parquet").set_index("run_id")
    for row in table.itertuples():
        expected = results.loc[row.run_id]
        assert row.scenario == "double_auction"
        assert row.seed == expected["seed"]
        assert row.condition == expected["condition"]
        assert row.cell == f"market.k={expected['market.k']}"
        assert row.trades == expected["trades"]
    assert set(table["condition"]) == {"zic", "ziu"}
    # the replicates of a cell share their seed, and conditions are paired on it
    assert table.groupby("seed")["run_id"].count().tolist() == [4, 4]


def test_stacked_tables_lead_with_the_run_columns(sweep_dir: Path) -> None:
    runs = load_recordings(sweep_dir)
    summary = summary_metrics(runs).set_index("run_id")
    for name in ("trades", "events", "orders"):
        frame = getattr(runs, name)
        assert list(frame.columns[:5]) == LEAD, name
        for run_id, group in frame.groupby("run_id"):
            assert set(group["seed"]) == {summary.loc[run_id, "seed"]}
            assert set(group["condition"]) == {summary.loc[run_id, "condition"]}
            assert set(group["cell"]) == {summary.loc[run_id, "cell"]}
    assert runs.table("trade")["condition"].notna().all()


def test_runs_outside_a_sweep_carry_scenario_and_seed(tmp_path: Path) -> None:
    runner = CliRunner()
    for seed in ("5", "9"):
        result = runner.invoke(app, ["run", "double_auction", "--steps", "2", "--seed", seed, "--out", str(tmp_path)])
        assert result.exit_code == 0, result.output
    runs = load_recordings(tmp_path)
    table = summary_metrics(runs)
    assert sorted(table["seed"].tolist()) == [5, 9]
    assert table["scenario"].tolist() == ["double_auction"] * 2
    assert table["condition"].isna().all() and table["cell"].isna().all()
    one = summary_metrics(load_recording(next(tmp_path.glob("*.jsonl"))))
    assert isinstance(one, dict) and one["scenario"] == "double_auction"


def test_anything_else_is_a_clear_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="load_recording.*load_recordings"):
        summary_metrics(str(tmp_path))  # type: ignore[call-overload]
