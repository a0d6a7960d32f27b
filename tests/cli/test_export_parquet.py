"""``mesa-llm export REC --parquet [--out DIR]``: the columnar copy of a recording from the shell,
one line saying where, or one line saying why not."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mesa_llm.analysis import load_recording
from mesa_llm.analysis.columnar import MANIFEST, copy_path

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "300"}
    return subprocess.run(
        [sys.executable, "-m", "mesa_llm", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export")
    result = _cli("run", "double_auction", "--steps", "4", "--seed", "2", "--out", str(out), cwd=out)
    assert result.returncode == 0, result.stderr
    (path,) = out.glob("*.jsonl")
    return path


def test_export_parquet_writes_the_copy_next_to_the_recording(recording: Path, tmp_path: Path) -> None:
    path = tmp_path / recording.name
    shutil.copy2(recording, path)  # a stream without its copy (as an interrupted run, or an old one)
    assert not copy_path(path).exists()
    result = _cli("export", path.name, "--parquet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == [f"columnar copy: {path.name}.parquet (10 Parquet files)"]
    assert (copy_path(path) / MANIFEST).is_file() and (copy_path(path) / "trade.parquet").is_file()
    assert load_recording(path).columnar == copy_path(path)


def test_export_parquet_out_writes_where_asked(recording: Path, tmp_path: Path) -> None:
    result = _cli("export", str(recording), "--parquet", "--out", str(tmp_path / "cols"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "cols").iterdir())[:2] == ["action.parquet", "agent_state.parquet"]


@pytest.mark.parametrize(
    "case, words",
    [
        ("interrupted", "the run was interrupted (no simulation_end): no columnar copy of it"),
        ("missing", "no such recording"),
        ("no-flag", "nothing to export: say --parquet"),
        ("foreign-out", "holds other files (notes.txt, ...): not a columnar copy, left alone"),
    ],
)
def test_export_refuses_in_one_line(recording: Path, tmp_path: Path, case: str, words: str) -> None:
    path = tmp_path / "run.jsonl"
    lines = recording.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:40]) if case == "interrupted" else recording.read_bytes())
    args = ["export", path.name, "--parquet"]
    if case == "missing":
        args[1] = "nope.jsonl"
    elif case == "no-flag":
        args.remove("--parquet")
    elif case == "foreign-out":
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "notes.txt").write_text("keep")
        args += ["--out", "mine"]
    result = _cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {'' if case == 'no-flag' else (args[1] if case != 'foreign-out' else 'mine') + ': '}{words}"]
    assert "Traceback" not in result.stderr
    assert not copy_path(path).exists()
