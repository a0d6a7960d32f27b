"""A checkpoint is a policy beyond ``mesa-llm run``: a sweep runs ``policy: rl`` with
``params.checkpoint`` as one condition against the seat's built-in policy, and a relative
checkpoint path is read from the current directory — a scenario validated from elsewhere says so
in one line."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if os.environ.get("MESA_LLM_REQUIRE_RL") != "1":
    pytest.importorskip("pettingzoo")
    pytest.importorskip("stable_baselines3")

ROOT = Path(__file__).resolve().parents[2]
LEARNER_SCENARIO = ROOT / "examples" / "rl" / "double_auction_learner.yaml"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "mesa_llm", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=900)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A briefly trained one-seat checkpoint (its sidecar beside it)."""
    from mesa_llm.rl.train import train

    out = tmp_path_factory.mktemp("seat")
    return Path(train(LEARNER_SCENARIO, algo="ppo", timesteps=256, seed=4, out=out).checkpoint)


def test_a_relative_checkpoint_path_is_read_from_the_current_directory(checkpoint: Path, tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    for path in (checkpoint, checkpoint.with_suffix(".json")):
        shutil.copy(path, tmp_path / "ckpt" / path.name)
    (tmp_path / "scenarios").mkdir()
    scenario = tmp_path / "scenarios" / "seat.yaml"
    text = LEARNER_SCENARIO.read_text(encoding="utf-8")
    scenario.write_text(text.replace("    fallback: {policy: zi_c}\n", "    params: {checkpoint: ckpt/policy.zip}\n"), encoding="utf-8")
    assert "checkpoint: ckpt/policy.zip" in scenario.read_text(encoding="utf-8")

    ok = _cli("validate", "scenarios/seat.yaml", cwd=tmp_path)
    assert ok.returncode == 0 and "valid" in ok.stdout, ok.stderr
    wrong = _cli("validate", "seat.yaml", cwd=tmp_path / "scenarios")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    lines = [line for line in wrong.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, wrong.stderr
    assert "populations.0.params.checkpoint" in lines[0] and "no such file" in lines[0]
    assert f"relative paths are read from the current directory, {tmp_path / 'scenarios'}" in lines[0]


def test_a_sweep_runs_the_checkpoint_against_the_built_in_policy(checkpoint: Path, tmp_path: Path) -> None:
    spec = tmp_path / "ab_learner.yaml"
    spec.write_text(
        f"name: ab_learner\nscenario: {LEARNER_SCENARIO}\nreplicates: 2\nseed: 11\nsteps: 10\n"
        "conditions:\n"
        f"  trained:\n    populations.0.params: {{checkpoint: '{checkpoint}'}}\n"
        "  zi_c:\n    populations.0.policy: zi_c\n"
        "metrics: [trades]\n",
        encoding="utf-8",
    )
    proc = _cli("sweep", str(spec), "--out", "sweep", "--workers", "1", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)
    with (tmp_path / "sweep" / "results.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((r["condition"], r["status"]) for r in rows) == [("trained", "ok")] * 2 + [("zi_c", "ok")] * 2
    trained = [r for r in rows if r["condition"] == "trained"]
    for row in trained:  # the seat decided by itself: recorded as an rl agent, no actions submitted from outside
        events = [json.loads(line) for line in (tmp_path / "sweep" / row["recording"]).read_text(encoding="utf-8").splitlines()]
        seat = next(a for a in events[0]["content"]["agents"] if a["name"] == "learner")
        assert seat["policy"] == "rl"
        assert not [e for e in events if e["event_type"] in ("external_actions", "agent_error")]
        assert events[-1]["content"]["status"] == "completed"
