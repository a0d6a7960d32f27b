"""An `ActionResolver` whose events go into lists, for comparing its batch paths with applying
actions one by one."""

from __future__ import annotations

from typing import Any

from mesa_llm.model import MarketModel
from mesa_llm.world.resolver import ActionResolver

#: an event as the resolver records it: (type, content, agent id)
Event = tuple[str, Any, int | None]


def listing_resolver(model: MarketModel, *, encoded: bool) -> tuple[list[Event], list[str | None]]:
    """Give ``model`` a resolver (its world and generator) that records into the two lists returned:
    the events (a content given with its text made from its maker, as the recorder would) and each
    event's text (None when the resolver left the encoding to the recorder); ``encoded`` as
    `ActionResolver`'s."""
    events: list[Event] = []
    texts: list[str | None] = []

    def record(event_type: str, content: Any, agent_id: int | None, encoded: str | None = None) -> None:
        if callable(content):  # given with its text: made only when needed (`RecordEncoded`)
            assert encoded is not None
            content = content()
        events.append((event_type, content, agent_id))
        texts.append(encoded)

    model.resolver = ActionResolver(model.world, rng=model.rng, record=record, encoded=encoded)
    return events, texts
