"""The recording schema refuses what readers must not trust: an unknown buyer or seller, a negative
or fractional count, a missing required field, a bad item anywhere in a list, a duplicated agent,
a fulfilled contract without its fill; the column-wise check answers like the one-by-one one."""

from __future__ import annotations

from typing import Any

import pytest

from mesa_llm.recording.schema import MAX_INT, content_problem, contents_problem, header_problem

AGENTS = frozenset({1, 2, 3})


def _trade(**changes: Any) -> dict[str, Any]:
    return {"good": "widget", "price": 10.0, "quantity": 2, "buyer_id": 1, "seller_id": 2, **changes}


def _both(event_type: str, content: Any, agents: frozenset[int] | None = AGENTS) -> tuple[str | None, Any]:
    """The one-by-one answer and the column-wise one (the content among valid ones, third)."""
    good = _trade() if event_type == "trade" else {"stage": "offered", "buyer_id": 1, "seller_id": 2}
    return content_problem(event_type, content, agents), contents_problem(event_type, [good, good, content], agents)


@pytest.mark.parametrize(
    ("event_type", "content", "where"),
    [
        ("trade", _trade(seller_id=99), "trade.seller_id: 99 is not an agent"),
        ("trade", _trade(buyer_id=99), "trade.buyer_id: 99 is not an agent"),
        ("contract", {"stage": "offered", "buyer_id": 1, "seller_id": 42}, "contract.seller_id: 42"),
        ("contract", {"stage": "offered", "buyer_id": 42, "seller_id": 1}, "contract.buyer_id: 42"),
        ("trade", _trade(quantity=-1), "trade.quantity: expected a non-negative integer"),
        ("trade", _trade(quantity=1.5), "trade.quantity"),
        ("trade", _trade(quantity=True), "trade.quantity"),
        ("trade", _trade(buyer_id=MAX_INT + 1), "trade.buyer_id"),
        ("trade", _trade(price=float("nan")), "trade.price"),
        ("trade", _trade(price=1e16), "trade.price"),
        ("trade", _trade(price=2**60), "trade.price"),
        ("trade", {k: v for k, v in _trade().items() if k != "good"}, "trade.good: missing"),
        ("trade", {k: v for k, v in _trade().items() if k != "seller_id"}, "trade.seller_id: missing"),
        ("contract", {"stage": "offered", "quantity": -3}, "contract.quantity"),
        ("contract", {"stage": "settled", "status": "fulfilled", "good": "w", "buyer_id": 1, "seller_id": 2},
         "contract.quantity: missing in a fulfilled contract"),
    ],
)
def test_the_schema_refuses_it_one_by_one_and_column_wise(event_type: str, content: dict[str, Any], where: str) -> None:
    one, column = _both(event_type, content)
    assert one is not None and where in one
    assert column == (2, one)


def test_valid_contents_pass_and_parties_are_only_checked_against_a_header() -> None:
    assert _both("trade", _trade()) == (None, None)
    assert _both("trade", _trade(quantity=0)) == (None, None)  # zero is a count
    assert content_problem("trade", _trade(seller_id=99), None) is None  # no header: no party list
    assert content_problem("order", {"seller_id": 99, "good": "w"}, AGENTS) is None  # not a party field of orders


def test_every_item_of_a_list_is_checked() -> None:
    session = {"parties": [1, 2, "three"]}
    problem = content_problem("offer", session)
    assert problem is not None and "[2]" in problem
    assert content_problem("offer", {"parties": ["one", 2]}) is not None


def test_an_agent_listed_twice_in_the_header_is_refused() -> None:
    header = _header()
    assert header_problem(header) is None
    header["agents"].append(dict(header["agents"][0]))
    problem = header_problem(header)
    assert problem is not None and "agent_id 1 appears twice" in problem


def _header() -> dict[str, Any]:
    return {"agents": [{"agent_id": 1}, {"agent_id": 2}]}


def test_a_list_of_mixed_types_is_checked_one_by_one() -> None:
    assert contents_problem("trade", [_trade(), "not an object"], AGENTS) == (1, "trade: expected an object, got 'not an object'")


def test_a_column_with_a_non_object_among_objects_is_checked_one_by_one() -> None:
    names = "good price quantity buyer_id seller_id"  # a string holding every required name
    assert contents_problem("trade", [_trade(), names], AGENTS) == (1, f"trade: expected an object, got {names!r}")
