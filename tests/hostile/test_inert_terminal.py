"""Names and values from recordings, sweep specs and paths reach the terminal inert: no ESC, BEL,
C1 control or bidi override gets through (each is shown as a visible escape), and rich markup in
them is printed as text, not obeyed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mesa_llm.cli import app
from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario

runner = CliRunner()
#: what must never reach the terminal raw
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
GOOD = "wid\x1b[2J\x1b]0;pwned\x07[bold red]get\u202e"
SHOWN = "wid\\x1b[2J\\x1b]0;pwned\\x07[bold red]get\\u202e"


@pytest.fixture(scope="module")
def evil(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real recording whose good and population names were rewritten to terminal escapes."""
    folder = tmp_path_factory.mktemp("evil")
    model = MarketModel(load_scenario("double_auction", overrides=["steps=3"]), output_dir=folder)
    model.run()
    assert model.recording_path is not None
    text = model.recording_path.read_text(encoding="utf-8")
    text = text.replace('"widget"', json.dumps(GOOD)).replace('"buyers"', json.dumps("buy\x1b[31mers[/]"))
    path = folder / "evil.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def _inert(output: str) -> None:
    found = RAW.search(output)
    assert found is None, f"raw {found.group()!r} reached the terminal: {output[max(0, found.start() - 80):found.end() + 80]!r}"


def test_analyze_shows_escapes_instead_of_obeying_them(evil):
    result = runner.invoke(app, ["analyze", str(evil)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    _inert(result.output)
    assert SHOWN in result.output  # visible, and the markup printed as text


def test_compare_too(evil):
    result = runner.invoke(app, ["compare", str(evil), str(evil)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    _inert(result.output)
    assert SHOWN in result.output


def test_an_error_quoting_a_path_is_inert(tmp_path):
    target = tmp_path / "x\x1b]0;pwned\x07\u202e.yaml"
    result = runner.invoke(app, ["validate", str(target)], env={"COLUMNS": "400"})
    assert result.exit_code == 2
    _inert(result.output)
    assert "x\\x1b]0;pwned\\x07\\u202e.yaml" in result.output and "file not found" in result.output


def test_sweep_tables_and_failures_are_inert(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text('name: s\nscenario: double_auction\nsteps: 1\n'
                    'factors:\n  description: ["\\e[31mred[/]", "\\u202eplain"]\n'
                    '  populations.0.policy: [zi_c, "no\\e[2Jpolicy"]\n', encoding="utf-8")  # fmt: skip
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "out"), "--workers", "1"],
                           env={"COLUMNS": "400"})  # fmt: skip
    assert result.exit_code == 0, result.output
    _inert(result.output)
    assert "\\x1b[31mred[/]" in result.output and "\\u202eplain" in result.output
    assert "failed:" in result.output  # the unknown policy's rows, reported without their ESC
    report = runner.invoke(app, ["sweep-report", str(tmp_path / "out")], env={"COLUMNS": "400"})
    assert report.exit_code == 0
    _inert(report.output)
