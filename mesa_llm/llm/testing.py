"""In-process test doubles for the chat-model protocol (no HTTP, no litellm) and response builders."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

from mesa_llm.llm.errors import LLMError, classify
from mesa_llm.llm.types import ChatRequest, ChatResponse, ToolCall, Usage

Scripted = ChatResponse | BaseException
Responder = Callable[[ChatRequest], Scripted]


class ScriptedChatModel:
    """Answers from a function or a list of responses/exceptions, in order; records every request."""

    def __init__(
        self,
        responder: Responder | Sequence[Scripted],
        name: str = "scripted/test",
        latency_s: float = 0.0,
        tool_mode: str | None = "tools",
    ) -> None:
        self.name = name
        self.latency_s = latency_s
        #: what this double declares for ``tool_mode: auto`` ("tools", "json"); None: be probed
        self.tool_mode = tool_mode
        self.requests: list[ChatRequest] = []
        self._responder: Responder | None = responder if callable(responder) else None
        self._script: list[Scripted] = [] if callable(responder) else list(responder)

    def declared_tool_mode(self, model: str) -> str | None:
        """The mode this double declares for every model (None: let the run probe it)."""
        return self.tool_mode

    @property
    def remaining(self) -> int:
        """Scripted answers not used yet (0 for a function responder)."""
        return len(self._script)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """The next scripted answer; scripted exceptions are raised (non-LLMErrors classified)."""
        self.requests.append(request)
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        if self._responder is not None:
            answer = self._responder(request)
        elif self._script:
            answer = self._script.pop(0)
        else:
            raise LLMError(
                f"script exhausted after {len(self.requests) - 1} answers",
                model=self.name,
                kind="unknown",
            )
        if isinstance(answer, LLMError):
            raise answer
        if isinstance(answer, BaseException):
            raise classify(answer, self.name) from answer
        return answer


def _arguments_text(arguments: dict[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def tool_calls_response(
    calls: list[tuple[str, dict[str, Any] | str]],
    *,
    content: str | None = None,
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    model: str = "scripted/test",
) -> ChatResponse:
    """A response calling each ``(name, arguments)`` in order (ids ``call_0``, ``call_1``, ...)."""
    return ChatResponse(
        content=content,
        tool_calls=[
            ToolCall(id=f"call_{i}", name=name, arguments=_arguments_text(arguments))
            for i, (name, arguments) in enumerate(calls)
        ],
        usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens),
        model=model,
        finish_reason="tool_calls" if calls else "stop",
    )


def tool_call_response(
    name: str,
    arguments: dict[str, Any] | str,
    *,
    content: str | None = None,
    call_id: str | None = None,
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    model: str = "scripted/test",
) -> ChatResponse:
    """A response with one tool call; a str ``arguments`` is kept raw (to script invalid JSON)."""
    response = tool_calls_response(
        [(name, arguments)],
        content=content,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        model=model,
    )
    if call_id is not None:
        response.tool_calls[0].id = call_id
    return response


def text_response(
    text: str | None,
    *,
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    model: str = "scripted/test",
) -> ChatResponse:
    """A plain text answer without tool calls."""
    return ChatResponse(
        content=text,
        tool_calls=[],
        usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens),
        model=model,
        finish_reason="stop",
    )
