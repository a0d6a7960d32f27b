"""`SimulationRecorder.keep_encoded`: a run-long tool list is encoded once, and every llm_call line
is the same bytes as without it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mesa_llm.model import MarketModel
from mesa_llm.recording.recorder import REDACTED, SimulationRecorder
from mesa_llm.scenario import load_scenario

TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {"name": "place_order", "description": "Buy or sell – at a limit",
                                      "parameters": {"type": "object", "properties": {"price": {"type": "number", "minimum": 0.01, "maximum": 1e3}}}}},
    {"type": "function", "function": {"name": "wait", "description": "Nothing", "parameters": {"type": "object", "properties": {}}}},
]  # fmt: skip


def _call(tools: Any, *, first: str = "messages", request_at: int = 3) -> dict[str, Any]:
    request = {"messages": [{"role": "user", "content": "hé \u2028 \"quoted\""}], "tools": tools, "tool_choice": "auto",
               "response_format": None, "params": {"temperature": None, "max_tokens": 300, "seed": 1}}  # fmt: skip
    if first == "tools":  # tools first, last or alone in the request
        request = {"tools": tools, **{k: v for k, v in request.items() if k != "tools"}}
    elif first == "last":
        request = {**{k: v for k, v in request.items() if k != "tools"}, "tools": tools}
    elif first == "alone":
        request = {"tools": tools}
    head = [("model", "m"), ("purpose", "act"), ("request_hash", "ab12")][: request_at]
    tail = [("response", {"content": None, "tool_calls": []}), ("cost_usd", 0.0), ("error", None)]
    return {**dict(head), "request": request, **dict(tail)}


def _lines(tmp_path: Path, name: str, contents: list[dict[str, Any]], keep: Any = None) -> list[str]:
    rec = SimulationRecorder(None, tmp_path / name, simulation_id="s", run_name="r")
    if keep is not None:
        rec.keep_encoded(keep)
    for content in contents:
        rec.record_event("llm_call", content, agent_id=1, step=1)
    rec.close()
    out = []
    for line in (tmp_path / name / "r.jsonl").read_text(encoding="utf-8").split("\n")[:-1]:
        event = json.loads(line)
        if event["event_type"] == "llm_call":
            out.append(line.split('"content":', 1)[1])  # the content and metadata: no timestamp
    return out


@pytest.mark.parametrize("first", ["messages", "tools", "last", "alone"])
@pytest.mark.parametrize("request_at", [0, 3])
def test_a_kept_tool_list_gives_the_same_bytes(tmp_path: Path, first: str, request_at: int) -> None:
    contents = [_call(TOOLS, first=first, request_at=request_at) for _ in range(3)]
    assert _lines(tmp_path, "kept", contents, keep=TOOLS) == _lines(tmp_path, "plain", contents)


def test_the_kept_list_is_encoded_once(tmp_path: Path) -> None:
    rec = SimulationRecorder(None, tmp_path, simulation_id="s", run_name="r")
    rec.keep_encoded(TOOLS)
    encode = rec._encode
    seen: list[Any] = []

    def counting(value: Any) -> str:
        seen.append(value)
        return encode(value)

    rec._encode = counting  # type: ignore[method-assign]
    for _ in range(3):
        rec.record_event("llm_call", _call(TOOLS), agent_id=1, step=1)
    rec.close()
    assert sum(1 for value in seen if value is TOOLS) == 1


def test_an_equal_list_that_is_not_the_kept_one_is_encoded_in_full(tmp_path: Path) -> None:
    copy = json.loads(json.dumps(TOOLS))
    copy[1]["function"]["description"] = "changed"  # equal shape, another object: never the kept text
    lines = _lines(tmp_path, "kept", [_call(copy)], keep=TOOLS)
    assert '"description":"changed"' in lines[0]
    assert lines == _lines(tmp_path, "plain", [_call(copy)])


def test_a_secret_in_a_kept_list_is_still_blanked(tmp_path: Path) -> None:
    tools = [{"type": "function", "function": {"name": "x", "api_key": "sk-secret"}}]
    line = _lines(tmp_path, "kept", [_call(tools)], keep=tools)[0]
    assert "sk-secret" not in line and REDACTED in line


def test_an_llm_policy_hands_its_tool_list_to_the_recorder(tmp_path: Path) -> None:
    from mesa_llm.llm.testing import ScriptedChatModel, tool_call_response

    spec = load_scenario("llm_double_auction", overrides=["steps=2", "populations.2.count=0", "populations.3.count=0"])
    model = MarketModel(spec, output_dir=tmp_path, chat_model=ScriptedChatModel(lambda r: tool_call_response("wait", {})))
    model.run()
    assert model.recorder is not None
    kept = [value for value, _ in model.recorder._kept.values()]
    policies = [a.policy for a in model.llm_agents]
    assert policies and all(any(p._stable_tools is v for v in kept) for p in policies)  # type: ignore[attr-defined]
    assert all(text is not None for _, text in model.recorder._kept.values())  # used in the recording


@pytest.mark.parametrize("where", ["message", "response", "before_request"])
def test_a_secret_around_a_kept_list_is_still_blanked(tmp_path: Path, where: str) -> None:
    content = _call(TOOLS)
    if where == "message":
        content["request"]["messages"][0]["API_KEY"] = "sk-secret"
    elif where == "response":
        content["response"]["Authorization"] = "sk-secret"
    else:
        content = {"x-api-key": "sk-secret", **content}
    line = _lines(tmp_path, "kept", [content], keep=TOOLS)[0]
    assert "sk-secret" not in line and REDACTED in line
    clean = _lines(tmp_path, "clean", [_call(TOOLS)], keep=TOOLS)[0]
    assert REDACTED not in clean  # nothing blanked where nothing is secret
