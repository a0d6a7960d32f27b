"""A batch of events, one per agent, with their contents' JSON texts: what the world's parts hand the
recording (through the model) without importing it.

The observer (a population's observations) and the call market (a batch's action and order lines) make
their events' texts as columns of pieces; `mesa_llm.record_batch.record_many` streams a `TextBatch`
in one pass when it may. This module holds the batch only, so the world needs nothing of the recording.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["LeanItem", "TextBatch"]

#: an event for `SimulationRecorder.record_many`: ``(event_type, content, agent_id, encoded)``, as
#: `SimulationRecorder.record_lean` takes them (``content`` a dict, or a function making it when
#: ``encoded``, its JSON text, is given); defined here, below the recording and the world alike
LeanItem = tuple[str, Any, Any, "str | None"]


class TextBatch:
    """Events, one per agent, with their contents' JSON texts (a population's observations; a
    batch's action and order lines): an iterable of the ``(event_type, content, agent_id, text)``
    items `record_many` takes, whose lines `record_many` makes in one pass
    (`SimulationRecorder.record_texts`) when it may: no subscriber wants a type, none is a trade
    or contract, and no LLM agent is among them (their events are counted from their dicts).
    ``event_type`` is every event's type, or a sequence of one type per event. ``sources[i].to_dict()``
    makes the dict of event ``i``, or ``sources[i]()`` when ``makers`` (called only if needed); no
    content has a `SECRET_KEYS` key at its top level. ``pieces`` (with ``texts`` None): the texts
    as columns of pieces, text ``i`` the join of every column's item ``i``: the recorder joins
    them into its lines in one pass (`SimulationRecorder.record_texts`), and ``texts`` joins
    them only when the lines are recorded one by one."""

    __slots__ = ("_texts", "agent_ids", "event_type", "makers", "pieces", "sources")

    def __init__(
        self, event_type: str | Sequence[str], agent_ids: Sequence[int], texts: Sequence[str] | None,
        sources: Sequence[Any], *, makers: bool = False, pieces: Sequence[Sequence[str]] | None = None,
    ) -> None:  # fmt: skip
        if (texts is None) == (pieces is None):
            raise ValueError("a TextBatch takes its texts or their pieces")
        self.event_type, self.agent_ids, self._texts, self.sources = event_type, agent_ids, texts, sources
        self.makers, self.pieces = makers, pieces

    @property
    def texts(self) -> Sequence[str]:
        """Each event's content text (joined from ``pieces`` when made of them, once)."""
        texts = self._texts
        if texts is None:
            assert self.pieces is not None  # (one of the two, `__init__`)
            texts = self._texts = list(map("".join, zip(*self.pieces, strict=True)))
        return texts

    def types(self) -> set[str]:
        """The batch's event types."""
        event_type = self.event_type
        return {event_type} if isinstance(event_type, str) else set(event_type)

    def __iter__(self) -> Iterator[LeanItem]:
        event_type, makers = self.event_type, self.makers
        if isinstance(event_type, str):
            for source, agent_id, text in zip(self.sources, self.agent_ids, self.texts, strict=True):
                yield event_type, source if makers else source.to_dict, agent_id, text
            return
        for name, source, agent_id, text in zip(event_type, self.sources, self.agent_ids, self.texts, strict=True):
            yield name, source if makers else source.to_dict, agent_id, text

    def __len__(self) -> int:
        return len(self.agent_ids)
