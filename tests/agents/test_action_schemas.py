"""Structured output small models can follow: per-state schemas, stable tool lists, tool mode
``auto`` (probe, header, replay), the JSON-mode prompt, lenient parsing and per-purpose max_tokens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from mesa_llm.agents.action_schemas import (
    MAX_ENUM_IDS,
    MAX_SCHEMA_STRING,
    MAX_STATE_STRING,
    id_schema,
)
from mesa_llm.cli import app
from mesa_llm.llm import ChatRequest, ChatResponse
from mesa_llm.llm.testing import ScriptedChatModel, text_response, tool_call_response
from mesa_llm.model import MarketModel
from mesa_llm.replay import replay
from mesa_llm.scenario import load_scenario
from tests.fake_openai_server import FakeOpenAIServer

runner = CliRunner()


def _events(model: MarketModel) -> list[dict[str, Any]]:
    assert model.recording_path is not None
    return [json.loads(line) for line in model.recording_path.read_text().splitlines()]


def _json_tools(request: ChatRequest) -> dict[str, dict[str, Any]]:
    """The argument schemas a JSON-mode request offers, by tool name."""
    assert request.tools is None and request.response_format is not None
    variants = request.response_format["json_schema"]["schema"]["properties"]["actions"]["items"]["anyOf"]
    return {v["properties"]["tool"]["const"]: v["properties"]["arguments"] for v in variants}


def _strings(node: Any) -> list[dict[str, Any]]:
    """Every string schema without an enum, anywhere in ``node``."""
    found = []
    if isinstance(node, dict):
        if node.get("type") == "string" and "enum" not in node and "const" not in node:
            found.append(node)
        for value in node.values():
            found += _strings(value)
    elif isinstance(node, list):
        for value in node:
            found += _strings(value)
    return found


def _actions(text: list[dict[str, Any]] | dict[str, Any]) -> ChatResponse:
    return text_response(json.dumps({"actions": text if isinstance(text, list) else [text]}))


# -- per-state schemas (JSON mode) ------------------------------------------------------------


def test_json_mode_schemas_name_what_exists_this_step_in_a_market(tmp_path):
    """Goods, the sides a role may use, bounded prices and quantities, other agents as recipients,
    and cancel_order only once an order rests, with its id."""
    spec = load_scenario("llm_double_auction", overrides=["steps=2", "populations.0.params.plan_every=0", "populations.1.params.plan_every=0"])

    def responder(request: ChatRequest) -> ChatResponse:
        tools = _json_tools(request)
        if request.agent_id == 1 and "cancel_order" not in tools:  # a resting order to cancel later
            return _actions({"tool": "place_order", "arguments": {"good": "widget", "side": "buy", "price": 2.0, "quantity": 1, "lifetime": "gtc"}})
        return _actions({"tool": "wait", "arguments": {}})

    chat = ScriptedChatModel(responder, tool_mode="json")
    model = MarketModel(spec, output_dir=tmp_path, chat_model=chat)
    model.run()
    first = {r.agent_id: _json_tools(r) for r in chat.requests[:6]}
    buyer, seller = first[1], first[4]
    order = buyer["place_order"]["properties"]
    assert order["good"]["enum"] == ["widget"]
    assert buyer["place_order"]["properties"]["side"]["enum"] == ["buy"]
    assert seller["place_order"]["properties"]["side"]["enum"] == ["sell"]
    assert (order["price"]["minimum"], order["price"]["maximum"]) == (1.0, 200.0)
    assert order["quantity"]["maximum"] == 1000  # 1000.00 cash at the 1.00 minimum price
    assert seller["place_order"]["properties"]["quantity"]["maximum"] == 3  # its 3 widgets
    all_ids = [a.unique_id for a in model.traders]
    assert buyer["send_message"]["properties"]["recipient_id"]["enum"] == [i for i in all_ids if i != 1]
    assert "cancel_order" not in buyer  # nothing to cancel at step 1
    assert buyer["wait"]["properties"] == {} and buyer["wait"]["additionalProperties"] is False  # no ramble
    second = next(_json_tools(r) for r in chat.requests[6:] if r.agent_id == 1)
    resting = [o.order_id for o in model.exchange.open_orders(1)]
    assert resting and second["cancel_order"]["properties"]["order_id"]["enum"] == resting
    for tools in (buyer, seller, second):
        assert all(0 < s["maxLength"] <= MAX_STATE_STRING for s in _strings(tools))


def test_json_mode_schemas_name_sessions_offers_and_issue_ranges(tmp_path):
    """In a negotiation: the session ids that allow the action, the standing offer's id, terms
    bounded to the outcome space; the JSON-mode prompt lists the arguments and one example."""
    spec = load_scenario("bilateral_haggle", overrides=["steps=2", "populations.0.count=1", "populations.1.count=1"])

    def responder(request: ChatRequest) -> ChatResponse:
        tools = _json_tools(request)
        if "make_offer" in tools:
            session = tools["make_offer"]["properties"]["session_id"]["enum"][0]
            return _actions({"tool": "make_offer", "arguments": {"session_id": session, "terms": {"price": 9500}}})
        return _actions({"tool": "wait", "arguments": {}})

    chat = ScriptedChatModel(responder, tool_mode="json")
    model = MarketModel(spec, output_dir=tmp_path, chat_model=chat)
    model.run()
    buyer_id, seller_id = (a.unique_id for a in model.llm_agents)
    # step 1 is the seller's turn: the buyer could only talk, so it is not called (skip_idle)
    request = chat.requests[0]
    assert request.agent_id == seller_id and chat.requests[1].agent_id == buyer_id
    seller_tools = _json_tools(request)
    sessions = list(model.desk.sessions)
    offer = seller_tools["make_offer"]
    assert offer["properties"]["session_id"]["enum"] == sessions and "session_id" in offer["required"]
    price = offer["properties"]["terms"]["properties"]["price"]
    assert (price["minimum"], price["maximum"]) == (3000.0, 13000.0)
    prompt = request.messages[-1]["content"]
    assert "- make_offer(session_id: " + json.dumps(sessions[0]) in prompt and "price: number 3000..13000" in prompt
    assert 'e.g. {"actions":[{"tool":"make_offer","arguments":{"session_id":' in prompt
    buyer_tools = _json_tools(chat.requests[1])
    observed = next(e["content"] for e in _events(model) if e["event_type"] == "observation" and e["agent_id"] == buyer_id and e["step"] == 2)
    standing = [o["offer_id"] for o in observed["negotiations"][0]["standing"]]
    assert standing and buyer_tools["accept_offer"]["properties"]["offer_id"]["enum"] == standing
    assert buyer_tools["accept_offer"]["properties"]["session_id"]["enum"] == sessions


def test_idle_turns_skip_the_model_unless_asked_or_written_to(tmp_path):
    """skip_idle: an agent that can only talk, wait or walk away (the other side's turn) and has no
    new message is not called; with skip_idle off it is called with exactly those tools."""
    base = ["steps=3", "populations.0.count=1", "populations.1.count=1"]

    def run(extra: list[str], responder: Any) -> tuple[MarketModel, ScriptedChatModel]:
        chat = ScriptedChatModel(responder, tool_mode="json")
        model = MarketModel(load_scenario("bilateral_haggle", overrides=base + extra), output_dir=tmp_path / str(len(extra)), chat_model=chat)
        model.run()
        return model, chat

    def wait(request: ChatRequest) -> ChatResponse:
        return _actions({"tool": "wait", "arguments": {}})

    model, chat = run([], wait)
    buyer_id, seller_id = (a.unique_id for a in model.llm_agents)
    # waiting passes the turn, so each side is called only in its own turn: seller, buyer, seller
    assert [r.agent_id for r in chat.requests] == [seller_id, buyer_id, seller_id]

    model, chat = run(["populations.0.params.skip_idle=false", "populations.1.params.skip_idle=false"], wait)
    by_step = [r.agent_id for r in chat.requests]
    assert sorted(by_step[:2]) == sorted([buyer_id, seller_id]) and len(by_step) == 6
    buyer_first = _json_tools(next(r for r in chat.requests if r.agent_id == buyer_id))
    assert set(buyer_first) == {"send_message", "broadcast", "end_negotiation", "wait"}

    # a new message wakes an idle agent: sellers (always called) write to the buyer each step
    def talk(request: ChatRequest) -> ChatResponse:
        tools = _json_tools(request)
        if request.agent_id == seller_id:
            text = {"recipient_id": buyer_id, "text": "hello"}
            return _actions([{"tool": "send_message", "arguments": text}, {"tool": "wait", "arguments": {}}])
        return _actions({"tool": "wait", "arguments": {}}) if "wait" in tools else _actions([])

    model, chat = run(["populations.1.params.skip_idle=false"], talk)
    # buyer: step 1 idle and unwritten-to (skipped), step 2 its turn, step 3 the seller's turn but
    # the seller's step-2 message has arrived
    assert [r.agent_id for r in chat.requests].count(buyer_id) == 2


def test_id_enums_are_bounded():
    assert id_schema(range(5)) == {"type": "integer", "enum": [0, 1, 2, 3, 4]}
    many = id_schema(range(3, 3 + MAX_ENUM_IDS + 1))
    assert "enum" not in many and (many["minimum"], many["maximum"]) == (3, 3 + MAX_ENUM_IDS)


# -- native tools: one stable list --------------------------------------------------------------


def test_tool_list_is_stable_across_steps_and_unusable_tools_are_rejected_with_a_reason(tmp_path):
    spec = load_scenario("llm_double_auction", overrides=["steps=3", "populations.0.params.plan_every=0", "populations.1.params.plan_every=0"])

    def responder(request: ChatRequest) -> ChatResponse:
        if request.agent_id == 1 and request.purpose == "act":  # cancel_order before any order exists
            return tool_call_response("cancel_order", {"order_id": 1})
        if request.agent_id == 2:
            return tool_call_response("place_order", {"good": "widget", "side": "buy", "price": 2.0, "quantity": 1, "lifetime": "gtc"})
        return tool_call_response("wait", {})

    chat = ScriptedChatModel(responder)
    model = MarketModel(spec, output_dir=tmp_path, chat_model=chat)
    model.run()
    by_agent: dict[int, list[Any]] = {}
    for r in chat.requests:
        if r.purpose == "act":
            by_agent.setdefault(r.agent_id, []).append(r.tools)
    lists = by_agent[2]
    assert len(lists) == 3 and lists[0] == lists[1] == lists[2]  # even though cancel_order became usable
    names = [t["function"]["name"] for t in lists[0]]
    assert "cancel_order" in names and "make_offer" not in names and "propose_alliance" not in names
    order = next(t for t in lists[0] if t["function"]["name"] == "place_order")["function"]["parameters"]["properties"]
    assert order["good"]["enum"] == ["widget"] and order["side"]["enum"] == ["buy"]
    assert all(s["maxLength"] <= MAX_SCHEMA_STRING for s in _strings(lists[0]))
    repair = next(r for r in chat.requests if r.agent_id == 1 and r.purpose == "repair")  # told why, in the step
    results = [m["content"] for m in repair.messages if m["role"] == "tool"]
    assert results and results[0].startswith("error: cancel_order is not usable now; usable now: place_order")


# -- tool mode auto ------------------------------------------------------------------------------


def _probe_then(answer_probe: ChatResponse, seen: list[ChatRequest]) -> Any:
    def responder(request: ChatRequest) -> ChatResponse:
        seen.append(request)
        if request.purpose == "probe":
            return answer_probe
        if request.response_format is not None:
            return _actions({"tool": "wait", "arguments": {}})
        return tool_call_response("wait", {})

    return responder


def _small_market() -> Any:
    return load_scenario(
        "llm_double_auction",
        overrides=["steps=2", "populations.0.count=1", "populations.1.count=1", "populations.0.params.plan_every=0", "populations.1.params.plan_every=0"],
    )


def test_auto_mode_uses_json_when_the_probe_gets_text_records_it_and_replay_does_not_probe(tmp_path):
    seen: list[ChatRequest] = []
    chat = ScriptedChatModel(_probe_then(text_response("pong"), seen), name="local/small", tool_mode=None)
    model = MarketModel(_small_market(), output_dir=tmp_path / "run", chat_model=chat)
    model.run()
    probes = [r for r in seen if r.purpose == "probe"]
    assert len(probes) == 1 and probes[0].tools and probes[0].tools[0]["function"]["name"] == "ping"
    acts = [r for r in seen if r.purpose == "act"]
    assert acts and all(r.response_format is not None and r.tools is None for r in acts)
    header = _events(model)[0]["content"]["llm"]
    assert header["tool_modes"]["local/small"]["mode"] == "json"
    assert header["tool_modes"]["local/small"]["decided_by"] == "probe"
    result = replay(model.recording_path, verify=True, output_dir=tmp_path / "replay")
    assert result.divergence is None and result.replayed_calls == len(acts)
    replayed = json.loads(result.recording.read_text().splitlines()[0])["content"]["llm"]
    assert replayed["tool_modes"]["local/small"]["mode"] == "json"


def test_auto_mode_uses_tools_when_the_probe_gets_a_tool_call(tmp_path):
    seen: list[ChatRequest] = []
    chat = ScriptedChatModel(_probe_then(tool_call_response("ping", {}), seen), tool_mode=None)
    model = MarketModel(_small_market(), output_dir=tmp_path, chat_model=chat)
    model.run()
    assert sum(r.purpose == "probe" for r in seen) == 1
    acts = [r for r in seen if r.purpose == "act"]
    assert acts and all(r.tools and r.response_format is None for r in acts)
    assert _events(model)[0]["content"]["llm"]["tool_modes"]["scripted/test"]["mode"] == "tools"


def test_structured_output_models_still_force_json_without_a_probe(tmp_path):
    seen: list[ChatRequest] = []
    chat = ScriptedChatModel(_probe_then(tool_call_response("ping", {}), seen), name="local/no-tools", tool_mode=None)
    spec = _small_market()
    spec.llm = spec.llm.model_copy(update={"structured_output_models": ["local/no-tools"]})
    MarketModel(spec, output_dir=tmp_path, chat_model=chat).run()
    assert not [r for r in seen if r.purpose == "probe"]
    assert all(r.response_format is not None for r in seen if r.purpose == "act")


def _llama_like(request: dict[str, Any]) -> dict[str, Any]:
    """A server like llama.cpp without a tool-calling template: text for tools, JSON for a schema."""
    if request.get("tools"):
        return {"content": "I would call ping."}
    schema = (request.get("response_format") or {}).get("json_schema")
    if schema is None:
        return {"content": "Trade near my values."}
    variants = schema["schema"]["properties"]["actions"]["items"]["anyOf"]
    order = next((v["properties"]["arguments"] for v in variants if v["properties"]["tool"]["const"] == "place_order"), None)
    if order is None:
        return {"content": json.dumps({"actions": [{"tool": "wait", "arguments": {}}]})}
    props = order["properties"]
    side = props["side"]["enum"][0]
    price = 150.0 if side == "buy" else 50.0
    args = {"good": props["good"]["enum"][0], "side": side, "price": price, "quantity": 1}
    return {"content": "```json\n" + json.dumps({"actions": [{"tool": "place_order", "arguments": args}]}) + "\n```"}


def test_cli_against_a_server_without_tool_calling_needs_no_other_flag(tmp_path):
    with FakeOpenAIServer(responder=_llama_like) as server:
        result = runner.invoke(
            app,
            ["run", "llm_double_auction", "--steps", "2", "--model", "openai/x", "--api-base", server.base_url,
             "--set", "populations.0.count=1", "--set", "populations.1.count=1", "--out", str(tmp_path), "--json"],
            env={"OPENAI_API_KEY": "sk-local", "COLUMNS": "300"},
        )
        bodies = list(server.requests)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    events = [json.loads(line) for line in Path(summary["recording"]).read_text().splitlines()]
    assert events[0]["content"]["llm"]["tool_modes"]["openai/x"]["mode"] == "json"
    llm_ids = {a["agent_id"] for a in events[0]["content"]["agents"] if a["model"] == "openai/x"}
    applied = [e for e in events if e["event_type"] == "action" and e["agent_id"] in llm_ids and e["content"]["type"] != "wait"]
    assert {e["agent_id"] for e in applied} == llm_ids
    assert summary["llm"]["failed_calls"] == 0
    assert all(b.get("max_tokens") for b in bodies)  # every request is bounded


# -- max_tokens, repair turn, lenient JSON ------------------------------------------------------


def test_max_tokens_is_sent_per_purpose_and_settable_per_population(tmp_path):
    spec = load_scenario(
        "llm_double_auction",
        overrides=["steps=1", "populations.0.count=1", "populations.1.count=1", "populations.1.params.act_max_tokens=77"],
    )

    def responder(request: ChatRequest) -> ChatResponse:
        if request.purpose == "plan":
            return text_response("plan")
        if request.purpose == "act":
            return tool_call_response("place_order", {"good": "nothing"})  # invalid: a repair round
        return tool_call_response("wait", {})

    chat = ScriptedChatModel(responder)
    MarketModel(spec, output_dir=tmp_path, chat_model=chat).run()
    seen = {(r.agent_id, r.purpose): r.max_tokens for r in chat.requests}
    assert seen[(1, "plan")] == 160 and seen[(1, "act")] == 300 and seen[(1, "repair")] == 300
    assert seen[(2, "act")] == 77


def test_the_repair_rounds_tool_call_turn_carries_empty_content(tmp_path):
    def responder(request: ChatRequest) -> ChatResponse:
        if request.purpose == "act":
            return tool_call_response("place_order", {"good": "widget", "side": "buy", "price": -1, "quantity": 1})
        return tool_call_response("wait", {})

    chat = ScriptedChatModel(responder)
    MarketModel(_small_market(), output_dir=tmp_path, chat_model=chat).run()
    repair = next(r for r in chat.requests if r.purpose == "repair")
    turn = next(m for m in repair.messages if m["role"] == "assistant")
    assert turn["tool_calls"] and turn["content"] == ""


def test_json_answers_with_raw_newlines_and_code_fences_are_parsed(tmp_path):
    raw = '```json\n{"actions": [{"tool": "broadcast", "arguments": {"text": "line one\nline two"}}]}\n```'
    chat = ScriptedChatModel(lambda r: text_response("Sure:\n" + raw + "\nDone."), tool_mode="json")
    model = MarketModel(_small_market(), output_dir=tmp_path, chat_model=chat)
    model.run()
    messages = [e["content"] for e in _events(model) if e["event_type"] == "message"]
    assert messages and messages[0]["text"] == "line one\nline two"


def test_the_template_check_renders_the_json_mode_branch_too(tmp_path):
    """validate/run check the prompts before any probe: a template broken only in JSON mode is caught."""
    from mesa_llm.prompt_check import check_prompt_templates
    from tests.support.files import write_yaml

    (tmp_path / "act.j2").write_text('{% if tool_mode == "json" %}{{ no_such_variable }}{% endif %}Act now.')
    raw = {
        "name": "json_branch",
        "steps": 1,
        "goods": [{"name": "widget", "reference_price": 100.0, "min_price": 1.0, "max_price": 200.0}],
        "llm": {"templates": {"act": "act.j2"}},
        "populations": [
            {"name": "llm", "role": "buyer", "count": 1, "policy": "llm", "private": {"widget": {"units": 1, "values": [150.0]}}, "endowment": {"cash": 1000.0}},
        ],
    }
    spec = load_scenario(write_yaml(tmp_path / "s.yaml", raw))
    problems = check_prompt_templates(spec, lambda small, chat: MarketModel(small, record=False, chat_model=chat))
    assert problems and "no_such_variable" in problems[0]


def test_json_mode_asks_for_at_most_max_actions(tmp_path):
    chat = ScriptedChatModel(lambda r: _actions({"tool": "wait", "arguments": {}}), tool_mode="json")
    spec = _small_market()
    spec.populations[0].params["max_actions"] = 2
    MarketModel(spec, output_dir=tmp_path, chat_model=chat).run()
    request = next(r for r in chat.requests if r.purpose == "act" and r.agent_id == 1)
    actions = request.response_format["json_schema"]["schema"]["properties"]["actions"]
    assert actions["minItems"] == 1 and actions["maxItems"] == 2


def test_the_example_never_shows_a_tool_that_ends_or_cancels_something():
    from mesa_llm.actions import ActionRegistry
    from mesa_llm.agents.action_schemas import example_call, stable_tool_schemas

    tools = stable_tool_schemas(ActionRegistry(), ["end_negotiation", "cancel_order", "send_message", "wait"], goods={}, sides=[], peers=[3])
    assert json.loads(example_call(tools)) == {"actions": [{"tool": "send_message", "arguments": {"recipient_id": 3, "text": "..."}}]}
    only_ending = stable_tool_schemas(ActionRegistry(), ["end_negotiation", "wait"], goods={}, sides=[], peers=[])
    assert json.loads(example_call(only_ending))["actions"][0]["tool"] == "wait"
