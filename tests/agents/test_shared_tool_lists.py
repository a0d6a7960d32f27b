"""LLM policies whose tool lists are the same share one list (LLMContext.shared_tools): every agent
is still offered exactly its own tools, and the recording is the same bytes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mesa_llm.agents import llm_policy
from mesa_llm.llm.testing import ScriptedChatModel, tool_call_response
from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario


def _run(tmp_path: Path, per_side: int) -> MarketModel:
    spec = load_scenario("llm_double_auction", overrides=[
        "steps=1", f"populations.0.count={per_side}", f"populations.1.count={per_side}",
        "populations.2.count=0", "populations.3.count=0"])  # fmt: skip
    model = MarketModel(spec, output_dir=tmp_path, run_name="r",
                        chat_model=ScriptedChatModel(lambda r: tool_call_response("wait", {})))  # fmt: skip
    model.run()
    return model


def _offered(model: MarketModel) -> dict[int, str]:
    return {a.unique_id: json.dumps(a.policy._stable_tools) for a in model.llm_agents}  # type: ignore[attr-defined]


def _llm_calls(model: MarketModel) -> list[str]:
    assert model.recording_path is not None
    lines = model.recording_path.read_text(encoding="utf-8").split("\n")
    return [re.sub(r'"timestamp":"[^"]*"|"latency_s":[0-9.e-]+', "~", line) for line in lines if '"llm_call"' in line]


@pytest.mark.parametrize("per_side", [3, 40])  # peers as an enum of ids (per agent), and as a range
def test_agents_offered_the_same_tools_share_one_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, per_side: int) -> None:
    shared = _run(tmp_path / "shared", per_side)
    real = llm_policy._shared
    monkeypatch.setattr(llm_policy, "_shared", lambda table, tools: real(None, tools))
    alone = _run(tmp_path / "alone", per_side)
    assert _offered(shared) == _offered(alone)  # each agent's own tools, shared or not
    assert _llm_calls(shared) == _llm_calls(alone) and _llm_calls(shared)
    lists = {id(a.policy._stable_tools) for a in shared.llm_agents}  # type: ignore[attr-defined]
    distinct = set(_offered(shared).values())
    assert len(lists) == len(distinct)  # one list per distinct content
    if per_side == 40:  # past MAX_ENUM_IDS agents: a handful of lists for 80 agents
        assert len(lists) <= 6
