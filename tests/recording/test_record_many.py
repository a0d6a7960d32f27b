"""`SimulationRecorder.record_many`: a batch of events is recorded as `record_lean` records each
of them in turn: the same lines (timestamps aside), ids, counts and step index, the events the
lean path refuses recorded in their place, and a closed or ended recording refusing at the same
event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mesa_llm.recording import SimulationRecorder
from mesa_llm.recording.recorder import REDACTED
from tests.support.recordings import untimed_lines


def _lines(recorder: SimulationRecorder) -> list[str]:
    recorder.flush()
    assert recorder.jsonl_path is not None
    return untimed_lines(recorder.jsonl_path)


def _items(encode: Any) -> list[tuple[str, Any, Any, str | None]]:
    """Events of every kind the batch meets: given as text (with a function making the dict),
    of a fixed shape, plain dicts, non-ASCII text, a secret key, special types, no agent."""
    observation = {"step": 2, "name": "Zoë", "market": {"widget": {"last_price": 1.5}}}
    order = {"order_id": 3, "side": "buy", "good": "widget", "price": 1.25, "quantity": 2, "lifetime": "day"}
    return [
        ("observation", lambda: observation, 1, encode(observation)),
        ("order", order, 1, None),
        ("action", {"type": "wait", "arguments": {}}, 2, None),
        ("message", {"sender_id": 1, "recipient_ids": [2], "text": "hi", "channel": "direct"}, 1, None),
        ("note", {"api_key": "sk-secret", "x": 1}, 2, None),  # a secret key: the full path blanks it
        ("observation", {"step": 2}, 3, encode({"step": 2})),
        ("step_end", {"step": 2, "trades": 0}, None, None),
        ("note", {"text": "ünï\u2028code"}, "a", None),
        ("llm_call", {"model": "m", "request": {"messages": []}}, 2, None),
        ("order", {**order, "price": float("nan")}, 1, None),  # not the fixed shape: encoded
    ]


def _record_each(recorder: SimulationRecorder, items: list[Any], step: int) -> None:
    for event_type, content, agent_id, encoded in items:
        recorder.record_lean(event_type, content, agent_id, step=step, encoded=encoded)


@pytest.mark.parametrize("kept", [False, True])
def test_a_batch_records_what_recording_each_event_records(tmp_path: Path, kept: bool) -> None:
    """``kept``: a recorder that keeps events takes the one-event path for every item."""
    options: dict[str, Any] = {"keep_in_memory": True} if kept else {}
    one = SimulationRecorder(None, tmp_path / "one", simulation_id="s", run_name="r", **options)
    many = SimulationRecorder(None, tmp_path / "many", simulation_id="s", run_name="r", **options)
    items = _items(one.encode)
    _record_each(one, items[:3], 1)
    many.record_many(items[:3], step=1)
    _record_each(one, items, 2)
    many.record_many(items, step=2)
    many.record_many([], step=2)
    _record_each(one, items[:2], 3)
    many.record_many(items[:2], step=3)
    assert _lines(many) == _lines(one)
    assert REDACTED in "\n".join(_lines(many)) and "sk-secret" not in "\n".join(_lines(many))
    timeless = lambda r: {k: v for k, v in r.get_stats().items() if "duration" not in k}  # noqa: E731
    assert timeless(many) == timeless(one)
    assert many.events_since_save == one.events_since_save == len(items) + 5
    for step in (1, 2, 3):  # the step index covers the batches' bytes
        assert [e.to_dict() | {"timestamp": ""} for e in many.get_events_by_step(step)] == [
            e.to_dict() | {"timestamp": ""} for e in one.get_events_by_step(step)
        ]
    assert [e.event_id for e in many.get_agent_events(1)] == [e.event_id for e in one.get_agent_events(1)]


def test_a_batch_shares_one_timestamp(tmp_path: Path) -> None:
    recorder = SimulationRecorder(None, tmp_path, simulation_id="s", run_name="r")
    recorder.record_many([("order", {"order_id": i}, 1, None) for i in range(50)], step=1)
    recorder.flush()
    assert recorder.jsonl_path is not None
    stamps = {json.loads(line)["timestamp"] for line in recorder.jsonl_path.read_text().splitlines()}
    assert len(stamps) == 1


def test_a_large_batch_is_written_in_chunks_with_offsets_right(tmp_path: Path) -> None:
    """Non-ASCII lines past the pending bound: the byte ranges of the step index stay exact."""
    recorder = SimulationRecorder(None, tmp_path, simulation_id="s", run_name="r")
    recorder.record_many([("note", {"text": "é" * 2000, "i": i}, 1, None) for i in range(300)], step=1)
    recorder.record_many([("note", {"text": "x", "i": i}, 1, None) for i in range(3)], step=2)
    assert recorder.jsonl_path is not None
    assert recorder.jsonl_path.stat().st_size > 0  # written as it went, not held whole
    assert [e.content["i"] for e in recorder.get_events_by_step(2)] == [0, 1, 2]
    assert len(recorder.get_events_by_step(1)) == 300


def test_an_ended_recording_refuses_at_the_same_event(tmp_path: Path) -> None:
    one = SimulationRecorder(None, tmp_path / "one", simulation_id="s", run_name="r")
    many = SimulationRecorder(None, tmp_path / "many", simulation_id="s", run_name="r")
    items: list[Any] = [
        ("order", {"order_id": 1}, 1, None),
        ("simulation_end", {"status": "completed", "final_step": 1, "total_events": 1}, None, None),
        ("order", {"order_id": 2}, 1, None),
    ]
    with pytest.raises(RuntimeError, match="ended"):
        _record_each(one, items, 1)
    with pytest.raises(RuntimeError, match="ended"):
        many.record_many(items, step=1)
    assert _lines(many) == _lines(one) and len(_lines(many)) == 2


def test_a_save_marker_is_dropped_before_a_batch_as_before_one_event(tmp_path: Path) -> None:
    one = SimulationRecorder(None, tmp_path / "one", simulation_id="s", run_name="r")
    many = SimulationRecorder(None, tmp_path / "many", simulation_id="s", run_name="r")
    for recorder in (one, many):
        recorder.record_lean("order", {"order_id": 0}, 1, step=1)
        recorder.save("snapshot.json")
    items: list[Any] = [("order", {"order_id": i}, 1, None) for i in range(1, 4)]
    _record_each(one, items, 2)
    many.record_many(items, step=2)
    assert _lines(many) == _lines(one)
    assert [e.event_id for e in many.events] == [e.event_id for e in one.events]
