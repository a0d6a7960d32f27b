"""Negotiation layer: issues, outcome spaces, utility functions, protocols, auctions, contracts.

Everything here is pure and deterministic: sessions are state machines the world drives
once per step, strategies are rule-based negotiators, and contracts move money only through
the market :class:`~mesa_llm.market.Ledger`. This layer imports the market layer, the
standard library and numpy only (never Mesa, the LLM layer or the model).
"""

from mesa_llm.negotiation.auctions import EnglishAuction, SealedBidAuction
from mesa_llm.negotiation.contracts import Contract, ContractBook, contract_from_agreement
from mesa_llm.negotiation.issues import (
    CategoricalIssue,
    ContinuousIssue,
    IntegerIssue,
    Issue,
    OutcomeError,
    OutcomeSpace,
    issue_from_dict,
)
from mesa_llm.negotiation.outcome_space import (
    FrontierSegment,
    distance_to_nash,
    distance_to_pareto,
    exact_distance_to_nash,
    exact_distance_to_pareto,
    exact_nash_point,
    exact_pareto_frontier,
    kalai_smorodinsky_point,
    max_welfare_gain,
    max_welfare_point,
    nash_point,
    pareto_frontier,
    utility_matrix,
)
from mesa_llm.negotiation.protocols import (
    ACTIONS,
    Agreement,
    AlternatingOffers,
    CallForProposals,
    NegotiationSession,
    Offer,
    ProtocolError,
    SessionEvent,
    SingleTextMediation,
)
from mesa_llm.negotiation.strategies import (
    STRATEGIES,
    Boulware,
    Conceder,
    HardHeaded,
    Linear,
    MediatorStrategy,
    NegotiatorStrategy,
    TimeDependent,
    TitForTat,
    TruthfulBidder,
    make_strategy,
)
from mesa_llm.negotiation.utility import LinearAdditiveUtility, price_utility, reservation_price

__all__ = [
    "ACTIONS",
    "Agreement",
    "AlternatingOffers",
    "Boulware",
    "CallForProposals",
    "CategoricalIssue",
    "Conceder",
    "ContinuousIssue",
    "Contract",
    "ContractBook",
    "EnglishAuction",
    "FrontierSegment",
    "HardHeaded",
    "IntegerIssue",
    "Issue",
    "Linear",
    "LinearAdditiveUtility",
    "MediatorStrategy",
    "NegotiationSession",
    "NegotiatorStrategy",
    "Offer",
    "OutcomeError",
    "OutcomeSpace",
    "ProtocolError",
    "STRATEGIES",
    "SealedBidAuction",
    "SessionEvent",
    "SingleTextMediation",
    "TimeDependent",
    "TitForTat",
    "TruthfulBidder",
    "contract_from_agreement",
    "distance_to_nash",
    "issue_from_dict",
    "distance_to_pareto",
    "exact_distance_to_nash",
    "exact_distance_to_pareto",
    "exact_nash_point",
    "exact_pareto_frontier",
    "kalai_smorodinsky_point",
    "make_strategy",
    "max_welfare_gain",
    "max_welfare_point",
    "nash_point",
    "pareto_frontier",
    "price_utility",
    "reservation_price",
    "utility_matrix",
]
