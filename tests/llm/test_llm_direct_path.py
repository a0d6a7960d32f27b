"""litellm's lean path for ``openai/`` models at an api_base gives what ``litellm.acompletion`` gives.

Every case runs the same request twice against the same server, once through ``litellm.acompletion``
(``direct=False``) and once through :mod:`mesa_llm.llm.direct`, and compares what is sent (the JSON
body, the key) and what comes back (the answer as recorded, or the error as classified).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from mesa_llm.llm import ChatRequest, LiteLLMChatModel, LLMError
from mesa_llm.llm.litellm_backend import _litellm
from tests.adversarial_llm_server import MODES, AdversarialLLMServer
from tests.fake_openai_server import FakeOpenAIServer, build_completion

KEY = "sk-test-not-a-real-key"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "place_order",
            "description": "Place a limit order.",
            "parameters": {
                "type": "object",
                "properties": {"side": {"type": "string", "enum": ["buy", "sell"]}, "price": {"type": "number"}},
                "required": ["side", "price"],
            },
        },
    },
    {"type": "function", "function": {"name": "wait", "parameters": {"type": "object", "properties": {}}}},
]
SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "act", "schema": {"type": "object", "properties": {"tool": {"type": "string"}}}},
}
REQUESTS = {
    "plain": {},
    "tools": {"tools": TOOLS, "tool_choice": "auto", "temperature": 0.0, "seed": 7},
    "schema": {"response_format": SCHEMA, "max_tokens": 64},
    "history": {
        "tools": TOOLS,
        "extra_messages": [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "wait", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "accepted"},
        ],
    },
}


class RawServer(FakeOpenAIServer):
    """Answers every request with ``reply`` (status, body, headers) when set."""

    reply: tuple[int, Any, dict[str, str]] | None = None

    def scripted_reply(self, request: dict[str, Any]) -> tuple[int, Any, dict[str, str]] | None:
        return self.reply


@pytest.fixture(scope="module")
def raw_server() -> Iterator[RawServer]:
    with RawServer() as server:
        yield server


def _request(model: str, shape: str) -> ChatRequest:
    options = dict(REQUESTS[shape])
    messages = [{"role": "user", "content": "Cash 500, value 150. Act."}, *options.pop("extra_messages", [])]
    return ChatRequest(model=model, messages=messages, **options)


def _outcome(server: FakeOpenAIServer, request: ChatRequest, *, direct: bool, **options: Any) -> Any:
    """What the backend gives for ``request``: the answer without timings, or the error's parts."""
    model = LiteLLMChatModel(
        request.model, api_base=server.base_url, api_key=KEY, max_attempts=1, direct=direct, **options
    )
    try:
        response = asyncio.run(model.complete(request))
    except LLMError as err:
        # litellm's timeout text carries the seconds taken: the only part allowed to differ
        text = re.sub(r"time taken=[0-9.]+", "time taken=T", str(err))
        return ("error", err.kind, err.retryable, err.status_code, text)
    data = response.to_dict()
    del data["latency_s"], data["attempt_latencies_s"]
    return data


def _both(server: FakeOpenAIServer, request: ChatRequest, monkeypatch: pytest.MonkeyPatch, **options: Any) -> tuple[Any, Any]:
    """(full path, lean path) outcomes; the lean one with litellm.acompletion made to fail, so a
    passing comparison cannot come from both runs taking the full path."""
    full = _outcome(server, request, direct=False, **options)
    with monkeypatch.context() as patch:
        patch.setattr(_litellm(), "acompletion", _forbidden)
        lean = _outcome(server, request, direct=True, **options)
    return full, lean


async def _forbidden(**kwargs: Any) -> Any:
    raise AssertionError("the lean path called litellm.acompletion")


@pytest.mark.parametrize("shape", sorted(REQUESTS))
def test_same_body_and_answer_for_each_request_shape(shape: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def responder(request: dict[str, Any]) -> dict[str, Any]:
        if request.get("tools"):
            return {"content": None, "tool_calls": [{"name": "place_order", "arguments": '{"side":"buy","price":99.5}'}]}
        return {"content": json.dumps({"tool": "wait"})}

    with FakeOpenAIServer(responder=responder) as server:
        full, lean = _both(server, _request("openai/fake-model", shape), monkeypatch)
        sent_full, sent_lean = server.requests
        headers_full, headers_lean = server.request_headers
    assert full == lean
    assert sent_full == sent_lean  # the same JSON body
    assert headers_full["authorization"] == headers_lean["authorization"] == f"Bearer {KEY}"


def test_each_call_sends_its_own_tools_and_format(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lean path remembers litellm's parameter mapping per shape: later calls of the same
    shape must still send their own tools, schema and numbers."""
    second_tools = [dict(TOOLS[1], function={**TOOLS[1]["function"], "name": "cancel"})]
    other_schema = {"type": "json_schema", "json_schema": {"name": "other", "schema": {"type": "object"}}}
    requests = [
        _request("openai/fake-model", "tools"),
        ChatRequest(model="openai/fake-model", messages=[{"role": "user", "content": "b"}], tools=second_tools,
                    tool_choice="auto", temperature=0.0, seed=7),
        ChatRequest(model="openai/fake-model", messages=[{"role": "user", "content": "c"}], tools=TOOLS,
                    tool_choice="auto", temperature=0.5, seed=8),
        _request("openai/fake-model", "schema"),
        ChatRequest(model="openai/fake-model", messages=[{"role": "user", "content": "d"}],
                    response_format=other_schema, max_tokens=9),
    ]
    with FakeOpenAIServer() as server:
        for request in requests:
            asyncio.run(LiteLLMChatModel(request.model, api_base=server.base_url, api_key=KEY, direct=False).complete(request))
        full = list(server.requests)
        server.reset()
        lean = LiteLLMChatModel(requests[0].model, api_base=server.base_url, api_key=KEY)
        with monkeypatch.context() as patch:
            patch.setattr(_litellm(), "acompletion", _forbidden)
            for request in requests:
                asyncio.run(lean.complete(request))
        assert server.requests == full


def _completion(**changes: Any) -> dict[str, Any]:
    body = build_completion({"model": "fake-model", "messages": []}, {"content": "ok"})
    body.update(changes)
    return body


RAW_ANSWERS = {
    "usage_details": _completion(
        usage={
            "prompt_tokens": 40,
            "completion_tokens": 7,
            "total_tokens": 47,
            "prompt_tokens_details": {"cached_tokens": 32},
            "completion_tokens_details": {"reasoning_tokens": 3},
        }
    ),
    "no_usage": {k: v for k, v in _completion().items() if k != "usage"},
    "extra_fields": _completion(service_tier="default", timings={"predicted_ms": 12.5}),
    "tool_call_no_content_key": _completion(
        choices=[
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "tool_calls": [{"id": "c9", "type": "function", "function": {"name": "wait", "arguments": "{}"}}],
                },
            }
        ]
    ),
    "no_choices": _completion(choices=[]),
    "choices_not_a_list": _completion(choices={"0": "x"}),
    "json_list": [1, 2, 3],
    "no_id": {k: v for k, v in _completion().items() if k != "id"},
}


@pytest.mark.parametrize("name", sorted(RAW_ANSWERS))
def test_same_result_for_each_answer_shape(raw_server: RawServer, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    raw_server.reply = (200, RAW_ANSWERS[name], {})
    full, lean = _both(raw_server, _request("openai/fake-model", "plain"), monkeypatch)
    assert full == lean


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (400, {"error": {"message": "bad 'seed'", "type": "invalid_request_error"}}, {}),
        (401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error"}}, {}),
        (404, {"error": {"message": "The model does not exist."}}, {}),
        (413, "request too large", {"Content-Type": "text/plain"}),
        (422, {"detail": [{"loc": ["body", "seed"], "msg": "bad"}]}, {}),
        (429, {"error": {"message": "Rate limit reached."}}, {"Retry-After": "7"}),
        (500, {"error": {"code": 500, "message": "Unsupported response_format: json_schema"}}, {}),
        (500, {"error": {"message": "The server had an error."}}, {}),
        (503, "<html><body>overloaded</body></html>", {"Content-Type": "text/html"}),
        (200, "<html><body>login</body></html>", {"Content-Type": "text/html"}),
        (200, b"", {}),
        (200, b"{not json", {}),
    ],
)
def test_same_error_for_each_failure(
    raw_server: RawServer, status: int, body: Any, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw_server.reply = (status, body.encode() if isinstance(body, str) else body, headers)
    full, lean = _both(raw_server, _request("openai/fake-model", "tools"), monkeypatch)
    assert full == lean
    if status >= 400:
        assert full[0] == "error" and full[3] == status


@pytest.mark.parametrize("mode", [m for m in MODES if m != "normal"])
def test_same_result_against_a_hostile_provider(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with AdversarialLLMServer(mode, hang_s=2.0) as server:
        timeout = 0.3 if mode == "hang" else 30.0  # a 1 MB answer takes the full path > 0.3 s
        full, lean = _both(server, _request("openai/fake-model", "tools"), monkeypatch, timeout=timeout)
    assert full == lean


def test_same_cost_for_a_priced_model(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer() as server:
        full, lean = _both(server, _request("openai/gpt-4o-mini", "plain"), monkeypatch)
    assert full == lean and full["cost_usd"] > 0


def test_connection_refused_and_timeout_fail_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    class Nowhere:
        base_url = "http://127.0.0.1:9/v1"

    full, lean = _both(Nowhere(), _request("openai/fake-model", "plain"), monkeypatch)  # type: ignore[arg-type]
    assert full == lean and full[1] == "connection"
    with FakeOpenAIServer() as server:
        server.fail_always(None, delay_s=1.0)
        full, lean = _both(server, _request("openai/fake-model", "plain"), monkeypatch, timeout=0.2)
    assert full == lean and full[1] == "timeout"


class RedirectingServer(FakeOpenAIServer):
    """Redirects every other request back to the same URL (307); sets a cookie on the first."""

    def scripted_reply(self, request: dict[str, Any]) -> tuple[int, Any, dict[str, str]] | None:
        count = len(self.requests)
        if count % 2 == 1:
            headers = {"Location": f"{self.base_url}/chat/completions"}
            if count == 1:
                headers["Set-Cookie"] = "affinity=node-7; Path=/"
            return 307, b"", headers
        return None


def test_redirects_and_cookies_are_followed_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(direct: bool) -> tuple[Any, list[str | None]]:
        with RedirectingServer() as server:
            model = LiteLLMChatModel("openai/fake-model", api_base=server.base_url, api_key=KEY, max_attempts=1, direct=direct)
            request = _request("openai/fake-model", "plain")
            with monkeypatch.context() as patch:
                if direct:
                    patch.setattr(_litellm(), "acompletion", _forbidden)
                answers = [asyncio.run(model.complete(request)).content for _ in range(2)]
            return answers, [h.get("cookie") for h in server.request_headers]

    full, lean = run(False), run(True)
    assert full == lean
    answers, cookies = full
    assert answers == ["ok", "ok"] and len(cookies) == 4  # each call redirected once
    assert cookies[1] == "affinity=node-7"  # the cookie set by the redirect went along


def test_litellm_callbacks_or_extra_params_keep_the_full_path(monkeypatch: pytest.MonkeyPatch) -> None:
    litellm = _litellm()
    with FakeOpenAIServer() as server:
        request = _request("openai/fake-model", "plain")
        lean = LiteLLMChatModel(request.model, api_base=server.base_url, api_key=KEY)
        assert lean._sender(litellm, request.model, {"model": request.model}) is not litellm.acompletion
        monkeypatch.setattr(litellm, "success_callback", [lambda *a, **k: None])
        assert lean._sender(litellm, request.model, {"model": request.model}) is litellm.acompletion
        monkeypatch.setattr(litellm, "success_callback", [])
        monkeypatch.setenv("MESA_LLM_LITELLM_FULL_PATH", "1")
        assert lean._sender(litellm, request.model, {"model": request.model}) is litellm.acompletion
        monkeypatch.delenv("MESA_LLM_LITELLM_FULL_PATH")
        extra = LiteLLMChatModel(request.model, api_base=server.base_url, api_key=KEY, extra_params={"top_p": 0.5})
        kwargs = extra._call_kwargs(request.model, request)
        assert extra._sender(litellm, request.model, kwargs) is litellm.acompletion
        other = LiteLLMChatModel("hosted_vllm/fake-model", api_base=server.base_url, api_key=KEY)
        assert other._sender(litellm, "hosted_vllm/fake-model", {}) is litellm.acompletion
