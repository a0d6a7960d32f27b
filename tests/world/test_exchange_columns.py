"""The exchange books a batch's step orders as columns (`Exchange.place_columns` ->
`OrderBook.add_step_order`) and clears them from the columns when they are the whole book
(`Exchange._clear_columns`). Against the same orders placed one by one as `Order` objects, the
clearings, trades, goods' states, ledger and book must be the same after the clearing: partial
fills, fees, two goods, unfilled orders released; with an order resting in the book (a gtc one),
the columns are made objects and cleared the usual way."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import pytest

from mesa_llm.actions import PlaceOrder
from mesa_llm.agents.policies.base import OrderColumns
from mesa_llm.agents.roles import Role
from mesa_llm.market import Money
from mesa_llm.world.exchange import Exchange

MONEY = Money(0.01)
GOODS = [("widget", 10_000, 100, 20_000), ("gadget", 1_000, 50, 5_000)]


class _Agent:
    def __init__(self, unique_id: int, role: Role) -> None:
        self.unique_id, self.role = unique_id, role


AGENTS = [_Agent(i, (Role.BUYER, Role.SELLER, Role.TRADER)[i % 3]) for i in range(1, 31)]


def _exchange(fee: int) -> Exchange:
    ex = Exchange(GOODS, MONEY, fee_per_unit=fee, max_orders_per_step=3)
    for agent in AGENTS:
        ex.open_account(agent.unique_id, 60_000, {"widget": 4, "gadget": 3})
    return ex


def _columns(rng: np.random.Generator) -> tuple[OrderColumns, list[int]]:
    columns = OrderColumns()
    for agent in AGENTS:
        for _ in range(int(rng.integers(0, 3))):
            good = "widget" if rng.random() < 0.6 else "gadget"
            low, high = (90, 110) if good == "widget" else (9, 11)
            buy = agent.role is Role.BUYER or (agent.role is Role.TRADER and rng.random() < 0.5)
            columns.agents.append(agent)
            columns.goods.append(good)
            columns.buys.append(buy)
            columns.prices.append(round(float(rng.integers(low * 10, high * 10)) * 0.1, 2))
            columns.quantities.append(int(rng.integers(1, 4)))
    return columns, list(range(len(columns)))


def _state(ex: Exchange, clearings: list[Any]) -> Any:
    accounts = [(a.account_id, a.cash, dict(a.holdings), a.reserved_cash, dict(a.reserved_goods)) for a in ex.ledger.accounts()]
    goods = [(s.name, s.last_price, s.last_volume, s.price_low, s.price_high, s.excess_demand, s.excess_supply,
              list(s.history), s.last_trade_step, s.last_clearing_step, s.best_bid, s.best_ask) for s in ex.goods.values()]  # fmt: skip
    book = sorted((o.order_id, o.agent_id, o.good, o.side, o.price, o.remaining, o.lifetime) for o in ex.book._by_id.values())
    ex.ledger.check_invariants()
    return [asdict(c) for c in clearings], accounts, goods, book, ex.book.next_order_id(), list(ex.ledger._journal)


@pytest.mark.parametrize("gtc", [False, True])
@pytest.mark.parametrize("fee", [0, 3])
def test_columns_clear_as_their_orders_as_objects(fee: int, gtc: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    cleared: list[int] = []
    clear_columns = Exchange._clear_columns
    monkeypatch.setattr(Exchange, "_clear_columns", lambda self, columns, step: cleared.append(len(columns)) or clear_columns(self, columns, step))
    trades = 0
    for seed in range(8):
        results = []
        for as_columns in (True, False):
            ex = _exchange(fee)
            if gtc:  # an order resting from an earlier step
                ex.place_order(AGENTS[2].unique_id, Role.TRADER, PlaceOrder(good="gadget", side="buy", price=9.5, quantity=1, lifetime="gtc"), step=0)
            rng = np.random.default_rng(seed)
            clearings = []
            for step in (1, 2):
                ex.begin_step()
                columns, positions = _columns(rng)
                out: list[Any] = []
                if as_columns:
                    ex.place_columns(columns, positions, step, out)
                else:
                    ex.place_orders([(columns.agents[k], columns.order(k)) for k in positions], step, out)
                    out = [o if isinstance(o, str) else o.order_id for o in out]
                clearings += ex.clear(step)
                results.append(out)
            results.append(_state(ex, clearings))
        (got_out1, got_out2, got), (want_out1, want_out2, want) = results[:3], results[3:]
        assert (got_out1, got_out2) == (want_out1, want_out2)
        assert got == want
        trades += sum(len(c["trades"]) for c in got[0])
    assert trades > 50
    assert (len(cleared) > 0) is not gtc  # the columns were cleared as columns only when they were the whole book


def _one_each(rng: np.random.Generator, off_path: int | None) -> tuple[OrderColumns, list[int]]:
    """One order per agent (so `Exchange._place_at_once` may place them): some short of cash or
    goods (quantity 9), some sells below the fee; the order at ``off_path`` off the tick."""
    columns = OrderColumns()
    for place, agent in enumerate(AGENTS):
        good = "widget" if rng.random() < 0.6 else "gadget"
        low, high = (90, 110) if good == "widget" else (9, 11)
        buy = agent.role is Role.BUYER or (agent.role is Role.TRADER and rng.random() < 0.5)
        price = round(float(rng.integers(low * 10, high * 10)) * 0.1, 2)
        if not buy and rng.random() < 0.3:
            good, price = "gadget", (0.5, 0.6)[place % 2]  # below the fee per unit (0.6), or at it
        if place == off_path:
            price += 0.001
        columns.agents.append(agent)
        columns.goods.append(good)
        columns.buys.append(buy)
        columns.prices.append(price)
        columns.quantities.append(9 if rng.random() < 0.25 else int(rng.integers(1, 4)))
    return columns, list(range(len(columns)))


@pytest.mark.parametrize("most", [1, 2])
@pytest.mark.parametrize("off_path", [None, 0, 7, 29])
def test_one_order_per_agent_placed_at_once_as_one_by_one(off_path: int | None, most: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The orders before the first off the usual path are placed at once (checks as arrays, one
    reservation pass, a range of ids), the rest one by one: the same ids, refusals, ledger, book
    and clearing as every order as a `PlaceOrder`. Three batches in a step: the second's first 10
    agents placed an order in the first (at ``most`` 1 per step: from the first booked, one by
    one), the third has each agent twice (one by one)."""
    at_once: list[int] = []
    place_at_once = Exchange._place_at_once
    monkeypatch.setattr(Exchange, "_place_at_once", lambda self, *args: at_once.append(place_at_once(self, *args)) or at_once[-1])  # fmt: skip
    reasons = []
    for seed in range(6):
        results = []
        for as_columns in (True, False):
            ex = Exchange(GOODS, MONEY, fee_per_unit=60, max_orders_per_step=most)
            for agent in AGENTS:
                ex.open_account(agent.unique_id, 30_000, {"widget": 4, "gadget": 3})
            rng = np.random.default_rng(seed)
            clearings, outs = [], []
            for step in (1, 2):
                ex.begin_step()
                columns, positions = _one_each(rng, off_path if step == 1 else None)
                for part in (positions[:20], positions[10:], positions[5:15] * 2):
                    out: list[Any] = []
                    if as_columns:
                        ex.place_columns(columns, part, step, out)
                    else:
                        ex.place_orders([(columns.agents[k], columns.order(k)) for k in part], step, out)
                        out = [o if isinstance(o, str) else o.order_id for o in out]
                    outs.append(out)
                clearings += ex.clear(step)
            results.append((outs, _state(ex, clearings)))
        assert results[0] == results[1]
        reasons += [o for out in results[0][0] for o in out if isinstance(o, str)]
    text = " ".join(reasons)
    for why in ("insufficient funds", "insufficient goods", "does not cover the fee", "orders per step"):
        assert why in text
    assert ("not a multiple of the tick" in text) is (off_path is not None)
    firsts, seconds, thirds = at_once[0::3], at_once[1::3], at_once[2::3]
    assert set(firsts) == {20 if off_path is None or off_path >= 20 else off_path, 20}
    if most == 1:  # up to the first agent the first batch booked an order for
        assert max(seconds) < 10 and 0 in seconds
    else:
        assert set(seconds) == ({19, 20} if off_path == 29 else {20})
    assert set(thirds) == {0}


@pytest.mark.parametrize(("good", "bid", "ask"), [("widget", 95.0, 105.0), ("gadget", 10.5, 9.5), ("widget", 105.0, 95.0)])
def test_a_step_of_one_good(good: str, bid: float, ask: float) -> None:
    """A batch of one good (cleared with no lookup per order): with bids below the asks every order
    expires and all it reserved is released; with bids above, it trades (from the columns, as
    from the objects)."""
    results = []
    for as_columns in (True, False):
        ex = _exchange(fee=2)
        columns = OrderColumns()
        for agent in AGENTS[:12]:
            buy = agent.role is not Role.SELLER
            columns.agents.append(agent)
            columns.goods.append(good)
            columns.buys.append(buy)
            columns.prices.append(bid if buy else ask)
            columns.quantities.append(2)
        ex.begin_step()
        out: list[Any] = []
        if as_columns:
            ex.place_columns(columns, list(range(12)), 1, out)
        else:
            ex.place_orders([(columns.agents[k], columns.order(k)) for k in range(12)], 1, out)
            out = [o if isinstance(o, str) else o.order_id for o in out]
        assert sum(a.reserved_cash + sum(a.reserved_goods.values()) for a in ex.ledger.accounts()) > 0
        clearings = ex.clear(1)
        assert (sum(len(c.trades) for c in clearings) > 0) is (bid > ask)
        results.append((out, _state(ex, clearings)))
        assert all(a.reserved_cash == 0 and not any(a.reserved_goods.values()) for a in ex.ledger.accounts())
    assert results[0] == results[1]


def test_a_quantity_not_an_int_goes_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A quantity that is not a plain int (a numpy integer here) stops the orders placed at once
    there; it and the rest are placed one by one, as their `PlaceOrder`s are."""
    at_once: list[int] = []
    place_at_once = Exchange._place_at_once
    monkeypatch.setattr(Exchange, "_place_at_once", lambda self, *args: at_once.append(place_at_once(self, *args)) or at_once[-1])  # fmt: skip
    results = []
    for as_columns in (True, False):
        ex = _exchange(fee=0)
        columns, positions = _one_each(np.random.default_rng(4), None)
        columns.quantities[5] = np.int64(2)  # type: ignore[call-overload]
        ex.begin_step()
        out: list[Any] = []
        if as_columns:
            ex.place_columns(columns, positions, 1, out)
        else:
            ex.place_orders([(columns.agents[k], columns.order(k)) for k in positions], 1, out)
            out = [o if isinstance(o, str) else o.order_id for o in out]
        results.append((out, _state(ex, ex.clear(1))))
    assert results[0] == results[1]
    assert at_once == [5]


@pytest.mark.parametrize("fee", [0, 3, -2])
def test_the_reserved_amounts_as_arrays_are_the_loops(fee: int) -> None:
    """`exchange._amounts`: a buy's ``(tick + fee) * quantity``, a sell's ``quantity``, as Python
    ints, with arrays (a batch) and order by order (a few orders, or values too large for int64)."""
    from mesa_llm.world.exchange import _amounts

    rng = np.random.default_rng(fee + 7)
    for n, top, most in ((40, 20_000, 50), (40, 1 << 39, 1 << 19), (5, 500, 9), (40, 1 << 45, 1 << 19),
                         (40, 1 << 39, 1 << 30), (40, 1 << 62, 1 << 30)):  # fmt: skip
        ticks = [int(t) for t in rng.integers(1, top, size=n, dtype=np.int64)]
        quantities = [int(q) for q in rng.integers(1, most, size=n)]
        buys = [bool(b) for b in rng.random(n) < 0.5]
        got = _amounts(ticks, quantities, buys, fee)
        assert got == [(t + fee) * q if b else q for t, q, b in zip(ticks, quantities, buys, strict=True)]
        assert {a.__class__ for a in got} == {int}
