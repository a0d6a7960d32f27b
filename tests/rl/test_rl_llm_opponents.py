"""LLM agents are part of a learning environment: in ``llm_double_auction`` the ZI-C buyers learn
(switched to ``policy: rl``) while the LLM traders answer through a chat model — live (a scripted
double here), then replayed from the episode's recording with ``verify``: the same seed and the
same learner actions give the same observations, rewards and trades, and no replayed call diverges."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

if os.environ.get("MESA_LLM_REQUIRE_RL") != "1":
    pytest.importorskip("pettingzoo")

from mesa_llm.llm.recorded_chat import ReplayChatModel  # noqa: E402
from mesa_llm.llm.testing import ScriptedChatModel, tool_call_response  # noqa: E402
from mesa_llm.llm.types import ChatRequest, ChatResponse  # noqa: E402
from mesa_llm.rl.env import MarketParallelEnv  # noqa: E402

STEPS = 6
VALUE = re.compile(r"values of your next units ([0-9.]+)")
COST = re.compile(r"costs of your next units ([0-9.]+)")
#: no planning calls: one decision call per LLM agent and step
OVERRIDES = ["populations.0.params.plan_every=0", "populations.1.params.plan_every=0"]


def _user(request: ChatRequest) -> str:
    return "\n".join(str(m.get("content")) for m in request.messages if m.get("role") == "user")


def _truthful(request: ChatRequest) -> ChatResponse:
    """LLM buyers bid their next unit's value, sellers ask their next unit's cost."""
    text = _user(request)
    if (m := VALUE.search(text)) is not None:
        return tool_call_response("place_order", {"good": "widget", "side": "buy", "price": float(m.group(1)), "quantity": 1})
    if (m := COST.search(text)) is not None:
        return tool_call_response("place_order", {"good": "widget", "side": "sell", "price": float(m.group(1)), "quantity": 1})
    return tool_call_response("wait", {})


def _episode(env: MarketParallelEnv, seed: int) -> tuple[list[Any], Path | None]:
    """One episode with actions from a generator seeded by ``seed``: every step's observations,
    rewards and the learners' refusals, and the episode's recording."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    sim = env.simulation
    assert sim is not None
    trace: list[Any] = [{k: v.tolist() for k, v in obs.items()}]
    while env.agents:
        actions = {name: int(rng.integers(0, 3)) for name in env.agents}
        obs, rewards, _, _, infos = env.step(actions)
        trace.append(({k: v.tolist() for k, v in obs.items()}, rewards, {k: i.get("refused") for k, i in infos.items()}))
    return trace, sim.recording_path


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_llm_traders_are_part_of_the_environment_and_replay_from_the_recording(tmp_path: Path) -> None:
    live = ScriptedChatModel(_truthful)
    env = MarketParallelEnv("llm_double_auction", populations=["zi_buyers"], overrides=OVERRIDES, steps=STEPS,
                            record=True, out=tmp_path / "live", chat_model=live)  # fmt: skip
    assert env.possible_agents == ["zi_buyers_0", "zi_buyers_1"]  # the LLM agents are not learners
    trace, recording = _episode(env, seed=5)
    assert recording is not None
    events = _events(recording)
    calls = [e for e in events if e["event_type"] == "llm_call"]
    assert len(calls) == len(live.requests) >= 6  # every LLM trader decided (in step 1 at least)
    assert not [e for e in events if e["event_type"] in ("agent_error", "run_stopped")]
    llm_ids = {c["agent_id"] for c in calls}
    assert any(t["content"]["buyer_id"] in llm_ids or t["content"]["seller_id"] in llm_ids
               for t in events if t["event_type"] == "trade")  # fmt: skip

    replayer = ReplayChatModel(events, verify=True, name=live.name)  # the model the requests named
    again = MarketParallelEnv("llm_double_auction", populations=["zi_buyers"], overrides=OVERRIDES, steps=STEPS,
                              record=True, out=tmp_path / "replay", chat_model=replayer)  # fmt: skip
    replayed, recording_again = _episode(again, seed=5)
    assert replayer.divergences == [] and replayer.served == len(calls) and replayer.remaining() == 0
    assert replayed == trace
    assert recording_again is not None

    def trades(evs: list[dict[str, Any]]) -> list[Any]:
        return [e["content"] for e in evs if e["event_type"] == "trade"]

    assert trades(_events(recording_again)) == trades(events)
