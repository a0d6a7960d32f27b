"""The market collector builds every agent's row in one pass; the rows must be the ones Mesa builds
from the agent reporters (the columns' definitions), value for value and type for type."""

from __future__ import annotations

import mesa
import pytest

from mesa_llm import collector as collector_module
from mesa_llm.collector import AgentRows, BoundedDataCollector
from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario


@pytest.mark.parametrize("scenario", ["double_auction", "commodity_exchange", "financial_market_stress"])
def test_the_one_pass_rows_are_the_reporters_rows(scenario: str) -> None:
    model = MarketModel(load_scenario(scenario), seed=2, steps=12, record=False)
    collector = model.datacollector
    assert collector.agent_rows is not None
    compared = 0
    while model.running and model.steps < 12:
        model.step()
        fast = list(collector.agent_rows(model))
        reference = list(mesa.DataCollector._record_agents(collector, model))
        assert [tuple(map(repr, row)) for row in fast] == [tuple(map(repr, row)) for row in reference]
        assert fast == reference
        compared += len(fast)
    assert compared >= 12 * len(model.traders)
    assert model.tallies.trades > 0
    # what a notebook reads: the collected frame holds the same rows
    frame = collector.get_agent_vars_dataframe()
    assert list(frame.columns) == ["wealth", "cash", "surplus"]
    assert frame.loc[(model.steps, model.traders[0].unique_id)].tolist() == list(
        next(iter(mesa.DataCollector._record_agents(collector, model)))[2:]
    )


@pytest.mark.parametrize("scenario", ["double_auction", "commodity_exchange", "financial_market_stress"])
def test_the_kept_columns_read_back_as_each_steps_rows_after_the_run(scenario: str) -> None:
    """A collection keeps its rows as columns of ticks (`AgentRows`), made into rows only when read:
    read after the run, each step's records are the rows `_agent_rows` made at that step (not the
    state the accounts reached since), and the frame is the one of a collector listing the rows."""
    model = MarketModel(load_scenario(scenario), seed=2, steps=10, record=False)
    listing = BoundedDataCollector(max_rows=None, agent_rows=collector_module._agent_rows,
                                   agent_reporters=dict(model.datacollector.agent_reporters))  # fmt: skip
    seen: list[list[tuple[object, ...]]] = []
    while model.running and model.steps < 10:
        model.step()
        listing.collect(model)
        seen.append(list(collector_module._agent_rows(model)))
    records = model.datacollector._agent_records
    assert all(isinstance(rows, AgentRows) and rows._rows is None for rows in records.values())  # none made yet
    assert [len(rows) for rows in records.values()] == [len(rows) for rows in seen]  # counted without making them
    assert [[tuple(map(repr, row)) for row in rows] for rows in records.values()] == [
        [tuple(map(repr, row)) for row in rows] for rows in seen
    ]
    assert list(records.values()) == seen and seen == list(records.values())
    assert model.datacollector.get_agent_vars_dataframe().equals(listing.get_agent_vars_dataframe())
    assert model.tallies.trades > 0


@pytest.mark.parametrize("held", ["none", "missing", "zero", "unlisted_zero", "unlisted", "float"])
def test_the_wealth_columns_are_the_rows_wealth_whatever_is_held(held: str) -> None:
    """`_agent_columns`' wealth (a column per good) against `_agent_rows`' (account by account):
    a good nobody holds, or one account does not, a good held at zero, a good the exchange does not list (at zero: never
    looked up; held: the same KeyError), a quantity that is not an int (account by account)."""
    model = MarketModel(load_scenario("commodity_exchange"), seed=2, steps=6, record=False)
    for _ in range(3):
        model.step()
    goods = list(model.exchange.goods)
    assert len(goods) > 1
    accounts = [model.exchange.ledger.account(agent.unique_id) for agent in model.traders]
    if held == "none":  # the first good held by nobody
        for account in accounts:
            account.holdings.pop(goods[0], None)
    elif held == "missing":  # one account without the good others hold
        accounts[0].holdings.pop(goods[0], None)
        assert any(account.holdings.get(goods[0]) for account in accounts)
    elif held == "zero":
        accounts[0].holdings[goods[0]] = 0
    elif held == "unlisted_zero":
        accounts[1].holdings["unlisted"] = 0
    elif held == "unlisted":
        accounts[1].holdings["unlisted"] = 2
        with pytest.raises(KeyError):
            list(collector_module._agent_rows(model))
        with pytest.raises(KeyError):
            collector_module._agent_columns(model)
        return
    else:
        accounts[2].holdings[goods[0]] = 2.5
        accounts[2].holdings[goods[1]] = 0.1
    rows = list(collector_module._agent_rows(model))
    columns = collector_module._agent_columns(model)
    assert [tuple(map(repr, row)) for row in columns] == [tuple(map(repr, row)) for row in rows]
