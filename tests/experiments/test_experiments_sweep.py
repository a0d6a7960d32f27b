"""Sweeps end to end: worker processes, failed cells as rows, resume after a kill, the LLM budget,
the CLI's JSON, and Ray on a local cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from mesa_llm.cli import app
from mesa_llm.experiments import run_sweep
from mesa_llm.experiments.store import read_journal

ROOT = Path(__file__).resolve().parents[2]

SPEC = """name: small_sweep
scenario: double_auction
replicates: 2
seed: 5
timeout_s: 2.0
factors:
  market.k: [0.25, 0.75]
conditions:
  zic: {populations.0.policy: zi_c, steps: 4}
  ziu: {populations.0.policy: zi_u, steps: 4}
  broken: {market.no_such_field: 1}
  slow: {steps: 1000000}
metrics: [allocative_efficiency, trades, smiths_alpha]
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    folder = tmp_path_factory.mktemp("sweep")
    spec = folder / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    result = CliRunner().invoke(app, ["sweep", str(spec), "--out", str(folder / "out"), "--workers", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return spec, folder / "out", data


def test_every_run_is_one_row_and_failures_are_rows(swept) -> None:
    spec, out, data = swept
    table = pd.read_parquet(out / "results.parquet")
    csv = pd.read_csv(out / "results.csv")
    assert len(table) == len(csv) == 4 * 2 * 2 and table["run_id"].is_unique
    assert list(table.columns[:3]) == ["run_id", "condition", "market.k"]
    status = {c: set(g["status"]) for c, g in table.groupby("condition")}
    assert status == {"zic": {"ok"}, "ziu": {"ok"}, "broken": {"failed"}, "slow": {"timeout"}}
    broken = table[table["condition"] == "broken"]
    assert broken["error"].str.contains("market.no_such_field: unknown field").all()
    assert table.loc[table["condition"] == "slow", "error"].str.contains("longer than 2 s").all()
    ok = table[table["status"] == "ok"]
    assert ok["recording"].map(lambda p: (out / p).is_file() and p.startswith("runs/")).all()
    assert (out / "spec.yaml").read_text() == spec.read_text()
    assert data["total"] == 16 and data["executed"] == 12  # the broken cell never reached a worker


def test_conditions_share_seeds_and_json_means_equal_the_csv(swept) -> None:
    _, out, data = swept
    csv = pd.read_csv(out / "results.csv")
    seeds = csv.pivot_table(index=["market.k", "replicate"], columns="condition", values="seed")
    assert (seeds.nunique(axis=1) == 1).all()  # replicate r of every cell: one seed
    ok = csv[csv["status"] == "ok"]
    for condition in ("zic", "ziu"):
        for metric in ("allocative_efficiency", "trades"):
            expected = ok.loc[ok["condition"] == condition, metric].mean()
            assert data["statistics"]["conditions"][condition][metric]["mean"] == pytest.approx(expected, rel=1e-12)
    comparison = next(c for c in data["statistics"]["comparisons"]
                      if c["metric"] == "allocative_efficiency" and {c["condition_a"], c["condition_b"]} == {"zic", "ziu"})  # fmt: skip
    assert comparison["n_pairs"] == 2 and comparison["p_t_holm"] is not None


def test_a_second_invocation_runs_nothing_new(swept) -> None:
    spec, out, _ = swept
    before = (out / "results.csv").read_text()
    result = run_sweep(spec, out, workers=2)
    # zic/ziu are done; the timed-out runs are retried (and time out again); broken is not re-run
    assert result.tally.skipped == 8 and result.tally.executed == 4
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 16 and table["run_id"].is_unique
    assert before.splitlines()[0] == (out / "results.csv").read_text().splitlines()[0]


def test_a_folder_holds_one_spec(swept, tmp_path: Path) -> None:
    spec, out, _ = swept
    other = tmp_path / "other.yaml"
    other.write_text(SPEC.replace("replicates: 2", "replicates: 3"), encoding="utf-8")
    result = CliRunner().invoke(app, ["sweep", str(other), "--out", str(out)])
    assert result.exit_code == 2 and "holds results of a different spec" in result.stderr
    assert "Traceback" not in result.output


def test_hostile_spec_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("name: x\nscenario: double_auction\nfactors:\n  a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
                    + "".join(f"  b{i}: &b{i} [*{'a' if i == 0 else f'b{i - 1}'}, *{'a' if i == 0 else f'b{i - 1}'}, *{'a' if i == 0 else f'b{i - 1}'}, *{'a' if i == 0 else f'b{i - 1}'}, *{'a' if i == 0 else f'b{i - 1}'}, *{'a' if i == 0 else f'b{i - 1}'}, *{'a' if i == 0 else f'b{i - 1}'}, *{'a' if i == 0 else f'b{i - 1}'}]\n" for i in range(8)),
                    encoding="utf-8")  # fmt: skip
    result = CliRunner().invoke(app, ["sweep", str(bomb), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "expands to more than" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()
    good = tmp_path / "good.yaml"
    good.write_text("name: x\nscenario: double_auction\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["sweep", str(good), "--out", str(tmp_path / "o"), "--executor", "bogus"])
    assert result.exit_code == 2 and "unknown executor 'bogus'" in result.stderr and not (tmp_path / "o").exists()
    unknown = tmp_path / "s.yaml"
    unknown.write_text("name: x\nscenario: no_such_scenario\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["sweep", str(unknown), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "scenario:" in result.stderr and not (tmp_path / "o").exists()


def test_a_killed_sweep_resumes_and_runs_each_run_once(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: killed\nscenario: double_auction\nsteps: 40\nreplicates: 12\nseed: 2\n"
                    "factors:\n  market.k: [0.3, 0.7]\n", encoding="utf-8")  # fmt: skip
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesa_llm", "sweep", str(spec), "--out", str(out), "--workers", "1"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    journal = out / "journal.jsonl"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and len(list(read_journal(journal))) < 3:
            assert proc.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker processes, mid-sweep
        proc.wait()
    done_before = {row["run_id"] for row in read_journal(journal)}
    assert 3 <= len(done_before) < 24
    with journal.open("a", encoding="utf-8") as handle:
        handle.write('{"run_id": "killed.p0.r1', )  # a row cut by the kill: not a result
    result = run_sweep(spec, out, workers=1)
    assert result.tally.skipped == len(done_before) and result.tally.executed == 24 - len(done_before)
    rows = list(read_journal(journal))
    assert sorted(r["run_id"] for r in rows) == sorted({r["run_id"] for r in rows})  # no run ran twice
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == 24 and table["run_id"].is_unique and (table["status"] == "ok").all()


def test_the_budget_stops_llm_runs_and_records_the_rest(tmp_path: Path) -> None:
    from tests.fake_openai_server import FakeOpenAIServer

    with FakeOpenAIServer() as server:
        spec = tmp_path / "spec.yaml"
        spec.write_text(
            "name: budget\nscenario: llm_double_auction\nsteps: 2\nreplicates: 4\nseed: 1\n"
            "conditions:\n  llm:\n"
            "    llm.model: openai/fake-model\n"
            f"    llm.api_base: {server.base_url}\n"
            "    llm.input_cost_per_token: 0.0001\n    llm.output_cost_per_token: 0.0001\n"
            "    populations.0.count: 1\n    populations.1.count: 1\n",
            encoding="utf-8",
        )
        notes: list[str] = []
        result = run_sweep(spec, tmp_path / "out", workers=1, max_cost_usd=0.05, notify=notes.append)
    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    statuses = table["status"].tolist()
    assert "not_run_budget" in statuses and statuses[0] in ("ok", "budget_exceeded")
    first_stop = statuses.index("not_run_budget")
    assert set(statuses[first_stop:]) == {"not_run_budget"}  # nothing ran once the budget was spent
    ran = table[table["status"] != "not_run_budget"]
    assert (ran["cost_usd"] > 0).all() and result.tally.cost_usd == pytest.approx(ran["cost_usd"].sum())
    assert ran["cost_usd"].sum() <= 0.05 + ran["cost_usd"].max()  # at most one run's spending past it
    assert notes[0].startswith("estimate: ~$") and any(n.startswith("pilot run") for n in notes)


@pytest.mark.requires("ray", extra="ray")
def test_ray_local_cluster_gives_the_same_results(swept, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    # no slow cell, and no tight timeout: the run key (and so the comparison) does not include it
    spec.write_text(SPEC.replace("  slow: {steps: 1000000}\n", "").replace("timeout_s: 2.0", "timeout_s: 600"), encoding="utf-8")
    run_sweep(spec, tmp_path / "ray", workers=2, executor="ray")
    ray_table = pd.read_parquet(tmp_path / "ray" / "results.parquet").set_index("run_id")
    process_table = pd.read_parquet(swept[1] / "results.parquet").set_index("run_id")
    shared = ray_table.index
    assert len(shared) == 12
    cols = ["status", "seed", "allocative_efficiency", "trades", "smiths_alpha", "key"]
    pd.testing.assert_frame_equal(ray_table.loc[shared, cols], process_table.loc[shared, cols])
