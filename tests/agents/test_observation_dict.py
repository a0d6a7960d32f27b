"""An observation's dict form (as recorded, as the server sends it) reads back into the same observation."""

from __future__ import annotations

import pytest

from mesa_llm import Simulation
from mesa_llm.agents.observation import Observation
from mesa_llm.scenario import load_scenario

EXTERNAL = {"name": "outsider", "role": "trader", "count": 1, "policy": "external", "endowment": {"cash": 500}}


@pytest.mark.parametrize("scenario", ["double_auction", "commodity_exchange", "financial_market_stress", "supply_contract"])
def test_from_dict_is_the_inverse_of_to_dict(scenario: str) -> None:
    raw = load_scenario(scenario).model_dump(mode="json", exclude={"source_dir"})
    raw["populations"].append(EXTERNAL)
    with Simulation.from_scenario(raw, seed=3, record=False) as sim:
        agent = sim.external_agents[0]
        for _ in range(3):
            live = sim.observe(agent)
            form = live.to_dict()
            again = Observation.from_dict(form)
            assert again.to_dict() == form
            assert again.market.price(next(iter(form["market"]))) == live.market.price(next(iter(form["market"])))
            assert again.steps_left == live.steps_left
            sim.step()


def test_a_dict_that_is_not_an_observation_names_what_is_wrong() -> None:
    with pytest.raises(KeyError, match="market"):
        Observation.from_dict({"step": 1})
    with pytest.raises(TypeError, match="object"):
        Observation.from_dict([1, 2])  # type: ignore[arg-type]
    raw = load_scenario("double_auction").model_dump(mode="json", exclude={"source_dir"})
    raw["populations"].append(EXTERNAL)
    with Simulation.from_scenario(raw, seed=1, record=False) as sim:
        form = sim.observe(sim.external_agents[0]).to_dict()
    with pytest.raises(TypeError, match="AccountView"):
        Observation.from_dict({**form, "account": "lots"})
