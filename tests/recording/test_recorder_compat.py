"""Users of the existing mesa-llm move over unchanged: its recorder's module path, counters,
message content, output folder and format errors, on top of our streaming recorder (which still
keeps no event in memory by default)."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace
from typing import Any

import pytest

from mesa_llm.recording import SimulationEvent as OurEvent
from mesa_llm.recording import SimulationRecorder as OurRecorder


def _model(steps: int = 0) -> Any:
    return SimpleNamespace(steps=steps, agents=[1, 2], max_steps=10)


def _stream(rec: OurRecorder) -> list[dict[str, Any]]:
    rec.flush()
    assert rec.jsonl_path is not None
    return [json.loads(line) for line in rec.jsonl_path.read_text().splitlines()]


def test_the_mesa_llm_module_path_gives_our_recorder_and_event():
    from mesa_llm.recording.simulation_recorder import SimulationEvent, SimulationRecorder

    assert SimulationRecorder is OurRecorder and SimulationEvent is OurEvent
    assert [f.name for f in dataclasses.fields(SimulationEvent)] == [
        "event_id", "timestamp", "step", "agent_id", "event_type", "content", "metadata",
    ]


def test_events_since_save_counts_every_event_and_restarts_at_each_autosave(tmp_path):
    plain = OurRecorder(_model(), tmp_path / "plain")
    assert plain.events_since_save == 0
    for i in range(3):
        plain.record_event("plan", {"text": str(i)})
    assert plain.events_since_save == 3  # counted without auto-save too

    auto = OurRecorder(_model(), tmp_path / "auto", simulation_id="ab12cd34", auto_save_interval=2)
    counts = []
    for i in range(5):
        auto.record_event("plan", {"text": str(i)})
        counts.append(auto.events_since_save)
    assert counts == [1, 0, 1, 0, 1]
    snapshots = sorted(p.name for p in (tmp_path / "auto").glob("autosave_*.json"))
    assert snapshots == ["autosave_ab12cd34_2.json", "autosave_ab12cd34_4.json"]


@pytest.mark.parametrize(
    ("content", "recipients", "expected_ids"),
    [
        ("hello", [4, 5], [4, 5]),
        ({"text": "hi", "priority": "high"}, [4], [4]),
        ({"text": "hi", "recipient_ids": [9]}, None, []),  # a dict is wrapped whatever its keys
        (["a", "b"], None, []),
        (None, [], []),
    ],
    ids=["text", "dict", "dict-with-ids", "list", "none"],
)
def test_a_message_is_recorded_as_message_and_recipient_ids(tmp_path, content, recipients, expected_ids):
    rec = OurRecorder(_model(), tmp_path)
    event = rec.record_event("message", content, agent_id=3, recipient_ids=recipients)
    expected = {"message": content, "recipient_ids": expected_ids}
    assert event.content == expected
    # what the stream holds and what the queries read back, not only the returned object
    assert _stream(rec)[0]["content"] == expected
    assert [e.content for e in rec.get_events_by_type("message")] == [expected]


def test_other_content_keeps_the_seed_formatting(tmp_path):
    rec = OurRecorder(_model(), tmp_path)
    assert rec.record_event("plan", "think").content == {"data": "think"}
    assert rec.record_event("plan", {"text": "x"}).content == {"text": "x"}


def test_the_models_own_messages_keep_the_recording_contract(small_auction, tmp_path):
    from mesa_llm.actions import Broadcast
    from tests.support.scripted import Scripted, scripted_model
    from tests.support.scripted import events as _events

    model = scripted_model(small_auction, tmp_path, {})
    Scripted.script = {1: [Broadcast(text="selling cheap")]}
    model.step()
    model.finish()
    messages = [e["content"] for e in _events(model) if e["event_type"] == "message"]
    assert len(messages) == 1
    assert messages[0]["recipient_ids"] == [] and messages[0]["text"] == "selling cheap"
    assert messages[0]["channel"] == "broadcast" and "message" not in messages[0]


def test_the_output_folder_is_made_at_construction_with_nothing_in_it(tmp_path):
    out = tmp_path / "a" / "b" / "c"
    rec = OurRecorder(_model(), out)
    assert out.is_dir() and list(out.iterdir()) == []
    assert rec.output_dir == out
    rec.record_event("plan", {"text": "x"})
    assert [p.name for p in out.iterdir()] == [f"simulation_{rec.simulation_id}.jsonl"]


def test_a_folder_that_cannot_be_made_fails_at_construction(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError):
        OurRecorder(_model(), blocker / "sub")
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("fmt", ["xml", "yaml", "JSON", ""])
def test_an_unknown_format_gets_the_mesa_llm_message_and_writes_nothing(tmp_path, fmt):
    rec = OurRecorder(_model(), tmp_path / "out")
    rec.record_event("plan", {"text": "x"})
    with pytest.raises(ValueError, match="Format must be 'json' or 'pickle'") as caught:
        rec.save("x.out", format=fmt)
    assert repr(fmt) in str(caught.value) and "\n" not in str(caught.value)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"simulation_{rec.simulation_id}.jsonl"]


def test_pickle_is_refused_whatever_the_seed_did(tmp_path):
    rec = OurRecorder(_model(), tmp_path)
    with pytest.raises(ValueError, match="pickle recordings are not supported"):
        rec.save("x.pkl", format="pickle")
    assert not (tmp_path / "x.pkl").exists()


def test_the_seed_api_holds_while_no_event_is_kept_in_memory(tmp_path):
    model = _model(steps=1)
    rec = OurRecorder(model, tmp_path)
    rec.record_event("observation", {"data": "o"}, agent_id=7)
    model.steps = 2
    rec.record_event("message", "hi", agent_id=7, recipient_ids=[8])
    rec.record_model_event("step_end", {"step": 2})
    assert rec._events == []  # the memory bound: a streaming recorder keeps nothing
    assert [e.event_type for e in rec.events] == ["observation", "message", "step_end"]
    assert [e.step for e in rec.get_events_by_step(2)] == [2, 2]
    assert rec.export_agent_memory(7)["summary"]["total_events"] == 2
    assert rec.get_stats()["total_events"] == 3 and rec.events_since_save == 3
    data = json.loads(rec.save("run.json").read_text())
    assert [e["event_type"] for e in data["events"]][-1] == "simulation_end"
    assert data["events"][1]["content"] == {"message": "hi", "recipient_ids": [8]}
    assert data["agent_summaries"]["7"]["total_events"] == 2


def test_jsonl_storage_mode_streams_from_construction_and_keeps_only_the_last_events(tmp_path):
    model = _model()
    rec = OurRecorder(model, tmp_path, storage_mode="jsonl", max_events_in_memory=2)
    assert rec.events_stream_path == tmp_path / f"simulation_{rec.simulation_id}_events.jsonl"
    assert rec.events_stream_path.exists() and rec.events == []
    assert rec.storage_mode == rec.simulation_metadata["storage_mode"] == "jsonl"
    for step in (1, 2, 3, 4):
        model.steps = step
        rec.record_event("plan", {"text": str(step)}, agent_id=step % 2)
    assert [e.step for e in rec.events] == [3, 4]  # bounded in memory
    assert rec.total_events_recorded == 4
    assert [e.step for e in rec.iter_events()] == [1, 2, 3, 4]  # the whole history on disk
    assert [e.step for e in rec.get_agent_events(1)] == [1, 3]
    assert rec.get_stats()["total_events"] == 4
    data = json.loads(rec.save("all.json").read_text())
    assert data["metadata"]["storage_mode"] == "jsonl" and len(data["events"]) == 5


def test_memory_storage_mode_keeps_everything_and_writes_no_stream(tmp_path):
    rec = OurRecorder(_model(), tmp_path, storage_mode="memory")
    rec.record_event("plan", {"text": "x"})
    assert rec.jsonl_path is None and list(tmp_path.iterdir()) == []
    assert rec.simulation_metadata["storage_mode"] == "memory"
    assert [e.content for e in rec.events] == [{"text": "x"}]


def test_our_default_is_a_stream_that_keeps_nothing(tmp_path):
    rec = OurRecorder(_model(), tmp_path)
    assert rec.simulation_metadata["storage_mode"] == "jsonl" and rec.max_events_in_memory is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"storage_mode": "sqlite"}, "storage_mode must be 'memory' or 'jsonl', got 'sqlite'"),
        ({"storage_mode": "memory", "max_events_in_memory": 2}, "needs a streaming recorder"),
        ({"max_events_in_memory": -1}, "a count of 0 or more"),
    ],
)
def test_storage_settings_that_make_no_sense_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        OurRecorder(_model(), tmp_path, **kwargs)
