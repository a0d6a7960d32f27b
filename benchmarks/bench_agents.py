"""Rule-based agent-steps per second: 1,000 agents x 100 steps, with full recording on and off.

Run: ``python benchmarks/bench_agents.py [--agents 1000] [--steps 100]``. Every agent places an
order every step (ZI-C buyers and sellers with 100-unit schedules), so this is the busy case:
observation, decision, validation, reservation, clearing, settlement and (when on) one JSON line
per observation, action, order and trade.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario


def run(agents: int = 1000, steps: int = 100, seed: int = 1) -> list[dict[str, Any]]:
    """Time the model with recording on and off; return one row per mode."""
    half = agents // 2
    spec = load_scenario(
        "double_auction",
        overrides=[
            f"populations.0.count={half}",
            f"populations.1.count={agents - half}",
            "populations.0.private.widget.units=100",
            "populations.1.private.widget.units=100",
            "populations.0.endowment.cash=100000",
            "populations.1.endowment.holdings.widget=100",
            f"steps={steps}",
            "market.check_invariants=false",
        ],
    )
    rows = []
    for record in (True, False):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            model = MarketModel(spec, seed=seed, output_dir=out, record=record)
            built = time.perf_counter()
            model.run()
            elapsed = time.perf_counter() - built
            events = model.recorder.get_stats()["total_events"] if model.recorder is not None else 0
            size = model.recording_path.stat().st_size if model.recording_path else 0
        rows.append(
            {
                "recording": "on" if record else "off",
                "agents": agents,
                "steps": steps,
                "build_s": built - start,
                "run_s": elapsed,
                "agent_steps_per_s": agents * steps / elapsed,
                "trades": model.tallies.trades,
                "events": events,
                "recording_mb": size / 1e6,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    for row in run(args.agents, args.steps):
        print(
            f"recording {row['recording']:>3}: {row['agents']} agents x {row['steps']} steps in "
            f"{row['run_s']:.2f} s -> {row['agent_steps_per_s']:,.0f} agent-steps/s "
            f"({row['trades']:,} trades, {row['events']:,} events, {row['recording_mb']:.1f} MB)"
        )


if __name__ == "__main__":
    main()
