"""A batch's reservations, releases and settlements at once (`Ledger.reserve_each`,
`release_each`, `settle_trades`) against the one-by-one calls they stand for (`reserve_cash`,
`reserve_goods`, `release_cash`, `release_goods`, `settle_trade`): the same balances, journal
and refusals, at the boundaries (exactly what is available) and off the usual case (an unknown
account or good, the house or the same account on both sides, a fee above the proceeds, more
released than reserved)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mesa_llm.market import HOUSE, Ledger, LedgerError, UnknownAccount

GOODS = ("widget", "gadget")


def _ledger() -> Ledger:
    ledger = Ledger(GOODS)
    for i in range(1, 9):
        ledger.open_account(i, cash=1_000 + 100 * i, holdings={"widget": i, "gadget": 2}, credit_limit=50 * (i % 2),
                            short_limit=i % 3)  # fmt: skip
    return ledger


def _state(ledger: Ledger) -> Any:
    accounts = [(a.account_id, a.cash, dict(a.holdings), a.reserved_cash, dict(a.reserved_goods))
                for a in ledger.accounts()]  # fmt: skip
    return accounts, list(ledger._journal)


def _available(ledger: Ledger, account_id: int, good: str, buy: bool) -> int:
    return ledger.available_cash(account_id) if buy else ledger.available_goods(account_id, good)


def _orders(rng: np.random.Generator, ledger: Ledger) -> list[tuple[Any, str, bool, int]]:
    """Orders of every kind: exactly what is available, one more, less, an unknown account or good."""
    orders: list[tuple[Any, str, bool, int]] = []
    for _ in range(40):
        account_id: Any = int(rng.integers(1, 9))
        good, buy = GOODS[int(rng.integers(0, 2))], bool(rng.random() < 0.5)
        kind = int(rng.integers(0, 6))
        amount = int(rng.integers(0, 200)) if buy else int(rng.integers(0, 3))
        if kind == 0:
            amount = _available(ledger, account_id, good, buy)  # all of it (the first such order takes it)
        elif kind == 1:
            amount = _available(ledger, account_id, good, buy) + 1
        elif kind == 2:
            account_id = 99
        elif kind == 3 and not buy:
            good = "nothing"
        orders.append((account_id, good, buy, amount))
    return orders


@pytest.mark.parametrize("seed", range(8))
def test_reserve_each_is_each_reservation_in_turn(seed: int) -> None:
    at_once, one_by_one = _ledger(), _ledger()
    orders = _orders(np.random.default_rng(seed), at_once)
    refused = at_once.reserve_each(*(list(column) for column in zip(*orders, strict=True)))
    want = []
    for index, (account_id, good, buy, amount) in enumerate(orders):
        try:
            if buy:
                one_by_one.reserve_cash(account_id, amount)
            else:
                one_by_one.reserve_goods(account_id, good, amount)
        except LedgerError:
            want.append(index)
    assert refused == want and len(want) >= 3
    assert _state(at_once) == _state(one_by_one)
    # and back: every reservation that was made released at once as one by one
    kept = [order for index, order in enumerate(orders) if index not in set(want)]
    at_once.release_each(*(list(column) for column in zip(*kept, strict=True)))
    for account_id, good, buy, amount in kept:
        if buy:
            one_by_one.release_cash(account_id, amount)
        else:
            one_by_one.release_goods(account_id, good, amount)
    assert _state(at_once) == _state(one_by_one)
    assert all(a.reserved_cash == 0 and not any(a.reserved_goods.values()) for a in at_once.accounts())


@pytest.mark.parametrize(("account_id", "good", "buy", "amount"),
                         [(3, "widget", True, 1), (3, "widget", False, 1), (99, "widget", True, 0),
                          (3, "nothing", False, 0)])  # fmt: skip
def test_release_each_raises_as_the_release_would(account_id: Any, good: str, buy: bool, amount: int) -> None:
    """More than reserved, an unknown account or good: the same error, the releases before it done."""
    at_once, one_by_one = _ledger(), _ledger()
    for ledger in (at_once, one_by_one):
        ledger.reserve_cash(1, 10)
    with pytest.raises(LedgerError) as raised:
        at_once.release_each([1, account_id], ["widget", good], [True, buy], [10, amount])
    one_by_one.release_cash(1, 10)
    with pytest.raises(LedgerError) as wanted:
        if buy:
            one_by_one.release_cash(account_id, amount)
        else:
            one_by_one.release_goods(account_id, good, amount)
    assert (type(raised.value), str(raised.value)) == (type(wanted.value), str(wanted.value))
    assert _state(at_once) == _state(one_by_one)


def _trades(rng: np.random.Generator, ledger: Ledger, good: str, price: int) -> list[tuple[Any, Any, int, int, int]]:
    """Trades with their reservations made: usual ones, some with the house or one account on both
    sides, a fee above the proceeds, a buyer paying exactly all it has."""
    trades = []
    for index in range(30):
        buyer, seller = (int(x) for x in rng.choice(np.arange(1, 9), size=2, replace=False))
        quantity, fee = int(rng.integers(1, 3)), int(rng.integers(0, 4))
        kind = index % 10
        if kind == 1:
            buyer = seller  # a self-trade
        elif kind == 2:
            fee = quantity * price + 5  # more than the proceeds: the seller pays from its cash
        if ledger.available_goods(seller, good) < quantity:
            continue
        reserved = (price + fee) * quantity if kind != 3 else ledger.available_cash(buyer)  # 3: all it has
        if ledger.available_cash(buyer) < reserved:
            continue
        ledger.reserve_cash(buyer, reserved)
        ledger.reserve_goods(seller, good, quantity)
        trades.append((buyer, seller, quantity, reserved, fee))
    return trades


@pytest.mark.parametrize("seed", range(8))
def test_settle_trades_is_each_settlement_in_turn(seed: int) -> None:
    price = 7
    at_once, one_by_one = _ledger(), _ledger()
    trades = _trades(np.random.default_rng(seed), at_once, "widget", price)
    assert _trades(np.random.default_rng(seed), one_by_one, "widget", price) == trades and len(trades) > 10
    buyers, sellers, quantities, reserved, fees = (list(column) for column in zip(*trades, strict=True))
    at_once.settle_trades("widget", price, buyers, sellers, quantities, reserved, fees)
    for buyer, seller, quantity, cash, fee in trades:
        one_by_one.settle_trade(buyer, seller, "widget", quantity, price, buyer_reserved_cash=cash,
                                seller_reserved_goods=quantity, buyer_fee=fee, seller_fee=fee)  # fmt: skip
    assert _state(at_once) == _state(one_by_one)
    at_once.check_invariants()


@pytest.mark.parametrize("case", ["house", "short", "over_reserved", "no_cash", "fee_unpaid"])
def test_settle_trades_refuses_as_the_settlement_would(case: str) -> None:
    """A trade `settle_trade` refuses: the same error, the trades before it settled."""
    at_once, one_by_one = _ledger(), _ledger()
    for ledger in (at_once, one_by_one):
        ledger.reserve_cash(7, 20)
        ledger.reserve_goods(2, "widget", 1)
        ledger.reserve_cash(3, 1_350)
        ledger.reserve_goods(4, "widget", 1)
        ledger.reserve_cash(8, 10)
    buyer, seller, quantity, cash = {"house": (3, HOUSE, 1, 10), "short": (3, 4, 2, 1_350), "over_reserved": (3, 4, 1, 1_351),
                                     "no_cash": (3, 4, 1, 1_350), "fee_unpaid": (8, 4, 1, 10)}[case]  # fmt: skip
    price = 10 if case != "no_cash" else 1_350  # (the first trade's buyer has 1_750)
    # fee_unpaid: the buyer pays 1_710 of its 1_800, the seller 1_690 beyond the proceeds of its 1_400
    fee = 1_700 if case == "fee_unpaid" else 1
    args = ([7, buyer], [2, seller], [1, quantity], [20, cash], [1, fee])
    with pytest.raises(LedgerError) as raised:
        at_once.settle_trades("widget", price, *args)
    one_by_one.settle_trade(7, 2, "widget", 1, price, buyer_reserved_cash=20, seller_reserved_goods=1, buyer_fee=1, seller_fee=1)
    with pytest.raises(LedgerError) as wanted:
        one_by_one.settle_trade(buyer, seller, "widget", quantity, price, buyer_reserved_cash=cash,
                                seller_reserved_goods=quantity, buyer_fee=fee, seller_fee=fee)  # fmt: skip
    assert (type(raised.value), str(raised.value)) == (type(wanted.value), str(wanted.value))
    assert _state(at_once) == _state(one_by_one)


def test_a_self_trade_is_settled_on_its_net_change() -> None:
    """One account on both sides, no cash reserved, a price above its cash: `settle_trade` checks the
    net change (only the fees) and settles it; so does `settle_trades`."""
    at_once, one_by_one = _ledger(), _ledger()
    for ledger in (at_once, one_by_one):
        ledger.reserve_goods(5, "widget", 1)
        ledger.reserve_goods(2, "widget", 1)
    at_once.settle_trades("widget", 1_600, [5, 6], [5, 2], [1, 1], [0, 0], [1, 0])
    for buyer, seller, fee in ((5, 5, 1), (6, 2, 0)):
        one_by_one.settle_trade(buyer, seller, "widget", 1, 1_600, seller_reserved_goods=1, buyer_fee=fee, seller_fee=fee)
    assert _state(at_once) == _state(one_by_one)


def test_accounts_of_is_each_account_in_turn() -> None:
    """`Ledger.accounts_of`: `account` of each id in order (repeats, the house), the live objects; an
    unknown id raises `account`'s error, naming that id."""
    ledger = _ledger()
    ids: list[Any] = [3, 1, 8, 3, HOUSE, 5]
    assert all(got is ledger.account(i) for got, i in zip(ledger.accounts_of(ids), ids, strict=True))
    assert len(ledger.accounts_of(ids)) == len(ids) and ledger.accounts_of([]) == []
    with pytest.raises(UnknownAccount, match="no account 99"):
        ledger.accounts_of([2, 99, 4])
