"""Peak memory of a CLI run against its number of steps, with the recording on and off.

Runs ``python -m mesa_llm run <scenario> --steps N`` in a fresh subprocess for each N (the child's
peak RSS is read with ``resource.getrusage(RUSAGE_CHILDREN)`` after each run, one child at a time,
so each figure is that child's own peak) and prints a table with the ratio of every row to the
smallest step count. A run's memory should not grow with its length: the target is a ratio of at
most 1.3 at 1,200 steps against 300.

Usage::

    python benchmarks/bench_memory.py                      # commodity_exchange, 300/1200/3000 steps
    python benchmarks/bench_memory.py --steps 300 1200 --scenario double_auction
    python benchmarks/bench_memory.py --cwd /path/to/checkout   # measure another checkout's code
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def peak_rss_mb(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Run `cmd` in its own process; return (its peak RSS in MB, wall-clock seconds).

    ``ru_maxrss`` of RUSAGE_CHILDREN is the largest peak among the waited-for children, so each
    measurement starts a fresh grandchild from a small wrapper process whose own children are only
    that run.
    """
    wrapper = (
        "import resource, subprocess, sys\n"
        "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(rc)\n"
    )
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, *cmd], cwd=cwd, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    kb = int(proc.stdout.strip().splitlines()[-1])  # Linux reports ru_maxrss in KiB
    return kb / 1024, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="commodity_exchange")
    parser.add_argument("--steps", type=int, nargs="+", default=[300, 1200, 3000])
    parser.add_argument(
        "--cwd",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="checkout whose code runs (python -m mesa_llm picks up the cwd's package)",
    )
    args = parser.parse_args()
    steps = sorted(args.steps)
    print(f"scenario {args.scenario}, code from {args.cwd}, Python {sys.version.split()[0]}")
    print(f"{'record':>8} {'steps':>7} {'peak RSS MB':>12} {'ratio':>7} {'seconds':>8} {'file MB':>8}")
    for record in (True, False):
        base: float | None = None
        for n in steps:
            with tempfile.TemporaryDirectory(prefix="bench_memory_") as out:
                cmd = [sys.executable, "-m", "mesa_llm", "run", args.scenario, "--steps", str(n)]
                cmd += ["--out", out] if record else ["--no-record"]
                rss, seconds = peak_rss_mb(cmd, args.cwd)
                size = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())
            base = rss if base is None else base
            print(
                f"{'on' if record else 'off':>8} {n:>7} {rss:>12.1f} {rss / base:>7.2f} "
                f"{seconds:>8.1f} {size / 1e6:>8.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
