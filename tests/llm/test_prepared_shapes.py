"""The lean path's prepared shapes (``DirectOpenAI._prepare``): a call of a shape made before (model, base,
key, timeout, scalar parameters, kept tool list) sends the bytes litellm's mapping and transform give, without
running them; everything else goes the full path, which stays the reference (same bodies, same recordings)."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest

from mesa_llm.llm import ChatRequest, LiteLLMChatModel, http1
from mesa_llm.llm.direct import DirectOpenAI
from mesa_llm.llm.types import canonical_json
from tests.fake_openai_server import FakeOpenAIServer
from tests.support.recordings import record_llm_double_auction

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "place_order",
            "description": "Place a limit order (\u00e9, \"quoted\").",
            "parameters": {"type": "object", "properties": {"price": {"type": "number", "minimum": 0.01}}},
        },
    },
    {"type": "function", "function": {"name": "wait", "parameters": {"type": "object", "properties": {}}}},
]
OTHER_TOOLS = [{"type": "function", "function": {"name": "cancel", "parameters": {"type": "object", "properties": {}}}}]
SYSTEM = {"role": "system", "content": "You trade. Rules \u00fc \U0001f600 \"q\"\n"}


def _requests() -> list[ChatRequest]:
    """Calls of several shapes, interleaved: a prepared shape must never lend its bytes to another."""
    tools, other = copy.deepcopy(TOOLS), copy.deepcopy(OTHER_TOOLS)
    out = []
    for i in range(4):
        user = {"role": "user", "content": f"Step {i}: cash {500 + i}\u20ac, a \"quote\"\tand\\slash."}
        messages = [SYSTEM, user]
        out += [
            ChatRequest(model="openai/fake-model", messages=messages, tools=tools, tool_choice="auto", temperature=0.7,
                        max_tokens=300, seed=3, tools_json=canonical_json(tools)),  # fmt: skip
            ChatRequest(model="openai/fake-model", messages=messages, temperature=0.7, max_tokens=160, seed=3),
            ChatRequest(model="openai/fake-model", messages=messages, temperature=0.2 + i, max_tokens=160, seed=3),
            ChatRequest(model="openai/fake-model", messages=messages, tools=other, tool_choice="auto",
                        temperature=0.7, max_tokens=300, seed=i, tools_json=canonical_json(other)),  # fmt: skip
            ChatRequest(model="openai/other-model", messages=messages, temperature=0.7, max_tokens=160, seed=3),
            # a repair round's messages (a tool turn): never a prepared shape
            ChatRequest(model="openai/fake-model", messages=[*messages, {"role": "assistant", "content": "",
                        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "wait", "arguments": "{}"}}]},
                        {"role": "tool", "tool_call_id": "c1", "content": "accepted"}], tools=tools, tool_choice="auto",
                        temperature=0.7, max_tokens=300, seed=3, tools_json=canonical_json(tools)),  # fmt: skip
        ]
    return out


def _sent(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, *, prepared: bool) -> tuple[list[bytes], list[Any], int]:
    """The body bytes our HTTP/1.1 client sent for `_requests` (in order, one call at a time), the answers,
    and how often litellm's transform ran."""
    sent: list[bytes] = []
    post = http1.Pool.post
    transforms = [0]

    async def capture(self: Any, head: bytes, body: bytes, *args: Any) -> Any:
        sent.append(body)
        return await post(self, head, body, *args)

    monkeypatch.setattr(http1.Pool, "post", capture)
    if not prepared:
        monkeypatch.setattr(DirectOpenAI, "_shape_key", lambda *a, **k: None)
    chat = LiteLLMChatModel("openai/fake-model", api_base=server.base_url, api_key="sk-x", timeout=30.0)

    async def calls() -> list[Any]:
        http1.install(asyncio.get_running_loop())
        answers = []
        for request in _requests():
            answers.append((await chat.complete(request)).to_record())
            direct = chat._direct
            if direct is not None and transforms[0] == 0:  # counted from the first call on
                config = direct._config_for("fake-model")
                original = config.async_transform_request

                async def counted(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                    transforms[0] += 1
                    return await _original(*args, **kwargs)

                config.async_transform_request = counted
                transforms[0] = 1
        http1.close(asyncio.get_running_loop())
        return answers

    answers = asyncio.run(calls())
    monkeypatch.undo()
    return sent, answers, transforms[0]


def test_prepared_shapes_send_the_full_paths_bytes_and_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer() as server:
        full, full_answers, full_transforms = _sent(server, monkeypatch, prepared=False)
        lean, lean_answers, lean_transforms = _sent(server, monkeypatch, prepared=True)
    assert len(full) == len(lean) == len(_requests())
    for i, (a, b) in enumerate(zip(full, lean, strict=True)):
        assert a == b, f"call {i}: the prepared body differs from the full path's"
    assert lean_answers == full_answers
    # the full path transforms every fake-model call (5 a round); prepared: the first call of each shape
    # (the act and plan shapes once, the temperature and the seed differ every round) and the tool turns
    assert full_transforms == 20
    assert lean_transforms == 1 + 1 + 4 + 4 + 4


def _prepared_call_counts(monkeypatch: pytest.MonkeyPatch, server: FakeOpenAIServer, change: Any) -> tuple[int, list[bytes]]:
    """Three act calls of one shape with ``change(direct, request)`` done before the third: how many
    were prepared (`DirectOpenAI._ready` gave a body) and the bodies sent."""
    sent: list[bytes] = []
    post = http1.Pool.post

    async def capture(self: Any, head: bytes, body: bytes, *args: Any) -> Any:
        sent.append(body)
        return await post(self, head, body, *args)

    monkeypatch.setattr(http1.Pool, "post", capture)
    ready = DirectOpenAI._ready
    taken = [0]

    def counted(self: DirectOpenAI, *args: Any) -> Any:
        found = ready(self, *args)
        taken[0] += found is not None
        return found

    monkeypatch.setattr(DirectOpenAI, "_ready", counted)
    tools = copy.deepcopy(TOOLS)
    chat = LiteLLMChatModel("openai/fake-model", api_base=server.base_url, api_key="sk-x", timeout=30.0)

    def request(i: int) -> ChatRequest:
        return ChatRequest(model="openai/fake-model", messages=[SYSTEM, {"role": "user", "content": f"step {i}"}],
                           tools=tools, tool_choice="auto", max_tokens=300, seed=1, tools_json=canonical_json(tools))  # fmt: skip

    async def calls() -> None:
        http1.install(asyncio.get_running_loop())
        await chat.complete(request(0))
        await chat.complete(request(1))
        assert chat._direct is not None
        change(chat._direct, tools)
        await chat.complete(request(2))
        http1.close(asyncio.get_running_loop())

    asyncio.run(calls())
    monkeypatch.undo()
    return taken[0], sent


def test_a_shape_is_taken_again_until_its_client_is_asked_for_anew(monkeypatch: pytest.MonkeyPatch) -> None:
    def expire(direct: DirectOpenAI, tools: Any) -> None:
        for prepared in direct._prepared.values():
            if prepared is not None:
                prepared.until = 0.0

    with FakeOpenAIServer() as server:
        assert _prepared_call_counts(monkeypatch, server, lambda direct, tools: None)[0] == 2
        assert _prepared_call_counts(monkeypatch, server, expire)[0] == 1  # the full path asks litellm again


def test_a_tool_list_no_longer_kept_is_not_sent_from_a_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    """A list its caller no longer keeps (forgotten, then changed in place) is encoded as it is now."""

    def change(direct: DirectOpenAI, tools: Any) -> None:
        direct._kept_tools.clear()
        tools[1]["function"]["name"] = "hold"

    with FakeOpenAIServer() as server:
        taken, sent = _prepared_call_counts(monkeypatch, server, change)
        assert server.requests[-1]["tools"][1]["function"]["name"] == "hold"
    assert taken == 1
    assert b'"hold"' in sent[-1]


def _recording(server: FakeOpenAIServer, out: Path, monkeypatch: pytest.MonkeyPatch, *, prepared: bool) -> list[str]:
    if not prepared:
        monkeypatch.setattr(DirectOpenAI, "_shape_key", lambda *a, **k: None)
    try:
        return record_llm_double_auction(server.base_url, out, seed=4, overrides=("populations.0.params.plan_every=1",))
    finally:
        monkeypatch.undo()


def test_a_run_records_the_same_with_and_without_prepared_shapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer() as server:
        full = _recording(server, tmp_path / "full", monkeypatch, prepared=False)
        full_bodies = list(server.requests)
        lean = _recording(server, tmp_path / "lean", monkeypatch, prepared=True)
        lean_bodies = server.requests[len(full_bodies) :]
    assert any('"llm_call"' in line for line in full)
    assert lean == full
    # the same requests (the server sees concurrent calls in the order they arrive)
    assert sorted(map(canonical_json, lean_bodies)) == sorted(map(canonical_json, full_bodies))
