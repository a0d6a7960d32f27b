"""LLM policies whose tool lists are the same share one list (LLMContext.shared_tools): every agent
is still offered exactly its own tools, and the recording is the same bytes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mesa_llm.actions import ActionRegistry
from mesa_llm.agents import action_schemas, llm_policy
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


@pytest.mark.parametrize("per_side", [3, 40])
def test_tool_lists_are_built_once_per_key_and_each_is_the_agents_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, per_side: int) -> None:
    builds: list[int] = []
    real_build = action_schemas._build
    monkeypatch.setattr(action_schemas, "_build", lambda *a, **k: builds.append(1) or real_build(*a, **k))
    model = _run(tmp_path, per_side)
    offered = _offered(model)
    built = len(builds)
    for agent in model.llm_agents:  # what stable_tool_schemas gives this agent, built for it alone
        policy, ctx = agent.policy, agent.policy._ctx()  # type: ignore[attr-defined]
        goods = {g["name"]: (float(g["min_price"]), float(g["max_price"])) for g in ctx.market["goods"]}
        names = [n for n in ctx.tool_names if n in set(ctx.registry.names())]
        own = action_schemas.stable_tool_schemas(ctx.registry, names, goods=goods, sides=policy._sides(), peers=policy._peers(agent.unique_id))
        assert offered[agent.unique_id] == json.dumps(own), agent.unique_id
    # one build per distinct list: past MAX_ENUM_IDS agents the two at the ends of the ids differ
    # (their peers' range) from the rest of their population, not every agent from every other
    assert built == len(set(offered.values()))
    assert built <= (6 if per_side == 40 else 2 * per_side)


_EDGE = [*range(1, 64), 70]  # 64 ids: still an enum, whose members matter beyond its ends


@pytest.mark.parametrize(
    ("left", "right"),
    [(range(1, 70), range(1, 70)), (range(1, 70), range(2, 70)), (range(1, 70), range(1, 71)),
     (range(1, 80), [*range(1, 40), *range(41, 80)]), (range(1, 150), range(1, 160)), (range(1, 60), range(1, 61)),
     ([3, 1, 2], [1, 2, 3]), ([1, 2, 3], [1, 2, 4]), (_EDGE, [x for x in _EDGE if x != 30] + [69]),
     ({"goods": {"widget": (1.0, 200.0)}}, {"goods": {"widget": (1.0, 300.0)}}), ({"sides": ["buy"]}, {"sides": ["sell"]}),
     ({"names": ["wait"]}, {"names": ["send_message", "wait"]})],
)  # fmt: skip
def test_equal_keys_mean_equal_tool_lists(left: Any, right: Any) -> None:
    registry = ActionRegistry()
    base: dict[str, Any] = {"goods": {"widget": (1.0, 200.0)}, "sides": ["buy"], "peers": list(range(1, 10)),
                            "names": ["place_order", "send_message", "broadcast", "forward_message", "propose_alliance",
                                      "make_offer", "call_for_proposals", "wait"]}  # fmt: skip
    options = [{**base, **(side if isinstance(side, dict) else {"peers": list(side)})} for side in (left, right)]
    keys = [
        action_schemas.stable_tools_key(registry, o.pop("names"), shown=action_schemas.peers_shown(sorted(set(o.pop("peers")))), **o)
        for o in [dict(o) for o in options]
    ]
    lists = [json.dumps(action_schemas.stable_tool_schemas(registry, o.pop("names"), **o)) for o in [dict(o) for o in options]]
    assert (keys[0] == keys[1]) == (lists[0] == lists[1])


@pytest.mark.parametrize("size", [3, 64, 65, 66, 101, 102, 150])
def test_peers_shown_without_me_is_the_others_ids_shown(size: int) -> None:
    ids = list(range(10, 10 + 2 * size, 2))  # sorted, unique, with gaps
    for me in (ids[0], ids[1], ids[size // 2], ids[-2], ids[-1], 11, 5, 10 + 2 * size, None):
        others = [i for i in ids if i != me]
        assert action_schemas.peers_shown(ids, me) == action_schemas.peers_shown(others), (size, me)
        shown = action_schemas.peers_shown(others)
        assert shown == (tuple(others) if len(others) <= action_schemas.MAX_ENUM_IDS else ("range", min(len(others), 100), others[0], others[-1]))
