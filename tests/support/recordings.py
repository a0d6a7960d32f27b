"""Recordings compared across runs: events without what legitimately differs (timestamps, wall-clock
durations, library versions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def untimed(value: Any) -> Any:
    """``value`` without wall-clock durations (``latency_s``, ``attempt_latencies_s``, at any depth)."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if "latenc" not in k}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


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
