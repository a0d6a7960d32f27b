"""What the observer offers an agent: its role's tools narrowed by the world's state."""

from __future__ import annotations

from mesa_llm.actions import PlaceOrder
from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario


def _buyer(model: MarketModel):
    return next(a for a in model.traders if a.role.value == "buyer")


def test_cancel_order_is_offered_only_with_an_open_order() -> None:
    model = MarketModel(load_scenario("double_auction"), record=False)
    buyer = _buyer(model)
    assert "place_order" in model.observer.available_actions(buyer, 1)
    assert "cancel_order" not in model.observer.available_actions(buyer, 1)
    model.exchange.place_order(
        buyer.unique_id, buyer.role, PlaceOrder(good="widget", side="buy", price=10.0, quantity=1, lifetime="gtc"), 1
    )
    assert "cancel_order" in model.observer.available_actions(buyer, 1)


def test_a_suspended_agent_is_not_offered_place_order_until_its_suspension_ends() -> None:
    model = MarketModel(load_scenario("double_auction"), record=False)
    buyer = _buyer(model)
    model.world.rules.suspend(buyer.unique_id, until=3)
    assert "place_order" not in model.observer.available_actions(buyer, 3)  # the last suspended step
    assert "place_order" in model.observer.available_actions(buyer, 4)
