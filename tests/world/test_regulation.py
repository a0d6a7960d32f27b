"""The hard rules and the regulator's powers, each at its boundary (ticks throughout)."""

from __future__ import annotations

import pytest

from mesa_llm.market import HOUSE, Ledger, Money, Side
from mesa_llm.world.regulation import MarketRules, RuleViolation

MONEY = Money(0.01)


def test_suspension_covers_its_last_step_and_not_the_next() -> None:
    rules = MarketRules(MONEY)
    rules.suspend(7, 5)
    assert [rules.is_suspended(7, s) for s in (1, 5, 6)] == [True, True, False]
    assert not rules.is_suspended(8, 5)
    with pytest.raises(RuleViolation, match="suspended from trading until step 5"):
        rules.check_suspension(7, 5)
    rules.check_suspension(7, 6)


def test_a_shorter_suspension_never_shortens_a_longer_one() -> None:
    rules = MarketRules(MONEY)
    rules.suspend(7, 9)
    rules.suspend(7, 4)
    assert rules.suspended_until[7] == 9
    rules.suspend(7, 12)
    assert rules.suspended_until[7] == 12


def test_price_cap_and_floor_at_and_one_tick_past() -> None:
    rules = MarketRules(MONEY, price_caps={"g": 1_000}, price_floors={"g": 500})
    rules.check_price("g", 1_000)
    rules.check_price("g", 500)
    with pytest.raises(RuleViolation, match=r"price 10.01 is above the price cap 10.0 for g"):
        rules.check_price("g", 1_001)
    with pytest.raises(RuleViolation, match=r"price 4.99 is below the price floor 5.0 for g"):
        rules.check_price("g", 499)
    rules.check_price("other", 10**9)  # no rule for that good
    rules.check_price(None, 10**9)  # a negotiation over no good


def test_position_limit_buy_side_at_and_past() -> None:
    rules = MarketRules(MONEY, position_limits={"g": 10})
    rules.check_position("g", Side.BUY, 3, holding=5, open_buys=2, open_sells=0)  # 10
    with pytest.raises(RuleViolation, match="position limit"):
        rules.check_position("g", Side.BUY, 4, holding=5, open_buys=2, open_sells=0)  # 11
    # open sells do not make room for more buying
    with pytest.raises(RuleViolation):
        rules.check_position("g", Side.BUY, 4, holding=5, open_buys=2, open_sells=9)


def test_position_limit_sell_side_at_and_past() -> None:
    rules = MarketRules(MONEY, position_limits={"g": 10})
    rules.check_position("g", Side.SELL, 12, holding=5, open_sells=3, open_buys=0)  # -10
    with pytest.raises(RuleViolation, match="position limit"):
        rules.check_position("g", Side.SELL, 13, holding=5, open_sells=3, open_buys=0)  # -11
    rules.check_position("other", Side.SELL, 10**6, holding=0, open_sells=0, open_buys=0)


def _ledger(cash: int, reserved: int = 0, credit: int = 0) -> Ledger:
    ledger = Ledger(["g"])
    ledger.open_account(1, cash=cash, credit_limit=credit)
    if reserved:
        ledger.reserve_cash(1, reserved)
    return ledger


def test_fine_is_paid_to_the_house_and_capped_by_max_fine() -> None:
    ledger = _ledger(10_000)
    rules = MarketRules(MONEY, max_fine=2_500)
    assert rules.fine(ledger, 1, 2_500) == 2_500
    assert rules.fine(ledger, 1, 2_501) == 2_500
    assert ledger.account(1).cash == 5_000 and ledger.account(HOUSE).cash == 5_000
    assert MarketRules(MONEY).fine(ledger, 1, 4_000) == 4_000  # no max_fine: the whole amount
    ledger.check_invariants()


def test_fine_against_reserved_cash_takes_only_the_free_part() -> None:
    ledger = _ledger(10_000, reserved=8_000)
    rules = MarketRules(MONEY)
    assert rules.fine(ledger, 1, 5_000) == 2_000
    account = ledger.account(1)
    assert (account.cash, account.reserved_cash) == (8_000, 8_000)  # the order stays covered
    assert rules.fine(ledger, 1, 5_000) == 0  # nothing free left: nothing moves
    assert ledger.account(HOUSE).cash == 2_000
    ledger.check_invariants()


def test_fine_never_draws_on_a_credit_line() -> None:
    ledger = _ledger(1_000, credit=50_000)
    assert MarketRules(MONEY).fine(ledger, 1, 5_000) == 1_000
    assert ledger.account(1).cash == 0
    assert MarketRules(MONEY).fine(ledger, 1, 5_000) == 0


def test_view_is_in_currency_units() -> None:
    rules = MarketRules(
        MONEY, price_caps={"g": 1_050}, price_floors={"g": 5}, position_limits={"g": 3}, max_fine=20_000
    )
    rules.suspend(4, 9)
    assert rules.view() == {
        "price_caps": {"g": 10.5},
        "price_floors": {"g": 0.05},
        "position_limits": {"g": 3},
        "max_fine": 200.0,
        "suspended_until": {"4": 9},
    }
