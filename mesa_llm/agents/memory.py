"""Bounded agent memory: a running summary plus the last k relevant events.

An LLM agent's prompt must not grow with the number of steps. Instead of the whole history it sees
a summary kept up to date by code (units traded, average prices, cash flow, messages, rejections:
constant size) and the last ``k`` relevant events as short lines. Updating it costs no LLM call and
is deterministic.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from mesa_llm.agents.observation import Observation
from mesa_llm.agents.prompts import quoted


@dataclass(slots=True)
class _Tally:
    units: int = 0
    value: float = 0.0


@dataclass
class AgentMemory:
    """What an LLM agent remembers across steps, in constant space."""

    max_events: int = 8
    max_chars: int = 300
    recent: deque[str] = field(default_factory=deque)
    bought: dict[str, _Tally] = field(default_factory=dict)
    sold: dict[str, _Tally] = field(default_factory=dict)
    messages_received: int = 0
    rejections: int = 0
    steps_seen: int = 0
    plan: str | None = None
    plan_step: int | None = None

    def __post_init__(self) -> None:
        self.recent = deque(self.recent, maxlen=max(self.max_events, 0) or None)

    def _note(self, text: str) -> None:
        if self.max_events <= 0:
            return
        if len(text) > self.max_chars:
            text = text[: self.max_chars - 1] + "…"
        self.recent.append(text)

    def update(self, observation: Observation) -> None:
        """Fold what the new observation reports about the last step into memory."""
        self.steps_seen += 1
        last = observation.step - 1
        for trade in observation.recent_trades:
            if trade["step"] != last:
                continue
            book = self.bought if trade["side"] == "buy" else self.sold
            tally = book.setdefault(trade["good"], _Tally())
            tally.units += trade["quantity"]
            tally.value += trade["price"] * trade["quantity"]
            self._note(trade_note(trade))
        for rejection in observation.rejections:
            self.rejections += 1
            self._note(f"step {last}: {rejection['type']} rejected: {rejection['reason']}")
        for message in observation.messages:
            self.messages_received += 1
            # other agents' words stay quoted data in memory too (one escaped line, capped)
            self._note(
                f"step {message['step']}: agent {message['sender_id']} ({message['channel']}) wrote: "
                f"{quoted(message['text'], limit=200)}"
            )

    def set_plan(self, plan: str, step: int) -> None:
        """Remember the latest plan (shown until a new one is made). It is shown once, as the
        act prompt's plan, not also among the recent events."""
        self.plan = plan
        self.plan_step = step

    def summary(self) -> str:
        """One line about everything so far (constant size for a fixed number of goods)."""
        parts = []
        for label, book in (("bought", self.bought), ("sold", self.sold)):
            for good, tally in sorted(book.items()):
                if tally.units:
                    parts.append(f"{label} {tally.units} {good} at {tally.value / tally.units:.2f} on average")
        if self.messages_received:
            parts.append(f"{self.messages_received} messages received")
        if self.rejections:
            parts.append(f"{self.rejections} actions rejected")
        return "; ".join(parts)

    def to_context(self, shown: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
        """The template context ``memory`` (see prompts/memory.j2), without the recent events in
        ``shown`` (what the prompt lists elsewhere, e.g. the observation's own recent trades as
        :func:`trade_note` words them: each fact once)."""
        recent = [e for e in self.recent if e not in shown] if shown else list(self.recent)
        return {"summary": self.summary(), "recent": recent, "plan": self.plan}


def trade_note(trade: dict[str, Any]) -> str:
    """A trade of the agent's as a memory event: ``step 3: bought 1 widget at 105.92``."""
    verb = "bought" if trade["side"] == "buy" else "sold"
    return f"step {trade['step']}: {verb} {trade['quantity']} {trade['good']} at {trade['price']}"
