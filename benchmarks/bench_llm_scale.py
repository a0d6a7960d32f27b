"""One step of N LLM agents (plan + act) against an OpenAI-compatible server answering in 200 ms.

Run: ``python benchmarks/bench_llm_scale.py [--agents 1000 10000] [--concurrency 256] [--small 100]
[--baseline /path/to/other/checkout] [--transport 2000] [--backend 3000]``. With ``--baseline`` every size is also measured with that
checkout's ``mesa_llm`` (e.g. main's, as the base of a change), right after this one's, side by side.
Each size runs in a fresh process (its own CPU time and memory) against
``benchmarks/async_openai_server.py`` in another process (its CPU is not the client's), through
the real code path (litellm backend, recording on; no step time limit, so every call is made). Printed per size: the step's wall time, its
floor ceil(calls / concurrency) x 0.2 s and the ratio, the client's CPU per call, and the server's
CPU per call (a server that cannot keep up would show here, not in the client), and the time the
garbage collector took during the step, and the client's CPU per call divided by the server's (the server
runs the same code for every checkout, so this ratio measures the client with the machine's speed of the moment
divided out: steadier than either figure alone). With ``--transport CALLS``: the HTTP layer alone, aiohttp against this checkout's own client
(:mod:`mesa_llm.llm.http1`), alternating in one process. With ``--backend CALLS``: ``LiteLLMChatModel.complete``
alone (an act-like request: a kept tool list, a new user prompt per call), this checkout and the baseline in
alternating processes: steadier than a whole step (no prompts, policy or recording). Targets (issue 24):
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, math, os, sys, tempfile, time
from mesa_llm.model import MarketModel  # from PYTHONPATH: this checkout's or the baseline's
from mesa_llm.scenario import load_scenario

def _spec(agents, steps, concurrency, api_base):  # as benchmarks/bench_llm.py builds it (not imported:
    half = agents // 2                             # it would put this checkout first on sys.path)
    spec = load_scenario("llm_double_auction", overrides=[
        f"steps={steps}", f"populations.0.count={half}", f"populations.1.count={agents - half}",
        "populations.2.count=0", "populations.3.count=0", "populations.0.params.plan_every=1",
        "populations.1.params.plan_every=1", f"llm.concurrency={concurrency}", "llm.max_cost_usd=null"])
    spec.llm = spec.llm.model_copy(update={"api_base": api_base, "timeout": 30.0})
    return spec

agents, concurrency, latency_s, base = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
def server_stats():
    print("stats", flush=True)
    return json.loads(sys.stdin.readline())
with tempfile.TemporaryDirectory() as out:
    spec = _spec(agents, 2, concurrency, api_base=base)
    spec.llm = spec.llm.model_copy(update={"step_timeout": None})  # measure the whole step, however slow
    model = MarketModel(spec, output_dir=out, llm_model="openai/fake-model")
    marks, stats = [(time.perf_counter(), time.process_time())], []
    import gc
    gc_s, gc_started = [0.0], [0.0]
    def gc_clock(phase, info):  # the collector's time during the measured (second) step
        if phase == "start":
            gc_started[0] = time.perf_counter()
        elif len(marks) == 3:
            gc_s[0] += time.perf_counter() - gc_started[0]
    gc.callbacks.append(gc_clock)
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
      "cpu_ms_per_call": 1000 * cpu / calls, "server_cpu_ms_per_call": 1000 * server_cpu / calls,
      "gc_s": gc_s[0], "mesa_llm": os.path.dirname(os.path.dirname(sys.modules["mesa_llm"].__file__))}), flush=True)
"""


_TRANSPORT = r"""
import asyncio, json, sys, time
from mesa_llm.llm import http1
from mesa_llm.llm.limits import ConcurrencyLimiter
from mesa_llm.llm.litellm_backend import LiteLLMChatModel
from mesa_llm.llm.types import ChatRequest
calls, base = int(sys.argv[1]), sys.argv[2]
chat = LiteLLMChatModel("openai/fake-model", api_base=base, timeout=30.0, limiter=ConcurrencyLimiter(64),
                        input_cost_per_token=0.0, output_cost_per_token=0.0)
request = ChatRequest(model="openai/fake-model", messages=[{"role": "system", "content": "You trade. " * 100},
                      {"role": "user", "content": "Cash 500, value 150. Act."}], temperature=0.7, max_tokens=300, seed=1)
async def main():
    loop, out = asyncio.get_running_loop(), {"aiohttp": [], "http1": []}
    for _ in range(5):  # alternating rounds: both see the same load
        for mode in ("aiohttp", "http1"):
            (http1.install if mode == "http1" else http1.close)(loop)
            await asyncio.gather(*(chat.complete(request) for _ in range(64)))  # connections open
            started = time.process_time()
            await asyncio.gather(*(chat.complete(request) for _ in range(calls)))
            out[mode].append(1e6 * (time.process_time() - started) / calls)
    http1.close(loop)
    return out
print("RESULT " + json.dumps(asyncio.run(main())), flush=True)
"""


_BACKEND = r"""
import asyncio, json, os, sys, time
from mesa_llm.llm import http1
from mesa_llm.llm.limits import ConcurrencyLimiter
from mesa_llm.llm.litellm_backend import LiteLLMChatModel
from mesa_llm.llm.types import ChatRequest, canonical_json
calls, base = int(sys.argv[1]), sys.argv[2]
chat = LiteLLMChatModel("openai/fake-model", api_base=base, timeout=30.0, limiter=ConcurrencyLimiter(64),
                        input_cost_per_token=0.0, output_cost_per_token=0.0)
tools = [{"type": "function", "function": {"name": f"tool_{i}", "description": "Does a thing. " * 8, "parameters": {
    "type": "object", "properties": {"price": {"type": "number", "minimum": 0.01, "maximum": 200.0},
    "quantity": {"type": "integer", "minimum": 1, "maximum": 9}}, "required": ["price"]}}} for i in range(6)]
tools_json, system = canonical_json(tools), "You trade on an exchange. " * 60
def request(i):  # an act call as an LLM policy makes it: its run-long tool list, a new user prompt each call
    user = f"Step {i}. Your account: cash {500 + i}; holdings apples {i % 7}. Market: last trade at 101. " * 12
    return ChatRequest(model="openai/fake-model", messages=[{"role": "system", "content": system},
                       {"role": "user", "content": user}], tools=tools, tool_choice="auto", temperature=0.7,
                       max_tokens=300, seed=1, tools_json=tools_json)
async def main():
    http1.install(asyncio.get_running_loop())
    await asyncio.gather(*(chat.complete(request(i)) for i in range(64)))  # connections open, shapes made
    started = time.process_time()
    await asyncio.gather(*(chat.complete(request(i)) for i in range(calls)))
    return 1e6 * (time.process_time() - started) / calls
print("RESULT " + json.dumps(asyncio.run(main())), flush=True)
"""


def measure_backend(calls: int, codes: list[tuple[str, Path]], rounds: int = 5) -> dict[str, list[float]]:
    """Client CPU per ``LiteLLMChatModel.complete`` (us) of an act-like request against a server
    answering at once, for each checkout in ``codes`` (a fresh process each), in alternating rounds:
    the backend alone (request body, HTTP, answer), without prompts, the policy or the recording."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", "sk-fake-benchmark-key")}
    server = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "async_openai_server.py"), "0"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    assert server.stdin is not None and server.stdout is not None
    out: dict[str, list[float]] = {label: [] for label, _ in codes}
    try:
        base = f"http://127.0.0.1:{int(server.stdout.readline())}/v1"
        for _ in range(rounds):
            for label, code in codes:
                done = subprocess.run([sys.executable, "-c", _BACKEND, str(calls), base], capture_output=True,
                                      text=True, cwd=code, env={**env, "PYTHONPATH": str(code)}, check=True)
                line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
                out[label].append(float(json.loads(line[len("RESULT "):])))
        return out
    finally:
        server.stdin.close()
        server.wait(timeout=30)


def measure_transport(calls: int) -> dict[str, list[float]]:
    """Client CPU per ``LiteLLMChatModel.complete`` (us) against a server answering at once, through
    aiohttp and through mesa_llm.llm.http1 in alternating rounds of the same process (this checkout)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", "sk-fake-benchmark-key")}
    server = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "async_openai_server.py"), "0"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    assert server.stdin is not None and server.stdout is not None
    try:
        base = f"http://127.0.0.1:{int(server.stdout.readline())}/v1"
        done = subprocess.run([sys.executable, "-c", _TRANSPORT, str(calls), base], capture_output=True, text=True,
                              cwd=ROOT, env=env, check=True)
        line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
        result: dict[str, list[float]] = json.loads(line[len("RESULT "):])
        return result
    finally:
        server.stdin.close()
        server.wait(timeout=30)


def measure(agents: int, concurrency: int, latency_s: float = 0.2, code: Path = ROOT) -> dict[str, float]:
    """The second step of ``agents`` LLM agents (the first opens connections), in a fresh process
    that imports ``mesa_llm`` from ``code`` (this checkout, or a baseline's)."""
    env = {**os.environ, "MESA_LLM_MAX_AGENTS": str(max(agents, 1)), "PYTHONPATH": str(code),
           "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", "sk-fake-benchmark-key")}
    server = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "async_openai_server.py"), str(latency_s)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    assert server.stdin is not None and server.stdout is not None
    try:
        base = f"http://127.0.0.1:{int(server.stdout.readline())}/v1"
        # cwd: ``python -c`` puts it first on sys.path, so it must be the checkout measured
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(agents), str(concurrency), str(latency_s), base],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=code, env=env)
        assert child.stdin is not None and child.stdout is not None
        for line in child.stdout:  # relay the child's "stats" requests to the server
            if line.strip() == "stats":
                server.stdin.write("stats\n")
                server.stdin.flush()
                child.stdin.write(server.stdout.readline())
                child.stdin.flush()
            elif line.startswith("RESULT "):
                result: dict[str, Any] = json.loads(line[len("RESULT "):])
        if child.wait() != 0:
            raise SystemExit(f"benchmark child failed for {agents} agents")
        if Path(result["mesa_llm"]).resolve() != code.resolve():
            raise SystemExit(f"the child imported mesa_llm from {result['mesa_llm']}, not {code}")
        return result
    finally:
        server.stdin.close()
        server.wait(timeout=30)


def _client_per_server(r: dict[str, Any]) -> float:
    """The client's CPU per call over the server's in the same run: the server runs the same code for
    either checkout, so its CPU per call measures the machine's speed at that moment (which swings
    1.5x within minutes on a shared VM), and the ratio is steadier than the client's figure alone."""
    server = r["server_cpu_ms_per_call"]
    return r["cpu_ms_per_call"] / server if server > 0 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--small", type=int, default=100, help="agents of the small run at concurrency = agents")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another checkout (e.g. main's) measured the same way, each size right after this one")
    parser.add_argument("--transport", type=int, default=0, metavar="CALLS",
                        help="also: the HTTP layer alone, CALLS calls per round through aiohttp and http1 alternately")
    parser.add_argument("--backend", type=int, default=0, metavar="CALLS",
                        help="also: LiteLLMChatModel.complete alone, CALLS act-like calls per round, this checkout "
                        "and the baseline in alternating processes")
    args = parser.parse_args()
    if args.baseline is not None and not (args.baseline / "mesa_llm" / "__init__.py").is_file():
        raise SystemExit(f"--baseline {args.baseline}: no mesa_llm package there")
    sizes = [(n, args.concurrency) for n in args.agents] + ([(args.small, args.small)] if args.small else [])
    codes = [("this", ROOT)] + ([("baseline", args.baseline.resolve())] if args.baseline is not None else [])
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; this: {ROOT}"
          + (f"; baseline: {args.baseline}" if args.baseline is not None else ""))
    runs: list[tuple[str, dict[str, float]]] = []
    for agents, concurrency in sizes:
        for label, code in codes:
            runs.append((label, measure(agents, concurrency, code=code)))
            r = runs[-1][1]
            print(f"{label:>8} {int(r['agents']):>6} agents, {int(r['calls']):>6} calls, concurrency "
                  f"{int(r['concurrency'])}: step {r['seconds']:.2f} s, floor {r['floor']:.2f} s, ratio {r['ratio']:.2f}; "
                  f"client CPU {r['cpu_ms_per_call']:.3f} ms/call, server CPU {r['server_cpu_ms_per_call']:.3f} ms/call "
                  f"(client/server {_client_per_server(r):.2f}); "
                  f"GC {r.get('gc_s', float('nan')):.2f} s; most in flight {int(r['max_in_flight'])}; "
                  f"first step {r['first_step_s']:.2f} s; load {os.getloadavg()[0]:.2f}", flush=True)
    if args.transport:
        t = measure_transport(args.transport)
        best = {mode: min(v) for mode, v in t.items()}
        print(f"HTTP layer (LiteLLMChatModel.complete, server answering at once, least of 5 alternating rounds of "
              f"{args.transport}): aiohttp {best['aiohttp']:.0f} us, http1 {best['http1']:.0f} us per call "
              f"(saves {best['aiohttp'] - best['http1']:.0f} us); medians {sorted(t['aiohttp'])[2]:.0f} / "
              f"{sorted(t['http1'])[2]:.0f} us; load {os.getloadavg()[0]:.2f}", flush=True)
    if args.backend:
        b = measure_backend(args.backend, codes)
        print(f"backend alone (LiteLLMChatModel.complete of an act-like request, server answering at once, "
              f"{args.backend} calls a round, 5 alternating rounds), client CPU us per call, least / median: "
              + "; ".join(f"{label} {min(v):.0f} / {sorted(v)[len(v) // 2]:.0f}" for label, v in b.items())
              + (f"; this / baseline {min(b['this']) / min(b['baseline']):.2f}x" if "baseline" in b else "")
              + f"; load {os.getloadavg()[0]:.2f}", flush=True)
    if args.baseline is not None:
        print("this vs baseline (step wall time and client CPU per call; < 1 is faster):")
        for (_, new), (_, old) in zip(runs[::2], runs[1::2], strict=True):
            print(f"  {int(new['agents']):>6} agents c={int(new['concurrency'])}: step {new['seconds']:.2f} / "
                  f"{old['seconds']:.2f} s = {new['seconds'] / old['seconds']:.2f}x (floor {new['floor']:.2f} s: "
                  f"{new['ratio']:.2f} vs {old['ratio']:.2f}); CPU {new['cpu_ms_per_call']:.3f} / "
                  f"{old['cpu_ms_per_call']:.3f} ms/call = {new['cpu_ms_per_call'] / old['cpu_ms_per_call']:.2f}x; "
                  f"client/server CPU {_client_per_server(new):.2f} / {_client_per_server(old):.2f} = "
                  f"{_client_per_server(new) / _client_per_server(old):.2f}x")


if __name__ == "__main__":
    main()
