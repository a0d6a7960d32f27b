"""A request key's scalar fields (model, response format, seed, temperature, tool choice) are written by hand
when each is a plain scalar (`ChatRequest._rest_json`): the key stays the SHA-256 of the canonical JSON of
everything that determines the answer, whatever the values' types."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from mesa_llm.llm import ChatRequest
from mesa_llm.llm.types import canonical_json

SYSTEM = "You are a trader. \u00e9 \U0001f600 " * 10
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "step 3 \"now\""}]
TOOLS = [{"type": "function", "function": {"name": "wait", "parameters": {"type": "object"}}}]
FIELDS = ("model", "messages", "tools", "tool_choice", "response_format", "temperature", "max_tokens", "seed")


class _Int(int):
    def __repr__(self) -> str:
        return "odd"


VALUES: list[dict[str, Any]] = [
    {},
    {"temperature": 0.7, "seed": 3, "tool_choice": "auto"},
    {"temperature": 1e-7, "seed": -12, "model": "openai/gpt-\u00e9 \"x\""},
    {"temperature": 1e16, "seed": 2**70},
    {"temperature": 1, "seed": 0},
    {"temperature": float("nan")},
    {"temperature": float("inf")},
    {"seed": True},
    {"seed": _Int(5)},
    {"tool_choice": {"type": "function", "function": {"name": "wait"}}},
    {"response_format": {"type": "json_schema", "json_schema": {"b": 1, "a": [2.5, None]}}},
    {"response_format": "json"},
    {"model": None},
]


def _reference(request: ChatRequest) -> str:
    payload = {name: getattr(request, name) for name in FIELDS}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize("values", VALUES, ids=[str(i) for i in range(len(VALUES))])
@pytest.mark.parametrize("tools_json", [False, True])
def test_a_request_key_is_the_hash_of_its_canonical_json(values: dict[str, Any], tools_json: bool) -> None:
    request = ChatRequest(messages=MESSAGES, tools=TOOLS, max_tokens=300,
                          tools_json=canonical_json(TOOLS) if tools_json else None, **{"model": "m", **values})  # fmt: skip
    assert request.cache_key() == _reference(request)
    assert request.cache_key() == _reference(request)  # from the kept opening


def test_each_field_changes_the_key() -> None:
    base = ChatRequest(model="m", messages=MESSAGES, temperature=0.5, seed=1, tool_choice="auto")
    keys = {base.cache_key()}
    for change in ({"model": "n"}, {"temperature": 0.25}, {"seed": 2}, {"tool_choice": "none"},
                   {"response_format": {"type": "json_object"}}, {"temperature": None}, {"seed": None}):  # fmt: skip
        other = ChatRequest(**{"model": "m", "messages": MESSAGES, "temperature": 0.5, "seed": 1,
                               "tool_choice": "auto", **change})  # fmt: skip
        assert other.cache_key() == _reference(other)
        keys.add(other.cache_key())
    assert len(keys) == 8
