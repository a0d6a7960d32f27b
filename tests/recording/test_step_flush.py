"""Every step's events are on disk when ``step()`` returns: read back by another reader, at once.

A small step writes far less than the stream's 64 KiB buffer, so without the per-step flush the
file would still be empty (or hold only the header) when the step is over.
"""

from __future__ import annotations

import json
from typing import Any

from mesa_llm.model import MarketModel
from mesa_llm.scenario import validate_scenario


def _on_disk(model: MarketModel) -> list[dict[str, Any]]:
    assert model.recording_path is not None
    with open(model.recording_path, "rb") as handle:  # a second reader: sees only what was flushed
        return [json.loads(line) for line in handle.read().splitlines()]


def test_each_step_is_flushed_when_step_returns(small_auction, tmp_path):
    model = MarketModel(validate_scenario(small_auction), output_dir=tmp_path)
    for step in (1, 2, 3):
        model.step()
        events = _on_disk(model)
        assert events, f"nothing on disk after step {step}"
        assert events[-1]["event_type"] == "step_end" and events[-1]["step"] == step
        ends = [e["step"] for e in events if e["event_type"] == "step_end"]
        assert ends == list(range(1, step + 1))
        assert any(e["event_type"] == "order" and e["step"] == step for e in events)
        # a step is far smaller than the stream buffer: only the flush can have put it there
        assert model.recording_path is not None and model.recording_path.stat().st_size < 1 << 16
    model.finish()
    assert _on_disk(model)[-1]["event_type"] == "simulation_end"
