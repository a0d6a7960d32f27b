"""Built-in rule-based decision policies and the registry that names them."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from mesa_llm.agents.policies.base import (
    DecisionPolicy,
    PolicyParams,
    PolicyRegistry,
    UnknownPolicyError,
)
from mesa_llm.agents.policies.external import ExternalPolicy
from mesa_llm.agents.policies.fundamental import FundamentalTrader
from mesa_llm.agents.policies.idle import Idle
from mesa_llm.agents.policies.market_maker import MarketMaker
from mesa_llm.agents.policies.momentum import MomentumTrader
from mesa_llm.agents.policies.noise import NoiseTrader
from mesa_llm.agents.policies.regulator import RuleBasedRegulator
from mesa_llm.agents.policies.zero_intelligence import (
    ZeroIntelligenceConstrained,
    ZeroIntelligenceUnconstrained,
)

if TYPE_CHECKING:
    from mesa_llm.plugins import Plugins

BUILTIN_POLICIES: tuple[type[DecisionPolicy], ...] = (
    ZeroIntelligenceConstrained,
    ZeroIntelligenceUnconstrained,
    MarketMaker,
    FundamentalTrader,
    MomentumTrader,
    NoiseTrader,
    Idle,
    RuleBasedRegulator,
    ExternalPolicy,
)

#: the rule-based policy each role falls back to when no policy or LLM is configured
DEFAULT_POLICY_FOR_ROLE: dict[str, str] = {
    "buyer": "zi_c",
    "seller": "zi_c",
    "trader": "zi_c",
    "market_maker": "market_maker",
    "speculator": "momentum",
    "mediator": "negotiator",
    "regulator": "regulator",
}


def builtin_policy_registry() -> PolicyRegistry:
    """A new registry holding the built-in rule-based policies and the LLM loop (``llm``) only."""
    from mesa_llm.agents.llm_policy import LLMPolicy
    from mesa_llm.agents.policies.negotiator import NegotiatorPolicy
    from mesa_llm.agents.policies.rl import RLPolicy

    registry = PolicyRegistry()
    for cls in BUILTIN_POLICIES:
        registry.register(cls)
    registry.register(NegotiatorPolicy)
    registry.register(RLPolicy)
    registry.register(LLMPolicy)
    return registry


def default_policy_registry(plugins: Plugins | None = None) -> PolicyRegistry:
    """A new registry holding the built-in policies and the allowed plugin policies (the
    ``mesa_llm.policies`` entry points of ``plugins``, default the process's): each plugin class is
    imported when first asked for; one named like a built-in is refused (``mesa-llm plugins`` says so)."""
    from mesa_llm.plugins import current_plugins

    registry = builtin_policy_registry()
    plugins = plugins if plugins is not None else current_plugins()
    builtin = set(registry.names())
    for entry in plugins.entries("policies"):
        if entry.status == "refused" or plugins.refuse_builtin(entry, builtin):
            continue
        registry.register_lazy(entry.name, partial(plugins.require, "policies", entry.name))
    return registry


__all__ = [
    "BUILTIN_POLICIES",
    "DEFAULT_POLICY_FOR_ROLE",
    "DecisionPolicy",
    "ExternalPolicy",
    "FundamentalTrader",
    "Idle",
    "MarketMaker",
    "MomentumTrader",
    "NoiseTrader",
    "RuleBasedRegulator",
    "PolicyParams",
    "PolicyRegistry",
    "UnknownPolicyError",
    "ZeroIntelligenceConstrained",
    "ZeroIntelligenceUnconstrained",
    "builtin_policy_registry",
    "default_policy_registry",
]
