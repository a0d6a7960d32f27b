"""``replay --verify`` finds where a recording and its replay part: a changed request hash, an
event the replay does not produce, an event the recording lacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mesa_llm.cli import app
from mesa_llm.llm.testing import ScriptedChatModel
from mesa_llm.model import MarketModel
from mesa_llm.replay import _first_difference, replay
from mesa_llm.scenario import load_scenario
from tests.support.chat_scripts import sensible


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A three-step run of LLM and ZI traders answered by an in-process model."""
    out = tmp_path_factory.mktemp("orig")
    spec = load_scenario("llm_double_auction", overrides=["steps=3"])
    model = MarketModel(spec, output_dir=out, chat_model=ScriptedChatModel(sensible, name="scripted/sensible"))
    model.run()
    assert model.recording_path is not None
    return model.recording_path


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def test_the_untouched_recording_verifies(recording: Path, tmp_path: Path) -> None:
    result = replay(recording, verify=True, output_dir=tmp_path)
    assert result.divergence is None and result.final_state_matches is True


def test_a_changed_request_hash_is_a_divergence_at_that_call(recording: Path, tmp_path: Path) -> None:
    events = _lines(recording)
    call = next(e for e in events if e["event_type"] == "llm_call" and e["step"] == 2)
    call["content"]["request_hash"] = "0" * 64
    result = replay(_write(tmp_path / "hash.jsonl", events), verify=True, output_dir=tmp_path / "r")
    assert result.divergence is not None
    assert (result.divergence.step, result.divergence.agent_id) == (2, call["agent_id"])
    assert result.divergence.event_type == "llm_call"
    assert "request differs from the recorded one" in result.divergence.detail
    assert result.mismatched_requests == 1
    # without --verify the replay goes on, counting the mismatch
    loose = replay(tmp_path / "hash.jsonl", verify=False, output_dir=tmp_path / "loose")
    assert loose.mismatched_requests == 1


def test_an_event_missing_from_the_recording_is_a_divergence(recording: Path, tmp_path: Path) -> None:
    events = _lines(recording)
    index = next(i for i, e in enumerate(events) if e["event_type"] == "clearing" and e["step"] == 2)
    del events[index]
    result = replay(_write(tmp_path / "missing.jsonl", events), verify=True, output_dir=tmp_path / "r")
    assert result.divergence is not None and result.divergence.step == 2
    assert "the replay produced clearing" in result.divergence.detail


def test_an_extra_event_in_the_recording_is_a_divergence(recording: Path, tmp_path: Path) -> None:
    events = _lines(recording)
    end = next(i for i, e in enumerate(events) if e["event_type"] == "step_end" and e["step"] == 2)
    extra = {**events[end], "event_id": "extra", "event_type": "message", "content": {"text": "hi"}}
    events.insert(end + 1, extra)  # recorded in step 2, after its end
    path = _write(tmp_path / "extra.jsonl", events)
    result = replay(path, verify=True, output_dir=tmp_path / "r")
    assert result.divergence is not None
    assert (result.divergence.step, result.divergence.event_type, result.divergence.event_id) == (2, "message", "extra")
    assert result.divergence.detail == "the recording has an event the replay did not produce"
    # the CLI says where and exits non-zero, without a traceback
    out = CliRunner().invoke(app, ["replay", str(path), "--verify", "--out", str(tmp_path / "cli")], env={"COLUMNS": "300"})
    assert out.exit_code != 0 and "step 2" in out.output and "Traceback" not in out.output


def test_first_difference_names_each_kind_of_divergence() -> None:
    a = {"event_type": "order", "agent_id": 1, "event_id": "e1", "content": {"price": 1.0, "latency_s": 0.3}}
    b = {"event_type": "trade", "agent_id": None, "event_id": "e2", "content": {"price": 1.0}}
    same = {**a, "content": {"price": 1.0, "latency_s": 9.9}}  # latency is volatile
    assert _first_difference(1, [a], [same]) is None
    extra = _first_difference(1, [a], [same, b])
    assert extra is not None and extra.detail == "the replay produced an event the recording does not have"
    assert extra.event_type == "trade"
    missing = _first_difference(1, [a, b], [same])
    assert missing is not None and missing.detail == "the recording has an event the replay did not produce"
    assert missing.event_id == "e2"
    changed = _first_difference(1, [a], [{**a, "content": {"price": 2.0}}])
    assert changed is not None and changed.detail.startswith("content differs in price")
    other = _first_difference(1, [a], [b])
    assert other is not None and other.detail == "the replay produced trade (agent None) instead"
