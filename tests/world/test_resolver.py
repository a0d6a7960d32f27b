"""Action resolution: the seeded order, role permissions, the regulator's powers and rejections.

The resolver is driven directly with hand-made decisions on a small model (no policy decides),
and what it records is captured in a list.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mesa_llm.actions import (
    ActionValidationError,
    CancelOrder,
    Decision,
    FlagViolation,
    ImposeFine,
    PlaceOrder,
    SuspendTrader,
    Wait,
)
from mesa_llm.model import MarketModel
from mesa_llm.scenario import validate_scenario
from mesa_llm.world.resolver import ActionResolver

Recorded = list[tuple[str, dict[str, Any], int | None]]


def _world(**market: Any) -> tuple[MarketModel, Recorded]:
    raw = {
        "name": "resolver",
        "seed": 3,
        "steps": 10,
        "tick_size": 0.01,
        "goods": [{"name": "widget", "reference_price": 100.0, "min_price": 1.0, "max_price": 200.0}],
        "market": {"max_orders_per_step": 5, **market},
        "rules": {"max_fine": 50.0},
        "populations": [
            {"name": "buyers", "role": "buyer", "count": 5, "policy": "idle", "endowment": {"cash": 100.0}},
            {"name": "sellers", "role": "seller", "count": 1, "policy": "idle", "endowment": {"holdings": {"widget": 5}}},
            {"name": "regulator", "role": "regulator", "count": 1, "policy": "idle"},
        ],
    }
    model = MarketModel(validate_scenario(raw), record=False)
    recorded: Recorded = []
    # the resolver is handed its world, generator and recorder: give it one that records to a list
    model.resolver = ActionResolver(
        model.world, rng=model.rng, record=lambda event_type, content, agent_id: recorded.append((event_type, content, agent_id))
    )
    return model, recorded


def _bid(price: float = 10.0, lifetime: str = "step") -> PlaceOrder:
    return PlaceOrder(good="widget", side="buy", price=price, quantity=1, lifetime=lifetime)  # type: ignore[arg-type]


def _rejections(recorded: Recorded, agent_id: int) -> list[str]:
    return [c["reason"] for t, c, a in recorded if t == "action_rejected" and a == agent_id]


# ----------------------------------------------------------------------------- order


def test_agents_are_resolved_in_the_models_seeded_order() -> None:
    model, recorded = _world()
    buyers = model.populations["buyers"]
    model.resolver.rng = np.random.default_rng(1234)
    expected = np.random.default_rng(1234).permutation(len(buyers)).tolist()
    assert expected != sorted(expected)  # the seed does shuffle, so the test can fail
    model.resolver.resolve([(b, Decision(actions=[_bid()])) for b in buyers], step=1)
    placed = [a for t, _, a in recorded if t == "order"]
    assert placed == [buyers[i].unique_id for i in expected]
    # order ids follow the resolution order: the first resolved gets the first id
    ids = [c["order_id"] for t, c, _ in recorded if t == "order"]
    assert ids == sorted(ids)


def test_same_seed_same_order_other_seed_other_order() -> None:
    orders = []
    for seed in (7, 7, 8):
        model, recorded = _world()
        buyers = model.populations["buyers"]
        model.resolver.rng = np.random.default_rng(seed)
        model.resolver.resolve([(b, Decision(actions=[_bid()])) for b in buyers], step=1)
        orders.append([a for t, _, a in recorded if t == "order"])
    assert orders[0] == orders[1] != orders[2]


def test_an_agents_own_actions_apply_in_its_order() -> None:
    # with one order per step allowed, the first of its two orders is the one placed
    model, recorded = _world(max_orders_per_step=1)
    buyer = model.populations["buyers"][0]
    model.resolver.resolve([(buyer, Decision(actions=[_bid(11.0), _bid(12.0)]))], step=1)
    assert [c["price"] for t, c, _ in recorded if t == "order"] == [11.0]
    assert _rejections(recorded, buyer.unique_id) == ["at most 1 orders per step"]


def test_invalid_calls_are_recorded_and_a_missing_decision_is_skipped() -> None:
    model, recorded = _world()
    a, b = model.populations["buyers"][:2]
    invalid = ActionValidationError("place_order", {"price": "cheap"}, "price: not a number")
    model.resolver.resolve([(a, None), (b, Decision(actions=[Wait()], invalid=[invalid]))], step=2)
    assert [(t, x) for t, _, x in recorded] == [("action_rejected", b.unique_id), ("action", b.unique_id)]
    assert b.rejections == [
        {"type": "place_order", "arguments": {"price": "cheap"}, "reason": "price: not a number", "step": 2}
    ]
    assert a.rejections == []


def test_an_agent_without_a_decision_does_not_stop_the_others() -> None:
    model, recorded = _world()
    buyers = model.populations["buyers"]
    decisions = [(b, None if i in (1, 3) else Decision(actions=[_bid()])) for i, b in enumerate(buyers)]
    model.resolver.rng = np.random.default_rng(5)
    order = np.random.default_rng(5).permutation(len(buyers)).tolist()
    first_idle = min(order.index(1), order.index(3))
    assert any(order.index(i) > first_idle for i in (0, 2, 4))  # someone acts after an idle agent
    model.resolver.resolve(decisions, step=1)  # type: ignore[arg-type]
    placed = {a for t, _, a in recorded if t == "order"}
    assert placed == {buyers[i].unique_id for i in (0, 2, 4)}


# ----------------------------------------------------------------------------- roles


def test_a_buyer_calling_impose_fine_is_rejected_and_nothing_moves() -> None:
    model, recorded = _world()
    buyer, victim = model.populations["buyers"][:2]
    ledger = model.exchange.ledger
    fine = ImposeFine(agent_id=victim.unique_id, amount=10.0, reason="I don't like them")
    model.resolver.apply(buyer, fine, step=1)
    assert _rejections(recorded, buyer.unique_id) == ["role 'buyer' may not impose_fine"]
    assert ledger.account(victim.unique_id).cash == 10_000 and ledger.account("house").cash == 0
    assert model.reputation.score(victim.unique_id) == pytest.approx(0.5)
    assert not [t for t, _, _ in recorded if t == "regulator_action"]


def test_a_regulator_may_not_trade_and_a_seller_may_not_suspend() -> None:
    model, recorded = _world()
    regulator = model.populations["regulator"][0]
    seller = model.populations["sellers"][0]
    buyer = model.populations["buyers"][0]
    model.resolver.apply(regulator, _bid(), step=1)
    model.resolver.apply(seller, SuspendTrader(agent_id=buyer.unique_id, steps=3, reason="x"), step=1)
    assert _rejections(recorded, regulator.unique_id) == ["role 'regulator' may not place_order"]
    assert _rejections(recorded, seller.unique_id) == ["role 'seller' may not suspend_trader"]
    assert not model.rules.is_suspended(buyer.unique_id, 2)


def test_orders_need_a_call_market() -> None:
    model, recorded = _world(call_market=False)
    buyer = model.populations["buyers"][0]
    model.resolver.apply(buyer, _bid(), step=1)
    assert _rejections(recorded, buyer.unique_id) == ["this scenario has no call market: trade by negotiation"]
    assert model.exchange.ledger.account(buyer.unique_id).reserved_cash == 0


def test_cancel_is_recorded_with_what_remained() -> None:
    model, recorded = _world()
    a, b = model.populations["buyers"][:2]
    model.resolver.apply(a, _bid(lifetime="gtc"), step=1)
    order_id = next(c["order_id"] for t, c, _ in recorded if t == "order")
    model.resolver.apply(b, CancelOrder(order_id=order_id), step=1)
    assert _rejections(recorded, b.unique_id) == [f"order {order_id} is not one of your open orders"]
    model.resolver.apply(a, CancelOrder(order_id=order_id), step=1)
    assert ("order_cancelled", {"order_id": order_id, "remaining": 1}, a.unique_id) in recorded
    assert model.exchange.ledger.account(a.unique_id).reserved_cash == 0


# ----------------------------------------------------------------------------- regulator


def test_fine_against_reserved_cash_takes_the_free_part_and_is_recorded() -> None:
    model, recorded = _world()
    regulator = model.populations["regulator"][0]
    target = model.populations["buyers"][0]
    model.resolver.apply(target, PlaceOrder(good="widget", side="buy", price=90.0, quantity=1), step=1)
    model.resolver.apply(regulator, ImposeFine(agent_id=target.unique_id, amount=30.0, reason="spoofing"), step=1)
    account = model.exchange.ledger.account(target.unique_id)
    assert (account.cash, account.reserved_cash) == (9_000, 9_000)  # 10.00 free of 100.00
    [(_, content, by)] = [r for r in recorded if r[0] == "regulator_action"]
    assert by == regulator.unique_id
    assert content["amount"] == 10.0 and content["requested"] == 30.0 and content["reason"] == "spoofing"
    assert model.reputation.score(target.unique_id) < 0.5
    # nothing free left: the fine is refused with a reason, and nothing moves
    model.resolver.apply(regulator, ImposeFine(agent_id=target.unique_id, amount=5.0, reason="again"), step=1)
    assert _rejections(recorded, regulator.unique_id) == [
        f"agent {target.unique_id} has no free cash to pay a fine"
    ]
    assert model.exchange.ledger.account("house").cash == 1_000
    model.exchange.ledger.check_invariants()


def test_fine_is_capped_by_the_scenarios_maximum() -> None:
    model, recorded = _world()
    regulator = model.populations["regulator"][0]
    target = model.populations["buyers"][1]
    model.resolver.apply(regulator, ImposeFine(agent_id=target.unique_id, amount=80.0, reason="r"), step=1)
    assert model.exchange.ledger.account(target.unique_id).cash == 5_000
    assert [c["amount"] for t, c, _ in recorded if t == "regulator_action"] == [50.0]


def test_regulator_acts_on_unknown_agents_are_rejected() -> None:
    model, recorded = _world()
    regulator = model.populations["regulator"][0]
    model.resolver.apply(regulator, FlagViolation(agent_id=999, reason="r"), step=1)
    assert _rejections(recorded, regulator.unique_id) == ["no agent with id 999"]


def test_flag_lowers_reputation_and_is_recorded() -> None:
    model, recorded = _world()
    regulator = model.populations["regulator"][0]
    target = model.populations["buyers"][2]
    model.resolver.apply(regulator, FlagViolation(agent_id=target.unique_id, reason="collusion talk"), step=1)
    [(_, content, _)] = [r for r in recorded if r[0] == "regulator_action"]
    assert content["type"] == "flag_violation" and content["target_id"] == target.unique_id
    assert model.reputation.score(target.unique_id) < 0.5


def test_suspension_cancels_orders_and_lasts_through_its_last_step() -> None:
    model, recorded = _world()
    regulator = model.populations["regulator"][0]
    target = model.populations["buyers"][3]
    model.resolver.apply(target, _bid(lifetime="gtc"), step=3)
    model.resolver.apply(regulator, SuspendTrader(agent_id=target.unique_id, steps=2, reason="r"), step=3)
    [(_, content, _)] = [r for r in recorded if r[0] == "regulator_action"]
    assert content["until_step"] == 5 and len(content["orders_cancelled"]) == 1
    assert model.exchange.open_orders(target.unique_id) == []
    assert model.exchange.ledger.account(target.unique_id).reserved_cash == 0
    model.exchange.begin_step()
    model.resolver.apply(target, _bid(), step=5)
    assert _rejections(recorded, target.unique_id) == ["you are suspended from trading until step 5"]
    model.resolver.apply(target, _bid(), step=6)
    assert len(model.exchange.open_orders(target.unique_id)) == 1


def test_a_mechanism_that_decides_by_state_which_actions_it_handles_is_asked_every_time() -> None:
    model, recorded = _world()
    market = model.call_market
    calls: list[bool] = []
    open_now = [True]

    def handles(action: Any) -> bool:
        calls.append(open_now[0])
        return open_now[0] and isinstance(action, PlaceOrder)

    market.handles = handles  # type: ignore[method-assign]
    buyer = model.traders[0]
    model.resolver.apply(buyer, _bid(), 1)
    open_now[0] = False
    model.resolver.apply(buyer, _bid(), 1)
    assert calls == [True, False]
    assert [t for t, _, _ in recorded] == ["action", "order", "action_rejected"]
    assert "not available in this scenario" in _rejections(recorded, buyer.unique_id)[0]



@pytest.mark.parametrize("regulator_first", [True, False])
def test_what_a_role_may_do_is_known_per_role(regulator_first: bool) -> None:
    """Whether a role may use a tool is kept per (role, tool): a buyer's order is applied and a
    regulator's refused, whichever comes first."""
    from mesa_llm.actions import PlaceOrder as Order
    from mesa_llm.agents.roles import Role
    from mesa_llm.scenario import load_scenario

    model = MarketModel(load_scenario("double_auction"), record=False)
    buyer, other = [a for a in model.traders if a.role is Role.BUYER][:2]
    other.role = Role.REGULATOR
    order = Order(good="widget", side="buy", price=10.0, quantity=1)
    for agent in (other, buyer) if regulator_first else (buyer, other):
        model.resolver.apply(agent, order, 1)
    assert [r["reason"] for r in other.rejections] == ["role 'regulator' may not place_order"]
    assert buyer.rejections == [] and len(model.exchange.open_orders(buyer.unique_id)) == 1
