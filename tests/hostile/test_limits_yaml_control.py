"""YAML text with NUL, ESC or another control character is refused in one line naming the file and
the line and column, on every path that reads YAML: a scenario, a ``--set`` value, a sweep spec."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mesa_llm.cli import app
from mesa_llm.experiments.spec import SweepSpecError, load_sweep_spec
from mesa_llm.safe_yaml import UnsafeYAMLError, load_yaml

runner = CliRunner()
SCENARIO = (Path(__file__).resolve().parents[2] / "scenarios" / "double_auction.yaml").read_text(encoding="utf-8")


def _one_line(output: str) -> str:
    assert "Traceback" not in output, output[-2000:]
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize(
    ("char", "name"),
    [("\x00", "U+0000"), ("\x1b", "U+001B"), ("\x07", "U+0007"), ("\x7f", "U+007F"), ("\x9b", "U+009B")],
)
def test_control_character_in_a_scenario_is_one_line_with_line_and_column(tmp_path, char, name):
    text = SCENARIO.replace("description: Smith", f"description: Sm{char}ith", 1)
    line_no = next(i for i, line in enumerate(text.splitlines(), start=1) if line.startswith("description:"))
    path = tmp_path / "ctl.yaml"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path)], env={"COLUMNS": "1000"})
    assert result.exit_code == 2
    line = _one_line(result.output)
    assert line.startswith("error: ") and str(path) in line
    assert f"line {line_no}, column 16" in line and name in line, line
    assert char not in result.output  # the character itself never reaches the terminal


def test_control_character_is_refused_by_the_loader_itself():
    with pytest.raises(UnsafeYAMLError, match=r"line 2, column 4: control character U\+0000"):
        load_yaml("a: 1\nb: \x00\n")
    # tab, newline and carriage return stay allowed; so do printable non-ASCII characters
    assert load_yaml("a: 'x\ty'\r\nb: 'é ✓'\n") == {"a": "x\ty", "b": "é ✓"}


def test_control_character_in_a_set_value_is_one_line():
    result = runner.invoke(app, ["validate", "double_auction", "--set", "description=a\x1bb"], env={"COLUMNS": "1000"})
    assert result.exit_code == 2
    line = _one_line(result.output)
    assert "--set description" in line and "U+001B" in line


def test_control_character_in_a_sweep_spec_is_one_line(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: s\nscenario: double_auction\nfactors:\n  market.k: [0.5, \x00]\n", encoding="utf-8")
    with pytest.raises(SweepSpecError, match=r"spec.yaml: line 4, column 19: control character U\+0000"):
        load_sweep_spec(spec)
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "out")], env={"COLUMNS": "1000"})
    assert result.exit_code == 2 and "U+0000" in _one_line(result.output)
    assert not (tmp_path / "out").exists()
