"""Hostile and failing providers: secrets stay out of recordings and the terminal, failures stop the
run with the truth (exit code, one clear line, final balances recorded), slow servers are cut off.

Every run goes through the CLI against the fake OpenAI server (``tests/fake_openai_server.py``).
"""

from __future__ import annotations

import json
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mesa_llm.cli import app
from mesa_llm.llm import classify
from mesa_llm.llm.secrets import Redactor, strip_url_credentials
from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario
from tests.fake_openai_server import FakeOpenAIServer, default_responder

runner = CliRunner()
#: a key of no known provider's shape: only its exact value can give it away
PLAIN_KEY = "hunter2-plain-secret-7QzX"
PASSWORD = "pa55-w0rd-Kq9"
FAST = ["--set", "llm.max_attempts=1"]  # no retries: failing runs take milliseconds per call


def _run(args: list[str], key: str = "sk-test-key-not-real-000") -> Any:
    return runner.invoke(app, ["run", "llm_double_auction", "--model", "openai/fake-model", *args], env={"OPENAI_API_KEY": key, "COLUMNS": "400"})


def _recording(out: Path) -> tuple[bytes, list[dict[str, Any]]]:
    files = list(out.glob("*.jsonl"))
    assert len(files) == 1, files
    data = files[0].read_bytes()
    return data, [json.loads(line) for line in data.splitlines()]


def _of(events: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event_type"] == event_type]


def _assert_final_states(events: list[dict[str, Any]], step: int, status: str) -> None:
    """Every agent's balances at the stopping step are recorded, and the end says why."""
    agents = {a["agent_id"] for a in events[0]["content"]["agents"]}
    final = {e["agent_id"] for e in _of(events, "agent_state") if e["step"] == step}
    assert final == agents
    end = _of(events, "simulation_end")
    assert len(end) == 1 and end[0]["content"]["status"] == status and end[0]["content"]["final_step"] == step


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------- secrets


def test_api_base_credentials_are_dropped_before_anything_is_recorded_or_printed(tmp_path):
    with FakeOpenAIServer() as server:
        api_base = server.base_url.replace("http://", f"http://user:{PASSWORD}@")
        result = _run(["--steps", "2", "--api-base", api_base, "--out", str(tmp_path), *FAST])
        assert result.exit_code == 0, result.output
        assert server.request_count > 0  # the calls went through, to the bare URL
    data, events = _recording(tmp_path)
    for secret in (PASSWORD, f"user:{PASSWORD}"):
        assert secret.encode() not in data
        assert secret not in result.output
    assert events[0]["content"]["llm"]["settings"]["api_base"] == server.base_url
    assert result.stderr.count("the login in api_base") == 1  # said once, without the credentials
    assert "user:pass" not in result.output and b"user:pass" not in data


def test_api_base_credentials_stay_out_of_the_unreachable_server_line(tmp_path):
    port = _free_port()
    result = _run(["--api-base", f"http://user:{PASSWORD}@127.0.0.1:{port}/v1", "--out", str(tmp_path / "rec")])
    assert result.exit_code != 0
    assert f"no server answers at http://127.0.0.1:{port}/v1" in result.stderr
    assert PASSWORD not in result.output and "Traceback" not in result.output
    assert not (tmp_path / "rec").exists()


def _echo_key(request: dict[str, Any]) -> dict[str, Any]:
    """A provider that repeats the key it was sent (from the Authorization header) in its answers."""
    key = request["_key"]
    if not request.get("tools"):
        return {"content": f"Noted. Your key is {key}."}
    return {"content": f"key {key}", "tool_calls": [{"name": "wait", "arguments": json.dumps({"echo": key})}]}


def test_a_key_of_any_shape_echoed_by_the_provider_is_redacted_everywhere(tmp_path):
    class EchoServer(FakeOpenAIServer):
        def _record(self, request: dict[str, Any], headers: dict[str, str]) -> Any:
            request["_key"] = headers.get("authorization", "").removeprefix("Bearer ")
            return super()._record(request, headers)

    error_body = {"error": {"message": f"key {PLAIN_KEY} is not valid for this model", "type": "invalid_request_error"}}
    with EchoServer(responder=_echo_key) as server:
        server.enqueue_fault(status=None)  # the tool-mode probe is answered normally
        server.enqueue_fault(status=400, body=error_body)  # an error body echoing the key, once
        result = _run(["--steps", "2", "--api-base", server.base_url, "--out", str(tmp_path), *FAST], key=PLAIN_KEY)
        assert result.exit_code == 0, result.output
        assert server.requests[2]["_key"] == PLAIN_KEY  # the provider did echo it
    data, events = _recording(tmp_path)
    assert PLAIN_KEY.encode() not in data and PLAIN_KEY not in result.output
    calls = _of(events, "llm_call")
    errors = [c["content"]["error"] for c in calls if c["content"]["error"]]
    assert len(errors) == 1 and "is not valid for this model" in errors[0] and "***" in errors[0]
    answers = [(c["content"]["response"] or {}).get("content") or "" for c in calls]
    assert any("Your key is ***" in a for a in answers)


def test_redactor_blanks_exact_values_and_strip_drops_url_credentials():
    redact = Redactor([PLAIN_KEY, "short"])
    assert redact(f"bad key {PLAIN_KEY}!") == "bad key ***!"
    assert redact("too short to be a key: short") == "too short to be a key: short"
    assert redact.values("key=value stays in an answer") == "key=value stays in an answer"
    assert "pw-9x" not in str(classify(OSError("redirected to http://user:pw-9x@h/v1"), "m"))
    assert strip_url_credentials("https://u:p@host:8/v1?x=1") == "https://host:8/v1?x=1"
    assert strip_url_credentials("http://127.0.0.1:8/v1") == "http://127.0.0.1:8/v1"


def test_an_unexpected_failure_carrying_the_key_is_printed_without_it(tmp_path, monkeypatch):
    def explode(self: MarketModel) -> None:  # the first step fails
        raise RuntimeError(f"provider said: bad key {PLAIN_KEY}")

    monkeypatch.setattr(MarketModel, "step", explode)
    with FakeOpenAIServer() as server:
        result = _run(["--steps", "1", "--api-base", server.base_url, "--out", str(tmp_path)], key=PLAIN_KEY)
    assert result.exit_code == 1 and "run failed at step 1: RuntimeError: provider said: bad key ***" in result.stderr
    assert PLAIN_KEY not in result.output


# ---------------------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("status", "says"),
    [(401, "authentication failed (HTTP 401)"), (403, "permission denied (HTTP 403)"), (404, "not found (HTTP 404)")],
)
def test_auth_and_not_found_stop_at_step_one_with_final_balances(tmp_path, status, says):
    with FakeOpenAIServer() as server:
        # a 401 whose body says invalid_request_error (litellm then raises BadRequestError): still
        # an authentication failure
        body = {"error": {"message": "invalid token", "type": "invalid_request_error", "code": str(status)}}
        server.fail_always(status=status, body=body if status == 401 else None)
        result = _run(["--steps", "4", "--api-base", server.base_url, "--out", str(tmp_path), *FAST])
        assert server.request_count == 1 + 6  # the tool-mode probe, one call per LLM agent, then the run stopped
    assert result.exit_code == 1
    assert "run stopped at step 1" in result.stderr and says in result.stderr
    assert "Traceback" not in result.output and "efficiency" not in result.output
    _, events = _recording(tmp_path)
    _assert_final_states(events, step=1, status="failed")


def test_a_provider_failing_every_call_stops_after_k_steps_and_replays_the_same(tmp_path):
    with FakeOpenAIServer() as server:
        server.fail_always(status=500)
        args = ["--steps", "6", "--api-base", server.base_url, "--max-failed-steps", "2", "--set", "llm.max_attempts=2"]
        result = _run([*args, "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "run stopped at step 2: every LLM call of 2 consecutive steps failed" in result.stderr
    assert "HTTP 500" in result.stderr and "(after 2 attempts)" in result.stderr
    assert "efficiency" not in result.output
    _, events = _recording(tmp_path)
    _assert_final_states(events, step=2, status="failed")
    # the failed calls replay as recorded: same stop, same balances
    replayed = runner.invoke(app, ["replay", str(next(tmp_path.glob("*.jsonl"))), "--verify", "--out", str(tmp_path / "replay")])
    assert replayed.exit_code == 0, replayed.output
    assert "replay: 2 steps" in replayed.stdout and "identical to the recording" in replayed.stdout


def test_a_short_run_whose_every_call_failed_does_not_exit_0(tmp_path):
    with FakeOpenAIServer() as server:
        server.fail_always(status=500)
        result = _run(["--steps", "2", "--api-base", server.base_url, "--out", str(tmp_path), *FAST])
    assert result.exit_code == 1 and "every LLM call of the run failed" in result.stderr


def test_a_provider_that_goes_away_mid_run_stops_it(tmp_path):
    spec = load_scenario("llm_double_auction", overrides=["llm.max_attempts=1", "llm.max_failed_steps=2"])
    with FakeOpenAIServer(responder=default_responder) as server:
        spec.llm = spec.llm.model_copy(update={"api_base": server.base_url})
        model = MarketModel(spec, steps=8, output_dir=tmp_path, llm_model="openai/fake-model")
        summary = model.run(progress=lambda step: server.stop() if step == 1 else None)
    assert model.stop_status == "failed" and summary.steps == 3
    assert summary.stop_reason is not None and "could not reach the provider" in summary.stop_reason
    _, events = _recording(tmp_path)
    _assert_final_states(events, step=3, status="failed")


def test_a_server_that_never_answers_costs_each_step_only_its_time_bound(tmp_path):
    with FakeOpenAIServer() as server:
        server.fail_always(status=None, delay_s=30)
        # without the step bound, each call would wait for the 5 s request timeout
        result = _run(["--steps", "2", "--api-base", server.base_url, "--out", str(tmp_path),
                       "--set", "llm.step_timeout=0.5", "--set", "llm.timeout=5", *FAST])  # config key
    assert result.exit_code == 1 and "every LLM call of the run failed" in result.stderr
    _, events = _recording(tmp_path)
    calls = _of(events, "llm_call")
    assert len(calls) == 12 and all(c["content"]["error_kind"] == "timeout" for c in calls)
    assert all("step's time limit" in c["content"]["error"] for c in calls)
    starts = {e["step"]: datetime.fromisoformat(e["timestamp"]) for e in _of(events, "step_start")}
    ends = {e["step"]: datetime.fromisoformat(e["timestamp"]) for e in _of(events, "step_end")}
    assert sorted(ends) == [1, 2]  # each step went on without its LLM agents
    assert all((ends[s] - starts[s]).total_seconds() < 3.0 for s in ends)


# ---------------------------------------------------------------------------------------- budgets


def test_a_run_cut_by_an_exception_records_the_balances_as_they_stand(tmp_path, monkeypatch):
    # settlement is the call market mechanism's clear() (mesa_llm.mechanisms, issue 20)
    from mesa_llm.mechanisms.call_market import CallMarketMechanism as CallMarket

    settle = CallMarket.clear

    def crash_at_step_2(self: CallMarket, step: int) -> None:
        if step == 2:
            raise RuntimeError("settlement broke")
        settle(self, step)

    monkeypatch.setattr(CallMarket, "clear", crash_at_step_2)
    with FakeOpenAIServer() as server:
        result = _run(["--steps", "4", "--api-base", server.base_url, "--out", str(tmp_path)])
    assert result.exit_code == 1 and "run failed at step 2: RuntimeError: settlement broke" in result.stderr
    _, events = _recording(tmp_path)
    _assert_final_states(events, step=2, status="failed")


def test_an_unpriced_model_with_a_cost_budget_is_warned_about(tmp_path):
    with FakeOpenAIServer() as server:
        result = _run(["--steps", "1", "--api-base", server.base_url, "--max-cost-usd", "0.5", "--out", str(tmp_path)])
        priced = runner.invoke(
            app,
            ["run", "llm_double_auction", "--model", "openai/gpt-4o-mini", "--steps", "1", "--api-base", server.base_url,
             "--max-cost-usd", "0.5", "--out", str(tmp_path / "priced")],
            env={"OPENAI_API_KEY": "sk-test-key-not-real-000", "COLUMNS": "400"},
        )
    assert result.exit_code == 0 and priced.exit_code == 0, result.output + priced.output
    assert "warning:" in result.stderr and "no price for 'openai/fake-model'" in result.stderr
    assert "warning:" not in priced.stderr
    _, events = _recording(tmp_path)
    assert events[0]["content"]["llm"]["warnings"]


def test_a_budget_stop_still_records_every_agents_final_balances(tmp_path):
    with FakeOpenAIServer() as server:
        result = _run(["--steps", "5", "--api-base", server.base_url, "--max-tokens", "1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "token budget exceeded" in result.stdout
    _, events = _recording(tmp_path)
    _assert_final_states(events, step=1, status="budget_exceeded")
