"""Scripted chat models the LLM tests share: well-behaved traders that bid under value and ask over cost."""

from __future__ import annotations

import json
import re
from typing import Any

from mesa_llm.llm import ChatRequest, ChatResponse
from mesa_llm.llm.testing import text_response, tool_call_response

VALUE = re.compile(r"values of your next units ([0-9.]+)")
COST = re.compile(r"costs of your next units ([0-9.]+)")


def _user_text(request: ChatRequest) -> str:
    return "\n".join(m["content"] for m in request.messages if m["role"] == "user" and m.get("content"))


def sensible(request: ChatRequest) -> ChatResponse:
    """A well-behaved model: plans in text, bids its next value minus 5, asks its next cost plus 5."""
    if request.purpose == "plan":
        return text_response("Bid a little under value; ask a little over cost.")
    text = _user_text(request)
    if (m := VALUE.search(text)) is not None:
        return tool_call_response("place_order", {"good": "widget", "side": "buy", "price": round(float(m.group(1)) - 5, 2), "quantity": 1})
    if (m := COST.search(text)) is not None:
        return tool_call_response("place_order", {"good": "widget", "side": "sell", "price": round(float(m.group(1)) + 5, 2), "quantity": 1})
    return tool_call_response("wait", {})


def sensible_either_mode(request: ChatRequest) -> ChatResponse:
    """``sensible`` traders, in either tool mode (JSON mode: the same actions as one JSON answer)."""
    answer = sensible(request)
    if request.response_format is None or request.purpose == "plan":
        return answer
    calls = [{"tool": c.name, "arguments": c.arguments} for c in answer.tool_calls]
    return text_response(json.dumps({"actions": calls}))


def trader(request: dict[str, Any]) -> dict[str, Any]:
    """A server-side model that plans in text and bids/asks around its private numbers."""
    if not request.get("tools"):
        return {"content": "Trade near my values."}
    text = "\n".join(m.get("content") or "" for m in request["messages"] if m["role"] == "user")
    if (m := VALUE.search(text)) is not None:
        args = {"good": "widget", "side": "buy", "price": round(float(m.group(1)) - 1, 2), "quantity": 1}
        return {"content": None, "tool_calls": [{"name": "place_order", "arguments": json.dumps(args)}]}
    if (m := COST.search(text)) is not None:
        args = {"good": "widget", "side": "sell", "price": round(float(m.group(1)) + 1, 2), "quantity": 1}
        return {"content": None, "tool_calls": [{"name": "place_order", "arguments": json.dumps(args)}]}
    return {"content": None, "tool_calls": [{"name": "wait", "arguments": "{}"}]}
