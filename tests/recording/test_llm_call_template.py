"""An LLM policy's ``llm_call`` content is written from a fixed template (its keys known, the messages and a
kept tool list put in as made, the rest encoded in two pieces) and streamed without an event object
(`SimulationRecorder.record_lean`): the line is the bytes the recorder's encoder gives for the whole
(redacted) content, for every shape, and a run records the same as through `record_event` and the
placeholder encoding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mesa_llm import encoded_json
from mesa_llm.recording import recorder as recorder_module
from mesa_llm.recording.recorder import REDACTED, SimulationRecorder, redact
from tests.fake_openai_server import FakeOpenAIServer
from tests.support.recordings import record_llm_double_auction

TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {"name": "bid", "description": "Bid \u00e9 \U0001f600",
                                      "parameters": {"type": "object", "properties": {"price": {"type": "number"}}}}},
]  # fmt: skip
SYSTEM = 'You trade "widgets".\n\u00e9 \u2603 \\ \U0001f600 \u2028 {"api_key": "sk-in-text"}'


def _call(messages: Any = None, tools: Any = None, **changes: Any) -> dict[str, Any]:
    """An ``llm_call`` content with `mesa_llm.agents.llm_policy.LLMPolicy`'s keys in its order."""
    request = {"messages": messages if messages is not None else [{"role": "system", "content": SYSTEM},
                                                                  {"role": "user", "content": "Act \"now\" \u00e9."}],
               "tools": tools, "tool_choice": "auto" if tools else None, "response_format": None,
               "params": {"temperature": 0.7, "max_tokens": 300, "seed": 1}}  # fmt: skip
    content: dict[str, Any] = {
        "model": "openai/fake-\u00e9", "purpose": "act", "request_hash": "ab" * 32, "request": request,
        "response": {"content": None, "tool_calls": [{"id": "c1", "name": "bid", "arguments": '{"price": 1.5}'}],
                     "finish_reason": "tool_calls", "cached": False},
        "parsed_tool_calls": [{"name": "bid", "arguments": {"price": 1.5}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3}, "cost_usd": 0.0, "latency_s": 0.25,
        "attempt_latencies_s": [0.1, 0.15], "attempts": 2, "cached": False, "error": None, "error_kind": None,
    }  # fmt: skip
    for key, value in changes.items():
        if key in request:
            request[key] = value
        else:
            content[key] = value
    return content


CASES: dict[str, dict[str, Any]] = {
    "plain": _call(),
    "kept_tools": _call(tools=TOOLS),
    "unkept_tools": _call(tools=[dict(TOOLS[0])]),
    "error": _call(response=None, parsed_tool_calls=[], error="timeout: \u00e9 \"late\"", error_kind="timeout",
                   latency_s=None, attempts=0, usage={"prompt_tokens": 0, "completion_tokens": 0}),
    "plan_text": _call(purpose="plan", response={"content": "Bid low \u2603\n", "tool_calls": [],
                                                 "finish_reason": "stop", "cached": True}),
    "json_mode": _call(response_format={"type": "json_schema", "json_schema": {"name": "acts", "schema": {}}}),
    "tool_choice_dict": _call(tools=TOOLS, tool_choice={"type": "function", "function": {"name": "bid"}}),
    "tool_turn": _call(messages=[{"role": "system", "content": SYSTEM}, {"role": "assistant", "content": "",
                       "tool_calls": []}, {"role": "tool", "tool_call_id": "c", "content": "accepted"}], tools=TOOLS),
    "model_not_text": _call(model=None),
    "hash_not_text": _call(request_hash=7),
    "odd_values": _call(cost_usd=float("nan"), latency_s=1e-7, attempts=True),
    "placeholder_in_answer": _call(tools=TOOLS, parsed_tool_calls=[{"arguments": {"t": encoded_json.PLACEHOLDER}}]),
    "secret_in_arguments": _call(tools=TOOLS, parsed_tool_calls=[{"name": "bid", "arguments": {"API_KEY": "sk-secret"}}]),
    "secret_in_format": _call(response_format={"type": "json_object", "api_key": "sk-secret"}),
    "secret_in_params": _call(params={"temperature": 0.7, "Key": "sk-secret"}),
    "secret_in_message": _call(messages=[{"role": "user", "content": "a", "Api_Key": "sk-secret"}], tools=TOOLS),
    "secret_in_tools": _call(tools=[{"type": "function", "authorization": "sk-secret"}]),
    "extra_key": {**_call(), "extra": {"x-api-key": "sk-secret"}},
    "keys_reordered": dict(reversed(list(_call(tools=TOOLS).items()))),
}


def _lines(tmp_path: Path, contents: list[dict[str, Any]], keep: Any, lean: bool) -> tuple[list[str], SimulationRecorder]:
    rec = SimulationRecorder(None, tmp_path, simulation_id="s", run_name="r")
    for tools in keep:
        rec.keep_encoded(tools)
    for content in contents:
        if lean:
            rec.record_lean("llm_call", content, 1, step=1)
        else:
            rec.record_event("llm_call", content, agent_id=1, step=1)
    rec.close()
    lines = (tmp_path / "r.jsonl").read_text(encoding="utf-8").split("\n")[:-1]
    return [line.split('"content":', 1)[1] for line in lines if '"event_type":"llm_call"' in line], rec


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("lean", [False, True])
def test_an_llm_calls_line_is_the_encoders_own_for_every_shape(tmp_path: Path, case: str, lean: bool) -> None:
    content = CASES[case]
    kept = [TOOLS, CASES["secret_in_tools"]["request"]["tools"]]
    lines, rec = _lines(tmp_path, [content, content], kept, lean)
    expected = json.dumps(redact(content), ensure_ascii=False, separators=(",", ":")) + ',"metadata":{}}'
    assert lines == [expected, expected]
    assert "sk-secret" not in lines[0] and (REDACTED in lines[0]) is case.startswith(("secret", "extra"))
    assert "sk-in-text" in lines[0] or case in ("tool_turn", "secret_in_message")  # a prompt's text is no key
    assert rec.events_since_save == 2 and rec.get_stats()["total_events"] == 2


def test_the_policys_content_goes_by_the_template_and_unbuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    split: list[Any] = []
    real_fill = recorder_module.fill
    monkeypatch.setattr(recorder_module, "fill", lambda *a: split.append(a) or real_fill(*a))
    built: list[Any] = []
    real_event = recorder_module.SimulationEvent
    monkeypatch.setattr(recorder_module, "SimulationEvent", lambda *a: built.append(a) or real_event(*a))
    _lines(tmp_path / "a", [CASES["plain"], CASES["kept_tools"], CASES["error"]], [TOOLS], lean=True)
    assert split == [] and built == []  # no placeholders split, no event objects made
    _lines(tmp_path / "b", [CASES["unkept_tools"], CASES["secret_in_format"]], [], lean=True)
    assert len(split) == 1 and len(built) == 1  # an unkept list by placeholders; a secret by record_event, blanked


def test_a_recorder_that_keeps_events_still_gets_them(tmp_path: Path) -> None:
    rec = SimulationRecorder(None, tmp_path, simulation_id="s", run_name="r", keep_in_memory=True)
    event = rec.record_lean("llm_call", CASES["plain"], 1, step=1)
    assert event is not None and rec.get_events_by_type("llm_call")[0].content is CASES["plain"]
    rec.close()


def test_a_run_records_the_same_by_the_template_and_by_record_event(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    with FakeOpenAIServer() as server:
        fast = record_llm_double_auction(server.base_url, tmp_path / "fast", seed=3)
        monkeypatch.setattr(SimulationRecorder, "_llm_call_template", lambda self, data, request: None)
        monkeypatch.setattr(SimulationRecorder, "_lean_ready", lambda self: False)
        general = record_llm_double_auction(server.base_url, tmp_path / "general", seed=3)
    assert sum('"llm_call"' in line for line in fast) >= 12
    assert fast == general
