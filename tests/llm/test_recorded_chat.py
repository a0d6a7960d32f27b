"""The chat model that answers from a recording: per-agent order, hash checks, running out."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mesa_llm.llm import ChatRequest, LLMError
from mesa_llm.llm.recorded_chat import ReplayChatModel


def _request(text: str, agent_id: int = 1) -> ChatRequest:
    return ChatRequest(model="m", messages=[{"role": "user", "content": text}], agent_id=agent_id)


def _call(request: ChatRequest, answer: str) -> dict[str, Any]:
    return {
        "event_type": "llm_call",
        "agent_id": request.agent_id,
        "step": 1,
        "event_id": "r_000001",
        "content": {"model": "m", "request_hash": request.cache_key(), "response": {"content": answer}, "usage": {}},
    }


def test_a_changed_request_stops_a_verified_replay_and_is_counted_otherwise() -> None:
    recorded = _request("the prompt as recorded")
    changed = _request("the prompt after a template change")
    strict = ReplayChatModel([_call(recorded, "ok")], verify=True)
    with pytest.raises(LLMError) as err:
        asyncio.run(strict.complete(changed))
    assert err.value.kind == "replay_divergence" and strict.served == 0
    lenient = ReplayChatModel([_call(recorded, "ok")])
    assert asyncio.run(lenient.complete(changed)).content == "ok"  # served anyway, and counted
    assert len(lenient.divergences) == 1 and lenient.served == 1
    same = ReplayChatModel([_call(recorded, "ok")], verify=True)
    assert asyncio.run(same.complete(_request("the prompt as recorded"))).content == "ok" and not same.divergences


def test_an_agent_calling_more_often_than_recorded_is_a_divergence_not_a_crash() -> None:
    first = _request("step 1")
    model = ReplayChatModel([_call(first, "one"), _call(_request("other agent", agent_id=2), "two")])
    assert asyncio.run(model.complete(first)).content == "one"
    with pytest.raises(LLMError) as err:  # its queue is empty now (it exists, it is not None)
        asyncio.run(model.complete(_request("step 2")))
    assert err.value.kind == "replay_divergence" and "no recorded LLM call left" in str(err.value)
    assert model.remaining(1) == 0 and model.remaining(2) == 1
