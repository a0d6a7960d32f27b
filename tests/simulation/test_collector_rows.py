"""The market collector builds every agent's row in one pass; the rows must be the ones Mesa builds
from the agent reporters (the columns' definitions), value for value and type for type."""

from __future__ import annotations

import mesa
import pytest

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
