"""The LLM client's hot path at scale (issue 24): per-call work that does not repeat, same results.

The lean path for ``openai/`` models at an api_base posts the everyday call straight through
litellm's aiohttp session (no httpx request or response objects per call) and maps litellm's
parameters once per model and shape. What it sends, what it records and how it fails must not change:
a scripted run records byte for byte the same through it as through ``litellm.acompletion``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mesa_llm.llm import ChatRequest, LiteLLMChatModel
from mesa_llm.llm.litellm_backend import _litellm
from tests.fake_openai_server import FakeOpenAIServer
from tests.support.recordings import record_llm_double_auction

KEY = "sk-test-not-a-real-key"
TOOLS = [
    {"type": "function", "function": {"name": "wait", "parameters": {"type": "object", "properties": {}}}},
]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        yield fake


def _request(content: str, **options: Any) -> ChatRequest:
    return ChatRequest(model="openai/fake-model", messages=[{"role": "user", "content": content}], **options)


async def _calls(model: LiteLLMChatModel, requests: list[ChatRequest]) -> list[Any]:
    return [await model.complete(r) for r in requests]


def test_everyday_calls_build_no_httpx_request_each(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    original = httpx.AsyncClient.build_request

    def counting(self: httpx.AsyncClient, method: str, url: Any, **kwargs: Any) -> httpx.Request:
        built.append(str(url))
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "build_request", counting)
    model = LiteLLMChatModel("openai/fake-model", api_base=server.base_url, api_key=KEY, max_attempts=1)
    requests = [_request(f"act {i}", tools=TOOLS, tool_choice="auto", temperature=0.0) for i in range(6)]

    async def run() -> tuple[int, list[Any]]:
        first = await model.complete(requests[0])  # builds the per-client templates once
        after_first = len(built)
        rest = await _calls(model, requests[1:])
        return after_first, [first, *rest]

    server.reset()
    after_first, answers = asyncio.run(run())
    assert server.request_count == 6
    assert [a.tool_calls[0].name for a in answers] == ["wait"] * 6
    assert len(built) == after_first, "each everyday call still built an httpx request"


def test_litellm_maps_parameters_once_per_shape(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    litellm = _litellm()
    shapes: list[dict[str, Any]] = []
    original = litellm.get_optional_params

    def counting(**kwargs: Any) -> Any:
        shapes.append({k: kwargs.get(k) for k in ("temperature", "max_tokens")})
        return original(**kwargs)

    monkeypatch.setattr(litellm, "get_optional_params", counting)
    model = LiteLLMChatModel("openai/fake-model", api_base=server.base_url, api_key=KEY, max_attempts=1)
    other_tools = [{**TOOLS[0], "function": {**TOOLS[0]["function"], "name": "pass_turn"}}]
    requests = [
        *(_request(f"a{i}", tools=TOOLS, temperature=0.0) for i in range(4)),
        _request("b", tools=other_tools, temperature=0.0),  # same shape, other tools: no new mapping
        _request("c", tools=TOOLS, temperature=0.5),  # another value: mapped again
        _request("d", tools=TOOLS, temperature=0.0, max_tokens=32),  # another parameter: mapped again
    ]
    server.reset()
    asyncio.run(_calls(model, requests))
    assert shapes == [
        {"temperature": 0.0, "max_tokens": None},
        {"temperature": 0.5, "max_tokens": None},
        {"temperature": 0.0, "max_tokens": 32},
    ]
    sent = server.requests
    # each body still carries its own tools and values, in the order litellm builds it
    assert [r["tools"][0]["function"]["name"] for r in sent] == ["wait"] * 4 + ["pass_turn", "wait", "wait"]
    assert [r.get("temperature") for r in sent] == [0.0] * 5 + [0.5, 0.0]
    assert [r.get("max_tokens") for r in sent] == [None] * 6 + [32]
    assert list(sent[0]) == list(sent[3])




def _record(server: FakeOpenAIServer, out: Path) -> list[str]:
    return record_llm_double_auction(server.base_url, out, seed=3)


def test_a_run_records_the_same_through_the_lean_and_the_full_path(
    server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("MESA_LLM_LITELLM_FULL_PATH", "1")
    full = _record(server, tmp_path / "full")
    monkeypatch.delenv("MESA_LLM_LITELLM_FULL_PATH")

    async def forbidden(**kwargs: Any) -> Any:
        raise AssertionError("the lean path called litellm.acompletion")

    monkeypatch.setattr(_litellm(), "acompletion", forbidden)
    lean = _record(server, tmp_path / "lean")
    calls = [json.loads(e) for e in lean if '"event_type": "llm_call"' in e]
    assert calls and all(c["content"]["error"] is None for c in calls)
    assert lean == full


def test_the_openai_host_check_is_made_once_per_api_base(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """litellm's request transform asks whether the api_base is OpenAI's own host two or three times
    per call (parsing the URL each time): asked of litellm once per api_base, each its own answer,
    and litellm's own (maybe shared) config is left unpatched."""
    from mesa_llm.llm.direct import DirectOpenAI

    model = LiteLLMChatModel("openai/fake-model", api_base=server.base_url, api_key=KEY, max_attempts=1)
    direct = DirectOpenAI(_litellm())
    config = direct._config_for("fake-model")
    original_class = type(config)
    asked: list[Any] = []
    inner = original_class._targets_openai_hosted_endpoint

    def counting(self: Any, provider: Any, api_base: Any) -> bool:
        asked.append(api_base)
        return bool(inner(self, provider, api_base))

    monkeypatch.setattr(original_class, "_targets_openai_hosted_endpoint", counting)
    fresh = DirectOpenAI(_litellm())._config_for("fake-model")
    hosted, local = "https://api.openai.com/v1", "http://127.0.0.1:9/v1"
    answers = [fresh._targets_openai_hosted_endpoint("openai", base) for base in (hosted, local, hosted, local, local)]
    assert answers == [True, False, True, False, False]
    assert asked == [hosted, local]
    # without an api_base (litellm then reads its globals and the environment) or another provider: asked each time
    fresh._targets_openai_hosted_endpoint("openai", None)
    fresh._targets_openai_hosted_endpoint("openai", None)
    fresh._targets_openai_hosted_endpoint("azure", local)
    assert asked == [hosted, local, None, None, local]
    assert "_targets_openai_hosted_endpoint" not in vars(direct._configs[0].get_provider_chat_config(
        model="fake-model", provider=direct._configs[1]) or object())
    # and the calls go through it, answering as before
    server.reset()
    answer = asyncio.run(model.complete(_request("act", tools=TOOLS, tool_choice="auto")))
    assert answer.tool_calls[0].name == "wait"
