"""The three learning-agent examples of issue 21, with their results as a table.

Run ``python examples/rl/rl_examples.py --out runs/rl_examples`` (needs the ``rl`` extra; a few
minutes on 2 cores). Each trains PPO (one shared policy) and compares, on 20 paired seeds:

1. a PPO trader in a double auction among ZI-C traders (``double_auction_learner.yaml``, one
   seat) against a ZI-C trader in the same seat, and a random policy there;
2. PPO buyers in ``bilateral_haggle`` against Boulware sellers, against the Linear buyers the
   scenario falls back to (profit: the agreement's surplus over the buyer's reservation price);
3. seed 001's question in ``financial_market_stress``: do learning traders (the 4 ``llm_traders``
   seats trained with PPO) deepen or soften the flash crash? Stress metrics of the flash crash with
   the learners, with the seats' built-in policy (fundamental traders), and without the seats.

Writes ``results.json`` and ``results.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from mesa_llm.analysis import load_recording
from mesa_llm.analysis.stress import stress_metrics
from mesa_llm.rl.env import baseline_spec, learner_spec
from mesa_llm.rl.evaluate import evaluate, mean_ci, switch_policy
from mesa_llm.rl.train import train
from mesa_llm.simulation import Simulation

HERE = Path(__file__).resolve().parent


def _fmt(stats: dict[str, Any]) -> str:
    return "-" if stats.get("mean") is None else f"{stats['mean']:.2f} [{stats['ci_low']:.2f}, {stats['ci_high']:.2f}]"


def market_and_haggle(out: Path, timesteps: int, episodes: int) -> list[dict[str, Any]]:
    rows = []
    # the negotiator offers utility levels or accepts, without the end action (ending at once is a
    # safe local optimum PPO falls into against a Boulware seller who concedes only near the deadline)
    cases = [
        ("double auction: PPO buyer vs ZI-C (same seat)", str(HERE / "double_auction_learner.yaml"), None, None),
        ("bilateral_haggle: PPO buyers vs Boulware sellers (baseline: Linear buyers)", "bilateral_haggle", ["buyers"],
         {"name": "utility_level", "params": {"end": False}}),
    ]  # fmt: skip
    for title, scenario, populations, decoder in cases:
        result = train(scenario, populations=populations, algo="ppo", timesteps=timesteps, seed=0, decoder=decoder,
                       out=out / title.split(":")[0].replace(" ", "_"))  # fmt: skip
        report = evaluate(result.checkpoint, episodes=episodes)
        rows.append({"example": title, "train_seconds": result.seconds, "timesteps": result.timesteps, "report": report})
    return rows


FLASH_KEYS = ("volatility_amplification", "max_drawdown", "recovery_time", "volume_ratio", "spread_ratio")


def stress(out: Path, timesteps: int, episodes: int) -> dict[str, Any]:
    result = train("financial_market_stress", populations=["llm_traders"], algo="ppo", timesteps=timesteps, seed=0, out=out / "stress")
    spec, pops = learner_spec("financial_market_stress", ["llm_traders"])
    variants = {
        "learners (PPO)": switch_policy(spec, pops, {"checkpoint": result.checkpoint}),
        "built-in (fundamental)": baseline_spec(spec, pops),
        "without the seats": baseline_spec(spec, pops).model_copy(deep=True),
    }
    variants["without the seats"].populations = [p for p in variants["without the seats"].populations if p.label not in pops]
    metrics: dict[str, dict[str, list[float]]] = {name: {k: [] for k in FLASH_KEYS} for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(100_000, 100_000 + episodes):
            for name, variant in variants.items():
                with Simulation.from_scenario(variant, seed=seed, out=tmp) as sim:
                    sim.run()
                    path = sim.recording_path
                assert path is not None
                flash = next(v for k, v in stress_metrics(load_recording(path)).items() if k.startswith("flash_crash"))
                for key in FLASH_KEYS:
                    value = flash.get(key)
                    metrics[name][key].append(float(value) if value is not None else float("nan"))
                path.unlink()
    summary = {name: {k: mean_ci(v) for k, v in by_key.items()} for name, by_key in metrics.items()}
    paired = {
        other: {k: mean_ci(list(np.array(metrics["learners (PPO)"][k]) - np.array(metrics[other][k]))) for k in FLASH_KEYS}
        for other in ("built-in (fundamental)", "without the seats")
    }
    return {"train_seconds": result.seconds, "timesteps": result.timesteps, "flash_crash": summary, "paired_learners_minus": paired}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/rl_examples"))
    parser.add_argument("--timesteps", type=int, default=20_000)
    parser.add_argument("--episodes", type=int, default=20)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"examples": market_and_haggle(args.out, args.timesteps, args.episodes), "stress": stress(args.out, args.timesteps, args.episodes)}
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    lines = ["| example | policy | profit per learner, mean [95% CI] | reward |", "|---|---|---|---|"]
    for row in results["examples"]:
        rep = row["report"]
        for arm, m in rep["arms"].items():
            lines.append(f"| {row['example']} | {arm} | {_fmt(m['profit'])} | {_fmt(m['reward'])} |")
        for pair, m in rep["paired"].items():
            lines.append(f"| {row['example']} | {pair} (paired) | {_fmt(m['profit'])} | {_fmt(m['reward'])} |")
    lines += ["", "| flash crash (financial_market_stress) | " + " | ".join(FLASH_KEYS) + " |", "|---|" + "---|" * len(FLASH_KEYS)]
    for name, by_key in results["stress"]["flash_crash"].items():
        lines.append(f"| {name} | " + " | ".join(_fmt(by_key[k]) for k in FLASH_KEYS) + " |")
    for other, by_key in results["stress"]["paired_learners_minus"].items():
        lines.append(f"| learners - {other} (paired) | " + " | ".join(_fmt(by_key[k]) for k in FLASH_KEYS) + " |")
    (args.out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
