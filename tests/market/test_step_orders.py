"""Step orders booked as columns (`OrderBook.add_step_order`) are the book's orders like any other:
whatever reads or changes the book first makes them `Order` objects, equal to what `add_new` would
have rested, in arrival order; `take_step_columns` hands them over only when they are all the book
holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from mesa_llm.market import Lifetime, Order, OrderBook, Side

#: (agent, good, buy, price, quantity) of a few step orders
ORDERS = [(1, "widget", True, 120, 2), (2, "widget", False, 90, 1), (1, "gadget", False, 30, 3),
          (3, "widget", True, 95, 1), (2, "gadget", True, 31, 2)]  # fmt: skip


def _books(step: int = 4) -> tuple[OrderBook, OrderBook]:
    """The same orders in two books: as objects (`add_new`) and as columns (`add_step_order`)."""
    objects, columns = OrderBook(), OrderBook()
    for agent, good, buy, price, quantity in ORDERS:
        oid = objects.next_order_id()
        objects.add_new(Order(oid, agent, good, Side.BUY if buy else Side.SELL, price, quantity, quantity,
                              Lifetime.STEP, oid, step))  # fmt: skip
        assert columns.next_order_id() == oid
        columns.add_step_order(oid, agent, good, buy, price, quantity, step)
    return objects, columns


def _sides(book: OrderBook) -> Any:
    out = []
    for good in ("widget", "gadget"):
        for side in Side:
            orders, prices, remaining = book.side_arrays(good, side)
            out.append((orders, prices.tolist(), remaining.tolist()))
    return out


READS: list[Callable[[OrderBook], Any]] = [
    lambda b: b.get(3), lambda b: b.open_orders(1), lambda b: b.open_orders(2), lambda b: b.orders("widget", Side.BUY),
    lambda b: b.goods(), len, lambda b: 4 in b, lambda b: b.expire(Lifetime.STEP), lambda b: b.cancel(2), _sides,
    lambda b: b.apply_fills(b.orders("gadget", Side.SELL), np.array([3])),
    lambda b: b.expire(Lifetime.GTC),
]  # fmt: skip


@pytest.mark.parametrize("read", READS)
def test_every_read_of_the_book_sees_the_columns_as_orders(read: Callable[[OrderBook], Any]) -> None:
    objects, columns = _books()
    assert read(columns) == read(objects)
    assert _sides(columns) == _sides(objects) and len(columns) == len(objects)


def test_an_order_added_after_the_columns_comes_after_them() -> None:
    objects, columns = _books()
    for book in (objects, columns):
        oid = book.next_order_id()
        book.add(Order(oid, 9, "widget", Side.BUY, 100, 1, 1, Lifetime.GTC, oid, 4))
    assert _sides(columns) == _sides(objects)
    assert columns.take_step_columns() is None  # an object order rests: the columns are the book's


def test_the_columns_are_handed_over_only_when_they_are_the_whole_book() -> None:
    _, columns = _books()
    taken = columns.take_step_columns()
    assert taken is not None and taken.ids == [1, 2, 3, 4, 5] and taken.buys == [True, False, False, True, True]
    assert len(columns) == 0 and columns.take_step_columns() is None
    assert columns.next_order_id() == 6
    _, read = _books()
    assert read.get(1) is not None and read.take_step_columns() is None  # made objects by a read: they stay
    assert len(read) == len(ORDERS)


def test_columns_of_another_step_are_made_objects_first() -> None:
    book = OrderBook()
    book.add_step_order(book.next_order_id(), 1, "widget", True, 100, 1, step=1)
    book.add_step_order(book.next_order_id(), 2, "widget", False, 99, 1, step=2)
    assert [(o.order_id, o.step) for o in book.orders("widget", Side.BUY) + book.orders("widget", Side.SELL)] == [(1, 1), (2, 2)]
