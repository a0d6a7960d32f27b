"""Token and cost accounting of chat calls, per agent and per run, and the run's budget."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mesa_llm.llm.errors import LLMError
from mesa_llm.llm.types import ChatResponse


@dataclass
class UsageTotals:
    """Sums over a set of calls.

    Cache hits count in ``calls`` and ``cached_calls`` but add no tokens, cost or latency: the
    provider did not process them, and budgets are about what the provider bills.
    """

    calls: int = 0
    failed_calls: int = 0
    cached_calls: int = 0
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
