"""Inert LLM agents are visible: per LLM population counts in the run summary, the CLI and
`analyze`, a warning when a population applied no action, and LLM metrics over LLM agents only."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from typer.testing import CliRunner

from mesa_llm.analysis import load_recording
from mesa_llm.analysis.metrics import llm_costs, summary_metrics
from mesa_llm.analysis.report import metric_rows
from mesa_llm.cli import _print_summary, app
from mesa_llm.llm import ChatRequest, ChatResponse, LLMError
from mesa_llm.llm.testing import ScriptedChatModel, tool_call_response
from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario
from tests.fake_openai_server import FakeOpenAIServer

VALUE = re.compile(r"values of your next units ([0-9.]+)")
COST = re.compile(r"costs of your next units ([0-9.]+)")
NO_PLANS = ["populations.0.params.plan_every=0", "populations.1.params.plan_every=0", "llm.max_failed_steps=0"]


def _user(request: ChatRequest) -> str:
    return "\n".join(m["content"] for m in request.messages if m["role"] == "user" and m.get("content"))


def buyers_trade_sellers_fail(request: ChatRequest) -> ChatResponse:
    """LLM buyers bid their value (a bad call first, repaired); every LLM seller call fails."""
    text = _user(request)
    if (m := VALUE.search(text)) is not None:
        if request.purpose == "act":
            return tool_call_response("place_order", {"good": "widget", "side": "buy", "price": "lots", "quantity": 1})
        return tool_call_response("place_order", {"good": "widget", "side": "buy", "price": float(m.group(1)), "quantity": 1})
    if COST.search(text) is not None:
        raise LLMError("server error", model=request.model, kind="server")
    return tool_call_response("wait", {})


def _run(tmp_path: Any, responder: Any, steps: int = 3) -> MarketModel:
    spec = load_scenario("llm_double_auction", overrides=[f"steps={steps}", *NO_PLANS])
    model = MarketModel(spec, output_dir=tmp_path, chat_model=ScriptedChatModel(responder))
    model.run()
    return model


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> MarketModel:
    return _run(tmp_path_factory.mktemp("mixed"), buyers_trade_sellers_fail)


def test_summary_counts_per_llm_population(mixed):
    llm = mixed.summary().to_dict()["llm"]
    buyers, sellers = llm["populations"]["llm_buyers"], llm["populations"]["llm_sellers"]
    # 3 buyers x 3 steps: an act call with one invalid tool call, then a repair call with a valid one
    assert buyers["agents"] == 3 and buyers["calls"] == 18 and buyers["failed_calls"] == 0
    assert buyers["invalid_tool_calls"] == 9 and buyers["valid_tool_calls"] == 9 and buyers["repaired_tool_calls"] == 9
    assert buyers["actions_applied"] == 9
    assert sellers["calls"] == 9 and sellers["failed_calls"] == 9 and sellers["actions_applied"] == 0
    assert sellers["valid_tool_calls"] == sellers["invalid_tool_calls"] == 0


def test_summary_warns_about_the_population_that_applied_no_action(mixed):
    warnings = mixed.summary().to_dict()["llm"]["warnings"]
    assert warnings == [
        "LLM population 'llm_sellers' (3 agents) applied no action in 3 steps (9 calls, 9 failed, 0 invalid tool calls)"
    ]


def test_waiting_is_not_an_action():
    spec = load_scenario("llm_double_auction", overrides=["steps=2", *NO_PLANS])
    model = MarketModel(spec, record=False, chat_model=ScriptedChatModel(lambda r: tool_call_response("wait", {})))
    llm = model.run().to_dict()["llm"]
    assert llm["populations"]["llm_buyers"]["waits"] == 6
    assert len(llm["warnings"]) == 2 and "6 waits" in llm["warnings"][0]


def test_cli_summary_prints_the_population_table_and_the_warning(mixed, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    _print_summary(mixed.summary().to_dict())
    out = capsys.readouterr().out
    assert "LLM populations" in out
    row = next(line for line in out.splitlines() if "llm_sellers" in line and "│" in line)
    assert [c.strip() for c in row.split("│")[1:-1]] == ["llm_sellers", "3", "9", "9", "0", "0", "0", "0", "0"]
    assert "warning: LLM population 'llm_sellers' (3 agents) applied no action" in out


def test_cli_json_run_keeps_stdout_json_and_warns_on_stderr(tmp_path):
    def text_only(request: dict[str, Any]) -> dict[str, Any]:
        return {"content": "I think I will buy something."}  # never a tool call

    with FakeOpenAIServer(responder=text_only) as server:
        result = CliRunner().invoke(
            app,
            ["run", "llm_double_auction", "--steps", "2", "--model", "openai/fake-model", "--api-base", server.base_url,
             "--out", str(tmp_path), "--json", "--set", "populations.2.count=0", "--set", "populations.3.count=0"],
            env={"OPENAI_API_KEY": "sk-test"},
        )
    assert result.exit_code == 0, result.output
    llm = json.loads(result.stdout)["llm"]
    assert llm["populations"]["llm_buyers"]["invalid_tool_calls"] > 0
    assert llm["populations"]["llm_buyers"]["actions_applied"] == 0
    assert "warning: LLM population 'llm_buyers'" in result.stderr


# -- analyze ---------------------------------------------------------------------------------------


def test_analyze_credits_no_zi_surplus_to_failing_llm_agents(tmp_path):
    def every_call_fails(request: ChatRequest) -> ChatResponse:
        raise LLMError("server error", model=request.model, kind="server")

    model = _run(tmp_path, every_call_fails, steps=4)
    assert model.tallies.trades > 0  # the ZI-C traders trade
    rec = load_recording(model.recording_path)
    costs = llm_costs(rec)
    assert costs["calls"] > 0 and costs["failed_calls"] == costs["calls"]
    assert costs["realised_surplus"] is None and costs["tokens_per_surplus"] is None
    assert costs["invalid_action_rate"] is None  # no LLM action at all: n/a, not 0.0
    assert len(costs["warnings"]) == 2


def test_analyze_counts_only_llm_agents_surplus_and_calls(mixed, capsys):
    rec = load_recording(mixed.recording_path)
    costs = llm_costs(rec)
    llm_ids = {a.unique_id for a in mixed.llm_agents}
    # the LLM buyers' own gains (value - price); the ZI traders' do not count
    own = sum(mixed.agent_surplus(a) for a in mixed.llm_agents)
    total = summary_metrics(rec)["realised_surplus"]
    assert costs["realised_surplus"] == pytest.approx(mixed.money.to_units(own))
    assert costs["realised_surplus"] != pytest.approx(total)
    assert costs["tokens_per_surplus"] == pytest.approx(costs["total_tokens"] / costs["realised_surplus"])
    assert costs["agents"] == len(llm_ids) == 6
    assert costs["populations"]["llm_buyers"]["repaired_tool_calls"] == 9
    assert costs["populations"]["llm_sellers"]["failed_calls"] == 9
    # the LLM agents' own actions: every invalid call was repaired, so none was rejected
    assert costs["invalid_action_rate"] == 0.0 and costs["invalid_tool_call_rate"] == pytest.approx(0.5)
    assert costs["warnings"] and "llm_sellers" in costs["warnings"][0]
    rows = {label: value for _, label, value in metric_rows(summary_metrics(rec))}
    assert rows["LLM actions applied (llm_sellers)"] == "0" and rows["LLM tool calls repaired (llm_buyers)"] == "9"
    result = CliRunner().invoke(app, ["analyze", str(mixed.recording_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "warning: LLM population 'llm_sellers'" in result.stderr
