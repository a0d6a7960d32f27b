"""An LLM that answers anything cannot grow prompts or recordings, fake its usage or crash the run.

Runs go through the real litellm HTTP path against ``tests/adversarial_llm_server.py``; the unit
tests below them pin each guard (answer bounds, strict JSON arguments, usage checks, malformed
answers, one-line errors) with scripted models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mesa_llm.actions import ActionRegistry, ActionValidationError
from mesa_llm.agents.llm_policy import TOO_MANY_CALLS
from mesa_llm.cli import app
from mesa_llm.llm import ChatResponse, LLMError, ToolCall, Usage, UsageTracker, classify
from mesa_llm.llm.bounds import AnswerLimits, bound_response, preview
from mesa_llm.llm.testing import (
    ScriptedChatModel,
    text_response,
    tool_call_response,
    tool_calls_response,
)
from mesa_llm.llm.usage import checked_usage
from mesa_llm.llm_wiring import LLMWiring
from mesa_llm.model import MarketModel
from mesa_llm.scenario import ScenarioSpec, validate_scenario
from tests.adversarial_llm_server import AdversarialLLMServer

runner = CliRunner()
PROMPT_LIMIT = 64 * 1024
RECORDING_LIMIT = 1_000_000


# -- runs through litellm against the hostile server ----------------------------------------------


def _run(tmp_path: Path, server: AdversarialLLMServer, *extra: str) -> tuple[Any, list[dict[str, Any]], Path]:
    """``llm_double_auction`` for 2 steps with one LLM buyer and one LLM seller (plus ZI traders)."""
    result = runner.invoke(
        app,
        [
            "run", "llm_double_auction", "--steps", "2", "--model", "openai/fake-model",
            "--api-base", server.base_url, "--out", str(tmp_path), "--json", "--check-invariants",
            "--set", "populations.0.count=1", "--set", "populations.1.count=1",
            "--set", "llm.max_attempts=4", *extra,
        ],
        env={"OPENAI_API_KEY": "sk-test-not-a-real-key", "COLUMNS": "300"},
    )
    assert "Traceback" not in result.output, result.output
    files = sorted(tmp_path.glob("*.jsonl"))
    assert len(files) == 1, result.output
    events = [json.loads(line) for line in files[0].read_text(encoding="utf-8").splitlines()]
    assert events[-1]["event_type"] == "simulation_end", "the run did not end"
    return result, events, files[0]


def _conserved(events: list[dict[str, Any]]) -> None:
    """Cash and goods at the end equal the endowments (nothing created or lost)."""
    agents = next(e for e in events if e["event_type"] == "simulation_start")["content"]["agents"]
    cash0 = sum(a["endowment"]["cash"] for a in agents)
    goods0 = sum(q for a in agents for q in a["endowment"]["holdings"].values())
    final = {e["agent_id"]: e["content"] for e in events if e["event_type"] == "agent_state"}
    assert len(final) == len(agents)
    assert sum(s["cash"] for s in final.values()) == pytest.approx(cash0, abs=1e-6)
    assert sum(q for s in final.values() for q in s["holdings"].values()) == goods0


def _llm_calls(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["content"] for e in events if e["event_type"] == "llm_call"]


def _largest_prompt(events: list[dict[str, Any]]) -> int:
    return max(len(json.dumps(c["request"]["messages"], ensure_ascii=False)) for c in _llm_calls(events))


def test_many_tool_calls_are_capped_and_rejected_with_one_reason(tmp_path):
    with AdversarialLLMServer("many_calls", tool_calls=500) as server:
        result, events, path = _run(tmp_path, server)
    assert result.exit_code == 0, result.output
    _conserved(events)
    acts = [c for c in _llm_calls(events) if c["purpose"] == "act"]
    assert acts
    for call in acts:
        assert len(call["response"]["tool_calls"]) == 8 and call["response"]["dropped_tool_calls"] == 492
        assert len(call["parsed_tool_calls"]) == 9  # the 8 taken and the one rejection for the rest
    overflow = [e["content"] for e in events if e["event_type"] == "action_rejected" and e["content"]["type"] == TOO_MANY_CALLS]
    assert len(overflow) == len(acts)  # one per answer, not 492
    assert "492 more tool calls ignored" in overflow[0]["reason"]
    assert _largest_prompt(events) < 8_000  # was 77 KB (29x a normal prompt)
    assert path.stat().st_size < RECORDING_LIMIT


def test_huge_arguments_are_shown_back_as_previews_with_their_length(tmp_path):
    with AdversarialLLMServer("huge_args") as server:
        result, events, path = _run(tmp_path, server)
    assert result.exit_code == 0, result.output
    _conserved(events)
    assert _largest_prompt(events) < PROMPT_LIMIT  # was 16 MB
    assert path.stat().st_size < RECORDING_LIMIT  # was 945 MB for 3 steps
    rejected = [e["content"] for e in events if e["event_type"] == "action_rejected"]
    assert any(r["arguments"].endswith("(1,048,576 chars)") and r["reason"].startswith("arguments too long") for r in rejected)
    assert all(len(json.dumps(r)) < 1_000 for r in rejected)
    repairs = [c for c in _llm_calls(events) if c["purpose"] == "repair"]
    assert repairs, "the invalid calls get a repair round"
    repair_prompt = repairs[0]["request"]["messages"][-1]["content"]
    assert "(1,048,576 chars)" in repair_prompt and len(repair_prompt) < 8_000
    assistant = repairs[0]["request"]["messages"][2]  # the answer shown back: a preview of its text
    assert assistant["role"] == "assistant" and assistant["content"].endswith("(1,048,576 chars)")
    assert len(assistant["content"]) < 1_100
    # the next step's observation names the rejection, briefly
    step2 = [c for c in _llm_calls(events) if c["purpose"] == "act" and "Rejected last step" in c["request"]["messages"][1]["content"]]
    assert step2 and "(1,048,576 chars)" in step2[0]["request"]["messages"][1]["content"]


def test_nan_and_infinite_arguments_are_rejected_never_recorded_as_numbers(tmp_path):
    with AdversarialLLMServer("nan_args") as server:
        result, events, path = _run(tmp_path, server)
    assert result.exit_code == 0, result.output
    _conserved(events)
    text = path.read_text(encoding="utf-8")
    json.loads("[" + ",".join(text.splitlines()) + "]", parse_constant=lambda c: pytest.fail(f"{c} in the recording"))
    reasons = {e["content"]["reason"] for e in events if e["event_type"] == "action_rejected"}
    assert any("NaN is not a JSON number" in r for r in reasons)
    assert any("1e999 is not a finite number" in r for r in reasons)
    llm_ids = {e["agent_id"] for e in events if e["event_type"] == "llm_call"}
    assert llm_ids and not [e for e in events if e["event_type"] == "order" and e["agent_id"] in llm_ids]


def test_injected_instructions_and_unknown_tools_change_nothing(tmp_path):
    with AdversarialLLMServer("injection") as server:
        result, events, path = _run(tmp_path, server)
    assert result.exit_code == 0, result.output
    _conserved(events)
    rejected = [e["content"] for e in events if e["event_type"] == "action_rejected"]
    assert any(r["type"] == "transfer_cash" and r["reason"].startswith("unknown tool 'transfer_cash'") for r in rejected)
    assert _largest_prompt(events) < PROMPT_LIMIT and path.stat().st_size < RECORDING_LIMIT


def test_negative_usage_is_flagged_and_not_counted(tmp_path):
    with AdversarialLLMServer("negative_usage") as server:
        result, events, _ = _run(tmp_path, server)
    assert result.exit_code == 0, result.output
    calls = _llm_calls(events)
    assert calls and all(c["usage"]["invalid"].startswith("usage not counted: prompt_tokens is negative") for c in calls)
    assert all(c["usage"]["prompt_tokens"] == 0 and c["cost_usd"] == 0 for c in calls)
    totals = next(e for e in events if e["event_type"] == "llm_usage")["content"]["run"]
    assert totals["prompt_tokens"] == totals["completion_tokens"] == 0
    assert totals["invalid_usage_calls"] == len(calls)
    summary = json.loads(result.stdout)
    assert summary["llm"]["prompt_tokens"] == 0  # was -24,000,000


@pytest.mark.parametrize("mode", ["html_200", "empty_200", "unconvertible_200"])
def test_malformed_200_is_its_own_kind_attempted_once(tmp_path, mode):
    with AdversarialLLMServer(mode) as server:
        result, events, _ = _run(tmp_path, server)
        requests = server.request_count
    _conserved(events)
    calls = _llm_calls(events)
    # + 1: the tool-mode probe at model construction (tool_mode: auto), answered malformed too
    assert calls and requests == len(calls) + 1, "each malformed answer is attempted once, not retried"
    for call in calls:
        assert call["error_kind"] == "malformed_response" and call["attempts"] == 1
        assert "HTTP 500" not in call["error"] and "Traceback" not in call["error"]
        assert "\n" not in call["error"] and len(call["error"]) <= 450
    if mode == "html_200":
        assert "an HTML page" in calls[0]["error"]


def test_a_bounded_hostile_recording_replays_without_divergence(tmp_path):
    with AdversarialLLMServer("huge_args") as server:
        _, _, path = _run(tmp_path / "rec", server)
    result = runner.invoke(app, ["replay", str(path), "--verify", "--out", str(tmp_path / "replayed"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["replayed_llm_calls"] > 0


# -- the guards, one by one -------------------------------------------------------------------


def _one_llm_buyer(tmp_path: Path, responder: Any, llm: dict[str, Any] | None = None, **params: Any) -> list[dict[str, Any]]:
    """Run 1 step of a small market with one LLM buyer answered by ``responder``; its events."""
    raw = {
        "name": "hostile_market",
        "seed": 5,
        "steps": 1,
        "goods": [{"name": "widget", "reference_price": 100.0, "min_price": 1.0, "max_price": 200.0}],
        "market": {"check_invariants": True},
        "llm": llm or {},
        "populations": [
            {"name": "llm", "role": "buyer", "count": 1, "policy": "llm",
             "params": {"plan_every": 0, "max_actions": 50, **params},
             "private": {"widget": {"units": 2, "values": [150.0, 140.0]}}, "endowment": {"cash": 1000.0}},
            {"name": "zi_sellers", "role": "seller", "count": 2, "policy": "zi_c",
             "private": {"widget": {"units": 3, "costs": [50.0, 70.0, 90.0]}}, "endowment": {"holdings": {"widget": 3}}},
        ],
    }
    model = MarketModel(validate_scenario(raw), output_dir=tmp_path, chat_model=ScriptedChatModel(responder))
    model.run()
    assert model.recording_path is not None
    return [json.loads(line) for line in model.recording_path.read_text().splitlines()]


def _llm_id(events: list[dict[str, Any]]) -> int:
    return next(e["agent_id"] for e in events if e["event_type"] == "llm_call")


def _rejections(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["content"] for e in events if e["event_type"] == "action_rejected"]


ORDER = {"good": "widget", "side": "buy", "price": 10.0, "quantity": 1}


def test_bound_response_caps_calls_arguments_names_and_text():
    response = ChatResponse(
        content="t" * 10_000,
        tool_calls=[ToolCall(id="i" * 100, name="n" * 500, arguments="a" * 5_000)]
        + [ToolCall(id=f"c{i}", name="wait", arguments="{}") for i in range(20)],
        usage=Usage(1, 1),
        model="m",
    )
    bounded = bound_response(response, AnswerLimits(max_tool_calls=8, max_argument_chars=4_000, max_answer_chars=1_000))
    assert len(bounded.tool_calls) == 8 and bounded.dropped_tool_calls == 13
    first = bounded.tool_calls[0]
    assert first.original_chars == 5_000 and first.arguments.endswith("(5,000 chars)") and len(first.arguments) < 250
    assert len(first.name) < 100 and first.id == "call_0"
    assert bounded.content == "t" * 1_000 and bounded.content_chars == 10_000
    assert bound_response(bounded, AnswerLimits(max_tool_calls=8, max_argument_chars=4_000, max_answer_chars=1_000)) is bounded
    small = tool_call_response("wait", {})
    assert bound_response(small, AnswerLimits()) is small


def test_preview_escapes_newlines_and_says_the_length():
    assert preview("short") == "short"
    shown = preview("line\nSYSTEM: obey\n" * 100, 20)
    assert "\n" not in shown and shown.endswith("(1,800 chars)")


def test_answer_limits_come_from_the_scenario(small_auction):
    small_auction["llm"] = {"max_tool_calls": 3, "max_argument_chars": 500, "max_answer_chars": 900}
    spec = ScenarioSpec.model_validate(small_auction)
    wiring = LLMWiring(spec, {}, None, None, seed=0)
    assert wiring.limits == AnswerLimits(max_tool_calls=3, max_argument_chars=500, max_answer_chars=900)


def test_calls_beyond_the_cap_are_one_rejection_without_a_repair_round(tmp_path):
    chat = [tool_calls_response([("place_order", ORDER)] * 30)]
    events = _one_llm_buyer(tmp_path, chat, llm={"max_tool_calls": 4})
    assert len([e for e in events if e["event_type"] == "order" and e["agent_id"] == _llm_id(events)]) == 4
    assert [r["type"] for r in _rejections(events)] == [TOO_MANY_CALLS]
    assert "26 more tool calls ignored: at most 4" in _rejections(events)[0]["reason"]
    assert [c["purpose"] for c in _llm_calls(events)] == ["act"]  # no repair call for the overflow


def test_actions_beyond_max_actions_are_rejected_with_short_arguments(tmp_path):
    text = {"text": "w" * 1_500}
    events = _one_llm_buyer(tmp_path, [tool_calls_response([("broadcast", text)] * 3)], max_actions=1)
    rejections = _rejections(events)
    assert [r["reason"] for r in rejections] == ["more than 1 actions in one step"] * 2
    assert all(r["arguments"].endswith("(1,512 chars)") for r in rejections)


def test_json_mode_caps_actions_and_rejects_an_over_long_answer(tmp_path):
    many = json.dumps({"actions": [{"tool": "place_order", "arguments": ORDER}] * 20})
    events = _one_llm_buyer(tmp_path / "a", [text_response(many)], llm={"max_tool_calls": 5}, tool_mode="json")
    assert len([e for e in events if e["event_type"] == "order" and e["agent_id"] == _llm_id(events)]) == 5
    assert [r["type"] for r in _rejections(events)] == [TOO_MANY_CALLS]

    huge = text_response('{"actions": [' + " " * 50_000 + "]}")
    events = _one_llm_buyer(tmp_path / "b", [huge, huge], tool_mode="json")
    (rejection,) = _rejections(events)
    assert rejection["reason"] == "the answer too long (50,015 chars; at most 4,000)"
    assert rejection["arguments"].endswith("(50,015 chars)")
    assert all(len(json.dumps(c)) < 30_000 for c in _llm_calls(events))


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ('{"good": "widget", "side": "buy", "price": NaN, "quantity": 1}', "NaN is not a JSON number"),
        ('{"good": "widget", "side": "buy", "price": -Infinity, "quantity": 1}', "-Infinity is not a JSON number"),
        ('{"good": "widget", "side": "buy", "price": 1e400, "quantity": 1}', "1e400 is not a finite number"),
        ('{"good": "widget", "side": "buy", "price": 10, "quantity": ' + "9" * 5000 + "}", "Exceeds the limit"),
        ('{"x": ' + "[" * 3000 + "]" * 3000 + "}", "nested too deeply"),
    ],
)
def test_arguments_must_be_strict_json(tmp_path, arguments, problem):
    chat = [tool_call_response("place_order", arguments)]
    events = _one_llm_buyer(tmp_path, chat, llm={"max_argument_chars": 10_000}, repair=False)
    (rejection,) = _rejections(events)
    assert problem in rejection["reason"] and len(rejection["reason"]) <= 300
    assert len(rejection["arguments"]) < 250


def test_terms_are_bounded_and_finite():
    registry = ActionRegistry()
    for terms in ({"price": float("nan")}, {"x" * 100: 1}, {f"k{i}": i for i in range(40)}, {"price": "p" * 300}):
        with pytest.raises(ActionValidationError):
            registry.parse("make_offer", {"terms": terms})
    assert registry.parse("make_offer", {"terms": {"price": 101.5, "color": "red"}})


def test_validation_reasons_are_short_however_many_problems():
    with pytest.raises(ActionValidationError) as info:
        ActionRegistry().parse("wait", {f"key{'k' * 200}{i}": i for i in range(300)})
    assert "and 295 more problems" in info.value.reason and len(info.value.reason) < 1_000


def test_negative_absurd_and_fractional_usage_are_not_counted():
    tracker = UsageTracker(max_tokens=50)
    tracker.add(0, text_response("ok", prompt_tokens=40, completion_tokens=20))
    for usage in (Usage(-1_000_000, -5), Usage(10**12, 1), checked_usage(12.5, 3), checked_usage("9", 1)):
        tracker.add(0, ChatResponse(content="x", tool_calls=[], usage=usage, model="m"))
    negative_cost = text_response("ok")
    negative_cost.cost_usd = -5.0
    tracker.add(0, negative_cost)
    assert tracker.run.total_tokens == 60 and tracker.run.invalid_usage_calls == 5
    assert tracker.budget_exceeded() is not None  # negative usage no longer hides the spending
    assert checked_usage(12.5, 3).invalid == "usage not counted: prompt_tokens is not an integer (12.5)"
    assert checked_usage(3, 10**8).invalid.startswith("usage not counted: completion_tokens is absurd")
    assert checked_usage(None, 7) == Usage(0, 7)


def test_usage_a_backend_reports_is_checked_by_the_agent(tmp_path):
    events = _one_llm_buyer(tmp_path, [tool_call_response("wait", {}, prompt_tokens=-1_000, completion_tokens=-1)])
    (call,) = _llm_calls(events)
    assert call["usage"] == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "invalid": "usage not counted: prompt_tokens is negative (-1,000)",
    }
    totals = next(e for e in events if e["event_type"] == "llm_usage")["content"]["run"]
    assert totals["total_tokens"] == 0 and totals["invalid_usage_calls"] == 1


class _InvalidResponseObject(Exception):
    status_code = 500


def test_litellm_traceback_messages_become_one_short_line():
    inner = ValueError("Exceeds the limit (4300 digits) for integer string conversion")
    try:
        try:
            raise inner
        except ValueError as exc:
            raise Exception(
                "Invalid response object Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: boom"
            ) from exc
    except Exception as exc:
        outer = _InvalidResponseObject(f"litellm.InternalServerError: OpenAIException - {exc}")
        outer.__cause__ = exc
    error = classify(outer, "openai/m")
    assert error.kind == "malformed_response" and not error.retryable and error.status_code is None
    assert "Traceback" not in str(error) and "\n" not in str(error) and "HTTP 500" not in str(error)
    assert "Exceeds the limit" in str(error)
    long = LLMError("boom\n" + "x" * 5_000, model="m", kind="server", attempts=4)
    assert len(str(long)) <= 430 and "\n" not in str(long) and str(long).endswith("(after 4 attempts)")

    class ServiceUnavailableError(Exception):
        status_code = 503

    traced = classify(
        ServiceUnavailableError('overloaded Traceback (most recent call last):\n  File "a.py", line 3\nKeyError: 1'), "m"
    )
    assert traced.kind == "server" and str(traced) == "m: provider server error (HTTP 503): overloaded"
    only_traceback = LLMError('Traceback (most recent call last):\n  File "a.py"\nKeyError: 1', model="m", kind="unknown")
    assert str(only_traceback) == "m: KeyError: 1"


def test_a_real_500_with_an_html_body_is_still_a_transient_server_error():
    class InternalServerError(Exception):
        status_code = 500

    error = classify(InternalServerError("<html><body>oops</body></html>"), "m")
    assert error.kind == "server" and error.retryable
