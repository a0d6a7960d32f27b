"""What `validate`, `run` and `sweep` accept as a scenario (or a sweep spec): a regular .yaml/.yml
file, read with a bound. /proc and /sys files, devices, FIFOs and folders are refused in one line
that names the target and never quotes what such a file holds (the environment's secrets)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mesa_llm.cli import app
from mesa_llm.experiments import run_sweep
from mesa_llm.experiments.spec import SweepSpecError, load_sweep_spec
from mesa_llm.scenario import ScenarioError, load_scenario

runner = CliRunner()
MARKER = "h17d-environ-marker-5150"


def _one_line(output: str) -> str:
    assert "Traceback" not in output, output[-2000:]
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize("target", ["/proc/self/environ", "/proc/self/status", "/sys/kernel/mm/transparent_hugepage/enabled"])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_system_files_are_not_scenarios(target, command, tmp_path):
    if not Path(target).exists():
        pytest.skip(f"{target} does not exist here")
    args = [command, target] + (["--out", str(tmp_path / "out")] if command == "run" else [])
    proc = subprocess.run([sys.executable, "-m", "mesa_llm", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "1000", "H17D_MARKER": MARKER})  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = _one_line(proc.stdout + proc.stderr)
    assert line.startswith("error: ") and target in line
    assert "not a scenario file" in line, line
    assert MARKER not in proc.stdout + proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_yaml_named_link_to_proc_is_refused(tmp_path):
    link = tmp_path / "env.yaml"
    link.symlink_to("/proc/self/environ")
    with pytest.raises(ScenarioError, match="not a scenario file"):
        load_scenario(link)


def test_fifo_folder_and_device_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    device = tmp_path / "zero.yaml"
    device.symlink_to("/dev/zero")
    for target, why in ((fifo, "not a regular file"), (folder, "not a regular file"), (device, "not a scenario file")):
        proc = subprocess.run([sys.executable, "-m", "mesa_llm", "validate", str(target)], capture_output=True,
                              text=True, timeout=60, env={**os.environ, "COLUMNS": "1000"})  # fmt: skip
        assert proc.returncode == 2
        line = _one_line(proc.stdout + proc.stderr)
        assert str(target) in line and why in line, line


def test_a_scenario_file_must_be_yaml(tmp_path):
    text = (Path(__file__).resolve().parents[2] / "scenarios" / "double_auction.yaml").read_text(encoding="utf-8")
    other = tmp_path / "scenario.txt"
    other.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(other)], env={"COLUMNS": "1000"})
    assert result.exit_code == 2
    assert ".yaml or .yml" in _one_line(result.output)
    good = tmp_path / "scenario.yml"
    good.write_text(text, encoding="utf-8")
    assert runner.invoke(app, ["validate", str(good)]).exit_code == 0


def test_sweep_refuses_system_files_as_spec_and_as_scenario(tmp_path):
    with pytest.raises(SweepSpecError, match="not a sweep spec file"):
        load_sweep_spec("/proc/self/environ")
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: s\nscenario: /proc/self/environ\n", encoding="utf-8")
    with pytest.raises(SweepSpecError, match="scenario: .*not a scenario file"):
        run_sweep(spec, tmp_path / "out")
    assert not (tmp_path / "out").exists()
