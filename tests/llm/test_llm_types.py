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


# --- the request key's encoding: the same text and hash as the plain json.dumps / sha256 ---------


def _reference_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _reference_key(request: ChatRequest) -> str:
    fields = ("model", "messages", "tools", "tool_choice", "response_format", "temperature", "max_tokens", "seed")
    return hashlib.sha256(_reference_json({f: getattr(request, f) for f in fields}).encode("utf-8")).hexdigest()


@pytest.mark.parametrize(
    "value",
    ["é\"\n", 1, -0.0, 1.5, float("nan"), float("inf"), 10**30, None, True, [], {}, (1, "a"),
     {"b": 1, "a": [1, 2.25, {"z": "ü", "y": None}]}, {"when": __import__("datetime").date(2024, 1, 2)}],
)
def test_canonical_json_is_json_dumps_text(value: Any) -> None:
    from mesa_llm.llm.types import canonical_json

    assert canonical_json(value) == _reference_json(value)


def test_canonical_json_raises_what_json_dumps_raises() -> None:
    from mesa_llm.llm.types import canonical_json

    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        canonical_json(loop)
    with pytest.raises(TypeError):
        canonical_json({"a": 1, 2: 3})  # keys that do not sort
    assert canonical_json({"a": 1}) == '{"a":1}'  # and nothing is left over from a failed call


def test_request_keys_are_the_plain_hash_whatever_the_shape() -> None:
    from mesa_llm.llm.types import canonical_json

    tools = [{"type": "function", "function": {"name": "wait", "parameters": {"type": "object", "x": 1.5}}}]
    system = "You are a trader. é " * 20
    user = {"role": "user", "content": "step 3"}
    shapes = [
        ChatRequest(model="m", messages=[{"role": "system", "content": system}, user]),
        ChatRequest(model="m", messages=[{"role": "system", "content": system}, user], max_tokens=300,
                    tools=tools, tools_json=canonical_json(tools), tool_choice="auto", temperature=0.7, seed=3),
        ChatRequest(model="m", messages=[{"role": "system", "content": system}, user], max_tokens=160, tools=tools),
        ChatRequest(model="m", messages=[{"role": "system", "content": system}, user,
                                         {"role": "assistant", "content": None, "tool_calls": []}],
                    response_format={"type": "json_object"}, max_tokens=300),
        ChatRequest(model="m", messages=[{"role": "system", "content": system, "name": "x"}, user]),
        ChatRequest(model="m", messages=[{"role": "system", "content": system}, user], max_tokens=True),  # type: ignore[arg-type]
        ChatRequest(model="m", messages=[{"role": "system", "content": None}, user]),
        ChatRequest(model="m", messages=[user]),
        ChatRequest(model="m", messages=[]),
    ]
    shapes.append(ChatRequest(model="m", messages=[{"role": "developer", "content": system}, user]))
    for request in shapes * 2:  # the second time from the kept opening
        assert request.cache_key() == _reference_key(request)


def test_a_request_key_follows_its_system_text_and_max_tokens() -> None:
    """The opening hashed once is kept per system text and max_tokens: never another's."""
    user = {"role": "user", "content": "u"}
    first = ChatRequest(model="m", messages=[{"role": "system", "content": "s" * 50}, user], max_tokens=100)
    assert first.cache_key() == _reference_key(first)
    for system, max_tokens in (("s" * 50, 101), ("t" * 50, 100), ("".join(["s"] * 50), 100), ("s" * 51, None)):
        other = ChatRequest(model="m", messages=[{"role": "system", "content": system}, user], max_tokens=max_tokens)
        assert other.cache_key() == _reference_key(other)
    assert first.cache_key() == _reference_key(first)


def test_a_request_key_is_not_taken_from_a_freed_system_text() -> None:
    """A new system text may sit where a freed one was (the same ``id``): its key is its own."""
    for i in range(30):
        system = f"system text {i % 10} " * 30  # built, keyed and freed in turn
        request = ChatRequest(model="m", messages=[{"role": "system", "content": system}, {"role": "user", "content": "u"}])
        assert request.cache_key() == _reference_key(request)
        del system, request
