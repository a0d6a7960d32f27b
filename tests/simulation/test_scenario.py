"""Scenario schema and loading: shipped files validate; bad input gets one clear message."""

from __future__ import annotations

import pytest

from mesa_llm.scenario import (
    ScenarioError,
    apply_override,
    load_scenario,
    parse_override,
    shipped_scenarios,
    validate_scenario,
)
from tests.support.files import write_yaml


def test_shipped_scenarios_validate(shipped_raw):
    assert {"double_auction", "commodity_exchange"} <= set(shipped_raw)
    for name in shipped_scenarios():
        spec = load_scenario(name)
        assert spec.name == name
        assert spec.description


def test_commodity_exchange_has_several_goods_trader_types_and_a_shock():
    spec = load_scenario("commodity_exchange")
    assert len(spec.goods) >= 2
    assert {"market_maker", "fundamental", "momentum", "noise"} <= {p.policy_name for p in spec.populations}
    assert spec.timeline


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(colour="blue"), "colour: unknown field"),
        (lambda d: d["populations"][0].update(count="many"), "populations.0.count: Input should be a valid integer"),
        (lambda d: d["populations"][1]["endowment"]["holdings"].update(widget=-3), "populations.1.endowment.holdings.widget: Input should be greater than or equal to 0"),
        (lambda d: d["populations"][0].update(count=-2), "populations.0.count: Input should be greater than or equal to 0"),
        (lambda d: [p.update(count=0) for p in d["populations"]], "the scenario has no agents"),
        (lambda d: d["populations"][0].update(model="openai/gpt-4o"), "populations.0.model: only LLM populations (policy: llm) take a model"),
        (lambda d: d["populations"][0].update(policy="llm", params={"plan_every": -1}), "populations.0.params.plan_every"),
        (lambda d: d["populations"][0].update(policy="genius"), "populations.0.policy: unknown policy 'genius'"),
        (lambda d: d["populations"][0].update(params={"quantiti": 2}), "populations.0.params.quantiti: unknown field"),
        (lambda d: d["populations"][0].update(role="wizard"), "populations.0.role: Input should be"),
        (lambda d: d["goods"][0].update(reference_price=100.005), "goods.0.reference_price: 100.005 is not a multiple of the tick size"),
        (lambda d: d["populations"][0]["private"].update(gold={"units": 1, "values": 3.0}), "unknown good 'gold'"),
        (lambda d: d.update(timeline=[{"type": "meteor", "at_step": 2}]), "timeline.0"),
        (lambda d: d["populations"][0]["private"]["widget"].update(values={"distribution": "uniform", "low": 5, "hi": 9}), "populations.0.private.widget.values"),
    ],
)
def test_bad_scenarios_name_the_file_and_field(small_auction, tmp_path, mutate, expected):
    mutate(small_auction)
    path = write_yaml(tmp_path / "bad.yaml", small_auction)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert expected in message


def test_broken_yaml_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nsteps: [1, 2\ngoods: {}\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(path) in str(info.value) and "invalid YAML" in str(info.value) and "line" in str(info.value)


def test_not_a_mapping_and_missing_file(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ScenarioError, match="mapping"):
        load_scenario(path)
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario(tmp_path / "nope.yaml")
    with pytest.raises(ScenarioError, match="no such scenario"):
        load_scenario("no_such_shipped_scenario")


def test_overrides_apply_before_validation(small_auction, tmp_path):
    path = write_yaml(tmp_path / "s.yaml", small_auction)
    spec = load_scenario(path, overrides=["market.k=0.25", "populations.0.count=3", "steps=9"])
    assert spec.market.k == 0.25 and spec.populations[0].count == 3 and spec.steps == 9
    with pytest.raises(ScenarioError, match="market.k: Input should be less than or equal to 1"):
        load_scenario(path, overrides=["market.k=2"])
    with pytest.raises(ScenarioError, match="not a valid list index"):
        load_scenario(path, overrides=["populations.7.count=3"])
    with pytest.raises(ScenarioError, match="PATH=VALUE"):
        load_scenario(path, overrides=["steps"])


def test_parse_and_apply_override_units():
    parts, value = parse_override("goods.0.max_price=250.5")
    assert parts == ["goods", "0", "max_price"] and value == 250.5
    raw = {"goods": [{"max_price": 1}]}
    apply_override(raw, parts, value)
    assert raw["goods"][0]["max_price"] == 250.5


def test_several_problems_are_listed_together(small_auction):
    small_auction["steps"] = -1
    small_auction["populations"][0]["count"] = -1
    with pytest.raises(ScenarioError) as info:
        validate_scenario(small_auction, source="s.yaml")
    assert "steps" in str(info.value) and "populations.0.count" in str(info.value)
    assert len(info.value.problems) == 2
