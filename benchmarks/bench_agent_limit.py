"""The agent limit, measured: build and run a few steps of ``double_auction`` with N ZI-C agents
(recording on, as ``mesa-llm run`` does) and report the time per step and the peak memory.

Run: ``python -m benchmarks.bench_agent_limit [--agents 10000 50000 100000] [--steps 3]``. Each N
runs in a fresh process (its own peak RSS), with ``MESA_LLM_MAX_AGENTS`` raised so that sizes past
the limit can be measured. The default limit (``mesa_llm.scenario.DEFAULT_MAX_AGENTS``, 50,000)
is the size whose step stays under ~10 s with memory well under a few GiB on a 2-core machine;
on 2 cores / 23 GiB: 10,000 agents ~1.3 s a step and 0.27 GiB, 50,000 ~7 s and 0.7 GiB,
100,000 ~14 s and 1.2 GiB, 200,000 ~30 s and 2.3 GiB (and ~360 MB of recording a step).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

_CHILD = r"""
import json, resource, sys, tempfile, time
from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario

n, steps = int(sys.argv[1]), int(sys.argv[2])
spec = load_scenario("double_auction", overrides=[f"populations.0.count={n // 2}", f"populations.1.count={n - n // 2}",
                                                  f"steps={steps}", "market.check_invariants=false"])
started = time.perf_counter()
with tempfile.TemporaryDirectory() as out:
    model = MarketModel(spec, output_dir=out)
    built = time.perf_counter()
    marks = [built]
    model.run(progress=lambda _step: marks.append(time.perf_counter()))
    size = model.recording_path.stat().st_size if model.recording_path else 0
step_s = [b - a for a, b in zip(marks, marks[1:])]
print(json.dumps({"agents": n, "build_s": built - started, "step_s": max(step_s), "recording_mb_per_step": size / 1e6 / steps,
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def measure(agents: int, steps: int) -> dict[str, float]:
    """One size, in a fresh process: build time, slowest step, recording per step, peak memory."""
    env = {**os.environ, "MESA_LLM_MAX_AGENTS": str(max(agents, 1))}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(agents), str(steps)], capture_output=True, text=True,
                          env=env, check=True)  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for n in args.agents:
        row = measure(n, args.steps)
        print(f"{row['agents']:>9,} agents: build {row['build_s']:.1f} s, slowest step {row['step_s']:.1f} s, "
              f"peak {row['peak_rss_gib']:.2f} GiB, recording {row['recording_mb_per_step']:.0f} MB a step")  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
