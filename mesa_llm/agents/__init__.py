"""Agents: the Mesa trader agent, the observations it receives and the policies that decide for it."""

from mesa_llm.agents.observation import (
    AccountView,
    GoodSnapshot,
    MarketSnapshot,
    Observation,
    PrivateView,
)
from mesa_llm.agents.persona import Persona
from mesa_llm.agents.roles import Role

__all__ = ["AccountView", "GoodSnapshot", "MarketSnapshot", "Observation",
    "Persona", "PrivateView", "Role"]
