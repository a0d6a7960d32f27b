"""The run's LLM budget stops spending exactly when it is reached, in cost or in tokens."""

from __future__ import annotations

from mesa_llm.llm import ChatResponse, LLMError
from mesa_llm.llm.testing import text_response
from mesa_llm.llm.usage import UsageTracker


def answered(prompt: int, completion: int, cost: float = 0.0) -> ChatResponse:
    response = text_response("ok", prompt_tokens=prompt, completion_tokens=completion)
    response.cost_usd = cost
    return response


def test_token_budget_is_exceeded_when_reached_not_before() -> None:
    usage = UsageTracker(max_tokens=100)
    usage.add(1, answered(60, 39))
    assert usage.budget_exceeded() is None  # 99 of 100
    usage.add(2, answered(1, 0))
    assert usage.budget_exceeded() == "token budget exceeded: 100 tokens used, max 100"


def test_cost_budget_is_exceeded_when_reached_not_before() -> None:
    usage = UsageTracker(max_cost_usd=0.5)
    usage.add(1, answered(1, 1, cost=0.25))  # binary fractions: the sums are exact
    usage.add(1, answered(1, 1, cost=0.125))
    assert usage.budget_exceeded() is None
    usage.add(2, answered(1, 1, cost=0.125))
    assert usage.budget_exceeded() == "cost budget exceeded: $0.5000 spent, max $0.5000"


def test_totals_per_run_and_per_agent_count_failures_without_tokens() -> None:
    usage = UsageTracker()
    usage.add(1, answered(10, 5, cost=0.5))
    usage.add(2, answered(20, 5))
    usage.add_failure(1, LLMError("x", model="m", kind="timeout"))
    assert (usage.run.calls, usage.run.failed_calls, usage.run.total_tokens) == (3, 1, 40)
    assert (usage.agent(1).calls, usage.agent(1).prompt_tokens, usage.agent(1).cost_usd) == (2, 10, 0.5)
    assert usage.agent(99).calls == 0
    assert usage.budget_exceeded() is None  # no budget, never exceeded
