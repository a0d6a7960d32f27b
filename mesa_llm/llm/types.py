"""The chat-model protocol: requests, responses, tool calls, usage, and the one sync wrapper.

Every chat backend (litellm, rule-based, replay, test doubles) implements :class:`ChatModel`, a single
async ``complete(request) -> response``. The sync API is :func:`complete_sync`, a thin
``asyncio.run`` over the same path, so there is never a second copy of the logic.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
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


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(slots=True)
class ToolCall:
    """One tool call the model asked for; ``arguments`` is the raw JSON string it produced."""

    id: str
    name: str
    arguments: str

    def to_record(self) -> dict[str, Any]:
        """The call as a JSON-ready dict (``id``, ``name``, ``arguments``)."""
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass(slots=True)
class Usage:
    """Tokens one call consumed."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def to_record(self) -> dict[str, int]:
        """``{"prompt_tokens", "completion_tokens"}`` for the recording."""
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


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

    def cache_key(self) -> str:
        """SHA-256 hex of the canonical JSON of everything that determines the answer."""
        payload = {name: getattr(self, name) for name in _KEY_FIELDS}
        return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()

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
    latency_s: float = 0.0
    attempts: int = 1
    finish_reason: str | None = None
    cached: bool = False

    def to_record(self) -> dict[str, Any]:
        """What the recording keeps of the answer (accounting is recorded beside it)."""
        return {
            "content": self.content,
            "tool_calls": [call.to_record() for call in self.tool_calls],
            "finish_reason": self.finish_reason,
            "cached": self.cached,
        }

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (the cache's storage format); inverse of :meth:`from_dict`."""
        return {
            "content": self.content,
            "tool_calls": [call.to_record() for call in self.tool_calls],
            "usage": self.usage.to_record(),
            "model": self.model,
            "cost_usd": self.cost_usd,
            "latency_s": self.latency_s,
            "attempts": self.attempts,
            "finish_reason": self.finish_reason,
            "cached": self.cached,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatResponse:
        """Rebuild a response from :meth:`to_dict` output (raises KeyError/TypeError if malformed)."""
        usage = data.get("usage") or {}
        return cls(
            content=data["content"],
            tool_calls=[
                ToolCall(id=str(c["id"]), name=str(c["name"]), arguments=str(c["arguments"]))
                for c in data.get("tool_calls") or []
            ],
            usage=Usage(
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
            ),
            model=str(data["model"]),
            cost_usd=float(data.get("cost_usd", 0.0)),
            latency_s=float(data.get("latency_s", 0.0)),
            attempts=int(data.get("attempts", 1)),
            finish_reason=data.get("finish_reason"),
            cached=bool(data.get("cached", False)),
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
