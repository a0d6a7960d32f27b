"""Hand-built JSON of the hot events (`mesa_llm.recording.shapes`): for any content, the text is
the recorder encoder's, or None (the content is left to the encoder); for the shapes the model
records, it is never None. And the recorder's clock: each line's timestamp is the time its event
was recorded, as ``datetime.now(UTC)`` gives it."""

from __future__ import annotations

import json
import math
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesa_llm.recording import SimulationRecorder
from mesa_llm.recording.recorder import _make_encoder
from mesa_llm.recording.shapes import SHAPES, action, order, trade

ENCODE = _make_encoder()

_KEYS = {
    "order": ("order_id", "side", "good", "price", "quantity", "lifetime"),
    "trade": ("good", "price", "quantity", "buyer_id", "seller_id", "buy_order_id", "sell_order_id", "buyer_fee", "seller_fee"),
}  # fmt: skip
_ARGUMENTS = ("good", "side", "price", "quantity", "lifetime")
_STR_KEYS = {"side", "good", "lifetime"}
_FLOAT_KEYS = {"price", "buyer_fee", "seller_fee"}

# any text: non-ASCII, control characters, quotes, backslashes, lone surrogates
texts = st.text(st.characters(codec=None), max_size=12)
ints = st.integers(min_value=-(10**30), max_value=10**30)
floats = st.floats(allow_nan=True, allow_infinity=True)
# what a field may hold in a hostile or odd content: every JSON-able kind, and a few that are not
# what the shape expects while encoding the same or differently (bool is an int, an int where a
# float was, a float subclass, a nested value)
anything = st.one_of(
    texts, ints, floats, st.booleans(), st.none(), st.lists(ints, max_size=2),
    st.dictionaries(texts, ints, max_size=2), st.builds(lambda x: type("F", (float,), {})(x), floats),
)  # fmt: skip


def _typed(key: str) -> st.SearchStrategy[Any]:
    """What the model puts in a field (the shape's own types, any value of them)."""
    if key in _STR_KEYS:
        return texts
    if key in _FLOAT_KEYS:
        return st.one_of(floats, ints)
    return ints


def _content(keys: tuple[str, ...], value: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts with ``keys`` in their order (`st.fixed_dictionaries` does not keep it)."""
    return st.tuples(*(value(k) for k in keys)).map(lambda values: dict(zip(keys, values, strict=True)))


def _check(shape: Any, content: Any) -> str | None:
    text = shape(content)
    if text is not None:
        assert text == ENCODE(content)
        json.loads(text)  # and it is JSON
    return text


@settings(max_examples=300)
@given(_content(_KEYS["order"], _typed))
def test_an_order_of_the_model_types_is_the_encoders_text(content: dict[str, Any]) -> None:
    text = _check(order, content)
    finite = all(not isinstance(v, float) or math.isfinite(v) for v in content.values())
    assert (text is not None) == finite  # NaN and the infinities are left to the encoder


@settings(max_examples=300)
@given(_content(_KEYS["trade"], _typed))
def test_a_trade_of_the_model_types_is_the_encoders_text(content: dict[str, Any]) -> None:
    text = _check(trade, content)
    finite = all(not isinstance(v, float) or math.isfinite(v) for v in content.values())
    assert (text is not None) == finite


@settings(max_examples=300)
@given(texts, _content(_ARGUMENTS, _typed))
def test_an_order_action_of_the_model_types_is_the_encoders_text(kind: str, arguments: dict[str, Any]) -> None:
    text = _check(action, {"type": kind, "arguments": arguments})
    assert (text is not None) == (not isinstance(arguments["price"], float) or math.isfinite(arguments["price"]))


@settings(max_examples=300)
@given(
    st.sampled_from(sorted(SHAPES)),
    st.lists(st.sampled_from(sorted({*_KEYS["order"], *_KEYS["trade"], "type", "arguments", "extra"})), max_size=10),
    st.data(),
)
def test_any_content_is_the_encoders_text_or_left_to_it(event_type: str, keys: list[str], data: st.DataObject) -> None:
    """Any keys in any order with any values: the same text or None, never another text."""
    content = {k: data.draw(anything) for k in keys}
    if event_type == "action" and data.draw(st.booleans()):
        content = {"type": data.draw(anything), "arguments": {k: data.draw(anything) for k in data.draw(st.permutations(_ARGUMENTS))}}
    _check(SHAPES[event_type], content)


@pytest.mark.parametrize(
    "content",
    [
        {"order_id": 1, "side": "sell", "good": "widget", "price": 1.5, "quantity": 1, "lifetime": "step", "x": 1},
        {"side": "sell", "order_id": 1, "good": "widget", "price": 1.5, "quantity": 1, "lifetime": "step"},
        {"order_id": True, "side": "sell", "good": "widget", "price": 1.5, "quantity": 1, "lifetime": "step"},
        {"order_id": 1, "side": "sell", "good": "widget", "price": float("nan"), "quantity": 1, "lifetime": "step"},
        {"order_id": 1, "side": "sell", "good": "widget", "price": float("-inf"), "quantity": 1, "lifetime": "step"},
        {"order_id": 1, "side": None, "good": "widget", "price": 1.5, "quantity": 1, "lifetime": "step"},
    ],
)
def test_an_order_of_another_shape_is_left_to_the_encoder(content: dict[str, Any]) -> None:
    assert order(content) is None


def test_a_recorded_step_streams_the_same_lines_by_shape_and_by_encoder(tmp_path: Path) -> None:
    """The recorder's lean path (shapes) and `record_event` (the encoder) write the same lines."""
    contents = [
        ("action", {"type": "place_order", "arguments": {"good": "wïdget", "side": "buy", "price": 99.94, "quantity": 2, "lifetime": "gtc"}}),
        ("order", {"order_id": 7, "side": "buy", "good": "wïdget", "price": 1e-7, "quantity": 2, "lifetime": "gtc"}),
        ("trade", {"good": "w\"x", "price": 100.0, "quantity": 1, "buyer_id": 3, "seller_id": 4, "buy_order_id": 7,
                   "sell_order_id": 8, "buyer_fee": 0.0, "seller_fee": 1e22}),
        ("order", {"order_id": 8, "side": "sell", "good": "w", "price": float("inf"), "quantity": 1, "lifetime": "step"}),
    ]  # fmt: skip
    lean = SimulationRecorder(None, tmp_path / "lean", simulation_id="s", run_name="r")
    full = SimulationRecorder(None, tmp_path / "full", simulation_id="s", run_name="r")
    for event_type, content in contents:
        assert lean.record_lean(event_type, content, 3, step=1) is None  # streamed, no event object
        full.record_event(event_type, content, agent_id=3, step=1, as_given=True)
    lean.close()
    full.close()
    assert lean.jsonl_path is not None and full.jsonl_path is not None
    stamp = re.compile(r'"timestamp":"[^"]*"')
    assert stamp.sub("", lean.jsonl_path.read_text("utf-8")) == stamp.sub("", full.jsonl_path.read_text("utf-8"))


def test_each_line_carries_the_time_its_event_was_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Timestamps are ``datetime.now(UTC)``'s (floored to the microsecond), the second's text cached
    only while the second lasts: across a second's end, at a whole second, on both paths."""
    second = 1_765_065_600  # 2025-12-07T00:00:00Z
    clock = [
        second * 10**9 + 999_999_999,  # the last microsecond of a second (floored, not rounded up)
        (second + 1) * 10**9,  # a whole second: no fraction, as isoformat writes it
        (second + 1) * 10**9 + 1_000,
        (second + 61) * 10**9 + 123_456_789,
        (second + 61) * 10**9 + 123_457_000,
    ]
    recorder = SimulationRecorder(None, tmp_path, simulation_id="s", run_name="r")
    ticks = iter(clock)
    monkeypatch.setattr(time, "time_ns", lambda: next(ticks))
    events = []
    for i in range(len(clock)):
        if i % 2:
            events.append(recorder.record_event("order", {"order_id": i}, agent_id=1, step=1, as_given=True))
        else:
            assert recorder.record_lean("order", {"order_id": i}, 1, step=1) is None
    monkeypatch.undo()
    recorder.close()
    assert recorder.jsonl_path is not None
    stamps = [json.loads(line)["timestamp"] for line in recorder.jsonl_path.read_text().splitlines()]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    expected = [(epoch + timedelta(microseconds=ns // 1000)).isoformat() for ns in clock]
    assert stamps == expected
    assert stamps[0] == "2025-12-07T00:00:00.999999+00:00" and stamps[1] == "2025-12-07T00:00:01+00:00"
    assert [e.timestamp.isoformat() for e in events] == [expected[1], expected[3]]  # the event objects agree
    ids = [json.loads(line)["event_id"] for line in recorder.jsonl_path.read_text().splitlines()]
    assert ids == [f"s_{i:06d}" for i in range(len(clock))] and [e.event_id for e in events] == [ids[1], ids[3]]


def test_the_clock_is_the_one_datetime_now_reads(tmp_path: Path) -> None:
    recorder = SimulationRecorder(None, tmp_path, simulation_id="s", run_name="r")
    before = datetime.now(UTC)
    assert recorder.record_lean("order", {"order_id": 1}, 1, step=1) is None
    after = datetime.now(UTC)
    recorder.close()
    assert recorder.jsonl_path is not None
    stamp = datetime.fromisoformat(json.loads(recorder.jsonl_path.read_text())["timestamp"])
    assert before <= stamp <= after
