"""An observation's account part: reserved goods listed when non-zero, and what is available
(holding - reserved + short limit) for every good, with or without reservations and short limits."""

from __future__ import annotations

import mesa
import pytest

from mesa_llm.agents.observation import MarketSnapshot
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
