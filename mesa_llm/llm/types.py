"""The chat-model protocol: requests, responses, tool calls, usage, and the one sync wrapper.

Every chat backend (litellm, rule-based, replay, test doubles) implements :class:`ChatModel`, a single
async ``complete(request) -> response``. The sync API is :func:`complete_sync`, a thin
``asyncio.run`` over the same path, so there is never a second copy of the logic.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

#: The request fields that determine the answer (and so the cache key); everything else is metadata.
_KEY_FIELDS = (
    "model",
    "messages",
    "tools",
    "tool_choice",
    "response_format",
    "temperature",
    "max_tokens",
    "seed",
)
assert sorted(_KEY_FIELDS)[-1] == "tools"  # ChatRequest.cache_key appends the tools' JSON last


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(slots=True)
class ToolCall:
    """One tool call the model asked for; ``arguments`` is the raw JSON string it produced.

    ``original_chars`` is set when the arguments were too long to keep: ``arguments`` then holds a
    short preview and the call is rejected (see :mod:`mesa_llm.llm.bounds`).
    """

    id: str
    name: str
    arguments: str
    original_chars: int | None = None

    def to_record(self) -> dict[str, Any]:
        """The call as a JSON-ready dict (``id``, ``name``, ``arguments``[, ``original_chars``])."""
        out: dict[str, Any] = {"id": self.id, "name": self.name, "arguments": self.arguments}
        if self.original_chars is not None:
            out["original_chars"] = self.original_chars
        return out

    @classmethod
    def from_record(cls, data: Any, index: int = 0) -> ToolCall:
        """Rebuild a call from :meth:`to_record` output (a recording, a cache entry)."""
        original = data.get("original_chars")
        return cls(
            id=str(data.get("id") or f"call_{index}"),
            name=str(data.get("name")),
            arguments=str(data.get("arguments") or ""),
            original_chars=original if isinstance(original, int) else None,
        )


@dataclass(slots=True)
class Usage:
    """Tokens one call consumed."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: why the numbers the provider reported cannot be trusted (then they are 0 and not counted)
    invalid: str | None = None

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def to_record(self) -> dict[str, Any]:
        """``{"prompt_tokens", "completion_tokens"}`` (and ``invalid`` when so) for the recording."""
        out: dict[str, Any] = {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}
        if self.invalid is not None:
            out["invalid"] = self.invalid
        return out


@dataclass(slots=True)
class ChatRequest:
    """One chat completion to make: what is sent, plus metadata (purpose, agent) that never is."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    purpose: str = "act"
    agent_id: int | None = None
    #: ``canonical_json(tools)``, given by a caller that keeps one tool list unchanged for many calls
    #: (an LLM policy's run-long list), so that `cache_key` does not encode it again on every call
    tools_json: str | None = field(default=None, repr=False, compare=False)

    def cache_key(self) -> str:
        """SHA-256 hex of the canonical JSON of everything that determines the answer."""
        if self.tools_json is None or self.tools is None:
            payload = {name: getattr(self, name) for name in _KEY_FIELDS}
            text = canonical_json(payload)
        else:  # the same text: "tools" is the last key in sorted order
            payload = {name: getattr(self, name) for name in _KEY_FIELDS if name != "tools"}
            text = f'{canonical_json(payload)[:-1]},"tools":{self.tools_json}}}'
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def params(self) -> dict[str, Any]:
        """The sampling parameters (``temperature``, ``max_tokens``, ``seed``)."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "seed": self.seed}

    def to_record(self) -> dict[str, Any]:
        """What the recording keeps of the request: content and parameters, never keys or headers."""
        return {
            "messages": self.messages,
            "tools": self.tools,
            "tool_choice": self.tool_choice,
            "response_format": self.response_format,
            "params": self.params(),
        }


@dataclass(slots=True)
class ChatResponse:
    """A model's answer with its accounting (usage, cost, latency, attempts, cache hit)."""

    content: str | None
    tool_calls: list[ToolCall]
    usage: Usage
    model: str
    cost_usd: float = 0.0
    #: wall time from the first send to the answer, every attempt and wait between them included
    latency_s: float = 0.0
    attempts: int = 1
    finish_reason: str | None = None
    cached: bool = False
    #: each attempt's own duration (empty when not timed: scripted models, cache hits, replays)
    attempt_latencies_s: list[float] = field(default_factory=list)
    #: the answer's text was longer than kept: its length (``content`` is then a preview)
    content_chars: int | None = None
    #: tool calls beyond the per-answer cap, dropped (see :mod:`mesa_llm.llm.bounds`)
    dropped_tool_calls: int = 0

    def to_record(self) -> dict[str, Any]:
        """What the recording keeps of the answer (accounting is recorded beside it)."""
        out: dict[str, Any] = {
            "content": self.content,
            "tool_calls": [call.to_record() for call in self.tool_calls],
            "finish_reason": self.finish_reason,
            "cached": self.cached,
        }
        if self.content_chars is not None:
            out["content_chars"] = self.content_chars
        if self.dropped_tool_calls:
            out["dropped_tool_calls"] = self.dropped_tool_calls
        return out

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (the cache's storage format); inverse of :meth:`from_dict`."""
        return {
            "content": self.content,
            "tool_calls": [call.to_record() for call in self.tool_calls],
            "usage": self.usage.to_record(),
            "model": self.model,
            "cost_usd": self.cost_usd,
            "latency_s": self.latency_s,
            "attempt_latencies_s": list(self.attempt_latencies_s),
            "attempts": self.attempts,
            "finish_reason": self.finish_reason,
            "cached": self.cached,
            "content_chars": self.content_chars,
            "dropped_tool_calls": self.dropped_tool_calls,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatResponse:
        """Rebuild a response from :meth:`to_dict` output (raises KeyError/TypeError if malformed)."""
        usage = data.get("usage") or {}
        return cls(
            content=data["content"],
            tool_calls=[ToolCall.from_record(c, i) for i, c in enumerate(data.get("tool_calls") or [])],
            usage=Usage(
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                invalid=usage.get("invalid"),
            ),
            model=str(data["model"]),
            cost_usd=float(data.get("cost_usd", 0.0)),
            latency_s=float(data.get("latency_s", 0.0)),
            attempt_latencies_s=[float(x) for x in data.get("attempt_latencies_s") or []],
            attempts=int(data.get("attempts", 1)),
            finish_reason=data.get("finish_reason"),
            cached=bool(data.get("cached", False)),
            content_chars=data.get("content_chars"),
            dropped_tool_calls=int(data.get("dropped_tool_calls") or 0),
        )


@runtime_checkable
class ChatModel(Protocol):
    """Anything that answers chat requests: one async method, and a name for the records."""

    name: str

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Answer ``request``; raise :class:`mesa_llm.llm.errors.LLMError` when it fails for good."""
        ...


def complete_sync(model: ChatModel, request: ChatRequest) -> ChatResponse:
    """Run ``model.complete(request)`` to completion from sync code (not from inside a running loop)."""
    return asyncio.run(model.complete(request))
