"""A plain market's step builds every observation in one pass (`ObservationBatch`): each agent
must get exactly what `TraderAgent.observe` gives it (plus its tools), and each recorded text must
be the encoding of that observation, step after step, whatever changed since the last one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mesa_llm.actions import PlaceOrder
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.roles import Role
from mesa_llm.agents.trader import TraderAgent
from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario


def _compared(model: MarketModel) -> list[int]:
    """Compare every observation of the batch with `TraderAgent.observe`'s and its text with the
    encoding of its dict; returns [observations compared, texts compared]."""
    batch = model.observer.batch
    model.observer.columns = False  # agent by agent: `batch.observe` sees each (the one pass: test_observe_step)
    encode = model.recorder.encode if model.recorder is not None else None
    counts = [0, 0]
    build = batch.observe

    def observe(agent: TraderAgent, open_orders: Any, tools: Any, surveillance: Any = None) -> Any:
        obs, text = build(agent, open_orders, tools, surveillance)
        reference = TraderAgent.observe(
            agent, step=model.current_step, horizon=model.max_steps, market=obs.market,
            ledger=model.exchange.ledger, money=model.money, open_orders=open_orders,
        )  # fmt: skip
        assert list(tools) == model.observer.available_actions(agent, model.current_step)  # its own state's tools
        reference.available_actions = list(tools)
        reference.surveillance = surveillance
        assert obs.to_dict() == reference.to_dict()
        assert _types(obs.to_dict()) == _types(reference.to_dict())  # 1.0 is not 1 in a recording
        counts[0] += 1
        if text is not None:
            assert encode is not None and text == encode(obs.to_dict())
            counts[1] += 1
        return obs, text

    batch.observe = observe  # type: ignore[method-assign]
    return counts


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__


@pytest.mark.parametrize(
    ("scenario", "overrides"),
    [
        ("double_auction", []),
        ("double_auction", ["social.gossip=true"]),  # messages to forward: tools that follow them
        ("financial_market_stress", []),  # shocks, market makers' resting orders
        ("energy_trading", ["social.reputation_shown=0"]),  # a regulator in a plain market
        ("sample_market", []),
    ],
)
def test_every_agent_sees_what_its_own_observe_gives_and_is_recorded_as_it(
    scenario: str, overrides: list[str], tmp_path: Path
) -> None:
    model = MarketModel(load_scenario(scenario, overrides=overrides), seed=5, steps=25, output_dir=tmp_path, run_name="r")
    counts = _compared(model)
    first, last = model.traders[0], model.traders[-1]
    while model.running:
        if model.steps % 3 == 0:  # a message now and then: shown once, in the next observation
            model.mailbox.send(first.unique_id, first.name, [last.unique_id], f"at {model.steps}", "direct", model.steps)
        if model.steps % 4 == 1 and scenario == "double_auction":  # a resting order: open orders, cancel_order
            order = PlaceOrder(good="widget", side="buy", price=1.0, quantity=1, lifetime="gtc")
            model.exchange.place_order(first.unique_id, first.role, order, model.steps)
        model.step()
    model.finish()
    assert counts[0] == counts[1] == 25 * len(model.traders)
    observations = [
        json.loads(line)["content"]
        for line in Path(model.recording_path).read_text().splitlines()  # type: ignore[arg-type]
        if '"event_type":"observation"' in line
    ]
    assert len(observations) == counts[0]
    # what the kept parts must follow did change in these runs
    assert len({json.dumps(o["account"]) for o in observations}) > len(model.traders) or scenario == "sample_market"
    if scenario == "double_auction":
        assert any(o["open_orders"] for o in observations)
        assert any("cancel_order" in o["available_actions"] for o in observations)
    assert any(o["messages"] for o in observations)
    if "social.gossip=true" in overrides:
        assert any("forward_message" in o["available_actions"] for o in observations)
    if scenario == "energy_trading":
        assert any(o["surveillance"] for o in observations)


def test_without_a_recording_the_observations_are_the_same(tmp_path: Path) -> None:
    spec = load_scenario("financial_market_stress")
    model = MarketModel(spec, seed=2, steps=10, record=False)
    counts = _compared(model)
    model.run()
    assert counts == [10 * len(model.traders), 0]


def test_an_agent_class_with_its_own_observe_is_asked(tmp_path: Path) -> None:
    model = MarketModel(load_scenario("double_auction"), seed=1, steps=2, output_dir=tmp_path, run_name="r")

    class Own(TraderAgent):
        def observe(self, **kwargs: Any) -> Observation:  # type: ignore[override]
            obs = TraderAgent.observe(self, **kwargs)
            obs.name = "own view"
            return obs

    agent = model.traders[0]
    agent.__class__ = Own
    observations = dict(model.prepare_step())
    assert observations[agent].name == "own view"
    assert observations[agent].available_actions == model.observer.available_actions(agent, 1)
    assert all(obs.name != "own view" for a, obs in observations.items() if a is not agent)
    model.recorder.flush()  # type: ignore[union-attr]
    recorded = [
        json.loads(line)["content"]
        for line in Path(model.recording_path).read_text().splitlines()  # type: ignore[arg-type]
        if '"event_type":"observation"' in line
    ]
    assert recorded[0] == json.loads(json.dumps(observations[agent].to_dict()))


def test_a_new_tick_size_or_horizon_is_not_served_from_the_kept_text(tmp_path: Path) -> None:
    """The kept head holds the horizon: a run whose horizon moves gets it in every text."""
    model = MarketModel(load_scenario("double_auction"), seed=1, steps=3, output_dir=tmp_path, run_name="r")
    counts = _compared(model)
    model.step()
    model.observer.horizon = model.max_steps = 9
    model.step()
    assert counts[1] == 2 * len(model.traders)
    model.recorder.flush()  # type: ignore[union-attr]
    horizons = [
        json.loads(line)["content"]["horizon"]
        for line in Path(model.recording_path).read_text().splitlines()  # type: ignore[arg-type]
        if '"event_type":"observation"' in line
    ]
    assert horizons[0] == 3 and horizons[-1] == 9


def test_a_regulator_role_in_a_plain_market_gets_its_surveillance() -> None:
    model = MarketModel(load_scenario("energy_trading", overrides=["social.reputation_shown=0"]), seed=1, record=False)
    observations = model.prepare_step()
    regulators = [obs for agent, obs in observations if agent.role is Role.REGULATOR]
    assert regulators and all(obs.surveillance is not None for obs in regulators)
    assert all(obs.surveillance is None for agent, obs in observations if agent.role is not Role.REGULATOR)


def test_a_unicode_name_and_a_replaced_schedule_are_recorded_as_they_are_seen(tmp_path: Path) -> None:
    """The private part's text is made from kept texts of each schedule's values: units bought
    along the schedule, a schedule replaced mid-run (a new list: its texts are not the old one's),
    a new fundamental and a name outside ASCII (scenarios allow ASCII goods only) must all read as
    encoding the observation does."""
    spec = load_scenario("double_auction", overrides=["market.private_units_shown=3", "populations.0.private.widget.units=8"])
    model = MarketModel(spec, seed=3, steps=12, output_dir=tmp_path, run_name="r")
    counts = _compared(model)
    buyer = model.traders[0]
    while model.running:
        if model.steps == 5:
            pv = buyer.private["widget"]
            pv.values = [v + 7 for v in pv.values]  # a new list, as the docstring asks
            pv.fundamental = 12345
            buyer.name = "käufer ✓ \"q\""
        model.step()
    model.finish()
    assert counts[0] == counts[1] == 12 * len(model.traders)
    assert buyer.units_bought.get("widget", 0) > 0
    recorded = [
        json.loads(line)["content"]
        for line in Path(model.recording_path).read_text(encoding="utf-8").splitlines()  # type: ignore[arg-type]
        if '"event_type":"observation"' in line and f'"agent_id":{buyer.unique_id},' in line
    ]
    assert recorded[-1]["name"] == "käufer ✓ \"q\"" and recorded[-1]["private"]["widget"]["fundamental"] == 123.45
