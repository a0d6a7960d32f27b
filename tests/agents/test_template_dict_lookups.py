"""A template reading a plain dict's key (``obs.account``) takes the sandbox's shortcut, with the
sandbox's meaning: a dict's own attributes (``d.get``) come first, a subclass's attributes too,
a missing key is undefined."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mesa_llm.agents.prompts import PromptError, PromptLibrary


def _render(source: str, **context: Any) -> str:
    return PromptLibrary(texts={"t.j2": source}).render("t.j2", **context)


class _WithAttribute(dict):  # type: ignore[type-arg]
    @property
    def a(self) -> str:
        return "attribute"


def test_a_dict_key_reads_without_the_attribute_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    original = ImmutableSandboxedEnvironment.getattr

    def no_plain_dicts(self: Any, obj: Any, attribute: str) -> Any:
        if type(obj) is dict:
            raise AssertionError(f"looked up {attribute!r} as an attribute of a plain dict first")
        return original(self, obj, attribute)

    monkeypatch.setattr(ImmutableSandboxedEnvironment, "getattr", no_plain_dicts)
    assert _render("{{ d.a }} {{ d.b.c }}", d={"a": 1, "b": {"c": 2}}) == "1 2"


def test_dict_lookups_keep_the_sandboxes_meaning() -> None:
    assert _render('{{ d.get("a") }}', d={"get": 5, "a": 1}) == "1"  # the method, not the key "get"
    assert _render("{{ d.a }}", d=_WithAttribute(a=1)) == "attribute"  # a subclass: its attribute first
    assert _render("{{ d.missing is undefined }}", d={"a": 1}) == "True"
    with pytest.raises(PromptError, match="missing"):
        _render("{{ d.missing }}", d={"a": 1})
