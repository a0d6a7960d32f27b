"""Rule-based negotiators: NegMAS-style baselines (time-dependent concession, tit-for-tat,
hard-headed), a rule-based mediator and truthful auction bidders, behind the decision interface.

The policy reads the negotiation sessions in the observation (each as its protocol shows it to
this agent, with the agent's own private utility or value), asks its strategy for one action per
session where it may act, and turns the answer into validated actions. An optional market policy
(e.g. ``zi_c``) adds call-market orders in the same step.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, ValidationError

from mesa_llm.actions import (
    AcceptOffer,
    ActionBase,
    ActionValidationError,
    Bid,
    Decision,
    EndNegotiation,
    MakeOffer,
    ProposeSettlement,
    RejectOffer,
)
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.policies.base import DecisionPolicy, PolicyParams
from mesa_llm.negotiation import (
    STRATEGIES,
    LinearAdditiveUtility,
    NegotiatorStrategy,
    OutcomeSpace,
    TruthfulBidder,
)

StrategyName = Literal[
    "boulware", "linear", "conceder", "tit_for_tat", "hard_headed", "mediator", "truthful_bidder"
]


class NegotiatorParams(PolicyParams):
    """Parameters of a rule-based negotiator."""

    strategy: StrategyName = Field(default="linear", description="the negotiation strategy")
    exponent: float | None = Field(
        default=None, gt=0, description="time-dependent concession exponent (overrides the strategy's)"
    )
    call_for_proposals: list[str] = Field(
        default_factory=list, description="goods to call for proposals on at the first step"
    )


class NegotiatorPolicy(DecisionPolicy):
    """Negotiates with a rule-based strategy in every session where it may act."""

    name: ClassVar[str] = "negotiator"
    summary: ClassVar[str] = "rule-based negotiator (Boulware, Linear, Conceder, tit-for-tat, ...)"
    Params: ClassVar[type[PolicyParams]] = NegotiatorParams

    def __init__(self, params: PolicyParams | None = None) -> None:
        super().__init__(params)
        self._strategies: dict[str, NegotiatorStrategy] = {}
        self._called = False

    def _strategy(self, view: dict[str, Any]) -> NegotiatorStrategy:
        p: NegotiatorParams = self.params  # type: ignore[assignment]
        session_id = view["session_id"]
        strategy = self._strategies.get(session_id)
        if strategy is None:
            if p.strategy == "truthful_bidder" or view["protocol"] in ("sealed_bid", "english"):
                strategy = TruthfulBidder(value=float(view.get("my_value") or 0.0))
            elif p.exponent is not None and p.strategy in ("boulware", "linear", "conceder"):
                strategy = STRATEGIES["time_dependent"](exponent=p.exponent)
            else:
                strategy = STRATEGIES[p.strategy]()
            self._strategies[session_id] = strategy
        return strategy

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        p: NegotiatorParams = self.params  # type: ignore[assignment]
        actions: list[ActionBase] = []
        invalid: list[ActionValidationError] = []
        if not self._called and p.call_for_proposals and "call_for_proposals" in observation.available_actions:
            from mesa_llm.actions import CallForProposals

            actions.extend(CallForProposals(good=good) for good in p.call_for_proposals)
            self._called = True
        for view in observation.negotiations:
            if view.get("status") != "open" or not view.get("allowed"):
                continue
            space = OutcomeSpace.from_dict(view["space"])
            utility = (
                LinearAdditiveUtility.from_dict(space, view["my_utility"])
                if view.get("my_utility")
                else None
            )
            strategy = self._strategy(view)
            answer = strategy.act(view, utility, space, rng)  # type: ignore[arg-type]
            if answer is None:
                continue
            name, payload = answer
            try:
                actions.append(_to_action(view["session_id"], name, payload))
            except ValidationError as exc:
                invalid.append(ActionValidationError(name, payload, str(exc.errors()[0]["msg"])))
        return Decision(actions=actions, invalid=invalid)


def _to_action(session_id: str, name: str, payload: dict[str, Any]) -> ActionBase:
    if name == "make_offer":
        return MakeOffer(session_id=session_id, terms=payload["terms"], counterparty_id=payload.get("to"))
    if name == "accept_offer":
        return AcceptOffer(session_id=session_id, offer_id=payload["offer_id"])
    if name == "reject_offer":
        return RejectOffer(
            session_id=session_id, offer_id=payload.get("offer_id"), counter=payload.get("counter")
        )
    if name == "end_negotiation":
        return EndNegotiation(session_id=session_id, reason=payload.get("reason"))
    if name == "propose_settlement":
        return ProposeSettlement(session_id=session_id, terms=payload["terms"])
    if name == "bid":
        return Bid(session_id=session_id, price=payload["price"])
    raise ValueError(f"strategy answered with an unknown action {name!r}")
