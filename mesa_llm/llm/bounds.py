"""Bounds on what one LLM answer may bring into a run: how many tool calls, how long their
arguments and the answer's text, and short previews of whatever is rejected.

An LLM can answer anything: 500 tool calls, a 1 MB argument, a 100,000-character tool name. Such an
answer is cut down once, as it arrives (:func:`bound_response`), before it is parsed, shown back to
the model or recorded: calls beyond the cap are dropped (and rejected together, with one reason),
over-long arguments and text are replaced by a preview that says how long they were. The markers
(``original_chars``, ``content_chars``, ``dropped_tool_calls``) are recorded with the answer, so a
replay sees the same bounded answer and takes the same decisions.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Final

from mesa_llm.llm.types import ChatResponse, ToolCall

#: Longest tool name or call id kept (real ones are a few dozen characters).
MAX_NAME_CHARS: Final = 64
#: Characters of a rejected value shown back to the model and recorded.
PREVIEW_CHARS: Final = 200


@dataclass(frozen=True, slots=True)
class AnswerLimits:
    """How much of one LLM answer is taken (the scenario's ``llm:`` settings set these)."""

    #: tool calls (or JSON-mode actions) taken from one answer; the rest are rejected together
    max_tool_calls: int = 8
    #: characters of one tool call's arguments; longer ones are rejected, shown as a preview
    max_argument_chars: int = 4_000
    #: characters of an answer's text (a plan, a JSON-mode answer); longer text is cut
    max_answer_chars: int = 4_000


def preview(value: Any, limit: int = PREVIEW_CHARS, length: int | None = None) -> str:
    """``value`` as short text: itself when short, else its start and its length, e.g.
    ``'{"good": "xxx…' (1,048,576 chars)``; ``length`` is the original length when ``value`` is
    already a cut-down text."""
    text = value if isinstance(value, str) else _json_text(value)
    if len(text) <= limit and length is None:
        return text
    quoted = repr(text[:limit])  # escapes newlines and control characters too
    return f"{quoted[:-1]}…{quoted[-1]} ({length if length is not None else len(text):,} chars)"


def bounded(value: Any, limit: int = PREVIEW_CHARS) -> Any:
    """``value`` itself when its text is short (structure kept), else its :func:`preview`."""
    if isinstance(value, str) or len(_json_text(value)) > limit:
        return preview(value, limit)
    return value


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str, allow_nan=True)
    except (ValueError, RecursionError):
        return repr(value)[: PREVIEW_CHARS * 4]


def bound_response(response: ChatResponse, limits: AnswerLimits) -> ChatResponse:
    """``response`` cut to ``limits`` (the same object when nothing needed cutting)."""
    calls = response.tool_calls
    dropped = response.dropped_tool_calls
    if len(calls) > limits.max_tool_calls:
        dropped += len(calls) - limits.max_tool_calls
        calls = calls[: limits.max_tool_calls]
    bounded_calls = [_bound_call(call, i, limits) for i, call in enumerate(calls)]
    content = response.content
    content_chars = response.content_chars
    if content is not None and len(content) > limits.max_answer_chars:
        content_chars = len(content)
        content = content[: limits.max_answer_chars]
    changed = (
        dropped != response.dropped_tool_calls
        or content_chars != response.content_chars
        or any(a is not b for a, b in zip(bounded_calls, response.tool_calls, strict=False))
    )
    if not changed:
        return response
    return dataclasses.replace(
        response,
        content=content,
        tool_calls=bounded_calls,
        content_chars=content_chars,
        dropped_tool_calls=dropped,
    )


def _bound_call(call: ToolCall, index: int, limits: AnswerLimits) -> ToolCall:
    name, call_id, arguments, original = call.name, call.id, call.arguments, call.original_chars
    if len(name) > MAX_NAME_CHARS:  # the preview stays within the limit: bounding is idempotent
        name = preview(name, MAX_NAME_CHARS // 2)
    if len(call_id) > MAX_NAME_CHARS:
        call_id = f"call_{index}"
    if original is None and len(arguments) > limits.max_argument_chars:
        original = len(arguments)
        arguments = preview(arguments)
    if (name, call_id, arguments, original) == (call.name, call.id, call.arguments, call.original_chars):
        return call
    return ToolCall(id=call_id, name=name, arguments=arguments, original_chars=original)
