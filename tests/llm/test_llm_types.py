"""The chat-model protocol's data types, errors and in-process test doubles (no HTTP, no litellm)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesa_llm.llm import (
    ChatModel,
    ChatRequest,
    ChatResponse,
    LiteLLMChatModel,
    LLMError,
    ToolCall,
    Usage,
)
from mesa_llm.llm.errors import FATAL_KINDS, KINDS, redact

MESSAGES = [{"role": "system", "content": "rules"}, {"role": "user", "content": "act"}]
TOOLS = [{"type": "function", "function": {"name": "wait", "parameters": {"type": "object"}}}]


def request(**overrides: Any) -> ChatRequest:
    fields: dict[str, Any] = {"model": "openai/gpt-4o-mini", "messages": MESSAGES, "tools": TOOLS}
    fields.update(overrides)
    return ChatRequest(**fields)


# --- ChatRequest -----------------------------------------------------------------------------


def test_cache_key_is_a_stable_sha256_hex() -> None:
    key = request().cache_key()
    assert len(key) == 64 and int(key, 16) >= 0
    assert request().cache_key() == key
    # the documented recipe: sha256 of compact, key-sorted JSON of the fields that are sent
    sent = {
        "model": "openai/gpt-4o-mini",
        "messages": MESSAGES,
        "tools": TOOLS,
        "tool_choice": None,
        "response_format": None,
        "temperature": None,
        "max_tokens": None,
        "seed": None,
    }
    canonical = json.dumps(sent, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert key == hashlib.sha256(canonical.encode()).hexdigest()


def test_cache_key_ignores_metadata_and_dict_key_order() -> None:
    base = request().cache_key()
    assert request(purpose="plan", agent_id=3).cache_key() == base
    reordered = [{"content": m["content"], "role": m["role"]} for m in MESSAGES]
    assert request(messages=reordered).cache_key() == base


@pytest.mark.parametrize(
    "change",
    [
        {"model": "openai/gpt-4o"},
        {"messages": [*MESSAGES, {"role": "user", "content": "again"}]},
        {"messages": [MESSAGES[0], {"role": "user", "content": "act now"}]},
        {"tools": None},
        {"tools": [*TOOLS, {"type": "function", "function": {"name": "buy"}}]},
        {"tool_choice": "required"},
        {"response_format": {"type": "json_object"}},
        {"temperature": 0.0},
        {"max_tokens": 100},
        {"seed": 1},
    ],
)
def test_cache_key_changes_with_what_is_sent(change: dict[str, Any]) -> None:
    assert request(**change).cache_key() != request().cache_key()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=8,
)


@given(st.dictionaries(st.text(max_size=4), json_values, max_size=5))
def test_cache_key_is_insensitive_to_key_order(extra: dict[str, Any]) -> None:
    message = {"role": "user", "content": "x", **extra}
    reversed_message = dict(reversed(list(message.items())))
    assert (
        request(messages=[message]).cache_key() == request(messages=[reversed_message]).cache_key()
    )


def test_request_record_has_content_and_params_only() -> None:
    record = request(temperature=0.2, seed=5, purpose="plan", agent_id=1).to_record()
    assert set(record) == {"messages", "tools", "tool_choice", "response_format", "params"}
    assert record["params"] == {"temperature": 0.2, "max_tokens": None, "seed": 5}
    json.dumps(record)


# --- ChatResponse ----------------------------------------------------------------------------


def test_response_record_and_round_trip() -> None:
    response = ChatResponse(
        content="hi",
        tool_calls=[ToolCall("c1", "wait", "{}")],
        usage=Usage(10, 2),
        model="m",
        cost_usd=0.5,
        latency_s=0.25,
        attempts=2,
        finish_reason="tool_calls",
    )
    assert response.to_record() == {
        "content": "hi",
        "tool_calls": [{"id": "c1", "name": "wait", "arguments": "{}"}],
        "finish_reason": "tool_calls",
        "cached": False,
    }
    assert ChatResponse.from_dict(json.loads(json.dumps(response.to_dict()))) == response


# --- builders and ScriptedChatModel ----------------------------------------------------------


def test_litellm_model_satisfies_protocol_and_hides_key() -> None:
    model = LiteLLMChatModel("openai/gpt-4o-mini", api_key="sk-secret-123456789")
    assert isinstance(model, ChatModel)
    assert model.name == "openai/gpt-4o-mini"
    assert "sk-secret" not in repr(model)


# --- LLMError --------------------------------------------------------------------------------


def test_llm_error_is_one_redacted_line() -> None:
    err = LLMError(
        "bad request (HTTP 400): key sk-abcdefghijk rejected\nsee docs",
        model="openai/gpt-4o-mini",
        kind="bad_request",
        attempts=3,
    )
    text = str(err)
    assert "\n" not in text and "sk-abcdefghijk" not in text
    assert text.startswith("openai/gpt-4o-mini: bad request (HTTP 400)")
    assert text.endswith("(after 3 attempts)")
    assert "bad_request" in repr(err)


def test_llm_error_fatal_kinds() -> None:
    assert {k for k in KINDS if LLMError("x", model="m", kind=k).fatal} == set(FATAL_KINDS)
    assert {"authentication", "permission", "not_found", "cache_miss", "replay_divergence"} == FATAL_KINDS
    with pytest.raises(ValueError, match="unknown LLMError kind"):
        LLMError("x", model="m", kind="weird")


def test_redact() -> None:
    text = redact("Bearer abc.def key=AIzaSyA1234567890123456789012 sk-proj-abcdefgh api_key=zz")
    assert "abc.def" not in text and "AIza" not in text and "sk-proj" not in text
    assert "zz" not in text and "api_key=***" in text


@pytest.mark.parametrize(
    "tools",
    [
        [{"type": "function", "function": {"name": "wait", "parameters": {"type": "object", "properties": {}}}}],
        [{"type": "function", "function": {"name": "bid", "description": "prix ≤ 5 \"net\"", "parameters": {"b": 1, "a": [2.5, None]}}}],
    ],
)
def test_a_tool_lists_json_given_once_keeps_the_cache_key(tools: list[dict[str, Any]]) -> None:
    from mesa_llm.llm.types import canonical_json

    plain = request(tools=tools, tool_choice="auto")
    given = request(tools=tools, tool_choice="auto", tools_json=canonical_json(tools))
    assert given.cache_key() == plain.cache_key()
    assert given == plain  # metadata: not part of what the request is


def test_an_llm_policy_gives_its_act_requests_its_tool_lists_json() -> None:
    from mesa_llm.agents.llm_policy import LLMPolicy
    from mesa_llm.llm.testing import ScriptedChatModel, tool_call_response
    from mesa_llm.llm.types import canonical_json
    from mesa_llm.model import MarketModel
    from mesa_llm.scenario import load_scenario

    spec = load_scenario("llm_double_auction", overrides=["steps=1", "populations.0.params.plan_every=1"])
    chat = ScriptedChatModel(lambda r: tool_call_response("wait", {}))
    model = MarketModel(spec, record=False, chat_model=chat)
    model.step()
    acts = [r for r in chat.requests if r.purpose == "act" and r.tools]
    assert acts and all(r.tools_json == canonical_json(r.tools) for r in acts)
    assert all(r.tools_json is None for r in chat.requests if r.purpose == "plan")
    assert any(isinstance(a.policy, LLMPolicy) for a in model.traders)
