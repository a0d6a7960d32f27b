"""One step of N LLM agents (plan + act) against an OpenAI-compatible server answering in 200 ms.

Run: ``python benchmarks/bench_llm_scale.py [--agents 1000 10000] [--concurrency 256] [--small 100]``.
Each size runs in a fresh process (its own CPU time and memory) against
``benchmarks/async_openai_server.py`` in another process (its CPU is not the client's), through
the real code path (litellm backend, recording on; no step time limit, so every call is made). Printed per size: the step's wall time, its
floor ceil(calls / concurrency) x 0.2 s and the ratio, the client's CPU per call, and the server's
CPU per call (a server that cannot keep up would show here, not in the client). Targets (issue 24):
per-call client CPU flat in N and <= 0.5 ms; 10,000 agents at concurrency 256 within 2x the floor;
100 agents at concurrency 100 within 1.3x.
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
import json, math, os, sys, tempfile, time
sys.path.insert(0, sys.argv[5])
from bench_llm import _spec
from mesa_llm.model import MarketModel

agents, concurrency, latency_s, base = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
def server_stats():
    print("stats", flush=True)
    return json.loads(sys.stdin.readline())
with tempfile.TemporaryDirectory() as out:
    spec = _spec(agents, 2, concurrency, api_base=base)
    spec.llm = spec.llm.model_copy(update={"step_timeout": None})  # measure the whole step, however slow
    model = MarketModel(spec, output_dir=out, llm_model="openai/fake-model")
    marks, stats = [(time.perf_counter(), time.process_time())], []
    def tick(step):
        marks.append((time.perf_counter(), time.process_time()))
        stats.append(server_stats())
        marks.append((time.perf_counter(), time.process_time()))
    server_stats()
    model.run(progress=tick)
first = marks[1][0] - marks[0][0]
wall, cpu = marks[3][0] - marks[2][0], marks[3][1] - marks[2][1]
calls, most, server_cpu = stats[1]
floor = math.ceil(calls / concurrency) * latency_s
print("RESULT " + json.dumps({"agents": agents, "concurrency": concurrency, "calls": calls, "first_step_s": first,
      "seconds": wall, "floor": floor, "ratio": wall / floor, "max_in_flight": most,
      "cpu_ms_per_call": 1000 * cpu / calls, "server_cpu_ms_per_call": 1000 * server_cpu / calls}), flush=True)
"""


def measure(agents: int, concurrency: int, latency_s: float = 0.2) -> dict[str, float]:
    """The second step of ``agents`` LLM agents (the first opens connections), in a fresh process."""
    env = {**os.environ, "MESA_LLM_MAX_AGENTS": str(max(agents, 1)), "PYTHONPATH": str(ROOT),
           "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", "sk-fake-benchmark-key")}
    server = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "async_openai_server.py"), str(latency_s)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    assert server.stdin is not None and server.stdout is not None
    try:
        base = f"http://127.0.0.1:{int(server.stdout.readline())}/v1"
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(agents), str(concurrency), str(latency_s), base,
                                  str(ROOT / "benchmarks")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                 cwd=ROOT, env=env)
        assert child.stdin is not None and child.stdout is not None
        for line in child.stdout:  # relay the child's "stats" requests to the server
            if line.strip() == "stats":
                server.stdin.write("stats\n")
                server.stdin.flush()
                child.stdin.write(server.stdout.readline())
                child.stdin.flush()
            elif line.startswith("RESULT "):
                result: dict[str, float] = json.loads(line[len("RESULT "):])
        if child.wait() != 0:
            raise SystemExit(f"benchmark child failed for {agents} agents")
        return result
    finally:
        server.stdin.close()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--small", type=int, default=100, help="agents of the small run at concurrency = agents")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    runs = [measure(n, args.concurrency) for n in args.agents]
    if args.small:
        runs.append(measure(args.small, args.small))
    for r in runs:
        print(f"{int(r['agents']):>6} agents, {int(r['calls']):>6} calls, concurrency {int(r['concurrency'])}: "
              f"step {r['seconds']:.2f} s, floor {r['floor']:.2f} s, ratio {r['ratio']:.2f}; "
              f"client CPU {r['cpu_ms_per_call']:.3f} ms/call, server CPU {r['server_cpu_ms_per_call']:.3f} ms/call; "
              f"most in flight {int(r['max_in_flight'])}; first step {r['first_step_s']:.2f} s")


if __name__ == "__main__":
    main()
