"""The recorder's step writes: a step's lines are written together, byte offsets stay right for
any text, memory stays bounded, and the lean `stream_event` path writes what `record_event` writes."""

from __future__ import annotations

import json
from pathlib import Path

from mesa_llm.recording import SimulationRecorder
from mesa_llm.recording.recorder import REDACTED
from tests.support.recordings import untimed_lines


def test_lines_wait_for_the_flush_and_then_all_reach_the_file(tmp_path: Path) -> None:
    recorder = SimulationRecorder(None, tmp_path, simulation_id="s", run_name="r")
    for i in range(3):
        recorder.record_event("order", {"order_id": i}, agent_id=1, step=1, as_given=True)
    assert recorder.jsonl_path is not None
    assert recorder.jsonl_path.stat().st_size == 0  # held until the step's flush
    recorder.flush()
    assert [json.loads(line)["content"]["order_id"] for line in untimed_lines(recorder.jsonl_path)] == [0, 1, 2]


def test_a_step_of_large_events_is_written_as_it_goes_not_held_whole(tmp_path: Path) -> None:
    recorder = SimulationRecorder(None, tmp_path, simulation_id="s", run_name="r")
    text = "x" * 10_000
    for _ in range(300):  # 3 MB in one step, no flush
        recorder.record_event("llm_call", {"text": text}, agent_id=1, step=1, as_given=True)
    assert recorder.jsonl_path is not None
    assert recorder.jsonl_path.stat().st_size > 1_000_000
    recorder.close()
    assert len(untimed_lines(recorder.jsonl_path)) == 300


def test_steps_read_back_exactly_after_lines_with_multibyte_text(tmp_path: Path) -> None:
    recorder = SimulationRecorder(None, tmp_path, simulation_id="s", run_name="r")
    for step in range(1, 4):
        for i in range(3):
            recorder.record_event("message", {"text": "ünï€😀" * (step + i)}, agent_id=i, step=step)
        recorder.flush() if step == 2 else None
    for step in range(1, 4):
        events = recorder.get_events_by_step(step)
        assert [e.step for e in events] == [step] * 3
        assert [e.agent_id for e in events] == [0, 1, 2]


def test_the_lean_path_streams_the_line_record_event_streams(tmp_path: Path) -> None:
    full = SimulationRecorder(None, tmp_path / "a", simulation_id="s", run_name="r")
    lean = SimulationRecorder(None, tmp_path / "b", simulation_id="s", run_name="r")
    contents = [({"order_id": 1, "price": 1.5, "good": "wïdget"}, 3), ({"step": 2}, None), ({"x": [1, {"y": None}]}, 7)]
    for step, (content, agent_id) in enumerate(contents, 1):
        full.record_event("order", content, agent_id=agent_id, step=step, as_given=True)
        assert lean.stream_event("order", None, agent_id, step=step, content=content)
    assert lean.stream_event("observation", '{"a":1}', 4, step=9)
    full.record_event("observation", {"a": 1}, agent_id=4, step=9, as_given=True)
    full.close()
    lean.close()
    assert full.jsonl_path is not None and lean.jsonl_path is not None
    assert untimed_lines(lean.jsonl_path) == untimed_lines(full.jsonl_path)
    assert lean.get_stats()["total_events"] == full.get_stats()["total_events"] == 4
    assert lean.get_stats()["events_per_agent"] == full.get_stats()["events_per_agent"]


def test_the_lean_path_leaves_secrets_messages_and_kept_events_to_record_event(tmp_path: Path) -> None:
    recorder = SimulationRecorder(None, tmp_path, simulation_id="s", run_name="r")
    assert not recorder.stream_event("order", None, 1, step=1, content={"api_key": "sk-secret"})
    assert not recorder.stream_event("message", None, 1, step=1, content={"text": "hi"})
    assert not recorder.stream_event("llm_call", None, 1, step=1, content={"request": {}})
    assert not recorder.stream_event("order", None, 1, step=1)  # neither text nor content
    recorder.record_event("order", {"api_key": "sk-secret"}, agent_id=1, step=1, as_given=True)
    recorder.close()
    assert recorder.jsonl_path is not None
    assert "sk-secret" not in recorder.jsonl_path.read_text() and REDACTED in recorder.jsonl_path.read_text()
    kept = SimulationRecorder(None, tmp_path / "k", simulation_id="s", keep_in_memory=True)
    assert not kept.stream_event("order", '{"a":1}', 1, step=1)
    windowed = SimulationRecorder(None, tmp_path / "w", simulation_id="s", max_events_in_memory=3)
    assert not windowed.stream_event("order", '{"a":1}', 1, step=1)


def test_record_lean_makes_the_content_only_when_an_event_is_needed(tmp_path: Path) -> None:
    made: list[int] = []

    def content() -> dict[str, int]:
        made.append(1)
        return {"a": 1}

    recorder = SimulationRecorder(None, tmp_path, simulation_id="s", run_name="r")
    assert recorder.record_lean("observation", content, 1, step=1, encoded='{"a":1}') is None
    assert made == []  # streamed from its text
    event = recorder.record_lean("observation", content, 1, step=1, encoded='{"a":1}', need_event=True)
    assert made == [1] and event is not None and event.content == {"a": 1}
    kept = SimulationRecorder(None, tmp_path / "k", simulation_id="s", keep_in_memory=True)
    assert kept.record_lean("observation", content, 1, step=1, encoded='{"a":1}') is not None
    assert made == [1, 1] and kept.events[0].content == {"a": 1}
    recorder.close()
    assert recorder.jsonl_path is not None
    assert [json.loads(line)["content"] for line in untimed_lines(recorder.jsonl_path)] == [{"a": 1}, {"a": 1}]
