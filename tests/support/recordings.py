"""Recordings compared across runs: events without what legitimately differs (timestamps, wall-clock
durations, library versions)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mesa_llm import Simulation


def untimed(value: Any) -> Any:
    """``value`` without wall-clock durations (``latency_s``, ``attempt_latencies_s``, at any depth)."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if "latenc" not in k}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


#: an event line's timestamp, as the recorder writes it
TIMESTAMP = re.compile(r'"timestamp":"[^"]*"')


def untimed_lines(path: Path) -> list[str]:
    """The recording's lines as written, each with its timestamp emptied (for byte-for-byte comparisons)."""
    return [TIMESTAMP.sub('"timestamp":""', line) for line in path.read_text(encoding="utf-8").splitlines()]


def market_recording(scenario: str, overrides: list[str], seed: int, out: Path, *, steps: int = 12,
                     texts: bool = True) -> list[str]:
    """The untimed lines (`untimed_lines`) of ``steps`` steps of ``scenario`` run by a `MarketModel`,
    without the ``simulation_start`` line; ``texts`` False: the call market leaves every clearing's
    content to the recorder's encoder (the general path batch paths are compared with)."""
    from mesa_llm.model import MarketModel
    from mesa_llm.scenario import load_scenario

    model = MarketModel(load_scenario(scenario, overrides=overrides), seed=seed, steps=steps, output_dir=out, run_name="r")
    model.call_market.encoded = texts
    model.run()
    assert model.recording_path is not None
    return [line for line in untimed_lines(Path(model.recording_path)) if '"simulation_start"' not in line]


def normalised_events(path: Path) -> list[str]:
    """The recording's events as sorted-key JSON lines, without timestamps, durations and versions."""
    out = []
    for line in path.read_text().splitlines():
        event = json.loads(line)
        event.pop("timestamp", None)
        if event["event_type"] == "simulation_start":
            event["content"].get("versions", {}).clear()
        out.append(json.dumps(untimed(event), sort_keys=True))
    return out


def record_llm_double_auction(api_base: str, out: Path, *, seed: int, overrides: tuple[str, ...] = ()) -> list[str]:
    """Three steps of llm_double_auction (3 LLM buyers, 3 sellers, concurrency 4) against the
    OpenAI-compatible server at ``api_base``: its recording's normalised events."""
    base = ["populations.0.count=3", "populations.1.count=3", "llm.concurrency=4", *overrides]
    with Simulation.from_scenario("llm_double_auction", overrides=base, seed=seed, steps=3, out=out,
                                  model="openai/fake-model", api_base=api_base) as sim:  # fmt: skip
        sim.run()
        path = sim.recording_path
    assert path is not None
    return normalised_events(Path(path))
