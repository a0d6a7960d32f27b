"""Tests of mesa_llm.recording: the streaming SimulationRecorder, its JSON export and the reader."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesa_llm.recording import (
    EVENT_TYPES,
    LLM_CALL,
    ORDER,
    REDACTED,
    SIMULATION_END,
    SIMULATION_START,
    STEP_END,
    STEP_START,
    LoadedRecording,
    RecordingError,
    SimulationEvent,
    SimulationRecorder,
    load_events,
    make_simulation_id,
    redact,
)

EXPORT_METADATA_KEYS = {
    "simulation_id",
    "start_time",
    "model_class",
    "end_time",
    "total_steps",
    "total_events",
    "total_agents",
    "duration_minutes",
    "completion_status",
}
STATS_KEYS = {
    "total_events",
    "unique_agents",
    "event_types",
    "simulation_steps",
    "recording_duration_minutes",
    "events_per_agent",
}


def make_model(steps: int = 0, n_agents: int = 3, max_steps: int | None = None) -> Any:
    """A stand-in for the Mesa model: the recorder reads only steps, max_steps and agents."""
    model = SimpleNamespace(steps=steps, agents=list(range(n_agents)))
    if max_steps is not None:
        model.max_steps = max_steps
    return model


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run_steps(rec: SimulationRecorder, model: Any, n_steps: int, n_agents: int = 3) -> None:
    """Record a small simulation: start, n_steps steps of orders and plans, flushing every step."""
    rec.record_model_event(SIMULATION_START, {"scenario": {"name": "toy"}, "seed": 7})
    for _ in range(n_steps):
        model.steps += 1
        rec.record_model_event(STEP_START, {"step": model.steps})
        for agent_id in range(n_agents):
            rec.record_event("plan", {"text": f"plan {agent_id}"}, agent_id=agent_id)
            rec.record_event(ORDER, {"side": "buy", "price": 1.5, "quantity": 2}, agent_id=agent_id)
        rec.record_model_event(STEP_END, {"step": model.steps})
        rec.flush()


# -- recorder: stream ------------------------------------------------------------------------


def test_folder_is_created_at_construction_and_the_stream_on_first_event(tmp_path: Path) -> None:
    out = tmp_path / "rec" / "nested"
    rec = SimulationRecorder(make_model(), out, simulation_id="abc")
    assert out.is_dir() and list(out.iterdir()) == []
    assert rec.jsonl_path is None
    rec.record_event("plan", {"text": "x"}, agent_id=1)
    assert rec.jsonl_path == out / "simulation_abc.jsonl"
    rec.close()


def test_every_event_is_in_the_stream_as_recorded(tmp_path: Path) -> None:
    model = make_model()
    with SimulationRecorder(model, tmp_path, run_name="run") as rec:
        for i in range(25):
            event = rec.record_event("plan", {"text": f"p{i}", "é": "ü"}, agent_id=i % 4)
            rec.flush()
            assert rec.jsonl_path is not None
            lines = read_lines(rec.jsonl_path)
            assert len(lines) == i + 1 == len(rec.events)
            assert lines[-1] == event.to_dict()
        path = rec.jsonl_path
    assert path is not None and path.name == "run.jsonl"
    text = path.read_text(encoding="utf-8")
    assert "ü" in text  # ensure_ascii=False
    assert ": " not in text.splitlines()[0]  # compact separators
    assert [json.loads(line) for line in text.splitlines()] == [e.to_dict() for e in rec.events]


def test_event_ids_are_deterministic_for_a_given_simulation_id(tmp_path: Path) -> None:
    ids = []
    for run in ("a", "b"):
        with SimulationRecorder(make_model(), tmp_path, simulation_id="s1", run_name=run) as rec:
            for i in range(3):
                rec.record_event("plan", {"text": str(i)})
            ids.append([e.event_id for e in rec.events])
    assert ids[0] == ids[1] == ["s1_000000", "s1_000001", "s1_000002"]
    assert make_simulation_id("energy", 42) == make_simulation_id("energy", 42)
    assert make_simulation_id("energy", 42) != make_simulation_id("energy", 43)
    assert len(make_simulation_id("x")) == 8


def test_existing_recordings_are_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "run.jsonl").write_text("precious\n")
    (tmp_path / "run-1.jsonl").write_text("precious too\n")
    paths = []
    for _ in range(2):
        with SimulationRecorder(make_model(), tmp_path, run_name="run") as rec:
            rec.record_event("plan", {"text": "x"})
            paths.append(rec.jsonl_path)
    assert paths == [tmp_path / "run-2.jsonl", tmp_path / "run-3.jsonl"]
    assert (tmp_path / "run.jsonl").read_text() == "precious\n"
    assert (tmp_path / "run-1.jsonl").read_text() == "precious too\n"


def test_close_is_idempotent_and_recording_after_close_fails(tmp_path: Path) -> None:
    rec = SimulationRecorder(make_model(), tmp_path)
    rec.record_event("plan", {"text": "x"})
    rec.close()
    rec.close()
    with pytest.raises(RuntimeError, match="closed"):
        rec.record_event("plan", {"text": "y"})


def test_numpy_values_serialise(tmp_path: Path) -> None:
    import numpy as np
    with SimulationRecorder(make_model(), tmp_path) as rec:
        rec.record_event(
            "trade",
            {
                "price": np.float32(1.5),
                "quantity": np.int64(3),
                "ok": np.bool_(True),
                "prices": np.array([1, 2]),
                "f64": np.float64(0.25),
            },
            step=np.int64(2),
            agent_id=np.int64(5),
        )
    assert rec.jsonl_path is not None
    (line,) = read_lines(rec.jsonl_path)
    assert line["content"] == {
        "price": 1.5,
        "quantity": 3,
        "ok": True,
        "prices": [1, 2],
        "f64": 0.25,
    }
    assert line["step"] == 2 and line["agent_id"] == 5


def test_content_formatting_follows_the_seed(tmp_path: Path) -> None:
    with SimulationRecorder(make_model(steps=4), tmp_path) as rec:
        msg = rec.record_event("message", "hello", agent_id=1, recipient_ids=[2, 3])
        other = rec.record_event("plan", "think", agent_id=1)
        dict_msg = rec.record_event("message", {"text": "hi", "channel": "x"}, recipient_ids=[2])
        no_ids = rec.record_event("message", {"text": "hi"})
        contract = rec.record_event("message", {"recipient_ids": [2], "text": "hi", "channel": "x"}, as_given=True)
        none = rec.record_event("plan")
        explicit = rec.record_event("plan", {"text": "x"}, step=9)
    assert msg.content == {"message": "hello", "recipient_ids": [2, 3]}
    assert other.content == {"data": "think"}
    assert dict_msg.content == {"message": {"text": "hi", "channel": "x"}, "recipient_ids": [2]}
    assert no_ids.content == {"message": {"text": "hi"}, "recipient_ids": []}
    assert contract.content == {"recipient_ids": [2], "text": "hi", "channel": "x"}
    assert none.content == {"data": None} and none.metadata == {}
    assert msg.step == 4 and explicit.step == 9


def test_standalone_recorder_without_model(tmp_path: Path) -> None:
    rec = SimulationRecorder(output_dir=tmp_path, stream=False)
    event = rec.record_event("plan", {"text": "x"}, agent_id=1)
    assert event.step == 0
    assert len(rec.simulation_metadata["simulation_id"]) == 8
    assert rec.save("out.json").exists()
    assert rec.get_stats()["simulation_steps"] == 0


def test_nothing_recorded_is_refused() -> None:
    with pytest.raises(ValueError, match="record nothing"):
        SimulationRecorder(make_model(), stream=False, keep_in_memory=False)


# -- recorder: queries -----------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(EVENT_TYPES - {SIMULATION_END})),
            st.none() | st.integers(0, 4),
            st.integers(0, 5),
        ),
        max_size=60,
    )
)
def test_queries_match_scans(specs: list[tuple[str, int | None, int]]) -> None:
    rec = SimulationRecorder(make_model(), stream=False)
    for event_type, agent_id, step in specs:
        rec.record_event(event_type, {"x": 1}, agent_id=agent_id, step=step)
    events = rec.events
    for agent_id in range(5):
        assert rec.get_agent_events(agent_id) == [e for e in events if e.agent_id == agent_id]
    for event_type in EVENT_TYPES:
        assert rec.get_events_by_type(event_type) == [
            e for e in events if e.event_type == event_type
        ]
    for step in range(6):
        assert rec.get_events_by_step(step) == [e for e in events if e.step == step]
    stats = rec.get_stats()
    assert stats["total_events"] == len(specs)
    assert stats["events_per_agent"] == {
        a: sum(1 for e in events if e.agent_id == a)
        for a in {e.agent_id for e in events if e.agent_id is not None}
    }


def test_queries_survive_save_markers(tmp_path: Path) -> None:
    model = make_model()
    rec = SimulationRecorder(model, tmp_path, stream=False)
    run_steps(rec, model, 2)
    rec.save("a.json")
    assert rec.get_events_by_type(SIMULATION_END)[-1] is rec.events[-1]
    rec.record_event("plan", {"text": "more"}, agent_id=0)
    assert rec.get_events_by_type(SIMULATION_END) == []
    assert [e for e in rec.events if e.event_type == SIMULATION_END] == []
    assert rec.get_events_by_step(2) == [e for e in rec.events if e.step == 2]


def test_export_agent_memory_shape(tmp_path: Path) -> None:
    model = make_model()
    with SimulationRecorder(model, tmp_path) as rec:
        run_steps(rec, model, 2)
    memory = rec.export_agent_memory(1)
    assert set(memory) == {"agent_id", "events", "summary"}
    assert memory["agent_id"] == 1
    assert len(memory["events"]) == 4
    assert set(memory["events"][0]) == set(SimulationEvent.__dataclass_fields__)
    summary = memory["summary"]
    assert set(summary) == {
        "total_events",
        "event_types",
        "active_steps",
        "first_event",
        "last_event",
    }
    assert summary["total_events"] == 4
    assert set(summary["event_types"]) == {"plan", ORDER}
    assert set(summary["active_steps"]) == {1, 2}
    assert summary["first_event"] == memory["events"][0]["timestamp"]
    assert rec.export_agent_memory(99)["summary"]["first_event"] is None


def test_get_stats_keys(tmp_path: Path) -> None:
    model = make_model()
    with SimulationRecorder(model, tmp_path) as rec:
        run_steps(rec, model, 2)
    stats = rec.get_stats()
    assert set(stats) == STATS_KEYS
    assert stats["total_events"] == len(rec.events) == 1 + 2 * 8
    assert stats["unique_agents"] == 3
    assert stats["simulation_steps"] == 2
    assert stats["events_per_agent"] == {0: 4, 1: 4, 2: 4}


# -- recorder: single-file export --------------------------------------------------------------


def test_save_writes_the_seed_format_with_one_simulation_end(tmp_path: Path) -> None:
    model = make_model(max_steps=5)
    rec = SimulationRecorder(model, tmp_path, simulation_id="sid")
    run_steps(rec, model, 2)
    first = rec.save("snap.json")
    second = rec.save("snap.json")
    assert first == second == tmp_path / "snap.json"
    data = json.loads(second.read_text(encoding="utf-8"))
    assert set(data) == {"metadata", "events", "agent_summaries"}
    assert set(data["metadata"]) >= EXPORT_METADATA_KEYS
    meta = data["metadata"]
    assert meta["total_events"] == 17 and meta["total_steps"] == 2 and meta["total_agents"] == 3
    assert meta["completion_status"] == "interrupted"
    assert meta["model_class"] == "SimpleNamespace"
    types = [e["event_type"] for e in data["events"]]
    assert types.count(SIMULATION_END) == 1 and types[-1] == SIMULATION_END
    end = data["events"][-1]
    assert end["content"] == {"status": "interrupted", "final_step": 2, "total_events": 17}
    assert end["event_id"] == "sid_000017"
    assert set(data["agent_summaries"]) == {"0", "1", "2"}
    # The checkpoint marker never reaches the stream.
    rec.flush()
    assert rec.jsonl_path is not None
    assert SIMULATION_END not in rec.jsonl_path.read_text()
    # Recording goes on after a save: the marker is replaced, ids stay contiguous.
    nxt = rec.record_event("plan", {"text": "later"}, agent_id=0)
    assert nxt.event_id == "sid_000017"
    data = json.loads(rec.save("snap2.json").read_text(encoding="utf-8"))
    assert [e["event_type"] for e in data["events"]].count(SIMULATION_END) == 1
    rec.close()


def test_save_at_the_last_step_is_completed_and_one_step_short_is_interrupted(tmp_path: Path) -> None:
    """The status a save infers without an explicit end: the run reached max_steps or it did not."""
    for ran, status in ((3, "completed"), (2, "interrupted")):
        model = make_model(max_steps=3)
        rec = SimulationRecorder(model, tmp_path / str(ran))
        run_steps(rec, model, ran)
        meta = json.loads(rec.save("x.json").read_text(encoding="utf-8"))["metadata"]
        assert (meta["total_steps"], meta["completion_status"]) == (ran, status)
        rec.close()


def test_record_simulation_end_ends_the_stream_and_save_keeps_it(tmp_path: Path) -> None:
    model = make_model(max_steps=2)
    rec = SimulationRecorder(model, tmp_path)
    run_steps(rec, model, 2)
    end = rec.record_simulation_end("completed")
    assert end.content == {"status": "completed", "final_step": 2, "total_events": 17}
    with pytest.raises(RuntimeError, match="ended"):
        rec.record_event("plan", {"text": "too late"})
    for name in ("a.json", "b.json"):
        data = json.loads(rec.save(name).read_text(encoding="utf-8"))
        types = [e["event_type"] for e in data["events"]]
        assert types.count(SIMULATION_END) == 1 and types[-1] == SIMULATION_END
        assert data["events"][-1] == end.to_dict()
        assert data["metadata"]["total_events"] == 17
        assert data["metadata"]["completion_status"] == "completed"
    rec.close()
    assert rec.jsonl_path is not None
    lines = read_lines(rec.jsonl_path)
    assert [line["event_type"] for line in lines].count(SIMULATION_END) == 1
    assert lines[-1]["event_type"] == SIMULATION_END


def test_save_default_filename_is_unique(tmp_path: Path) -> None:
    rec = SimulationRecorder(make_model(), tmp_path, stream=False)
    rec.record_event("plan", {"text": "x"})
    a, b = rec.save(), rec.save()
    assert a != b and a.exists() and b.exists()
    assert a.name.startswith(f"simulation_{rec.simulation_id}_") and a.suffix == ".json"


def test_pickle_and_unknown_formats_are_refused(tmp_path: Path) -> None:
    rec = SimulationRecorder(make_model(), tmp_path, stream=False)
    rec.record_event("plan", {"text": "x"})
    with pytest.raises(ValueError, match="pickle recordings are not supported"):
        rec.save(format="pickle")
    with pytest.raises(ValueError, match="Format must be 'json' or 'pickle', got 'yaml'"):
        rec.save(format="yaml")
    assert not tmp_path.joinpath("x").exists()
    assert list(tmp_path.iterdir()) == []


def test_streaming_recorder_keeps_no_event_by_default(tmp_path: Path) -> None:
    """A long run's memory must not grow with its length: the stream is the only copy."""
    model = make_model()
    rec = SimulationRecorder(model, tmp_path)
    assert rec.keep_in_memory is False
    run_steps(rec, model, 80)
    # Nothing per event stays in memory; the step index is bounded.
    assert rec._events == [] and rec._by_agent == rec._by_type == rec._by_step == {}
    assert len(rec._step_ranges) <= 64
    rec.close()


def same(events: list[SimulationEvent]) -> list[tuple[Any, ...]]:
    """Events without their wall-clock timestamps (two recorders record at different times)."""
    return [(e.event_id, e.step, e.agent_id, e.event_type, e.content, e.metadata) for e in events]


def test_queries_read_the_stream_back_when_events_are_not_kept(tmp_path: Path) -> None:
    model = make_model(max_steps=5)
    streamed = SimulationRecorder(model, tmp_path, run_name="streamed", simulation_id="s")
    kept = SimulationRecorder(model, output_dir=tmp_path, stream=False, simulation_id="s")
    assert kept.keep_in_memory is True
    for rec in (streamed, kept):
        model.steps = 0
        run_steps(rec, model, 3)
        rec.record_event("plan", {"text": "late"}, agent_id=1, step=2)  # step 2 again
    assert streamed.jsonl_path is not None
    assert [e.to_dict() for e in streamed.events] == read_lines(streamed.jsonl_path)
    assert same(streamed.events) == same(kept.events)
    for agent_id in (0, 1, 7):
        assert same(streamed.get_agent_events(agent_id)) == same(kept.get_agent_events(agent_id))
        memory = streamed.export_agent_memory(agent_id)
        assert memory["events"] == [e.to_dict() for e in streamed.get_agent_events(agent_id)]
        assert memory["summary"]["total_events"] == len(memory["events"])
    for event_type in ("plan", ORDER, STEP_END, "nothing"):
        assert same(streamed.get_events_by_type(event_type)) == same(
            kept.get_events_by_type(event_type)
        )
    for step in range(5):  # 2 is scattered: read by a scan; 1 and 3 from their byte ranges
        assert same(streamed.get_events_by_step(step)) == same(kept.get_events_by_step(step))
    assert 3 in streamed._step_ranges and 2 not in streamed._step_ranges
    stats = streamed.get_stats()
    assert set(stats) == STATS_KEYS and stats["events_per_agent"] == {0: 6, 1: 7, 2: 6}
    # A save() marker is seen by the queries until the next event, as in memory.
    data = json.loads(streamed.save("out.json").read_text(encoding="utf-8"))
    assert len(data["events"]) == 27 and data["events"][-1]["event_type"] == SIMULATION_END
    assert streamed.events[-1].event_type == SIMULATION_END
    assert [e.event_type for e in streamed.get_events_by_step(3)][-1] == SIMULATION_END
    streamed.record_event("plan", {"text": "after"}, agent_id=0)
    assert streamed.get_events_by_type(SIMULATION_END) == []
    streamed.close()
    assert streamed.events[-1].content == {"text": "after"}  # readable after close too


def test_keep_events_is_an_alias_of_keep_in_memory(tmp_path: Path) -> None:
    rec = SimulationRecorder(make_model(), tmp_path, keep_events=True)
    rec.record_event("plan", {"text": "x"}, agent_id=1)
    assert rec.keep_in_memory is True and rec.events is rec.events and len(rec.events) == 1
    rec.close()
    with pytest.raises(ValueError, match="disagree"):
        SimulationRecorder(make_model(), tmp_path, keep_events=True, keep_in_memory=False)


def test_auto_save_interval_writes_snapshots(tmp_path: Path) -> None:
    rec = SimulationRecorder(make_model(), tmp_path, simulation_id="auto", auto_save_interval=5)
    for i in range(12):
        rec.record_event("plan", {"text": str(i)})
    rec.close()
    snaps = sorted(p.name for p in tmp_path.glob("autosave_*.json"))
    assert snaps == ["autosave_auto_10.json", "autosave_auto_5.json"]
    assert rec.jsonl_path is not None and len(read_lines(rec.jsonl_path)) == 12


# -- recorder: secrets -------------------------------------------------------------------------


def test_secrets_are_redacted_in_llm_calls_and_config(tmp_path: Path) -> None:
    request: dict[str, Any] = {
        "messages": [{"role": "user", "content": "hi", "extra": {"X-Api-Key": "sk-3"}}],
        "headers": {"Authorization": "Bearer sk-1", "Accept": "json"},
        "API_KEY": "sk-2",
    }
    config: dict[str, Any] = {
        "models": {"default": {"model": "gpt", "api_key": "sk-4", "x-goog-api-key": "g"}}
    }
    with SimulationRecorder(make_model(), tmp_path) as rec:
        rec.record_model_event(SIMULATION_START, {"scenario": config})
        call = rec.record_event(LLM_CALL, {"request": request, "model": "gpt"}, agent_id=1)
        plain = rec.record_event("plan", {"text": "x", "api_key": "sk-5"}, metadata={"key": "k"})
    assert call.content["request"]["headers"] == {"Authorization": REDACTED, "Accept": "json"}
    assert call.content["request"]["API_KEY"] == REDACTED
    assert call.content["request"]["messages"][0]["extra"]["X-Api-Key"] == REDACTED
    assert rec.header is not None
    assert rec.header["scenario"]["models"]["default"]["api_key"] == REDACTED
    assert plain.content["api_key"] == REDACTED and plain.metadata["key"] == REDACTED
    # The caller's dicts are left alone (the LLM client still needs its key).
    assert request["headers"]["Authorization"] == "Bearer sk-1"
    assert config["models"]["default"]["api_key"] == "sk-4"
    assert rec.jsonl_path is not None
    text = rec.jsonl_path.read_text()
    assert "sk-" not in text and '"g"' not in text


def test_an_llm_call_naming_no_secret_key_is_streamed_without_a_walk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mesa_llm.recording.recorder as recorder_module

    def walk(obj: Any) -> Any:
        raise AssertionError("walked an llm_call that names no secret key")

    content = {"request": {"messages": [{"role": "user", "content": 'say "key": 1 and "API_KEY":'}], "tools": [{"monkey": 1}]}}
    with SimulationRecorder(make_model(), tmp_path) as rec:
        monkeypatch.setattr(recorder_module, "redact", walk)
        rec.record_event(LLM_CALL, content, agent_id=1)
        monkeypatch.undo()
    assert rec.jsonl_path is not None
    assert read_lines(rec.jsonl_path)[-1]["content"] == content


@pytest.mark.parametrize("key", ["key", "KEY", "\u212aey", "Authorization", "x-goog-api-key"])  # \u212a: Kelvin sign
def test_a_secret_key_anywhere_in_an_llm_call_is_blanked_in_the_stream(tmp_path: Path, key: str) -> None:
    content = {"request": {"messages": [{"role": "user", "content": "hi", "extra": ({key: "sk-9"},)}]}}
    with SimulationRecorder(make_model(), tmp_path) as rec:
        rec.record_event(LLM_CALL, content, agent_id=1)
        rec.record_event(LLM_CALL, {"request": {}}, agent_id=1, metadata={"deep": [{key: "sk-8"}]})
    assert rec.jsonl_path is not None
    lines = read_lines(rec.jsonl_path)[-2:]
    assert [line["content"] for line in lines] == [json.loads(json.dumps(redact(content))), {"request": {}}]
    assert lines[0]["content"]["request"]["messages"][0]["extra"] == [{key: REDACTED}]
    assert lines[1]["metadata"] == {"deep": [{key: REDACTED}]}
    assert "sk-" not in rec.jsonl_path.read_text()


def test_redact_returns_the_same_object_without_secrets() -> None:
    obj = {"a": [1, {"b": 2}], "c": ("d",)}
    assert redact(obj) is obj
    assert redact([{"Key": 1}]) == [{"Key": REDACTED}]
    assert redact(({"authorization": 1},)) == ({"authorization": REDACTED},)


# -- reader ------------------------------------------------------------------------------------


def record_run(tmp_path: Path, n_steps: int = 3, end: bool = True) -> SimulationRecorder:
    model = make_model()
    rec = SimulationRecorder(model, tmp_path, run_name="recording")
    run_steps(rec, model, n_steps)
    if end:
        rec.record_simulation_end("completed")
    rec.close()
    return rec


def test_reader_round_trip(tmp_path: Path) -> None:
    rec = record_run(tmp_path)
    assert rec.jsonl_path is not None
    loaded = load_events(rec.jsonl_path)
    assert isinstance(loaded, LoadedRecording)
    assert loaded.events == [e.to_dict() for e in rec.events]
    assert loaded.header == {"scenario": {"name": "toy"}, "seed": 7}
    assert loaded.truncated is False and loaded.warning is None
    assert loaded.complete_steps == 3
    assert loaded.metadata is None


def test_reader_corrupt_middle_line_is_an_error(tmp_path: Path) -> None:
    rec = record_run(tmp_path)
    assert rec.jsonl_path is not None
    lines = rec.jsonl_path.read_text().splitlines(keepends=True)
    lines[2] = lines[2][:20] + "\n"
    rec.jsonl_path.write_text("".join(lines))
    with pytest.raises(RecordingError, match=r"recording\.jsonl: line 3 is corrupt"):
        load_events(rec.jsonl_path)


def test_reader_non_event_line_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"event_type": "plan", "step": 0}\n[1, 2]\n')
    with pytest.raises(RecordingError, match="line 2 is not an event"):
        load_events(path)


def test_reader_cut_last_line_drops_the_incomplete_step(tmp_path: Path) -> None:
    rec = record_run(tmp_path, n_steps=3, end=False)
    assert rec.jsonl_path is not None
    # Cut during step 3: keep its step_start and two events, then half a line.
    recorded = [e.to_dict() for e in rec.events]  # read back from the stream before the cut
    lines = rec.jsonl_path.read_text().splitlines(keepends=True)
    step3_start = next(
        i for i, line in enumerate(lines) if '"step_start"' in line and '"step":3' in line
    )
    cut = lines[: step3_start + 3] + [lines[step3_start + 3][:15]]
    rec.jsonl_path.write_text("".join(cut))
    loaded = load_events(rec.jsonl_path)
    assert loaded.truncated is True
    assert loaded.complete_steps == 2
    assert loaded.events == recorded[:step3_start]
    assert loaded.events[-1]["event_type"] == STEP_END
    assert all(e["step"] <= 2 for e in loaded.events)
    assert loaded.warning is not None
    assert f"the last line ({len(cut)}) is incomplete" in loaded.warning
    assert "cut during step 3" in loaded.warning and "steps 1-2 are intact" in loaded.warning
    assert loaded.warning.startswith("recording.jsonl: ")


def test_reader_missing_simulation_end_is_truncated(tmp_path: Path) -> None:
    model = make_model()
    rec = SimulationRecorder(model, tmp_path)
    run_steps(rec, model, 2)
    model.steps += 1
    rec.record_model_event(STEP_START, {"step": 3})
    rec.close()
    assert rec.jsonl_path is not None
    loaded = load_events(rec.jsonl_path)
    assert loaded.truncated is True and loaded.complete_steps == 2
    assert loaded.events[-1]["event_type"] == STEP_END
    assert loaded.warning is not None and "no simulation_end" in loaded.warning


def test_reader_refuses_pickle_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "old.bin"
    path.write_bytes(b"\x80\x04\x95\x00\x00")
    with pytest.raises(RecordingError, match="pickle"):
        load_events(path)
    with pytest.raises(RecordingError, match="no such recording file"):
        load_events(tmp_path / "missing.jsonl")


def test_reader_loads_the_json_export(tmp_path: Path) -> None:
    rec = record_run(tmp_path)
    exported = rec.save("export.json")
    loaded = load_events(exported)
    assert loaded.truncated is False and loaded.warning is None
    assert loaded.events == [e.to_dict() for e in rec.events]
    assert loaded.header == {"scenario": {"name": "toy"}, "seed": 7}
    assert loaded.complete_steps == 3
    assert loaded.metadata is not None and loaded.metadata["total_events"] == len(rec.events) - 1
    # Detected by content too, whatever the suffix.
    renamed = tmp_path / "export.txt"
    renamed.write_bytes(exported.read_bytes())
    assert load_events(renamed).events == loaded.events


def test_reader_bad_json_export_names_the_position(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "metadata": {,\n')
    with pytest.raises(RecordingError, match=r"bad\.json: not valid JSON at line 2"):
        load_events(path)


def test_reader_without_step_markers_drops_the_last_step_when_cut(tmp_path: Path) -> None:
    model = make_model()
    rec = SimulationRecorder(model, tmp_path)
    for step in (1, 2, 3):
        model.steps = step
        rec.record_event("plan", {"text": str(step)}, agent_id=random.Random(step).randint(0, 2))
    rec.close()
    assert rec.jsonl_path is not None
    loaded = load_events(rec.jsonl_path)
    assert loaded.truncated is True and loaded.complete_steps == 2
    assert [e["step"] for e in loaded.events] == [1, 2]


def test_reader_detects_json_lines_in_a_json_file(tmp_path: Path) -> None:
    rec = record_run(tmp_path)
    assert rec.jsonl_path is not None
    renamed = tmp_path / "stream.json"
    renamed.write_bytes(rec.jsonl_path.read_bytes())
    loaded = load_events(renamed)
    assert loaded.events == [e.to_dict() for e in rec.events] and not loaded.truncated
