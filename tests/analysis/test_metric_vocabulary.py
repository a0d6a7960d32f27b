"""One metric vocabulary: the run summary, analyze --json, Simulation.metrics() and sweep columns call
each quantity by one name and give it the same value; old names are accepted with a note."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from mesa_llm import Simulation
from mesa_llm.analysis import load_recording
from mesa_llm.analysis.metrics import flatten_metrics, summary_metrics
from mesa_llm.experiments.spec import SweepSpec
from mesa_llm.experiments.worker import flatten_summary
from mesa_llm.metric_names import DEPRECATED, VOCABULARY, canonical


def _names(goods: list[str]) -> list[str]:
    out = []
    for name in VOCABULARY:
        if name.endswith("_note"):
            continue
        out.extend(name.replace("<good>", g) for g in goods) if "<good>" in name else out.append(name)
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


@pytest.mark.parametrize(
    ("scenario", "overrides"),
    [("double_auction", ["market.fee_per_unit=0.5"]), ("supply_contract", []), ("sealed_bid_auction", [])],
)
def test_the_run_summary_and_analyze_agree_name_for_name(tmp_path: Path, scenario: str, overrides: list[str]) -> None:
    with Simulation.from_scenario(scenario, seed=2, out=tmp_path, overrides=overrides) as sim:
        summary = sim.run().to_dict()
        live = sim.metrics()
    run = flatten_metrics({k: v for k, v in summary.items() if k not in ("llm", "recording")})
    analyzed = flatten_metrics(summary_metrics(load_recording(sim.recording_path)))
    goods = list(summary["goods"])
    for name in _names(goods):
        if name.startswith("goods.") and name.endswith(".contract_volume"):
            continue  # the run's own count (analyze reports contracts in their own table)
        assert name in run, name
        assert name in analyzed, name
        assert _same(run[name], analyzed[name]), (name, run[name], analyzed[name])
    for name in ("trades", "volume", "allocative_efficiency", "agreements", "contract_value", "fees.total"):
        assert _same(flatten_metrics(live)[name], run[name]), name


def test_a_fee_is_counted_in_the_vocabulary(run_scenario) -> None:
    run = run_scenario("double_auction", seed=2, overrides=["market.fee_per_unit=0.5"])
    summary = run.summary.to_dict()
    paid = sum(e["content"]["buyer_fee"] + e["content"]["seller_fee"] for e in run.of_type("trade"))
    assert summary["fees"]["total"] == pytest.approx(paid) == pytest.approx(2 * 0.5 * summary["volume"])
    assert summary["fees"]["buyers"] == summary["fees"]["sellers"] == pytest.approx(0.5 * summary["volume"])
    assert flatten_summary(summary)["fees.total"] == pytest.approx(paid)


@pytest.mark.parametrize(("old", "new"), [*DEPRECATED.items(), ("goods.widget.smith_alpha", "goods.widget.smiths_alpha")])
def test_old_names_map_to_the_vocabulary_with_a_note(old: str, new: str) -> None:
    assert canonical(old) == (new, f"metric {old!r} is now called {new!r} (the old name still works, for now)")
    assert canonical(new) == (new, None)


def test_a_sweep_spec_with_old_names_reads_as_the_new_ones() -> None:
    raw = {"name": "old_names", "scenario": "double_auction", "seed": 1, "replicates": 1, "metrics": ["efficiency", "negotiation.agreed", "trades"]}
    spec = SweepSpec.model_validate(raw)
    assert spec.metrics == ["allocative_efficiency", "agreements", "trades"]
    notes = SweepSpec.metric_notes(raw["metrics"])
    assert len(notes) == 2 and "'efficiency' is now called 'allocative_efficiency'" in notes[0]


def test_the_deprecated_summary_attributes_still_answer(tmp_path: Path) -> None:
    with Simulation.from_scenario("double_auction", seed=1, record=False) as sim:
        summary = sim.run()
    assert summary.efficiency == summary.allocative_efficiency is not None
    assert "efficiency" not in summary.to_dict()  # the output speaks the vocabulary only
