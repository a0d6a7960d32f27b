"""The command line: run, scenarios, validate — output, exit codes and clean failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mesa_llm.cli import app
from tests.support.files import write_yaml

runner = CliRunner()


def test_run_json_summary_and_recording(tmp_path):
    out = tmp_path / "rec"
    result = runner.invoke(app, ["run", "double_auction", "--steps", "5", "--seed", "3", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["scenario"] == "double_auction" and summary["seed"] == 3 and summary["steps"] == 5
    assert set(summary["goods"]["widget"]) >= {"trades", "volume", "mean_price", "ce_price"}
    lines = Path(summary["recording"]).read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert events[0]["event_type"] == "simulation_start" and events[0]["content"]["seed"] == 3
    assert events[-1]["event_type"] == "simulation_end"
    assert sum(e["event_type"] == "trade" for e in events) == summary["trades"]


def test_run_table_output(tmp_path):
    result = runner.invoke(app, ["run", "double_auction", "--steps", "3", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "allocative efficiency" in result.output and "CE price" in result.output
    assert "recording:" in result.output


def test_run_with_set_override(tmp_path):
    result = runner.invoke(
        app,
        ["run", "double_auction", "--set", "populations.0.count=2", "--set", "steps=2", "--out", str(tmp_path), "--json"],
    )
    assert result.exit_code == 0, result.output
    events = [json.loads(x) for x in Path(json.loads(result.stdout)["recording"]).read_text().splitlines()]
    assert sum(1 for a in events[0]["content"]["agents"] if a["role"] == "buyer") == 2
    assert json.loads(result.stdout)["steps"] == 2


def test_scenarios_lists_shipped_with_descriptions():
    result = runner.invoke(app, ["scenarios"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "double_auction" in result.output and "commodity_exchange" in result.output
    assert "Smith double auction" in result.output


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(bogus=1), "bogus: unknown field"),
        (lambda d: d["populations"][0].update(count="x"), "populations.0.count"),
        (lambda d: d["populations"][1]["endowment"]["holdings"].update(widget=-1), "populations.1.endowment.holdings.widget"),
        (lambda d: d["populations"][0].update(policy="oracle"), "populations.0.policy: unknown policy 'oracle'"),
    ],
)
def test_bad_file_fails_cleanly_and_writes_nothing(small_auction, tmp_path, mutate, field):
    mutate(small_auction)
    path = write_yaml(tmp_path / "bad.yaml", small_auction)
    out = tmp_path / "rec"
    for args in (["validate", str(path)], ["run", str(path), "--out", str(out)]):
        result = runner.invoke(app, args, env={"COLUMNS": "300"})
        assert result.exit_code != 0
        assert "Traceback" not in result.output
        assert str(path) in result.output and field in result.output
    assert not out.exists()


def test_broken_yaml_fails_cleanly(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    out = tmp_path / "rec"
    for args in (["validate", str(path)], ["run", str(path), "--out", str(out)]):
        result = runner.invoke(app, args, env={"COLUMNS": "300"})
        assert result.exit_code != 0 and "invalid YAML" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_validate_ok(small_auction, tmp_path):
    path = write_yaml(tmp_path / "ok.yaml", small_auction)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0 and "valid" in result.output
