"""`mesa_llm.llm.litellm_backend._attr` reads a provider's plain JSON dict by key without trying the attribute
first, with the same answers as the attribute-then-key read: for keys, missing keys, None values, a dict's own
attribute names, dict subclasses and objects."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from mesa_llm.llm.litellm_backend import _attr


def _reference(obj: Any, name: str, default: Any = None) -> Any:
    """The read as it was: the attribute, else the key of a dict, else ``default``."""
    if obj is None:
        return default
    value = getattr(obj, name, None)
    if value is None and isinstance(obj, dict):
        value = obj.get(name)
    return default if value is None else value


class _Dict(dict):  # type: ignore[type-arg]
    content = "from the attribute"


ANSWER = {"choices": [{"message": {"content": "hi", "tool_calls": None}}], "usage": {"prompt_tokens": 3},
          "model": "m", "items": "a key named like a dict method", "finish_reason": None}  # fmt: skip


@pytest.mark.parametrize("name", ["choices", "usage", "model", "finish_reason", "absent", "items", "get", "keys", "content"])
@pytest.mark.parametrize(
    "obj", [ANSWER, _Dict(ANSWER, content="from the key"), SimpleNamespace(model="m", items=None), None, {}],
)  # fmt: skip
def test_a_field_reads_as_before(obj: Any, name: str) -> None:
    """The same value (or the same bound method of the same object) as the attribute-then-key read."""
    for default in (None, "fallback"):
        found, expected = _attr(obj, name, default), _reference(obj, name, default)
        if callable(expected):
            assert found == expected and getattr(found, "__self__", None) is getattr(expected, "__self__", None)
        else:
            assert found == expected
    if isinstance(obj, dict) and name == "items":
        assert callable(_attr(obj, name))  # a dict's own attribute wins over its key, as getattr has it
