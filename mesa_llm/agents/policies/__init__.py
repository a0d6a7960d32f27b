"""Built-in rule-based decision policies and the registry that names them."""

from __future__ import annotations

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


def default_policy_registry() -> PolicyRegistry:
    """A new registry holding the built-in rule-based policies and the LLM loop (``llm``)."""
    from mesa_llm.agents.llm_policy import LLMPolicy
    from mesa_llm.agents.policies.negotiator import NegotiatorPolicy

    registry = PolicyRegistry()
    for cls in BUILTIN_POLICIES:
        registry.register(cls)
    registry.register(NegotiatorPolicy)
    registry.register(LLMPolicy)
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
    "default_policy_registry",
]
