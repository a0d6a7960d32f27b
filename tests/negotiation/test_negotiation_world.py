"""Negotiations, auctions, contracts, regulation and the social layer inside the running market."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import pytest

from mesa_llm.actions import (
    AcceptOffer,
    Broadcast,
    Decision,
    ForwardMessage,
    JoinAlliance,
    MakeOffer,
    MessageAlliance,
    PlaceOrder,
    ProposeAlliance,
)
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.policies import DecisionPolicy, default_policy_registry
from mesa_llm.analysis import load_recording
from mesa_llm.analysis.metrics import allocative_efficiency
from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario, shipped_scenarios, validate_scenario


def _events(model: MarketModel) -> list[dict[str, Any]]:
    assert model.recording_path is not None
    return [json.loads(line) for line in model.recording_path.read_text().splitlines()]


def _totals(model: MarketModel) -> tuple[int, dict[str, int]]:
    ledger = model.exchange.ledger
    return ledger.total_cash(), {g: ledger.total_goods(g) for g in model.exchange.goods}


def _assert_conserved(model: MarketModel, before: tuple[int, dict[str, int]]) -> None:
    ledger = model.exchange.ledger
    ledger.check_invariants()
    assert _totals(model) == before
    for account in ledger.accounts():
        assert account.cash >= -account.credit_limit
        assert all(q >= -account.short_limit for q in account.holdings.values())


@pytest.mark.parametrize("name", sorted(shipped_scenarios()))
def test_every_shipped_scenario_runs_with_builtin_strategies_and_conserves(
    name, tmp_path, monkeypatch
):
    monkeypatch.delenv("MESA_LLM_MODEL", raising=False)
    model = MarketModel(load_scenario(name), steps=6, output_dir=tmp_path, check_invariants=True)
    before = _totals(model)
    model.run()
    _assert_conserved(model, before)
    kinds = {e["event_type"] for e in _events(model)}
    assert kinds & {"order", "offer"}, name
    efficiency = model.efficiency()
    # the model's running figure is the one the recording gives, and never above the maximum
    assert model.recording_path is not None
    from_recording = allocative_efficiency(load_recording(model.recording_path), rebase_on_shocks=True)
    assert efficiency == pytest.approx(from_recording), name
    assert efficiency is None or efficiency <= 1.0 + 1e-9, (name, efficiency)
    assert not any(e["event_type"] == "agent_error" for e in _events(model)), name


def test_bilateral_haggle_reaches_contracts_within_reservation_prices(tmp_path):
    model = MarketModel(load_scenario("bilateral_haggle"), output_dir=tmp_path)
    before = _totals(model)
    model.run()
    _assert_conserved(model, before)
    events = _events(model)
    agreements = [e["content"] for e in events if e["event_type"] == "agreement"]
    settled = [
        e["content"]
        for e in events
        if e["event_type"] == "contract" and e["content"]["stage"] == "settled"
    ]
    assert agreements and len(settled) == len(agreements)
    header = {a["agent_id"]: a for a in events[0]["content"]["agents"]}
    for contract in settled:
        assert contract["settlement"]["status"] == "fulfilled"
        buyer = model._by_id[contract["buyer_id"]]
        seller = model._by_id[contract["seller_id"]]
        assert model.exchange.ledger.account(buyer.unique_id).holdings["car"] == 1
        assert model.exchange.ledger.account(seller.unique_id).holdings["car"] == 0
        # individual rationality: within both private reservation prices
        b_util = header[buyer.unique_id]["utilities"]["car_price"]
        s_util = header[seller.unique_id]["utilities"]["car_price"]
        price = contract["price"]
        u_buyer = (13000 - price) / 10000
        u_seller = (price - 3000) / 10000
        assert u_buyer >= b_util["reservation"] - 1e-9 and u_seller >= s_util["reservation"] - 1e-9
    offers = [e for e in events if e["event_type"] == "offer"]
    assert offers and all(
        "terms" in e["content"] for e in offers if e["content"]["kind"] == "offer"
    )


def test_bilateral_haggle_with_builtin_negotiators_closes_where_there_is_a_zone_of_agreement(
    monkeypatch,
):
    """The shipped pairing (Linear buyers vs Boulware sellers): at least 80% of the sessions
    whose parties' reservation prices overlap end in a deal (25% before the concession deadline
    was each agent's last answerable offer), every deal within both reservation prices."""
    from mesa_llm.negotiation.outcome_space import max_welfare_gain

    monkeypatch.delenv("MESA_LLM_MODEL", raising=False)
    with_zone = agreed = 0
    for seed in range(1, 11):
        model = MarketModel(load_scenario("bilateral_haggle"), seed=seed, record=False)
        model.run()
        desk = model.desk
        assert desk is not None
        for sid, session in desk.sessions.items():
            space = desk.session_space[sid]
            buyer = desk.utilities[(session.buyer_id, space)]
            seller = desk.utilities[(session.seller_id, space)]
            if (max_welfare_gain([buyer, seller], desk.spaces[space]) or 0.0) <= 0:
                continue
            with_zone += 1
            for agreement in session.agreements:
                agreed += 1
                assert buyer(agreement.terms) >= buyer.reservation - 1e-9
                assert seller(agreement.terms) >= seller.reservation - 1e-9
    assert with_zone >= 30
    assert agreed >= 0.8 * with_zone, f"{agreed} deals in {with_zone} sessions with a zone of agreement"


def _haggle(
    tmp_path,
    *,
    buyer_reservation: float,
    seller_reservation: float,
    strategies=("linear", "linear"),
    rounds: int = 10,
) -> MarketModel:
    raw = load_scenario("bilateral_haggle").model_dump(mode="json", exclude={"source_dir"})
    raw["steps"] = rounds + 2
    raw["negotiation"]["sessions"][0]["max_rounds"] = rounds
    for pop, strategy, rp in zip(
        raw["populations"], strategies, (buyer_reservation, seller_reservation), strict=True
    ):
        pop["count"] = 1
        pop["fallback"]["params"]["strategy"] = strategy
        pop["utilities"]["car_price"]["reservation_price"] = rp
    return MarketModel(validate_scenario(raw), output_dir=tmp_path)


def test_deadline_without_overlap_is_a_recorded_disagreement(tmp_path):
    model = _haggle(tmp_path, buyer_reservation=6000, seller_reservation=9000)
    before = _totals(model)
    model.run()
    _assert_conserved(model, before)
    events = _events(model)
    assert not [e for e in events if e["event_type"] == "agreement"]
    ends = [
        e["content"]
        for e in events
        if e["event_type"] == "negotiation" and e["content"]["kind"] == "disagreement"
    ]
    assert ends and "deadline" in json.dumps(ends[0])
    assert not [e for e in events if e["event_type"] == "contract"]


def test_linear_agents_with_symmetric_reservations_agree_near_the_midpoint(tmp_path):
    model = _haggle(tmp_path, buyer_reservation=10000, seller_reservation=6000, rounds=12)
    model.run()
    contracts = [
        e["content"]
        for e in _events(model)
        if e["event_type"] == "contract" and e["content"]["stage"] == "settled"
    ]
    assert len(contracts) == 1
    assert abs(contracts[0]["price"] - 8000) <= 1000


def test_boulware_beats_conceder(tmp_path):
    prices = {}
    for label, strategies in (
        ("boulware_buyer", ("boulware", "conceder")),
        ("boulware_seller", ("conceder", "boulware")),
    ):
        model = _haggle(
            tmp_path / label,
            buyer_reservation=10000,
            seller_reservation=6000,
            strategies=strategies,
            rounds=20,
        )
        model.run()
        contract = [e["content"] for e in _events(model) if e["event_type"] == "contract"][-1]
        prices[label] = contract["price"]
    assert prices["boulware_buyer"] < 8000 < prices["boulware_seller"]


# --------------------------------------------------------------------------- scripted agents


class Scripted(DecisionPolicy):
    """Plays the actions a test scripts for its agent name and step."""

    name: ClassVar[str] = "scripted"
    script: ClassVar[dict[tuple[str, int], list[Any]]] = {}
    seen: ClassVar[dict[tuple[int, int], Observation]] = {}

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        type(self).seen[(observation.agent_id, observation.step)] = observation
        items = self.script.get((observation.name, observation.step), [])
        return Decision(actions=[a(observation) if callable(a) else a for a in items])


def _scripted_haggle(
    tmp_path, script: dict[tuple[str, int], list[Any]], **negotiation: Any
) -> MarketModel:
    registry = default_policy_registry()
    registry.register(Scripted)
    Scripted.script = script
    Scripted.seen = {}
    raw = load_scenario("bilateral_haggle").model_dump(mode="json", exclude={"source_dir"})
    raw["steps"] = 6
    raw["negotiation"].update(negotiation)
    raw["populations"][0].update(count=1, policy="scripted", params={}, fallback=None)
    raw["populations"][1].update(count=1, policy="scripted", params={}, fallback=None)
    return MarketModel(
        validate_scenario(raw, registry=registry), output_dir=tmp_path, policy_registry=registry
    )


def _session(obs: Observation) -> str:
    return obs.negotiations[0]["session_id"]


def test_offer_outside_the_outcome_space_is_rejected_with_a_reason_seen_next_step(tmp_path):
    script = {
        ("sellers", 1): [lambda o: MakeOffer(session_id=_session(o), terms={"price": 25000})],
        ("sellers", 2): [],
    }
    model = _scripted_haggle(tmp_path, script)
    model.step()
    model.step()
    model.finish()
    seller = model.populations["sellers"][0]
    rejected = [
        e["content"]
        for e in _events(model)
        if e["event_type"] == "action_rejected" and e["agent_id"] == seller.unique_id
    ]
    assert (
        rejected
        and "price" in rejected[0]["reason"]
        and "13000" in rejected[0]["reason"].replace(".0", "")
    )
    next_obs = Scripted.seen[(seller.unique_id, 2)]
    assert next_obs.rejections and next_obs.rejections[0]["reason"] == rejected[0]["reason"]


def test_accept_settles_a_contract_through_the_ledger(tmp_path):
    def accept(o: Observation) -> AcceptOffer:
        view = o.negotiations[0]
        return AcceptOffer(session_id=view["session_id"], offer_id=view["offers"][-1]["offer_id"])

    script = {
        ("sellers", 1): [lambda o: MakeOffer(session_id=_session(o), terms={"price": 8500})],
        ("buyers", 2): [accept],
    }
    model = _scripted_haggle(tmp_path, script)
    before = _totals(model)
    buyer, seller = model.populations["buyers"][0], model.populations["sellers"][0]
    model.run()
    _assert_conserved(model, before)
    ledger = model.exchange.ledger
    assert ledger.account(buyer.unique_id).cash == 15000 - 8500
    assert ledger.account(seller.unique_id).cash == 8500
    assert ledger.account(buyer.unique_id).holdings["car"] == 1
    events = _events(model)
    agreement = next(e for e in events if e["event_type"] == "agreement")["content"]
    assert agreement["terms"] == {"price": 8500.0}
    assert (
        model.reputation.score(buyer.unique_id) > 0.5
        and model.reputation.score(seller.unique_id) > 0.5
    )
    assert model.summary().goods["car"]["contract_volume"] == 1


def test_breach_pays_a_capped_penalty_and_never_goes_negative(tmp_path):
    def accept(o: Observation) -> AcceptOffer:
        view = o.negotiations[0]
        return AcceptOffer(session_id=view["session_id"], offer_id=view["offers"][-1]["offer_id"])

    script = {
        ("sellers", 1): [lambda o: MakeOffer(session_id=_session(o), terms={"price": 12000})],
        ("buyers", 2): [accept],
    }
    model = _scripted_haggle(tmp_path, script, penalty_rate=0.5, delivery_offset=2)
    buyer, seller = model.populations["buyers"][0], model.populations["sellers"][0]
    # the buyer spends most of its cash before delivery: it cannot pay 12000 at delivery
    model.exchange.ledger.transfer_cash(
        buyer.unique_id, "house", 14000, memo="test: spend elsewhere"
    )
    before = _totals(model)
    model.run()
    _assert_conserved(model, before)
    settled = [
        e["content"]
        for e in _events(model)
        if e["event_type"] == "contract" and e["content"]["stage"] == "settled"
    ]
    assert (
        settled
        and settled[0]["status"] == "breached"
        and settled[0]["breached_by"] == buyer.unique_id
    )
    assert settled[0]["settlement"]["penalty"] == 1000  # 50% of 12000 capped at the 1000 it has
    ledger = model.exchange.ledger
    assert (
        ledger.account(buyer.unique_id).cash == 0 and ledger.account(seller.unique_id).cash == 1000
    )
    assert ledger.account(seller.unique_id).holdings["car"] == 1  # no delivery on breach
    assert model.reputation.score(buyer.unique_id) < 0.5


def test_second_price_auction_sells_to_the_highest_value_at_the_second(tmp_path):
    raw = {
        "name": "auction",
        "seed": 2,
        "steps": 3,
        "tick_size": 0.01,
        "goods": [
            {"name": "painting", "reference_price": 100.0, "min_price": 0.01, "max_price": 10000.0}
        ],
        "market": {"call_market": False, "check_invariants": True},
        "negotiation": {
            "sessions": [
                {
                    "protocol": "second_price",
                    "at_step": 1,
                    "good": "painting",
                    "sellers": "house_seller",
                    "bidders": "bidders",
                    "reserve_price": 50.0,
                }
            ]
        },
        "populations": [
            {
                "name": "house_seller",
                "role": "seller",
                "count": 1,
                "policy": "negotiator",
                "params": {"strategy": "truthful_bidder"},
                "private": {"painting": {"units": 1, "costs": [40.0]}},
                "endowment": {"holdings": {"painting": 1}},
            },
            {
                "name": "bidders",
                "role": "buyer",
                "count": 4,
                "policy": "negotiator",
                "params": {"strategy": "truthful_bidder"},
                "private": {
                    "painting": {
                        "units": 1,
                        "values": {"distribution": "uniform", "low": 100.0, "high": 900.0},
                    }
                },
                "endowment": {"cash": 1000.0},
            },
        ],
    }
    model = MarketModel(validate_scenario(raw), output_dir=tmp_path)
    before = _totals(model)
    values = {
        a.unique_id: model.money.to_units(a.private["painting"].values[0])
        for a in model.populations["bidders"]
    }
    model.run()
    _assert_conserved(model, before)
    contract = [
        e["content"]
        for e in _events(model)
        if e["event_type"] == "contract" and e["content"]["stage"] == "settled"
    ][0]
    ranked = sorted(values.items(), key=lambda kv: -kv[1])
    assert contract["buyer_id"] == ranked[0][0]
    assert contract["price"] == pytest.approx(ranked[1][1], abs=0.011)
    assert model.exchange.ledger.account(ranked[0][0]).holdings["painting"] == 1


def test_regulator_flags_fines_and_suspends_collusion_talk(tmp_path):
    registry = default_policy_registry()
    registry.register(Scripted)
    talk = Broadcast(text="All sellers: let's fix the price at 150 and not undercut each other.")
    Scripted.script = {
        ("cartel", s): [talk, PlaceOrder(good="goods", side="sell", price=120.0, quantity=1)]
        for s in range(1, 8)
    }
    Scripted.script[("cartel", 1)] = [
        talk,
        PlaceOrder(good="goods", side="sell", price=250.0, quantity=1),
    ]
    raw = {
        "name": "regulated",
        "seed": 4,
        "steps": 7,
        "goods": [
            {"name": "goods", "reference_price": 100.0, "min_price": 0.01, "max_price": 1000.0}
        ],
        "market": {"check_invariants": True},
        "rules": {"price_caps": {"goods": 200.0}},
        "populations": [
            {
                "name": "cartel",
                "role": "seller",
                "count": 1,
                "policy": "scripted",
                "endowment": {"cash": 500.0, "holdings": {"goods": 10}},
            },
            {
                "name": "buyers",
                "role": "buyer",
                "count": 3,
                "policy": "zi_c",
                "private": {"goods": {"units": 5, "values": [150.0, 140.0, 130.0, 120.0, 110.0]}},
                "endowment": {"cash": 2000.0},
            },
            {
                "name": "regulator",
                "role": "regulator",
                "count": 1,
                "policy": "regulator",
                "params": {"fine": 80.0, "suspend_steps": 10},
            },
        ],
    }
    model = MarketModel(
        validate_scenario(raw, registry=registry), output_dir=tmp_path, policy_registry=registry
    )
    cartel = model.populations["cartel"][0]
    before = _totals(model)
    model.run()
    _assert_conserved(model, before)
    events = _events(model)
    acts = [e["content"] for e in events if e["event_type"] == "regulator_action"]
    assert [a["type"] for a in acts[:3]] == ["flag_violation", "impose_fine", "suspend_trader"]
    assert all(a["target_id"] == cartel.unique_id and a["reason"] for a in acts)
    assert acts[1]["amount"] == 80.0 and model.exchange.ledger.account("house").cash == 8000
    assert model.reputation.score(cartel.unique_id) < 0.5
    suspended_from = acts[2]["until_step"] - 10
    late = [
        e
        for e in events
        if e["event_type"] == "action_rejected"
        and e["agent_id"] == cartel.unique_id
        and e["step"] > suspended_from
    ]
    assert late and "suspended" in late[0]["content"]["reason"]
    # the price cap is a hard rule: an order above it never reaches the book
    first = [
        e["content"]["reason"]
        for e in events
        if e["event_type"] == "action_rejected" and e["step"] == 1
    ]
    assert any("price cap" in r for r in first)


def test_alliances_have_a_private_channel_and_recorded_membership(tmp_path):
    registry = default_policy_registry()
    registry.register(Scripted)
    raw = {
        "name": "social",
        "seed": 1,
        "steps": 4,
        "goods": [{"name": "g", "reference_price": 10.0, "min_price": 0.01, "max_price": 100.0}],
        "social": {"alliances": True},
        "populations": [
            {
                "name": "a",
                "role": "trader",
                "count": 1,
                "policy": "scripted",
                "endowment": {"cash": 10.0},
            },
            {
                "name": "b",
                "role": "trader",
                "count": 1,
                "policy": "scripted",
                "endowment": {"cash": 10.0},
            },
            {
                "name": "c",
                "role": "trader",
                "count": 1,
                "policy": "scripted",
                "endowment": {"cash": 10.0},
            },
        ],
    }
    model = MarketModel(
        validate_scenario(raw, registry=registry), output_dir=tmp_path, policy_registry=registry
    )
    a, b, c = (model.populations[x][0] for x in "abc")
    Scripted.script = {
        ("a", 1): [ProposeAlliance(name="north", invitee_ids=[b.unique_id])],
        ("b", 2): [JoinAlliance(name="north")],
        ("c", 2): [JoinAlliance(name="north")],  # not invited
        ("a", 3): [MessageAlliance(name="north", text="members only")],
        ("b", 4): [
            lambda o: ForwardMessage(
                message_id=o.messages[0]["message_id"], recipient_ids=[c.unique_id]
            )
        ],
    }
    Scripted.seen = {}
    model.run()
    events = _events(model)
    membership = [
        (e["content"]["action"], e["content"]["agent_id"])
        for e in events
        if e["event_type"] == "alliance"
    ]
    assert membership[:3] == [
        ("created", a.unique_id),
        ("invited", b.unique_id),
        ("joined", b.unique_id),
    ]
    assert any(
        e["event_type"] == "action_rejected" and e["agent_id"] == c.unique_id for e in events
    )
    assert "join_alliance" in Scripted.seen[(b.unique_id, 2)].available_actions
    assert "join_alliance" not in Scripted.seen[(c.unique_id, 2)].available_actions
    assert [m["text"] for m in Scripted.seen[(b.unique_id, 4)].messages] == ["members only"]
    assert Scripted.seen[(b.unique_id, 4)].messages[0]["channel"] == "alliance:north"
    assert not Scripted.seen[(c.unique_id, 4)].messages
    model2_msgs = [e["content"] for e in events if e["event_type"] == "message"]
    forwarded = [m for m in model2_msgs if m["forwarded_from"] is not None]
    assert (
        forwarded
        and forwarded[0]["original_sender"] == a.name
        and forwarded[0]["recipient_ids"] == [c.unique_id]
    )


@pytest.mark.parametrize("name", sorted(set(shipped_scenarios()) - {"double_auction"}))
def test_every_shipped_scenario_runs_with_an_llm(name, tmp_path):
    # double_auction is the rule-based ZI baseline; every other scenario has LLM populations
    from mesa_llm.llm.testing import ScriptedChatModel, tool_call_response

    chat = ScriptedChatModel(lambda request: tool_call_response("wait", {}), name="scripted/wait")
    model = MarketModel(load_scenario(name), steps=3, output_dir=tmp_path, chat_model=chat, check_invariants=True)
    before = _totals(model)
    model.run()
    _assert_conserved(model, before)
    events = _events(model)
    llm_agents = {a.unique_id for a in model.llm_agents}
    assert llm_agents, f"{name} has no LLM population"
    # every LLM agent is called in each step it can do more than talk or has a new message
    # (skip_idle); no one else is
    from mesa_llm.agents.llm_policy import IDLE_TOOLS

    called = {(e["agent_id"], e["step"]) for e in events if e["event_type"] == "llm_call"}
    must = {
        (e["agent_id"], e["step"])
        for e in events
        if e["event_type"] == "observation"
        and e["agent_id"] in llm_agents
        and (e["content"].get("messages") or not set(e["content"]["available_actions"]) <= IDLE_TOOLS)
    }
    assert must and must == called
    assert not [e for e in events if e["event_type"] == "agent_error"]
    # every tool offered exists and is allowed for the agent's role
    for request in chat.requests:
        if request.purpose == "plan":
            assert not request.tools
            continue
        agent = model._by_id[request.agent_id]
        names = [t["function"]["name"] for t in request.tools or []]
        assert set(names) <= set(agent.role.action_names()) and "wait" in names
