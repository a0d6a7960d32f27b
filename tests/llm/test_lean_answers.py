"""Everyday answers skip litellm's ``ModelResponse`` on the lean path, and give what it gives.

Each case answers the same request through ``litellm.acompletion`` (the full path) and through
:mod:`mesa_llm.llm.direct` and compares the answer as the backend returns it. The shapes here are
the ones where litellm's conversion changes a field we read (reasoning tags, finish reasons, tool
calls without ids, usage details): the lean path must hand those to litellm, not read them itself.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest

from mesa_llm.llm import ChatRequest, LiteLLMChatModel, LLMError
from mesa_llm.llm.litellm_backend import _litellm
from tests.fake_openai_server import FakeOpenAIServer, build_completion

KEY = "sk-test-not-a-real-key"


class _RawServer(FakeOpenAIServer):
    """Answers every request with ``reply`` (status, body, headers) when set."""

    reply: tuple[int, Any, dict[str, str]] | None = None

    def scripted_reply(self, request: dict[str, Any]) -> tuple[int, Any, dict[str, str]] | None:
        return self.reply


@pytest.fixture(scope="module")
def raw_server() -> Iterator[_RawServer]:
    with _RawServer() as server:
        yield server


def _completion(message: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    body = build_completion({"model": "fake-model", "messages": []}, {"content": "ok"})
    if message is not None:
        body["choices"][0]["message"] = {"role": "assistant", **message}
    body.update(changes)
    return body


def _choice(finish: Any, message: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"index": 0, "finish_reason": finish, "message": {"role": "assistant", **message}, **extra}


_CALL = {"id": "c1", "type": "function", "function": {"name": "wait", "arguments": "{}"}}

ANSWERS = {
    "everyday_text": _completion(),
    "everyday_tool_call": _completion(choices=[_choice("tool_calls", {"content": None, "tool_calls": [_CALL]})]),
    "think_tags": _completion({"content": "<think>hmm, a bid</think>I bid 99."}),
    "thinking_tags": _completion({"content": "<thinking>x</thinking>{\"actions\": []}"}),
    "reasoning_field": _completion({"content": "ok", "reasoning_content": "because"}),
    "finish_none": _completion(choices=[_choice(None, {"content": "ok"})]),
    "finish_none_with_tools": _completion(choices=[_choice(None, {"content": None, "tool_calls": [_CALL]})]),
    "finish_stop_with_tools": _completion(choices=[_choice("stop", {"content": None, "tool_calls": [_CALL]})]),
    "finish_eos": _completion(choices=[_choice("eos", {"content": "ok"})]),
    "finish_unknown": _completion(choices=[_choice("banana", {"content": "ok"})]),
    "finish_details": _completion(choices=[_choice(None, {"content": "ok"}, finish_details={"type": "stop"})]),
    "tool_call_without_id": _completion(
        choices=[_choice("tool_calls", {"tool_calls": [{"type": "function", "function": {"name": "wait", "arguments": "{}"}}]})]
    ),
    "tool_call_empty_id": _completion(
        choices=[_choice("tool_calls", {"tool_calls": [{**_CALL, "id": ""}]})]
    ),
    "parallel_wrapper": _completion(
        choices=[
            _choice(
                "tool_calls",
                {
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {
                                "name": "multi_tool_use.parallel",
                                "arguments": '{"tool_uses": [{"recipient_name": "functions.wait", "parameters": {}}]}',
                            },
                        }
                    ]
                },
            )
        ]
    ),
    "usage_negative": _completion(usage={"prompt_tokens": -5, "completion_tokens": 3, "total_tokens": -2}),
    "usage_incomplete": _completion(usage={"prompt_tokens": 5}),
    "usage_float": _completion(usage={"prompt_tokens": 5.0, "completion_tokens": 3, "total_tokens": 8}),
    "no_usage": {k: v for k, v in _completion().items() if k != "usage"},
    "no_model": {k: v for k, v in _completion().items() if k != "model"},
    "empty_model": _completion(model=""),
    "error_null": _completion(error=None),
    "error_field": _completion(error={"message": "upstream failed", "code": 502}),
    "empty_content": _completion({"content": ""}),
    "two_choices": _completion(
        choices=[_choice("stop", {"content": "first"}), {**_choice(None, {"content": "<think>a</think>b"}), "index": 1}]
    ),
}


def _outcome(server: _RawServer, *, direct: bool) -> Any:
    request = ChatRequest(model="openai/fake-model", messages=[{"role": "user", "content": "Act."}])
    model = LiteLLMChatModel(request.model, api_base=server.base_url, api_key=KEY, max_attempts=1, direct=direct)
    try:
        response = asyncio.run(model.complete(request))
    except LLMError as err:
        return ("error", err.kind, err.retryable, err.status_code, re.sub(r"time taken=[0-9.]+", "T", str(err)))
    data = response.to_dict()
    del data["latency_s"], data["attempt_latencies_s"]
    return data


async def _forbidden(**kwargs: Any) -> Any:
    raise AssertionError("the lean path called litellm.acompletion")


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_lean_answer_equals_the_full_paths(raw_server: _RawServer, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    raw_server.reply = (200, ANSWERS[name], {})
    full = _outcome(raw_server, direct=False)
    with monkeypatch.context() as patch:
        patch.setattr(_litellm(), "acompletion", _forbidden)
        raw_server.reply = (200, ANSWERS[name], {})
        lean = _outcome(raw_server, direct=True)
    if name == "tool_call_without_id":  # litellm invents a random id (uuid4) on either path
        for answer in (lean, full):
            assert len(answer["tool_calls"][0].pop("id")) == 36
    assert lean == full


@pytest.mark.parametrize("name", ["everyday_text", "everyday_tool_call", "finish_none_with_tools"])
def test_everyday_answers_build_no_model_response(
    raw_server: _RawServer, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unpriced model's everyday answer never becomes a litellm ``ModelResponse``: once known
    unpriced, nothing asks for one."""
    _litellm()  # imported as the backend imports it (no price-map download)
    import litellm.utils

    built: list[int] = []
    real = litellm.utils.convert_to_model_response_object

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(litellm.utils, "convert_to_model_response_object", counting)
    raw_server.reply = (200, ANSWERS[name], {})
    backend = LiteLLMChatModel("openai/fake-model", api_base=raw_server.base_url, api_key=KEY, max_attempts=1)
    backend._unpriced.add("openai/fake-model")  # what the first call of an unpriced model learns
    request = ChatRequest(model="openai/fake-model", messages=[{"role": "user", "content": "Act."}])

    async def three() -> list[Any]:
        return [await backend.complete(request) for _ in range(3)]

    answers = asyncio.run(three())
    assert built == []
    assert [a.finish_reason for a in answers] == [answers[0].finish_reason] * 3
    assert answers[0].finish_reason == ("stop" if name == "everyday_text" else "tool_calls")


def test_a_priced_models_cost_still_comes_from_litellm(raw_server: _RawServer, monkeypatch: pytest.MonkeyPatch) -> None:
    raw_server.reply = (200, _completion(model="gpt-4o-mini"), {})
    request = ChatRequest(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Act."}])
    full = LiteLLMChatModel(request.model, api_base=raw_server.base_url, api_key=KEY, direct=False)
    lean = LiteLLMChatModel(request.model, api_base=raw_server.base_url, api_key=KEY)
    with monkeypatch.context() as patch:
        full_cost = asyncio.run(full.complete(request)).cost_usd
        patch.setattr(_litellm(), "acompletion", _forbidden)
        lean_cost = asyncio.run(lean.complete(request)).cost_usd
    assert full_cost == lean_cost > 0


def test_litellms_client_cache_is_asked_once_per_loop_not_per_call(
    raw_server: _RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """litellm's client lookup hashes the settings and scans its cache on every call: asked once a
    second at most, and again on a new event loop (its clients belong to their loop)."""
    _litellm()  # imported as the backend imports it (no price-map download)
    from litellm.llms.openai.openai import OpenAIChatCompletion

    asked: list[int] = []
    real = OpenAIChatCompletion._get_openai_client

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(OpenAIChatCompletion, "_get_openai_client", counting)
    raw_server.reply = (200, ANSWERS["everyday_text"], {})
    backend = LiteLLMChatModel("openai/fake-model", api_base=raw_server.base_url, api_key=KEY, max_attempts=1)
    request = ChatRequest(model="openai/fake-model", messages=[{"role": "user", "content": "Act."}])

    async def five() -> None:
        for _ in range(5):
            await backend.complete(request)

    asyncio.run(five())
    assert len(asked) == 1
    asyncio.run(five())  # a new loop: litellm's client for it
    assert len(asked) == 2
