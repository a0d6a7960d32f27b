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


def test_the_tools_follow_open_orders_and_messages_back_and_forth() -> None:
    """A plain market's tools are kept per role and state: each change of state (an open order, a
    message to forward, both, neither again) gives that state's tools, never an earlier one's."""
    spec = load_scenario("double_auction", overrides=["social.gossip=true"])
    model = MarketModel(spec, record=False)
    buyer, other = _buyer(model), model.traders[-1]
    tools = lambda: model.observer.available_actions(buyer, 1)  # noqa: E731
    base = tools()
    assert "cancel_order" not in base and "forward_message" not in base
    order = model.exchange.place_order(
        buyer.unique_id, buyer.role, PlaceOrder(good="widget", side="buy", price=10.0, quantity=1, lifetime="gtc"), 1
    )
    with_order = tools()
    assert "cancel_order" in with_order and "forward_message" not in with_order
    model.mailbox.send(other.unique_id, other.name, [buyer.unique_id], "hello", "direct", 1)
    model.mailbox.deliver()
    both = tools()
    assert "cancel_order" in both and "forward_message" in both
    model.exchange.cancel_order(buyer.unique_id, order.order_id)
    message_only = tools()
    assert "cancel_order" not in message_only and "forward_message" in message_only
    # the same tools as the role's, in the role's order, with only the state's two narrowed
    assert [t for t in both if t not in ("cancel_order", "forward_message")] == base
    assert both == [t for t in buyer.role.action_names() if t in set(both)]
    # the open orders the observer passes in are used as given
    assert "cancel_order" in model.observer.available_actions(buyer, 1, [order])
    assert "cancel_order" not in model.observer.available_actions(buyer, 1, [])


def test_a_call_market_that_fills_observations_is_asked() -> None:
    """The call market's own no-op part is skipped per agent; a subclass that fills one is asked."""
    from mesa_llm.mechanisms.call_market import CallMarketMechanism

    model = MarketModel(load_scenario("double_auction"), record=False)
    asked: list[int] = []

    class Filling(CallMarketMechanism):
        def fill_observation(self, observation, agent, step) -> None:  # type: ignore[no-untyped-def]
            asked.append(agent.unique_id)
            observation.mechanisms["filled"] = step

    model.call_market.__class__ = Filling
    observations = model.observer.observe(1)
    assert asked == [a.unique_id for a in model.traders]
    assert all(obs.mechanisms == {"filled": 1} for _, obs in observations)


def test_a_recorder_given_no_encoder_gets_each_observation_as_its_dict() -> None:
    """An observer built with a three-argument recorder and no encoder (no text to give) records
    each observation's dict, in agent order, as the per-agent loop does."""
    from mesa_llm.world.observer import Observer

    model = MarketModel(load_scenario("double_auction"), record=False)
    got: list[tuple[str, dict, int | None]] = []
    observer = Observer(model.world, horizon=3, record=lambda t, c, a: got.append((t, c, a)))
    out = observer.observe(1)
    assert got == [("observation", obs.to_dict(), agent.unique_id) for agent, obs in out]
