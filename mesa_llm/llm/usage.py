"""Token and cost accounting of chat calls, per agent and per run, and the run's budget.

Providers report usage; a broken or hostile one can report anything (negative counts would let a
run spend past ``--max-tokens`` forever). Numbers are checked once (:func:`checked_usage`,
:func:`usage_problem`): a call whose usage or cost is not a sane non-negative number is flagged
``invalid`` in its ``llm_call`` event and adds nothing to the totals (it is counted in
``invalid_usage_calls``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Final

from mesa_llm.llm.errors import LLMError
from mesa_llm.llm.types import ChatResponse, Usage

#: More tokens than any model takes or gives in one call: a report above it is not believed.
MAX_TOKENS_PER_CALL: Final = 10_000_000


def _token_problem(name: str, value: Any) -> str | None:
    if type(value) is int and 0 <= value <= MAX_TOKENS_PER_CALL:  # the everyday report, said at once
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} is not a number ({repr(value)[:40]})"
    if not math.isfinite(value) or value != int(value):
        return f"{name} is not an integer ({value!r})"
    if value < 0:
        return f"{name} is negative ({int(value):,})"
    if value > MAX_TOKENS_PER_CALL:
        return f"{name} is absurd ({int(value):,} > {MAX_TOKENS_PER_CALL:,} per call)"
    return None


def checked_usage(prompt_tokens: Any, completion_tokens: Any) -> Usage:
    """Usage from the numbers a provider reported: zero tokens flagged ``invalid`` unless both are
    integers in ``[0, MAX_TOKENS_PER_CALL]`` (a missing number counts as 0)."""
    prompt = 0 if prompt_tokens is None else prompt_tokens
    completion = 0 if completion_tokens is None else completion_tokens
    problem = _token_problem("prompt_tokens", prompt) or _token_problem("completion_tokens", completion)
    if problem is not None:
        return Usage(invalid=f"usage not counted: {problem}")
    return Usage(prompt_tokens=int(prompt), completion_tokens=int(completion))


def usage_problem(response: ChatResponse) -> str | None:
    """Why ``response``'s usage or cost cannot be counted, or None when it can."""
    usage = response.usage
    if usage.invalid is not None:
        return usage.invalid
    prompt, completion, cost = usage.prompt_tokens, usage.completion_tokens, response.cost_usd
    if (
        type(prompt) is int and type(completion) is int and type(cost) is float
        and 0 <= prompt <= MAX_TOKENS_PER_CALL and 0 <= completion <= MAX_TOKENS_PER_CALL and 0.0 <= cost < math.inf
    ):  # fmt: skip
        return None  # the everyday call (a NaN cost fails the comparison and is judged below)
    problem = _token_problem("prompt_tokens", usage.prompt_tokens) or _token_problem(
        "completion_tokens", usage.completion_tokens
    )
    cost = response.cost_usd
    if problem is None and (not isinstance(cost, int | float) or not math.isfinite(cost) or cost < 0):
        problem = f"cost_usd is not a non-negative number ({repr(cost)[:40]})"
    return None if problem is None else f"usage not counted: {problem}"


@dataclass
class UsageTotals:
    """Sums over a set of calls.

    Cache hits count in ``calls`` and ``cached_calls`` but add no tokens, cost or latency: the
    provider did not process them, and budgets are about what the provider bills.
    """

    calls: int = 0
    failed_calls: int = 0
    cached_calls: int = 0
    #: answered calls whose reported usage or cost was not believable (not counted in the sums)
    invalid_usage_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def add(self, response: ChatResponse) -> None:
        """Count one answered call."""
        self.calls += 1
        if response.cached:
            self.cached_calls += 1
            return
        if usage_problem(response) is not None:
            self.invalid_usage_calls += 1
            self.latency_s += response.latency_s
            return
        self.prompt_tokens += response.usage.prompt_tokens
        self.completion_tokens += response.usage.completion_tokens
        self.cost_usd += response.cost_usd
        self.latency_s += response.latency_s

    def add_failure(self) -> None:
        """Count one call that failed for good."""
        self.calls += 1
        self.failed_calls += 1

    def to_dict(self) -> dict[str, Any]:
        """The totals (plus ``total_tokens``) as a JSON-ready dict."""
        data = asdict(self)
        data["total_tokens"] = self.total_tokens
        return data


class UsageTracker:
    """Token and cost accounting per call, per agent and per run, and the run's budget."""

    def __init__(self, max_cost_usd: float | None = None, max_tokens: int | None = None) -> None:
        self.max_cost_usd = max_cost_usd
        self.max_tokens = max_tokens
        self.run = UsageTotals()
        self.per_agent: dict[int, UsageTotals] = {}

    def agent(self, agent_id: int) -> UsageTotals:
        """The totals of one agent (a fresh zero total, not stored, if it made no call)."""
        return self.per_agent.get(agent_id) or UsageTotals()

    def _totals_of(self, agent_id: int) -> UsageTotals:
        totals = self.per_agent.get(agent_id)
        if totals is None:
            totals = self.per_agent[agent_id] = UsageTotals()
        return totals

    def add(self, agent_id: int | None, response: ChatResponse) -> None:
        """Count an answered call for the run and, when ``agent_id`` is given, for that agent."""
        self.run.add(response)
        if agent_id is not None:
            self._totals_of(agent_id).add(response)

    def add_failure(self, agent_id: int | None, error: LLMError) -> None:
        """Count a call that failed for good (``error`` is accepted for future per-kind counts)."""
        del error
        self.run.add_failure()
        if agent_id is not None:
            self._totals_of(agent_id).add_failure()

    def budget_exceeded(self) -> str | None:
        """Why the run must stop spending (budget reached or exceeded), or None while within it."""
        if self.max_cost_usd is not None and self.run.cost_usd >= self.max_cost_usd:
            return (
                f"cost budget exceeded: ${self.run.cost_usd:.4f} spent, "
                f"max ${self.max_cost_usd:.4f}"
            )
        if self.max_tokens is not None and self.run.total_tokens >= self.max_tokens:
            return (
                f"token budget exceeded: {self.run.total_tokens} tokens used, max {self.max_tokens}"
            )
        return None

    def to_dict(self) -> dict[str, Any]:
        """Run totals, budget and per-agent totals (agent ids as string keys), JSON-ready."""
        return {
            "run": self.run.to_dict(),
            "per_agent": {str(a): t.to_dict() for a, t in sorted(self.per_agent.items())},
            "max_cost_usd": self.max_cost_usd,
            "max_tokens": self.max_tokens,
            "budget_exceeded": self.budget_exceeded(),
        }
