"""The lean path encodes a tool list its caller keeps unchanged (``ChatRequest.tools_json``: an LLM
policy's run-long list) once, and puts that JSON in every body: the same bytes the SDK's encoding
of the whole body gives."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from openai._utils._json import openapi_dumps

from mesa_llm.llm import ChatRequest, LiteLLMChatModel
from mesa_llm.llm.direct import DirectOpenAI
from mesa_llm.llm.litellm_backend import _litellm
from mesa_llm.llm.types import canonical_json
from tests.fake_openai_server import FakeOpenAIServer

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "place_order",
            "description": "Place a limit order (\u00e9, \"quoted\").",
            "parameters": {
                "type": "object",
                "properties": {"price": {"type": "number", "minimum": 0.01, "maximum": 1e-05}},
                "required": ["price"],
            },
        },
    },
    {"type": "function", "function": {"name": "wait", "parameters": {"type": "object", "properties": {}}}},
]
MESSAGES = [{"role": "system", "content": "rules"}, {"role": "user", "content": "Act.\n"}]


def _counting(direct: DirectOpenAI, tools: list[Any]) -> list[int]:
    """How often ``direct`` encodes ``tools`` itself (appended to on each time)."""
    seen: list[int] = []
    dumps = direct._dumps

    def counted(value: Any) -> bytes:
        if value is tools or (isinstance(value, dict) and value.get("tools") is tools):
            seen.append(1)
        return dumps(value)

    direct._dumps = counted
    return seen


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "messages": MESSAGES, "tools": TOOLS, "tool_choice": "auto", "temperature": 0.7, "seed": 3},
        {"model": "m", "messages": MESSAGES, "tools": TOOLS},
        {"tools": TOOLS, "model": "m", "max_tokens": 9},
        {"tools": TOOLS},
    ],
    ids=["middle", "last", "first", "only"],
)
def test_a_kept_tool_lists_body_is_the_sdks_bytes_and_encodes_it_once(body: dict[str, Any]) -> None:
    direct = DirectOpenAI(_litellm())
    direct.keep_tools(TOOLS)
    encoded = _counting(direct, TOOLS)
    assert direct._body(body) == openapi_dumps(body)
    assert direct._body(dict(body, model="other")) == openapi_dumps(dict(body, model="other"))
    assert len(encoded) == 1  # the tools' JSON made once (fails when every body encodes them)


def test_a_list_not_kept_is_encoded_on_every_call() -> None:
    direct = DirectOpenAI(_litellm())
    tools = copy.deepcopy(TOOLS)
    body = {"model": "m", "messages": MESSAGES, "tools": tools}
    assert direct._body(body) == openapi_dumps(body)
    tools[1]["function"]["name"] = "cancel"  # changed in place: sent as it is now
    assert direct._body(body) == openapi_dumps(body)
    assert b'"cancel"' in direct._body(body)


def test_the_backend_keeps_the_tools_of_requests_that_carry_their_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request with ``tools_json`` (its caller keeps the list) has its tools encoded once over many
    calls, and the server receives what the full litellm path sends."""
    tools = copy.deepcopy(TOOLS)
    request = ChatRequest(model="openai/fake-model", messages=MESSAGES, tools=tools, tool_choice="auto",
                          temperature=0.0, seed=7, tools_json=canonical_json(tools))
    with FakeOpenAIServer() as server:
        asyncio.run(LiteLLMChatModel(request.model, api_base=server.base_url, api_key="sk-x", direct=False).complete(request))
        full = server.requests[-1]
        lean = LiteLLMChatModel(request.model, api_base=server.base_url, api_key="sk-x")
        encoded: list[int] = []

        async def calls() -> None:
            await lean.complete(request)  # the first call makes the tools' JSON
            assert lean._direct is not None
            seen = _counting(lean._direct, tools)
            await lean.complete(request)
            await lean.complete(request)
            encoded.extend(seen)

        asyncio.run(calls())
        assert server.requests[-1] == server.requests[-2] == full
    assert encoded == []  # fails when the backend does not keep the list (or the body ignores it)
