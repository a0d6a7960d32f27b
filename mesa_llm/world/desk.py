"""The negotiation desk: the world's side of negotiations and auctions.

It opens sessions (scheduled by the scenario, or opened by agents: a first offer to a
counterparty, a call for proposals), checks every negotiation action against the protocol, the
outcome space and the hard rules (suspension, price caps and floors), turns agreements into
contracts and settles them through the ledger when due (a party that cannot perform is in breach
and pays the scenario's penalty, never going negative), and moves reputation accordingly. It
returns what happened as (event_type, content, agent_id) triples for the model to record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mesa_llm.actions import (
    AcceptOffer,
    ActionBase,
    Bid,
    CallForProposals,
    EndNegotiation,
    MakeOffer,
    ProposeSettlement,
    RejectOffer,
)
from mesa_llm.agents.roles import Role
from mesa_llm.market import Ledger, Money
from mesa_llm.negotiation import (
    AlternatingOffers,
    CategoricalIssue,
    ContinuousIssue,
    Contract,
    ContractBook,
    EnglishAuction,
    IntegerIssue,
    Issue,
    LinearAdditiveUtility,
    NegotiationSession,
    OutcomeSpace,
    ProtocolError,
    SealedBidAuction,
    SessionEvent,
    SingleTextMediation,
    contract_from_agreement,
    reservation_price,
)
from mesa_llm.negotiation import (
    CallForProposals as CallForProposalsSession,
)
from mesa_llm.scenario import NegotiationSettings, OutcomeSpaceSpec, SessionSpec
from mesa_llm.social import Reputation
from mesa_llm.world.exchange import RejectedAction
from mesa_llm.world.regulation import MarketRules, RuleViolation

Recorded = tuple[str, dict[str, Any], int | None]

_ACTIONS = (MakeOffer, AcceptOffer, RejectOffer, EndNegotiation, CallForProposals, ProposeSettlement, Bid)
_AUCTIONS = ("first_price", "second_price", "english")


def build_space(spec: OutcomeSpaceSpec) -> OutcomeSpace:
    """The outcome space a scenario describes."""
    issues: list[Issue] = []
    for issue in spec.issues:
        if issue.type == "categorical":
            issues.append(CategoricalIssue(issue.name, list(issue.values or [])))
        elif issue.type == "integer":
            issues.append(IntegerIssue(issue.name, int(issue.low or 0), int(issue.high or 0)))
        else:
            issues.append(ContinuousIssue(issue.name, float(issue.low or 0.0), float(issue.high or 0.0), issue.tick))
    return OutcomeSpace(issues)


class NegotiationDesk:
    """Runs the negotiation sessions and auctions of one market and settles their contracts."""

    def __init__(
        self,
        settings: NegotiationSettings,
        money: Money,
        ledger: Ledger,
        rules: MarketRules,
        reputation: Reputation,
        *,
        roles: Mapping[int, Role],
        unit_value: Callable[[int, str], float | None],
    ) -> None:
        """``roles`` maps agent ids to roles; ``unit_value(agent, good)`` is an agent's value (or
        cost) of its next unit, which auction views show to bidders and sellers."""
        self.settings = settings
        self.money = money
        self.ledger = ledger
        self.rules = rules
        self.reputation = reputation
        self.roles = dict(roles)
        self.unit_value = unit_value
        self.spaces: dict[str, OutcomeSpace] = {name: build_space(s) for name, s in settings.spaces.items()}
        self.sessions: dict[str, NegotiationSession] = {}
        self.session_space: dict[str, str | None] = {}
        self.utilities: dict[tuple[int, str], LinearAdditiveUtility] = {}
        self.contracts = ContractBook(
            penalty_rate=settings.penalty_rate, penalty_fixed=money.round_to_tick(settings.penalty_fixed)
        )
        self._session_counter = 0
        self._contract_counter = 0
        self._closed_at: dict[str, int] = {}

    # ------------------------------------------------------------------ set-up

    def set_utility(self, agent_id: int, space: str, utility: LinearAdditiveUtility) -> None:
        """Give an agent its private preferences over an outcome space."""
        self.utilities[(agent_id, space)] = utility

    @staticmethod
    def handles(action: ActionBase) -> bool:
        """Whether ``action`` is a negotiation or auction action."""
        return isinstance(action, _ACTIONS)

    def _new_id(self, prefix: str) -> str:
        self._session_counter += 1
        return f"{prefix}{self._session_counter}"

    def _add(self, session: NegotiationSession, space: str | None, step: int) -> list[Recorded]:
        self.sessions[session.session_id] = session
        self.session_space[session.session_id] = space
        content = {
            "kind": "opened",
            "session_id": session.session_id,
            "protocol": session.protocol,
            "parties": list(session.parties),
            "good": session.good,
            "space": session.space.to_dict(),
            "max_rounds": session.max_rounds,
            "step": step,
        }
        return [("negotiation", content, None)]

    def open_scheduled(self, spec: SessionSpec, populations: Mapping[str, list[int]], step: int) -> list[Recorded]:
        """Open the sessions a scenario schedules for this step, pairing its populations."""
        out: list[Recorded] = []
        tick = self.money.tick_size
        if spec.protocol in _AUCTIONS:
            assert spec.sellers is not None and spec.bidders is not None and spec.good is not None
            for seller in populations[spec.sellers]:
                bidders = [b for b in populations[spec.bidders] if b != seller]
                sid = self._new_id("A")
                session: NegotiationSession
                if spec.protocol == "english":
                    assert spec.start_price is not None and spec.increment is not None
                    session = EnglishAuction(
                        sid, seller_id=seller, bidder_ids=bidders, good=spec.good, quantity=spec.quantity,
                        start_price=spec.start_price, increment=spec.increment, reserve_price=spec.reserve_price,
                        max_rounds=spec.max_rounds, start_step=step, tick=tick,
                    )
                else:
                    session = SealedBidAuction(
                        sid, seller_id=seller, bidder_ids=bidders, good=spec.good, quantity=spec.quantity,
                        reserve_price=spec.reserve_price, pricing=spec.protocol,  # type: ignore[arg-type]
                        bidding_rounds=spec.bidding_rounds, start_step=step, tick=tick,
                        value_low=spec.value_low or 0.0,
                    )
                out += self._add(session, None, step)
            return out
        assert spec.buyers is not None and spec.sellers is not None and spec.space is not None
        space = self.spaces[spec.space]
        buyers, sellers = populations[spec.buyers], populations[spec.sellers]
        if spec.protocol == "call_for_proposals":
            for buyer in buyers:
                session = CallForProposalsSession(
                    self._new_id("N"), buyer_id=buyer, seller_ids=[s for s in sellers if s != buyer],
                    space=space, max_rounds=spec.max_rounds, good=spec.good, start_step=step,
                    max_agreements=spec.max_agreements,
                )
                out += self._add(session, spec.space, step)
            return out
        if spec.pairing == "one_to_one":
            pairs = list(zip(buyers, sellers, strict=False))
        else:
            pairs = [(b, s) for b in buyers for s in sellers if b != s]
        mediators = populations[spec.mediators] if spec.mediators else []
        for i, (buyer, seller) in enumerate(pairs):
            sid = self._new_id("N")
            if spec.protocol == "single_text":
                if not mediators:
                    break
                session = SingleTextMediation(
                    sid, mediator_id=mediators[i % len(mediators)], buyer_id=buyer, seller_id=seller,
                    space=space, max_rounds=spec.max_rounds, good=spec.good, start_step=step,
                )
            else:
                session = AlternatingOffers(
                    sid, buyer_id=buyer, seller_id=seller, space=space, max_rounds=spec.max_rounds,
                    first_mover=buyer if spec.first_mover == "buyer" else seller, good=spec.good, start_step=step,
                )
            out += self._add(session, spec.space, step)
        return out

    # ------------------------------------------------------------------ actions

    def available(self, agent_id: int, role: Role) -> set[str]:
        """Negotiation tools the agent may use now (sessions it is in, plus opening new ones)."""
        names: set[str] = set()
        for session in self.sessions.values():
            if session.status == "open" and agent_id in session.parties:
                names.update(session.allowed(agent_id))
        if self.settings.open_sessions and (role.may_buy or role.may_sell) and self.settings.default_spaces:
            names.add("make_offer")
        if self.settings.call_for_proposals and role.may_buy and self.settings.default_spaces:
            names.add("call_for_proposals")
        return names

    def _session(self, agent_id: int, session_id: str) -> NegotiationSession:
        session = self.sessions.get(session_id)
        if session is None or agent_id not in session.parties:
            raise RejectedAction(f"no negotiation {session_id!r} of yours")
        return session

    def _check_terms(self, good: str | None, terms: Mapping[str, Any]) -> None:
        price = terms.get("price")
        if price is None:
            return
        try:
            self.rules.check_price(good, self.money.round_to_tick(float(price)))
        except (TypeError, ValueError):
            return  # the protocol's outcome-space check reports a bad price
        except RuleViolation as exc:
            raise RejectedAction(exc.reason) from None

    def act(self, agent_id: int, action: ActionBase, step: int) -> list[Recorded]:
        """Apply one negotiation action; RejectedAction (with a reason) when it is not allowed."""
        try:
            self.rules.check_suspension(agent_id, step)
        except RuleViolation as exc:
            raise RejectedAction(exc.reason) from None
        out: list[Recorded] = [("action", {}, agent_id)]
        if isinstance(action, CallForProposals):
            return out + self._open_cfp(agent_id, action, step)
        if isinstance(action, MakeOffer) and action.session_id is None:
            opened, session = self._open_bilateral(agent_id, action, step)
            out += opened
            payload: dict[str, Any] = {"terms": dict(action.terms)}
        else:
            session_id = getattr(action, "session_id", None)
            assert session_id is not None
            session = self._session(agent_id, session_id)
            name, payload = _payload(action)
            if isinstance(action, MakeOffer | ProposeSettlement):
                self._check_terms(session.good, action.terms)
            if isinstance(action, Bid):
                self._check_terms(session.good, {"price": action.price})
        name = action.tool_name
        try:
            events = session.handle(agent_id, name, payload, step)
        except ProtocolError as exc:
            raise RejectedAction(exc.reason) from None
        return out + self._events(session, events)

    def _open_bilateral(self, agent_id: int, action: MakeOffer, step: int) -> tuple[list[Recorded], NegotiationSession]:
        if not self.settings.open_sessions:
            raise RejectedAction("give the session_id of a negotiation you are in (opening new ones is not allowed here)")
        other = action.counterparty_id
        if other is None or other == agent_id or other not in self.roles:
            raise RejectedAction("to open a negotiation, give counterparty_id: another agent's id")
        good = action.good or (next(iter(self.settings.default_spaces)) if len(self.settings.default_spaces) == 1 else None)
        if good is None or good not in self.settings.default_spaces:
            raise RejectedAction(f"give the good to negotiate: one of {', '.join(self.settings.default_spaces)}")
        mine, theirs = self.roles[agent_id], self.roles[other]
        if mine.may_buy and theirs.may_sell:
            buyer, seller = agent_id, other
        elif mine.may_sell and theirs.may_buy:
            buyer, seller = other, agent_id
        else:
            raise RejectedAction(f"agent {other} cannot trade with you ({mine.value} and {theirs.value})")
        self._check_terms(good, action.terms)
        space_name = self.settings.default_spaces[good]
        session = AlternatingOffers(
            self._new_id("N"), buyer_id=buyer, seller_id=seller, space=self.spaces[space_name],
            max_rounds=self.settings.max_rounds, first_mover=agent_id, good=good, start_step=step,
        )
        return self._add(session, space_name, step), session

    def _open_cfp(self, agent_id: int, action: CallForProposals, step: int) -> list[Recorded]:
        if not self.settings.call_for_proposals:
            raise RejectedAction("calls for proposals are not allowed in this scenario")
        space_name = self.settings.default_spaces.get(action.good)
        if space_name is None:
            raise RejectedAction(f"no negotiable good {action.good!r}; one of {', '.join(self.settings.default_spaces)}")
        sellers = action.seller_ids if action.seller_ids is not None else [
            a for a, role in self.roles.items() if role.may_sell and a != agent_id
        ]
        bad = [s for s in sellers if s == agent_id or s not in self.roles or not self.roles[s].may_sell]
        if bad or not sellers:
            raise RejectedAction(f"agent {bad[0] if bad else '?'} is not a seller you can call")
        session = CallForProposalsSession(
            self._new_id("N"), buyer_id=agent_id, seller_ids=list(sellers), space=self.spaces[space_name],
            max_rounds=action.max_rounds or self.settings.max_rounds, good=action.good, start_step=step,
        )
        return self._add(session, space_name, step)

    # ------------------------------------------------------------------ end of step

    def advance(self, step: int) -> tuple[list[Recorded], list[Contract]]:
        """Advance every open session, turn agreements into contracts, settle what is due.

        Returns the events to record and the contracts fulfilled this step (the model counts
        their units for each agent)."""
        out: list[Recorded] = []
        for session in list(self.sessions.values()):
            was_open = session.session_id not in self._closed_at
            if session.status == "open":
                out += self._events(session, session.advance(step))
            if was_open and session.status != "open":
                self._closed_at[session.session_id] = step
            for agreement in session.take_agreements():
                self._contract_counter += 1
                contract = contract_from_agreement(
                    agreement,
                    self._contract_counter,
                    self.money,
                    default_good=session.good,
                    delivery_offset=self.settings.delivery_offset,
                )
                self.contracts.add(contract)
                out.append(("contract", self._contract_record(contract, "created"), None))
        fulfilled: list[Contract] = []
        for contract in self.contracts.due(step):
            outcome = self.contracts.settle(contract, self.ledger, step)
            record = self._contract_record(contract, "settled")
            record["settlement"] = {**outcome, "penalty": self.money.to_units(contract.penalty)}
            out.append(("contract", record, None))
            if contract.status == "fulfilled":
                fulfilled.append(contract)
                for party in (contract.buyer_id, contract.seller_id):
                    out.append(("reputation", self.reputation.contract_fulfilled(party, step), party))
            elif contract.breached_by is not None:
                out.append(("reputation", self.reputation.contract_breached(contract.breached_by, step), contract.breached_by))
        return out, fulfilled

    def _events(self, session: NegotiationSession, events: Iterable[SessionEvent]) -> list[Recorded]:
        out: list[Recorded] = []
        for event in events:
            kind = event.kind
            event_type = "offer" if kind in ("offer", "bid", "proposal") else "agreement" if kind == "agreement" else "negotiation"
            content = {
                "kind": kind,
                "session_id": session.session_id,
                "protocol": session.protocol,
                "parties": list(session.parties),
                "good": session.good,
                **event.content,
            }
            out.append((event_type, content, event.agent_id))
        return out

    def _contract_record(self, contract: Contract, stage: str) -> dict[str, Any]:
        return {
            "stage": stage,
            "contract_id": contract.contract_id,
            "session_id": contract.session_id,
            "protocol": contract.protocol,
            "buyer_id": contract.buyer_id,
            "seller_id": contract.seller_id,
            "parties": [contract.buyer_id, contract.seller_id],
            "good": contract.good,
            "quantity": contract.quantity,
            "price": self.money.to_units(contract.price),
            "value": self.money.to_units(contract.value()),
            "delivery_step": contract.delivery_step,
            "terms": dict(contract.terms),
            "status": contract.status,
            "breached_by": contract.breached_by,
        }

    def stats(self) -> dict[str, Any]:
        """Sessions, agreements and contract outcomes so far (the run summary's negotiation part)."""
        sessions = list(self.sessions.values())
        closed = [s for s in sessions if s.status != "open"]
        agreed = [s for s in sessions if s.status == "agreed"]
        contracts = self.contracts.all()
        return {  # the names of mesa_llm.metric_names
            "sessions": len(sessions),
            "closed_sessions": len(closed),
            "agreements": len(agreed),
            "agreement_rate": (len(agreed) / len(closed)) if closed else None,
            "contracts": len(contracts),
            "contracts_fulfilled": sum(c.status == "fulfilled" for c in contracts),
            "contracts_breached": sum(c.status == "breached" for c in contracts),
            "contract_value": self.money.to_units(sum(c.value() for c in contracts if c.status == "fulfilled")),
        }

    # ------------------------------------------------------------------ observation

    def views(self, agent_id: int, step: int) -> list[dict[str, Any]]:
        """The agent's sessions (open ones, and those closed last step) as it may see them."""
        out = []
        for session in self.sessions.values():
            if agent_id not in session.parties:
                continue
            if session.status != "open" and self._closed_at.get(session.session_id, -10) < step - 1:
                continue
            view = dict(session.view(agent_id))
            space = self.session_space.get(session.session_id)
            utility = self.utilities.get((agent_id, space)) if space is not None else None
            if utility is not None:
                view["my_utility"] = utility.to_dict()
                # the reservation in money: what "never above/below your reservation price" means
                view["my_reservation_price"] = reservation_price(utility)
            if session.protocol in ("sealed_bid", "english") and session.good is not None:
                view["my_value"] = self.unit_value(agent_id, session.good)
            view["reputation"] = {
                str(p): round(self.reputation.score(p), 3) for p in session.parties if p != agent_id
            }
            out.append(view)
        return out[-10:]

    def contract_views(self, agent_id: int) -> list[dict[str, Any]]:
        """The agent's contracts not yet settled."""
        return [self._contract_record(c, "pending") for c in self.contracts.open_contracts(agent_id)]


def _payload(action: ActionBase) -> tuple[str, dict[str, Any]]:
    if isinstance(action, MakeOffer):
        payload: dict[str, Any] = {"terms": dict(action.terms)}
        if action.counterparty_id is not None:
            payload["to"] = action.counterparty_id
        return "make_offer", payload
    if isinstance(action, AcceptOffer):
        return "accept_offer", {"offer_id": action.offer_id}
    if isinstance(action, RejectOffer):
        payload = {"offer_id": action.offer_id}
        if action.counter is not None:
            payload["counter"] = dict(action.counter)
        return "reject_offer", payload
    if isinstance(action, EndNegotiation):
        return "end_negotiation", {"reason": action.reason}
    if isinstance(action, ProposeSettlement):
        return "propose_settlement", {"terms": dict(action.terms)}
    if isinstance(action, Bid):
        return "bid", {"price": action.price}
    raise RejectedAction(f"{action.tool_name} is not a negotiation action")


__all__ = ["NegotiationDesk", "build_space"]
