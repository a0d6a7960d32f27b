"""The LLM agent loop's edges with scripted models: repair merging, the action cap, tools not
offered, repair switched off, overflowing answers and a failing repair call.

The policy is taken from a small model (so its prompts, tools and persona are the real ones) and
driven directly for one observation; no HTTP, no litellm.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from mesa_llm.actions import Decision
from mesa_llm.agents.llm_policy import LLMPolicy
from mesa_llm.llm import ChatResponse, LLMError
from mesa_llm.llm.testing import (
    ScriptedChatModel,
    text_response,
    tool_call_response,
    tool_calls_response,
)
from mesa_llm.model import MarketModel
from mesa_llm.scenario import validate_scenario

RAW = {
    "name": "loop",
    "seed": 5,
    "steps": 3,
    "goods": [{"name": "widget", "reference_price": 100.0, "min_price": 1.0, "max_price": 200.0}],
    "populations": [
        {"name": "llm", "role": "buyer", "count": 1, "policy": "llm", "params": {"plan_every": 0},
         "private": {"widget": {"units": 2, "values": [150.0, 140.0]}}, "endowment": {"cash": 1000.0}},
        {"name": "sellers", "role": "seller", "count": 1, "policy": "zi_c",
         "private": {"widget": {"units": 1, "costs": [50.0]}}, "endowment": {"holdings": {"widget": 1}}},
    ],
}


def bid(price: float) -> tuple[str, dict[str, Any]]:
    return ("place_order", {"good": "widget", "side": "buy", "price": price, "quantity": 1})


BAD = ("place_order", {"good": "widget", "side": "buy", "price": -1, "quantity": 1})


def decide(script: list[ChatResponse | BaseException], **params: Any) -> tuple[Decision, ScriptedChatModel]:
    """One decision of the LLM buyer at step 1, its model answering from ``script`` in order."""
    model = MarketModel(validate_scenario(RAW), record=False, chat_model=ScriptedChatModel([]))
    agent = model.llm_agents[0]
    [(_, observation)] = [(a, o) for a, o in model.observer.observe(1) if a is agent]
    policy = agent.policy
    assert isinstance(policy, LLMPolicy) and policy.context is not None
    chat = ScriptedChatModel(script)
    policy.context = dataclasses.replace(policy.context, chat_model=chat)
    policy.params = policy.params.model_copy(update=params)
    decision = policy.decide(observation, np.random.default_rng(0))
    assert decision.failure is None or isinstance(script[0], BaseException)
    assert chat.remaining == 0, "every scripted answer was asked for"
    return decision, chat


def prices(decision: Decision) -> list[float]:
    return [a.price for a in decision.actions]  # type: ignore[attr-defined]


def test_repair_merges_the_first_rounds_valid_actions_with_the_repaired_ones() -> None:
    decision, chat = decide([tool_calls_response([bid(101.0), BAD]), tool_call_response(*bid(102.0))])
    assert prices(decision) == [101.0, 102.0]
    assert decision.invalid == []  # the repaired call replaced the invalid one
    assert [r.purpose for r in chat.requests] == ["act", "repair"]
    tool_results = [m["content"].split(":")[0] for m in chat.requests[1].messages if m["role"] == "tool"]
    assert tool_results == ["accepted", "error"]


def test_a_repair_that_is_still_invalid_replaces_the_first_errors() -> None:
    still_bad = ("place_order", {"good": "gold", "side": "buy", "price": 1, "quantity": 1, "colour": "red"})
    decision, _ = decide([tool_calls_response([bid(101.0), BAD]), tool_call_response(*still_bad)])
    assert prices(decision) == [101.0]
    assert [e.reason for e in decision.invalid] and all("colour" in e.reason for e in decision.invalid)


def test_a_repair_answered_in_text_keeps_the_first_rounds_errors() -> None:
    decision, _ = decide([tool_calls_response([bid(101.0), BAD]), text_response("sorry")])
    assert prices(decision) == [101.0]
    assert [e.tool_name for e in decision.invalid] == ["place_order"]
    assert "price" in decision.invalid[0].reason


def test_a_failing_repair_call_keeps_the_first_rounds_valid_actions() -> None:
    failure = LLMError("server fell over", model="scripted/test", kind="server")
    decision, chat = decide([tool_calls_response([bid(101.0), BAD]), failure])
    assert prices(decision) == [101.0] and decision.failure is None
    assert len(decision.invalid) == 1
    assert [c["purpose"] for _, c in decision.events] == ["act", "repair"]
    assert decision.events[1][1]["error"] is not None


def test_repair_false_asks_once_and_drops_the_invalid_call() -> None:
    decision, chat = decide([tool_calls_response([bid(101.0), BAD])], repair=False)
    assert len(chat.requests) == 1
    assert prices(decision) == [101.0] and [e.tool_name for e in decision.invalid] == ["place_order"]


def test_nothing_invalid_means_no_repair_round() -> None:
    decision, chat = decide([tool_calls_response([bid(101.0), bid(102.0)])])
    assert len(chat.requests) == 1 and prices(decision) == [101.0, 102.0] and decision.invalid == []


@pytest.mark.parametrize("n", [2, 3])
def test_max_actions_keeps_exactly_the_cap_and_rejects_the_rest(n: int) -> None:
    decision, _ = decide([tool_calls_response([bid(100.0 + i) for i in range(n)])], max_actions=2)
    assert prices(decision) == [100.0, 101.0]
    assert [e.reason for e in decision.invalid] == ["more than 2 actions in one step"] * (n - 2)


def test_max_actions_counts_the_repaired_actions_too() -> None:
    first = tool_calls_response([bid(100.0), bid(101.0), BAD])
    decision, _ = decide([first, tool_call_response(*bid(102.0))], max_actions=2)
    assert prices(decision) == [100.0, 101.0]
    assert [e.reason for e in decision.invalid] == ["more than 2 actions in one step"]
    assert decision.invalid[0].arguments["price"] == 102.0


def test_a_tool_not_offered_is_rejected_even_if_the_registry_knows_it() -> None:
    # a buyer is not offered the regulator's tools; impose_fine is a real action all the same
    call = ("impose_fine", {"agent_id": 2, "amount": 5.0, "reason": "x"})
    decision, chat = decide([tool_call_response(*call), tool_call_response(*call)])
    offered = {t["function"]["name"] for t in chat.requests[0].tools or []}
    assert "impose_fine" not in offered and "place_order" in offered
    assert decision.actions == []
    assert [e.reason.split(";")[0] for e in decision.invalid] == ["unknown tool 'impose_fine'"]


def test_calls_beyond_the_per_answer_cap_are_one_rejection_and_not_repaired() -> None:
    many = tool_calls_response([bid(100.0)] * 40)
    decision, chat = decide([many])
    assert len(chat.requests) == 1
    overflow = [e for e in decision.invalid if "more tool calls ignored" in e.reason]
    assert len(overflow) == 1
