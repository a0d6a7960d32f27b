"""JSON tool mode's per-step schemas name the other agents as their ids would, found without listing them
(`peers_shown` from the run's sorted ids, O(log agents) an agent): every agent is offered exactly its own build."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mesa_llm import llm_wiring
from mesa_llm.actions import ActionRegistry
from mesa_llm.agents import action_schemas, llm_policy
from mesa_llm.llm.testing import ScriptedChatModel, text_response
from mesa_llm.model import MarketModel
from mesa_llm.prompt_check import _NeverCalled
from mesa_llm.scenario import load_scenario

#: the tools that name other agents, and the argument that does: an id, or a list of ids
_PEER_IDS = {"send_message": "recipient_id", "make_offer": "counterparty_id", "flag_violation": "agent_id"}
_PEER_LISTS = {"forward_message": "recipient_ids", "call_for_proposals": "seller_ids", "propose_alliance": "invitee_ids"}


def _spec(per_side: int, steps: int = 2) -> Any:
    return load_scenario("llm_double_auction", overrides=[
        f"steps={steps}", f"populations.0.count={per_side}", f"populations.1.count={per_side}",
        "populations.2.count=0", "populations.3.count=0",
        "populations.0.params.tool_mode=json", "populations.1.params.tool_mode=json"])  # fmt: skip


def _wait(request: Any) -> Any:
    return text_response(json.dumps({"actions": [{"tool": "wait", "arguments": {}}]}))


def _run(tmp_path: Path, per_side: int) -> MarketModel:
    model = MarketModel(_spec(per_side), output_dir=tmp_path, run_name="r",
                        chat_model=ScriptedChatModel(_wait, tool_mode="json"))  # fmt: skip
    model.run()
    return model


def _llm_calls(model: MarketModel) -> list[str]:
    assert model.recording_path is not None
    lines = model.recording_path.read_text(encoding="utf-8").split("\n")
    return [re.sub(r'"timestamp":"[^"]*"|"latency_s":[0-9.e-]+', "~", line) for line in lines if '"llm_call"' in line]


@pytest.mark.parametrize("per_side", [3, 40])  # the peers as an enum of ids, and as a range
def test_every_json_mode_agent_is_offered_its_own_schemas_without_listing_its_peers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, per_side: int
) -> None:
    offered: list[tuple[Any, Any, str]] = []
    real_offer = llm_policy.LLMPolicy._offer_tools

    def offer(self: Any, observation: Any) -> None:
        real_offer(self, observation)
        offered.append((self, observation, json.dumps(self._step_tools)))

    listed: list[int] = []
    real_peers = llm_policy.LLMPolicy._peers
    monkeypatch.setattr(llm_policy.LLMPolicy, "_offer_tools", offer)
    monkeypatch.setattr(llm_policy.LLMPolicy, "_peers", lambda self, me: listed.append(me) or real_peers(self, me))
    model = _run(tmp_path, per_side)
    assert len(offered) == 2 * 2 * per_side and all(p.tool_mode == "json" for p, _, _ in offered)
    assert listed == []  # nobody's peers were listed: O(log agents) per agent and step
    for policy, observation, tools in offered:  # what state_tool_schemas gives it from its own peers
        ctx = policy._ctx()
        own = action_schemas.state_tool_schemas(
            ctx.registry, policy._tool_names, observation, sides=policy._sides(), peers=real_peers(policy, observation.agent_id)
        )
        assert tools == json.dumps(own), observation.agent_id
    assert _llm_calls(model)


@pytest.mark.parametrize("per_side", [3, 40])
def test_json_mode_recordings_are_the_same_with_the_peers_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, per_side: int
) -> None:
    fast = _llm_calls(_run(tmp_path / "fast", per_side))
    monkeypatch.setattr(llm_wiring, "RunToolLists", lambda: None)  # the general path: each agent's peers listed
    general = _llm_calls(_run(tmp_path / "general", per_side))
    assert fast == general and sum('"purpose":"act"' in line for line in fast) == 2 * 2 * per_side


def _expected(others: list[int]) -> tuple[dict[str, Any], int]:
    """How ``others`` show in an id argument (an enum up to 64 ids, else their range) and an id list's maxItems."""
    shown: dict[str, Any] = {"type": "integer"}
    if len(others) <= 64:
        shown["enum"] = others
    else:
        shown.update(minimum=others[0], maximum=others[-1])
    return shown, min(len(others), 100)


def _ids_part(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k in ("type", "enum", "minimum", "maximum")}


@pytest.mark.parametrize("size", [2, 3, 64, 65, 66, 100, 101, 102, 150])
def test_state_schemas_name_the_peers_as_their_ids_would(size: int) -> None:
    spec = load_scenario("llm_double_auction", overrides=[
        "steps=1", "populations.0.count=2", "populations.1.count=2", "populations.2.count=0", "populations.3.count=0"])  # fmt: skip
    observation = MarketModel(spec, record=False, chat_model=_NeverCalled()).preview_observations()[0][1]
    registry = ActionRegistry()
    names = [*_PEER_IDS, *_PEER_LISTS, "place_order", "wait"]
    ids = list(range(10, 10 + 3 * size, 3))  # sorted, unique, with gaps
    for me in (ids[0], ids[1], ids[size // 2], ids[-2], ids[-1], 11, 1, 10 + 3 * size):
        others = [i for i in ids if i != me]
        shown = action_schemas.peers_shown(ids, me)
        fast = action_schemas.state_tool_schemas(registry, names, observation, sides=["buy"], shown=shown)
        listed = action_schemas.state_tool_schemas(registry, names, observation, sides=["buy"], peers=others[::-1] + others[:1])
        assert json.dumps(fast) == json.dumps(listed), (size, me)
        by_name = {t["function"]["name"]: t["function"]["parameters"]["properties"] for t in fast}
        one, most = _expected(others)
        for tool, argument in _PEER_IDS.items():
            assert _ids_part(by_name[tool][argument]) == one, (size, me, tool)
        for tool, argument in _PEER_LISTS.items():
            array = by_name[tool][argument]
            assert _ids_part(array["items"]) == one and array["maxItems"] == most, (size, me, tool)


def test_state_schemas_need_the_peers_or_how_they_show() -> None:
    spec = load_scenario("llm_double_auction", overrides=[
        "steps=1", "populations.0.count=1", "populations.1.count=1", "populations.2.count=0", "populations.3.count=0"])  # fmt: skip
    observation = MarketModel(spec, record=False, chat_model=_NeverCalled()).preview_observations()[0][1]
    with pytest.raises(TypeError):
        action_schemas.state_tool_schemas(ActionRegistry(), ["wait"], observation, sides=["buy"])
