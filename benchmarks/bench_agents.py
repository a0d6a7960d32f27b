"""Rule-based agent-steps per second: 1,000 agents x 100 steps, with full recording on and off.

Run: ``python benchmarks/bench_agents.py [--agents 1000] [--steps 100] [--baseline CHECKOUT]``.
Every agent places an order every step (ZI-C buyers and sellers with 100-unit schedules), so this
is the busy case: observation, decision, validation, reservation, clearing, settlement and (when
on) one JSON line per observation, action, order and trade.

``--baseline CHECKOUT`` (a checkout of another revision, e.g. ``git worktree add /tmp/base main``)
measures that code in the same run, in a subprocess whose ``PYTHONPATH`` is the checkout, modes
interleaved (baseline, this code, ...), and prints the ratios of wall-clock and of CPU time
(agent-steps per second of the process's CPU time, which a loaded machine disturbs less);
``--repeat N`` runs each N times and keeps the run with the least CPU time (the machine is shared). The two recordings' events are compared (timestamps
aside): a speed-up must not change a result.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from busy_market import busy_market, in_checkout

from mesa_llm.model import MarketModel


def run(
    agents: int = 1000, steps: int = 100, seed: int = 1, modes: tuple[bool, ...] = (True, False), keep: str | None = None
) -> list[dict[str, Any]]:
    """Time the model with recording on and off (``modes``); return one row per mode.

    ``keep``: a file the recording (with recording on) is copied to, timestamps removed."""
    spec = busy_market(agents, steps)
    rows = []
    for record in modes:
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            model = MarketModel(spec, seed=seed, output_dir=out, record=record)
            built, cpu = time.perf_counter(), time.process_time()
            model.run()
            elapsed = time.perf_counter() - built
            cpu = time.process_time() - cpu
            events = model.recorder.get_stats()["total_events"] if model.recorder is not None else 0
            size = model.recording_path.stat().st_size if model.recording_path else 0
            if keep is not None and model.recording_path is not None:
                _strip_timestamps(model.recording_path, Path(keep))
        rows.append(
            {
                "recording": "on" if record else "off",
                "agents": agents,
                "steps": steps,
                "build_s": built - start,
                "run_s": elapsed,
                "agent_steps_per_s": agents * steps / elapsed,
                "cpu_s": cpu,
                # per second of this process's CPU time: what a shared machine's load disturbs least
                "agent_steps_per_cpu_s": agents * steps / cpu if cpu > 0 else float("nan"),
                "trades": model.tallies.trades,
                "events": events,
                "recording_mb": size / 1e6,
            }
        )
    return rows


_TIMESTAMP = re.compile(rb'"timestamp":"[^"]*"')


def _strip_timestamps(src: Path, dst: Path) -> None:
    """Copy a recording without its timestamps and its header line (versions, paths)."""
    with open(src, "rb") as f, open(dst, "wb") as out:
        next(f, None)
        for line in f:
            out.write(_TIMESTAMP.sub(b'"timestamp":""', line))


def _measure(code: str | None, agents: int, steps: int, record: bool, keep: str | None) -> dict[str, Any]:
    """One mode's row, measured in a fresh process running ``code`` (a checkout; None: this one)."""
    row: dict[str, Any] = in_checkout(code, "bench_agents", "run", agents, steps, modes=[record], keep=keep)[0]
    return row

def _line(label: str, row: dict[str, Any]) -> str:
    return (
        f"{label:>9} recording {row['recording']:>3}: {row['agents']} agents x {row['steps']} steps in "
        f"{row['run_s']:.2f} s -> {row['agent_steps_per_s']:>7,.0f} agent-steps/s "
        f"({row['agent_steps_per_cpu_s']:>7,.0f} per CPU-s) "
        f"({row['trades']:,} trades, {row['events']:,} events, {row['recording_mb']:.1f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--baseline", metavar="CHECKOUT", help="another revision's checkout, measured side by side")
    parser.add_argument("--repeat", type=int, default=1, help="runs per mode and code; the best is kept")
    args = parser.parse_args()
    if args.baseline is None:
        for row in run(args.agents, args.steps):
            print(_line("", row))
        return
    if not (Path(args.baseline) / "mesa_llm" / "__init__.py").is_file():
        parser.error(f"--baseline {args.baseline}: not a checkout of mesa_llm (no mesa_llm/__init__.py)")
    with tempfile.TemporaryDirectory() as tmp:
        keep = {"baseline": str(Path(tmp) / "baseline.jsonl"), "this code": str(Path(tmp) / "this.jsonl")}
        best: dict[tuple[str, bool], dict[str, Any]] = {}
        for _ in range(max(args.repeat, 1)):
            for record in (True, False):
                for label, code in (("baseline", args.baseline), ("this code", None)):
                    row = _measure(code, args.agents, args.steps, record, keep[label] if record else None)
                    old = best.get((label, record))
                    if old is None or row["cpu_s"] < old["cpu_s"]:
                        best[label, record] = row
        same = Path(keep["baseline"]).read_bytes() == Path(keep["this code"]).read_bytes()
    for record in (True, False):
        base, this = best["baseline", record], best["this code", record]
        print(_line("baseline", base))
        print(_line("this code", this))
        print(
            f"{'':>9} ratio {this['agent_steps_per_s'] / base['agent_steps_per_s']:.2f}x wall, "
            f"{this['agent_steps_per_cpu_s'] / base['agent_steps_per_cpu_s']:.2f}x CPU"
        )
    print(f"recordings identical (timestamps aside): {'yes' if same else 'NO'}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
