"""Negotiation protocols as pure state machines: alternating offers, call for proposals, single text.

A session is driven by the world once per simulation step: every action of the step goes
through :meth:`NegotiationSession.handle` (in the world's seeded order), then
:meth:`NegotiationSession.advance` closes the round (turn change, deadline, auction close).
A round is one simulation step of the session. Sessions never touch money: they produce
:class:`Agreement` objects, which the world turns into contracts settled through the ledger.
An action that the protocol does not allow right now raises :class:`ProtocolError`, whose
``reason`` is a sentence the agent reads in its next observation.
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from mesa_llm.negotiation.issues import OutcomeError, OutcomeSpace

__all__ = [
    "ACTIONS",
    "Agreement",
    "AlternatingOffers",
    "CallForProposals",
    "NegotiationSession",
    "Offer",
    "ProtocolError",
    "SessionEvent",
    "SingleTextMediation",
]

#: Every action name a session may allow (each protocol uses a subset).
ACTIONS: tuple[str, ...] = (
    "make_offer",
    "accept_offer",
    "reject_offer",
    "end_negotiation",
    "propose_settlement",
    "bid",
)

#: How many recent offers a view shows.
VIEW_OFFERS = 3


class ProtocolError(ValueError):
    """An action the protocol does not allow now; ``reason`` is a sentence for the agent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class Offer:
    """One proposal in a session: an offer, a counter-offer, a mediator's text or a bid.

    ``offer_id`` is unique within its session (1, 2, ...); ``to`` is the addressee when the
    protocol needs one (a buyer's counter-offer in a call for proposals), else None.
    """

    offer_id: int
    proposer: int
    terms: dict[str, Any]
    round: int
    step: int
    to: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``to`` only when set)."""
        data: dict[str, Any] = {
            "offer_id": self.offer_id,
            "proposer": self.proposer,
            "terms": dict(self.terms),
            "round": self.round,
        }
        if self.to is not None:
            data["to"] = self.to
        return data


@dataclass(slots=True)
class Agreement:
    """Terms both sides accepted; the world turns it into a contract."""

    session_id: str
    protocol: str
    buyer_id: int
    seller_id: int
    terms: dict[str, Any]
    step: int
    round: int
    mediator_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["terms"] = dict(self.terms)
        return data


@dataclass(slots=True)
class SessionEvent:
    """Something that happened in a session, for the recording.

    ``kind`` is one of "offer", "accept", "reject", "end", "cfp", "proposal", "veto", "bid",
    "agreement", "disagreement", "timeout"; ``agent_id`` is the acting agent (None for the
    session itself); ``content`` always holds session_id, protocol, round and parties.
    """

    kind: str
    agent_id: int | None
    content: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": self.kind, "agent_id": self.agent_id, "content": self.content}


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ProtocolError(f"{what} must be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return int(float(value))
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise ProtocolError(f"{what} must be an integer, got {value!r}")


class NegotiationSession(ABC):
    """One negotiation among ``parties`` over ``space``: the common state machine.

    ``status`` is "open", "agreed", "failed" (deadline reached, everyone withdrew or rejected)
    or "ended" (a party ended it). ``round`` counts the session's steps from 0; after
    ``max_rounds`` rounds without agreement the session fails. Offer ids are unique per
    session. Subclasses define who may do what (:meth:`_blocked`) and what it does
    (:meth:`_apply`).
    """

    protocol: ClassVar[str]
    #: the actions this protocol uses, in the order views list them
    protocol_actions: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        session_id: str,
        *,
        space: OutcomeSpace,
        parties: Sequence[int],
        max_rounds: int,
        good: str | None = None,
        start_step: int = 0,
    ) -> None:
        if not isinstance(session_id, str) or not session_id:
            raise ValueError(f"session_id must be a non-empty string, got {session_id!r}")
        parties = [int(p) for p in parties]
        if len(set(parties)) != len(parties):
            raise ValueError(f"session {session_id}: parties must be distinct, got {parties}")
        if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
            raise ValueError(f"session {session_id}: max_rounds must be an int >= 1")
        self.session_id = session_id
        self.space = space
        self.parties: list[int] = parties
        self.good = good
        self.max_rounds = max_rounds
        self.start_step = int(start_step)
        self.status = "open"
        self.round = 0
        #: why the session is no longer open (None while open)
        self.end_reason: str | None = None
        #: every offer made, in order
        self.offers: list[Offer] = []
        #: every agreement reached, in order (take_agreements drains a separate queue)
        self.agreements: list[Agreement] = []
        self._new_agreements: list[Agreement] = []
        self._next_offer_id = 1
        self._acted: set[int] = set()
        self._last_advanced_step: int | None = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.session_id!r}, parties={self.parties}, "
            f"round={self.round}/{self.max_rounds}, status={self.status!r})"
        )

    # -- public API -------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """Whether actions are still possible."""
        return self.status == "open"

    @property
    def rounds_left(self) -> int:
        """Rounds left including the current one (0 once the deadline has passed)."""
        return max(self.max_rounds - self.round, 0)

    @abstractmethod
    def role(self, agent_id: int) -> str | None:
        """This agent's role in the session ("buyer", "seller", "mediator", "bidder") or None."""

    def turn(self) -> int | None:
        """Whose turn it is, for turn-based protocols; None when all may act at once."""
        return None

    def allowed(self, agent_id: int) -> list[str]:
        """Action names this agent may use in this session now."""
        if not self._may_act(agent_id):
            return []
        return [a for a in self.protocol_actions if self._blocked(agent_id, a) is None]

    def handle(
        self, agent_id: int, action: str, payload: Mapping[str, Any], step: int
    ) -> list[SessionEvent]:
        """Validate and apply one action; ProtocolError(reason) when it is not allowed now."""
        if self.status != "open":
            raise ProtocolError(
                f"negotiation {self.session_id} is over ({self.status}"
                + (f": {self.end_reason})" if self.end_reason else ")")
            )
        if agent_id not in self.parties:
            raise ProtocolError(f"agent {agent_id} is not a party to negotiation {self.session_id}")
        if step < self.start_step:
            raise ProtocolError(
                f"negotiation {self.session_id} opens at step {self.start_step}, not {step}"
            )
        if action not in self.protocol_actions:
            raise ProtocolError(
                f"{action} is not an action of {self.protocol} negotiations; they use "
                f"{', '.join(self.protocol_actions)}"
            )
        if not isinstance(payload, Mapping):
            raise ProtocolError(f"{action} needs an object of arguments, got {payload!r}")
        reason = self._blocked(agent_id, action)
        if reason is not None:
            raise ProtocolError(reason)
        return self._apply(agent_id, action, payload, step)

    def advance(self, step: int) -> list[SessionEvent]:
        """Close the current round (called once at the end of each step, after all actions)."""
        if self.status != "open" or step < self.start_step:
            return []
        if self._last_advanced_step is not None and step <= self._last_advanced_step:
            return []  # already advanced for this step
        self._last_advanced_step = step
        events = self._close_round(step)
        self._acted.clear()
        if self.status == "open":
            self.round += 1
            events.extend(self._after_round(step))
            if self.status == "open" and self.round >= self.max_rounds:
                events.extend(self._deadline(step))
        return events

    def take_agreements(self) -> list[Agreement]:
        """Agreements reached since the last call (drained)."""
        new, self._new_agreements = self._new_agreements, []
        return new

    def opening_events(self) -> list[SessionEvent]:
        """Events announcing the session (e.g. the call for proposals); empty by default."""
        return []

    def view(self, agent_id: int) -> dict[str, Any]:
        """What this agent sees of the session, JSON-ready; never other parties' private utilities.

        Keys: session_id, protocol, you (this agent's id), parties, role, good, space (the
        outcome space dict), round, max_rounds, rounds_left, turn (an agent id or None), status,
        offers (the last 3 offers this agent may see: offer_id, proposer, terms, round and
        ``to`` when addressed), standing (the offers it may accept now), allowed (the actions
        it may use now), outcome (None while open and without agreement for this agent, else
        {status, reason, agreements: the agreements it is party to}), plus protocol-specific keys.
        """
        visible = [o for o in self.offers if self._visible(agent_id, o)]
        mine = [
            a.to_dict()
            for a in self.agreements
            if agent_id in (a.buyer_id, a.seller_id, a.mediator_id)
        ]
        outcome: dict[str, Any] | None = None
        if self.status != "open" or mine:
            outcome = {"status": self.status, "reason": self.end_reason, "agreements": mine}
        data: dict[str, Any] = {
            "session_id": self.session_id,
            "protocol": self.protocol,
            "you": agent_id,
            "parties": list(self.parties),
            "role": self.role(agent_id),
            "good": self.good,
            "space": self.space.to_dict(),
            "round": self.round,
            "max_rounds": self.max_rounds,
            "rounds_left": self.rounds_left,
            "turn": self.turn(),
            "status": self.status,
            "offers": [o.to_dict() for o in visible[-VIEW_OFFERS:]],
            "standing": [o.to_dict() for o in self._standing_for(agent_id)],
            "allowed": self.allowed(agent_id),
            "outcome": outcome,
        }
        data.update(self._view_extra(agent_id))
        return data

    # -- hooks for subclasses ---------------------------------------------------------

    @abstractmethod
    def _blocked(self, agent_id: int, action: str) -> str | None:
        """Why this party may not use this protocol action now, or None when it may."""

    @abstractmethod
    def _apply(
        self, agent_id: int, action: str, payload: Mapping[str, Any], step: int
    ) -> list[SessionEvent]:
        """Apply an allowed action."""

    def _close_round(self, step: int) -> list[SessionEvent]:
        """Work at the end of a round, before the round counter moves (resolve bids, ...)."""
        return []

    def _after_round(self, step: int) -> list[SessionEvent]:
        """Work after the round counter moved (turn change, auction close, ...)."""
        return []

    def _deadline(self, step: int) -> list[SessionEvent]:
        """The last round passed without agreement."""
        return self._fail("deadline reached")

    def _standing_for(self, agent_id: int) -> list[Offer]:
        """Offers this agent may accept now."""
        return []

    def _visible(self, agent_id: int, offer: Offer) -> bool:
        return True

    def _view_extra(self, agent_id: int) -> dict[str, Any]:
        return {}

    def _may_act(self, agent_id: int) -> bool:
        return self.status == "open" and agent_id in self.parties

    # -- helpers ----------------------------------------------------------------------

    def _event(self, kind: str, agent_id: int | None, **content: Any) -> SessionEvent:
        body: dict[str, Any] = {
            "session_id": self.session_id,
            "protocol": self.protocol,
            "round": self.round,
            "parties": list(self.parties),
        }
        body.update(content)
        return SessionEvent(kind, agent_id, body)

    def _validate_terms(self, terms: Any, what: str = "offer") -> dict[str, Any]:
        if not isinstance(terms, Mapping):
            raise ProtocolError(
                f"{what} needs 'terms': an object with a value for each issue "
                f"({', '.join(self.space.names)})"
            )
        try:
            return self.space.validate(terms)
        except OutcomeError as exc:
            raise ProtocolError(f"{what} outside the outcome space: {exc}") from None

    def _new_offer(
        self, proposer: int, terms: dict[str, Any], step: int, to: int | None = None
    ) -> Offer:
        offer = Offer(self._next_offer_id, proposer, terms, self.round, step, to)
        self._next_offer_id += 1
        self.offers.append(offer)
        return offer

    def _offer_id(self, payload: Mapping[str, Any], action: str) -> int:
        if payload.get("offer_id") is None:
            raise ProtocolError(f"{action} needs the offer_id of the offer")
        return _as_int(payload["offer_id"], "offer_id")

    def _agree(
        self,
        buyer_id: int,
        seller_id: int,
        terms: dict[str, Any],
        step: int,
        mediator_id: int | None = None,
        **extra: Any,
    ) -> SessionEvent:
        agreement = Agreement(
            self.session_id,
            self.protocol,
            buyer_id,
            seller_id,
            dict(terms),
            step,
            self.round,
            mediator_id,
        )
        self.agreements.append(agreement)
        self._new_agreements.append(agreement)
        return self._event("agreement", None, **agreement.to_dict(), **extra)

    def _close(self, status: str, reason: str) -> None:
        self.status = status
        self.end_reason = reason

    def _fail(self, reason: str, **extra: Any) -> list[SessionEvent]:
        self._close("failed", reason)
        return [self._event("disagreement", None, reason=reason, **extra)]

    def _end_by(self, agent_id: int, payload: Mapping[str, Any]) -> list[SessionEvent]:
        why = payload.get("reason")
        reason = f"agent {agent_id} ended the negotiation"
        if isinstance(why, str) and why.strip():
            reason += f": {why.strip()[:200]}"
        self._close("ended", reason)
        return [self._event("end", agent_id, reason=reason)]


class AlternatingOffers(NegotiationSession):
    """Rubinstein-style bilateral bargaining: the parties take turns, one round each.

    In each round only the party whose turn it is may make_offer (a counter-offer),
    accept_offer (the other party's standing offer, by offer_id), or reject_offer (the turn
    passes without a counter); either party may end_negotiation at any time. A turn left
    unused passes too (a "timeout" event). Payloads: make_offer {"terms": {...}},
    accept_offer {"offer_id": n}, reject_offer {"offer_id": n (optional)},
    end_negotiation {"reason": "..." (optional)}.
    """

    protocol: ClassVar[str] = "alternating_offers"
    protocol_actions: ClassVar[tuple[str, ...]] = (
        "make_offer",
        "accept_offer",
        "reject_offer",
        "end_negotiation",
    )

    def __init__(
        self,
        session_id: str,
        *,
        buyer_id: int,
        seller_id: int,
        space: OutcomeSpace,
        max_rounds: int,
        first_mover: int,
        good: str | None = None,
        start_step: int = 0,
    ) -> None:
        super().__init__(
            session_id,
            space=space,
            parties=[buyer_id, seller_id],
            max_rounds=max_rounds,
            good=good,
            start_step=start_step,
        )
        if first_mover not in self.parties:
            raise ValueError(
                f"session {session_id}: first_mover {first_mover} is neither the buyer "
                f"{buyer_id} nor the seller {seller_id}"
            )
        self.buyer_id = int(buyer_id)
        self.seller_id = int(seller_id)
        self.first_mover = int(first_mover)
        self._turn = self.first_mover
        #: the last offer made and not yet rejected (the other party may accept it)
        self.standing: Offer | None = None

    def role(self, agent_id: int) -> str | None:
        """The role: "buyer", "seller" or None."""
        if agent_id == self.buyer_id:
            return "buyer"
        if agent_id == self.seller_id:
            return "seller"
        return None

    def turn(self) -> int | None:
        """The party whose turn it is (None once closed)."""
        return self._turn if self.status == "open" else None

    def other(self, agent_id: int) -> int:
        """The other party."""
        return self.seller_id if agent_id == self.buyer_id else self.buyer_id

    def _blocked(self, agent_id: int, action: str) -> str | None:
        if action == "end_negotiation":
            return None
        if agent_id != self._turn:
            return f"not your turn: waiting for agent {self._turn}"
        if agent_id in self._acted:
            return "you already acted this round: wait for the other party's answer"
        if action in ("accept_offer", "reject_offer"):
            standing = self.standing
            if standing is None or standing.proposer == agent_id:
                verb = "accept" if action == "accept_offer" else "reject"
                return f"there is no standing offer from agent {self.other(agent_id)} to {verb}"
        return None

    def _standing_for(self, agent_id: int) -> list[Offer]:
        s = self.standing
        if s is not None and s.proposer != agent_id and "accept_offer" in self.allowed(agent_id):
            return [s]
        return []

    def _check_standing(self, payload: Mapping[str, Any], action: str, required: bool) -> Offer:
        standing = self.standing
        assert standing is not None
        if not required and payload.get("offer_id") is None:
            return standing
        offer_id = self._offer_id(payload, action)
        if offer_id != standing.offer_id:
            known = any(o.offer_id == offer_id for o in self.offers)
            what = "is no longer standing" if known else "does not exist"
            raise ProtocolError(
                f"offer {offer_id} {what}: the standing offer is {standing.offer_id}"
            )
        return standing

    def _apply(
        self, agent_id: int, action: str, payload: Mapping[str, Any], step: int
    ) -> list[SessionEvent]:
        if action == "end_negotiation":
            return self._end_by(agent_id, payload)
        if action == "make_offer":
            terms = self._validate_terms(payload.get("terms"))
            offer = self._new_offer(agent_id, terms, step, to=self.other(agent_id))
            self.standing = offer
            self._acted.add(agent_id)
            return [self._event("offer", agent_id, **offer.to_dict())]
        if action == "accept_offer":
            offer = self._check_standing(payload, action, required=True)
            self._acted.add(agent_id)
            events = [self._event("accept", agent_id, offer_id=offer.offer_id, terms=offer.terms)]
            events.append(self._agree(self.buyer_id, self.seller_id, offer.terms, step))
            self._close("agreed", f"agent {agent_id} accepted offer {offer.offer_id}")
            return events
        # reject_offer
        offer = self._check_standing(payload, action, required=False)
        self.standing = None
        self._acted.add(agent_id)
        return [self._event("reject", agent_id, offer_id=offer.offer_id)]

    def _close_round(self, step: int) -> list[SessionEvent]:
        if self._turn not in self._acted:
            return [
                self._event("timeout", self._turn, reason="no action in its turn: the turn passes")
            ]
        return []

    def _after_round(self, step: int) -> list[SessionEvent]:
        self._turn = self.other(self._turn)
        return []

    def _view_extra(self, agent_id: int) -> dict[str, Any]:
        return {"buyer_id": self.buyer_id, "seller_id": self.seller_id}


class CallForProposals(NegotiationSession):
    """One buyer, many sellers: the buyer calls for proposals and picks among them.

    Each round every seller still in may make_offer (its new proposal replaces its previous
    one), accept_offer the buyer's counter-offer addressed to it, reject_offer it, or
    end_negotiation (withdraw); one action per seller per round. The buyer may accept_offer
    any standing proposal, make_offer a counter-offer to one seller (payload ``"to"``: the
    seller's id), reject_offer a proposal, or end_negotiation (ends the whole call).
    A counter-offer replaces that seller's standing proposal and a new proposal replaces the
    buyer's standing counter, so the two sides never hold crossing acceptable offers.
    After ``max_agreements`` agreements the session is "agreed" and the other sellers lose;
    at the deadline it is "agreed" if any agreement was reached, else "failed".
    Sellers see only their own exchange with the buyer.
    """

    protocol: ClassVar[str] = "call_for_proposals"
    protocol_actions: ClassVar[tuple[str, ...]] = (
        "make_offer",
        "accept_offer",
        "reject_offer",
        "end_negotiation",
    )

    def __init__(
        self,
        session_id: str,
        *,
        buyer_id: int,
        seller_ids: Sequence[int],
        space: OutcomeSpace,
        max_rounds: int,
        good: str | None = None,
        start_step: int = 0,
        max_agreements: int = 1,
    ) -> None:
        sellers = [int(s) for s in seller_ids]
        if not sellers:
            raise ValueError(f"session {session_id}: a call for proposals needs sellers")
        super().__init__(
            session_id,
            space=space,
            parties=[buyer_id, *sellers],
            max_rounds=max_rounds,
            good=good,
            start_step=start_step,
        )
        if max_agreements < 1:
            raise ValueError(f"session {session_id}: max_agreements must be >= 1")
        self.buyer_id = int(buyer_id)
        self.seller_ids: list[int] = sellers
        self.max_agreements = int(max_agreements)
        #: sellers still in the call (not withdrawn, not agreed, not lost)
        self.active: list[int] = list(sellers)
        #: each active seller's standing proposal to the buyer
        self.proposals: dict[int, Offer] = {}
        #: the buyer's standing counter-offer to each seller
        self.counters: dict[int, Offer] = {}
        #: why each seller left: "withdrew", "agreed" or "lost"
        self.left: dict[int, str] = {}

    def role(self, agent_id: int) -> str | None:
        """The role: "buyer", "seller" or None."""
        if agent_id == self.buyer_id:
            return "buyer"
        if agent_id in self.seller_ids:
            return "seller"
        return None

    def opening_events(self) -> list[SessionEvent]:
        """The call for proposals itself."""
        return [
            self._event(
                "cfp",
                self.buyer_id,
                good=self.good,
                seller_ids=list(self.seller_ids),
                space=self.space.to_dict(),
                max_rounds=self.max_rounds,
                max_agreements=self.max_agreements,
            )
        ]

    def _blocked(self, agent_id: int, action: str) -> str | None:
        if agent_id == self.buyer_id:
            if action == "accept_offer" and not self.proposals:
                return "there is no standing proposal to accept yet"
            if action == "reject_offer" and not self.proposals:
                return "there is no standing proposal to reject"
            return None
        if agent_id not in self.active:
            return f"you are out of this call for proposals ({self.left.get(agent_id, 'left')})"
        if action == "end_negotiation":
            return None
        if agent_id in self._acted:
            return "you already acted this round: wait for the next round"
        if action in ("accept_offer", "reject_offer") and agent_id not in self.counters:
            verb = "accept" if action == "accept_offer" else "reject"
            return f"there is no counter-offer from the buyer {self.buyer_id} to {verb}"
        return None

    def _standing_for(self, agent_id: int) -> list[Offer]:
        if "accept_offer" not in self.allowed(agent_id):
            return []
        if agent_id == self.buyer_id:
            return sorted(self.proposals.values(), key=lambda o: o.offer_id)
        counter = self.counters.get(agent_id)
        return [counter] if counter is not None else []

    def _visible(self, agent_id: int, offer: Offer) -> bool:
        return agent_id == self.buyer_id or agent_id in (offer.proposer, offer.to)

    def _find_proposal(self, offer_id: int) -> Offer:
        for offer in self.proposals.values():
            if offer.offer_id == offer_id:
                return offer
        standing = ", ".join(str(o.offer_id) for o in self.proposals.values()) or "none"
        raise ProtocolError(f"offer {offer_id} is not a standing proposal (standing: {standing})")

    def _counter_of(self, seller: int, payload: Mapping[str, Any], action: str) -> Offer:
        counter = self.counters[seller]
        if payload.get("offer_id") is None and action == "reject_offer":
            return counter
        offer_id = self._offer_id(payload, action)
        if offer_id != counter.offer_id:
            raise ProtocolError(
                f"offer {offer_id} is not the buyer's standing counter-offer to you "
                f"(that is offer {counter.offer_id})"
            )
        return counter

    def _leave(self, seller: int, why: str) -> None:
        if seller in self.active:
            self.active.remove(seller)
        self.left[seller] = why
        self.proposals.pop(seller, None)
        self.counters.pop(seller, None)

    def _agree_with(self, seller: int, offer: Offer, step: int) -> list[SessionEvent]:
        events = [self._agree(self.buyer_id, seller, offer.terms, step, offer_id=offer.offer_id)]
        self._leave(seller, "agreed")
        if len(self.agreements) >= self.max_agreements:
            events.extend(self._finish("agreed", "the buyer reached its agreements"))
        elif not self.active:
            events.extend(self._finish("agreed", "no sellers left"))
        return events

    def _finish(self, status: str, reason: str) -> list[SessionEvent]:
        losers = list(self.active)
        for seller in losers:
            self._leave(seller, "lost")
        self._close(status, reason)
        if status == "failed":
            return [self._event("disagreement", None, reason=reason, lost=losers)]
        return [self._event("end", None, reason=reason, lost=losers)]

    def _apply(
        self, agent_id: int, action: str, payload: Mapping[str, Any], step: int
    ) -> list[SessionEvent]:
        if agent_id == self.buyer_id:
            return self._apply_buyer(action, payload, step)
        if action == "end_negotiation":
            self._leave(agent_id, "withdrew")
            events = [self._event("end", agent_id, reason=f"seller {agent_id} withdrew")]
            if not self.active:
                if self.agreements:
                    events.extend(self._finish("agreed", "no sellers left"))
                else:
                    events.extend(self._finish("failed", "all sellers withdrew"))
            return events
        self._acted.add(agent_id)
        if action == "make_offer":
            terms = self._validate_terms(payload.get("terms"))
            offer = self._new_offer(agent_id, terms, step, to=self.buyer_id)
            self.proposals[agent_id] = offer
            self.counters.pop(agent_id, None)  # a new proposal answers the buyer's counter
            return [self._event("offer", agent_id, **offer.to_dict())]
        counter = self._counter_of(agent_id, payload, action)
        if action == "accept_offer":
            events = [
                self._event("accept", agent_id, offer_id=counter.offer_id, terms=counter.terms)
            ]
            return events + self._agree_with(agent_id, counter, step)
        del self.counters[agent_id]
        return [self._event("reject", agent_id, offer_id=counter.offer_id)]

    def _apply_buyer(
        self, action: str, payload: Mapping[str, Any], step: int
    ) -> list[SessionEvent]:
        buyer = self.buyer_id
        if action == "end_negotiation":
            events = self._end_by(buyer, payload)
            losers = list(self.active)
            for seller in losers:
                self._leave(seller, "lost")
            events[0].content["lost"] = losers
            return events
        if action == "make_offer":
            to = payload.get("to")
            sellers = ", ".join(str(s) for s in self.active) or "none"
            if to is None:
                raise ProtocolError(
                    f"make_offer needs 'to': the seller the counter-offer is for (one of {sellers})"
                )
            seller = _as_int(to, "to")
            if seller not in self.active:
                raise ProtocolError(
                    f"agent {seller} is not a seller still in this call (sellers: {sellers})"
                )
            terms = self._validate_terms(payload.get("terms"))
            offer = self._new_offer(buyer, terms, step, to=seller)
            self.counters[seller] = offer
            self.proposals.pop(seller, None)  # the counter answers the seller's proposal
            return [self._event("offer", buyer, **offer.to_dict())]
        offer = self._find_proposal(self._offer_id(payload, action))
        seller = offer.proposer
        if action == "accept_offer":
            events = [self._event("accept", buyer, offer_id=offer.offer_id, terms=offer.terms)]
            return events + self._agree_with(seller, offer, step)
        del self.proposals[seller]
        return [self._event("reject", buyer, offer_id=offer.offer_id, to=seller)]

    def _deadline(self, step: int) -> list[SessionEvent]:
        if self.agreements:
            return self._finish("agreed", "deadline reached")
        return self._finish("failed", "deadline reached")

    def _view_extra(self, agent_id: int) -> dict[str, Any]:
        data: dict[str, Any] = {
            "buyer_id": self.buyer_id,
            "max_agreements": self.max_agreements,
            "agreements_reached": len(self.agreements),
        }
        if agent_id == self.buyer_id:
            data["sellers"] = list(self.active)
            data["counters"] = [
                o.to_dict() for o in sorted(self.counters.values(), key=lambda o: o.offer_id)
            ]
        else:
            mine = self.proposals.get(agent_id)
            data["your_proposal"] = mine.to_dict() if mine is not None else None
            data["in_call"] = agent_id in self.active
            data["left_because"] = self.left.get(agent_id)
        return data


class SingleTextMediation(NegotiationSession):
    """A mediator proposes one text at a time; the buyer and the seller accept or veto it.

    The mediator may propose_settlement ({"terms": {...}}) once per round; the text becomes
    the one to answer at the start of the next round (so everyone answers the same text under
    simultaneous moves). Each party answers the current text once: accept_offer
    ({"offer_id": n}) or reject_offer ({"offer_id": n, "counter": {...} optional}, a veto,
    the counter validated against the outcome space). When both accept the same text,
    an Agreement (with mediator_id) is reached. A new text resets the answers. Any of the
    three may end_negotiation.
    """

    protocol: ClassVar[str] = "single_text"
    protocol_actions: ClassVar[tuple[str, ...]] = (
        "propose_settlement",
        "accept_offer",
        "reject_offer",
        "end_negotiation",
    )

    def __init__(
        self,
        session_id: str,
        *,
        mediator_id: int,
        buyer_id: int,
        seller_id: int,
        space: OutcomeSpace,
        max_rounds: int,
        good: str | None = None,
        start_step: int = 0,
    ) -> None:
        super().__init__(
            session_id,
            space=space,
            parties=[buyer_id, seller_id, mediator_id],
            max_rounds=max_rounds,
            good=good,
            start_step=start_step,
        )
        self.mediator_id = int(mediator_id)
        self.buyer_id = int(buyer_id)
        self.seller_id = int(seller_id)
        #: the text the parties answer this round (None before the first one)
        self.text: Offer | None = None
        #: a text proposed this round, current from the next round on
        self.pending: Offer | None = None
        #: answers to the current text: party id -> "accept" | "veto"
        self.responses: dict[int, str] = {}
        #: each party's latest counter-proposal (kept across texts)
        self.counter_proposals: dict[int, dict[str, Any]] = {}

    def role(self, agent_id: int) -> str | None:
        """The role: "buyer", "seller", "mediator" or None."""
        return {
            self.buyer_id: "buyer",
            self.seller_id: "seller",
            self.mediator_id: "mediator",
        }.get(agent_id)

    def _blocked(self, agent_id: int, action: str) -> str | None:
        if action == "end_negotiation":
            return None
        if agent_id == self.mediator_id:
            if action != "propose_settlement":
                return (
                    "the mediator proposes texts with propose_settlement; "
                    "the buyer and the seller accept or reject them"
                )
            if agent_id in self._acted:
                return "you already proposed a text this round"
            return None
        if action == "propose_settlement":
            return (
                "only the mediator proposes texts; answer the current text with "
                "accept_offer or reject_offer (with a 'counter' you would prefer)"
            )
        text = self.text
        if text is None:
            if self.pending is not None:
                return "the mediator's first text can be answered from the next round"
            return "there is no text to answer yet: wait for the mediator's proposal"
        if agent_id in self.responses:
            return f"you already answered text {text.offer_id}: wait for the mediator's next text"
        # an accept is recorded even when the other party vetoed earlier in the same step: moves
        # are simultaneous, so the resolve order must not decide which answer is refused
        return None

    def _standing_for(self, agent_id: int) -> list[Offer]:
        if self.text is not None and "accept_offer" in self.allowed(agent_id):
            return [self.text]
        return []

    def _check_text(self, payload: Mapping[str, Any], action: str) -> Offer:
        text = self.text
        assert text is not None
        if payload.get("offer_id") is None and action == "reject_offer":
            return text
        offer_id = self._offer_id(payload, action)
        if offer_id != text.offer_id:
            raise ProtocolError(
                f"offer {offer_id} is not the current text: answer text {text.offer_id}"
            )
        return text

    def _apply(
        self, agent_id: int, action: str, payload: Mapping[str, Any], step: int
    ) -> list[SessionEvent]:
        if action == "end_negotiation":
            return self._end_by(agent_id, payload)
        if action == "propose_settlement":
            terms = self._validate_terms(payload.get("terms"), "text")
            offer = self._new_offer(agent_id, terms, step)
            self.pending = offer
            self._acted.add(agent_id)
            return [self._event("proposal", agent_id, **offer.to_dict())]
        text = self._check_text(payload, action)
        if action == "accept_offer":
            self.responses[agent_id] = "accept"
            events = [self._event("accept", agent_id, offer_id=text.offer_id, terms=text.terms)]
            if all(self.responses.get(p) == "accept" for p in (self.buyer_id, self.seller_id)):
                events.append(
                    self._agree(self.buyer_id, self.seller_id, text.terms, step, self.mediator_id)
                )
                self._close("agreed", f"both parties accepted text {text.offer_id}")
            return events
        counter = payload.get("counter")
        content: dict[str, Any] = {"offer_id": text.offer_id}
        if counter is not None:
            counter_terms = self._validate_terms(counter, "counter")
            self.counter_proposals[agent_id] = counter_terms
            content["counter"] = counter_terms
        self.responses[agent_id] = "veto"
        return [self._event("veto", agent_id, **content)]

    def _after_round(self, step: int) -> list[SessionEvent]:
        if self.pending is not None:
            self.text, self.pending = self.pending, None
            self.responses = {}
        return []

    def _view_extra(self, agent_id: int) -> dict[str, Any]:
        roles = {self.buyer_id: "buyer", self.seller_id: "seller"}
        data: dict[str, Any] = {
            "mediator_id": self.mediator_id,
            "buyer_id": self.buyer_id,
            "seller_id": self.seller_id,
            "text": self.text.to_dict() if self.text is not None else None,
            "responses": {roles[p]: self.responses.get(p) for p in roles},
        }
        if agent_id == self.mediator_id:
            data["pending_text"] = self.pending.to_dict() if self.pending is not None else None
            data["counters"] = {roles[p]: self.counter_proposals.get(p) for p in roles}
        elif agent_id in roles:
            data["your_counter"] = self.counter_proposals.get(agent_id)
        return data
