"""A rule-based regulator: watches last step's messages and trades and acts on what it finds.

Hard rules (caps, floors, position limits, suspensions in force) are enforced by the exchange;
this policy handles the discretionary ones: price-fixing talk in messages (collusion suspected),
wash trades (an agent trading with itself) and escalates per offender: flag, then fine, then
suspend. Every action carries its reason and is recorded.
"""

from __future__ import annotations

import re
from typing import ClassVar

import numpy as np
from pydantic import Field

from mesa_llm.actions import ActionBase, Decision, FlagViolation, ImposeFine, SuspendTrader
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.policies.base import DecisionPolicy, PolicyParams
from mesa_llm.social import COLLUSION_PATTERNS


class RegulatorParams(PolicyParams):
    """Parameters of the rule-based regulator."""

    fine: float = Field(default=50.0, gt=0, description="fine for a repeated offence")
    suspend_steps: int = Field(default=5, ge=1, description="suspension for a third offence")


class RuleBasedRegulator(DecisionPolicy):
    """Flags on a first offence, fines on the second, suspends from the third."""

    name: ClassVar[str] = "regulator"
    summary: ClassVar[str] = "flags, fines and suspends collusion talk and wash trades"
    Params: ClassVar[type[PolicyParams]] = RegulatorParams

    def __init__(self, params: PolicyParams | None = None) -> None:
        super().__init__(params)
        self.offences: dict[int, int] = {}
        self._patterns = [re.compile(p, re.IGNORECASE) for p in COLLUSION_PATTERNS]

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        p: RegulatorParams = self.params  # type: ignore[assignment]
        watch = observation.surveillance or {}
        findings: dict[int, str] = {}
        for message in watch.get("messages", []):
            for pattern in self._patterns:
                if pattern.search(message["text"]):
                    findings.setdefault(
                        message["sender_id"], f"collusion suspected: message {message['text'][:120]!r}"
                    )
                    break
        for trade in watch.get("trades", []):
            if trade["buyer_id"] == trade["seller_id"]:
                findings.setdefault(trade["buyer_id"], f"wash trade of {trade['quantity']} {trade['good']}")
        actions: list[ActionBase] = []
        allowed = set(observation.available_actions)
        for agent_id, reason in sorted(findings.items()):
            count = self.offences.get(agent_id, 0) + 1
            self.offences[agent_id] = count
            if count == 1 and "flag_violation" in allowed:
                actions.append(FlagViolation(agent_id=agent_id, reason=reason))
            elif count == 2 and "impose_fine" in allowed:
                actions.append(ImposeFine(agent_id=agent_id, amount=p.fine, reason=f"repeated: {reason}"))
            elif count >= 3 and "suspend_trader" in allowed:
                actions.append(
                    SuspendTrader(agent_id=agent_id, steps=p.suspend_steps, reason=f"offence {count}: {reason}")
                )
        return Decision(actions=actions)
