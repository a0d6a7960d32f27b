"""`SimulationRecorder.record_texts`: one event type's texts, one per agent, recorded as
`record_many` records the same items: the same lines (timestamps aside), ids, counts, step index
and agent index, in one text per chunk; and nothing recorded (False) where `record_many` would not
stream them all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mesa_llm.recording import SimulationRecorder
from mesa_llm.recording.recorder import _PENDING_CHARS
from tests.support.recordings import untimed_lines


def _lines(recorder: SimulationRecorder) -> list[str]:
    recorder.flush()
    assert recorder.jsonl_path is not None
    return untimed_lines(recorder.jsonl_path)


def _pair(tmp_path: Path, **options: Any) -> tuple[SimulationRecorder, SimulationRecorder]:
    return tuple(  # type: ignore[return-value]
        SimulationRecorder(None, tmp_path / name, simulation_id="s", run_name="r", **options) for name in ("many", "texts")
    )


def _texts(encode: Any, step: int, count: int, pad: int = 0) -> list[str]:
    return [encode({"step": step, "name": f"Zoë {i}", "x": "é" * pad, "v": i / 3}) for i in range(count)]


def test_texts_record_what_a_batch_of_the_same_items_records(tmp_path: Path) -> None:
    many, texts = _pair(tmp_path)
    ids = [5, 3, 12, 3]  # not in order, one agent twice
    for step, pad in ((1, 0), (2, 0), (3, 3000)):  # step 3: past the pending bound, non-ASCII
        batch = _texts(many.encode, step, len(ids) * (40 if pad else 1), pad)
        agents = ids * (40 if pad else 1)
        many.record_many([("order", {"order_id": step}, 7, None)], step=step)
        texts.record_many([("order", {"order_id": step}, 7, None)], step=step)
        many.record_many([("observation", dict, a, t) for a, t in zip(agents, batch, strict=True)], step=step)
        assert texts.record_texts("observation", agents, batch, step=step)
    assert texts.record_texts("observation", [], [], step=3)
    assert _lines(texts) == _lines(many) and len(_lines(texts)) == (1 + 4) * 2 + 1 + 160
    assert len("".join(_lines(texts))) > _PENDING_CHARS  # more than one chunk
    timeless = lambda r: {k: v for k, v in r.get_stats().items() if "duration" not in k}  # noqa: E731
    assert timeless(texts) == timeless(many)
    assert texts.events_since_save == many.events_since_save
    for step in (1, 2, 3):  # the step index covers the texts' bytes (multi-byte characters too)
        assert [e.to_dict() | {"timestamp": ""} for e in texts.get_events_by_step(step)] == [
            e.to_dict() | {"timestamp": ""} for e in many.get_events_by_step(step)
        ]
    assert [e.event_id for e in texts.get_agent_events(3)] == [e.event_id for e in many.get_agent_events(3)]


@pytest.mark.parametrize(
    ("event_type", "agent_ids", "options"),
    [
        ("message", [1, 2], {}),  # a type with side effects: the usual way
        ("observation", [1, 2], {"keep_in_memory": True}),  # a recorder keeping events
        ("observation", [1, True], {}),  # a bool is no int id (the encoder writes true)
        ("observation", [1, "2"], {}),
        ("observation", [1], {}),  # fewer ids than texts
    ],
)
def test_texts_are_refused_where_a_batch_would_not_stream_them(
    tmp_path: Path, event_type: str, agent_ids: list[Any], options: dict[str, Any]
) -> None:
    recorder = SimulationRecorder(None, tmp_path, simulation_id="s", run_name="r", **options)
    assert not recorder.record_texts(event_type, agent_ids, ['{"a":1}', '{"a":2}'], step=1)
    assert recorder.total_events_recorded == 0


def test_typed_texts_record_what_a_batch_of_the_same_items_records(tmp_path: Path) -> None:
    """One type per line (a batch's action and order lines, alternating per agent)."""
    many, texts = _pair(tmp_path)
    for step, (count, pad) in enumerate(((3, 0), (1, 0), (120, 2500)), start=1):  # the last: several chunks
        ids = [(7 * i) % 11 for i in range(count) for _ in (0, 1)]  # each agent's action, then its order
        types = ["action", "order"] * count
        batch = _texts(many.encode, step, 2 * count, pad)
        many.record_many([("observation", {"a": step}, 4, None)], step=step)
        texts.record_many([("observation", {"a": step}, 4, None)], step=step)
        many.record_many([(t, dict, a, x) for t, a, x in zip(types, ids, batch, strict=True)], step=step)
        assert texts.record_texts(types, ids, batch, step=step)
    assert texts.record_texts([], [], [], step=3)
    lines = _lines(texts)
    assert lines == _lines(many) and len(lines) == 3 + 2 * (3 + 1 + 120)
    assert sum('"event_type":"order"' in line for line in lines) == 124
    assert len("".join(lines)) > _PENDING_CHARS
    timeless = lambda r: {k: v for k, v in r.get_stats().items() if "duration" not in k}  # noqa: E731
    assert timeless(texts) == timeless(many)
    assert texts._type_counts == many._type_counts
    for step in (1, 2, 3):
        assert [e.to_dict() | {"timestamp": ""} for e in texts.get_events_by_step(step)] == [
            e.to_dict() | {"timestamp": ""} for e in many.get_events_by_step(step)
        ]


@pytest.mark.parametrize(
    "types",
    [
        ["action", "message"],  # one type with side effects: the usual way for all
        ["action"],  # fewer types than texts
        ["action", "order", "order"],  # more
        ["action", 5],  # not a type name
    ],
)
def test_typed_texts_are_refused_where_a_batch_would_not_stream_them(tmp_path: Path, types: list[Any]) -> None:
    recorder = SimulationRecorder(None, tmp_path, simulation_id="s", run_name="r")
    assert not recorder.record_texts(types, [1, 2], ['{"a":1}', '{"a":2}'], step=1)
    assert recorder.total_events_recorded == 0


def _split(text: str, cuts: tuple[int, ...]) -> list[str]:
    """``text`` cut at ``cuts`` (clipped to its length): pieces joining to it, some empty."""
    at = [min(c, len(text)) for c in cuts]
    return [text[a:b] for a, b in zip([0, *at], [*at, len(text)], strict=True)]


def test_pieces_record_what_their_joined_texts_record(tmp_path: Path) -> None:
    """Texts given as columns of pieces (a call market's action and order lines): the lines of the
    joined texts, over several chunks and with non-ASCII text."""
    joined, pieced = _pair(tmp_path)
    for step, (count, pad) in enumerate(((3, 0), (1, 0), (120, 2500)), start=1):
        ids = [(5 * i) % 7 for i in range(count) for _ in (0, 1)]
        types = ["action", "order"] * count
        batch = _texts(joined.encode, step, 2 * count, pad)
        cut = [_split(text, (1, 1, 9, 30 + i % 5)) for i, text in enumerate(batch)]
        columns = [list(column) for column in zip(*cut, strict=True)]
        assert joined.record_texts(types, ids, batch, step=step)
        assert pieced.record_texts(types, ids, None, step=step, pieces=columns)
    assert _lines(pieced) == _lines(joined) and len(_lines(pieced)) == 2 * (3 + 1 + 120)
    timeless = lambda r: {k: v for k, v in r.get_stats().items() if "duration" not in k}  # noqa: E731
    assert timeless(pieced) == timeless(joined)


@pytest.mark.parametrize(
    ("texts", "pieces"),
    [
        (None, [['{"a":'], ["1}"]]),  # a column shorter than the ids
        (None, [['{"a":', '{"a":'], ["1}"]]),  # columns of different lengths
        (['{"a":1}', '{"a":2}'], [['{"a":', '{"a":'], ["1}", "2}"]]),  # both
        (None, None),  # neither
        (None, []),  # no column
    ],
)
def test_pieces_are_refused_unless_whole(tmp_path: Path, texts: Any, pieces: Any) -> None:
    recorder = SimulationRecorder(None, tmp_path, simulation_id="s", run_name="r")
    assert not recorder.record_texts("observation", [1, 2], texts, step=1, pieces=pieces)
    assert recorder.total_events_recorded == 0


@pytest.mark.parametrize("first", [0, 997, 1998, 99_999, 999_997])
def test_texts_number_their_events_as_the_stream_does_across_thousands(tmp_path: Path, first: int) -> None:
    """A batch's event ids (written as thousands and last three digits, `_index_pieces`) are the
    ids `record_many` writes, ``str(index).zfill(6)``: batches that start below, at and across a
    thousand and a million."""
    many, texts = _pair(tmp_path)
    many._count = texts._count = first  # as after ``first`` events
    for step, count in enumerate((1, 2, 5, 1003), start=1):
        ids = [i % 13 for i in range(count)]
        batch = _texts(many.encode, step, count)
        many.record_many([("observation", dict, a, t) for a, t in zip(ids, batch, strict=True)], step=step)
        assert texts.record_texts("observation", ids, batch, step=step)
    lines = _lines(texts)
    assert lines == _lines(many) and len(lines) == 1011
    numbers = [int(json.loads(line)["event_id"].rsplit("_", 1)[1]) for line in lines]
    assert numbers == list(range(first, first + 1011))


def test_int_texts_are_each_ints_str() -> None:
    """`int_texts`: ``str`` of each int, from the kept table (grown in steps, in any order) or
    converted (a negative int, one past the table's bound)."""
    from mesa_llm.encoded_json import _INT_TEXTS_KEPT, int_texts

    for values in ([], [0], [5, 3, 5], [7, 1200, 40], list(range(2500, 0, -7)), [_INT_TEXTS_KEPT - 1, 2],
                   [_INT_TEXTS_KEPT, 3], [-1, 4], [10**30, 9]):  # fmt: skip
        assert list(int_texts(values)) == [str(v) for v in values]


def test_typed_texts_count_their_types_in_the_order_a_batch_meets_them(tmp_path: Path) -> None:
    """The type counts of typed texts are `record_many`'s, key order included (a recording's
    summary lists them in it): types first met in a batch after the recorder's own."""
    many, texts = _pair(tmp_path)
    for recorder in (many, texts):
        recorder.record_many([("observation", {"a": 1}, 4, None)], step=1)
    types = ["order", "action", "order", "trade_note", "action"]
    batch = _texts(many.encode, 1, len(types))
    many.record_many([(t, dict, 3, x) for t, x in zip(types, batch, strict=True)], step=1)
    assert texts.record_texts(types, [3] * len(types), batch, step=1)
    assert list(texts._type_counts.items()) == list(many._type_counts.items())
    assert list(texts._type_counts) == ["observation", "order", "action", "trade_note"]
