"""Orders owns limit orders and the book of resting orders, per good and side, in arrival order.

Prices are integer ticks and quantities integer units. The book holds no money: reserving
cash or goods for an order is the ledger's job, done by the caller that places the order.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

import numpy as np

__all__ = ["Lifetime", "Order", "OrderBook", "Side", "StepOrders"]


class Side(IntEnum):
    """Side of an order: +1 buys, -1 sells (so side * quantity is the signed position change)."""

    BUY = 1
    SELL = -1


class Lifetime(StrEnum):
    """How long an order rests in the book."""

    STEP = "step"  # expires after this step's clearing
    GTC = "gtc"  # good till cancelled: rests until cancelled or filled


@dataclass(slots=True)
class Order:
    """A limit order; ``remaining`` is what is still unfilled."""

    order_id: int
    agent_id: int
    good: str
    side: Side
    price: int  # ticks
    quantity: int
    remaining: int
    lifetime: Lifetime
    arrival: int  # global arrival sequence number = time priority
    step: int  # step placed


class StepOrders:
    """Orders of step lifetime booked as columns (per order: id, agent, good, side, price in
    ticks, quantity; in arrival order, ids increasing, none filled yet): a batch's orders that
    live only until the step's clearing. `OrderBook` turns them into `Order` objects as soon as
    anything reads or changes the book; the exchange clears them from the columns otherwise."""

    __slots__ = ("agents", "buys", "goods", "ids", "prices", "quantities", "step")

    def __init__(self, step: int) -> None:
        self.step = step
        self.ids: list[int] = []
        self.agents: list[Any] = []  # account ids
        self.goods: list[str] = []
        self.buys: list[bool] = []
        self.prices: list[int] = []
        self.quantities: list[int] = []

    def __len__(self) -> int:
        return len(self.ids)


class OrderBook:
    """Resting orders of all goods, kept in arrival order per good and side."""

    def __init__(self) -> None:
        self._next_id = 1
        # dicts keep insertion order, so each (good, side) dict is in arrival order
        # and removal is O(1).
        self._sides: dict[tuple[str, Side], dict[int, Order]] = {}
        self._by_id: dict[int, Order] = {}
        self._by_agent: dict[Hashable, dict[int, Order]] = {}
        self._by_lifetime: dict[Lifetime, dict[int, Order]] = {lt: {} for lt in Lifetime}
        #: the latest arrival of an order added so far (a later one needs no re-sort of its side)
        self._latest_arrival = 0
        #: step orders booked as columns, not made `Order` objects yet (`add_step_order`)
        self._columns: StepOrders | None = None

    def next_order_id(self) -> int:
        """Return a fresh order id (1, 2, 3, ...); it doubles as the arrival number."""
        order_id = self._next_id
        self._next_id += 1
        return order_id

    def next_order_ids(self, count: int) -> range:
        """``count`` fresh order ids at once: what `next_order_id` returns ``count`` times."""
        first = self._next_id
        self._next_id = first + count
        return range(first, first + count)

    def add_step_order(self, order_id: int, agent_id: Hashable, good: str, buy: bool, price: int, quantity: int,
                       step: int) -> None:  # fmt: skip
        """Book a step order as columns (`StepOrders`): the order `add_new` would rest,
        ``Order(order_id, agent_id, good, BUY if buy else SELL, price, quantity, quantity, STEP,
        order_id, step)``, made an object only when something reads the book. ``order_id`` is
        the one `next_order_id` just returned, ``quantity`` > 0."""
        columns = self.step_columns(step)
        columns.ids.append(order_id)
        columns.agents.append(agent_id)
        columns.goods.append(good)
        columns.buys.append(buy)
        columns.prices.append(price)
        columns.quantities.append(quantity)

    def step_columns(self, step: int) -> StepOrders:
        """The step's orders booked as columns, to append orders to as `add_step_order` does
        (one list append per field and order; nothing else may change them)."""
        columns = self._columns
        if columns is None or columns.step != step:
            self._materialize()
            columns = self._columns = StepOrders(step)
        return columns

    def take_step_columns(self) -> StepOrders | None:
        """The step orders booked as columns, removed from the book (for a clearing that settles
        them and expires the rest itself), when they are all the book holds; else None (they
        stay, as objects once anything reads them)."""
        columns = self._columns
        if columns is None or self._by_id:
            return None
        self._columns = None
        if columns.ids:
            self._latest_arrival = max(self._latest_arrival, columns.ids[-1])
        return columns

    def _materialize(self) -> None:
        """Make the step orders booked as columns `Order` objects in the book (in arrival order)."""
        columns = self._columns
        if columns is None:
            return
        self._columns = None
        step, lifetime = columns.step, Lifetime.STEP
        for oid, agent, good, buy, price, quantity in zip(columns.ids, columns.agents, columns.goods, columns.buys,
                                                          columns.prices, columns.quantities, strict=True):  # fmt: skip
            self._insert(Order(oid, agent, good, Side.BUY if buy else Side.SELL, price, quantity, quantity,
                               lifetime, oid, step))  # fmt: skip

    def add(self, order: Order) -> None:
        """Rest an order in the book; ValueError on a duplicate id or inconsistent quantities."""
        if self._columns is not None:
            self._materialize()
        if order.order_id in self._by_id:
            raise ValueError(f"order {order.order_id} is already in the book")
        if order.quantity <= 0 or not 0 < order.remaining <= order.quantity:
            raise ValueError(
                f"order {order.order_id}: need 0 < remaining <= quantity, "
                f"got remaining={order.remaining} quantity={order.quantity}"
            )
        # Normalise plain values (1, "gtc") to the enums so index keys always match.
        # (an enum already is its own normal form: the enum call, costly per order, is skipped)
        if type(order.side) is not Side:
            order.side = Side(order.side)
        if type(order.lifetime) is not Lifetime:
            order.lifetime = Lifetime(order.lifetime)
        oid = order.order_id
        if oid >= self._next_id:  # ids made elsewhere must not be reissued
            self._next_id = oid + 1
        self._insert(order)

    def add_new(self, order: Order) -> None:
        """`add` for an order just made with an id from `next_order_id` (never in the book, never
        reissued) and its side and lifetime enum members: the same book, without those checks."""
        if self._columns is not None:
            self._materialize()
        if order.quantity <= 0 or not 0 < order.remaining <= order.quantity:
            self.add(order)  # refused as `add` refuses it
            return
        self._insert(order)

    def _insert(self, order: Order) -> None:
        oid = order.order_id
        key = (order.good, order.side)
        side = self._sides.get(key)
        if side is None:
            side = self._sides[key] = {}
        side[oid] = order
        self._by_id[oid] = order
        own = self._by_agent.get(order.agent_id)
        if own is None:
            own = self._by_agent[order.agent_id] = {}
        own[oid] = order
        self._by_lifetime[order.lifetime][oid] = order
        if order.arrival < self._latest_arrival:
            self._keep_arrival_order(key, side, order)
        else:  # it arrived after every order added so far: appended, its side stays in order
            self._latest_arrival = order.arrival

    def get(self, order_id: int) -> Order | None:
        """Return the resting order with this id, or None."""
        if self._columns is not None:
            self._materialize()
        return self._by_id.get(order_id)

    def cancel(self, order_id: int) -> Order:
        """Remove and return a resting order; KeyError if it is not in the book."""
        if self._columns is not None:
            self._materialize()
        order = self._by_id.get(order_id)
        if order is None:
            raise KeyError(f"order {order_id} is not in the book")
        self._remove(order)
        return order

    def open_orders(self, agent_id: int) -> list[Order]:
        """Return an agent's resting orders in arrival order."""
        if self._columns is not None:
            self._materialize()
        own = self._by_agent.get(agent_id)
        if not own:
            return []
        return sorted(own.values(), key=_arrival)

    def orders(self, good: str, side: Side) -> list[Order]:
        """Return the resting orders of one good and side in arrival order."""
        if self._columns is not None:
            self._materialize()
        side_orders = self._sides.get((good, side))
        return list(side_orders.values()) if side_orders else []

    def goods(self) -> list[str]:
        """Return the goods that have at least one resting order."""
        if self._columns is not None:
            self._materialize()
        return sorted({good for (good, _), orders in self._sides.items() if orders})

    def side_arrays(self, good: str, side: Side) -> tuple[list[Order], np.ndarray, np.ndarray]:
        """Return (orders in arrival order, prices int64, remaining int64) for one good and side."""
        orders = self.orders(good, side)
        n = len(orders)
        prices = np.fromiter((o.price for o in orders), dtype=np.int64, count=n)
        remaining = np.fromiter((o.remaining for o in orders), dtype=np.int64, count=n)
        return orders, prices, remaining

    def apply_fills(self, orders: list[Order], fills: np.ndarray) -> list[Order]:
        """Decrement ``remaining`` by ``fills``; remove and return the orders now fully filled."""
        if self._columns is not None:
            self._materialize()
        if len(fills) != len(orders):
            raise ValueError(f"{len(fills)} fills for {len(orders)} orders")
        done: list[Order] = []
        # Only touch filled orders: most of a big book is not filled in a step.
        for i in np.flatnonzero(fills).tolist():
            order = orders[i]
            fill = int(fills[i])
            if order.order_id not in self._by_id:
                raise ValueError(f"order {order.order_id} is not in the book")
            if not 0 < fill <= order.remaining:
                raise ValueError(
                    f"order {order.order_id}: fill {fill} outside 1..{order.remaining}"
                )
            order.remaining -= fill
            if order.remaining == 0:
                self._remove(order)
                done.append(order)
        return done

    def expire(self, lifetime: Lifetime = Lifetime.STEP) -> list[Order]:
        """Remove and return every order with this lifetime, in arrival order."""
        if self._columns is not None:
            self._materialize()
        kind = Lifetime(lifetime)
        expired = sorted(self._by_lifetime[kind].values(), key=_arrival)
        if len(expired) == len(self._by_id):  # the whole book expires (a book of step orders): empty it
            self._by_id, self._sides, self._by_agent = {}, {}, {}
            self._by_lifetime[kind] = {}
            return expired
        for order in expired:
            self._remove(order)
        return expired

    def __len__(self) -> int:
        if self._columns is not None:
            self._materialize()
        return len(self._by_id)

    def __contains__(self, order_id: object) -> bool:
        if self._columns is not None:
            self._materialize()
        return order_id in self._by_id

    # -- internals ----------------------------------------------------------------

    def _remove(self, order: Order) -> None:
        oid = order.order_id
        del self._by_id[oid]
        del self._sides[(order.good, order.side)][oid]
        own = self._by_agent[order.agent_id]
        del own[oid]
        if not own:
            del self._by_agent[order.agent_id]
        del self._by_lifetime[order.lifetime][oid]

    def _keep_arrival_order(
        self, key: tuple[str, Side], side: dict[int, Order], order: Order
    ) -> None:
        # Orders normally arrive with increasing `arrival`, so appending keeps the order;
        # an order added with an earlier arrival (e.g. restored from a snapshot) re-sorts.
        if len(side) < 2:
            return
        values = iter(reversed(side.values()))
        next(values)
        if next(values).arrival > order.arrival:
            self._sides[key] = {o.order_id: o for o in sorted(side.values(), key=_arrival)}


def _arrival(order: Order) -> int:
    return order.arrival
