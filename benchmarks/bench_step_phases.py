"""Where a rule-based step's CPU time goes: microseconds per agent-step in each phase (observe,
decide, resolve, clear, collect, and "other": the run's time outside those five), 1,000 ZI-C
agents, recording on or off.

Run: ``python benchmarks/bench_step_phases.py [--agents 1000] [--steps 15] [--runs 3] [--record on|off]
[--baseline CHECKOUT]``. Each phase is timed with the process's CPU clock around the model's own
calls (`Observer.observe`, `decide_rule_based`, `ActionResolver.resolve`, the call market's
``clear``, the DataCollector); the least of ``--runs`` runs is kept per phase (the machine is
shared). ``--baseline`` measures another checkout in the same run, in a subprocess whose
``PYTHONPATH`` is that checkout, runs interleaved (each code first in every other round), and
prints both side by side.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from busy_market import busy_market, in_checkout

PHASES = ("observe", "decide", "resolve", "clear", "collect", "other", "total")
#: the phases timed around the model's own calls; "other" is the total minus their sum (the step's
#: preparation outside observe, its finish after clear, the recorder's flush, the run's start and end)
TIMED = PHASES[:5]


def measure(agents: int, steps: int, record: bool) -> dict[str, float]:
    """One run's CPU seconds per phase (and in all), this process's code."""
    import mesa_llm.model as model_module
    from mesa_llm.mechanisms.call_market import CallMarketMechanism
    from mesa_llm.world.resolver import ActionResolver

    spent: dict[str, float] = dict.fromkeys(PHASES, 0.0)

    def timed(owner: Any, name: str, phase: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent[phase] += time.process_time() - start

        setattr(owner, name, wrapper)

    timed(model_module.Observer, "observe", "observe")
    timed(model_module, "decide_rule_based", "decide")
    timed(ActionResolver, "resolve", "resolve")
    timed(CallMarketMechanism, "clear", "clear")
    timed(model_module.BoundedDataCollector, "collect", "collect")
    spec = busy_market(agents, steps)
    with tempfile.TemporaryDirectory() as out:
        model = model_module.MarketModel(spec, seed=1, output_dir=out, record=record)
        start = time.process_time()
        model.run()
        spent["total"] = time.process_time() - start
    spent["other"] = spent["total"] - sum(spent[phase] for phase in TIMED)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--runs", type=int, default=3, help="runs per code; the least CPU time per phase is kept")
    parser.add_argument("--record", choices=("on", "off"), default="on")
    parser.add_argument("--baseline", metavar="CHECKOUT", help="another revision's checkout, measured side by side")
    args = parser.parse_args()
    codes: dict[str, str | None] = {"this code": None}
    if args.baseline is not None:
        if not (Path(args.baseline) / "mesa_llm" / "__init__.py").is_file():
            parser.error(f"--baseline {args.baseline}: not a checkout of mesa_llm")
        codes = {"baseline": args.baseline, "this code": None}
    best: dict[str, dict[str, float]] = {label: {} for label in codes}
    for run in range(max(args.runs, 1)):
        # each code first in every other round, so that an order effect (a run measured after the
        # other's, with its file still being written back) falls on both alike
        for label, code in list(codes.items())[:: -1 if run % 2 else 1]:
            row = in_checkout(code, "bench_step_phases", "measure", args.agents, args.steps, args.record == "on")
            for phase, seconds in row.items():
                best[label][phase] = min(best[label].get(phase, seconds), seconds)
    n = args.agents * args.steps
    print(f"{args.agents} agents x {args.steps} steps, recording {args.record}: CPU us per agent-step (least of {args.runs} runs)")
    print(f"{'phase':>9} " + " ".join(f"{label:>10}" for label in codes) + ("   ratio" if len(codes) == 2 else ""))
    for phase in PHASES:
        values = [best[label][phase] / n * 1e6 for label in codes]
        ratio = f"   {values[1] / values[0]:.2f}x" if len(values) == 2 and values[0] else ""
        print(f"{phase:>9} " + " ".join(f"{v:>10.1f}" for v in values) + ratio)
    total = {label: n / best[label]["total"] for label in codes}
    print("agent-steps per CPU-s: " + ", ".join(f"{label} {v:,.0f}" for label, v in total.items()))
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
