"""A step whose decisions are all `ColumnDecision`s of one `OrderColumns` is resolved from the
columns (`ActionResolver._resolve_columns` -> `Exchange.place_columns`), with no `PlaceOrder` per
order. Against the same orders as `PlaceOrder` objects applied one by one, the events, texts,
rejections, order ids, book and ledger must be the same, with refusals of every kind an order valid
by construction can meet (off the tick, outside the range, unknown good, a side the role may not
take, cash or goods short, too many orders in a step, a price below the fee, a suspension in force),
agents of two orders and of none; a step with any other decision goes the per-order way."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mesa_llm.actions import Decision, Wait
from mesa_llm.agents.policies.base import ColumnDecision, OrderColumns
from mesa_llm.mechanisms.call_market import CallMarketMechanism
from mesa_llm.model import MarketModel
from mesa_llm.recording.recorder import _make_encoder
from mesa_llm.scenario import validate_scenario
from mesa_llm.world.exchange import Exchange
from tests.support.resolving import Event, listing_resolver

ENCODE = _make_encoder()


def _world(columns: bool, encoded: bool = True) -> tuple[MarketModel, list[Event], list[str | None]]:
    raw = {
        "name": "resolver_columns", "seed": 3, "steps": 10, "tick_size": 0.01,
        "goods": [{"name": "widget", "reference_price": 100.0, "min_price": 1.0, "max_price": 200.0},
                  {"name": "gadget", "reference_price": 10.0, "min_price": 0.5, "max_price": 50.0}],
        "market": {"max_orders_per_step": 2, "fee_per_unit": 0.6},
        "populations": [
            {"name": "buyers", "role": "buyer", "count": 12, "policy": "idle", "endowment": {"cash": 60.0}},
            {"name": "sellers", "role": "seller", "count": 12, "policy": "idle",
             "endowment": {"holdings": {"widget": 2, "gadget": 1}}},
            {"name": "traders", "role": "trader", "count": 6, "policy": "idle",
             "endowment": {"cash": 80.0, "holdings": {"widget": 1}}},
        ],
    }  # fmt: skip
    model = MarketModel(validate_scenario(raw), record=False)
    events, texts = listing_resolver(model, encoded=encoded)
    if not columns:  # every order as a `PlaceOrder`, applied one by one
        model.resolver._resolve_columns = lambda decisions, order, step: False  # type: ignore[method-assign]
        model.resolver._plain_orders = lambda agent, actions: False  # type: ignore[method-assign]
    return model, events, texts


def _columns(model: MarketModel, rng: np.random.Generator) -> list[tuple[Any, Decision | None]]:
    """0-3 orders per agent (3 more per trader; valid `PlaceOrder`s, many of them refused), as columns."""
    columns = OrderColumns()
    out: list[tuple[Any, Decision | None]] = []
    for agent in model.world.agents.values():
        first = len(columns)
        if agent.role.value == "trader":  # one order more than a step allows
            for i in range(3):
                columns.agents.append(agent)
                columns.goods.append("widget")
                columns.buys.append(True)
                columns.prices.append(1.0 + i)
                columns.quantities.append(1)
        for _ in range(int(rng.integers(0, 4))):
            kind = int(rng.integers(0, 10))
            good = "widget" if rng.random() < 0.7 else "gadget"
            price = round(float(rng.integers(50, 5001)) * 0.01, 2)
            if kind == 0:
                price += 0.001  # off the tick
            elif kind == 1:
                price = 250.0  # outside the range
            elif kind == 2:
                good = "nothing"
            buy = bool(rng.random() < 0.5)
            if kind == 3:  # asking less than the fee per unit
                good, price, buy = "gadget", 0.5, False
            columns.agents.append(agent)
            columns.goods.append(good)
            columns.buys.append(buy)
            columns.prices.append(price)
            columns.quantities.append(int(rng.integers(1, 4)) if kind != 4 else 50)  # 50: more than anyone has
        out.append((agent, None if rng.random() < 0.05 else ColumnDecision(columns, first, len(columns) - first)))
    return out


def _state(model: MarketModel) -> tuple[Any, ...]:
    book = model.exchange.book
    orders = [(o.order_id, o.agent_id, o.good, o.side, o.price, o.quantity, o.lifetime) for o in book._by_id.values()]
    accounts = [(a.account_id, a.cash, dict(a.holdings), a.reserved_cash, dict(a.reserved_goods))
                for a in model.exchange.ledger.accounts()]  # fmt: skip
    rejections = [list(a.rejections) for a in model.world.agents.values()]
    return orders, accounts, rejections, book.next_order_id()


def _resolve(columns: bool, seed: int, suspend: bool, decide: Any = _columns, encoded: bool = True) -> tuple[Any, ...]:
    model, events, texts = _world(columns, encoded)
    model.exchange.begin_step()
    for step in (1, 2):  # a second step: the orders of the first expired, one trader suspended
        if suspend and step == 2:
            trader = next(a for a in model.world.agents.values() if a.role.value == "trader")
            model.exchange.rules.suspend(trader.unique_id, 5)  # a rule in force: every order the usual way
        model.resolver.resolve(decide(model, np.random.default_rng(seed * 10 + step)), step)
        model.exchange.clear(step)
        model.exchange.begin_step()
    return events, texts, _state(model)


@pytest.mark.parametrize("encoded", [True, False])  # False: no recorder, no texts
def test_columns_resolve_as_their_orders_one_by_one(encoded: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    placed: list[int] = []
    place_columns = Exchange.place_columns
    monkeypatch.setattr(Exchange, "place_columns",
                        lambda self, columns, positions, step, out, **kw: placed.append(len(positions)) or place_columns(self, columns, positions, step, out, **kw))  # fmt: skip
    reasons = ""
    for seed in range(6):  # every other seed with a suspension in force in its second step
        placed.clear()
        events, texts, state = _resolve(True, seed, suspend=seed % 2 == 0, encoded=encoded)
        assert len(placed) == 2 and min(placed) > 20  # both steps went as columns
        want_events, _, want_state = _resolve(False, seed, suspend=seed % 2 == 0, encoded=encoded)
        assert events == want_events
        assert state == want_state
        reasons += " ".join(c["reason"] for t, c, _ in events if t == "action_rejected")
        given = [(e, t) for e, t in zip(events, texts, strict=True) if t is not None]
        assert (len(given) > 20 and {e[0] for e, _ in given} == {"action", "order"}) if encoded else not given
        for (_, content, _), text in given:
            assert text == ENCODE(content)
    for why in ("not a multiple of the tick", "outside the admissible range", "unknown good", "may not",
                "insufficient funds", "insufficient goods", "orders per step", "does not cover the fee", "suspended"):  # fmt: skip
        assert why in reasons


def _with_a_wait(model: MarketModel, rng: np.random.Generator) -> list[tuple[Any, Decision | None]]:
    """Columns, with one agent's decision a plain `Decision` (a wait)."""
    decisions = _columns(model, rng)
    decisions[3] = (decisions[3][0], Decision(actions=[Wait()]))
    return decisions


def _two_columns(model: MarketModel, rng: np.random.Generator) -> list[tuple[Any, Decision | None]]:
    """Columns, some agents' decisions from another `OrderColumns` (each indexes its own)."""
    decisions = _columns(model, rng)
    other = _columns(model, rng)
    for i in (5, 7, 9, 20):
        decisions[i] = other[i]
    return decisions


@pytest.mark.parametrize("decide", [_with_a_wait, _two_columns])
def test_a_step_with_other_decisions_goes_the_per_order_way(decide: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CallMarketMechanism, "place_columns", None)  # never reached
    for seed in range(3):
        events, _, state = _resolve(True, seed, suspend=False, decide=decide)
        want_events, _, want_state = _resolve(False, seed, suspend=False, decide=decide)
        assert events == want_events and state == want_state
        assert sum(t == "order" for t, _, _ in events) > 20


def test_a_column_decision_is_the_decision_of_its_orders() -> None:
    columns = OrderColumns()
    for good, buy, price, quantity in (("widget", True, 1.5, 2), ("gadget", False, 0.01, 1), ("widget", False, 3.0, 7)):
        columns.agents.append(None)
        columns.goods.append(good)
        columns.buys.append(buy)
        columns.prices.append(price)
        columns.quantities.append(quantity)
    decision = ColumnDecision(columns, 1, 2)
    assert [a.arguments() for a in decision.actions] == [
        {"good": "gadget", "side": "sell", "price": 0.01, "quantity": 1, "lifetime": "step"},
        {"good": "widget", "side": "sell", "price": 3.0, "quantity": 7, "lifetime": "step"},
    ]
    assert decision.actions is decision.actions  # made once: the resolver and the recorder see the same objects
    assert (decision.plan, decision.failure, decision.fatal, list(decision.invalid), list(decision.events)) == (None, None, False, [], [])
    assert ColumnDecision(columns, 3, 0).actions == []


def _one_each(model: MarketModel, rng: np.random.Generator) -> list[tuple[Any, Decision | None]]:
    """One order per agent (of the kinds `_columns` makes, refusals too), each its own
    `ColumnDecision` of one `OrderColumns`: the usual step."""
    decisions = _columns(model, rng)
    columns = OrderColumns()
    out: list[tuple[Any, Decision | None]] = []
    for agent, decision in decisions:
        source = decision.columns if isinstance(decision, ColumnDecision) and decision.count else None
        k = decision.first if source is not None else None
        columns.agents.append(agent)
        columns.goods.append(source.goods[k] if source is not None else "widget")
        columns.buys.append(source.buys[k] if source is not None else agent.role.value != "seller")
        columns.prices.append(source.prices[k] if source is not None else 12.34)
        columns.quantities.append(source.quantities[k] if source is not None else 1)
        out.append((agent, ColumnDecision(columns, len(columns) - 1, 1)))
    return out


def test_a_step_of_one_order_each_is_read_off_the_columns_as_the_loop_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The usual step (`resolver._one_order_each`): the same events and state as every order one
    by one, refusals included, and the orders placed in the seeded order the loop takes."""
    import mesa_llm.world.resolver as resolver_module

    found: list[int] = []
    one_each = resolver_module._one_order_each
    monkeypatch.setattr(resolver_module, "_one_order_each",
                        lambda decisions, order: (found.append(len(got[1])) if (got := one_each(decisions, order)) else None) or got)  # fmt: skip
    for seed in range(4):
        found.clear()
        events, texts, state = _resolve(True, seed, suspend=seed % 2 == 0, decide=_one_each)
        assert found == [30, 30]  # both steps read off the columns
        want_events, _, want_state = _resolve(False, seed, suspend=seed % 2 == 0, decide=_one_each)
        assert events == want_events and state == want_state
        assert sum(t == "order" for t, _, _ in events) > 20 and any(t == "action_rejected" for t, _, _ in events)


def test_one_order_each_is_the_loops_finding_or_none() -> None:
    """`_one_order_each` gives the columns and, in the given order, each decision's place; None
    (the loop's case) for a decision that is None, of no order or two, of other columns, of
    another class."""
    from mesa_llm.world.resolver import _one_order_each

    class Other(ColumnDecision):
        __slots__ = ()

    columns, other = OrderColumns(), OrderColumns()
    decisions: list[tuple[Any, Decision | None]] = [(None, ColumnDecision(columns, k, 1)) for k in range(6)]
    order = [4, 0, 5, 2, 1, 3]
    assert _one_order_each(decisions, order) == (columns, order)
    for changed in (None, ColumnDecision(columns, 3, 0), ColumnDecision(columns, 3, 2), ColumnDecision(other, 3, 1),
                    Other(columns, 3, 1)):  # fmt: skip
        assert _one_order_each([*decisions[:3], (None, changed), *decisions[4:]], order) is None
    assert _one_order_each(decisions[:1], [0]) is None  # one agent: the loop
