"""Tests of Order and OrderBook: ids, arrival order, indexes, fills, cancel and expiry."""

from __future__ import annotations

import numpy as np
import pytest

from mesa_llm.market import Lifetime, Order, OrderBook, Side


def make(
    book: OrderBook,
    agent: int,
    side: Side,
    price: int,
    qty: int,
    good: str = "apple",
    lifetime: Lifetime = Lifetime.STEP,
) -> Order:
    oid = book.next_order_id()
    order = Order(oid, agent, good, side, price, qty, qty, lifetime, oid, 0)
    book.add(order)
    return order


def test_ids_increase_from_one() -> None:
    book = OrderBook()
    assert [book.next_order_id() for _ in range(3)] == [1, 2, 3]


def test_side_arrays_are_in_arrival_order_per_good_and_side() -> None:
    book = OrderBook()
    a = make(book, 1, Side.BUY, 10, 2)
    make(book, 2, Side.SELL, 12, 1)
    b = make(book, 3, Side.BUY, 11, 5)
    make(book, 3, Side.BUY, 9, 1, good="pear")
    orders, prices, remaining = book.side_arrays("apple", Side.BUY)
    assert orders == [a, b]
    assert prices.dtype == np.int64 and remaining.dtype == np.int64
    assert prices.tolist() == [10, 11] and remaining.tolist() == [2, 5]
    assert len(book) == 4
    empty_orders, empty_prices, _ = book.side_arrays("plum", Side.SELL)
    assert empty_orders == [] and empty_prices.size == 0


def test_open_orders_get_and_cancel() -> None:
    book = OrderBook()
    a = make(book, 7, Side.BUY, 10, 2)
    b = make(book, 8, Side.SELL, 12, 1)
    c = make(book, 7, Side.SELL, 13, 1, good="pear")
    assert book.open_orders(7) == [a, c]
    assert book.get(b.order_id) is b
    assert book.cancel(a.order_id) is a
    assert book.get(a.order_id) is None
    assert book.open_orders(7) == [c]
    with pytest.raises(KeyError):
        book.cancel(a.order_id)
    assert book.open_orders(99) == []


def test_apply_fills_partial_and_full() -> None:
    book = OrderBook()
    a = make(book, 1, Side.BUY, 10, 3)
    b = make(book, 2, Side.BUY, 10, 2)
    c = make(book, 3, Side.BUY, 10, 4)
    orders, _, _ = book.side_arrays("apple", Side.BUY)
    done = book.apply_fills(orders, np.array([3, 1, 0]))
    assert done == [a]
    assert a.remaining == 0 and b.remaining == 1 and c.remaining == 4
    assert book.get(a.order_id) is None and len(book) == 2
    orders, _, remaining = book.side_arrays("apple", Side.BUY)
    assert orders == [b, c] and remaining.tolist() == [1, 4]
    with pytest.raises(ValueError):
        book.apply_fills(orders, np.array([2, 0]))  # more than remaining
    with pytest.raises(ValueError):
        book.apply_fills(orders, np.array([1]))  # length mismatch


def test_expire_removes_only_that_lifetime() -> None:
    book = OrderBook()
    s1 = make(book, 1, Side.BUY, 10, 1)
    g = make(book, 1, Side.SELL, 11, 1, lifetime=Lifetime.GTC)
    s2 = make(book, 2, Side.SELL, 12, 1, good="pear")
    assert book.expire() == [s1, s2]
    assert len(book) == 1 and book.get(g.order_id) is g
    assert book.expire(Lifetime.STEP) == []
    assert book.expire(Lifetime.GTC) == [g]
    assert len(book) == 0 and book.open_orders(1) == []


def test_add_validates_and_normalises() -> None:
    book = OrderBook()
    order = Order(5, 1, "apple", 1, 10, 2, 2, "gtc", 5, 0)  # type: ignore[arg-type]
    book.add(order)
    assert order.side is Side.BUY and order.lifetime is Lifetime.GTC
    assert book.next_order_id() == 6  # never reissues an id added from outside
    with pytest.raises(ValueError):
        book.add(order)  # duplicate id
    with pytest.raises(ValueError):
        book.add(Order(9, 1, "apple", Side.BUY, 10, 2, 3, Lifetime.STEP, 9, 0))
    with pytest.raises(ValueError):
        book.add(Order(10, 1, "apple", Side.BUY, 10, 0, 0, Lifetime.STEP, 10, 0))


def test_late_arrival_is_sorted_into_place() -> None:
    book = OrderBook()
    late = Order(1, 1, "apple", Side.BUY, 10, 1, 1, Lifetime.STEP, 50, 0)
    early = Order(2, 2, "apple", Side.BUY, 10, 1, 1, Lifetime.STEP, 20, 0)
    book.add(late)
    book.add(early)
    orders, _, _ = book.side_arrays("apple", Side.BUY)
    assert orders == [early, late]
    assert book.open_orders(1) == [late]


def test_an_arrival_between_others_is_sorted_in_after_the_latest_moved_on() -> None:
    """The side is re-sorted only for an order earlier than the latest arrival added so far: one
    between two others (another good's order came later) still lands in its place."""
    book = OrderBook()
    first = Order(1, 1, "apple", Side.BUY, 10, 1, 1, Lifetime.STEP, 10, 0)
    last = Order(2, 2, "apple", Side.BUY, 10, 1, 1, Lifetime.STEP, 30, 0)
    pear = Order(3, 3, "pear", Side.BUY, 10, 1, 1, Lifetime.STEP, 40, 0)
    between = Order(4, 4, "apple", Side.BUY, 10, 1, 1, Lifetime.STEP, 20, 0)
    for order in (first, last, pear, between):
        book.add(order)
    assert book.orders("apple", Side.BUY) == [first, between, last]
    after = Order(5, 5, "apple", Side.BUY, 10, 1, 1, Lifetime.STEP, 50, 0)
    book.add(after)
    assert book.orders("apple", Side.BUY) == [first, between, last, after]


def test_a_book_of_step_orders_expires_whole_and_takes_new_orders() -> None:
    """When every resting order expires the indexes are emptied at once: nothing of them is left
    anywhere, and the book works as before afterwards."""
    book = OrderBook()
    orders = [make(book, i % 3, Side.BUY if i % 2 else Side.SELL, 10 + i, 1, good="apple" if i < 4 else "pear") for i in range(7)]
    assert book.expire() == orders
    assert len(book) == 0 and book.goods() == [] and book.open_orders(1) == []
    assert book.orders("apple", Side.BUY) == [] and all(book.get(o.order_id) is None for o in orders)
    assert book.expire() == [] and book.expire(Lifetime.GTC) == []
    again = make(book, 1, Side.BUY, 12, 2)
    gtc = make(book, 1, Side.BUY, 11, 1, lifetime=Lifetime.GTC)
    assert book.open_orders(1) == [again, gtc] and book.orders("apple", Side.BUY) == [again, gtc]
    assert book.cancel(again.order_id) is again
    assert book.expire() == [] and book.open_orders(1) == [gtc]
    assert again.order_id > orders[-1].order_id  # ids are never reissued
