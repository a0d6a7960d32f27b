"""The idle policy: never acts (the built-in default of roles that do not trade)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from mesa_llm.actions import Decision
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.policies.base import DecisionPolicy


class Idle(DecisionPolicy):
    """Takes no action (mediators and regulators without an LLM or a rule-based strategy)."""

    name: ClassVar[str] = "idle"
    summary: ClassVar[str] = "takes no action"

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        return Decision()
