"""Personas: who an agent is (name, role, goal, style), separate from how it decides."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mesa_llm.agents.roles import Role


class Persona(BaseModel):
    """An agent's identity as the world and (for LLM agents) its prompts see it.

    ``policy`` names the decision policy (a rule-based strategy, or ``llm`` for the LLM loop);
    ``model`` is the litellm model string of an LLM agent; ``goal``, ``style`` and ``backstory``
    are free text the prompt templates use.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128)
    role: Role
    policy: str
    population: str | None = None
    goal: str = ""
    style: str = ""
    backstory: str = ""
    model: str | None = None

    def to_context(self) -> dict[str, str | None]:
        """The template context ``persona``."""
        return {
            "name": self.name,
            "role": self.role.value,
            "policy": self.policy,
            "population": self.population,
            "goal": self.goal,
            "style": self.style,
            "backstory": self.backstory,
            "model": self.model,
        }
