"""Fail fast on models: an unknown provider or model is one line before step 1 (litellm's own
lookup, else a one-token probe with the provider's whole message), and a fork whose new model
reaches no agent says so and exits non-zero, building nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mesa_llm.cli import app
from mesa_llm.llm.litellm_backend import model_problem
from mesa_llm.llm.testing import ScriptedChatModel, text_response, tool_call_response
from mesa_llm.llm.types import ChatRequest, ChatResponse
from mesa_llm.replay import ReplayError, replay
from mesa_llm.simulation import Simulation
from tests.fake_openai_server import FakeOpenAIServer

runner = CliRunner()
KEY = "sk-preflightsecret0123456789"


def _one_line_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


@pytest.mark.parametrize("name", ["gpt-4o-mni", "notaprovider/xyz"])
def test_an_unknown_provider_is_one_line_before_step_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    out = tmp_path / "runs"
    result = runner.invoke(
        app, ["run", "llm_double_auction", "--steps", "2", "--model", name, "--out", str(out)], env={"COLUMNS": "400"}
    )
    assert result.exit_code == 2
    line = _one_line_error(result.output)
    assert f"model {name!r}" in line and "LLM Provider NOT provided" in line
    assert f"You passed model={name}" in line and "docs.litellm.ai/docs/providers" in line  # untruncated
    assert not out.exists() or not list(out.rglob("*.jsonl"))  # no step ran, no recording


def test_an_unknown_model_of_a_known_provider_is_probed_with_one_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("OPENAI_API_BASE", server.base_url)
        assert model_problem("openai/gpt-4o-mni") is None  # the server answers: usable
        assert server.request_count == 1
        assert server.requests[-1]["max_tokens"] == 1
        server.fail_always(404)
        problem = model_problem("openai/gpt-4o-mni")
        assert problem is not None and "\n" not in problem
        assert problem.startswith("model 'openai/gpt-4o-mni' cannot be used")
        assert "The model does not exist." in problem  # the provider's own words
        assert KEY not in problem
        server.fail_always(401)
        problem = model_problem("openai/gpt-4o-mni")
        assert problem is not None and "Incorrect API key provided." in problem and KEY not in problem
        count = server.request_count
        assert model_problem("openai/gpt-4o-mini") is None  # in litellm's model map: no call
        assert model_problem("openai/fake-model", server.base_url) is None  # a server's own names: its probe
        assert server.request_count == count


def test_a_transient_failure_of_the_probe_is_no_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("OPENAI_API_BASE", server.base_url)
        server.fail_always(503)
        assert model_problem("openai/gpt-4o-mni") is None


def test_a_local_server_still_runs_from_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeOpenAIServer() as server:
        result = runner.invoke(
            app,
            ["run", "llm_double_auction", "--steps", "1", "--model", "openai/fake-model", "--api-base",
             server.base_url, "--out", str(tmp_path), "--json"],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[-1])["steps"] == 1


def _rule_based_source(folder: Path) -> Path:
    """llm_double_auction run with no model configured: its LLM populations ran rule-based."""
    with Simulation.from_scenario("llm_double_auction", seed=1, out=folder, steps=3) as sim:
        sim.run()
    assert sim.recording_path is not None
    return sim.recording_path


def _answers(request: ChatRequest) -> ChatResponse:
    if request.purpose == "plan":
        return text_response("wait and see")
    return tool_call_response("wait", {})


def _llm_source(folder: Path) -> Path:
    chat = ScriptedChatModel(_answers, name="scripted/waiter")
    with Simulation.from_scenario("llm_double_auction", seed=1, out=folder, steps=3, chat_model=chat) as sim:
        sim.run()
    assert sim.recording_path is not None
    return sim.recording_path


def test_a_fork_whose_model_reaches_no_agent_says_so_and_exits_non_zero(tmp_path: Path) -> None:
    source = _rule_based_source(tmp_path / "runs")
    out = tmp_path / "forks"
    result = runner.invoke(
        app, ["replay", str(source), "--until-step", "1", "--then-model", "openai/gpt-4o-mini", "--out", str(out)],
        env={"COLUMNS": "400"},
    )  # fmt: skip
    assert result.exit_code == 2
    line = _one_line_error(result.output)
    assert "--then-model openai/gpt-4o-mini reaches no agent" in line and "ran rule-based" in line
    assert "llm_buyers" in line
    assert not out.exists()  # nothing was built
    with pytest.raises(ReplayError, match="agent 1 did not run as an LLM agent"):
        replay(source, until_step=1, agent_models={1: "openai/gpt-4o-mini"}, output_dir=out)
    assert not out.exists()


def test_a_fork_of_an_llm_run_to_an_unknown_provider_builds_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    source = _llm_source(tmp_path / "runs")
    header: dict[str, Any] = json.loads(source.read_text().splitlines()[0])["content"]
    assert header["llm"]["models"]  # the source's LLM populations did run as LLM agents
    out = tmp_path / "forks"
    with pytest.raises(ReplayError, match=r"cannot fork: model 'notaprovider/xyz': litellm knows no provider") as info:
        replay(source, until_step=1, then_model="notaprovider/xyz", output_dir=out)
    assert "\n" not in str(info.value)
    assert not out.exists()
    # a model that reaches the LLM agents forks (answered in-process here)
    fork = replay(
        source, until_step=1, then_model="scripted/other", output_dir=out,
        live_chat_model=lambda _agent, name: ScriptedChatModel(_answers, name=name),
    )  # fmt: skip
    assert fork.live_calls > 0
