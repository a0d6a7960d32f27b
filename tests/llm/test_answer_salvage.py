"""What the LLM loop salvages from a malformed answer, and what it refuses: fenced JSON unwrapped,
whole actions before a token-limit cut kept (nothing when none is whole), NaN/Infinity and
overflowing numbers refused, raw newlines inside strings accepted, deep nesting one reason."""

from __future__ import annotations

import pytest

from mesa_llm.agents.llm_policy import _complete_actions, _load_json, _strip_fences

ACTIONS = '{"actions": [{"tool": "wait", "arguments": {}}]}'


@pytest.mark.parametrize(
    "text",
    [f"```json\n{ACTIONS}\n```", f"```\n{ACTIONS}\n```", f"Here you go:\n```json {ACTIONS} ```", ACTIONS, f"  {ACTIONS}  "],
)
def test_fenced_answers_are_unwrapped(text: str) -> None:
    assert _strip_fences(text) == ACTIONS


def test_an_unclosed_fence_is_unwrapped_too() -> None:
    assert _strip_fences(f"```json\n{ACTIONS}") == ACTIONS


def test_whole_actions_before_a_cut_are_kept() -> None:
    cut = '{"actions": [{"tool": "wait", "arguments": {}}, {"tool": "place_order", "arguments": {"price": 1}}, {"tool": "send_mes'
    assert _complete_actions(cut) == [
        {"tool": "wait", "arguments": {}},
        {"tool": "place_order", "arguments": {"price": 1}},
    ]


def test_nothing_whole_before_the_cut_is_none() -> None:
    assert _complete_actions('{"actions": [{"tool": "wa') is None
    assert _complete_actions('{"actions": [') is None
    assert _complete_actions('{"plan": "x", "actions": [{"tool": "wait"}]') is None  # not an actions answer


def test_a_cut_inside_deep_nesting_is_no_crash() -> None:
    assert _complete_actions('{"actions": [' + "[" * 100_000) is None


def test_a_cut_action_with_a_non_finite_number_is_dropped() -> None:
    assert _complete_actions('{"actions": [{"tool": "wait"}, {"price": NaN}, {"tool": "x"}') == [{"tool": "wait"}]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"price": NaN}', "NaN is not a JSON number"),
        ('{"price": Infinity}', "Infinity is not a JSON number"),
        ('{"price": -Infinity}', "-Infinity is not a JSON number"),
        ('{"price": 1e999}', "not a finite number"),
        ('{"price": -1e999}', "not a finite number"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"a": }', "Expecting value at position 6"),
    ],
)
def test_non_strict_json_is_refused_with_its_reason(text: str, why: str) -> None:
    value, problem = _load_json(text)
    assert value is None and problem is not None and why in problem


def test_raw_newlines_inside_strings_are_accepted() -> None:
    assert _load_json('{"text": "line one\nline two\ttab"}') == ({"text": "line one\nline two\ttab"}, None)
