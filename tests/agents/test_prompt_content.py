"""Prompts fit the scenario and the role: only the mechanisms an agent takes part in, role text that
names the role's tools, the reservation price in money, true market lines, one plan, stable prefix."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from mesa_llm.agents.prompts import num, scores
from mesa_llm.llm import ChatRequest, ChatResponse
from mesa_llm.llm.testing import ScriptedChatModel, text_response, tool_call_response
from mesa_llm.model import MarketModel
from mesa_llm.negotiation import (
    ContinuousIssue,
    LinearAdditiveUtility,
    OutcomeSpace,
    price_utility,
    reservation_price,
)
from mesa_llm.negotiation.issues import CategoricalIssue
from mesa_llm.scenario import load_scenario


def _wait(request: ChatRequest) -> ChatResponse:
    if request.purpose == "plan":
        return text_response("Hold.")
    return tool_call_response("wait", {})


def _run(scenario: str, responder: Any = _wait, overrides: list[str] | None = None) -> tuple[MarketModel, ScriptedChatModel]:
    spec = load_scenario(scenario, overrides=["llm.max_cost_usd=null", *(overrides or [])])
    for population in spec.populations:  # every LLM agent prompted every step (see its prompts)
        if population.policy == "llm":
            population.params["skip_idle"] = False
    chat = ScriptedChatModel(responder)
    model = MarketModel(spec, record=False, chat_model=chat)
    model.run()
    return model, chat


def _by_population(model: MarketModel, chat: ScriptedChatModel, population: str) -> list[ChatRequest]:
    ids = {a.unique_id for a in model.populations[population]}
    return [r for r in chat.requests if r.agent_id in ids]


def _system(requests: list[ChatRequest]) -> str:
    return requests[0].messages[0]["content"]


def _user(request: ChatRequest) -> str:
    return request.messages[1]["content"]


@pytest.fixture(scope="module")
def haggle() -> tuple[MarketModel, ScriptedChatModel]:
    return _run("bilateral_haggle", overrides=["steps=2"])


@pytest.fixture(scope="module")
def balanced() -> tuple[MarketModel, ScriptedChatModel]:
    return _run("balanced", overrides=["steps=2"])


# -- the system prompt describes the agent's mechanisms, nothing else -------------------------------


def test_haggling_buyer_reads_no_call_auction_and_no_redemption_values(haggle):
    model, chat = haggle
    system = _system(_by_population(model, chat, "buyers"))
    lowered = system.lower()
    for absent in ("call market", "call auction", "redemption", "uniform price", "buy orders", "admissible", "auction"):
        assert absent not in lowered, absent
    assert "alternating offers" in lowered and "reservation price" in lowered
    assert "mediat" not in lowered  # no mediation in this scenario


def test_double_auction_trader_reads_the_call_market_and_no_negotiation():
    model, chat = _run("llm_double_auction", overrides=["steps=1", "populations.2.count=0", "populations.3.count=0"])
    system = _system(_by_population(model, chat, "llm_buyers"))
    assert "Call market" in system and "private values" in system and "widget 1..200" in system
    for absent in ("negotiation", "contract", "Mediation", "Reputation", "Alliances", "reservation price"):
        assert absent not in system, absent


def test_mediator_and_regulator_role_text_names_their_tools(balanced):
    model, chat = balanced
    regulator = _system(_by_population(model, chat, "regulator"))
    for tool in ("flag_violation", "impose_fine", "suspend_trader"):
        assert tool in regulator
    assert "may only warn" not in regulator and "Call market" not in regulator  # it places no orders
    mediator = _system(_by_population(model, chat, "mediator"))
    assert "propose_settlement" in mediator and "by sending messages" not in mediator
    assert "Mediation (single text)" in mediator and "Call market" not in mediator


def test_system_prompt_is_identical_every_step_and_across_a_population(haggle):
    model, chat = haggle
    systems = {r.messages[0]["content"] for r in _by_population(model, chat, "buyers")}
    assert len(systems) == 1  # 4 buyers x 2 steps: one cached prefix
    assert len(_by_population(model, chat, "buyers")) == 8


# -- negotiators see their reservation price in money, the issue ticks, the deadline and the turn ---


def test_negotiator_sees_reservation_price_in_money_ticks_deadline_and_turn(haggle):
    model, chat = haggle
    step2 = [r for r in chat.requests if "Step 2 of" in _user(r)]
    assert step2
    for request in step2:
        agent = next(a for a in model.traders if a.unique_id == request.agent_id)
        utility = agent.utilities["car_price"]
        money = reservation_price(utility)
        assert money is not None
        text = _user(request)
        assert f"Your reservation price (private): {num(round(money, 2))}: never " in text
        assert "on a 0-1 scale" not in text  # one issue: the money says it all
        assert "price 3000..13000 in steps of 10" in text
        assert "round 2 of 20 (18 more after this step, but the run ends after step 2)" in text
        session = next(s for s in model.desk.sessions.values() if request.agent_id in s.parties)
        # the seller moves first (round 1), so round 2 is the buyer's
        if request.agent_id == session.buyer_id:
            assert "; your turn." in text
        else:
            assert f"; agent {session.buyer_id}'s turn." in text and "your turn" not in text


def test_reservation_price_of_a_price_utility_is_the_drawn_price_and_none_when_unknown():
    space = OutcomeSpace([ContinuousIssue("price", 3000, 13000, tick=10)])
    assert reservation_price(price_utility(space, buyer=True, reservation_price=9123.5)) == pytest.approx(9123.5)
    assert reservation_price(price_utility(space, buyer=False, reservation_price=6100)) == pytest.approx(6100)
    multi = OutcomeSpace([ContinuousIssue("price", 0, 100), CategoricalIssue("quality", ["low", "high"])])
    u = LinearAdditiveUtility(multi, {"price": 0.5, "quality": 0.5}, {"price": "decreasing", "quality": {"high": 1.0}}, 0.25)
    assert reservation_price(u) == pytest.approx(50.0)  # price part must give 0.25 of 0.5
    too_high = LinearAdditiveUtility(multi, {"price": 0.5, "quality": 0.5}, {"price": "decreasing", "quality": {"high": 1.0}}, 0.75)
    assert reservation_price(too_high) is None  # no price alone reaches it
    no_price = OutcomeSpace([CategoricalIssue("quality", ["low", "high"])])
    assert reservation_price(LinearAdditiveUtility(no_price, {"quality": 1}, {"quality": {"high": 1.0}}, 0.5)) is None


# -- the market line is true ---------------------------------------------------------------------

VALUE = re.compile(r"values of your next units ([0-9.]+)")
COST = re.compile(r"costs of your next units ([0-9.]+)")


def _trade_at_step_one(request: ChatRequest) -> ChatResponse:
    """Buyers and sellers cross in step 1 (buy at value, sell at cost); afterwards nobody orders."""
    text = _user(request)
    if "Step 1 of" not in text:
        return tool_call_response("wait", {})
    if (m := VALUE.search(text)) is not None:
        return tool_call_response("place_order", {"good": "widget", "side": "buy", "price": float(m.group(1)), "quantity": 1})
    if (m := COST.search(text)) is not None:
        return tool_call_response("place_order", {"good": "widget", "side": "sell", "price": float(m.group(1)), "quantity": 1})
    return tool_call_response("wait", {})


def test_market_line_says_when_the_last_trade_was_and_that_nothing_traded_since():
    overrides = ["steps=3", "populations.2.count=0", "populations.3.count=0", "populations.0.params.plan_every=0",
                 "populations.1.params.plan_every=0"]
    model, chat = _run("llm_double_auction", _trade_at_step_one, overrides)
    prices = [t for t in model.exchange.goods["widget"].history]
    assert len(prices) == 1  # one clearing with trades: step 1
    price = num(model.money.to_units(prices[0]))
    step2 = _user(next(r for r in chat.requests if "Step 2 of" in _user(r)))
    step3 = _user(next(r for r in chat.requests if "Step 3 of" in _user(r)))
    line2 = next(line for line in step2.splitlines() if line.startswith("- widget:"))
    assert line2.startswith(f"- widget: last trade at {price} in step 1 (") and "units)" in line2
    assert "last step's best bid" in line2 and "best ask" in line2
    line3 = next(line for line in step3.splitlines() if line.startswith("- widget:"))
    assert line3.startswith(f"- widget: last trade at {price} in step 1; no trade last step")
    assert "best bid" not in line3  # nobody ordered in step 2
    assert "for 0 units" not in step3


def test_market_line_shows_best_bid_and_ask_of_the_last_clearing():
    def no_cross(request: ChatRequest) -> ChatResponse:
        text = _user(request)
        side, price = ("buy", 50.0) if VALUE.search(text) else ("sell", 150.0)
        return tool_call_response("place_order", {"good": "widget", "side": side, "price": price, "quantity": 1})

    overrides = ["steps=2", "populations.2.count=0", "populations.3.count=0", "populations.0.params.plan_every=0",
                 "populations.1.params.plan_every=0"]
    _, chat = _run("llm_double_auction", no_cross, overrides)
    step2 = _user(next(r for r in chat.requests if "Step 2 of" in _user(r)))
    assert "- widget: no trade yet (reference price 100); last step's best bid 50, best ask 150." in step2


# -- the plan is shown once; the memory does not repeat this step's observation ---------------------


def test_plan_is_shown_once_and_messages_once():
    plan = "Bid low and wait for the sellers to come down."

    def responder(request: ChatRequest) -> ChatResponse:
        if request.purpose == "plan":
            return text_response(plan)
        if "Step 1 of" in _user(request):
            return tool_call_response("broadcast", {"text": "Selling cheap widgets today"})
        return tool_call_response("wait", {})

    overrides = ["steps=3", "populations.2.count=0", "populations.3.count=0", "populations.0.params.plan_every=2",
                 "populations.1.params.plan_every=2"]
    _, chat = _run("llm_double_auction", responder, overrides)
    acts = [r for r in chat.requests if r.purpose == "act"]
    for request in acts:
        assert _user(request).count(plan) == 1
    step2 = _user(next(r for r in acts if "Step 2 of" in _user(r)))
    assert step2.count("Selling cheap widgets today") >= 1
    # each delivered message once (the observation), not a second time in the memory
    senders = re.findall(r'wrote: "Selling cheap widgets today"', step2)
    assert len(senders) == 5  # the other five LLM traders' broadcasts


# -- stable first: an agent's calls share a long prefix a model server's prompt cache reuses ----------


def _json_market_requests(steps: int) -> tuple[MarketModel, list[ChatRequest]]:
    """A JSON-mode run (as the local model is prompted) whose agents trade, so their accounts (and
    the bounds of their order tool) change from step to step."""
    value, cost = re.compile(r"values of your next units ([0-9.]+)"), re.compile(r"costs of your next units ([0-9.]+)")

    def responder(request: ChatRequest) -> ChatResponse:
        if request.purpose == "plan":
            return text_response("Bid under value, ask over cost.")
        text = _user(request)
        action: dict[str, Any] = {"tool": "wait", "arguments": {}}
        if m := value.search(text):
            action = {"tool": "place_order", "arguments": {"good": "widget", "side": "buy", "price": round(float(m.group(1)) - 5, 2), "quantity": 1}}
        elif m := cost.search(text):
            action = {"tool": "place_order", "arguments": {"good": "widget", "side": "sell", "price": round(float(m.group(1)) + 5, 2), "quantity": 1}}
        return text_response(json.dumps({"actions": [action]}))

    spec = load_scenario("llm_double_auction", overrides=[f"steps={steps}", "llm.max_cost_usd=null"])
    chat = ScriptedChatModel(responder, tool_mode="json")
    model = MarketModel(spec, record=False, chat_model=chat)
    model.run()
    return model, chat.requests


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def test_an_agents_act_prompts_share_their_tools_and_the_observation_comes_after():
    model, requests = _json_market_requests(3)
    changed_bounds = 0
    for agent in model.llm_agents:
        acts = [_user(r) for r in requests if r.agent_id == agent.unique_id and r.purpose == "act"]
        assert len(acts) == 3
        for before, after in zip(acts, acts[1:], strict=False):
            shared = _common_prefix(before, after)
            # the tools whose arguments have no numeric range are the same every step: all shared
            for tool in ("- send_message(", "- broadcast(", "- wait()"):
                assert tool in shared, (tool, shared)
            assert "Step " not in shared and shared.startswith("You are agent")  # the observation comes after
            order_line = [next(line for line in t.splitlines() if line.startswith("- place_order(")) for t in (before, after)]
            changed_bounds += order_line[0] != order_line[1]
        for text in acts:  # the tool whose bounds follow the account comes last of the tools
            assert text.index("- wait()") < text.index("- send_message(") < text.index("- place_order(") < text.index("Step ")
    assert changed_bounds  # some orders' bounds did change (trades moved cash or goods)


def test_the_act_prompt_after_a_plan_continues_the_plan_prompt():
    model, requests = _json_market_requests(1)
    for agent in model.llm_agents:
        mine = [_user(r) for r in requests if r.agent_id == agent.unique_id]
        plan, act = mine  # the plan call, then the act call of step 1
        stem, instruction = plan.split("\n\nThink about this step before acting.")
        assert act.startswith(stem + "\n\nYour plan: ")  # tools, memory and observation evaluated once
        assert "You are agent" in stem and "- place_order(" in stem


def test_json_mode_lists_the_tools_once_and_tool_mode_says_which_are_available_now():
    _, requests = _json_market_requests(1)
    for request in requests:  # JSON mode: the tools at the beginning are this step's, not said again
        assert "Tools available now:" not in _user(request) and "- place_order(" in _user(request)
    _, chat = _run("llm_double_auction", overrides=["steps=1"])
    for request in chat.requests:  # native tools: the run's stable list, narrowed by the observation
        assert _user(request).count("Tools available now: ") == 1


def test_the_example_is_the_same_every_step_and_part_of_the_shared_beginning():
    model, requests = _json_market_requests(3)
    for agent in model.llm_agents:
        acts = [_user(r) for r in requests if r.agent_id == agent.unique_id and r.purpose == "act"]
        examples = {re.search(r"e\.g\. (\{.*\})\n", text).group(1) for text in acts}  # type: ignore[union-attr]
        assert len(examples) == 1  # not the last trade's price, which moves every step
        (example,) = examples
        assert json.loads(example)["actions"][0]["arguments"]["price"] == 100.0  # the reference price
        for before, after in zip(acts, acts[1:], strict=False):
            assert "e.g. " + example in _common_prefix(before, after)


def test_agents_of_a_population_share_their_system_prompt_and_not_their_tools():
    """The user message opens with who the agent is. With one slot, llama.cpp looks for an agent's
    own earlier prompt in its prompt cache only when the new prompt keeps less than half of the
    slot's (the last agent's): a population's agents share the system prompt, not the tools."""
    model, requests = _json_market_requests(1)
    for population in ("llm_buyers", "llm_sellers"):
        ids = [a.unique_id for a in model.populations[population]]
        first = [_user(next(r for r in requests if r.agent_id == i)) for i in ids]
        for agent_id, text in zip(ids, first, strict=True):
            assert text.startswith(f"You are agent {agent_id} (")
        assert _common_prefix(first[0], first[1]) == "You are agent "


def test_the_memory_does_not_repeat_the_trades_the_observation_lists():
    _, requests = _json_market_requests(3)
    step3 = [_user(r) for r in requests if r.purpose == "act" and "Step 3 of" in _user(r)]
    traded = [text for text in step3 if "Your recent trades:\n- step 1:" in text]
    assert traded  # agents that traded in step 1: the trade is in the observation at step 3 ...
    for text in traded:
        trades = text.split("Your recent trades:\n", 1)[1]
        for line in trades.splitlines():
            if not line.startswith("- step "):
                break
            words = line[2:].replace(".0 ", " ")
            assert text.count(words) == 1, (words, text)  # ... and not a second time in the memory
        assert "So far: " in text  # the running summary stays


# -- filters ---------------------------------------------------------------------------------------


def test_num_and_scores_filters():
    assert [num(8000.0), num(117.070000001), num(0.01), num(3), num(None)] == ["8000", "117.07", "0.01", "3", "None"]
    assert scores({"1": 0.5, "2": 0.5, "3": 0.45}) == "0.5 for all but 3: 0.45"
    assert scores({"1": 0.5, "2": 0.6}) == "1: 0.5, 2: 0.6"
    assert scores({}) == ""
