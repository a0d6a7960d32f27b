"""`mesa-llm serve` under load: a 100-agent rule-based run streamed to 10 WebSocket clients.

Starts the real command (uvicorn on 127.0.0.1, a free port) in a subprocess, creates a
double_auction run with 50 buyers and 50 sellers (ZI-C) for ``--steps`` steps (default 10,000),
connects ``--clients`` WebSocket clients (default 10) and runs it as fast as it goes. Prints:

* steps per second served (steps / wall time of the run, every client connected);
* step-to-message latency p50 / p99: from the end of a step (the update's ``timestamp``) to its
  arrival at a client, over every update every client received;
* updates received per client and how many steps were coalesced for slow clients;
* the server's resident memory (VmRSS) every ``--steps``/10 steps: it must stay flat.

    python benchmarks/bench_server.py [--steps 10000] [--clients 10] [--events '*'] [--keep]

``--events`` is each client's stream filter (``*``: every event, ~175 kB per update at 100
agents; ``trade,clearing``: the market's results; ``none``: state only). The recording
(~1.7 GB at 10,000 steps with every event) is written to a temporary folder and deleted unless
``--keep``. Clients read the envelope of each message (timestamp, tick, skipped counts) without
decoding the rest, so the measure is the server's, not the clients' JSON parsing.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(importlib.util.find_spec("mesa_llm").origin or ".").resolve().parent.parent  # type: ignore[union-attr]
_ENVELOPE = re.compile(
    r'^\{"type":"state_update","simulation_id":"[^"]*","timestamp":([0-9.e+-]+),"tick":(\d+),'
    r'"skipped_updates":(\d+),"skipped_events":(\d+)'
)


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _request(port: int, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=60) as response:
        return json.loads(response.read())


def _start(recordings: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    log = recordings.parent / "server.log"
    handle = log.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesa_llm", "serve", "--port", "0", "--recordings", str(recordings)],
        cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"server at http://127\.0\.0\.1:(\d+)/", log.read_text(errors="replace"))
        if found:
            return proc, int(found.group(1)), log
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the server did not start: {log.read_text(errors='replace')[-2000:]}")


async def _client(url: str, latencies: list[float], stats: dict[str, int], done: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, max_size=None, max_queue=4) as ws:
        async for text in ws:
            now = time.time()
            assert isinstance(text, str)
            found = _ENVELOPE.match(text[:300])
            if found is None:
                if '"simulation_end"' in text[:40]:
                    break
                continue
            latencies.append(now - float(found.group(1)))
            stats["updates"] += 1
            stats["skipped_updates"] += int(found.group(3))
            stats["tick"] = int(found.group(2))
    done.set()


async def _run(args: argparse.Namespace, port: int, pid: int) -> dict[str, Any]:
    body = {
        "scenario": "double_auction", "seed": 1, "steps": args.steps,
        "overrides": ["populations.0.count=50", "populations.1.count=50"],
    }  # fmt: skip
    sim = _request(port, "POST", "/api/simulations", body)
    url = f"ws://127.0.0.1:{port}/api/simulations/{sim['id']}/stream?events={args.events}"
    latencies: list[list[float]] = [[] for _ in range(args.clients)]
    stats = [{"updates": 0, "skipped_updates": 0, "tick": 0} for _ in range(args.clients)]
    dones = [asyncio.Event() for _ in range(args.clients)]
    tasks = [asyncio.create_task(_client(url, latencies[i], stats[i], dones[i])) for i in range(args.clients)]
    while _request(port, "GET", f"/api/simulations/{sim['id']}")["clients"] < args.clients:
        await asyncio.sleep(0.05)
    memory: list[tuple[int, int]] = [(0, _rss(pid))]
    every = max(1, args.steps // 10)
    started = time.perf_counter()
    _request(port, "POST", f"/api/simulations/{sim['id']}/run", {"rate": 0})
    while True:
        info = await asyncio.to_thread(_request, port, "GET", f"/api/simulations/{sim['id']}")
        if info["step"] >= memory[-1][0] + every or info["status"] != "running":
            memory.append((info["step"], _rss(pid)))
        if info["status"] != "running":
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    every_latency = sorted(x for lat in latencies for x in lat) or [float("nan")]
    return {
        "steps": info["step"],
        "seconds": elapsed,
        "steps_per_second": info["step"] / elapsed,
        "latency_p50_ms": 1000 * statistics.median(every_latency),
        "latency_p99_ms": 1000 * every_latency[min(len(every_latency) - 1, int(0.99 * len(every_latency)))],
        "clients": stats,
        "memory": memory,
        "recording": sim["recording"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--events", default="*", help="each client's stream filter: '*', 'none' or types")
    parser.add_argument("--keep", action="store_true", help="keep the recording and the server's log")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mesa_llm_bench_server_"))
    proc, port, _log = _start(work / "recordings")
    try:
        result = asyncio.run(_run(args, port, proc.pid))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    mb = 1024 * 1024
    print(f"{result['steps']} steps of 100 agents, {args.clients} clients (events={args.events}): "
          f"{result['steps_per_second']:.1f} steps/s served ({result['seconds']:.1f} s)")  # fmt: skip
    print(f"step-to-message latency: p50 {result['latency_p50_ms']:.1f} ms, p99 {result['latency_p99_ms']:.1f} ms")
    updates = [c["updates"] for c in result["clients"]] or [0]
    skipped = [c["skipped_updates"] for c in result["clients"]] or [0]
    print(f"updates per client: {min(updates)}-{max(updates)}; steps coalesced per client: {min(skipped)}-{max(skipped)}")
    print("server RSS (MB) by step: " + ", ".join(f"{step}: {rss / mb:.0f}" for step, rss in result["memory"]))
    settled = [rss for step, rss in result["memory"] if step >= result["steps"] // 5]
    if len(settled) >= 2:
        print(f"growth from step {result['steps'] // 5} on: {(settled[-1] - settled[0]) / mb:+.1f} MB")
    if args.keep:
        print(f"kept: {work}")


if __name__ == "__main__":
    main()
