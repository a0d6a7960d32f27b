"""Tests of the integer double-entry ledger, alone and driven by the order book and clearing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from mesa_llm.actions import PlaceOrder
from mesa_llm.agents.roles import Role
from mesa_llm.market import (
    HOUSE,
    ConservationError,
    InsufficientFunds,
    InsufficientGoods,
    Ledger,
    LedgerError,
    Lifetime,
    Money,
    Side,
    UnknownAccount,
)
from mesa_llm.world.exchange import Exchange, RejectedAction


def snapshot(ledger: Ledger) -> list[object]:
    return [
        (
            a.account_id,
            a.cash,
            dict(a.holdings),
            a.reserved_cash,
            dict(a.reserved_goods),
        )
        for a in ledger.accounts()
    ] + [ledger.journal_size]


@pytest.fixture
def ledger() -> Ledger:
    ledger = Ledger(["apple", "pear"])
    ledger.open_account(1, cash=1_000, holdings={"apple": 5})
    ledger.open_account(2, cash=200, holdings={"apple": 10, "pear": 3})
    return ledger


def test_open_accounts_issue_the_endowment(ledger: Ledger) -> None:
    assert ledger.account(HOUSE).cash == 0
    assert ledger.total_cash() == 1_200
    assert ledger.total_goods("apple") == 15
    assert ledger.issued_cash == 1_200
    assert [a.account_id for a in ledger.accounts()] == [HOUSE, 1, 2]
    ledger.check_invariants()
    with pytest.raises(LedgerError, match="already exists"):
        ledger.open_account(1)
    with pytest.raises(UnknownAccount, match="99"):
        ledger.account(99)
    with pytest.raises(LedgerError, match="banana"):
        ledger.available_goods(1, "banana")


def test_amounts_must_be_non_negative_ints(ledger: Ledger) -> None:
    with pytest.raises(ValueError):
        ledger.transfer_cash(1, 2, -5)
    with pytest.raises(TypeError):
        ledger.transfer_cash(1, 2, 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ledger.reserve_cash(1, True)
    with pytest.raises(ValueError):
        ledger.open_account(3, cash=-1)
    assert 3 not in ledger
    ledger.transfer_cash(1, 2, np.int64(5))  # type: ignore[arg-type]  # numpy ints are converted
    assert type(ledger.account(2).cash) is int and ledger.account(2).cash == 205


def test_reservations_and_their_errors(ledger: Ledger) -> None:
    ledger.reserve_cash(1, 600)
    assert ledger.available_cash(1) == 400
    with pytest.raises(InsufficientFunds) as info:
        ledger.reserve_cash(1, 401)
    assert "1" in str(info.value) and "401" in str(info.value) and "400" in str(info.value)
    with pytest.raises(LedgerError, match="700"):
        ledger.release_cash(1, 700)
    ledger.release_cash(1, 100)
    assert ledger.account(1).reserved_cash == 500
    ledger.reserve_goods(2, "apple", 10)
    with pytest.raises(InsufficientGoods, match=r"2.*1 apple.*0 available"):
        ledger.reserve_goods(2, "apple", 1)
    with pytest.raises(LedgerError, match="11"):
        ledger.release_goods(2, "apple", 11)
    # Reserved cash cannot be transferred away.
    with pytest.raises(InsufficientFunds, match="501"):
        ledger.transfer_cash(1, 2, 501)
    ledger.check_invariants()


def test_settle_trade_moves_both_legs_and_fees(ledger: Ledger) -> None:
    ledger.reserve_cash(1, 3 * 12 + 3)  # limit 12, fee 1 per unit
    ledger.reserve_goods(2, "apple", 3)
    ledger.settle_trade(
        1,
        2,
        "apple",
        3,
        10,
        buyer_reserved_cash=3 * 12 + 3,
        seller_reserved_goods=3,
        buyer_fee=3,
        seller_fee=2,
    )
    buyer, seller, house = ledger.account(1), ledger.account(2), ledger.account(HOUSE)
    assert (buyer.cash, buyer.holdings["apple"], buyer.reserved_cash) == (1_000 - 33, 8, 0)
    assert (seller.cash, seller.holdings["apple"], seller.reserved_goods["apple"]) == (228, 7, 0)
    assert house.cash == 5
    assert ledger.total_cash() == 1_200
    kinds = [entry[0] for entry in ledger.journal()]
    assert kinds.count("trade_cash") == 1 and kinds.count("fee") == 2
    assert ledger.journal(ledger.journal_size - 1)[0][:5] == ("fee", 2, HOUSE, None, 2)
    ledger.check_invariants()


def test_settlement_checks_the_buyers_fee_at_the_boundary() -> None:
    book = Ledger(["apple"])
    book.open_account(1, cash=101)
    book.open_account(2, holdings={"apple": 2})
    before = snapshot(book)
    with pytest.raises(InsufficientFunds, match=r"account 1 cannot pay 102 .*\(fee 2\): 101 available"):
        book.settle_trade(1, 2, "apple", 1, 100, buyer_fee=2)
    assert snapshot(book) == before
    book.settle_trade(1, 2, "apple", 1, 100, buyer_fee=1)  # exactly enough, fee included
    assert book.account(1).cash == 0 and book.account(HOUSE).cash == 1
    book.check_invariants()


def test_failing_settlement_changes_nothing(ledger: Ledger) -> None:
    ledger.reserve_cash(2, 150)
    ledger.reserve_goods(1, "apple", 2)
    before = snapshot(ledger)
    with pytest.raises(InsufficientFunds, match=r"account 2 .*pay 300"):
        # buyer 2 has 200 cash, 150 of it reserved for this very fill: 300 is too much.
        ledger.settle_trade(2, 1, "apple", 3, 100, buyer_reserved_cash=150)
    assert snapshot(ledger) == before
    with pytest.raises(InsufficientGoods, match=r"account 1 .*deliver 6 apple.*5 available"):
        ledger.settle_trade(2, 1, "apple", 6, 1, seller_reserved_goods=2)
    assert snapshot(ledger) == before
    with pytest.raises(LedgerError, match="release"):
        ledger.settle_trade(2, 1, "apple", 1, 1, buyer_reserved_cash=151)
    assert snapshot(ledger) == before
    ledger.open_account(3, holdings={"pear": 1})
    with pytest.raises(InsufficientFunds, match="fee 5"):
        # A seller fee above the proceeds is paid from cash the seller does not have.
        ledger.settle_trade(1, 3, "pear", 1, 1, seller_fee=5)
    ledger.check_invariants()


def test_credit_and_short_limits() -> None:
    ledger = Ledger(["gold"])
    ledger.open_account("bank", cash=0, credit_limit=100)
    ledger.open_account("trader", cash=50, holdings={"gold": 0}, short_limit=2)
    assert ledger.available_cash("bank") == 100
    ledger.reserve_goods("trader", "gold", 2)
    ledger.settle_trade("bank", "trader", "gold", 2, 40, seller_reserved_goods=2)
    assert ledger.account("bank").cash == -80 and ledger.account("trader").holdings["gold"] == -2
    ledger.check_invariants()
    with pytest.raises(InsufficientFunds, match="bank"):
        ledger.transfer_cash("bank", "trader", 21)
    with pytest.raises(InsufficientGoods, match="trader"):
        ledger.transfer_goods("trader", "bank", "gold", 1)
    ledger.transfer_cash("bank", "trader", 20, memo="fine")
    assert ledger.account("bank").cash == -100
    assert ledger.journal(ledger.journal_size - 1) == [
        ("transfer_cash", "bank", "trader", None, 20, "fine")
    ]
    ledger.check_invariants()


def test_available_cash_is_cash_minus_reserved_plus_credit() -> None:
    ledger = Ledger(["gold"])
    ledger.open_account("a", cash=100, credit_limit=50)
    ledger.reserve_cash("a", 30)
    account = ledger.account("a")
    assert account.available_cash() == ledger.available_cash("a") == 120
    assert account.available_cash(released=10) == 130  # a reservation about to be given back
    assert account.available_cash(credit=False) == 70  # own cash only (fines, penalties)
    assert account.available_cash(released=30, credit=False) == 100
    ledger.reserve_cash("a", 120)  # exactly what is available
    with pytest.raises(InsufficientFunds, match="0 available"):
        ledger.reserve_cash("a", 1)
    assert account.available_cash(credit=False) == -50  # reserved into the credit line


def test_self_trade_and_house_trade() -> None:
    ledger = Ledger(["x"])
    ledger.open_account(1, cash=10, holdings={"x": 1})
    ledger.reserve_goods(1, "x", 1)
    ledger.reserve_cash(1, 5)
    ledger.settle_trade(
        1, 1, "x", 1, 5, buyer_reserved_cash=5, seller_reserved_goods=1, buyer_fee=1, seller_fee=1
    )
    assert (ledger.account(1).cash, ledger.account(1).holdings["x"]) == (8, 1)
    assert ledger.account(HOUSE).cash == 2
    ledger.settle_trade(HOUSE, 1, "x", 1, 2, seller_fee=1)  # the house buys, fee to itself
    assert ledger.account(HOUSE).cash == 1 and ledger.account(HOUSE).holdings["x"] == 1
    ledger.issue(1, holdings={"x": 1})
    with pytest.raises(InsufficientFunds, match="house"):
        ledger.settle_trade(HOUSE, 1, "x", 1, 5)
    ledger.check_invariants()


def test_issue_and_retire() -> None:
    ledger = Ledger(["x"])
    ledger.open_account(1, cash=10, holdings={"x": 4})
    ledger.issue(1, cash=5, holdings={"x": 1}, memo="shock")
    ledger.reserve_cash(1, 12)
    with pytest.raises(InsufficientFunds, match="retire 4"):
        ledger.retire(1, cash=4)
    with pytest.raises(InsufficientGoods):
        ledger.retire(1, cash=1, holdings={"x": 6})
    assert ledger.account(1).cash == 15  # the failed retire changed nothing
    ledger.retire(1, cash=3, holdings={"x": 5})
    assert ledger.total_cash() == 12 and ledger.total_goods("x") == 0
    with pytest.raises(ValueError):
        ledger.issue(1, cash=-1)
    ledger.check_invariants()


def test_check_invariants_names_what_broke(ledger: Ledger) -> None:
    ledger.account(1).cash += 1
    with pytest.raises(ConservationError, match="total cash"):
        ledger.check_invariants()
    ledger.account(1).cash -= 1
    ledger.account(2).holdings["pear"] -= 4
    ledger.account(1).holdings["pear"] += 4
    with pytest.raises(ConservationError, match=r"account 2 .*pear"):
        ledger.check_invariants()
    ledger.account(2).holdings["pear"] += 4
    ledger.account(1).holdings["pear"] -= 4
    ledger.account(1).reserved_cash = 2_000
    with pytest.raises(ConservationError, match="reserved cash"):
        ledger.check_invariants()


# -- stateful: the real exchange (place, cancel, clear, settle) over the ledger -------------

GOODS = ("a", "b")
FEE = 1  # per unit, paid by both sides
MAX_ORDERS = 4
PLACE_GOODS = st.sampled_from(["a", "a", "a", "b"])  # mostly one good, so orders meet


class ExchangeMachine(RuleBasedStateMachine):
    """Orders reserve, clearing settles, cancel and expiry release, through the real Exchange;
    shocks and transfers move the ledger between steps. Nothing leaks, nothing is stuck."""

    def __init__(self) -> None:
        super().__init__()
        self.exchange = Exchange(
            [(g, 3, 2, 6) for g in GOODS], Money(1), fee_per_unit=FEE, max_orders_per_step=MAX_ORDERS
        )
        self.ledger = self.exchange.ledger
        self.step = 1
        self.agents: list[int] = []
        # what the economy should hold, kept by the test independently of the ledger's counters
        self.cash = 0
        self.goods = dict.fromkeys(GOODS, 0)
        self.fees = 0
        self.limits: dict[int, int] = {}  # order id -> limit price

    @initialize(
        endowments=st.lists(
            st.tuples(st.integers(20, 300), st.integers(0, 8), st.integers(0, 8)),
            min_size=2,
            max_size=5,
        )
    )
    def open_accounts(self, endowments: list[tuple[int, int, int]]) -> None:
        for agent, (cash, a, b) in enumerate(endowments):
            self.exchange.open_account(agent, cash, {"a": a, "b": b})
            self.agents.append(agent)
            self.cash += cash
            self.goods["a"] += a
            self.goods["b"] += b

    @rule(
        data=st.data(),
        good=PLACE_GOODS,
        side=st.sampled_from(["buy", "sell"]),
        price=st.sampled_from([1, 2, 3, 3, 4, 4, 5, 6, 7]),  # 1 and 7: a tick past the range 2..6
        qty=st.integers(1, 5),
        lifetime=st.sampled_from(["step", "gtc"]),
    )
    def place(self, data: st.DataObject, good: str, side: str, price: int, qty: int, lifetime: str) -> None:
        self._place(data.draw(st.sampled_from(self.agents)), good, side, price, qty, lifetime)

    @rule(data=st.data(), price=st.integers(2, 6), qty=st.integers(1, 3))
    def place_crossing(self, data: st.DataObject, price: int, qty: int) -> None:
        """A buy and a sell that meet (so that clearings trade often)."""
        buyer, seller = data.draw(st.permutations(self.agents))[:2]
        self._place(buyer, "a", "buy", price + data.draw(st.integers(0, 1)), qty, "step")
        self._place(seller, "a", "sell", price, qty, data.draw(st.sampled_from(["step", "gtc"])))

    def _place(self, agent: int, good: str, side: str, price: int, qty: int, lifetime: str) -> None:
        action = PlaceOrder(good=good, side=side, price=float(price), quantity=qty, lifetime=lifetime)  # type: ignore[arg-type]
        before = snapshot(self.ledger)
        account = self.ledger.account(agent)
        reserved = (account.reserved_cash, account.reserved_goods[good])
        try:
            order = self.exchange.place_order(agent, Role.TRADER, action, self.step)
        except RejectedAction as exc:
            event(f"rejected: {exc.reason.split(':')[0].split(' ')[0]}")
            assert snapshot(self.ledger) == before
            return
        assert 2 <= price <= 6
        self.limits[order.order_id] = order.price
        if side == "buy":
            assert account.reserved_cash - reserved[0] == (price + FEE) * qty
        else:
            assert account.reserved_goods[good] - reserved[1] == qty

    @precondition(lambda self: any(self.exchange.open_orders(a) for a in self.agents))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        agent = data.draw(st.sampled_from([a for a in self.agents if self.exchange.open_orders(a)]))
        order = data.draw(st.sampled_from(self.exchange.open_orders(agent)))
        self.exchange.cancel_order(agent, order.order_id)
        assert order.order_id not in {o.order_id for o in self.exchange.open_orders(agent)}

    @precondition(lambda self: any(self.exchange.open_orders(a) for a in self.agents))
    @rule()
    def clear(self) -> None:
        """One market step: clear every good (settling fills, expiring step orders)."""
        house_before = self.ledger.account(HOUSE).cash
        holdings_before = {(a, g): self.ledger.account(a).holdings[g] for a in self.agents for g in GOODS}
        clearings = self.exchange.clear(self.step)
        volume = 0
        for clearing in clearings:
            event("clearing traded" if clearing.volume else "clearing without trade")
            assert sum(t.quantity for t in clearing.trades) == clearing.volume
            volume += clearing.volume
            for trade in clearing.trades:
                assert trade.price == clearing.price
                # no fill beyond either limit
                assert self.limits[trade.buy_order_id] >= trade.price >= self.limits[trade.sell_order_id]
            bought = sum(self.ledger.account(a).holdings[clearing.good] - holdings_before[a, clearing.good] for a in self.agents)
            assert bought == 0  # units bought == units sold
        assert self.ledger.account(HOUSE).cash - house_before == 2 * FEE * volume
        self.fees += 2 * FEE * volume
        # step orders never outlive their step
        assert all(o.lifetime is Lifetime.GTC for a in self.agents for o in self.exchange.open_orders(a))
        self.step += 1
        self.exchange.begin_step()

    @rule(data=st.data(), cash=st.integers(0, 50), qty=st.integers(0, 3), good=st.sampled_from(GOODS))
    def issue_or_retire(self, data: st.DataObject, cash: int, qty: int, good: str) -> None:
        agent = data.draw(st.sampled_from(self.agents))
        if data.draw(st.booleans()):
            self.ledger.issue(agent, cash=cash, holdings={good: qty}, memo="shock")
            self.cash += cash
            self.goods[good] += qty
            return
        before = snapshot(self.ledger)
        try:
            self.ledger.retire(agent, cash=cash, holdings={good: qty})
        except (InsufficientFunds, InsufficientGoods):
            assert snapshot(self.ledger) == before
            return
        self.cash -= cash
        self.goods[good] -= qty

    @rule(data=st.data(), cash=st.integers(0, 80), qty=st.integers(0, 3), good=st.sampled_from(GOODS))
    def transfer(self, data: st.DataObject, cash: int, qty: int, good: str) -> None:
        src = data.draw(st.sampled_from(self.agents))
        dst = data.draw(st.sampled_from(self.agents))
        before = snapshot(self.ledger)
        try:
            self.ledger.transfer_cash(src, dst, cash)
        except InsufficientFunds:
            assert snapshot(self.ledger) == before
        before = snapshot(self.ledger)
        try:
            self.ledger.transfer_goods(src, dst, good, qty)
        except InsufficientGoods:
            assert snapshot(self.ledger) == before

    @invariant()
    def ledger_invariants_hold(self) -> None:
        self.ledger.check_invariants()

    @invariant()
    def conservation(self) -> None:
        assert self.ledger.total_cash() == self.cash
        assert self.ledger.account(HOUSE).cash == self.fees
        for good in GOODS:
            assert self.ledger.total_goods(good) == self.goods[good]

    @invariant()
    def nothing_negative(self) -> None:
        for account in self.ledger.accounts():
            assert account.cash >= 0
            assert all(v >= 0 for v in account.holdings.values())

    @invariant()
    def reservations_match_the_open_orders(self) -> None:
        """Every reservation is exactly what the open orders need: none without an open order."""
        for agent in self.agents:
            orders = self.exchange.open_orders(agent)
            account = self.ledger.account(agent)
            buys = [o for o in orders if o.side is Side.BUY]
            if account.reserved_cash:
                assert buys, f"agent {agent} has {account.reserved_cash} reserved and no open buy order"
            assert account.reserved_cash == sum((o.price + FEE) * o.remaining for o in buys)
            for good in GOODS:
                sells = [o for o in orders if o.side is Side.SELL and o.good == good]
                assert account.reserved_goods[good] == sum(o.remaining for o in sells)
        assert self.ledger.account(HOUSE).reserved_cash == 0


ExchangeMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
TestExchangeMachine = ExchangeMachine.TestCase


@pytest.mark.parametrize("method", ["reserve_cash", "release_cash", "reserve_goods", "release_goods"])
def test_reservations_check_their_amount_account_and_good_on_the_fast_path(ledger: Ledger, method: str) -> None:
    """A plain non-negative int skips the amount check: every other amount, an unknown account
    and an unknown good are still refused, and a refused call changes nothing."""
    goods = method.endswith("goods")

    def call(account: object, amount: object, good: str = "apple") -> None:
        args = (account, good, amount) if goods else (account, amount)
        getattr(ledger, method)(*args)

    ledger.reserve_cash(1, 10)
    ledger.reserve_goods(1, "apple", 2)
    before = snapshot(ledger)
    for amount, error in ((-1, ValueError), (True, TypeError), (1.0, TypeError), ("1", TypeError)):
        with pytest.raises(error):
            call(1, amount)
    with pytest.raises(UnknownAccount, match="99"):
        call(99, 1)
    with pytest.raises(UnknownAccount):
        call(None, 1)
    if goods:
        with pytest.raises(LedgerError, match="banana"):
            call(1, 1, "banana")
    assert snapshot(ledger) == before
    call(1, np.int64(1))  # numpy ints are converted
    account = ledger.account(1)
    assert type(account.reserved_cash) is int and type(account.reserved_goods["apple"]) is int
    ledger.check_invariants()


def test_settle_trade_checks_its_amounts_on_the_fast_path(ledger: Ledger) -> None:
    """Plain non-negative ints settle as they are; numpy ints are converted; a negative, a float or
    a bool in any of the six amounts is refused before anything moves."""
    ledger.reserve_cash(1, 20)
    ledger.reserve_goods(2, "apple", 4)
    amounts = {"buyer_reserved_cash": 10, "seller_reserved_goods": 2, "buyer_fee": 1, "seller_fee": 1}
    before = snapshot(ledger)
    for name in ("quantity", "price", *amounts):
        for bad, error in ((-1, ValueError), (1.0, TypeError), (True, TypeError)):
            args = {"quantity": 2, "price": 5, **amounts, name: bad}
            quantity, price = args.pop("quantity"), args.pop("price")
            with pytest.raises(error):
                ledger.settle_trade(1, 2, "apple", quantity, price, **args)
    assert snapshot(ledger) == before
    ledger.settle_trade(1, 2, "apple", np.int64(2), np.int64(5), **amounts)  # type: ignore[arg-type]
    assert type(ledger.account(1).cash) is int and ledger.account(1).cash == 1_000 - 10 - 1
    ledger.settle_trade(1, 2, "apple", 1, 5, buyer_reserved_cash=5, seller_reserved_goods=1)
    assert ledger.account(2).holdings["apple"] == 7 and ledger.account(HOUSE).cash == 2
    ledger.check_invariants()
