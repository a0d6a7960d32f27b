"""An ``llm_call``'s messages are put in its line already encoded (`mesa_llm.encoded_json`): the line is the
same bytes the recorder's encoder gives for the whole content, every shape of message, and a secret key anywhere
but inside a plain message's strings is still blanked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mesa_llm import encoded_json
from mesa_llm.recording.recorder import REDACTED, SimulationRecorder, redact

TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {"name": "wait", "description": "Nothing", "parameters": {"type": "object", "properties": {}}}},
]
SYSTEM = 'You trade "widgets".\n\u00e9 \u2603 \\ \U0001f600 \u2028 {"api_key": "sk-in-text"}'


def _call(messages: list[Any], tools: Any = None, **extra: Any) -> dict[str, Any]:
    request = {"messages": messages, "tools": tools, "tool_choice": "auto" if tools else None,
               "response_format": None, "params": {"temperature": None, "max_tokens": 300, "seed": 1}}  # fmt: skip
    return {"model": "m", "purpose": "act", "request_hash": "ab", "request": request,
            "response": {"content": "ok", "tool_calls": []}, "cost_usd": 0.0, "error": None, **extra}  # fmt: skip


CASES: dict[str, dict[str, Any]] = {
    "plain": _call([{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Act \"now\"."}]),
    "plain_tools": _call([{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Act."}], TOOLS),
    "tool_turn": _call([{"role": "system", "content": SYSTEM}, {"role": "assistant", "content": "", "tool_calls": []},
                        {"role": "tool", "tool_call_id": "c", "content": "accepted"}], TOOLS),  # fmt: skip
    "key_order": _call([{"content": SYSTEM, "role": "system"}]),
    "placeholder_elsewhere": _call([{"role": "user", "content": "a"}], TOOLS,
                                   parsed_tool_calls=[{"arguments": {"text": encoded_json.PLACEHOLDER}}]),  # fmt: skip
    "placeholder_inside": _call([{"role": "user", "content": encoded_json.PLACEHOLDER * 2}], TOOLS),
    "secret_in_format": _call([{"role": "user", "content": "a"}], response_format={"api_key": "sk-secret"}),
    "secret_in_message": _call([{"role": "user", "content": "a", "Api_Key": "sk-secret"}], TOOLS),
}


def _contents(tmp_path: Path, contents: list[dict[str, Any]], keep: Any = None) -> list[str]:
    rec = SimulationRecorder(None, tmp_path, simulation_id="s", run_name="r")
    if keep is not None:
        rec.keep_encoded(keep)
    for content in contents:
        rec.record_event("llm_call", content, agent_id=1, step=1)
    rec.close()
    lines = (tmp_path / "r.jsonl").read_text(encoding="utf-8").split("\n")[:-1]
    return [line.split('"content":', 1)[1] for line in lines if '"event_type":"llm_call"' in line]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("kept", [False, True])
def test_an_llm_calls_line_is_the_encoders_own(tmp_path: Path, case: str, kept: bool) -> None:
    content = CASES[case]
    line = _contents(tmp_path, [content, content], keep=TOOLS if kept else None)
    expected = json.dumps(redact(content), ensure_ascii=False, separators=(",", ":")) + ',"metadata":{}}'
    assert line == [expected, expected]
    secret = case.startswith("secret")
    assert "sk-secret" not in line[0] and (REDACTED in line[0]) is secret
    assert "sk-in-text" in line[0] or case not in ("plain", "plain_tools")  # a prompt's text is not a key


def test_a_plain_messages_text_is_not_read_for_secret_keys_and_the_rest_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mesa_llm.recording import recorder as recorder_module

    read: list[str] = []
    real = recorder_module._names_secret_key
    monkeypatch.setattr(recorder_module, "_names_secret_key", lambda text: read.append(text) or real(text))
    _contents(tmp_path, [CASES["plain"]])
    assert read and not any(SYSTEM[:20] in text or json.dumps(SYSTEM)[1:21] in text for text in read)
    assert any('"request_hash":"ab"' in text for text in read)
