"""Answers LLM calls from a recording: no network, no key, and a check that each request is the
one that was recorded.

Each agent's recorded ``llm_call`` events are served in order. A request is matched by the hash of
everything that was sent (model, messages, tools, parameters: :meth:`ChatRequest.cache_key`); a
different hash means the run diverged (a prompt, a template, an observation or the code changed).
With ``verify`` the divergence is a fatal ``replay_divergence`` error (the run stops at the end of
the step and the first divergence is reported); without it the recorded answer is served anyway
and the mismatch is counted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mesa_llm.llm.errors import KINDS, LLMError
from mesa_llm.llm.types import ChatRequest, ChatResponse, ToolCall, Usage


@dataclass(slots=True)
class Divergence:
    """Where a replay stopped matching its recording."""

    step: int
    agent_id: int | None
    event_type: str
    event_id: str | None
    detail: str

    def __str__(self) -> str:
        who = f"agent {self.agent_id}" if self.agent_id is not None else "the model"
        where = f" (recorded event {self.event_id})" if self.event_id else ""
        return f"step {self.step}, {who}, {self.event_type}{where}: {self.detail}"


class ReplayChatModel:
    """A chat model that replays the ``llm_call`` events of a recording, agent by agent."""

    def __init__(self, events: Iterable[Mapping[str, Any]], *, verify: bool = False, name: str = "replay") -> None:
        self.name = name
        self.verify = verify
        self._queues: dict[int | None, deque[Mapping[str, Any]]] = {}
        #: each model's tool mode as the recording's header has it (the run probed it, not the replay)
        self.tool_modes: dict[str, str] = {}
        for event in events:
            if event.get("event_type") == "llm_call":
                self._queues.setdefault(event.get("agent_id"), deque()).append(event)
            elif event.get("event_type") == "simulation_start":
                self.tool_modes = _recorded_tool_modes(event.get("content"))
        self.served = 0
        self.divergences: list[Divergence] = []

    def declared_tool_mode(self, model: str) -> str:
        """The recorded mode of ``model``; "tools" for recordings made before modes were recorded
        (then "tools" was the default and ``llm.structured_output_models`` forced JSON)."""
        return self.tool_modes.get(model, "tools")

    def remaining(self, agent_id: int | None = None) -> int:
        """Recorded calls not served yet (for one agent, or all)."""
        if agent_id is not None:
            return len(self._queues.get(agent_id, ()))
        return sum(len(q) for q in self._queues.values())

    def _diverged(self, divergence: Divergence, model: str) -> LLMError:
        self.divergences.append(divergence)
        return LLMError(f"replay diverged at {divergence}", model=model, kind="replay_divergence")

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """The recorded answer to this agent's next call (or the recorded error)."""
        queue = self._queues.get(request.agent_id)
        if not queue:
            raise self._diverged(
                Divergence(-1, request.agent_id, "llm_call", None, "no recorded LLM call left for this agent"),
                request.model,
            )
        event = queue.popleft()
        content = event["content"]
        recorded_hash = content.get("request_hash")
        if recorded_hash is not None and recorded_hash != request.cache_key():
            divergence = Divergence(
                int(event.get("step", -1)),
                request.agent_id,
                "llm_call",
                event.get("event_id"),
                f"the {request.purpose} request differs from the recorded one "
                "(prompt, tools, observation or parameters changed)",
            )
            if self.verify:
                raise self._diverged(divergence, request.model)
            self.divergences.append(divergence)
        self.served += 1
        error = content.get("error")
        if error:
            kind = content.get("error_kind") or "unknown"
            attempts = int(content.get("attempts") or 1)
            # the same text as recorded (str() adds the attempts back), so --verify sees no change
            suffix = f" (after {attempts} attempts)"
            message = str(error).removesuffix(suffix) if attempts > 1 else str(error)
            raise LLMError(
                message,
                model=content.get("model") or request.model,
                kind=kind if kind in KINDS else "unknown",
                attempts=attempts,
            )
        response = content.get("response") or {}
        usage = content.get("usage") or {}
        return ChatResponse(
            content=response.get("content"),
            # the bounded answer as recorded (its truncation markers too), so the policy decides alike
            tool_calls=[ToolCall.from_record(tc, i) for i, tc in enumerate(response.get("tool_calls") or [])],
            usage=Usage(
                int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0), usage.get("invalid")
            ),
            model=content.get("model") or request.model,
            cost_usd=float(content.get("cost_usd") or 0.0),
            latency_s=0.0,
            attempts=int(content.get("attempts") or 1),
            finish_reason=response.get("finish_reason"),
            cached=bool(response.get("cached", False)),
            content_chars=response.get("content_chars"),
            dropped_tool_calls=int(response.get("dropped_tool_calls") or 0),
        )


def _recorded_tool_modes(header: Any) -> dict[str, str]:
    """``{model: mode}`` from a ``simulation_start`` content's ``llm.tool_modes`` (bad entries skipped)."""
    llm = header.get("llm") if isinstance(header, Mapping) else None
    modes = llm.get("tool_modes") if isinstance(llm, Mapping) else None
    out: dict[str, str] = {}
    if isinstance(modes, Mapping):
        for model, entry in modes.items():
            mode = entry.get("mode") if isinstance(entry, Mapping) else entry
            if isinstance(model, str) and mode in ("tools", "json"):
                out[model] = mode
    return out
