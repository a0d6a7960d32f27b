"""The command line with LLM agents: model resolution, clear failures, a run through litellm."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mesa_llm.cli import app
from tests.fake_openai_server import FakeOpenAIServer
from tests.support.chat_scripts import trader

runner = CliRunner()


def test_llm_scenario_without_a_model_falls_back_and_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("MESA_LLM_MODEL", raising=False)
    result = runner.invoke(app, ["run", "llm_double_auction", "--steps", "3", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert "using the built-in 'zi_c' policy" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["llm"] is None and summary["trades"] > 0


def test_missing_key_is_one_clear_line_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = tmp_path / "rec"
    result = runner.invoke(app, ["run", "llm_double_auction", "--model", "openai/gpt-4o-mini", "--out", str(out)], env={"COLUMNS": "300"})
    assert result.exit_code != 0
    assert "OPENAI_API_KEY" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_server_that_does_not_answer_is_one_clear_line(tmp_path):
    out = tmp_path / "rec"
    result = runner.invoke(
        app,
        ["run", "llm_double_auction", "--model", "openai/fake-model", "--api-base", "http://127.0.0.1:9/v1", "--out", str(out)],
        env={"COLUMNS": "300", "OPENAI_API_KEY": "sk-test-not-a-real-key"},
    )
    assert result.exit_code != 0
    assert "127.0.0.1:9" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_run_with_llm_agents_through_litellm(tmp_path):
    key = "sk-test-not-a-real-key-123"
    with FakeOpenAIServer(responder=trader) as server:
        result = runner.invoke(
            app,
            [
                "run", "llm_double_auction", "--steps", "3", "--model", "openai/fake-model",
                "--api-base", server.base_url, "--concurrency", "4", "--out", str(tmp_path), "--json",
            ],
            env={"OPENAI_API_KEY": key},
        )
        assert result.exit_code == 0, result.output
        assert server.max_in_flight <= 4
    summary = json.loads(result.stdout)
    assert summary["llm"]["agents"] == 6 and summary["llm"]["models"] == ["openai/fake-model"]
    assert summary["llm"]["calls"] + 1 == server.request_count > 1  # + the tool-mode probe
    assert summary["llm"]["prompt_tokens"] > 0
    text = Path(summary["recording"]).read_text()
    assert key not in text and "authorization" not in text.lower()
    events = [json.loads(line) for line in text.splitlines()]
    calls = [e["content"] for e in events if e["event_type"] == "llm_call"]
    assert calls and all(c["error"] is None and c["attempts"] == 1 for c in calls)
    llm_ids = {a["agent_id"] for a in events[0]["content"]["agents"] if a["model"] == "openai/fake-model"}
    orders = [e for e in events if e["event_type"] == "order" and e["agent_id"] in llm_ids]
    assert orders


def test_budget_flag_stops_the_run(tmp_path):
    with FakeOpenAIServer(responder=trader) as server:
        result = runner.invoke(
            app,
            [
                "run", "llm_double_auction", "--steps", "8", "--model", "openai/fake-model",
                "--api-base", server.base_url, "--max-tokens", "2000", "--out", str(tmp_path), "--json",
            ],
            env={"OPENAI_API_KEY": "sk-test"},
        )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["steps"] < 8 and "token budget exceeded" in summary["stop_reason"]


def test_transient_http_errors_are_retried_and_the_attempts_recorded(tmp_path, monkeypatch):
    from mesa_llm.model import MarketModel
    from mesa_llm.scenario import load_scenario

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    spec = load_scenario(
        "llm_double_auction",
        overrides=["steps=1", "populations.0.count=1", "populations.1.count=0", "populations.0.params.plan_every=0"],
    )
    with FakeOpenAIServer(responder=trader) as server:
        spec.llm = spec.llm.model_copy(update={"api_base": server.base_url})
        server.enqueue_fault(status=None)  # the tool-mode probe
        server.enqueue_fault(status=429)
        server.enqueue_fault(status=500)
        model = MarketModel(spec, output_dir=tmp_path, llm_model="openai/fake-model")
        model.run()
        assert server.request_count == 1 + 3
    events = [json.loads(line) for line in model.recording_path.read_text().splitlines()]
    calls = [e["content"] for e in events if e["event_type"] == "llm_call"]
    assert len(calls) == 1 and calls[0]["attempts"] == 3 and calls[0]["error"] is None
    llm_id = model.llm_agents[0].unique_id
    assert any(e["event_type"] == "order" and e["agent_id"] == llm_id for e in events)
