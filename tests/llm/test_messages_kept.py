"""A call's list of messages is encoded once for the request body, the request key and the record
(`mesa_llm.encoded_json._LISTS`): asked again it gives the same text, and a list or a message changed in place
since is encoded anew (never the text of what it held before)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from mesa_llm import encoded_json
from mesa_llm.encoded_json import message_parts, messages_json
from mesa_llm.llm.types import ChatRequest


def _compact(messages: Any) -> str:
    return json.dumps(messages, ensure_ascii=False, separators=(",", ":"))


def _key(messages: list[Any]) -> str:
    request = ChatRequest(model="m", messages=messages, temperature=0.5, max_tokens=10, seed=1)
    payload = {name: getattr(request, name) for name in
               ("model", "messages", "tools", "tool_choice", "response_format", "temperature", "max_tokens", "seed")}
    assert request.cache_key() == hashlib.sha256(
        json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
    return request.cache_key()


def _set(i: int, key: str, value: Any) -> Callable[[list[Any]], None]:
    def change(messages: list[Any]) -> None:
        messages[i][key] = value
    return change


def _reorder(messages: list[Any]) -> None:
    role = messages[0].pop("role")
    messages[0]["role"] = role  # the same strings, keys now content, role


CHANGES: dict[str, Callable[[list[Any]], None]] = {
    "content": _set(1, "content", "Cash 400. Act — now ✓"),
    "equal_content_new_string": _set(1, "content", "".join(["Cash 500, ", "value 150. Act."])),
    "role": _set(0, "role", "developer"),
    "message_replaced": lambda m: m.__setitem__(1, {"role": "user", "content": "other"}),
    "appended": lambda m: m.append({"role": "assistant", "content": "ok"}),
    "popped": lambda m: m.pop(),
    "extra_key": _set(1, "name", "x"),
    "key_order": _reorder,
    "content_list": _set(1, "content", [{"type": "text", "text": "hi"}]),
    "emptied": lambda m: m.clear(),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_list_changed_in_place_is_encoded_anew(change: str) -> None:
    """Asked three times (body, key, record): the same text; changed in place: the changed list's text."""
    messages: list[Any] = [{"role": "system", "content": "You trade. " * 50},
                           {"role": "user", "content": "Cash 500, value 150. Act."}]
    for _ in range(3):
        assert messages_json(messages) == _compact(messages)
        _key(messages)
    CHANGES[change](messages)
    plain = all(type(m) is dict and list(m) == ["role", "content"] and type(m["content"]) is str for m in messages)
    for _ in range(2):
        assert messages_json(messages) == (_compact(messages) if plain else None)
        assert (message_parts(messages) is None) == (not plain)
        _key(messages)  # the key is sha256 of the canonical JSON of what the list holds now


def test_lists_are_kept_apart_and_the_store_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many lists in flight each get their own text; past MAX_LISTS the store starts again."""
    monkeypatch.setattr(encoded_json, "MAX_LISTS", 8)
    lists = [[{"role": "user", "content": f"call {i}"}] for i in range(20)]
    for _ in range(2):
        for messages in lists:
            assert messages_json(messages) == _compact(messages)
    assert len(encoded_json._LISTS) <= 8
