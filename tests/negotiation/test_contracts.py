"""Tests of contracts: agreements settled through the real ledger, delivery dates and breaches."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mesa_llm.market import Ledger, Money
from mesa_llm.negotiation import (
    Agreement,
    AlternatingOffers,
    ContinuousIssue,
    Contract,
    ContractBook,
    IntegerIssue,
    OutcomeSpace,
    ProtocolError,
    contract_from_agreement,
)

MONEY = Money(0.01)
BUYER, SELLER = 1, 2


def ledger(buyer_cash: int = 100_000, seller_goods: int = 10, seller_cash: int = 0) -> Ledger:
    book = Ledger(["widget"])
    book.open_account(BUYER, cash=buyer_cash)
    book.open_account(SELLER, cash=seller_cash, holdings={"widget": seller_goods})
    return book


def agreement(terms: dict, step: int = 3) -> Agreement:
    return Agreement("s-1", "alternating_offers", BUYER, SELLER, terms, step=step, round=2)


def snapshot(book: Ledger) -> dict:
    return {
        a.account_id: (a.cash, dict(a.holdings), a.reserved_cash, dict(a.reserved_goods))
        for a in book.accounts()
    }


def test_accepted_offer_becomes_a_contract_settled_through_the_ledger() -> None:
    space = OutcomeSpace(
        [ContinuousIssue("price", 0.0, 500.0, tick=0.01), IntegerIssue("quantity", 1, 5)]
    )
    session = AlternatingOffers(
        "s-1", buyer_id=BUYER, seller_id=SELLER, space=space, max_rounds=4, first_mover=SELLER
    )
    session.handle(SELLER, "make_offer", {"terms": {"price": 123.45, "quantity": 3}}, step=0)
    session.advance(0)
    session.handle(BUYER, "accept_offer", {"offer_id": 1}, step=1)
    [agreed] = session.take_agreements()

    contract = contract_from_agreement(agreed, 1, MONEY, default_good="widget")
    assert (contract.price, contract.quantity, contract.value()) == (12345, 3, 37035)
    assert contract.delivery_step == 1 and contract.good == "widget"
    book = ledger()
    contracts = ContractBook()
    contracts.add(contract)
    assert contracts.open_contracts(BUYER) == [contract]
    [result] = contracts.settle_due(book, step=1)
    json.dumps(result)
    assert result["status"] == "fulfilled" and result["penalty"] == 0
    book.check_invariants()
    assert book.account(BUYER).cash == 100_000 - 37035
    assert book.account(SELLER).cash == 37035
    assert book.account(BUYER).holdings["widget"] == 3
    assert book.account(SELLER).holdings["widget"] == 7
    assert contract.status == "fulfilled" and contract.settled_step == 1
    assert contracts.open_contracts(BUYER) == [] and contracts.due(5) == []
    assert contract.to_dict(MONEY)["price"] == 123.45


def test_contract_terms() -> None:
    c = contract_from_agreement(
        agreement({"price": 10, "quantity": 2, "delivery": 4, "colour": "red"}),
        7,
        MONEY,
        default_good="widget",
    )
    assert (c.contract_id, c.price, c.quantity, c.delivery_step) == (7, 1000, 2, 7)
    assert c.terms["colour"] == "red" and c.session_id == "s-1"
    c = contract_from_agreement(
        agreement({"price": 10}), 8, MONEY, default_good=None, delivery_offset=2
    )
    assert (c.quantity, c.delivery_step, c.good) == (1, 5, None)
    with pytest.raises(ValueError, match="no 'price'"):
        contract_from_agreement(agreement({"quantity": 1}), 9, MONEY, default_good="widget")
    with pytest.raises(ValueError, match="not a multiple of the tick"):
        contract_from_agreement(agreement({"price": 1.001}), 9, MONEY, default_good="widget")
    with pytest.raises(ValueError, match="quantity"):
        contract_from_agreement(agreement({"price": 1, "quantity": 0}), 9, MONEY, default_good="w")
    with pytest.raises(ValueError, match="quantity"):
        contract_from_agreement(
            agreement({"price": 1, "quantity": 1.5}), 9, MONEY, default_good="w"
        )


def test_later_delivery_settles_only_when_due() -> None:
    contracts = ContractBook()
    now = contract_from_agreement(agreement({"price": 5}), 1, MONEY, default_good="widget")
    later = contract_from_agreement(
        agreement({"price": 5, "delivery": 3}), 2, MONEY, default_good="widget"
    )
    contracts.add(later)
    contracts.add(now)
    with pytest.raises(ValueError, match="already exists"):
        contracts.add(now)
    assert contracts.due(3) == [now]
    book = ledger()
    contracts.settle_due(book, 3)
    assert now.status == "fulfilled" and later.status == "pending"
    assert contracts.due(5) == []
    assert contracts.due(6) == [later]
    contracts.settle_due(book, 6)
    assert later.status == "fulfilled"
    assert book.account(BUYER).holdings["widget"] == 2
    assert [c.contract_id for c in contracts.all()] == [1, 2]
    with pytest.raises(ValueError, match="already fulfilled"):
        contracts.settle(later, book, 7)
    book.check_invariants()


def test_seller_breach_pays_the_penalty_to_the_buyer() -> None:
    book = ledger(seller_goods=1, seller_cash=5_000)
    reserved_before = book.account(SELLER).cash
    contracts = ContractBook(penalty_rate=0.1, penalty_fixed=100)
    c = contract_from_agreement(
        agreement({"price": 100, "quantity": 2}), 1, MONEY, default_good="widget"
    )
    contracts.add(c)
    result = contracts.settle(c, book, step=3)
    # penalty = 100 + 10% of 20000 = 2100 ticks
    assert result["status"] == "breached" and result["breached_by"] == SELLER
    assert result["penalty"] == 2100 == c.penalty and result["penalty_due"] == 2100
    assert "could not deliver 2 widget: 1 available" in result["reason"]
    assert book.account(SELLER).cash == reserved_before - 2100
    assert book.account(BUYER).cash == 100_000 + 2100
    assert book.account(SELLER).holdings["widget"] == 1  # no goods moved
    book.check_invariants()


def test_buyer_breach_is_capped_at_its_unreserved_cash() -> None:
    book = ledger(buyer_cash=1_000)
    book.reserve_cash(BUYER, 400)  # earmarked for an order: never touched
    contracts = ContractBook(penalty_rate=0.5)
    c = contract_from_agreement(agreement({"price": 100}), 1, MONEY, default_good="widget")
    contracts.add(c)
    result = contracts.settle(c, book, step=3)
    assert result["breached_by"] == BUYER and result["penalty_due"] == 5000
    assert result["penalty"] == 600
    assert book.account(BUYER).cash == 400 and book.account(BUYER).reserved_cash == 400
    assert book.account(SELLER).cash == 600
    assert book.account(SELLER).holdings["widget"] == 10
    book.check_invariants()


def test_reserved_goods_are_not_available_for_delivery() -> None:
    book = ledger(seller_goods=2)
    book.reserve_goods(SELLER, "widget", 2)
    contracts = ContractBook(penalty_rate=0.0)
    c = contract_from_agreement(agreement({"price": 1}), 1, MONEY, default_good="widget")
    contracts.add(c)
    result = contracts.settle(c, book, step=3)
    assert result["breached_by"] == SELLER and result["penalty"] == 0
    book.check_invariants()


def test_service_contract_moves_only_cash() -> None:
    book = ledger(seller_goods=0)
    contracts = ContractBook()
    c = contract_from_agreement(agreement({"price": 20}), 1, MONEY, default_good=None)
    contracts.add(c)
    assert contracts.settle(c, book, step=3)["status"] == "fulfilled"
    assert book.account(SELLER).cash == 2000
    book.check_invariants()


def _one(contracts: ContractBook, price: float, quantity: int = 1) -> Contract:
    c = contract_from_agreement(
        agreement({"price": price, "quantity": quantity}), len(contracts) + 1, MONEY, default_good="widget"
    )
    contracts.add(c)
    return c


def test_buyer_with_exactly_the_value_pays_and_one_tick_less_breaches() -> None:
    book = ledger(buyer_cash=2 * 1234)
    contracts = ContractBook(penalty_rate=0.0)
    assert contracts.settle(_one(contracts, 12.34, 2), book, step=1)["status"] == "fulfilled"
    assert book.account(BUYER).cash == 0
    book = ledger(buyer_cash=2 * 1234 - 1)
    result = contracts.settle(_one(contracts, 12.34, 2), book, step=1)
    assert result["breached_by"] == BUYER and result["reason"] == f"buyer {BUYER} could not pay 2468: 2467 available"


def test_seller_with_exactly_the_quantity_delivers_and_one_less_breaches() -> None:
    contracts = ContractBook()
    book = ledger(seller_goods=3)
    assert contracts.settle(_one(contracts, 1.0, 3), book, step=1)["status"] == "fulfilled"
    book = ledger(seller_goods=3)
    assert contracts.settle(_one(contracts, 1.0, 4), book, step=1)["breached_by"] == SELLER


def test_buyer_on_a_credit_line_pays_the_contract_but_a_breach_penalty_never_draws_on_credit() -> None:
    book = Ledger(["widget"])
    book.open_account(BUYER, cash=300, credit_limit=10_000)
    book.open_account(SELLER, holdings={"widget": 1})
    contracts = ContractBook(penalty_rate=0.5)
    # the credit line is there to pay for goods: a contract within it is fulfilled
    assert contracts.settle(_one(contracts, 50.0), book, step=1)["status"] == "fulfilled"
    assert book.account(BUYER).cash == 300 - 5_000
    book.check_invariants()
    # in debt on that line, it breaches a contract beyond the rest of it, and pays nothing
    book.issue(SELLER, holdings={"widget": 1})
    result = contracts.settle(_one(contracts, 100.0), book, step=2)
    assert result["breached_by"] == BUYER and result["penalty"] == 0
    assert book.account(BUYER).cash == -4_700
    book.check_invariants()
    # a buyer whose cash and credit cannot cover a contract breaches, and pays no penalty out of credit
    book2 = Ledger(["widget"])
    book2.open_account(BUYER, cash=100, credit_limit=10_000)
    book2.open_account(SELLER, holdings={"widget": 1})
    result = contracts.settle(_one(contracts, 200.0), book2, step=3)
    assert result["breached_by"] == BUYER and result["penalty_due"] == 10_000
    assert result["penalty"] == 100  # its own cash, not the 10_000 of credit
    assert book2.account(BUYER).cash == 0
    book2.check_invariants()


def test_penalty_rounds_half_up_and_adds_the_fixed_part() -> None:
    contracts = ContractBook(penalty_rate=0.1, penalty_fixed=7)
    c = Contract(1, "s", "p", BUYER, SELLER, "widget", 1, 5, 0)  # 10% of 5 ticks = 0.5 -> 1
    assert contracts.penalty_for(c) == 8
    c.price = 4  # 0.4 -> 0
    assert contracts.penalty_for(c) == 7


def test_a_party_cannot_accept_its_own_standing_offer() -> None:
    space = OutcomeSpace([ContinuousIssue("price", 0.0, 500.0, tick=0.01)])
    session = AlternatingOffers("s-1", buyer_id=BUYER, seller_id=SELLER, space=space, max_rounds=6, first_mover=SELLER)
    session.handle(SELLER, "make_offer", {"terms": {"price": 100.0}}, step=0)
    session.advance(0)  # the buyer's turn, unused
    session.advance(1)  # back to the seller, its own offer still standing
    assert session.turn() == SELLER and session.standing is not None
    assert "accept_offer" not in session.allowed(SELLER)
    with pytest.raises(ProtocolError, match=f"no standing offer from agent {BUYER} to accept"):
        session.handle(SELLER, "accept_offer", {"offer_id": 1}, step=2)
    assert session.status == "open" and session.take_agreements() == []


@settings(max_examples=200, deadline=None)
@given(
    buyer_cash=st.integers(0, 10_000),
    buyer_reserved=st.integers(0, 10_000),
    seller_cash=st.integers(0, 10_000),
    seller_reserved=st.integers(0, 10_000),
    seller_goods=st.integers(0, 5),
    seller_goods_reserved=st.integers(0, 5),
    price=st.integers(0, 5_000),
    quantity=st.integers(1, 5),
    rate=st.floats(0, 3, allow_nan=False),
    fixed=st.integers(0, 5_000),
    service=st.booleans(),
)
@example(
    buyer_cash=0, buyer_reserved=0, seller_cash=0, seller_reserved=0, seller_goods=0,
    seller_goods_reserved=0, price=97, quantity=5, rate=1.9, fixed=0, service=False,
)  # rate x price x quantity rounds to 921.4999.. in that order, rate x value to 921.5
def test_settlement_never_breaks_the_ledger(
    buyer_cash: int,
    buyer_reserved: int,
    seller_cash: int,
    seller_reserved: int,
    seller_goods: int,
    seller_goods_reserved: int,
    price: int,
    quantity: int,
    rate: float,
    fixed: int,
    service: bool,
) -> None:
    book = Ledger(["widget"])
    book.open_account(BUYER, cash=buyer_cash)
    book.open_account(SELLER, cash=seller_cash, holdings={"widget": seller_goods})
    book.reserve_cash(BUYER, min(buyer_reserved, buyer_cash))
    book.reserve_cash(SELLER, min(seller_reserved, seller_cash))
    book.reserve_goods(SELLER, "widget", min(seller_goods_reserved, seller_goods))
    before = snapshot(book)
    total_cash = book.total_cash()
    total_goods = book.total_goods("widget")

    contracts = ContractBook(penalty_rate=rate, penalty_fixed=fixed)
    contract = Contract(
        1,
        "s",
        "alternating_offers",
        BUYER,
        SELLER,
        None if service else "widget",
        quantity,
        price,
        0,
        {},
    )
    contracts.add(contract)
    result = contracts.settle(contract, book, step=0)

    book.check_invariants()
    assert book.total_cash() == total_cash and book.total_goods("widget") == total_goods
    for account in book.accounts():
        assert account.cash >= 0 and all(q >= 0 for q in account.holdings.values())
        # reservations are never touched
        assert account.reserved_cash == before[account.account_id][2]
        assert account.reserved_goods == before[account.account_id][3]
    moved_cash = book.account(BUYER).cash - before[BUYER][0]
    moved_goods = book.account(BUYER).holdings["widget"] - before[BUYER][1]["widget"]
    if result["status"] == "fulfilled":
        assert moved_cash == -price * quantity
        assert moved_goods == (0 if service else quantity)
    else:
        assert moved_goods == 0
        paid = result["penalty"]
        # half up, of rate x value as the book computes it ((rate x price) x quantity can round
        # apart at .5: 1.9 x 97 x 5 = 921.4999.. but 1.9 x 485 = 921.5)
        due = fixed + math.floor(rate * (price * quantity) + 0.5)
        assert 0 <= paid <= result["penalty_due"] == due
        if result["breached_by"] == BUYER:
            assert moved_cash == -paid
            assert paid == min(result["penalty_due"], before[BUYER][0] - before[BUYER][2])
        else:
            assert not service
            assert moved_cash == paid
            assert paid == min(result["penalty_due"], before[SELLER][0] - before[SELLER][2])
