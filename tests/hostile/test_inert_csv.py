"""CSV files are inert in a spreadsheet: a text cell that begins with = + - @ (or a tab or a
carriage return) is written with a leading apostrophe (OWASP's CSV-injection advice), in the
analysis exports and in a sweep's results.csv; numbers stay numbers, and the Parquet table keeps
the exact text."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from mesa_llm.analysis.report import write_csv
from mesa_llm.experiments import run_sweep
from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario

FORMULAS = ["=HYPERLINK(\"http://x\",\"y\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\tTAB", "\rCR"]
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def _cells(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [c for row in csv.reader(handle) for c in row]


@pytest.fixture(scope="module")
def formula_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("csv")
    model = MarketModel(load_scenario("double_auction", overrides=["steps=3"]), output_dir=folder)
    model.run()
    assert model.recording_path is not None
    text = model.recording_path.read_text(encoding="utf-8").replace('"widget"', json.dumps(FORMULAS[0]))
    chosen: dict[str, str] = {}  # each agent one formula, wherever its name appears

    def rename(match: re.Match[str]) -> str:
        name = chosen.setdefault(match.group(1), f"{FORMULAS[1 + len(chosen) % 5]}#{len(chosen)}")
        return f'"name":{json.dumps(name)}'

    text = re.sub(r'"name":"((?:buyers|sellers)_\d+)"', rename, text)
    path = folder / "formulas.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def test_analysis_csv_cells_never_start_a_formula(formula_recording, tmp_path):
    files = write_csv(formula_recording, tmp_path / "csv")
    cells = [c for f in files for c in _cells(f)]
    risky = [c for c in cells if c.startswith(DANGEROUS) and not _number(c)]
    assert risky == []
    assert "'" + FORMULAS[0] in cells  # kept, readable, and inert
    agents = pd.read_csv(tmp_path / "csv" / "agents.csv")
    assert any(str(n).startswith("'-2+3#") for n in agents["name"])


def test_negative_numbers_stay_numbers(formula_recording, tmp_path):
    write_csv(formula_recording, tmp_path / "csv")
    # the summary's value column mixes text and numbers: its negative P&L means stay numbers
    negative = [c for c in _cells(tmp_path / "csv" / "summary.csv") if c.startswith("-")]
    assert negative and all(_number(c) for c in negative)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_sweep_results_csv_cells_never_start_a_formula(tmp_path):
    spec = tmp_path / "spec.yaml"
    levels = ", ".join(json.dumps(f) for f in FORMULAS)
    spec.write_text(f"name: s\nscenario: double_auction\nsteps: 1\nfactors:\n  description: [{levels}]\n",
                    encoding="utf-8")  # fmt: skip
    run_sweep(spec, tmp_path / "out", workers=1)
    cells = _cells(tmp_path / "out" / "results.csv")
    assert [c for c in cells if c.startswith(DANGEROUS) and not _number(c)] == []
    assert "'" + FORMULAS[3] in cells
    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert table["description"].tolist() == FORMULAS  # the exact levels, for analysis
