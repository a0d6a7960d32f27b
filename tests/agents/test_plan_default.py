"""No plan call unless the scenario asks for plans (``params.plan_every``; default 0).

A plan call doubles an LLM step's calls; on the bundled local model that doubled the step's time.
A population that says nothing about plans acts from its observation alone; one that sets
``plan_every: k`` plans at steps 1, 1+k, 1+2k, ...
"""

from __future__ import annotations

from typing import Any

from mesa_llm import Simulation
from mesa_llm.agents.llm_policy import LLMParams
from mesa_llm.llm import ChatRequest, ChatResponse
from mesa_llm.llm.testing import ScriptedChatModel, text_response, tool_call_response


def _scenario(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "plans",
        "seed": 3,
        "steps": 4,
        "goods": [{"name": "widget", "reference_price": 100.0, "min_price": 1.0, "max_price": 200.0}],
        "populations": [
            {"name": "llm", "role": "buyer", "count": 2, "policy": "llm", "params": params,
             "private": {"widget": {"units": 2, "values": [150.0, 140.0]}}, "endowment": {"cash": 1000.0}},
            {"name": "sellers", "role": "seller", "count": 1, "policy": "zi_c",
             "private": {"widget": {"units": 1, "costs": [50.0]}}, "endowment": {"holdings": {"widget": 1}}},
        ],
    }  # fmt: skip


def _purposes(params: dict[str, Any]) -> list[tuple[int | None, str]]:
    def answer(request: ChatRequest) -> ChatResponse:
        return text_response("Bid under value.") if request.purpose == "plan" else tool_call_response("wait", {})

    chat = ScriptedChatModel(answer)
    with Simulation.from_scenario(_scenario(params), model="scripted/test", record=False, chat_model=chat) as sim:
        sim.run(4)
    return [(r.agent_id, r.purpose) for r in chat.requests]


def test_the_default_is_no_plans() -> None:
    assert LLMParams().plan_every == 0
    calls = _purposes({})
    assert calls and {purpose for _, purpose in calls} == {"act"}
    assert len(calls) == 2 * 4  # one act call per agent and step, nothing else


def test_a_scenario_that_sets_plan_every_still_plans_on_its_schedule() -> None:
    calls = _purposes({"plan_every": 3})
    plans = [agent for agent, purpose in calls if purpose == "plan"]
    assert len(plans) == 2 * 2  # steps 1 and 4, both agents
    assert sum(purpose == "act" for _, purpose in calls) == 2 * 4
