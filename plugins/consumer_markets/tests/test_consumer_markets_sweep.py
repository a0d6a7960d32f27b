"""The A/B sweep example (``examples/sweeps/ab_pricing.yaml``, seed 000's penetration vs premium):
the shipped spec pairs 20 seeds, its metrics exist, and a small copy of it runs through
``mesa-llm sweep`` with both arms on the same seeds.

Without the plugin installed these tests skip, except in CI (``MESA_LLM_REQUIRE_CONSUMER_MARKETS=1``).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT / "examples" / "sweeps" / "ab_pricing.yaml"



def test_the_ab_example_pairs_twenty_seeds_of_penetration_and_premium() -> None:
    raw = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    assert raw["scenario"] == "pricing_competition" and raw["replicates"] == 20
    assert {c["populations.0.policy"] for c in raw["conditions"].values()} == {"penetration", "premium"}


def test_a_small_copy_of_the_ab_example_runs_and_premium_earns_more(tmp_path: Path) -> None:
    raw = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    raw.update(replicates=2, steps=3)
    spec = tmp_path / "ab.yaml"
    spec.write_text(yaml.safe_dump(raw), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "MESA_LLM_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "mesa_llm", "sweep", str(spec), "--out", str(tmp_path / "out"), "--workers", "1", "--json"],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "out" / "results.csv", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle)]
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}
    by_arm = {arm: {r["seed"]: r for r in rows if r["condition"] == arm} for arm in ("penetration", "premium")}
    assert set(by_arm["penetration"]) == set(by_arm["premium"])  # paired: the same seeds in both arms
    for seed, low in by_arm["penetration"].items():
        high = by_arm["premium"][seed]
        assert float(low["posted_price.mean_price"]) < 1.4729 < float(high["posted_price.mean_price"])
        assert float(high["posted_price.mean_profit_per_consumer"]) > float(low["posted_price.mean_profit_per_consumer"])
        assert float(low["posted_price.profit_gain"]) < 0 < float(high["posted_price.profit_gain"])
