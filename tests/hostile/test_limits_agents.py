"""The agent limit is one this machine can run, and it holds on every path that builds a model.

Measured on the 2-core / 23 GiB development machine (double_auction, ZI-C agents, recording on):
50,000 agents take ~7 s a step and ~0.7 GiB; 100,000 ~14 s and ~1.2 GiB; 200,000 ~30 s and
~2.3 GiB (and ~360 MB of recording a step). The default limit is 50,000; ``MESA_LLM_MAX_AGENTS``
raises it on bigger machines. Refusals are one line naming the file, the field and the limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mesa_llm.cli import app
from mesa_llm.experiments import run_sweep
from mesa_llm.model import MarketModel
from mesa_llm.scenario import ScenarioError, load_scenario

runner = CliRunner()


def _one_line(output: str) -> str:
    assert "Traceback" not in output, output[-2000:]
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


def _counts(buyers: int, sellers: int) -> list[str]:
    return ["--set", f"populations.0.count={buyers}", "--set", f"populations.1.count={sellers}"]


def test_the_default_limit_is_the_measured_one():
    from mesa_llm import scenario

    assert getattr(scenario, "DEFAULT_MAX_AGENTS", None) == 50_000


def test_validate_refuses_a_million_agents_in_one_line(monkeypatch):
    monkeypatch.delenv("MESA_LLM_MAX_AGENTS", raising=False)
    result = runner.invoke(app, ["validate", "double_auction", *_counts(500_000, 500_000)], env={"COLUMNS": "1000"})
    assert result.exit_code == 2
    line = _one_line(result.output)
    assert "double_auction.yaml" in line and "populations" in line
    assert "1,000,000 agents in all; at most 50,000" in line and "MESA_LLM_MAX_AGENTS" in line


def test_the_limit_is_exact(monkeypatch):
    monkeypatch.delenv("MESA_LLM_MAX_AGENTS", raising=False)
    spec = load_scenario("double_auction", overrides=["populations.0.count=25000", "populations.1.count=25000"])
    assert sum(p.count for p in spec.populations) == 50_000
    with pytest.raises(ScenarioError, match="50,001 agents in all; at most 50,000"):
        load_scenario("double_auction", overrides=["populations.0.count=25000", "populations.1.count=25001"])


def test_the_environment_variable_moves_the_limit(monkeypatch):
    monkeypatch.setenv("MESA_LLM_MAX_AGENTS", "60000")
    load_scenario("double_auction", overrides=["populations.0.count=30000", "populations.1.count=30000"])
    monkeypatch.setenv("MESA_LLM_MAX_AGENTS", "100")
    with pytest.raises(ScenarioError, match="101 agents in all; at most 100"):
        load_scenario("double_auction", overrides=["populations.0.count=50", "populations.1.count=51"])
    monkeypatch.setenv("MESA_LLM_MAX_AGENTS", "lots")
    result = runner.invoke(app, ["validate", "double_auction"], env={"COLUMNS": "1000", "MESA_LLM_MAX_AGENTS": "lots"})
    assert result.exit_code == 2 and "MESA_LLM_MAX_AGENTS='lots'" in _one_line(result.output)


def test_a_model_is_never_built_past_the_limit(monkeypatch):
    monkeypatch.setenv("MESA_LLM_MAX_AGENTS", "20")
    spec = load_scenario("double_auction")  # 12 agents
    spec.populations[0].count = 100  # changed after validation, as a script may
    with pytest.raises(ScenarioError, match="106 agents in all; at most 20"):
        MarketModel(spec, record=False)


def test_the_dashboard_counts_go_through_the_limit(monkeypatch):
    from mesa_llm.dashboard.sessions import apply_params, default_params
    from mesa_llm.scenario import ScenarioError

    monkeypatch.delenv("MESA_LLM_MAX_AGENTS", raising=False)
    spec = load_scenario("double_auction")
    params = default_params(spec)
    params["counts"]["buyers"] = 1_000_000
    with pytest.raises(ScenarioError, match="1,000,006 agents in all; at most 50,000"):  # validate's line
        apply_params(spec, params)


def test_a_sweep_level_past_the_limit_is_an_error_row(tmp_path, monkeypatch):
    monkeypatch.delenv("MESA_LLM_MAX_AGENTS", raising=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: s\nscenario: double_auction\nsteps: 2\nfactors:\n  populations.0.count: [3, 100000]\n",
                    encoding="utf-8")  # fmt: skip
    result = run_sweep(spec, tmp_path / "out", workers=1)
    assert result.tally.done == 1 and result.tally.failed == 1 and result.tally.executed == 1
    import pandas as pd

    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    failed = table[table["status"] == "failed"]
    assert len(failed) == 1 and "100,006 agents in all; at most 50,000" in failed["error"].iloc[0]


def test_a_recording_claiming_a_million_agents_is_refused_fast(tmp_path):
    spec = load_scenario("double_auction", overrides=["steps=1"])
    model = MarketModel(spec, output_dir=tmp_path)
    model.run()
    assert model.recording_path is not None
    lines = model.recording_path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    header["content"]["scenario"]["spec"]["populations"][0]["count"] = 1_000_000 - 6  # a million in all
    forged = tmp_path / "forged.jsonl"
    forged.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "MESA_LLM_MAX_AGENTS"}
    proc = subprocess.run([sys.executable, "-m", "mesa_llm", "replay", str(forged), "--verify", "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=60, env={**env, "COLUMNS": "1000"})  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = _one_line(proc.stdout + proc.stderr)
    assert "forged.jsonl" in line and "1,000,000 agents in all; at most 50,000" in line
    assert not Path(tmp_path / "r").exists()


def _raw(goods: int, agents: int, populations: int = 2) -> dict:
    per = agents // populations
    return {
        "name": "wide", "steps": 2,
        "goods": [{"name": f"g{i}", "reference_price": 10.0} for i in range(goods)],
        "populations": [{"name": f"p{i}", "role": "buyer" if i % 2 else "seller", "count": per, "policy": "zi_c"}
                        for i in range(populations)],
    }  # fmt: skip


def test_goods_are_bounded(monkeypatch):
    from mesa_llm.scenario import validate_scenario

    monkeypatch.delenv("MESA_LLM_MAX_AGENTS", raising=False)
    validate_scenario(_raw(1000, 2))
    with pytest.raises(ScenarioError, match="goods: List should have at most 1000 items"):
        validate_scenario(_raw(1001, 2), source="wide.yaml")


def test_agents_times_goods_is_bounded(monkeypatch):
    from mesa_llm.scenario import validate_scenario

    monkeypatch.delenv("MESA_LLM_MAX_AGENTS", raising=False)
    validate_scenario(_raw(100, 5000))  # 500,000 agent-goods: ~10 s a step
    with pytest.raises(ScenarioError, match="5,002 agents x 100 goods = 500,200 agent-goods; at most 500,000"):
        validate_scenario(_raw(100, 5002), source="wide.yaml")


def test_many_populations_validate_in_linear_time(monkeypatch):
    import time

    from mesa_llm.scenario import validate_scenario

    monkeypatch.delenv("MESA_LLM_MAX_AGENTS", raising=False)
    raw = _raw(1, 30_000, populations=30_000)
    started = time.perf_counter()
    validate_scenario(raw)
    assert time.perf_counter() - started < 15  # the duplicate-name check was quadratic: ~45 s here
