"""The recorded event: the `SimulationEvent` dataclass and the names of the event types.

The event types are those of the recording contract (docs/architecture/recording-contract.md). `EVENT_TYPES` lists them for
documentation and validation by readers; it is not a restriction: the recorder accepts any string.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "ACTION",
    "ACTION_REJECTED",
    "AGENT_STATE",
    "AGREEMENT",
    "CLEARING",
    "CONTRACT",
    "EVENT_TYPES",
    "LLM_CALL",
    "MESSAGE",
    "OBSERVATION",
    "OFFER",
    "ORDER",
    "ORDER_CANCELLED",
    "ORDER_EXPIRED",
    "PLAN",
    "SCHEDULED_EVENT",
    "SIMULATION_END",
    "SIMULATION_START",
    "STEP_END",
    "STEP_START",
    "TRADE",
    "SimulationEvent",
]

SIMULATION_START = "simulation_start"
STEP_START = "step_start"
STEP_END = "step_end"
OBSERVATION = "observation"
PLAN = "plan"
LLM_CALL = "llm_call"
ACTION = "action"
ACTION_REJECTED = "action_rejected"
MESSAGE = "message"
ORDER = "order"
ORDER_CANCELLED = "order_cancelled"
ORDER_EXPIRED = "order_expired"
CLEARING = "clearing"
TRADE = "trade"
OFFER = "offer"
AGREEMENT = "agreement"
CONTRACT = "contract"
AGENT_STATE = "agent_state"
SCHEDULED_EVENT = "scheduled_event"
SIMULATION_END = "simulation_end"

EVENT_TYPES: frozenset[str] = frozenset(
    {
        SIMULATION_START,
        STEP_START,
        STEP_END,
        OBSERVATION,
        PLAN,
        LLM_CALL,
        ACTION,
        ACTION_REJECTED,
        MESSAGE,
        ORDER,
        ORDER_CANCELLED,
        ORDER_EXPIRED,
        CLEARING,
        TRADE,
        OFFER,
        AGREEMENT,
        CONTRACT,
        AGENT_STATE,
        SCHEDULED_EVENT,
        SIMULATION_END,
    }
)


@dataclass(slots=True)
class SimulationEvent:
    """One recorded event: what happened, when (wall clock and simulation step) and to whom.

    Attributes:
        event_id: ``f"{simulation_id}_{index:06d}"``; deterministic for a deterministic simulation id.
        timestamp: UTC wall-clock time of recording.
        step: simulation step (``model.steps``) the event belongs to.
        agent_id: the agent concerned, or None for model-level events.
        event_type: one of `EVENT_TYPES` or any other string.
        content: event-specific data (see the recording contract (docs/architecture/recording-contract.md)).
        metadata: additional context, e.g. ``{"source": "model"}``.
    """

    event_id: str
    timestamp: datetime
    step: int
    agent_id: int | None
    event_type: str
    content: dict[str, Any]
    metadata: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Return the event as a JSON-ready dict (the keys of `dataclasses.asdict`).

        The timestamp becomes an ISO 8601 string; ``content`` and ``metadata`` are the event's own
        dicts, not copies (unlike `asdict`), so treat them as read-only.
        """
        return {
            "event_id": self.event_id,
            "timestamp": self.timestamp.isoformat(),
            "step": self.step,
            "agent_id": self.agent_id,
            "event_type": self.event_type,
            "content": self.content,
            "metadata": self.metadata,
        }
