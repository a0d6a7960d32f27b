"""The recording side of a rule-based step alone: one run's events replayed into a recorder, this
code's and a baseline's in turn in the same process (issue 24, part 4).

Run ``python benchmarks/bench_recording_side.py [--agents 1000] [--steps 30] [--repeat 7]
[--baseline CHECKOUT]``. It runs the busy market of bench_agents.py once (ZI-C buyers and sellers,
every agent orders every step), keeps every event the model records (type, content, agent, step;
an observation as the Observation itself), then replays them, timed in CPU seconds: each
observation encoded by a fresh `ObservationEncoder` and every event streamed by a fresh
`SimulationRecorder` (``record_lean``, a flush per step, as the model does), to a file. That is
everything from "an event happens" to "its bytes are in the file", without the world's work, so
that a change to it can be measured on a loaded machine: ``--baseline CHECKOUT`` loads that
checkout's ``recording/recorder.py`` and ``agents/observation.py`` as modules of their own (their
imports resolve to this checkout's package) and alternates the two, ``--repeat`` times each; the
least CPU time of each is kept, and the two files are compared (timestamps aside).

It prints numbers only, with the machine's load.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from busy_market import busy_market

from mesa_llm.agents import observation as this_observation
from mesa_llm.model import MarketModel
from mesa_llm.recording import recorder as this_recorder

_TIMESTAMP = re.compile(rb'"timestamp":"[^"]*"')

Call = tuple[str, Any, Any, bool, int]


def capture(agents: int, steps: int, seed: int = 1) -> list[Call]:
    """Run the busy market and return what it recorded, in order: (type, content, agent id, whether
    the content is an observation's ``to_dict``, step); the header and end are left out."""
    spec = busy_market(agents, steps)
    calls: list[Call] = []
    with tempfile.TemporaryDirectory() as out:
        model = MarketModel(spec, seed=seed, output_dir=out, record=True)
        record = model._record

        def keep(event_type: str, content: Any, agent_id: int | None = None, encoded: str | None = None) -> None:
            calls.append((event_type, content, agent_id, encoded is not None, model.current_step))
            record(event_type, content, agent_id, encoded)

        # every part that records was handed model._record when the model was built
        model.observer.record = keep
        model.resolver._record = keep
        model.call_market.record = keep
        model._record = keep  # type: ignore[method-assign]
        model.run()
    return [c for c in calls if c[0] not in ("simulation_start", "simulation_end")]


def replay(calls: list[Call], recorder_module: ModuleType, observation_module: ModuleType) -> tuple[float, bytes]:
    """CPU seconds to record ``calls`` with these modules' recorder and observation encoder, and
    the file written (timestamps removed)."""
    with tempfile.TemporaryDirectory() as out:
        recorder = recorder_module.SimulationRecorder(None, out, simulation_id="bench", run_name="r")
        encoder = observation_module.ObservationEncoder(recorder.encode)
        lean, to_json = recorder.record_lean, encoder.to_json
        gc.collect()
        gc.disable()  # the model pauses the collector for a step too (gc_pause)
        try:
            start = time.process_time()
            last = None
            for event_type, content, agent_id, is_observation, step in calls:
                if step != last:
                    recorder.flush()
                    last = step
                if is_observation:
                    lean(event_type, content, agent_id, step=step, encoded=to_json(content.__self__))
                else:
                    lean(event_type, content, agent_id, step=step)
            recorder.close()
            cpu = time.process_time() - start
        finally:
            gc.enable()
        return cpu, _TIMESTAMP.sub(b"", Path(recorder.jsonl_path).read_bytes())


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=7, help="replays of each code; the least CPU time is kept")
    parser.add_argument("--baseline", metavar="CHECKOUT", help="another revision's checkout, alternated with this one")
    args = parser.parse_args()
    codes: list[tuple[str, ModuleType, ModuleType]] = []
    if args.baseline is not None:
        root = Path(args.baseline) / "mesa_llm"
        if not (root / "recording" / "recorder.py").is_file():
            parser.error(f"--baseline {args.baseline}: not a checkout of mesa_llm")
        codes.append(("baseline", _load("_baseline_recorder", root / "recording" / "recorder.py"),
                      _load("_baseline_observation", root / "agents" / "observation.py")))  # fmt: skip
    codes.append(("this code", this_recorder, this_observation))
    calls = capture(args.agents, args.steps)
    agent_steps = args.agents * args.steps
    print(f"{len(calls):,} events of {args.agents} agents x {args.steps} steps; load {os.getloadavg()[0]:.2f}")
    times: dict[str, list[float]] = {label: [] for label, _, _ in codes}
    texts: dict[str, bytes] = {}
    for _ in range(max(args.repeat, 1)):
        for label, recorder_module, observation_module in codes:
            cpu, texts[label] = replay(calls, recorder_module, observation_module)
            times[label].append(cpu)
    for label, values in times.items():
        values.sort()
        best, median = values[0], values[len(values) // 2]
        print(
            f"{label:>9}: {best:.3f} CPU-s (median {median:.3f}) -> {best / agent_steps * 1e6:.2f} us per agent-step, "
            f"{agent_steps / best:,.0f} agent-steps per CPU-s of recording ({len(texts[label]) / 1e6:.1f} MB)"
        )
    if "baseline" in times:
        base, this = times["baseline"], times["this code"]
        print(f"    ratio: {base[0] / this[0]:.2f}x (least), {base[len(base) // 2] / this[len(this) // 2]:.2f}x (median)")
        print(f"files identical (timestamps aside): {'yes' if texts['baseline'] == texts['this code'] else 'NO'}")
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
