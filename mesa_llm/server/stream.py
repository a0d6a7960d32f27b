"""State updates for WebSocket clients: one per step, shared by every client, coalesced for a
slow one so the server never holds more than a bounded number of updates for it.

An `Update` is built once per step (the state and the events since the previous update) and its
JSON parts are serialised once; each client (`ClientStream`) holds at most ``capacity`` pending
updates. When a new update finds a client's queue full, it replaces the newest pending one and
counts what was dropped: the message that goes out says how many steps (``skipped_updates``) and
events (``skipped_events``) happened since the client's previous message and are not in it.
The latest state always goes out.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

#: an event filter: the event types a client wants (None: every type)
EventFilter = frozenset[str] | None


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


@functools.cache
def _orjson() -> Any:
    # orjson, when installed (optional, as for mesa_llm.analysis): 4-5x faster on event lists
    try:
        import orjson
    except ImportError:
        return None
    return orjson


def dumps(value: Any) -> str:
    """Compact, strict JSON (NaN and infinities become null)."""
    fast = _orjson()
    if fast is not None:
        try:
            return str(fast.dumps(value, option=fast.OPT_NON_STR_KEYS, default=str).decode())
        except TypeError:  # something orjson will not take (an int beyond 64 bits): the stdlib does
            pass
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False, default=str)
    except ValueError:
        return json.dumps(finite(value), separators=(",", ":"), allow_nan=False, default=str)


@dataclass
class Update:
    """The state after one step and the events of that step (those kept: at most the server's
    per-update limit; ``overflow`` counts the others)."""

    simulation_id: str
    tick: int
    timestamp: float
    agents: list[dict[str, Any]]
    environment: dict[str, Any]
    metrics: dict[str, Any]
    events: list[dict[str, Any]]
    overflow: int = 0
    #: the serialised state (agents, environment, metrics), made once
    _state_json: str | None = field(default=None, repr=False)
    #: the serialised events per filter, made once each
    _events_json: dict[EventFilter, tuple[str, int]] = field(default_factory=dict, repr=False)

    def events_for(self, wanted: EventFilter) -> tuple[str, int]:
        """The events a client with filter ``wanted`` gets, as JSON, and how many were left out
        by this update's own limit (counted for types the filter takes)."""
        cached = self._events_json.get(wanted)
        if cached is None:
            if wanted is None:
                chosen = self.events
            else:
                chosen = [e for e in self.events if e.get("event_type") in wanted]
            # the overflow is not known by type: reported to every client that takes any type
            overflow = self.overflow if (wanted is None or wanted) else 0
            cached = (dumps(chosen), overflow)
            self._events_json[wanted] = cached
        return cached

    def event_count(self, wanted: EventFilter) -> int:
        """Events of this update a client with filter ``wanted`` would have been sent, or told of."""
        if wanted is None:
            return len(self.events) + self.overflow
        return sum(1 for e in self.events if e.get("event_type") in wanted) + (self.overflow if wanted else 0)

    def prepare(self, filters: list[EventFilter]) -> None:
        """Serialise the state and the events for each of ``filters`` now (in the stepping
        thread), so the event loop only sends."""
        self._state_text()
        for wanted in filters:
            self.events_for(wanted)

    def _state_text(self) -> str:
        if self._state_json is None:
            self._state_json = (
                f'"agents":{dumps(self.agents)},"environment":{dumps(self.environment)},'
                f'"metrics":{dumps(self.metrics)}'
            )
        return self._state_json

    def message(self, wanted: EventFilter, skipped_updates: int, skipped_events: int) -> str:
        """The ``state_update`` message text for one client."""
        state = self._state_text()
        events, overflow = self.events_for(wanted)
        return (
            f'{{"type":"state_update","simulation_id":{dumps(self.simulation_id)},'
            f'"timestamp":{self.timestamp!r},"tick":{self.tick},'
            f'"skipped_updates":{skipped_updates},"skipped_events":{skipped_events + overflow},'
            f'"data":{{{state},"events":{events}}}}}'
        )


@dataclass
class _Pending:
    update: Update
    skipped_updates: int = 0
    skipped_events: int = 0


class ClientStream:
    """What one WebSocket client is waiting for: state updates (bounded, coalesced) and replies
    to its control messages (bounded: a client that sends faster than it reads is cut off)."""

    def __init__(self, wanted: EventFilter, capacity: int, max_replies: int) -> None:
        """``wanted``: the event types the client asked for; ``capacity``: updates held at most;
        ``max_replies``: unsent replies held at most."""
        self.wanted = wanted
        self.capacity = max(1, int(capacity))
        self.max_replies = max(1, int(max_replies))
        self._updates: deque[_Pending] = deque()
        self._replies: deque[str] = deque()
        self._ready = asyncio.Event()
        self.closed = False
        self._holds = 0  # replies still to come before the end may be sent
        self._done = False  # the end was sent: nothing more goes out
        #: totals over the connection (for tests and the benchmark)
        self.coalesced_updates = 0
        self.closing_message: str | None = None

    def push(self, update: Update) -> None:
        """Queue a state update; a full queue coalesces (the newest pending one is replaced)."""
        if self.closed:
            return
        if len(self._updates) >= self.capacity:
            dropped = self._updates.pop()
            self.coalesced_updates += 1
            # a step's update replaced by a later one of the same step (a status change) skips no step
            same_step = dropped.update.tick == update.tick
            self._updates.append(
                _Pending(
                    update,
                    dropped.skipped_updates + (0 if same_step else 1),
                    dropped.skipped_events + dropped.update.event_count(self.wanted),
                )
            )
        else:
            self._updates.append(_Pending(update))
        self._ready.set()

    def reply(self, message: dict[str, Any]) -> bool:
        """Queue a reply (ack or error); False when too many are unsent (the client reads none)."""
        if self._done:
            return True
        if len(self._replies) >= self.max_replies:
            return False
        self._replies.append(dumps(message))
        self._ready.set()
        return True

    def hold(self) -> None:
        """A reply is on its way: the end waits for it (see `release`)."""
        self._holds += 1

    def release(self) -> None:
        """The reply `hold` waited for is queued."""
        self._holds = max(0, self._holds - 1)
        self._ready.set()

    def close(self, final: dict[str, Any] | None = None) -> None:
        """No more updates: the writer sends what is queued, then ``final``, then stops."""
        if final is not None and self.closing_message is None:
            self.closing_message = dumps(final)
        self.closed = True
        self._ready.set()

    async def next_message(self) -> str | None:
        """The next text to send (replies first, then the oldest update); None when closed and empty."""
        while True:
            if self._replies:
                return self._replies.popleft()
            if self._updates:
                pending = self._updates.popleft()
                return pending.update.message(self.wanted, pending.skipped_updates, pending.skipped_events)
            if self.closed and not self._holds:
                if self.closing_message is not None:
                    text, self.closing_message = self.closing_message, None
                    return text
                self._done = True
                return None
            self._ready.clear()
            await self._ready.wait()

    @property
    def pending(self) -> int:
        """Updates waiting to be sent."""
        return len(self._updates)


__all__ = ["ClientStream", "EventFilter", "Update", "dumps", "finite"]
