"""LiteLLMChatModel through litellm's real HTTP path, replayed offline from vcrpy cassettes.

Replay (the default) runs no server and blocks every socket connect; set
MESA_LLM_RECORD_CASSETTES=1 (after deleting a cassette) to record it against the fake server.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from mesa_llm.llm import ChatRequest, LiteLLMChatModel, LLMError, complete_sync
from tests.llm_cassettes import (
    CASSETTE_DIR,
    DUMMY_API_KEY,
    make_vcr,
    recording,
    use_cassette,
)

MODEL = "openai/fake-model"
pytestmark = pytest.mark.usefixtures("no_network")  # no real connects; see tests/conftest.py

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "wait",
            "description": "Do nothing this step.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "place_order",
            "description": "Place a limit order.",
            "parameters": {
                "type": "object",
                "properties": {
                    "side": {"type": "string", "enum": ["buy", "sell"]},
                    "price": {"type": "number"},
                    "quantity": {"type": "integer"},
                },
                "required": ["side", "price", "quantity"],
            },
        },
    },
]
# Raw, with its own spacing and key order: the backend must hand it over untouched.
RAW_ARGUMENTS = '{"side": "buy",  "quantity": 2, "price": 101.5}'


def make_model(**kwargs: Any) -> LiteLLMChatModel:
    from tests.llm_cassettes import CASSETTE_API_BASE

    options: dict[str, Any] = {
        "api_base": CASSETTE_API_BASE,
        "api_key": DUMMY_API_KEY,
        "timeout": 10.0,
        "initial_wait": 0.01,
    }
    options.update(kwargs)
    return LiteLLMChatModel(MODEL, **options)


def user(text: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You are a trader in a call market."},
        {"role": "user", "content": text},
    ]


def test_tool_call_parses_with_raw_arguments() -> None:
    def responder(request: dict[str, Any]) -> dict[str, Any]:
        return {
            "tool_calls": [
                {"id": "call_order_1", "name": "place_order", "arguments": RAW_ARGUMENTS}
            ]
        }

    request = ChatRequest(
        model=MODEL,
        messages=user("Cash 500, widget value 150. Best ask 101.5. Act."),
        tools=TOOLS,
        tool_choice="auto",
        temperature=0.0,
        seed=7,
    )
    with use_cassette("tool_call", responder=responder) as session:
        response = asyncio.run(make_model().complete(request))
    assert session.recorded_requests == 1
    assert response.content is None
    assert len(response.tool_calls) == 1
    call = response.tool_calls[0]
    assert (call.id, call.name, call.arguments) == ("call_order_1", "place_order", RAW_ARGUMENTS)
    assert json.loads(call.arguments) == {"side": "buy", "price": 101.5, "quantity": 2}
    assert response.finish_reason == "tool_calls"
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0
    assert response.attempts == 1 and not response.cached
    assert response.cost_usd == 0.0  # litellm has no price for a fake model
    assert response.latency_s >= 0.0


def test_transient_errors_are_retried_until_success() -> None:
    faults: list[dict[str, Any]] = [
        {"status": 429, "headers": {"Retry-After": "0"}},
        {"status": 500},
    ]
    request = ChatRequest(model=MODEL, messages=user("Say ok."))
    with use_cassette("retry_429_500_ok", faults=faults) as session:
        response = asyncio.run(make_model(max_attempts=4).complete(request))
        if not recording():
            assert session.cassette.play_count == 3  # every recorded interaction replayed
    assert session.recorded_requests == 3  # one HTTP request per attempt: no hidden SDK retries
    assert response.attempts == 3
    assert response.content == "ok"


def test_authentication_error_is_fatal_and_not_retried() -> None:
    request = ChatRequest(model=MODEL, messages=user("Say ok."))
    with use_cassette("auth_401", faults=[{"status": 401}]) as session:
        with pytest.raises(LLMError) as caught:
            asyncio.run(make_model(max_attempts=4).complete(request))
        if not recording():
            assert session.cassette.play_count == 1
    assert session.recorded_requests == 1
    err = caught.value
    assert err.kind == "authentication"
    assert err.fatal and not err.retryable
    assert err.attempts == 1
    assert err.status_code == 401
    message = str(err)
    assert "\n" not in message
    assert DUMMY_API_KEY not in message and "sk-" not in message
    assert message == (
        "openai/fake-model: authentication failed (HTTP 401): check the API key for this provider"
    )


def test_sync_call() -> None:
    request = ChatRequest(model=MODEL, messages=user("Say ok, synchronously."))
    with use_cassette("sync_call"):
        response = complete_sync(make_model(), request)
    assert response.content == "ok"
    assert response.tool_calls == []
    assert response.finish_reason == "stop"


PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "intent": {"type": "string", "enum": ["buy", "sell", "hold"]},
        "max_price": {"type": "number"},
        "reason": {"type": "string"},
    },
    "required": ["intent", "max_price", "reason"],
    "additionalProperties": False,
}


def test_structured_output_returns_parseable_json() -> None:
    def responder(request: dict[str, Any]) -> dict[str, Any]:
        assert request["response_format"]["type"] == "json_schema"
        plan = {"intent": "buy", "max_price": 120.0, "reason": "value 150 above ask"}
        return {"content": json.dumps(plan)}

    request = ChatRequest(
        model=MODEL,
        messages=user("Plan your next move as JSON."),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "plan", "schema": PLAN_SCHEMA, "strict": True},
        },
        max_tokens=200,
    )
    with use_cassette("structured_output", responder=responder):
        response = asyncio.run(make_model().complete(request))
    assert response.content is not None
    plan = json.loads(response.content)
    assert set(plan) == {"intent", "max_price", "reason"}
    assert plan["intent"] in ("buy", "sell", "hold")
    assert isinstance(plan["max_price"], float)


@pytest.mark.skipif(recording(), reason="needs the recorded cassette and replay mode")
def test_cassette_miss_fails_fast_as_fatal_cache_miss() -> None:
    request = ChatRequest(model=MODEL, messages=user("A request no cassette holds."))
    with make_vcr("none").use_cassette("sync_call.yaml"), pytest.raises(LLMError) as caught:
        asyncio.run(make_model(max_attempts=4).complete(request))
    err = caught.value
    assert err.kind == "cache_miss"
    assert err.fatal and not err.retryable
    assert err.attempts == 1


def test_cassettes_hold_no_secrets() -> None:
    files = sorted(CASSETTE_DIR.glob("*.yaml"))
    assert {f.stem for f in files} >= {
        "tool_call",
        "retry_429_500_ok",
        "auth_401",
        "sync_call",
        "structured_output",
    }
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert DUMMY_API_KEY not in text, path
        lowered = text.lower()
        for header in ("authorization", "api-key", "x-goog-api-key", "bearer"):
            assert header not in lowered, (path, header)
