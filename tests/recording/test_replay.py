"""Replays and forks: zero LLM calls, identical outcomes, divergences caught, forks recorded."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mesa_llm.cli import app
from mesa_llm.llm.testing import ScriptedChatModel
from mesa_llm.model import MarketModel
from mesa_llm.recording import load_events
from mesa_llm.replay import ReplayError, replay
from mesa_llm.scenario import load_scenario
from tests.llm_cassettes import DUMMY_API_KEY, use_cassette
from tests.support.chat_scripts import sensible, trader

runner = CliRunner()

pytestmark = pytest.mark.usefixtures("no_network")  # replays and cassettes must not connect


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _outcome(events: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    trades = [(e["step"], e["content"]) for e in events if e["event_type"] == "trade"]
    states = [(e["agent_id"], e["content"]["cash"], e["content"]["holdings"]) for e in events if e["event_type"] == "agent_state"]
    return trades, states


@pytest.fixture
def llm_recording(tmp_path) -> Path:
    """A run of LLM and ZI traders answered by an in-process model (so replay has calls to serve)."""
    spec = load_scenario("llm_double_auction", overrides=["steps=4"])
    model = MarketModel(spec, output_dir=tmp_path / "orig", chat_model=ScriptedChatModel(sensible, name="scripted/sensible"))
    model.run()
    assert model.recording_path is not None
    return model.recording_path


def test_replay_serves_every_call_from_the_recording_and_matches(llm_recording, tmp_path):
    result = replay(llm_recording, verify=True, output_dir=tmp_path / "replay")
    assert result.divergence is None and result.final_state_matches is True
    recorded = _events(llm_recording)
    assert result.replayed_calls == sum(e["event_type"] == "llm_call" for e in recorded) > 0
    assert result.live_calls == 0 and result.mismatched_requests == 0
    assert result.recording is not None
    replayed = _events(result.recording)
    assert _outcome(replayed) == _outcome(recorded)
    assert replayed[0]["content"]["parent"]["kind"] == "replay"
    assert replayed[0]["content"]["parent"]["recording"] == str(llm_recording)


def test_verify_catches_an_edited_llm_response(llm_recording, tmp_path):
    lines = llm_recording.read_text().splitlines()
    for i, line in enumerate(lines):
        event = json.loads(line)
        if event["event_type"] == "llm_call" and event["content"]["purpose"] == "act" and event["step"] == 2:
            call = event["content"]["response"]["tool_calls"][0]
            args = json.loads(call["arguments"])
            args["price"] = round(args["price"] - 7.0, 2)
            call["arguments"] = json.dumps(args)
            lines[i] = json.dumps(event)
            edited = (event["step"], event["agent_id"])
            break
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n")
    result = replay(tampered, verify=True, output_dir=tmp_path / "replay")
    assert result.divergence is not None
    assert (result.divergence.step, result.divergence.agent_id) == edited
    assert result.divergence.event_type in ("llm_call", "action", "order")
    # the CLI says where, and exits non-zero
    out = runner.invoke(app, ["replay", str(tampered), "--verify", "--out", str(tmp_path / "cli")], env={"COLUMNS": "300"})
    assert out.exit_code != 0
    assert f"step {edited[0]}" in out.output and f"agent {edited[1]}" in out.output and "Traceback" not in out.output


def test_cassette_backed_llm_run_replays_with_zero_llm_calls(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", DUMMY_API_KEY)
    spec = load_scenario(
        "llm_double_auction",
        overrides=["steps=3", "populations.0.count=1", "populations.1.count=1", "populations.0.params.plan_every=2", "populations.1.params.plan_every=2"],
    )
    with use_cassette("llm_double_auction_market", responder=trader) as session:
        spec.llm = spec.llm.model_copy(update={"api_base": session.api_base, "max_attempts": 1})
        model = MarketModel(spec, output_dir=tmp_path / "orig", llm_model="openai/fake-model")
        model.run()
    assert model.recording_path is not None
    # outside the cassette: any HTTP call would fail; the replay makes none
    result = replay(model.recording_path, verify=True, output_dir=tmp_path / "replay")
    assert result.divergence is None and result.final_state_matches is True
    assert result.replayed_calls == 10 and result.live_calls == 0
    assert _outcome(_events(result.recording)) == _outcome(_events(model.recording_path))


def test_fork_continues_live_with_another_model_and_names_its_parent(llm_recording, tmp_path):
    models_asked: list[str] = []

    def live(agent_id: int | None, name: str) -> ScriptedChatModel:
        models_asked.append(name)
        return ScriptedChatModel(sensible, name=name)

    result = replay(llm_recording, until_step=2, then_model="scripted/other", live_chat_model=live, output_dir=tmp_path / "fork")
    assert result.fork_step == 2 and result.steps == 4 and result.live_calls > 0
    assert set(models_asked) == {"scripted/other"}
    events = _events(result.recording)
    assert events[0]["content"]["parent"] == {
        "recording": str(llm_recording),
        "simulation_id": events[0]["event_id"].rsplit("_", 1)[0],
        "kind": "fork",
        "fork_step": 2,
        "then_model": "scripted/other",
        "agent_models": {},
        "agent_policies": {},
    }
    calls = [e for e in events if e["event_type"] == "llm_call"]
    assert {c["content"]["model"] for c in calls if c["step"] <= 2} == {"scripted/sensible"}
    assert {c["content"]["model"] for c in calls if c["step"] > 2} == {"scripted/other"}
    # the steps before the fork are the parent's
    parent = _events(llm_recording)
    assert [e for e in _outcome(events)[0] if e[0] <= 2] == [e for e in _outcome(parent)[0] if e[0] <= 2]


def test_fork_can_swap_one_agents_policy(llm_recording, tmp_path):
    recorded = _events(llm_recording)
    llm_ids = sorted({e["agent_id"] for e in recorded if e["event_type"] == "llm_call"})
    swapped = llm_ids[0]
    result = replay(
        llm_recording,
        until_step=1,
        agent_policies={swapped: ("zi_c", {})},
        live_chat_model=lambda agent_id, name: ScriptedChatModel(sensible, name=name),
        output_dir=tmp_path / "fork",
    )
    events = _events(result.recording)
    assert not [e for e in events if e["event_type"] == "llm_call" and e["agent_id"] == swapped and e["step"] > 1]
    assert [e for e in events if e["event_type"] == "llm_call" and e["agent_id"] != swapped and e["step"] > 1]
    assert events[0]["content"]["parent"]["agent_policies"] == {str(swapped): "zi_c"}


def test_replay_refuses_a_recording_without_header(tmp_path):
    path = tmp_path / "headless.jsonl"
    path.write_text(json.dumps({"event_id": "x_000000", "timestamp": "2026-01-01T00:00:00+00:00", "step": 1, "agent_id": None, "event_type": "step_start", "content": {"step": 1}, "metadata": {}}) + "\n")
    with pytest.raises(ReplayError, match="no simulation_start header"):
        replay(path, output_dir=tmp_path / "out")
    out = runner.invoke(app, ["replay", str(path)], env={"COLUMNS": "300"})
    assert out.exit_code != 0 and "no simulation_start header" in out.output and "Traceback" not in out.output


KILL_SCRIPT = """
import sys
from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario

spec = load_scenario("commodity_exchange", overrides=["steps=100000"])
model = MarketModel(spec, output_dir=sys.argv[1], run_name="killed")
print("started", flush=True)
model.run()
"""


def test_kill_9_mid_run_leaves_every_finished_step_loadable(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE)
    path = tmp_path / "killed.jsonl"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if path.exists() and path.read_text(errors="replace").count('"event_type":"step_end"') >= 5:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the run did not get through 5 steps in 60 s")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    loaded = load_events(path)
    assert loaded.truncated and loaded.warning and "cut" in loaded.warning
    assert loaded.complete_steps >= 5
    steps = {e["step"] for e in loaded.events if e["event_type"] == "step_end"}
    assert steps == set(range(1, loaded.complete_steps + 1))
    assert max(e["step"] for e in loaded.events) == loaded.complete_steps  # nothing of the cut step
    for step in steps:
        kinds = [e["event_type"] for e in loaded.events if e["step"] == step]
        assert kinds[0] == "step_start" and kinds[-1] == "step_end" and "observation" in kinds
    # and the cut recording still replays up to where it stops
    result = replay(path, verify=True, output_dir=tmp_path / "replay")
    assert result.divergence is None and result.steps == loaded.complete_steps


def test_replay_whose_prompt_override_is_gone_renders_the_recorded_text(tmp_path):
    """The recording holds its templates' texts: a replay needs no file (it used to read the
    override from the recorded folder, and failed once it was gone); a recording without the text
    cannot be verified, and says which template, in one line."""
    act = tmp_path / "my_act.j2"
    act.write_text("{{ observation_text }}")
    raw = load_scenario("llm_double_auction", overrides=["steps=1"]).model_dump(mode="json", exclude={"source_dir"})
    raw["populations"][0]["templates"] = {"act": "my_act.j2"}
    from tests.support.files import write_yaml

    spec = load_scenario(write_yaml(tmp_path / "s.yaml", raw))
    model = MarketModel(spec, output_dir=tmp_path / "orig", chat_model=ScriptedChatModel(sensible, name="scripted/x"))
    model.run()
    act.unlink()
    assert model.recording_path is not None
    result = replay(model.recording_path, verify=True, output_dir=tmp_path / "replay")
    assert result.divergence is None and result.final_state_matches is True and not result.notes
    lines = model.recording_path.read_text().splitlines()
    header = json.loads(lines[0])
    header["content"]["llm"].pop("prompt_texts")
    older = tmp_path / "older.jsonl"
    older.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    with pytest.raises(ReplayError, match=r"/act\.j2"):
        replay(older, verify=True, output_dir=tmp_path / "replay")
    out = runner.invoke(app, ["replay", str(older), "--verify"], env={"COLUMNS": "300"})
    assert out.exit_code != 0 and "act.j2" in out.output and "Traceback" not in out.output
