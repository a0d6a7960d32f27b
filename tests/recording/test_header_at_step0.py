"""The recording header is on disk at step 0: before the first step's LLM calls, not when step 1 ends.

A slow run (a local model, a loaded machine) spends minutes in step 1's calls; until then another
reader of the recording (``mesa-llm watch``, ``tail``, a dashboard) must at least see which run it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mesa_llm import Simulation
from mesa_llm.llm import ChatRequest, ChatResponse
from mesa_llm.llm.testing import ScriptedChatModel, tool_call_response

OVERRIDES = ["steps=2", "populations.2.count=0", "populations.3.count=0"]


def _on_disk(path: Path) -> list[dict[str, Any]]:
    with open(path, "rb") as handle:  # a second reader: sees only what was flushed
        return [json.loads(line) for line in handle.read().splitlines()]


def test_header_is_on_disk_before_the_first_llm_call(tmp_path):
    seen: list[list[str]] = []
    holder: dict[str, Path] = {}

    def answer(request: ChatRequest) -> ChatResponse:
        seen.append([e["event_type"] for e in _on_disk(holder["path"])])
        return tool_call_response("wait", {})

    sim = Simulation.from_scenario(
        "llm_double_auction", overrides=OVERRIDES, model="scripted/test", out=tmp_path,
        chat_model=ScriptedChatModel(answer),
    )  # fmt: skip
    with sim:
        assert sim.recording_path is not None
        holder["path"] = Path(sim.recording_path)
        # built, no step yet: the header is readable by another process
        on_disk = _on_disk(holder["path"])
        assert [e["event_type"] for e in on_disk][:1] == ["simulation_start"]
        assert on_disk[0]["content"]["scenario"]["name"] == "llm_double_auction"
        sim.step()
    assert seen, "no LLM call was made"
    assert all(types[:1] == ["simulation_start"] for types in seen)
    assert "step_end" not in seen[0]  # the calls ran inside step 1, before it ended
