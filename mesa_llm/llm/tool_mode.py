"""How a model is asked for actions: native tool calls, or JSON-schema structured output.

``tool_mode: auto`` (the default of LLM populations) takes what the model supports. A chat model
may declare it (an optional ``declared_tool_mode(model) -> "tools" | "json" | None`` method: test
doubles, replays, litellm for providers its model map says call tools); otherwise one tiny
pre-flight request offering one tool decides, once per model, when the run is built: tool calls
back -> ``tools``; text back (e.g. a llama.cpp server without a tool-calling chat template) or the
request refused -> ``json``. The decision goes into the recording header, so a replay reuses it
without asking.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Literal

from mesa_llm.llm.errors import LLMError
from mesa_llm.llm.types import ChatModel, ChatRequest

ToolMode = Literal["tools", "json"]
TOOL_MODES: tuple[str, ...] = ("tools", "json")

#: the one tool the probe offers
PROBE_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "ping",
        "description": "Answer the ping.",
        "parameters": {"type": "object", "properties": {}, "required": [], "additionalProperties": False},
    },
}
#: completion tokens the probe may use (a call of ``ping`` takes ~15)
PROBE_MAX_TOKENS = 48


@dataclass(frozen=True, slots=True)
class ToolModeDecision:
    """The mode of one model, and how it was decided (as the recording header keeps it)."""

    mode: ToolMode
    decided_by: str
    detail: str = ""

    def to_record(self) -> dict[str, str]:
        """``{"mode", "decided_by", "detail"}``."""
        return {"mode": self.mode, "decided_by": self.decided_by, "detail": self.detail}


def declared_tool_mode(chat_model: Any, model: str) -> ToolMode | None:
    """The mode ``chat_model`` declares for ``model``, or None when it does not say."""
    declare = getattr(chat_model, "declared_tool_mode", None)
    if not callable(declare):
        return None
    mode = declare(model)
    return mode if mode in TOOL_MODES else None


def probe_request(model: str) -> ChatRequest:
    """The probe: one short message offering one tool."""
    return ChatRequest(
        model=model,
        messages=[{"role": "user", "content": "Call the tool `ping` now."}],
        tools=[PROBE_TOOL],
        tool_choice="auto",
        temperature=0.0,
        max_tokens=PROBE_MAX_TOKENS,
        purpose="probe",
    )


async def probe_tool_mode(chat_model: ChatModel, model: str) -> ToolModeDecision:
    """Ask ``chat_model`` the probe request and read its answer as a mode (never raises for the
    model's failures: a refused request means ``json``; a failure that says nothing about tools,
    such as a bad key or no server, leaves ``tools`` and the run's own calls report it)."""
    # one attempt when the model offers it: a probe is not worth retries and their backoff
    complete = getattr(chat_model, "complete_once", None) or chat_model.complete
    try:
        response = await complete(probe_request(model))
    except LLMError as err:
        if err.fatal or err.kind in ("timeout", "connection", "rate_limit", "budget"):
            return ToolModeDecision("tools", "probe", f"the probe failed ({err.kind}); tool calls assumed")
        return ToolModeDecision("json", "probe", f"a request offering a tool was refused ({err.kind})")
    if response.tool_calls:
        return ToolModeDecision("tools", "probe", "the probe got a tool call back")
    if (response.content or "").strip():
        return ToolModeDecision("json", "probe", "the probe got text instead of a tool call")
    return ToolModeDecision("tools", "probe", "the probe got an empty answer; tool calls assumed")


def run_blocking(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` to completion from sync code, also when the caller's thread runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


__all__ = [
    "PROBE_TOOL",
    "TOOL_MODES",
    "ToolMode",
    "ToolModeDecision",
    "declared_tool_mode",
    "probe_request",
    "probe_tool_mode",
    "run_blocking",
]
