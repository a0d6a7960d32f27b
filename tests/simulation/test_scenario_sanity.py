"""Scenario sanity (issue 11, part 2): populations that cannot act as their role implies are named
by `validate` and `run`, one line each; the shipped scenarios raise none."""

from __future__ import annotations

import copy

import pytest
import yaml
from typer.testing import CliRunner

from mesa_llm.cli import app
from mesa_llm.scenario import (
    load_scenario,
    resolve_scenario_path,
    shipped_scenarios,
    validate_scenario,
)
from mesa_llm.scenario_sanity import sanity_warnings

runner = CliRunner()


def _double_auction() -> dict:
    return yaml.safe_load(resolve_scenario_path("double_auction").read_text())


def _warnings(raw: dict) -> list[str]:
    return sanity_warnings(validate_scenario(raw, source="test"))


@pytest.mark.parametrize("name", sorted(shipped_scenarios()))
def test_shipped_scenarios_are_sane(name):
    assert sanity_warnings(load_scenario(name)) == []


def test_sellers_with_nothing_to_sell():
    raw = _double_auction()
    del raw["populations"][1]["endowment"]
    (warning,) = _warnings(raw)
    assert "'sellers'" in warning and "no widget to sell" in warning
    # holdings a timeline event gives them later count
    later = copy.deepcopy(raw)
    later["timeline"] = [{"type": "endow", "at_step": 3, "populations": ["sellers"], "holdings": {"widget": 4}}]
    assert _warnings(later) == []


def test_buyers_without_cash():
    raw = _double_auction()
    raw["populations"][0]["endowment"] = {"cash": 0}
    (warning,) = _warnings(raw)
    assert "'buyers'" in warning and "no cash" in warning
    raw["populations"][0]["credit_limit"] = 500.0  # credit is cash to buy with
    assert _warnings(raw) == []


def test_market_maker_with_neither_cash_nor_holdings():
    raw = _double_auction()
    raw["populations"].append({"name": "mm", "role": "market_maker", "count": 1, "policy": "market_maker"})
    (warning,) = _warnings(raw)
    assert "'mm'" in warning and "neither cash nor holdings" in warning
    raw["populations"][-1]["endowment"] = {"holdings": {"widget": 5}}
    assert _warnings(raw) == []


def test_undefined_competitive_equilibrium():
    raw = _double_auction()
    del raw["populations"][1]["private"]
    warnings = _warnings(raw)
    assert any("induced values but no induced costs" in w for w in warnings)
    raw = _double_auction()
    raw["populations"][0]["private"]["widget"]["values"] = {"distribution": "uniform", "low": 10.0, "high": 30.0}
    (warning,) = _warnings(raw)
    assert "no unit can trade" in warning


def test_validate_prints_one_line_per_warning(tmp_path):
    raw = _double_auction()
    del raw["populations"][1]["endowment"]
    raw["populations"][0]["endowment"] = {"cash": 0}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0  # valid, with warnings
    lines = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(lines) == 2
    assert any("no widget to sell" in line for line in lines)
    assert any("no cash" in line for line in lines)


def test_auctioned_good_needs_no_equilibrium_unless_a_market_trades_it():
    """Bidders' values without induced costs are an auction's design; in a call market they are not."""
    assert sanity_warnings(load_scenario("english_auction")) == []
    warned = sanity_warnings(load_scenario("english_auction", overrides=["market.call_market=true"]))
    assert any("'painting' has induced values but no induced costs" in w for w in warned)
