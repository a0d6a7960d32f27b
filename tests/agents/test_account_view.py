"""An observation's account part: reserved goods listed when non-zero, and what is available
(holding - reserved + short limit) for every good, with or without reservations and short limits."""

from __future__ import annotations

import mesa
import pytest

from mesa_llm.agents.observation import MarketSnapshot, Observation
from mesa_llm.agents.persona import Persona
from mesa_llm.agents.policies import Idle
from mesa_llm.agents.roles import Role
from mesa_llm.agents.trader import TraderAgent
from mesa_llm.market import Ledger, Money


@pytest.mark.parametrize("short_limit", [0, 5])
@pytest.mark.parametrize("reserve", [{}, {"apple": 2}, {"pear": 1, "apple": 3}])
def test_the_account_view_as_the_ledger_says(short_limit: int, reserve: dict[str, int]) -> None:
    money = Money(0.01)
    ledger = Ledger(["apple", "pear", "plum"])
    model = mesa.Model(seed=1)
    agent = TraderAgent(model, persona=Persona(name="a", role=Role.TRADER, policy="idle"), policy=Idle(), private={})
    ledger.open_account(agent.unique_id, cash=12_345, holdings={"apple": 4, "pear": 1}, short_limit=short_limit)
    ledger.reserve_cash(agent.unique_id, 345)
    for good, quantity in reserve.items():
        ledger.reserve_goods(agent.unique_id, good, quantity)
    view = agent.observe(step=1, horizon=2, market=MarketSnapshot(goods={}), ledger=ledger, money=money, open_orders=[]).account
    assert view.holdings == {"apple": 4, "pear": 1, "plum": 0}
    assert view.reserved_goods == {g: q for g, q in reserve.items() if q}
    assert view.available_goods == {
        "apple": 4 - reserve.get("apple", 0) + short_limit,
        "pear": 1 - reserve.get("pear", 0) + short_limit,
        "plum": short_limit,
    }
    assert list(view.available_goods) == ["apple", "pear", "plum"]
    assert (view.cash, view.reserved_cash, view.available_cash) == (123.45, 3.45, 120.0)
    # the view's dicts are its own: changing them changes nothing in the ledger
    view.holdings["apple"] = 99
    view.available_goods["apple"] = 99
    assert ledger.account(agent.unique_id).holdings["apple"] == 4


def test_every_change_of_balances_and_schedules_is_seen() -> None:
    """Observations in a row show each change of the account and the private schedule (a part kept
    from an earlier observation would show an old balance or schedule), and never change earlier ones."""
    from mesa_llm.agents.trader import PrivateValues

    money = Money(0.01)
    ledger = Ledger(["apple"])
    model = mesa.Model(seed=1)
    schedule = PrivateValues(values=[500, 400, 300], costs=[100, 200], fundamental=250)
    agent = TraderAgent(model, persona=Persona(name="a", role=Role.TRADER, policy="idle"), policy=Idle(),
                        private={"apple": schedule}, units_shown=2)  # fmt: skip
    ledger.open_account(agent.unique_id, cash=10_000, holdings={"apple": 3})
    ledger.open_account(99, cash=10_000, holdings={"apple": 3})

    def observe() -> Observation:
        return agent.observe(step=1, horizon=9, market=MarketSnapshot(goods={}), ledger=ledger, money=money,
                             open_orders=[], keyed=True)  # fmt: skip

    first = observe()
    again = observe()
    assert again.account == first.account and again.private == first.private
    assert again._keys == first._keys
    ledger.reserve_cash(agent.unique_id, 1_000)
    third = observe()
    assert third.account.reserved_cash == 10.0 and third.account.available_cash == 90.0 and third.private == first.private
    ledger.release_cash(agent.unique_id, 1_000)
    ledger.settle_trade(agent.unique_id, 99, "apple", 1, 300)
    fourth = observe()
    assert (fourth.account.cash, fourth.account.holdings, fourth.account.available_goods) == (97.0, {"apple": 4}, {"apple": 4})
    agent.units_bought["apple"] = 1
    assert observe().private["apple"].values == [4.0, 3.0] and observe().private["apple"].values_left == 2
    schedule.fundamental = 260
    assert observe().private["apple"].fundamental == 2.6
    schedule.values = [900, 800, 700]  # a new schedule (never changed in place)
    assert observe().private["apple"].values == [8.0, 7.0]
    agent.units_shown = 1
    assert observe().private["apple"].values == [8.0] and observe().private["apple"].costs == [1.0]
    ledger.reserve_goods(agent.unique_id, "apple", 2)
    last = observe()
    assert last.account.reserved_goods == {"apple": 2} and last.account.available_goods == {"apple": 2}
    assert first.account.cash == 100.0 and first.private["apple"].values == [5.0, 4.0]  # earlier ones untouched
