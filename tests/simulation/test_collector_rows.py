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
