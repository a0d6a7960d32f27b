"""Benchmark: a large recording into tables, from its stream and from its columnar copy, and point
queries into it (issue 24, part 2).

Run ``python benchmarks/bench_recording_load.py [N_EVENTS] [--recording PATH] [--baseline-loader
FILE] [--baseline CHECKOUT] [--no-pandas]``. It writes a synthetic market recording of about N events (default
1,000,000) with the real `SimulationRecorder` (benchmarks/bench_analysis.py), unless --recording
names one, then times in the same process, one after the other:

* ``load_recording`` from the JSON-lines stream (the envelopes, line sizes, nesting, UTF-8 and
  order checked at load) plus the events table, then the tables a report needs;
* the same with another copy of the loader (--baseline-loader, e.g. the main checkout's
  ``mesa_llm/analysis/loader.py``), for a before/after in one run;
* writing the columnar copy (`mesa_llm.analysis.columnar.write_copy`: what closing a finished run
  adds), then ``load_recording`` again, now from the copy: first with the stream hashed (its stamp
  removed, as on the first load after a run closed), then stamped (the stream's hash not redone);
* with ``--baseline CHECKOUT``: ``load_recording`` from the copy in fresh processes, this checkout
  and CHECKOUT's in turn (three each: a user's script loads once per process, paying what a first
  load pays), so a copy path can be compared with an older one's;
* ``pandas.read_json(lines=True)``, and ``polars.read_ndjson`` when installed, else
  ``pyarrow.json.read_json``: what a generic reader costs on the same file (no checks);
* the point queries ``rec.agent_state(agent, step)``, ``rec.trades_at(step)``,
  ``rec.messages_of(agent)`` on the recording loaded from the stream and from the copy: the first
  call (which builds its index) and the mean of 200 calls.

It prints numbers only (no budget is asserted); read them with the machine's load (printed too).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
try:
    import mesa_llm  # noqa: F401
except ModuleNotFoundError:  # run from a source checkout that is not installed
    sys.path.insert(0, str(HERE.parent))

from bench_analysis import REPORT_TABLES, write_recording  # noqa: E402

from mesa_llm.analysis import load_recording  # noqa: E402
from mesa_llm.analysis.columnar import STAMP, copy_path, write_copy  # noqa: E402

QUERIES = 200


def _load() -> str:
    """The machine's 1-minute load average, printed beside each figure (2 shared cores)."""
    return f"{os.getloadavg()[0]:.1f}"


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _load_all(load: Callable[[Path], Any], path: Path) -> tuple[float, float, int]:
    """Seconds for load + events table, seconds for the report's tables too, and the event count."""
    start = time.perf_counter()
    rec = load(path)
    n = len(rec.events)
    loaded = time.perf_counter() - start
    for name in REPORT_TABLES:
        getattr(rec, name)
    return loaded, time.perf_counter() - start, n


def _module_from(file: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("baseline_loader", file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _queries(path: Path) -> tuple[bool, dict[str, tuple[float, float]]]:
    rec = load_recording(path)
    agents = [int(a) for a in rec.agents["agent_id"].tolist()] or [1]
    last = max(rec.final_step, 1)
    cases: dict[str, Callable[[int], Any]] = {
        "agent_state(agent, step)": lambda i: rec.agent_state(agents[i % len(agents)], 1 + (i * 7919) % last),
        "trades_at(step)": lambda i: rec.trades_at(1 + (i * 7919) % last),
        "messages_of(agent)": lambda i: rec.messages_of(agents[i % len(agents)]),
    }  # fmt: skip
    out = {}
    for name, query in cases.items():
        first, _ = _timed(lambda q=query: q(0))  # type: ignore[misc]
        start = time.perf_counter()
        for i in range(1, QUERIES + 1):
            query(i)
        out[name] = (first, (time.perf_counter() - start) / QUERIES)
    return rec.columnar is not None, out


_FRESH = """
import sys, time
sys.path.insert(0, sys.argv[2])
from bench_analysis import REPORT_TABLES
from mesa_llm.analysis import load_recording
import mesa_llm.analysis.columnar  # imported before the clock starts, as a script would have
import mesa_llm
start = time.perf_counter()
rec = load_recording(sys.argv[1])
len(rec.events)
loaded = time.perf_counter() - start
for name in REPORT_TABLES:
    getattr(rec, name)
print(loaded, time.perf_counter() - start, rec.columnar is not None, mesa_llm.__file__)
"""


def _fresh_load(checkout: Path, path: Path) -> tuple[float, float]:
    """load_recording (+ the report's tables) of `checkout` in a new process: seconds of each."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    # run in the checkout: ``python -c`` puts the working folder first on sys.path
    out = subprocess.run(
        [sys.executable, "-c", _FRESH, str(path), str(HERE)],
        env=env, cwd=checkout, check=True, capture_output=True, text=True,
    ).stdout.split()
    assert out[2] == "True", f"{checkout}: the copy was not used"
    assert Path(out[3]).resolve().is_relative_to(checkout.resolve()), f"{out[3]} is not of {checkout}"
    return float(out[0]), float(out[1])


def _aside(folder: Path, tag: str) -> Path | None:
    """Move a columnar copy out of the way (so the stream is read); where it went."""
    if not folder.exists():
        return None
    hidden = folder.with_name(f"{folder.name}.{tag}")
    shutil.rmtree(hidden, ignore_errors=True)
    folder.rename(hidden)
    return hidden


def main(argv: list[str]) -> None:
    """Print the timings (see the module's docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", nargs="?", default="1_000_000")
    parser.add_argument("--recording", type=Path, default=None)
    parser.add_argument(
        "--baseline-loader", type=Path, default=None,
        help="another checkout's mesa_llm/analysis/loader.py, timed on the stream in this process",
    )
    parser.add_argument(
        "--baseline", type=Path, default=None,
        help="a checkout whose load_recording from the copy is timed in fresh processes beside this one's",
    )
    parser.add_argument("--no-pandas", action="store_true", help="skip pandas.read_json (slow)")
    args = parser.parse_args(argv[1:])
    print(
        f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory(prefix="bench_recording_") as tmp:
        path = args.recording
        if path is None:
            n = int(args.events.replace("_", ""))
            write_s, path = _timed(lambda: write_recording(Path(tmp), n))
            print(f"wrote {path.stat().st_size / 1e6:.0f} MB in {write_s:.1f} s (its copy included)")
        folder = copy_path(path)
        hidden = _aside(folder, "kept")  # a copy already there (a run's own) is put back at the end
        with open(path, "rb") as f:  # warm the page cache so that every reader starts equal
            while f.read(1 << 24):
                pass
        rows: list[tuple[str, str, str, str]] = []
        loaded, report, n = _load_all(load_recording, path)
        print(f"recording: {n:,} events")
        rows.append(("load_recording from the stream (this checkout)", f"{loaded:.2f} s", f"{report:.2f} s", _load()))
        if args.baseline_loader is not None:
            base = _module_from(args.baseline_loader)
            loaded, report, _ = _load_all(base.load_recording, path)
            rows.append(
                (f"load_recording ({args.baseline_loader})", f"{loaded:.2f} s", f"{report:.2f} s", _load())
            )
        copy_s, written = _timed(lambda: write_copy(path, folder))
        size = sum(p.stat().st_size for p in written.iterdir())
        print(f"columnar copy: {size / 1e6:.0f} MB written in {copy_s:.2f} s (what closing the run adds)")
        (written / STAMP).unlink(missing_ok=True)  # as on the first load after a run closed
        loaded, report, _ = _load_all(load_recording, path)
        rows.append(("load_recording from the columnar copy, stream hashed", f"{loaded:.2f} s", f"{report:.2f} s", _load()))
        loaded, report, _ = _load_all(load_recording, path)
        rows.append(("load_recording from the columnar copy, stamped", f"{loaded:.2f} s", f"{report:.2f} s", _load()))
        if args.baseline is not None:
            for checkout, label in ((HERE.parent, "this checkout"), (args.baseline, str(args.baseline))) * 3:
                loaded, report = _fresh_load(checkout, path)
                rows.append((f"load_recording from the copy, fresh process ({label})", f"{loaded:.2f} s", f"{report:.2f} s", _load()))
        polars: Any
        try:
            import polars
        except ImportError:
            polars = None
        if polars is not None:
            seconds, _ = _timed(lambda: polars.read_ndjson(path))
            rows.append(("polars.read_ndjson (no checks)", f"{seconds:.2f} s", "-", _load()))
        else:
            import pyarrow.json as pa_json

            seconds, _ = _timed(lambda: pa_json.read_json(path).to_pandas())
            rows.append(("pyarrow.json.read_json + to_pandas (no checks; polars not installed)", f"{seconds:.2f} s", "-", _load()))
        if not args.no_pandas:
            import pandas

            seconds, _ = _timed(lambda: pandas.read_json(path, lines=True))
            rows.append(("pandas.read_json(lines=True) (no checks)", f"{seconds:.2f} s", "-", _load()))
        width = max(len(r[0]) for r in rows)
        print(f"{'reader':<{width}}  {'load+events':>11}  {'+report tables':>14}  {'load avg':>8}")
        for name, a, b, load in rows:
            print(f"{name:<{width}}  {a:>11}  {b:>14}  {load:>8}")
        print(f"point queries (first call builds the index; then the mean of {QUERIES}):")
        from_copy, queries = _queries(path)
        hidden_now = _aside(folder, "bench")
        from_stream, stream_queries = _queries(path)
        assert from_copy and not from_stream
        for name in queries:
            for label, (first, mean) in (("copy", queries[name]), ("stream", stream_queries[name])):
                print(f"  {name:<26} {label:<6} first {first * 1e3:8.1f} ms   then {mean * 1e3:6.2f} ms")
        if hidden_now is not None:
            shutil.rmtree(hidden_now, ignore_errors=True)
        if hidden is not None:
            hidden.rename(folder)
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main(sys.argv)
