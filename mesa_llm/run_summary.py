"""The run summary: the headline numbers of a run, and the helpers that compute them."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from typing import Any

import mesa
import numpy as np

from mesa_llm import __version__
from mesa_llm.economics import smiths_alpha, smiths_alpha_from_moments

#: Smith's alpha of a list of trade prices (ticks): the one implementation, in `mesa_llm.economics`
smith_alpha = smiths_alpha


@dataclass(slots=True)
class PriceStats:
    """Running aggregates of one good's trade prices (ticks), enough for the run summary.

    Exact integer sums instead of the list of prices, so a run's memory does not grow with its
    trades; `smith_alpha` gives what `smith_alpha` of the full list gives.
    """

    count: int = 0
    total: int = 0  # sum of prices
    total_sq: int = 0  # sum of squared prices

    def add(self, price: int) -> None:
        """Count one trade at `price` (ticks)."""
        p = int(price)
        self.count += 1
        self.total += p
        self.total_sq += p * p

    def smith_alpha(self, ce_price: float | None) -> float | None:
        """Smith's alpha of the prices added so far (see `smith_alpha`)."""
        return smiths_alpha_from_moments(self.count, self.total, self.total_sq, ce_price)


#: the negotiation part of a run summary when a scenario has no negotiations (the vocabulary's names)
NO_NEGOTIATIONS: dict[str, Any] = {
    "sessions": 0, "closed_sessions": 0, "agreements": 0, "agreement_rate": None,
    "contracts": 0, "contracts_fulfilled": 0, "contracts_breached": 0, "contract_value": 0.0,
}  # fmt: skip


@dataclass(slots=True)
class RunSummary:
    """The headline numbers of a run (currency units), named as in `mesa_llm.metric_names`."""

    scenario: str
    seed: int
    steps: int
    trades: int
    volume: int
    allocative_efficiency: float | None
    goods: dict[str, dict[str, Any]]
    recording: str | None
    stop_reason: str | None = None
    llm: dict[str, Any] | None = None
    #: sessions, closed_sessions, agreements, agreement_rate, contracts, contracts_fulfilled, ...
    negotiation: dict[str, Any] | None = None
    #: why `allocative_efficiency` is None (no induced values, no possible gains, surplus destroyed)
    allocative_efficiency_note: str | None = None
    #: fees paid to the house by the call market's trades: total, buyers, sellers
    fees: dict[str, float] = field(default_factory=lambda: {"total": 0.0, "buyers": 0.0, "sellers": 0.0})
    #: each plugin mechanism's own numbers (`Mechanism.metrics`), None without plugin mechanisms
    mechanisms: dict[str, dict[str, Any]] | None = None

    @property
    def efficiency(self) -> float | None:
        """Deprecated name of `allocative_efficiency`."""
        return self.allocative_efficiency

    @property
    def efficiency_note(self) -> str | None:
        """Deprecated name of `allocative_efficiency_note`."""
        return self.allocative_efficiency_note

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (the CLI's ``--json`` output): the vocabulary's names, negotiation
        metrics at the top level as ``analyze --json`` has them."""
        out: dict[str, Any] = {
            "scenario": self.scenario,
            "seed": self.seed,
            "steps": self.steps,
            "trades": self.trades,
            "volume": self.volume,
            "allocative_efficiency": self.allocative_efficiency,
            "allocative_efficiency_note": self.allocative_efficiency_note,
            "fees": dict(self.fees),
            "goods": self.goods,
            **(self.negotiation if self.negotiation is not None else NO_NEGOTIATIONS),
            "recording": self.recording,
            "stop_reason": self.stop_reason,
            "llm": self.llm,
        }
        if self.mechanisms is not None:  # only runs with plugin mechanisms have the key
            out["mechanisms"] = self.mechanisms
        return out


def versions() -> dict[str, str]:
    import pydantic

    return {
        "mesa_llm": __version__,
        "mesa": mesa.__version__,
        "numpy": np.__version__,
        "pydantic": pydantic.__version__,
        "python": platform.python_version(),
    }


@dataclass(slots=True)
class PopulationActivity:
    """What one LLM population's agents did with their model: calls, tool calls, applied actions.

    A population whose every call failed, or whose answers were all invalid, applies no action
    and must not look like a normal run: the summary warns about it (see :meth:`LLMActivity.warnings`).
    """

    agents: int = 0
    calls: int = 0
    failed_calls: int = 0
    #: tool calls that validated, in any round (``repaired``: of those, the ones from a repair round)
    valid_tool_calls: int = 0
    invalid_tool_calls: int = 0
    repaired_tool_calls: int = 0
    #: actions the world applied, other than ``wait`` (which is counted apart)
    actions_applied: int = 0
    waits: int = 0
    #: steps an agent lost to an error of its own (a template that failed, a fatal model error)
    agent_errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (the summary's ``llm.populations`` entries)."""
        return {
            "agents": self.agents,
            "calls": self.calls,
            "failed_calls": self.failed_calls,
            "valid_tool_calls": self.valid_tool_calls,
            "invalid_tool_calls": self.invalid_tool_calls,
            "repaired_tool_calls": self.repaired_tool_calls,
            "actions_applied": self.actions_applied,
            "waits": self.waits,
            "agent_errors": self.agent_errors,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


@dataclass(slots=True)
class LLMActivity:
    """Per LLM population tallies, fed with the events of the run as they are recorded."""

    #: agent id -> its LLM population's label (only LLM agents are tallied)
    population_of: dict[int, str] = field(default_factory=dict)
    populations: dict[str, PopulationActivity] = field(default_factory=dict)

    def add_agent(self, agent_id: int, population: str) -> None:
        """Tally this agent's events under ``population``."""
        self.population_of[agent_id] = population
        self.populations.setdefault(population, PopulationActivity()).agents += 1

    def note(self, event_type: str, content: dict[str, Any], agent_id: int | None) -> None:
        """Count one event of the run (events of agents that are not LLM agents are ignored)."""
        if agent_id is None:
            return
        label = self.population_of.get(agent_id)
        if label is None:
            return
        tally = self.populations[label]
        if event_type == "llm_call":
            tally.calls += 1
            if content.get("error") is not None:
                tally.failed_calls += 1
            usage = content.get("usage") or {}
            tally.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            tally.completion_tokens += int(usage.get("completion_tokens") or 0)
            repair = content.get("purpose") == "repair"
            for call in content.get("parsed_tool_calls") or []:
                if call.get("valid"):
                    tally.valid_tool_calls += 1
                    tally.repaired_tool_calls += repair
                else:
                    tally.invalid_tool_calls += 1
        elif event_type == "action":
            if content.get("type") == "wait":
                tally.waits += 1
            else:
                tally.actions_applied += 1
        elif event_type == "agent_error" and "fatal" not in content:
            # a failed call's step loss carries "fatal" and is counted in failed_calls already;
            # the rest are the agent's own crashes (a template that fails to render, ...)
            tally.agent_errors += 1

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Per population label, its tallies."""
        return {label: tally.to_dict() for label, tally in self.populations.items()}

    def warnings(self, steps: int) -> list[str]:
        """One line per LLM population that applied no action (other than wait) in the run."""
        out: list[str] = []
        if steps <= 0:
            return out
        for label, t in self.populations.items():
            if t.actions_applied:
                continue
            why = [f"{t.calls} calls", f"{t.failed_calls} failed", f"{t.invalid_tool_calls} invalid tool calls"]
            if t.waits:
                why.append(f"{t.waits} waits")
            if t.agent_errors:
                why.append(f"{t.agent_errors} agent errors")
            out.append(
                f"LLM population {label!r} ({t.agents} agents) applied no action in {steps} steps ({', '.join(why)})"
            )
        return out
