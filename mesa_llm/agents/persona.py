"""Personas: who an agent is (name, role, goal, style), separate from how it decides."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mesa_llm.agents.roles import Role


class Persona(BaseModel):
    """An agent's identity as the world and (for LLM agents) its prompts see it.

    ``policy`` names the decision policy (a rule-based strategy or, for LLM agents, the LLM loop);
    ``goal`` and ``style`` are free text that prompt templates may use.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128)
    role: Role
    policy: str
    population: str | None = None
    goal: str = ""
    style: str = ""
