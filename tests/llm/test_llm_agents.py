"""LLM agents in the market with in-process chat models: validation, repair, faults, recording."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mesa_llm.llm import ChatRequest, ChatResponse, LLMError
from mesa_llm.llm.testing import (
    ScriptedChatModel,
    text_response,
    tool_call_response,
    tool_calls_response,
)
from mesa_llm.model import MarketModel, resolve_llm_models
from mesa_llm.scenario import load_persona, load_scenario, validate_scenario
from tests.support.chat_scripts import _user_text, sensible
from tests.support.files import write_yaml


def _events(model: MarketModel) -> list[dict[str, Any]]:
    assert model.recording_path is not None
    return [json.loads(line) for line in model.recording_path.read_text().splitlines()]


def _llm_scenario(steps: int = 4, **llm: Any) -> Any:
    spec = load_scenario("llm_double_auction", overrides=[f"steps={steps}"])
    if llm:
        spec.llm = spec.llm.model_copy(update=llm)
    return spec


def test_llm_agents_trade_and_every_call_is_recorded(tmp_path):
    chat = ScriptedChatModel(sensible, name="scripted/sensible")
    model = MarketModel(_llm_scenario(), output_dir=tmp_path, chat_model=chat)
    ledger = model.exchange.ledger
    cash0 = ledger.total_cash()
    model.run()
    ledger.check_invariants()
    assert ledger.total_cash() == cash0
    events = _events(model)
    llm_ids = {a.unique_id for a in model.llm_agents}
    assert len(llm_ids) == 6
    calls = [e for e in events if e["event_type"] == "llm_call"]
    # plan every 3 steps (steps 1 and 4) + act every step, per LLM agent
    assert len(calls) == len(chat.requests) == 6 * (4 + 2)
    call = next(c for c in calls if c["content"]["purpose"] == "act")
    content = call["content"]
    assert set(content) >= {"model", "purpose", "request", "response", "usage", "cost_usd", "latency_s", "attempts", "error"}
    assert content["request"]["tools"] and content["request"]["messages"][0]["role"] == "system"
    assert content["response"]["tool_calls"][0]["name"] == "place_order"
    assert content["parsed_tool_calls"][0]["valid"] is True
    assert any(e["event_type"] == "plan" and e["agent_id"] in llm_ids for e in events)
    trades = [e["content"] for e in events if e["event_type"] == "trade"]
    assert any(t["buyer_id"] in llm_ids or t["seller_id"] in llm_ids for t in trades)
    # an LLM buyer never pays more than its value, whatever it asked for
    for agent in model.llm_agents:
        assert model.agent_surplus(agent) >= 0
    header = events[0]["content"]
    assert header["llm"]["models"] == {"llm_buyers": "scripted/sensible", "llm_sellers": "scripted/sensible"}
    hashes = header["llm"]["prompts"]["llm_buyers"]
    assert set(hashes) >= {"system/buyer.j2", "act.j2", "observation.j2"} and all(len(h) == 64 for h in hashes.values())
    assert [a["model"] for a in header["agents"] if a["agent_id"] in llm_ids] == ["scripted/sensible"] * 6
    usage = [e for e in events if e["event_type"] == "llm_usage"][0]["content"]
    assert usage["run"]["calls"] == len(calls)
    # the run's totals are the sums of what each recorded call used
    assert usage["run"]["prompt_tokens"] == sum(c["content"]["usage"]["prompt_tokens"] for c in calls)
    assert usage["run"]["completion_tokens"] == sum(c["content"]["usage"]["completion_tokens"] for c in calls)


# --------------------------------------------------------------------------- faults


def _one_llm_buyer(tmp_path: Path, responder: Any, **params: Any) -> MarketModel:
    raw = {
        "name": "fault_market",
        "seed": 5,
        "steps": 3,
        "goods": [{"name": "widget", "reference_price": 100.0, "min_price": 1.0, "max_price": 200.0}],
        "market": {"check_invariants": True},
        "populations": [
            {"name": "llm", "role": "buyer", "count": 1, "policy": "llm", "params": {"plan_every": 0, **params},
             "private": {"widget": {"units": 2, "values": [150.0, 140.0]}}, "endowment": {"cash": 1000.0}},
            {"name": "zi_buyers", "role": "buyer", "count": 3, "policy": "zi_c",
             "private": {"widget": {"units": 3, "values": [150.0, 130.0, 110.0]}}, "endowment": {"cash": 1000.0}},
            {"name": "zi_sellers", "role": "seller", "count": 3, "policy": "zi_c",
             "private": {"widget": {"units": 3, "costs": [50.0, 70.0, 90.0]}}, "endowment": {"holdings": {"widget": 3}}},
        ],
    }
    chat = responder if isinstance(responder, ScriptedChatModel) else ScriptedChatModel(responder)
    return MarketModel(validate_scenario(raw), output_dir=tmp_path, chat_model=chat)


GOOD_BID = ("place_order", {"good": "widget", "side": "buy", "price": 149.0, "quantity": 1})

BAD_ANSWERS = {
    "malformed_json": tool_call_response("place_order", '{"good": "widget", "side": "buy", "price": 149,'),
    "unknown_tool": tool_call_response("buy_everything", {"good": "widget"}),
    "schema_invalid": tool_call_response("place_order", {"good": "widget", "side": "buy", "price": -3, "quantity": "lots"}),
    "empty": text_response(None),
    "text_not_tool": text_response("I would like to buy one widget at 149 please."),
}


@pytest.mark.parametrize("fault", sorted(BAD_ANSWERS))
def test_bad_answer_is_repaired_once_then_dropped_and_others_still_trade(tmp_path, fault):
    # first answer bad, repair answer still bad: the action is dropped and recorded
    chat = ScriptedChatModel(lambda request: BAD_ANSWERS[fault])
    model = _one_llm_buyer(tmp_path, chat)
    model.step()
    model.finish()
    llm_id = model.llm_agents[0].unique_id
    events = _events(model)
    calls = [e["content"] for e in events if e["event_type"] == "llm_call"]
    assert [c["purpose"] for c in calls] == ["act", "repair"]
    assert all(not any(p["valid"] for p in c["parsed_tool_calls"]) for c in calls)
    rejected = [e for e in events if e["event_type"] == "action_rejected" and e["agent_id"] == llm_id]
    assert rejected and rejected[0]["content"]["reason"]
    assert not any(e["event_type"] == "order" and e["agent_id"] == llm_id for e in events)
    assert model.exchange.ledger.account(llm_id).reserved_cash == 0
    # the repair request showed the model its error
    repair_request = chat.requests[1]
    assert any("invalid" in (m.get("content") or "") for m in repair_request.messages if m["role"] == "user")
    # the other agents' actions of the same step still applied
    assert any(e["event_type"] == "trade" for e in events)


@pytest.mark.parametrize("fault", sorted(BAD_ANSWERS))
def test_bad_answer_repaired_in_the_repair_round_is_applied(tmp_path, fault):
    def responder(request: ChatRequest) -> ChatResponse:
        if request.purpose == "repair":
            return tool_call_response(*GOOD_BID)
        return BAD_ANSWERS[fault]

    model = _one_llm_buyer(tmp_path, responder)
    model.step()
    model.finish()
    llm_id = model.llm_agents[0].unique_id
    events = _events(model)
    orders = [e["content"] for e in events if e["event_type"] == "order" and e["agent_id"] == llm_id]
    assert orders == [{"order_id": orders[0]["order_id"], "side": "buy", "good": "widget", "price": 149.0, "quantity": 1, "lifetime": "step"}]
    assert not [e for e in events if e["event_type"] == "action_rejected" and e["agent_id"] == llm_id]


def test_valid_and_invalid_calls_in_one_answer(tmp_path):
    both = tool_calls_response([GOOD_BID, ("place_order", {"good": "gold", "side": "buy", "price": 1, "quantity": 1, "colour": "red"})])

    def responder(request: ChatRequest) -> ChatResponse:
        return text_response("no") if request.purpose == "repair" else both

    chat = ScriptedChatModel(responder)
    model = _one_llm_buyer(tmp_path, chat)
    model.step()
    model.finish()
    llm_id = model.llm_agents[0].unique_id
    events = _events(model)
    assert [e["content"]["price"] for e in events if e["event_type"] == "order" and e["agent_id"] == llm_id] == [149.0]
    rejected = [e["content"] for e in events if e["event_type"] == "action_rejected" and e["agent_id"] == llm_id]
    assert len(rejected) == 1 and "colour" in rejected[0]["reason"]
    # the repair round showed which calls were accepted and which were not, as tool results
    tool_results = [m for m in chat.requests[1].messages if m["role"] == "tool"]
    assert [m["content"].split(":")[0] for m in tool_results] == ["accepted", "error"]


def test_world_rules_still_apply_to_valid_llm_actions(tmp_path):
    # schema-valid but unaffordable: the exchange rejects it and the agent sees why next step
    chat = ScriptedChatModel(lambda r: tool_call_response("place_order", {"good": "widget", "side": "buy", "price": 199.0, "quantity": 50}))
    model = _one_llm_buyer(tmp_path, chat)
    model.step()
    model.step()
    model.finish()
    second_act = [r for r in chat.requests if r.purpose == "act"][1]
    assert "insufficient funds" in _user_text(second_act)
    assert model.exchange.ledger.account(model.llm_agents[0].unique_id).cash == 100000


def test_transient_failure_after_retries_loses_only_that_agents_step(tmp_path):
    error = LLMError("scripted/test: rate limited (HTTP 429)", model="scripted/test", kind="rate_limit", attempts=4, status_code=429, retryable=True)
    model = _one_llm_buyer(tmp_path, ScriptedChatModel(lambda r: error))
    model.run()
    events = _events(model)
    llm_id = model.llm_agents[0].unique_id
    failures = [e["content"] for e in events if e["event_type"] == "agent_error" and e["agent_id"] == llm_id]
    assert len(failures) == 3 and "429" in failures[0]["error"] and failures[0]["fatal"] is False
    calls = [e["content"] for e in events if e["event_type"] == "llm_call"]
    assert calls[0]["error"] and calls[0]["attempts"] == 4 and calls[0]["response"] is None
    assert any(e["event_type"] == "trade" for e in events)  # the other agents traded on
    # ...but a run whose every LLM call failed does not pass for a good one (llm.max_failed_steps)
    assert model.steps == 3 and model.stop_status == "failed"
    assert model.stop_reason is not None and "every LLM call" in model.stop_reason


def test_authentication_failure_stops_the_run_cleanly(tmp_path):
    error = LLMError("scripted/test: authentication failed (HTTP 401)", model="scripted/test", kind="authentication", status_code=401)
    model = _one_llm_buyer(tmp_path, ScriptedChatModel(lambda r: error))
    model.run()
    assert model.steps == 1 and model.stop_status == "failed" and "401" in (model.stop_reason or "")
    events = _events(model)
    assert events[-1]["event_type"] == "simulation_end" and events[-1]["content"]["status"] == "failed"
    assert any(e["event_type"] == "run_stopped" for e in events)
    assert any(e["event_type"] == "trade" for e in events)  # the step itself completed


def test_budget_stops_the_run_at_the_end_of_the_step(tmp_path):
    def costly(request: ChatRequest) -> ChatResponse:
        response = sensible(request)
        response.cost_usd = 0.01
        return response

    spec = _llm_scenario(steps=10, max_cost_usd=0.15)
    model = MarketModel(spec, output_dir=tmp_path, chat_model=ScriptedChatModel(costly))
    summary = model.run()
    # 6 agents x (plan + act) = 0.12 at step 1; step 2 adds 0.06 -> over budget, stop after step 2
    assert model.steps == 2 and model.stop_status == "budget_exceeded"
    assert "budget" in (summary.stop_reason or "")
    events = _events(model)
    assert sum(e["event_type"] == "step_end" for e in events) == 2
    assert events[-1]["content"]["status"] == "budget_exceeded"
    assert summary.llm is not None and summary.llm["cost_usd"] == pytest.approx(0.18)


def test_json_mode_for_models_without_tool_calls(tmp_path):
    def json_answer(request: ChatRequest) -> ChatResponse:
        assert request.tools is None and request.response_format is not None
        return text_response(json.dumps({"actions": [{"tool": GOOD_BID[0], "arguments": GOOD_BID[1]}]}))

    chat = ScriptedChatModel(json_answer)
    model = _one_llm_buyer(tmp_path, chat, tool_mode="json")
    model.step()
    model.finish()
    schema = chat.requests[0].response_format
    assert schema["type"] == "json_schema"
    names = [v["properties"]["tool"]["const"] for v in schema["json_schema"]["schema"]["properties"]["actions"]["items"]["anyOf"]]
    assert "place_order" in names
    llm_id = model.llm_agents[0].unique_id
    assert any(e["event_type"] == "order" and e["agent_id"] == llm_id for e in _events(model))


@pytest.mark.parametrize("finish_reason", ["length", "stop"])
def test_json_answer_cut_off_by_the_token_limit_keeps_its_whole_actions(tmp_path, finish_reason):
    """A JSON answer cut off by max_tokens (finish_reason "length") inside its second action: the
    whole first action is applied and the cut-off rest is one rejection that starts no repair
    round; a broken answer that was not cut off stays one invalid answer, and is repaired."""
    whole = json.dumps({"tool": GOOD_BID[0], "arguments": GOOD_BID[1]})
    text = '{"actions": [\n  ' + whole + ',\n  {"tool": "send_message", "arguments": {"recipient_id": 1, "text": "3, 11, 3, 1'

    def cut_off(request: ChatRequest) -> ChatResponse:
        response = text_response(text)
        response.finish_reason = finish_reason
        return response

    chat = ScriptedChatModel(cut_off)
    model = _one_llm_buyer(tmp_path, chat, tool_mode="json")
    model.step()
    model.finish()
    assert len(chat.requests) == (1 if finish_reason == "length" else 2)
    llm_id = model.llm_agents[0].unique_id
    events = _events(model)
    orders = [e for e in events if e["event_type"] == "order" and e["agent_id"] == llm_id]
    rejected = [e["content"]["reason"] for e in events if e["event_type"] == "action_rejected" and e["agent_id"] == llm_id]
    if finish_reason == "length":
        assert len(orders) == 1
        assert rejected == ["answer cut off by the token limit after 1 complete action(s); the rest is dropped"]
    else:
        assert orders == [] and len(rejected) == 1 and rejected[0].startswith("answer is not valid JSON")


def test_structured_output_is_configurable_per_model(tmp_path):
    chat = ScriptedChatModel(lambda r: text_response('{"actions": [{"tool": "wait", "arguments": {}}]}'), name="local/no-tools")
    spec = _llm_scenario(steps=1)
    spec.llm = spec.llm.model_copy(update={"structured_output_models": ["local/no-tools"]})
    model = MarketModel(spec, output_dir=tmp_path, chat_model=chat)
    model.run()
    assert chat.requests and all(r.tools is None and r.response_format is not None for r in chat.requests if r.purpose == "act")
    waits = [e for e in _events(model) if e["event_type"] == "action" and e["content"]["type"] == "wait"]
    assert len(waits) == 6


def test_messages_are_tools_delivered_next_step(tmp_path):
    def chatty(request: ChatRequest) -> ChatResponse:
        return tool_calls_response([("broadcast", {"text": "anyone selling below 120?"}), ("wait", {})])

    chat = ScriptedChatModel(chatty)
    model = _one_llm_buyer(tmp_path, chat)
    model.step()
    model.step()
    model.finish()
    events = _events(model)
    messages = [e for e in events if e["event_type"] == "message"]
    assert messages and messages[0]["content"]["channel"] == "broadcast"
    others = [e for e in events if e["event_type"] == "observation" and e["step"] == 2 and e["agent_id"] != model.llm_agents[0].unique_id]
    assert all(o["content"]["messages"][0]["text"] == "anyone selling below 120?" for o in others)


def test_prompt_size_stays_flat():
    chat = ScriptedChatModel(sensible)
    spec = _llm_scenario(steps=50)
    spec.populations[0] = spec.populations[0].model_copy(update={"private": {"widget": spec.populations[0].private["widget"].model_copy(update={"units": 60})}})
    model = MarketModel(spec, record=False, chat_model=chat)
    model.run()
    agent_id = model.llm_agents[0].unique_id
    acts = {}
    for request in chat.requests:
        if request.agent_id == agent_id and request.purpose == "act":
            acts[len(acts) + 1] = sum(len(m["content"] or "") for m in request.messages)
    assert len(acts) == 50
    assert acts[50] <= 1.3 * acts[5], (acts[5], acts[50])


def test_same_answers_give_the_same_recording_whatever_the_call_order(tmp_path):
    async_order = {"n": 0}

    class Jittery(ScriptedChatModel):
        async def complete(self, request: ChatRequest) -> ChatResponse:
            async_order["n"] += 1
            # finish in a different order than started
            await asyncio.sleep(0.001 * ((request.agent_id or 0) * 7 % 5))
            return await super().complete(request)

    runs = []
    for i in range(2):
        model = MarketModel(_llm_scenario(steps=3), output_dir=tmp_path / str(i), chat_model=Jittery(sensible))
        model.run()
        lines = []
        for event in _events(model):
            event.pop("timestamp")
            if event["event_type"] == "llm_call":
                event["content"].pop("latency_s")
            lines.append(event)
        runs.append(lines)
    assert runs[0] == runs[1]


def test_model_resolution_order_and_fallback_notice(tmp_path, monkeypatch):
    monkeypatch.delenv("MESA_LLM_MODEL", raising=False)
    spec = _llm_scenario()
    assert resolve_llm_models(spec) == {"llm_buyers": None, "llm_sellers": None}
    model = MarketModel(spec, output_dir=tmp_path)
    assert not model.llm_agents and len(model.notices) == 2
    assert "using the built-in 'zi_c' policy" in model.notices[0]
    model.run()  # runs with the fallback, no key needed
    assert _events(model)[0]["content"]["notices"] == model.notices
    monkeypatch.setenv("MESA_LLM_MODEL", "env/model")
    assert set(resolve_llm_models(spec).values()) == {"env/model"}
    spec.llm = spec.llm.model_copy(update={"model": "scenario/model"})
    assert set(resolve_llm_models(spec).values()) == {"scenario/model"}
    spec.populations[0] = spec.populations[0].model_copy(update={"model": "persona/model"})
    assert resolve_llm_models(spec) == {"llm_buyers": "persona/model", "llm_sellers": "scenario/model"}
    assert set(resolve_llm_models(spec, "cli/model").values()) == {"cli/model"}


def test_prompt_overrides_per_population_and_strict_undefined(tmp_path):
    act = tmp_path / "my_act.j2"
    act.write_text("CUSTOM ACT for {{ persona.name }}\n{{ observation_text }}")
    raw = load_scenario("llm_double_auction").model_dump(mode="json", exclude={"source_dir"})
    raw["populations"][0]["templates"] = {"act": "my_act.j2"}
    raw["steps"] = 1
    path = write_yaml(tmp_path / "s.yaml", raw)
    chat = ScriptedChatModel(sensible)
    model = MarketModel(load_scenario(path), output_dir=tmp_path / "rec", chat_model=chat)
    model.run()
    buyer_id = model.populations["llm_buyers"][0].unique_id
    seller_id = model.populations["llm_sellers"][0].unique_id
    act_text = {r.agent_id: _user_text(r) for r in chat.requests if r.purpose == "act"}
    assert act_text[buyer_id].startswith("CUSTOM ACT for llm_buyers_0")
    assert not act_text[seller_id].startswith("CUSTOM")
    header = _events(model)[0]["content"]["llm"]["prompts"]
    assert header["llm_buyers"]["act.j2"] != header["llm_sellers"]["act.j2"]
    # a template naming an unknown variable fails loudly, and the agent's step is recorded as failed
    act.write_text("{{ no_such_variable }}")
    model = MarketModel(load_scenario(path), output_dir=tmp_path / "rec2", chat_model=ScriptedChatModel(sensible))
    model.run()
    errors = [e["content"]["error"] for e in _events(model) if e["event_type"] == "agent_error"]
    assert errors and all("no_such_variable" in e for e in errors)


def test_persona_yaml_include_and_load(tmp_path):
    persona = load_persona(Path("scenarios/personas/cautious_buyer.yaml"))
    assert persona.name == "cautious_buyer" and persona.role == "buyer" and persona.count == 1
    assert persona.private["widget"].values == [150.0, 120.0]
    raw = load_scenario("llm_double_auction").model_dump(mode="json", exclude={"source_dir"})
    (tmp_path / "personas").mkdir()
    shutil.copy("scenarios/personas/cautious_buyer.yaml", tmp_path / "personas" / "cautious_buyer.yaml")
    raw["populations"].append({"include": "personas/cautious_buyer.yaml", "style": "bold"})
    raw["steps"] = 2
    spec = load_scenario(write_yaml(tmp_path / "with_persona.yaml", raw))
    chat = ScriptedChatModel(sensible)
    model = MarketModel(spec, output_dir=tmp_path, chat_model=chat)
    model.run()
    agent = model.populations["cautious_buyer"][0]
    assert agent.persona.style == "bold" and agent.persona.backstory.startswith("You run a small repair shop")
    first = next(r for r in chat.requests if r.agent_id == agent.unique_id)
    system, user = first.messages[0]["content"], first.messages[1]["content"]
    assert "repair shop" in system and "Your style: bold" in system
    # the name is the user message's (the system prompt is shared by the population, cache-friendly)
    assert f"You are agent {agent.unique_id} (cautious_buyer)" in user


def test_scenario_temperature_is_the_default_a_population_can_override(tmp_path):
    """llm.temperature reaches every LLM population's requests unless the population sets its own;
    --local makes it 0 (greedy) when the scenario leaves it unset, and keeps a set one."""
    from mesa_llm.llm.local_server import LocalLLMServer
    from mesa_llm.scenario import LLMSettings

    for i, (scenario_t, population_t, sent) in enumerate(((0.3, None, 0.3), (0.3, 0.9, 0.9), (None, None, None))):
        chat = ScriptedChatModel(sensible)
        spec = _llm_scenario(steps=1, temperature=scenario_t)
        if population_t is not None:
            for population in spec.populations:
                if population.policy == "llm":
                    population.params["temperature"] = population_t
        model = MarketModel(spec, output_dir=tmp_path / str(i), chat_model=chat)
        model.step()
        model.finish()
        assert chat.requests and {r.temperature for r in chat.requests} == {sent}

    server = LocalLLMServer.__new__(LocalLLMServer)  # settings only: no process started
    server.port, server.parallel, server.concurrency = 1, 2, 1
    assert server.settings_for("openai/local", LLMSettings())["temperature"] == 0.0
    assert server.settings_for("openai/local", LLMSettings(temperature=0.7))["temperature"] == 0.7
