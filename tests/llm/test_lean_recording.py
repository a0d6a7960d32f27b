"""A run records the same through the lean path (answers read without litellm's ModelResponse,
retries without tenacity, the collector paused during the calls) as through ``litellm.acompletion``:
in JSON mode (structured output, this step's schemas) and with answers litellm's conversion would
change (reasoning tags, a missing finish reason), which the lean path must hand to litellm."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mesa_llm.llm.litellm_backend import _litellm
from tests.fake_openai_server import FakeOpenAIServer
from tests.support.recordings import record_llm_double_auction

KEY = "sk-test-not-a-real-key"




class _VariedServer(FakeOpenAIServer):
    """Answers JSON-mode acts with bids, some wrapped in reasoning tags, some without a finish reason."""

    def scripted_reply(self, request: dict[str, Any]) -> tuple[int, Any, dict[str, str]] | None:
        text = json.dumps(request.get("messages"))
        n = sum(map(ord, text)) % 3
        action = {"tool": "place_order", "arguments": {"good": "widget", "side": "buy" if n else "sell",
                                                      "price": 95 + n, "quantity": 1}}
        content = json.dumps({"actions": [action]}) if request.get("response_format") else "Bid low, ask high."
        if n == 1:
            content = "<think>the book is thin</think>" + content
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": content},
                                  "finish_reason": None if n == 2 else "stop"}
        body = {"id": f"c{n}", "object": "chat.completion", "created": 1, "model": "fake-model",
                "choices": [choice], "usage": {"prompt_tokens": 50 + n, "completion_tokens": 9, "total_tokens": 59 + n}}
        return 200, body, {}


def _record(server: FakeOpenAIServer, out: Path) -> list[str]:
    return record_llm_double_auction(server.base_url, out, seed=5, overrides=("populations.0.params.tool_mode=json", "populations.1.params.tool_mode=json"))


def test_a_json_mode_run_with_unusual_answers_records_the_same_lean_and_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with _VariedServer() as server:
        monkeypatch.setenv("MESA_LLM_LITELLM_FULL_PATH", "1")
        full = _record(server, tmp_path / "full")
        monkeypatch.delenv("MESA_LLM_LITELLM_FULL_PATH")

        async def forbidden(**kwargs: Any) -> Any:
            raise AssertionError("the lean path called litellm.acompletion")

        monkeypatch.setattr(_litellm(), "acompletion", forbidden)
        lean = _record(server, tmp_path / "lean")
    calls = [json.loads(e)["content"] for e in lean if '"event_type": "llm_call"' in e]
    assert calls and all(c["error"] is None for c in calls)
    assert {c["response"]["finish_reason"] for c in calls} == {"stop"}  # a missing one reads as litellm's "stop"
    assert any("<think>" not in (c["response"]["content"] or "") and c["purpose"] == "act" for c in calls)
    assert any(c["parsed_tool_calls"] and c["parsed_tool_calls"][0]["valid"] for c in calls)
    assert lean == full
