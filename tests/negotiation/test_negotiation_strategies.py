"""Tests of the rule-based negotiators: the baselines behave as the literature says.

Sessions are simulated with the pure protocol classes, driven the way the world drives them:
every agent decides from the view at the start of the step, actions are applied, then the
session advances.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pytest

from mesa_llm.negotiation import (
    STRATEGIES,
    AlternatingOffers,
    Boulware,
    CallForProposals,
    CategoricalIssue,
    Conceder,
    ContinuousIssue,
    EnglishAuction,
    HardHeaded,
    Linear,
    LinearAdditiveUtility,
    MediatorStrategy,
    NegotiationSession,
    NegotiatorStrategy,
    OutcomeSpace,
    ProtocolError,
    SealedBidAuction,
    SingleTextMediation,
    TimeDependent,
    TitForTat,
    TruthfulBidder,
    make_strategy,
    pareto_frontier,
    price_utility,
)

BUYER, SELLER = 1, 2
VALUE, COST = 150.0, 50.0


def price_space() -> OutcomeSpace:
    return OutcomeSpace([ContinuousIssue("price", 50.0, 150.0, tick=1.0)])


def drive(
    session: NegotiationSession,
    agents: Mapping[int, tuple[NegotiatorStrategy, LinearAdditiveUtility]],
    max_steps: int = 200,
) -> list[str]:
    """Run the session to its end; returns the reasons of rejected actions."""
    rng = np.random.default_rng(0)
    rejected: list[str] = []
    for step in range(max_steps):
        if session.status != "open":
            break
        views = {a: session.view(a) for a in agents}
        decisions = {a: s.act(views[a], u, session.space, rng) for a, (s, u) in agents.items()}
        for agent, decision in decisions.items():
            if decision is None:
                continue
            try:
                session.handle(agent, decision[0], decision[1], step)
            except ProtocolError as exc:
                rejected.append(exc.reason)
        session.advance(step)
    return rejected


def bilateral(
    buyer: NegotiatorStrategy,
    seller: NegotiatorStrategy,
    first_mover: int = BUYER,
    max_rounds: int = 20,
) -> tuple[AlternatingOffers, float | None]:
    space = price_space()
    session = AlternatingOffers(
        "ao",
        buyer_id=BUYER,
        seller_id=SELLER,
        space=space,
        max_rounds=max_rounds,
        first_mover=first_mover,
    )
    agents = {
        BUYER: (buyer, price_utility(space, buyer=True, reservation_price=VALUE)),
        SELLER: (seller, price_utility(space, buyer=False, reservation_price=COST)),
    }
    assert drive(session, agents) == []
    agreements = session.take_agreements()
    return session, (float(agreements[0].terms["price"]) if agreements else None)


@pytest.mark.parametrize("first_mover", [BUYER, SELLER])
def test_two_linear_agents_meet_near_the_midpoint(first_mover: int) -> None:
    session, price = bilateral(Linear(), Linear(), first_mover)
    assert session.status == "agreed" and price is not None
    assert abs(price - 100.0) <= 0.1 * (150.0 - 50.0)


@pytest.mark.parametrize("first_mover", [BUYER, SELLER])
def test_boulware_gets_the_larger_share_against_a_conceder(first_mover: int) -> None:
    # Boulware buying: the price ends low (the buyer's surplus VALUE - p is the larger share).
    _, price = bilateral(Boulware(), Conceder(), first_mover)
    assert price is not None and VALUE - price > price - COST
    # Boulware selling: the price ends high.
    _, price = bilateral(Conceder(), Boulware(), first_mover)
    assert price is not None and price - COST > VALUE - price


@pytest.mark.parametrize("first_mover", [BUYER, SELLER])
def test_hard_headed_wins_at_the_deadline_against_a_conceder(first_mover: int) -> None:
    # The deal comes in the last exchange: at the latest when the conceder, in its last turn
    # whose offer can still be answered (round max_rounds - 2 or - 3), concedes to its reservation.
    session, price = bilateral(HardHeaded(), Conceder(), first_mover)
    assert price is not None and session.agreements[0].round >= session.max_rounds - 3
    assert VALUE - price > price - COST  # in the hard-headed buyer's favour
    session, price = bilateral(Conceder(), HardHeaded(), first_mover)
    assert price is not None and session.agreements[0].round >= session.max_rounds - 3
    assert price - COST > VALUE - price


def test_agreements_are_individually_rational_and_on_the_frontier() -> None:
    space = price_space()
    utilities = [
        price_utility(space, buyer=True, reservation_price=VALUE),
        price_utility(space, buyer=False, reservation_price=COST),
    ]
    frontier = set(pareto_frontier(utilities, space.grid(101)))
    pairs = [(Boulware(), Linear()), (Linear(), Conceder()), (TitForTat(), Linear())]
    for buyer, seller in pairs:
        _, price = bilateral(buyer, seller)
        assert price is not None and COST <= price <= VALUE
        assert space.grid(101).index({"price": price}) in frontier


def test_tit_for_tat_mirrors_concessions() -> None:
    session, price = bilateral(TitForTat(), Linear())
    assert session.status == "agreed" and price is not None
    assert abs(price - 100.0) <= 10.0
    # two tit-for-tat agents starting from their best never concede: only the deadline rule
    # (accept anything above reservation when a counter-offer could no longer be answered) ends it,
    # on the last offer standing, the first mover's best
    session, price = bilateral(TitForTat(), TitForTat())
    assert session.status == "agreed" and session.agreements[0].round >= session.max_rounds - 1
    assert price in (50.0, 150.0)


def test_nobody_accepts_below_its_reservation_value() -> None:
    space = price_space()
    session = AlternatingOffers(
        "ao", buyer_id=BUYER, seller_id=SELLER, space=space, max_rounds=20, first_mover=BUYER
    )
    agents = {  # no zone of agreement: the buyer values it at 80, the seller's cost is 90
        BUYER: (Conceder(), price_utility(space, buyer=True, reservation_price=80.0)),
        SELLER: (HardHeaded(), price_utility(space, buyer=False, reservation_price=90.0)),
    }
    drive(session, agents)
    assert session.status == "failed"


def test_strategies_are_deterministic() -> None:
    runs = [bilateral(Boulware(), Conceder())[0] for _ in range(2)]
    assert [o.to_dict() for o in runs[0].offers] == [o.to_dict() for o in runs[1].offers]


def test_time_dependent_aspiration() -> None:
    space = price_space()
    u = price_utility(space, buyer=False, reservation_price=COST)  # reservation 0
    assert Linear().aspiration(0.5, u, 1.0) == pytest.approx(0.5)
    assert Boulware().aspiration(0.5, u, 1.0) > 0.9
    assert Conceder().aspiration(0.5, u, 1.0) < 0.15
    assert TimeDependent(2.0).aspiration(1.0, u, 1.0) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        TimeDependent(0.0)


def test_multi_issue_ties_break_towards_the_opponent() -> None:
    space = OutcomeSpace(
        [
            ContinuousIssue("price", 0.0, 100.0, tick=1.0),
            CategoricalIssue("colour", ["red", "blue"]),
        ]
    )
    # only the price matters to the seller: every colour ties
    u = LinearAdditiveUtility(space, {"price": 1}, {"price": "increasing"})
    view = {
        "session_id": "x",
        "you": SELLER,
        "round": 0,
        "max_rounds": 10,
        "offers": [{"offer_id": 1, "proposer": BUYER, "terms": {"price": 10.0, "colour": "blue"}}],
    }
    proposal = Linear().propose(view, u, space)
    assert proposal == {"price": 100.0, "colour": "blue"}


# -- other protocols ---------------------------------------------------------------------


def test_call_for_proposals_with_strategies_reaches_a_rational_deal() -> None:
    space = price_space()
    session = CallForProposals(
        "cfp", buyer_id=BUYER, seller_ids=[11, 12, 13], space=space, max_rounds=20
    )
    costs = {11: 60.0, 12: 90.0, 13: 120.0}
    agents = {BUYER: (Linear(), price_utility(space, buyer=True, reservation_price=VALUE))}
    for seller, cost in costs.items():
        agents[seller] = (Conceder(), price_utility(space, buyer=False, reservation_price=cost))
    drive(session, agents)
    assert session.status == "agreed"
    [agreement] = session.agreements
    price = float(agreement.terms["price"])
    assert costs[agreement.seller_id] <= price <= VALUE


def test_single_text_mediation_converges() -> None:
    space = OutcomeSpace(
        [ContinuousIssue("price", 50.0, 150.0, tick=1.0), CategoricalIssue("grade", ["a", "b"])]
    )
    buyer_u = LinearAdditiveUtility(
        space, {"price": 3, "grade": 1}, {"price": "decreasing", "grade": {"a": 1.0}}, 0.2
    )
    seller_u = LinearAdditiveUtility(
        space, {"price": 3, "grade": 1}, {"price": "increasing", "grade": {"a": 1.0, "b": 0.5}}, 0.2
    )
    session = SingleTextMediation(
        "st", mediator_id=9, buyer_id=BUYER, seller_id=SELLER, space=space, max_rounds=40
    )
    agents = {
        9: (MediatorStrategy(), buyer_u),  # the mediator's utility is not used
        BUYER: (Linear(), buyer_u),
        SELLER: (Linear(), seller_u),
    }
    assert drive(session, agents) == []
    assert session.status == "agreed"
    [agreement] = session.agreements
    assert agreement.mediator_id == 9
    assert buyer_u.acceptable(agreement.terms) and seller_u.acceptable(agreement.terms)
    first_text = session.offers[0].terms
    assert first_text == {"price": 100.0, "grade": "a"}  # the midpoint first


def test_mediator_moves_halfway_towards_the_counters() -> None:
    space = OutcomeSpace(
        [ContinuousIssue("price", 0.0, 100.0, tick=1.0), CategoricalIssue("grade", ["a", "b"])]
    )
    u = LinearAdditiveUtility(space, {"price": 1}, {"price": "increasing"})
    view = {
        "status": "open",
        "role": "mediator",
        "protocol": "single_text",
        "allowed": ["propose_settlement", "end_negotiation"],
        "text": {"offer_id": 1, "proposer": 9, "terms": {"price": 50.0, "grade": "a"}},
        "pending_text": None,
        "responses": {"buyer": "veto", "seller": "veto"},
        "counters": {
            "buyer": {"price": 30.0, "grade": "b"},
            "seller": {"price": 90.0, "grade": "b"},
        },
    }
    action = MediatorStrategy().act(view, u, space, np.random.default_rng(0))
    assert action == ("propose_settlement", {"terms": {"price": 55.0, "grade": "b"}})
    waiting = dict(view, responses={"buyer": None, "seller": None})
    assert MediatorStrategy().act(waiting, u, space, np.random.default_rng(0)) is None


# -- auctions ----------------------------------------------------------------------------

VALUES = {1: 100.0, 2: 80.0, 3: 60.5, 4: 30.0}


def bidders(space: OutcomeSpace) -> dict[int, tuple[NegotiatorStrategy, LinearAdditiveUtility]]:
    dummy = LinearAdditiveUtility(space, {"price": 1}, {"price": "decreasing"})
    agents: dict[int, tuple[NegotiatorStrategy, LinearAdditiveUtility]] = {
        b: (TruthfulBidder(v), dummy) for b, v in VALUES.items()
    }
    agents[0] = (Linear(), dummy)  # the seller: strategies do nothing in auctions
    return agents


def test_second_price_with_truthful_bidders_sells_at_the_second_value() -> None:
    session = SealedBidAuction(
        "sb", seller_id=0, bidder_ids=list(VALUES), good="widget", pricing="second_price"
    )
    assert drive(session, bidders(session.space)) == []
    [agreement] = session.agreements
    assert agreement.buyer_id == 1 and agreement.terms["price"] == 80.0


def test_first_price_truthful_bidders_shade_their_bids() -> None:
    session = SealedBidAuction(
        "sb", seller_id=0, bidder_ids=list(VALUES), good="widget", pricing="first_price"
    )
    drive(session, bidders(session.space))
    [agreement] = session.agreements
    assert agreement.buyer_id == 1 and agreement.terms["price"] == 75.0  # 100 * 3/4


def test_english_auction_ends_within_one_increment_of_the_second_value() -> None:
    session = EnglishAuction(
        "en",
        seller_id=0,
        bidder_ids=list(VALUES),
        good="widget",
        start_price=10.0,
        increment=2.5,
        max_rounds=100,
    )
    drive(session, bidders(session.space))
    [agreement] = session.agreements
    assert agreement.buyer_id == 1
    assert abs(float(agreement.terms["price"]) - 80.0) <= 2.5


# -- registry ----------------------------------------------------------------------------


def test_registry() -> None:
    assert {
        "boulware",
        "linear",
        "conceder",
        "tit_for_tat",
        "hard_headed",
        "mediator",
        "truthful_bidder",
    } <= set(STRATEGIES)
    for name, factory in STRATEGIES.items():
        params = {"value": 10.0} if name == "truthful_bidder" else {}
        strategy = factory(**params)
        assert strategy.name == name
    assert isinstance(make_strategy("boulware"), Boulware)
    assert make_strategy("time_dependent", exponent=3.0).exponent == 3.0  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="unknown negotiation strategy 'nope'"):
        make_strategy("nope")


# -- concession deadline and acceptance (AC_combi) ------------------------------------------


def ao_view(me: int, round_: int, standing: float | None = None, max_rounds: int = 20) -> dict:
    """What an alternating-offers session shows ``me`` in its turn at ``round_``."""
    other = SELLER if me == BUYER else BUYER
    offer = None if standing is None else {
        "offer_id": 7, "proposer": other, "terms": {"price": standing}, "round": round_ - 1,
    }  # fmt: skip
    return {
        "session_id": "ao", "protocol": "alternating_offers", "you": me, "parties": [BUYER, SELLER],
        "role": "buyer" if me == BUYER else "seller", "round": round_, "max_rounds": max_rounds,
        "rounds_left": max_rounds - round_, "turn": me, "status": "open",
        "offers": [offer] if offer else [], "standing": [offer] if offer else [],
        "allowed": ["make_offer", "accept_offer", "reject_offer", "end_negotiation"],
    }  # fmt: skip


@pytest.mark.parametrize("strategy", [Boulware, Linear, Conceder])
def test_concession_reaches_the_reservation_price_at_the_last_answerable_offer(strategy) -> None:
    # 20 rounds, the seller moves first: it offers in rounds 0, 2, ..., 18 (the buyer can still
    # accept in 19), the buyer in 1, 3, ..., 17 (19 is too late to be answered).
    space = price_space()
    seller_u = price_utility(space, buyer=False, reservation_price=73.4)
    buyer_u = price_utility(space, buyer=True, reservation_price=131.6)
    rng = np.random.default_rng(0)

    def offer(me: int, round_: int) -> float:
        u = buyer_u if me == BUYER else seller_u
        action = strategy().act(ao_view(me, round_), u, space, rng)
        assert action is not None and action[0] == "make_offer"
        return float(action[1]["terms"]["price"])

    assert offer(SELLER, 18) == 74.0  # the reservation price, on the tick
    assert offer(SELLER, 16) > 74.0
    assert offer(BUYER, 17) == 131.0
    assert offer(BUYER, 15) < 131.0
    # a wide range on a fine tick (bilateral_haggle's price): every tick is a candidate offer
    space = OutcomeSpace([ContinuousIssue("price", 3000.0, 13000.0, tick=10.0)])
    seller_u = price_utility(space, buyer=False, reservation_price=7234.5)
    buyer_u = price_utility(space, buyer=True, reservation_price=8765.4)
    assert offer(SELLER, 18) == 7240.0
    assert offer(BUYER, 17) == 8760.0


def test_acceptance_is_ac_next_until_the_last_round_then_any_rational_offer() -> None:
    space = price_space()
    seller_u = price_utility(space, buyer=False, reservation_price=80.0)
    rng = np.random.default_rng(0)
    # the seller's own next offer in round 10 of 20 (its last answerable round is 18)
    own = Linear().act(ao_view(SELLER, 10), seller_u, space, rng)
    assert own is not None and own[0] == "make_offer"
    next_price = float(own[1]["terms"]["price"])
    assert next_price == math.ceil(150.0 - 70.0 * 10 / 18)

    def answer(strategy: NegotiatorStrategy, round_: int, price: float) -> str:
        action = strategy.act(ao_view(SELLER, round_, standing=price), seller_u, space, rng)
        assert action is not None
        return action[0]

    assert answer(Linear(), 10, next_price) == "accept_offer"  # as good as its next offer
    assert answer(Linear(), 10, next_price - 1.0) == "make_offer"
    # never below the reservation price, not even in the last round
    assert answer(Linear(), 19, 80.0) == "accept_offer"
    assert answer(Linear(), 19, 79.0) == "make_offer"
    # tit-for-tat facing no concession keeps asking its best: only the last round (nothing
    # left to answer a counter-offer) makes it take any rational offer, not the round before
    assert answer(TitForTat(), 18, 85.0) == "make_offer"
    assert answer(TitForTat(), 19, 85.0) == "accept_offer"
