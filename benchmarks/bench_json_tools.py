"""JSON tool mode's per-agent schema time at 100 to 10,000 LLM agents (issue 24: flat in the number of agents).

Run: ``python benchmarks/bench_json_tools.py [--agents 100 1000 10000] [--sample 400] [--baseline /path/to/checkout]``.
Each size builds ``llm_double_auction`` with that many LLM agents in ``tool_mode: json`` (no model is called, no
recording) in a fresh process importing ``mesa_llm`` from this checkout (and, with ``--baseline``, from that one,
right after). Up to ``--sample`` agents spread over the ids then build their step's tools from their first
observation (``LLMPolicy._offer_tools``: the narrowed JSON-mode schemas, as every act call does); three rounds, the
least kept (the first round also fills the per-agent caches). Printed: CPU microseconds per agent, and the ratio to
the smallest size's figure in the same process set (flat in N is ~1).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, os, sys, time
from mesa_llm.model import MarketModel  # from PYTHONPATH: this checkout's or the baseline's
from mesa_llm.prompt_check import _NeverCalled
from mesa_llm.scenario import load_scenario

agents, sample = int(sys.argv[1]), int(sys.argv[2])
half = agents // 2
spec = load_scenario("llm_double_auction", overrides=[
    "steps=2", f"populations.0.count={half}", f"populations.1.count={agents - half}",
    "populations.2.count=0", "populations.3.count=0",
    "populations.0.params.tool_mode=json", "populations.1.params.tool_mode=json"])
model = MarketModel(spec, record=False, chat_model=_NeverCalled())
pairs = [(a.policy, o) for a, o in model.preview_observations() if hasattr(a.policy, "_offer_tools")]
assert len(pairs) == agents, (len(pairs), agents)
every = max(1, len(pairs) // sample)
chosen = pairs[::every][:sample]
assert all(p.tool_mode == "json" for p, _ in chosen)
rounds = []
for _ in range(3):
    started = time.process_time()
    for policy, observation in chosen:
        policy._offer_tools(observation)
    rounds.append(1e6 * (time.process_time() - started) / len(chosen))
print("RESULT " + json.dumps({"agents": agents, "sampled": len(chosen), "us_per_agent": min(rounds),
      "mesa_llm": os.path.dirname(os.path.dirname(sys.modules["mesa_llm"].__file__))}), flush=True)
"""


def measure(agents: int, sample: int, code: Path) -> dict[str, float]:
    """Per-agent CPU (us) of building a JSON-mode agent's step tools among ``agents`` LLM agents."""
    env = {**os.environ, "MESA_LLM_MAX_AGENTS": str(max(agents, 1)), "PYTHONPATH": str(code)}
    done = subprocess.run([sys.executable, "-c", _CHILD, str(agents), str(sample)], capture_output=True, text=True,
                          cwd=code, env=env)
    if done.returncode != 0:
        raise SystemExit(f"benchmark child failed for {agents} agents:\n{done.stderr[-2000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    result: dict[str, float] = json.loads(line[len("RESULT "):])
    if Path(str(result["mesa_llm"])).resolve() != code.resolve():
        raise SystemExit(f"the child imported mesa_llm from {result['mesa_llm']}, not {code}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--sample", type=int, default=400, help="agents timed per size (spread over the ids)")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout (e.g. main's), measured alike")
    args = parser.parse_args()
    if args.baseline is not None and not (args.baseline / "mesa_llm" / "__init__.py").is_file():
        raise SystemExit(f"--baseline {args.baseline}: no mesa_llm package there")
    codes = [("this", ROOT)] + ([("baseline", args.baseline.resolve())] if args.baseline is not None else [])
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; this: {ROOT}"
          + (f"; baseline: {args.baseline}" if args.baseline is not None else ""))
    first: dict[str, float] = {}
    for agents in args.agents:
        row = []
        for label, code in codes:
            r = measure(agents, args.sample, code)
            first.setdefault(label, r["us_per_agent"])
            row.append(f"{label} {r['us_per_agent']:8.1f} us/agent ({r['us_per_agent'] / first[label]:5.2f}x of "
                       f"{args.agents[0]} agents)")
        print(f"{agents:>6} agents (json tool mode, {args.sample} sampled): " + "; ".join(row)
              + f"; load {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
