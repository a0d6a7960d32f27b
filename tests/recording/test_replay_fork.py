"""Forks that answer their live calls, replays of runs with failed calls, and where replays go.

These tests talk to the local fake OpenAI server, so they live apart from ``test_replay.py``,
whose autouse fixture blocks every socket.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mesa_llm.analysis import load_recordings
from mesa_llm.cli import app
from mesa_llm.llm.testing import ScriptedChatModel
from mesa_llm.model import MarketModel
from mesa_llm.replay import replay
from mesa_llm.scenario import load_scenario
from tests.fake_openai_server import FakeOpenAIServer
from tests.support.chat_scripts import sensible, trader

runner = CliRunner()


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class _FailingFirstCalls(FakeOpenAIServer):
    """Answers HTTP 500 to the run's first ``n`` chat requests (a tool-mode probe, which offers
    only the tool ``ping``, is answered normally), then as the fake server does."""

    def __init__(self, n: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._left = n
        self._left_lock = threading.Lock()

    def scripted_reply(self, request: dict[str, Any]) -> tuple[int, Any, dict[str, str]] | None:
        names = [t.get("function", {}).get("name") for t in request.get("tools") or []]
        if names == ["ping"]:
            return None
        with self._left_lock:
            if self._left <= 0:
                return None
            self._left -= 1
        return 500, {"error": {"message": "server error", "type": "server_error", "code": "500"}}, {}


def _scripted_run(folder: Path, steps: int = 4) -> Path:
    """A short run of LLM and ZI traders answered in-process (fast, no network)."""
    spec = load_scenario("llm_double_auction", overrides=[f"steps={steps}"])
    model = MarketModel(spec, output_dir=folder, chat_model=ScriptedChatModel(sensible, name="scripted/sensible"))
    model.run()
    assert model.recording_path is not None
    return model.recording_path


def test_fork_against_a_server_answers_every_live_call_and_names_its_parent(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    source = _scripted_run(tmp_path)
    with FakeOpenAIServer(responder=trader) as server:
        out = runner.invoke(
            app,
            ["replay", str(source), "--until-step", "2", "--then-model", "openai/fake-model",
             "--api-base", server.base_url, "--out", str(tmp_path), "--json"],
        )
        requests = server.request_count
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout.strip().splitlines()[-1])
    fork = Path(result["recording"])
    assert fork.parent == tmp_path / "replays"
    events = _events(fork)
    live = [e["content"] for e in events if e["event_type"] == "llm_call" and e["step"] > 2]
    assert live, "the fork made no live call"
    assert [c["error"] for c in live] == [None] * len(live)
    assert {c["model"] for c in live} == {"openai/fake-model"}
    # one HTTP request per live call: none was retried or answered otherwise
    assert requests == len(live) == result["live_llm_calls"]
    assert result["failed_live_llm_calls"] == 0
    parent = events[0]["content"]["parent"]
    assert parent["recording"] == str(source) and parent["kind"] == "fork" and parent["fork_step"] == 2
    assert parent["simulation_id"] == _events(source)[0]["event_id"].rsplit("_", 1)[0]
    assert parent["then_model"] == "openai/fake-model"


def test_a_fork_whose_live_calls_fail_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    source = _scripted_run(tmp_path, steps=3)
    with FakeOpenAIServer(responder=trader) as server:
        server.fail_always(status=400)  # not retried: fails at once
        result = replay(
            source, until_step=2, then_model="openai/fake-model", api_base=server.base_url, output_dir=tmp_path
        )
    assert result.live_calls > 0 and result.failed_live_calls == result.live_calls
    assert result.to_dict()["failed_live_llm_calls"] == result.live_calls


def test_verify_passes_on_a_recording_holding_a_call_that_failed_after_retries(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    spec = load_scenario(
        "llm_double_auction",
        overrides=["steps=2", "populations.0.count=1", "populations.1.count=0", "populations.0.params.plan_every=0"],
    )
    with _FailingFirstCalls(2, responder=trader) as server:  # both attempts of the first call
        spec.llm = spec.llm.model_copy(update={"api_base": server.base_url, "max_attempts": 2})
        model = MarketModel(spec, output_dir=tmp_path, llm_model="openai/fake-model")
        model.run()
    assert model.recording_path is not None
    calls = [e["content"] for e in _events(model.recording_path) if e["event_type"] == "llm_call"]
    failed = [c for c in calls if c["error"]]
    assert len(failed) == 1 and failed[0]["attempts"] == 2 and failed[0]["error"].endswith("(after 2 attempts)")
    assert any(c["error"] is None for c in calls)  # the run went on after the failure
    # outside the server: the replay answers everything from the recording
    out = runner.invoke(app, ["replay", str(model.recording_path), "--verify", "--out", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "identical to the recording" in out.stdout
    replayed = next((tmp_path / "replays").glob("*.jsonl"))
    errors = [e["content"]["error"] for e in _events(replayed) if e["event_type"] == "llm_call"]
    assert errors == [c["error"] for c in calls]


def test_replays_and_forks_are_not_runs_of_the_folder_unless_forks_are_asked_for(tmp_path):
    source = _scripted_run(tmp_path, steps=3)
    out = runner.invoke(app, ["replay", str(source), "--out", str(tmp_path)])
    assert out.exit_code == 0, out.output
    fork = replay(
        source,
        until_step=1,
        then_model="scripted/other",
        live_chat_model=lambda agent_id, name: ScriptedChatModel(sensible, name=name),
        output_dir=tmp_path,
    ).recording
    assert fork is not None and fork.parent == tmp_path / "replays"
    assert sorted(p.name for p in tmp_path.glob("*.jsonl")) == [source.name]
    assert [r.run_id for r in load_recordings(tmp_path)] == [source.stem]
    with_forks = load_recordings(tmp_path, include_forks=True)
    assert [r.run_id for r in with_forks] == [source.stem, fork.stem]
    assert with_forks[fork.stem].header["parent"]["kind"] == "fork"
    # replays and forks written next to the runs (by older versions) are recognised by their header
    replays = tmp_path / "replays"
    for path in list(replays.glob("*.jsonl")):
        shutil.move(path, tmp_path / path.name)
    shutil.rmtree(replays)
    assert len(list(tmp_path.glob("*.jsonl"))) == 3
    assert [r.run_id for r in load_recordings(tmp_path)] == [source.stem]
    assert [r.run_id for r in load_recordings(tmp_path, include_forks=True)] == [source.stem, fork.stem]


@pytest.mark.parametrize("include_forks", [False, True])
def test_a_folder_without_replays_loads_all_its_runs(tmp_path, include_forks):
    first = _scripted_run(tmp_path, steps=1)
    second = MarketModel(load_scenario("double_auction", overrides=["steps=1"]), output_dir=tmp_path)
    second.run()
    assert second.recording_path is not None
    runs = load_recordings(tmp_path, include_forks=include_forks)
    assert sorted(r.run_id for r in runs) == sorted([first.stem, second.recording_path.stem])
