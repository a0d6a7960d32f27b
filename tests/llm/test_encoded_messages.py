"""A call's messages are encoded once (`mesa_llm.encoded_json`) for the request body, the request key and the
``llm_call`` record: each is the same bytes its own encoder gives for the whole, for every shape of message
(plain ones put in place, anything else encoded as before), and a kept string is never taken for another."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from openai._utils._json import openapi_dumps

from mesa_llm import encoded_json
from mesa_llm.llm import ChatRequest
from mesa_llm.llm.direct import DirectOpenAI
from mesa_llm.llm.litellm_backend import _litellm
from mesa_llm.llm.types import canonical_json

SYSTEM = 'You trade "widgets".\nRules: \u00e9\u00e8 \u2603 \\ tab\there \U0001f600 </script> \x00 \u2028'
TOOLS = [{"type": "function", "function": {"name": "wait", "parameters": {"type": "object", "properties": {}}}}]

#: message lists: plain ones (put in place) and every other shape (encoded whole, as before)
MESSAGES: dict[str, list[Any]] = {
    "plain": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Cash 5\u20ac. \"Act\"."}],
    "one": [{"role": "user", "content": ""}],
    "three": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
    "key_order": [{"content": SYSTEM, "role": "system"}, {"role": "user", "content": "a"}],
    "tool_turn": [{"role": "system", "content": SYSTEM},
                  {"role": "assistant", "content": "", "tool_calls": [{"id": "c", "type": "function",
                   "function": {"name": "wait", "arguments": "{}"}}]},
                  {"role": "tool", "tool_call_id": "c", "content": "accepted"}],  # fmt: skip
    "content_list": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    "none_content": [{"role": "assistant", "content": None}, {"role": "user", "content": "x"}],
    "placeholder": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": encoded_json.PLACEHOLDER}],
    "empty": [],
}


def _reference_key(request: ChatRequest) -> str:
    fields = ("model", "messages", "tools", "tool_choice", "response_format", "temperature", "max_tokens", "seed")
    payload = {name: getattr(request, name) for name in fields}
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


@pytest.mark.parametrize("shape", list(MESSAGES))
def test_the_body_the_key_and_the_messages_text_are_each_encoders_own(shape: str) -> None:
    messages = MESSAGES[shape]
    text = encoded_json.messages_json(messages)
    if shape in ("plain", "one", "three", "placeholder", "empty"):
        assert text == json.dumps(messages, ensure_ascii=False, separators=(",", ":"))
    else:
        assert text is None  # not a plain message list: left to the encoders
    direct = DirectOpenAI(_litellm())
    direct.keep_tools(TOOLS)
    for body in ({"model": "m", "messages": messages, "tools": TOOLS, "temperature": 0.5},
                 {"tools": TOOLS, "messages": messages}, {"model": "m", "messages": messages, "max_tokens": 3}):  # fmt: skip
        assert direct._body(body) == openapi_dumps(body), body
    for request in (ChatRequest(model="m", messages=messages, tools=TOOLS, max_tokens=9, seed=1),
                    ChatRequest(model="m", messages=messages, temperature=0.2)):  # fmt: skip
        assert request.cache_key() == _reference_key(request)


def test_a_kept_string_is_only_ever_given_for_itself() -> None:
    text = "agent 3's prompt"
    other = "agent 4's prompt"
    encoded_json._TEXTS[id(text)] = (other, json.dumps(other))  # as if another string had held its id
    assert encoded_json.encoded_text(text) == json.dumps(text, ensure_ascii=False)
    assert encoded_json.encoded_text(text) is encoded_json.encoded_text(text)  # kept now: made once


def test_the_kept_strings_start_again_past_their_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoded_json, "MAX_TEXTS", 4)
    encoded_json._TEXTS.clear()
    texts = [f"prompt {i}" for i in range(10)]
    for t in texts:
        assert encoded_json.encoded_text(t) == json.dumps(t)
        assert len(encoded_json._TEXTS) <= 4


def test_fill_refuses_a_text_whose_placeholders_do_not_match() -> None:
    stand_in = json.dumps({"a": encoded_json.PLACEHOLDER, "b": encoded_json.PLACEHOLDER}, ensure_ascii=False, separators=(",", ":"))
    assert encoded_json.fill(stand_in, ["[1]", "{}"]) == '{"a":[1],"b":{}}'
    assert encoded_json.fill(stand_in, ["[1]"]) is None
    assert encoded_json.fill(stand_in.encode(), [b"2", b"3"]) == b'{"a":2,"b":3}'
