"""A batch of a run's events recorded in one call, with the effect of recording each in turn.

The model records an event by counting it (trades and contracts in the tallies, the LLM agents'
events in their activity), writing it (`SimulationRecorder.record_lean`) and handing it to the
subscribers that want its type. A step records thousands of events no subscriber wants
(observations, actions, orders, trades); `record_many` counts them and streams them as a batch,
and sends every event a subscriber wants through the one-event path, in its place, so that a
subscriber sees each event when the events before it, and none after it, are recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mesa_llm.recording import SimulationRecorder
from mesa_llm.run_summary import LLMActivity
from mesa_llm.tallies import MarketTallies, TradeEvents
from mesa_llm.text_batch import LeanItem, TextBatch

__all__ = ["record_many"]


def record_many(
    items: Iterable[LeanItem],
    step: int,
    recorder: SimulationRecorder | None,
    tallies: MarketTallies,
    activity: LLMActivity,
    wants: Callable[[str], bool],
    record_one: Callable[..., None],
) -> None:
    """Record each ``(event_type, content, agent_id, encoded)`` of ``items`` at ``step``, in order,
    as ``record_one(*item)`` would (the model's `_record`): the same tallies, LLM activity counts,
    recorded lines and ids (`SimulationRecorder.record_many`: one timestamp per batch), and
    subscribers (``wants(event_type)``: such an item is given to ``record_one`` in its place, after
    the items before it are recorded). ``content`` may be a function making the dict when
    ``encoded`` is given; it is called only when the dict is needed (an LLM agent's event)."""
    llm = activity.population_of
    if isinstance(items, TradeEvents) and items.fills is not None and not any(map(wants, {item[0] for item in items})):
        tallies.on_trades(items.fills, step)  # a clearing's trades counted at once (no agent's events)
        if recorder is not None and items:
            recorder.record_many(items, step=step)
        return
    if (
        isinstance(items, TextBatch) and recorder is not None
        and not any(wants(event_type) or event_type in ("trade", "contract") for event_type in items.types())
        and (not llm or llm.keys().isdisjoint(items.agent_ids))
        and recorder.record_texts(items.event_type, items.agent_ids, items._texts, step=step, pieces=items.pieces)
    ):  # fmt: skip
        return  # nothing for the tallies or the LLM activity, nobody to hand them to: streamed at once
    run: list[LeanItem] = []
    wanted: dict[str, bool] = {}  # wants(type), asked once per type until a subscriber runs
    for item in items:
        event_type, content, agent_id, encoded = item
        want = wanted.get(event_type)
        if want is None:
            want = wanted[event_type] = wants(event_type)
        if want:  # published as it is recorded, after everything before it
            if run and recorder is not None:
                recorder.record_many(run, step=step)
            run = []
            record_one(*item)
            wanted.clear()  # the subscriber may have subscribed or left
            continue
        if agent_id is not None and agent_id in llm:
            if callable(content):
                content = content()
                item = (event_type, content, agent_id, encoded)
            activity.note(event_type, content, agent_id)  # counted with or without a recorder
        if event_type == "trade" or event_type == "contract":
            tallies.on_event(event_type, content, step)
        run.append(item)
    if run and recorder is not None:
        recorder.record_many(run, step=step)

