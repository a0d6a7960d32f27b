"""The exchange's rules, each at its boundary: price range, caps and floors, position limits,
suspensions, orders per step, fees, reservations released at the limit, clearing and settlement."""

from __future__ import annotations

import pytest

from mesa_llm.actions import PlaceOrder
from mesa_llm.agents.roles import Role
from mesa_llm.market import HOUSE, Money
from mesa_llm.world.exchange import Exchange, RejectedAction
from mesa_llm.world.regulation import MarketRules

MONEY = Money(0.01)
# widget: reference 100.00, admissible 1.00 .. 200.00 (ticks of 0.01)
GOODS = [("widget", 10_000, 100, 20_000)]
B, S, T = 1, 2, 3  # a buyer, a seller, a trader


def exchange(
    fee: float = 0.0,
    max_orders: int = 20,
    rules: MarketRules | None = None,
    buyer: tuple[float, int] = (1_000.0, 0),
) -> Exchange:
    """Buyer B (``buyer`` = cash, widgets), seller S (10 widgets), trader T (1000.00, 10 widgets)."""
    ex = Exchange(GOODS, MONEY, fee_per_unit=MONEY.to_ticks(fee), max_orders_per_step=max_orders, rules=rules)
    for agent, (cash, goods) in {B: buyer, S: (0.0, 10), T: (1_000.0, 10)}.items():
        ex.open_account(agent, MONEY.to_ticks(cash), {"widget": goods})
    return ex


def buy(price: float, quantity: int = 1, lifetime: str = "step") -> PlaceOrder:
    return PlaceOrder(good="widget", side="buy", price=price, quantity=quantity, lifetime=lifetime)  # type: ignore[arg-type]


def sell(price: float, quantity: int = 1, lifetime: str = "step") -> PlaceOrder:
    return PlaceOrder(good="widget", side="sell", price=price, quantity=quantity, lifetime=lifetime)  # type: ignore[arg-type]


def rejected(ex: Exchange, agent: int, role: Role, action: PlaceOrder, step: int = 1) -> str:
    """The reason the exchange gives for refusing ``action``; the ledger must not move."""
    account = ex.ledger.account(agent)
    before = (account.cash, account.reserved_cash, dict(account.reserved_goods), len(ex.book))
    with pytest.raises(RejectedAction) as info:
        ex.place_order(agent, role, action, step)
    assert (account.cash, account.reserved_cash, dict(account.reserved_goods), len(ex.book)) == before
    return info.value.reason


# ----------------------------------------------------------------------------- reservations


def test_buyer_reservation_is_released_at_its_limit_not_the_clearing_price() -> None:
    ex = exchange()
    ex.place_order(B, Role.BUYER, buy(120.0, 2), step=1)
    ex.place_order(S, Role.SELLER, sell(80.0, 2), step=1)
    assert ex.ledger.account(B).reserved_cash == 24_000
    [clearing] = ex.clear(step=1)
    assert clearing.price == 10_000 and clearing.volume == 2  # k = 0.5: halfway between the limits
    buyer = ex.ledger.account(B)
    assert buyer.reserved_cash == 0  # nothing stuck: the 2 * 20.00 the better price saved is free
    assert buyer.cash == 100_000 - 20_000
    assert ex.ledger.available_cash(B) == 80_000
    ex.ledger.check_invariants()


def test_partial_fill_keeps_exactly_the_rest_reserved_at_the_limit() -> None:
    ex = exchange(fee=0.5)
    ex.place_order(B, Role.BUYER, buy(120.0, 3, "gtc"), step=1)
    ex.place_order(S, Role.SELLER, sell(80.0, 1), step=1)
    [clearing] = ex.clear(step=1)
    assert clearing.price is not None and 8_000 <= clearing.price <= 12_000
    [order] = ex.open_orders(B)
    assert order.remaining == 2
    buyer = ex.ledger.account(B)
    assert buyer.reserved_cash == (12_000 + 50) * 2
    assert buyer.cash == 100_000 - clearing.price - 50
    ex.cancel_order(B, order.order_id)
    assert buyer.reserved_cash == 0
    ex.ledger.check_invariants()


def test_unfilled_step_orders_expire_and_release_gtc_orders_rest() -> None:
    ex = exchange()
    ex.place_order(B, Role.BUYER, buy(50.0, 2), step=1)
    ex.place_order(T, Role.TRADER, buy(40.0, 1, "gtc"), step=1)
    ex.place_order(S, Role.SELLER, sell(90.0, 3), step=1)
    [clearing] = ex.clear(step=1)
    assert clearing.volume == 0 and clearing.price is None
    assert ex.open_orders(B) == [] and ex.open_orders(S) == []
    assert ex.ledger.account(B).reserved_cash == 0
    assert ex.ledger.account(S).reserved_goods["widget"] == 0
    assert [o.price for o in ex.open_orders(T)] == [4_000]
    assert ex.ledger.account(T).reserved_cash == 4_000


def test_seller_goods_are_reserved_and_delivered() -> None:
    ex = exchange()
    ex.place_order(S, Role.SELLER, sell(80.0, 4), step=1)
    assert ex.ledger.account(S).reserved_goods["widget"] == 4
    assert "insufficient goods" in rejected(ex, S, Role.SELLER, sell(80.0, 7))
    ex.place_order(S, Role.SELLER, sell(80.0, 6), step=1)  # exactly the rest
    ex.place_order(B, Role.BUYER, buy(100.0, 3), step=1)
    ex.clear(step=1)
    assert ex.ledger.account(S).holdings["widget"] == 7
    assert ex.ledger.account(S).reserved_goods["widget"] == 0
    assert ex.ledger.account(B).holdings["widget"] == 3


def test_cancel_releases_only_ones_own_order() -> None:
    ex = exchange()
    order = ex.place_order(B, Role.BUYER, buy(100.0, 2, "gtc"), step=1)
    with pytest.raises(RejectedAction, match="not one of your open orders"):
        ex.cancel_order(T, order.order_id)
    assert ex.ledger.account(B).reserved_cash == 20_000
    ex.cancel_order(B, order.order_id)
    assert ex.ledger.account(B).reserved_cash == 0 and ex.open_orders(B) == []
    with pytest.raises(RejectedAction):
        ex.cancel_order(B, order.order_id)  # already gone


def test_cancel_all_releases_every_reservation() -> None:
    ex = exchange()
    ex.place_order(T, Role.TRADER, buy(10.0, 2, "gtc"), step=1)
    ex.place_order(T, Role.TRADER, sell(150.0, 3, "gtc"), step=1)
    cancelled = ex.cancel_all(T)
    assert len(cancelled) == 2 and ex.open_orders(T) == []
    account = ex.ledger.account(T)
    assert account.reserved_cash == 0 and account.reserved_goods["widget"] == 0


def test_expired_step_orders_release_their_rest_fee_included_and_gtc_orders_keep_theirs() -> None:
    ex = exchange(fee=0.5)
    ex.place_order(B, Role.BUYER, buy(120.0, 3), step=1)  # 1 of 3 filled, the rest expires
    ex.place_order(S, Role.SELLER, sell(80.0, 1), step=1)
    ex.place_order(T, Role.TRADER, sell(150.0, 2), step=1)  # unfilled: expires
    ex.place_order(T, Role.TRADER, buy(90.0, 1, "gtc"), step=1)  # unfilled: rests
    ex.clear(step=1)
    assert ex.ledger.account(B).reserved_cash == 0
    assert ex.ledger.account(S).reserved_goods["widget"] == 0
    trader = ex.ledger.account(T)
    assert (trader.reserved_cash, trader.reserved_goods["widget"]) == ((9_000 + 50) * 1, 0)
    assert [o.side.name for o in ex.open_orders(T)] == ["BUY"] and not ex.open_orders(B)
    ex.ledger.check_invariants()


# ----------------------------------------------------------------------------- fees and cash


def test_buyer_with_exactly_enough_cash_fee_included_buys_and_ends_at_zero() -> None:
    ex = exchange(fee=1.0, buyer=(202.0, 0))  # 2 units at 100 + 1 fee each
    ex.place_order(B, Role.BUYER, buy(100.0, 2), step=1)
    assert ex.ledger.available_cash(B) == 0
    ex.place_order(S, Role.SELLER, sell(100.0, 2), step=1)
    [clearing] = ex.clear(step=1)
    assert clearing.volume == 2
    buyer = ex.ledger.account(B)
    assert (buyer.cash, buyer.reserved_cash, buyer.holdings["widget"]) == (0, 0, 2)
    assert ex.ledger.account(HOUSE).cash == 2 * 2 * 100  # both sides pay the fee
    assert ex.ledger.account(S).cash == 2 * (10_000 - 100)
    ex.ledger.check_invariants()


def test_buyer_fee_is_checked_for_affordability() -> None:
    ex = exchange(fee=1.0, buyer=(201.99, 0))  # one tick short of 2 * (100 + 1)
    reason = rejected(ex, B, Role.BUYER, buy(100.0, 2))
    assert reason.startswith("insufficient funds") and "202.0" in reason
    # without the fee it would have been affordable: the fee is what makes it fail
    assert ex.ledger.available_cash(B) >= 2 * 10_000


def test_seller_price_must_cover_the_fee() -> None:
    ex = exchange(fee=2.0)
    assert "does not cover the fee" in rejected(ex, S, Role.SELLER, sell(1.99))
    ex.place_order(S, Role.SELLER, sell(2.0), step=1)  # exactly the fee is allowed


# ----------------------------------------------------------------------------- admissible prices


def test_price_range_of_the_good_at_and_one_tick_past_each_end() -> None:
    ex = exchange()
    ex.place_order(T, Role.TRADER, buy(1.0), step=1)
    ex.place_order(T, Role.TRADER, buy(200.0), step=1)
    assert "outside the admissible range [1.0, 200.0]" in rejected(ex, T, Role.TRADER, buy(0.99))
    assert "outside the admissible range" in rejected(ex, T, Role.TRADER, sell(200.01))


def test_off_tick_price_is_rejected() -> None:
    ex = exchange()
    assert "tick" in rejected(ex, B, Role.BUYER, buy(100.005))


def test_unknown_good_is_rejected_naming_the_traded_ones() -> None:
    ex = exchange()
    action = PlaceOrder(good="gold", side="buy", price=1.0, quantity=1)
    assert rejected(ex, B, Role.BUYER, action) == "unknown good 'gold'; traded goods: widget"


def test_price_cap_at_and_one_tick_above() -> None:
    ex = exchange(rules=MarketRules(MONEY, price_caps={"widget": 15_000}))
    ex.place_order(B, Role.BUYER, buy(150.0), step=1)
    ex.place_order(S, Role.SELLER, sell(150.0), step=1)
    assert "above the price cap 150.0" in rejected(ex, B, Role.BUYER, buy(150.01))
    assert "above the price cap" in rejected(ex, S, Role.SELLER, sell(150.01))


def test_price_floor_at_and_one_tick_below() -> None:
    ex = exchange(rules=MarketRules(MONEY, price_floors={"widget": 5_000}))
    ex.place_order(S, Role.SELLER, sell(50.0), step=1)
    ex.place_order(B, Role.BUYER, buy(50.0), step=1)
    assert "below the price floor 50.0" in rejected(ex, S, Role.SELLER, sell(49.99))
    assert "below the price floor" in rejected(ex, B, Role.BUYER, buy(49.99))


# ----------------------------------------------------------------------------- roles, limits


def test_roles_decide_the_sides() -> None:
    ex = exchange()
    assert rejected(ex, B, Role.BUYER, sell(100.0)) == "role 'buyer' may not sell"
    assert rejected(ex, S, Role.SELLER, buy(100.0)) == "role 'seller' may not buy"
    assert rejected(ex, T, Role.REGULATOR, buy(100.0)) == "role 'regulator' may not buy"
    ex.place_order(T, Role.TRADER, buy(100.0), step=1)
    ex.place_order(T, Role.TRADER, sell(100.0), step=1)


def test_position_limit_counts_holdings_and_open_orders_at_and_past_the_limit() -> None:
    rules = MarketRules(MONEY, position_limits={"widget": 5})
    ex = exchange(rules=rules, buyer=(1_000.0, 2))
    ex.place_order(B, Role.BUYER, buy(10.0, 2, "gtc"), step=1)  # 2 held + 2 on order
    assert "position limit" in rejected(ex, B, Role.BUYER, buy(10.0, 2))  # 2 + 2 + 2 = 6 > 5
    ex.place_order(B, Role.BUYER, buy(10.0, 1), step=1)  # 2 + 2 + 1 = 5: at the limit


def test_position_limit_on_the_short_side() -> None:
    rules = MarketRules(MONEY, position_limits={"widget": 3})
    ex = exchange(rules=rules)
    ex.ledger.account(T).short_limit = 100  # the ledger would let it short; the rule must not
    ex.place_order(T, Role.TRADER, sell(100.0, 10, "gtc"), step=1)  # 10 held - 10 = 0
    ex.place_order(T, Role.TRADER, sell(100.0, 3, "gtc"), step=1)  # -3: at the limit
    assert "position limit" in rejected(ex, T, Role.TRADER, sell(100.0, 1))


def test_suspension_holds_through_its_last_step_and_ends_after() -> None:
    rules = MarketRules(MONEY)
    rules.suspend(B, 5)
    ex = exchange(rules=rules)
    assert "suspended from trading until step 5" in rejected(ex, B, Role.BUYER, buy(100.0), step=5)
    ex.place_order(B, Role.BUYER, buy(100.0), step=6)
    ex.place_order(T, Role.TRADER, buy(100.0), step=5)  # only the suspended agent is stopped


# ----------------------------------------------------------------------------- orders per step


def test_max_orders_per_step_at_and_one_past_the_cap_then_reset() -> None:
    ex = exchange(max_orders=3)
    for _ in range(3):
        ex.place_order(B, Role.BUYER, buy(10.0), step=1)
    assert rejected(ex, B, Role.BUYER, buy(10.0)) == "at most 3 orders per step"
    ex.place_order(T, Role.TRADER, buy(10.0), step=1)  # the cap is per agent
    ex.begin_step()
    ex.place_order(B, Role.BUYER, buy(10.0), step=2)


def test_rejected_orders_do_not_use_up_the_cap() -> None:
    ex = exchange(max_orders=2, buyer=(15.0, 0))
    rejected(ex, B, Role.BUYER, buy(100.0))  # unaffordable
    rejected(ex, B, Role.BUYER, buy(100.0))
    ex.place_order(B, Role.BUYER, buy(5.0), step=1)
    ex.place_order(B, Role.BUYER, buy(5.0), step=1)


# ----------------------------------------------------------------------------- clearing


def test_clearing_settles_at_one_price_within_every_filled_limit() -> None:
    ex = exchange(fee=0.1)
    ex.open_account(4, MONEY.to_ticks(1_000.0), {"widget": 0})
    ex.open_account(5, 0, {"widget": 5})
    ex.place_order(B, Role.BUYER, buy(130.0, 2), step=1)
    ex.place_order(4, Role.BUYER, buy(110.0, 2), step=1)
    ex.place_order(S, Role.SELLER, sell(90.0, 2), step=1)
    ex.place_order(5, Role.SELLER, sell(120.0, 2), step=1)
    ex.place_order(T, Role.TRADER, buy(50.0), step=1)  # below every ask: counted, not filled
    cash0 = ex.ledger.total_cash()
    [clearing] = ex.clear(step=7)
    assert clearing.volume == 2 and clearing.buy_orders == 3 and clearing.sell_orders == 2
    assert clearing.price is not None and 11_000 <= clearing.price <= 12_000
    assert {(t.buyer_id, t.seller_id, t.quantity) for t in clearing.trades} == {(B, S, 2)}
    assert ex.ledger.account(HOUSE).cash == 2 * 10 * 2
    assert ex.ledger.total_cash() == cash0
    state = ex.goods["widget"]
    assert state.last_price == clearing.price and state.last_trade_step == 7
    assert (state.best_bid, state.best_ask) == (13_000, 9_000)
    assert ex.reference_price("widget") == clearing.price
    assert ex.snapshot_prices() == {"widget": MONEY.to_units(clearing.price)}
    for agent in (B, 4, S, 5, T):
        account = ex.ledger.account(agent)
        assert account.reserved_cash == 0 and account.reserved_goods["widget"] == 0
    ex.ledger.check_invariants()


def test_no_trade_keeps_the_reference_price() -> None:
    ex = exchange()
    ex.place_order(B, Role.BUYER, buy(50.0), step=1)
    ex.clear(step=1)
    assert ex.reference_price("widget") == 10_000 and ex.goods["widget"].last_trade_step is None
    assert ex.snapshot_prices() == {"widget": None}


def test_a_changed_price_range_is_the_one_checked_next() -> None:
    ex = exchange()
    ex.place_order(T, Role.TRADER, buy(1.0), step=1)  # the range in units is converted once ...
    ex.goods["widget"].min_price, ex.goods["widget"].max_price = 500, 40_000  # ... and again when it changes
    assert "outside the admissible range [5.0, 400.0]" in rejected(ex, T, Role.TRADER, buy(4.99))
    ex.place_order(T, Role.TRADER, buy(300.0), step=1)
