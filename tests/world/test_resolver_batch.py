"""Consecutive agents (in the seeded order) whose actions are all orders are resolved as a batch:
the call market books them in one pass (`Exchange.place_orders`) and the resolver records their
events afterwards, each with its content's JSON text. Against applying every action one by one
(`ActionResolver.apply`), the events, rejections, order ids, book and ledger must be the same, also
with rejections of every kind, other actions between the orders, a suspension in force, and a
failure in the middle of a batch; and every text must be the recorder's encoding of its content."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mesa_llm.actions import CancelOrder, Decision, PlaceOrder, SendMessage, SuspendTrader, Wait
from mesa_llm.mechanisms.call_market import action_json, order_json, trade_json
from mesa_llm.model import MarketModel
from mesa_llm.recording.recorder import _make_encoder
from mesa_llm.scenario import validate_scenario
from mesa_llm.world.exchange import Exchange
from tests.support.resolving import Event, listing_resolver

ENCODE = _make_encoder()


def _world(batch: bool) -> tuple[MarketModel, list[Event], list[str | None]]:
    raw = {
        "name": "resolver_batch", "seed": 3, "steps": 10, "tick_size": 0.01,
        "goods": [{"name": "widget", "reference_price": 100.0, "min_price": 1.0, "max_price": 200.0},
                  {"name": "gadget", "reference_price": 10.0, "min_price": 0.5, "max_price": 50.0}],
        "market": {"max_orders_per_step": 2},
        "populations": [
            {"name": "buyers", "role": "buyer", "count": 12, "policy": "idle", "endowment": {"cash": 60.0}},
            {"name": "sellers", "role": "seller", "count": 12, "policy": "idle",
             "endowment": {"holdings": {"widget": 2, "gadget": 1}}},
            {"name": "traders", "role": "trader", "count": 6, "policy": "idle",
             "endowment": {"cash": 80.0, "holdings": {"widget": 1}}},
            {"name": "regulator", "role": "regulator", "count": 1, "policy": "idle"},
        ],
    }  # fmt: skip
    model = MarketModel(validate_scenario(raw), record=False)
    events, texts = listing_resolver(model, encoded=batch)
    if not batch:  # every action through `apply`, one by one
        model.resolver._plain_orders = lambda agent, actions: False  # type: ignore[method-assign]
    return model, events, texts


def _decisions(model: MarketModel, rng: np.random.Generator, suspend: bool) -> list[tuple[Any, Decision | None]]:
    """Random orders (valid ones and each kind of refused one), with messages, waits and
    cancellations between them, and the regulator suspending a trader (when ``suspend``)."""
    agents = list(model.world.agents.values())
    out: list[tuple[Any, Decision | None]] = []
    for agent in agents:
        if agent.role.value == "regulator":
            target = agents[int(rng.integers(0, len(agents) - 1))].unique_id
            out.append((agent, Decision(actions=[SuspendTrader(agent_id=target, steps=2, reason="x")] if suspend else [])))
            continue
        actions: list[Any] = []
        if agent.role.value == "trader":  # one order more than a step allows
            actions += [PlaceOrder(good="widget", side="buy", price=1.0 + i, quantity=1) for i in range(3)]
        for _ in range(int(rng.integers(0, 5))):
            kind = int(rng.integers(0, 12))
            good = "widget" if rng.random() < 0.7 else "gadget"
            side = "buy" if rng.random() < 0.5 else "sell"
            price = round(float(rng.integers(50, 5001)) * 0.01, 2)
            if kind == 0:
                price += 0.001  # off the tick
            elif kind == 1:
                price = 250.0  # outside the range
            elif kind == 2:
                good = "nothing"
            elif kind == 3:
                actions.append(SendMessage(recipient_id=agents[0].unique_id, text="hi"))
                continue
            elif kind == 4:
                actions.append(Wait())
                continue
            elif kind == 5:
                actions.append(CancelOrder(order_id=int(rng.integers(1, 5))))
                continue
            quantity = int(rng.integers(1, 4)) if kind != 6 else 50  # 50: more than anyone has
            lifetime = "gtc" if kind == 7 else "step"
            actions.append(PlaceOrder(good=good, side=side, price=price, quantity=quantity, lifetime=lifetime))  # type: ignore[arg-type]
        out.append((agent, None if rng.random() < 0.05 else Decision(actions=actions)))
    return out


def _state(model: MarketModel) -> tuple[Any, ...]:
    book = model.exchange.book
    orders = [(o.order_id, o.agent_id, o.good, o.side, o.price, o.quantity, o.lifetime) for o in book._by_id.values()]
    accounts = [(a.account_id, a.cash, dict(a.holdings), a.reserved_cash, dict(a.reserved_goods))
                for a in model.exchange.ledger.accounts()]  # fmt: skip
    rejections = [list(a.rejections) for a in model.world.agents.values()]
    return orders, accounts, rejections, book.next_order_id()


@pytest.mark.parametrize("seed", range(8))
def test_a_batch_resolves_as_one_by_one(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    batches: list[int] = []
    place_orders = Exchange.place_orders
    monkeypatch.setattr(Exchange, "place_orders", lambda self, orders, step, out: batches.append(len(orders)) or place_orders(self, orders, step, out))
    results = []
    for batch in (True, False):
        model, events, texts = _world(batch)
        model.exchange.begin_step()
        for step in (1, 2):  # a second step: gtc orders rest, suspensions are in force
            decisions = _decisions(model, np.random.default_rng(seed * 10 + step), suspend=seed % 2 == 0)
            model.resolver.resolve(decisions, step)
            model.exchange.begin_step()
        results.append((events, texts, _state(model)))
    (events, texts, state), (want_events, _, want_state) = results
    assert events == want_events
    assert state == want_state
    assert max(batches) > 3  # the orders were booked in batches
    kinds = {e[0] for e in events}
    assert {"order", "action_rejected", "message", "action"} <= kinds
    reasons = " ".join(c["reason"] for t, c, _ in events if t == "action_rejected")
    for why in ("not a multiple of the tick", "outside the admissible range", "unknown good", "may not",
                "insufficient", "orders per step"):  # fmt: skip
        assert why in reasons
    encoded = [(e, t) for e, t in zip(events, texts, strict=True) if t is not None]
    assert len(encoded) > 20 and {e[0] for e, _ in encoded} == {"action", "order"}
    for (_, content, _), text in encoded:
        assert text == ENCODE(content)


def test_a_failure_inside_a_batch_leaves_what_one_by_one_leaves(monkeypatch: pytest.MonkeyPatch) -> None:
    """Something other than a refusal raising at the n-th order: the orders before it are booked
    and recorded, as `apply` had recorded them, and the error reaches the caller."""
    results = []
    for batch in (True, False):
        model, events, _ = _world(batch)
        reserve = model.exchange.ledger.reserve_cash
        calls = iter(range(1000))

        def failing(account_id: Any, amount: int, reserve: Any = reserve, calls: Any = calls) -> None:
            if next(calls) == 4:
                raise RuntimeError("disk on fire")
            reserve(account_id, amount)

        monkeypatch.setattr(model.exchange.ledger, "reserve_cash", failing)
        buyers = [a for a in model.world.agents.values() if a.role.value == "buyer"]
        decisions: list[tuple[Any, Decision | None]] = [
            (a, Decision(actions=[PlaceOrder(good="widget", side="buy", price=2.0 + i, quantity=1)])) for i, a in enumerate(buyers)
        ]
        with pytest.raises(RuntimeError, match="disk on fire"):
            model.resolver.resolve(decisions, 1)
        results.append((events, _state(model)))
    assert results[0] == results[1]
    assert sum(1 for e in results[0][0] if e[0] == "order") == 4


def test_the_texts_are_the_recorders_encoding() -> None:
    """For any values of the types a booked order and a settled trade hold (and None otherwise)."""
    draws = np.random.default_rng(8)
    names = ["widget", "ünï €", 'quo"te\\', "tab\tnl\n", "\u2028x", "😀"]
    for _ in range(3000):
        good = names[int(draws.integers(0, len(names)))]
        price = float(draws.choice([0.01, 1e-7, 1e16, 123.45, 0.1 + 0.2, 5e-324])) * float(draws.integers(1, 1000))
        quantity, order_id = int(draws.integers(1, 10**9)), int(draws.integers(1, 10**12))
        side, lifetime = ("buy", "sell")[int(draws.integers(0, 2))], ("step", "gtc")[int(draws.integers(0, 2))]
        action = {"type": "place_order", "arguments": {"good": good, "side": side, "price": price, "quantity": quantity, "lifetime": lifetime}}
        assert action_json(good, side, price, quantity, lifetime) == ENCODE(action)
        order = {"order_id": order_id, "side": side, "good": good, "price": price, "quantity": quantity, "lifetime": lifetime}
        assert order_json(order_id, side, good, price, quantity, lifetime) == ENCODE(order)
        fee = float(draws.choice([0.0, 0.01, price]))
        trade = {"good": good, "price": price, "quantity": quantity, "buyer_id": order_id, "seller_id": 3,
                 "buy_order_id": order_id + 1, "sell_order_id": 7, "buyer_fee": fee, "seller_fee": 0.0}  # fmt: skip
        assert trade_json(trade) == ENCODE(trade)
    assert action_json("widget", "buy", 10, 1, "step") is None  # an int price: left to the encoder
    assert order_json(1, "buy", "widget", float("nan"), 1, "step") is None
    assert trade_json({**trade, "quantity": True}) is None
