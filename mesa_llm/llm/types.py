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
from json.encoder import encode_basestring as _encode_basestring
from math import isfinite as _isfinite
from typing import Any, Protocol, runtime_checkable

from mesa_llm.encoded_json import canonical_messages, message_parts

#: the C encoder json.dumps uses (not in the typing stubs; None where the accelerator is missing)
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)

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
    """JSON with sorted keys and no spaces: equal values give equal strings.

    ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)``,
    the same text and errors, made by the C encoder json.dumps makes itself, without the
    ``JSONEncoder`` object and Python-level set-up ``dumps`` builds around it on every call (a
    request key encodes several values per call)."""
    if _c_make_encoder is None or type(value) is str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    # the arguments JSONEncoder.iterencode passes: a fresh circular-reference memo, ``default``,
    # the non-ASCII string encoder, no indent, the separators, sort_keys, skipkeys, allow_nan
    return "".join(_c_make_encoder({}, str, _encode_basestring, None, ":", ",", True, False, True)(value, 0))


#: the key fields after "messages" in sorted order, but "tools" (``ChatRequest.cache_key``)
_REST_FIELDS = tuple(name for name in sorted(_KEY_FIELDS) if name > "messages" and name != "tools")
assert sorted(_KEY_FIELDS)[:2] == ["max_tokens", "messages"]  # the opening _prefix_digest hashes
assert _REST_FIELDS == ("model", "response_format", "seed", "temperature", "tool_choice")  # ChatRequest._rest_json

#: SHA-256 states of a request key's opening, ``{"max_tokens":N,"messages":[<first message>,``,
#: per (max_tokens, first message's role and text); the text is kept to check it is the same string
_PREFIXES: dict[tuple[Any, ...], tuple[str, Any]] = {}
#: UTF-8 of a tool list's JSON (``ChatRequest.tools_json``: one string for a population's calls)
_UTF8: dict[int, tuple[str, bytes]] = {}


def _prefix_digest(max_tokens: Any, messages: Any) -> Any:
    """A copy of the hash state after the key's opening up to the second message, when the first
    message is a plain ``{"role", "content"}`` pair of strings (a system prompt: the same text for
    a population's calls, hashed once instead of once per call); None for any other shape."""
    if type(messages) is not list or len(messages) < 2:
        return None
    first = messages[0]
    if type(first) is not dict or len(first) != 2 or type(max_tokens) not in (int, type(None)):
        return None
    role, content = first.get("role"), first.get("content")
    if type(role) is not str or type(content) is not str:
        return None
    key = (max_tokens, role, id(content))
    held = _PREFIXES.get(key)
    if held is None or held[0] is not content:
        opening = f'{{"max_tokens":{canonical_json(max_tokens)},"messages":[{canonical_json(first)},'
        if len(_PREFIXES) >= 256:
            _PREFIXES.clear()
        held = _PREFIXES[key] = (content, hashlib.sha256(opening.encode("utf-8")))
    return held[1].copy()


def _scalar(value: Any) -> str | None:
    """``canonical_json(value)`` for None, a str, an int or a finite float (exact types: a bool, an int or
    float subclass, NaN and the infinities are left to the encoder: None)."""
    kind = type(value)
    if value is None:
        return "null"
    if kind is str:
        return _encode_basestring(value)
    if kind is int:
        return int.__repr__(value)  # as the encoder writes an int
    if kind is float and _isfinite(value):
        return float.__repr__(value)  # as the encoder writes a finite float
    return None


def _utf8(text: str) -> bytes:
    """``text.encode("utf-8")``, kept for the last few strings asked (a population's tool JSON)."""
    held = _UTF8.get(id(text))
    if held is None or held[0] is not text:
        if len(_UTF8) >= 64:
            _UTF8.clear()
        held = _UTF8[id(text)] = (text, text.encode("utf-8"))
    return held[1]


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
        digest = _prefix_digest(self.max_tokens, self.messages)
        if digest is not None:  # the same bytes, its opening (the system prompt) hashed once
            parts = message_parts(self.messages)  # each message's strings encoded once (body, key, record)
            later = canonical_messages(parts[1:]) if parts is not None else canonical_json(self.messages[1:])
            rest = later[1:] + "," + self._rest_json()
            digest.update(rest.encode("utf-8"))
            if self.tools_json is None or self.tools is None:
                digest.update(b',"tools":' + canonical_json(self.tools).encode("utf-8") + b"}")
            else:
                digest.update(b',"tools":' + _utf8(self.tools_json) + b"}")
            return digest.hexdigest()
        if self.tools_json is None or self.tools is None:
            payload = {name: getattr(self, name) for name in _KEY_FIELDS}
            text = canonical_json(payload)
        else:  # the same text: "tools" is the last key in sorted order
            payload = {name: getattr(self, name) for name in _KEY_FIELDS if name != "tools"}
            text = f'{canonical_json(payload)[:-1]},"tools":{self.tools_json}}}'
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _rest_json(self) -> str:
        """The key's fields after ``messages`` but ``tools`` (`_REST_FIELDS`), as `canonical_json` writes them
        inside the key's object: written by hand when each is a plain scalar (a string, an int, a finite float,
        None: what a policy's requests hold), else encoded."""
        model, response_format, seed = _scalar(self.model), _scalar(self.response_format), _scalar(self.seed)
        temperature, tool_choice = _scalar(self.temperature), _scalar(self.tool_choice)
        if model is None or response_format is None or seed is None or temperature is None or tool_choice is None:
            return canonical_json({name: getattr(self, name) for name in _REST_FIELDS})[1:-1]
        return (
            f'"model":{model},"response_format":{response_format},"seed":{seed},'
            f'"temperature":{temperature},"tool_choice":{tool_choice}'
        )

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
