"""Benchmark of the learning environment: environment steps per second.

Run ``python benchmarks/bench_rl.py [--steps N] [--json]`` (needs the ``rl`` extra). A 12-agent
double auction (``double_auction``: 6 buyers, 6 sellers, ZI-C) whose first 1 or 4 buyers are
learners (``policy: rl``, a population of their own), driven through `MarketParallelEnv` with
actions drawn beforehand from a seeded generator (so the policy costs nothing), recording off and
on (a JSON-lines recording per episode into a temporary folder). One env step is one step of the
world for every agent, resets included (30 steps per episode). The same world stepped through
`Simulation` alone, every agent ZI-C, is the reference. Rates are per second of wall-clock time
and per second of this process's CPU time (the latter is what the code costs when the machine's
cores are shared); the 1-minute load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

try:
    from mesa_llm.rl.env import MarketParallelEnv
except ModuleNotFoundError:  # run from a source checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from mesa_llm.rl.env import MarketParallelEnv

from mesa_llm.simulation import Simulation, prepare_scenario


def scenario_with_learners(learners: int) -> dict[str, Any]:
    """``double_auction`` with its first ``learners`` buyers in a ``policy: rl`` population."""
    raw = prepare_scenario("double_auction").model_dump(mode="json")
    buyers = next(p for p in raw["populations"] if p["name"] == "buyers")
    learning = {**json.loads(json.dumps(buyers)), "name": "learners", "count": learners, "policy": "rl", "params": {}, "fallback": {"policy": "zi_c"}}
    buyers["count"] -= learners
    raw["populations"].insert(0, learning)
    return raw


def measure_env(learners: int, record: bool, steps: int, out: Path) -> tuple[float, float]:
    """Environment steps per second of wall-clock time and of this process's CPU time (the
    second is what the code costs on a machine shared with other work)."""
    env = MarketParallelEnv(scenario_with_learners(learners), record=record, out=out)
    rng = np.random.default_rng(0)
    draws = rng.integers(0, 3, size=(steps, learners))
    env.reset(seed=0)
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(steps):
        if not env.agents:
            env.reset()
        env.step({name: int(draws[i, j]) for j, name in enumerate(env.agents)})
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    env.close()
    return steps / elapsed, steps / cpu


def measure_simulation(steps: int) -> tuple[float, float]:
    """World steps per second (wall clock, CPU time) through `Simulation` alone (every agent
    ZI-C, recording off)."""
    spec = prepare_scenario("double_auction")
    done, seed = 0, 0
    start, cpu = time.perf_counter(), time.process_time()
    while done < steps:
        sim = Simulation.from_scenario(spec, seed=seed, record=False)
        while not sim.done and done < steps:
            sim.step()
            done += 1
        sim.close()
        seed += 1
    return steps / (time.perf_counter() - start), steps / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="environment steps per measurement")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        measure_env(1, False, 300, Path(tmp))  # warm-up: imports, the prompt check cache
        for learners in (1, 4):
            for record in (False, True):
                rate, cpu_rate = measure_env(learners, record, args.steps, Path(tmp) / f"rec_{learners}_{record}")
                rows.append({"learners": learners, "recording": record, "steps_per_s": round(rate, 1), "steps_per_cpu_s": round(cpu_rate, 1)})
    reference, reference_cpu = measure_simulation(args.steps)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if args.json:
        print(json.dumps({"agents": 12, "steps": args.steps, "env": rows, "simulation_only_steps_per_s": round(reference, 1),
                          "simulation_only_steps_per_cpu_s": round(reference_cpu, 1), "load_1min": load}))  # fmt: skip
        return
    print(f"12-agent double auction, {args.steps} environment steps each (30-step episodes, resets included)")
    print(f"{'learners':>8} {'recording':>9} {'steps/s':>9} {'per CPU-s':>10}")
    for row in rows:
        print(f"{row['learners']:>8} {'on' if row['recording'] else 'off':>9} {row['steps_per_s']:>9,.0f} {row['steps_per_cpu_s']:>10,.0f}")
    print(f"reference: Simulation.step alone, every agent ZI-C, recording off: {reference:,.0f} steps/s, {reference_cpu:,.0f} per CPU-s")
    if load is not None:
        print(f"load average (1 min): {load:.2f}")


if __name__ == "__main__":
    main()
