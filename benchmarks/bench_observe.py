"""Observe's work (`ObservationBatch.observe_step`, the population in one pass, where a checkout has
it, else `ObservationBatch.observe` agent by agent, with the recorded texts) of this code and of
another checkout's, in one process on the same world, step by step: a ratio that a busy shared
machine does not drown (two runs of `bench_step_phases` of the same code differ by up to 25 % at a
load of 3-4; here both codes meet the same load within each step).

Run: ``python benchmarks/bench_observe.py --baseline CHECKOUT [--agents 1000] [--steps 15]
[--rounds 3]``. The busy market (`busy_market`) runs with this code; at each step both codes'
batches observe every agent (each code first in every other step), each step's CPU time kept per code, and
their texts are compared (they must be equal). The baseline's ``mesa_llm/agents/observation_batch.py``
is loaded from its checkout as a module of its own, its imports taken from this code (so it
measures that file only: where it needs what this code no longer has, it fails to load). Printed:
us per agent-step, for the first step (every agent observed for the first time) and the others,
each step's least of ``--rounds`` runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from busy_market import busy_market


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(baseline: str, agents: int, steps: int) -> tuple[dict[str, list[float]], bool]:
    """One run: CPU seconds per code and step, and whether every text was equal."""
    import mesa_llm.agents.observation_batch as this
    import mesa_llm.model as model_module

    codes = {
        "baseline": _load(Path(baseline) / "mesa_llm" / "agents" / "observation_batch.py", "baseline_observation_batch"),
        "this code": this,
    }
    spent: dict[str, list[float]] = {label: [] for label in codes}
    equal = True
    with tempfile.TemporaryDirectory() as out:
        model = model_module.MarketModel(busy_market(agents, steps), seed=1, output_dir=out, record=True)
        observer, world = model.observer, model.observer.world
        batches: dict[str, Any] = {label: module.ObservationBatch(observer.batch.encode) for label, module in codes.items()}
        population = list(world.agents.values())
        for step in range(1, steps + 1):
            market = observer._market_snapshot()
            tools = [observer._plain_narrowed(agent, ()) for agent in population]
            texts = {}
            for label in list(codes)[:: -1 if step % 2 else 1]:
                batch = batches[label]
                start = time.process_time()
                batch.begin(step, steps, market, world.exchange.ledger, world.money)
                if hasattr(batch, "observe_step"):  # the population in one pass (no messages here to clear)
                    texts[label] = batch.observe_step(population, tools)[1]
                else:
                    texts[label] = [batch.observe(agent, [], shown, None)[1] for agent, shown in zip(population, tools, strict=True)]
                spent[label].append(time.process_time() - start)
            equal = equal and texts["baseline"] == texts["this code"]
            model.step()
    return spent, equal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", metavar="CHECKOUT", required=True, help="another revision's checkout")
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3, help="runs; the least CPU time per code and part is kept")
    args = parser.parse_args()
    if not (Path(args.baseline) / "mesa_llm" / "agents" / "observation_batch.py").is_file():
        parser.error(f"--baseline {args.baseline}: not a checkout of mesa_llm")
    best: dict[str, list[float]] = {}
    equal = True
    for _ in range(max(args.rounds, 1)):
        spent, same = measure(args.baseline, args.agents, args.steps)
        equal = equal and same
        for label, parts in spent.items():
            best[label] = [min(a, b) for a, b in zip(best.get(label, parts), parts, strict=True)]  # per step
    firsts, others = args.agents, args.agents * max(args.steps - 1, 1)
    print(f"{args.agents} agents x {args.steps} steps: ObservationBatch.observe_step (or observe), CPU us per agent-step "
          f"(each step's least of {args.rounds} runs); texts {'equal' if equal else 'DIFFERENT'}")  # fmt: skip
    print(f"{'':>10} {'first step':>11} {'the others':>11} {'all':>8}")
    for label, per_step in best.items():
        first, rest = per_step[0], sum(per_step[1:])
        print(f"{label:>10} {first / firsts * 1e6:>11.1f} {rest / others * 1e6:>11.1f} {(first + rest) / (firsts + others) * 1e6:>8.1f}")
    base, this = sum(best["baseline"]), sum(best["this code"])
    print(f"ratio (this code / baseline): {this / base:.2f}x")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
