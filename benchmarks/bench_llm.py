"""LLM agent benchmarks: concurrency against a slow server, and the framework's own overhead.

Run: ``python benchmarks/bench_llm.py [--concurrency 32 100] [--repeat 3]``. Two numbers:

1. One step of 100 LLM agents (plan + act = 200 calls) through the real litellm HTTP path against
   the fake OpenAI-compatible server of ``tests/`` adding 200 ms per call, at concurrency 32 and 100
   (medians of ``--repeat`` runs). Ideal: ceil(200 / concurrency) x 0.2 s = 1.4 s and 0.4 s
   (target: at most 1.3x that), and the client's CPU time per call (target: at most 1.5 ms). The
   server runs in its own process so its CPU is not counted as the client's; on a busy machine it
   competes with the client for cores, which shows in the ratio at concurrency 100. The existing
   mesa-llm steps agents one after another: 100 x 2 x 0.2 s = 40 s.
2. Framework overhead per LLM agent-step with an instant in-process chat model: observation,
   Jinja rendering, parsing, validation, resolution and recording (target: at most 1 ms).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mesa_llm.llm import ChatRequest, ChatResponse  # noqa: E402
from mesa_llm.llm.testing import ScriptedChatModel, text_response, tool_call_response  # noqa: E402
from mesa_llm.model import MarketModel  # noqa: E402
from mesa_llm.scenario import ScenarioSpec, load_scenario  # noqa: E402


def _spec(agents: int, steps: int, concurrency: int, api_base: str | None = None) -> ScenarioSpec:
    half = agents // 2
    spec = load_scenario(
        "llm_double_auction",
        overrides=[
            f"steps={steps}",
            f"populations.0.count={half}",
            f"populations.1.count={agents - half}",
            "populations.2.count=0",
            "populations.3.count=0",
            "populations.0.params.plan_every=1",
            "populations.1.params.plan_every=1",
            f"llm.concurrency={concurrency}",
            "llm.max_cost_usd=null",
        ],
    )
    if api_base is not None:
        spec.llm = spec.llm.model_copy(update={"api_base": api_base, "timeout": 30.0})
    return spec


def instant(request: ChatRequest) -> ChatResponse:
    """An instant model that plans and bids (so orders, clearing and trades happen too)."""
    if request.purpose == "plan":
        return text_response("Bid under value, ask over cost.")
    text = "\n".join(m["content"] for m in request.messages if m["role"] == "user")
    side = "buy" if "values of your next units" in text else "sell"
    price = 99.0 if side == "buy" else 101.0
    if side == "buy" and "no units left" in text:
        return tool_call_response("wait", {})
    return tool_call_response("place_order", {"good": "widget", "side": side, "price": price, "quantity": 1})


def overhead(agents: int = 100, steps: int = 20) -> dict[str, Any]:
    """Seconds per LLM agent-step with an instant in-process model, recording on."""
    with tempfile.TemporaryDirectory() as out:
        model = MarketModel(_spec(agents, steps, 32), output_dir=out, chat_model=ScriptedChatModel(instant))
        start = time.perf_counter()
        model.run()
        elapsed = time.perf_counter() - start
    calls = model.usage.run.calls
    return {"agents": agents, "steps": steps, "calls": calls, "seconds": elapsed,
            "ms_per_agent_step": 1000 * elapsed / (agents * steps)}


_SERVER_SCRIPT = """
import json, sys
from tests.fake_openai_server import FakeOpenAIServer
with FakeOpenAIServer(latency_s=float(sys.argv[1])) as server:
    print(server.port, flush=True)
    for line in sys.stdin:  # one command a line: "stats" answers, end of input stops
        if line.strip() == "stats":
            print(json.dumps([server.request_count, server.max_in_flight]), flush=True)
            server.reset()
"""


class _ServerProcess:
    """The fake server in a child process, so its CPU time is not counted as the client's."""

    def __init__(self, latency_s: float) -> None:
        import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER_SCRIPT, str(latency_s)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        self.base_url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}/v1"

    def stats(self) -> tuple[int, int]:
        """(requests, most in flight at once) since the last call."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        count, most = json.loads(self.proc.stdout.readline())
        return int(count), int(most)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def latency(agents: int = 100, latency_s: float = 0.2, concurrency: int = 32) -> dict[str, Any]:
    """Wall time and client CPU of one step of ``agents`` LLM agents (plan + act) against a slow fake
    server running in another process (so the CPU time measured here is the client's alone)."""
    import os

    os.environ.setdefault("OPENAI_API_KEY", "sk-fake-benchmark-key")
    server = _ServerProcess(latency_s)
    try:
        with tempfile.TemporaryDirectory() as out:
            spec = _spec(agents, 2, concurrency, api_base=server.base_url)
            # building the model imports litellm and warms up its client code (not timed)
            model = MarketModel(spec, output_dir=out, llm_model="openai/fake-model")
            server.stats()
            marks = [(time.perf_counter(), time.process_time())]
            stats: list[tuple[int, int]] = []

            def tick(step: int) -> None:
                marks.append((time.perf_counter(), time.process_time()))
                stats.append(server.stats())  # the round trip is not timed: a new mark follows
                marks.append((time.perf_counter(), time.process_time()))

            model.run(progress=tick)  # the real code path, as `mesa-llm run` uses it
    finally:
        server.close()
    first = marks[1][0] - marks[0][0]
    wall, cpu = marks[3][0] - marks[2][0], marks[3][1] - marks[2][1]
    calls, max_in_flight = stats[1]
    ideal = math.ceil(calls / concurrency) * latency_s
    return {"agents": agents, "concurrency": concurrency, "calls": calls, "first_step_s": first,
            "seconds": wall, "ideal": ideal, "ratio": wall / ideal, "max_in_flight": max_in_flight,
            "cpu_ms_per_call": 1000 * cpu / calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 100])
    parser.add_argument("--repeat", type=int, default=3, help="runs per concurrency (the median is shown)")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    if not args.skip_overhead:
        o = overhead(args.agents)
        print(f"framework overhead: {o['ms_per_agent_step']:.3f} ms per LLM agent-step "
              f"({o['agents']} agents x {o['steps']} steps, {o['calls']} calls, {o['seconds']:.2f} s, recording on)")
    if args.skip_latency:
        return
    for concurrency in args.concurrency:
        runs = [latency(args.agents, concurrency=concurrency) for _ in range(args.repeat)]
        ratios = sorted(r["ratio"] for r in runs)
        cpus = sorted(r["cpu_ms_per_call"] for r in runs)
        r = runs[0]
        print(f"one step, {r['agents']} LLM agents, {r['calls']} calls at 200 ms, concurrency {concurrency}: "
              f"ratio to ideal ({r['ideal']:.2f} s) median {statistics.median(ratios):.2f} "
              f"[{', '.join(f'{x:.2f}' for x in ratios)}]; client CPU per call median "
              f"{statistics.median(cpus):.2f} ms [{', '.join(f'{x:.2f}' for x in cpus)}]; "
              f"most in flight {max(x['max_in_flight'] for x in runs)}; first step incl. connection "
              f"set-up {statistics.median(x['first_step_s'] for x in runs):.2f} s")


if __name__ == "__main__":
    main()
