"""Stress events (flash_crash, volatility_spike, liquidity_shock): their effects over seeds,
their exact undoing, their validation and the stress metrics `analyze` reports."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mesa_llm.analysis import load_recording
from mesa_llm.analysis.stress import stress_metrics
from mesa_llm.cli import app
from mesa_llm.model import MarketModel
from mesa_llm.scenario import ScenarioError, load_scenario, validate_scenario

SEEDS = (1, 2, 3, 4, 5)


@pytest.fixture(scope="module")
def shipped_runs(tmp_path_factory):
    """The shipped financial_market_stress over five seeds: stress metrics per seed."""
    folder = tmp_path_factory.mktemp("stress")
    out = {}
    for seed in SEEDS:
        model = MarketModel(load_scenario("financial_market_stress"), seed=seed, output_dir=folder)
        model.run()
        assert model.recording_path is not None
        metrics = stress_metrics(load_recording(model.recording_path))
        out[seed] = {row["type"]: row for row in metrics.values()}
    return out


def test_shipped_scenario_uses_the_three_stress_types():
    spec = load_scenario("financial_market_stress")
    assert {e.type for e in spec.timeline} == {"flash_crash", "volatility_spike", "liquidity_shock"}


def test_flash_crash_falls_then_recovers_within_its_duration(shipped_runs):
    for seed, events in shipped_runs.items():
        crash = events["flash_crash"]
        assert crash["max_drawdown"] >= 0.05, (seed, crash)
        assert crash["recovered"], (seed, crash)
        assert 0 < crash["recovery_time"] <= crash["duration"], (seed, crash)


def test_flash_crash_leaves_no_permanent_shift(shipped_runs, tmp_path):
    # 20 steps after the crash ended the price is back near its level before it, on every seed
    for seed in SEEDS:
        model = MarketModel(load_scenario("financial_market_stress", ["steps=45"]), seed=seed, record=False)
        prices = []
        while model.running:
            model.step()
            prices.append(model.exchange.reference_price("stock"))
        before = sum(prices[9:19]) / 10  # steps 10-19
        after = sum(prices[39:45]) / 6  # steps 40-45
        assert abs(after / before - 1) < 0.04, (seed, before, after)


def test_volatility_spike_amplifies_return_volatility(shipped_runs):
    for seed, events in shipped_runs.items():
        spike = events["volatility_spike"]
        assert spike["volatility_amplification"] > 1.5, (seed, spike)


def test_liquidity_shock_withdraws_depth_and_volume(shipped_runs):
    for seed, events in shipped_runs.items():
        shock = events["liquidity_shock"]
        assert shock["depth_ratio"] < 0.5, (seed, shock)
        assert shock["volume_ratio"] < 0.6, (seed, shock)


def test_stress_events_are_undone_exactly():
    spec = load_scenario("financial_market_stress", ["steps=91"])
    model = MarketModel(spec, seed=7, record=False)
    fundamentals = {a.unique_id: a.private["stock"].fundamental for a in model.traders if "stock" in a.private}
    params = {a.unique_id: a.policy.params.model_dump() for a in model.traders}
    seen_withdrawn = False
    crash_low = crash_half = False
    while model.running:
        model.step()
        if model.steps == 20:  # the trough of the flash crash: -10%
            crash_low = all(
                model._by_id[i].private["stock"].fundamental == round(f * 0.9) for i, f in fundamentals.items()
            )
        if model.steps == 25:  # half way: -5% (linear recovery)
            crash_half = all(
                model._by_id[i].private["stock"].fundamental == round(f * 0.95) for i, f in fundamentals.items()
            )
        seen_withdrawn |= bool(model.timeline.withdrawn)
    assert crash_low and crash_half and seen_withdrawn
    assert not model.timeline.withdrawn
    assert {a.unique_id: a.private["stock"].fundamental for a in model.traders if "stock" in a.private} == fundamentals
    assert {a.unique_id: a.policy.params.model_dump() for a in model.traders} == params


def test_a_set_params_during_a_shock_is_not_undone():
    raw = load_scenario("financial_market_stress", ["steps=91"]).model_dump(mode="json", exclude_none=True)
    raw["timeline"].append({"type": "set_params", "at_step": 85, "populations": ["noise"], "params": {"activity": 0.3}})
    spec = validate_scenario(raw)
    model = MarketModel(spec, seed=1, record=False)
    model.run()
    # the shock's own change (max_size) is undone; the later set_params (activity) stays
    assert {a.policy.params.activity for a in model.populations["noise"]} == {0.3}
    assert {a.policy.params.max_size for a in model.populations["noise"]} == {3}


def test_scheduled_events_record_start_and_end(tmp_path):
    model = MarketModel(load_scenario("financial_market_stress", ["steps=35"]), seed=1, output_dir=tmp_path)
    model.run()
    rec = load_recording(model.recording_path)
    table = rec.table("scheduled_event")
    crash = table[[e["type"] == "flash_crash" for e in table["event"]]]
    assert list(zip(crash["step"], crash["phase"], strict=True)) == [(20, "start"), (30, "end")]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"type": "flash_crash", "at_step": 5, "duration": 3, "magnitude": 1.5}, "timeline.0.flash_crash.magnitude: Input should be less than 1"),
        ({"type": "volatility_spike", "at_step": 5, "duration": 0, "magnitude": 2}, "timeline.0.volatility_spike.duration: Input should be greater than or equal to 1"),
        ({"type": "liquidity_shock", "at_step": 5, "duration": 3, "magnitude": 0.5}, "timeline.0.liquidity_shock.magnitude: Input should be greater than 1"),
        ({"type": "flash_crash", "at_step": 5, "duration": 3, "magnitude": 0.2, "populations": ["market_makers"]}, "timeline.0: flash_crash acts on fundamental values (or, without them, on buyers' induced values)"),
        ({"type": "flash_crash", "at_step": 5, "duration": 3, "magnitude": 0.2, "good": "gold"}, "timeline.0.good: unknown good 'gold'"),
        ({"type": "liquidity_shock", "at_step": 5, "duration": 3, "magnitude": 2, "populations": ["nobody"]}, "timeline.0.populations: unknown population 'nobody'"),
    ],
)
def test_bad_stress_events_get_one_line_errors(event, expected):
    raw = load_scenario("financial_market_stress").model_dump(mode="json", exclude_none=True)
    raw["timeline"] = [event]
    with pytest.raises(ScenarioError) as info:
        validate_scenario(raw, source="s.yaml")
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_analyze_reports_stress_metrics(tmp_path):
    model = MarketModel(load_scenario("financial_market_stress", ["steps=40"]), seed=2, output_dir=tmp_path)
    model.run()
    runner = CliRunner()
    result = runner.invoke(app, ["analyze", str(model.recording_path), "--json"])
    assert result.exit_code == 0, result.output
    stress = json.loads(result.stdout)["stress"]
    crash = stress["flash_crash_step20_stock"]
    assert crash["max_drawdown"] > 0.05 and crash["volatility_amplification"] > 1
    table = runner.invoke(app, ["analyze", str(model.recording_path)])
    assert "flash_crash step 20+10" in table.stdout


def test_replay_verification_ignores_fields_added_since_the_recording():
    from mesa_llm.replay import _first_difference

    recorded = [{"event_type": "clearing", "agent_id": None, "content": {"good": "x", "price": 1.0}}]
    newer = [{"event_type": "clearing", "agent_id": None, "content": {"good": "x", "price": 1.0, "bid_after": 0.9}}]
    changed = [{"event_type": "clearing", "agent_id": None, "content": {"good": "x", "price": 2.0, "bid_after": 0.9}}]
    assert _first_difference(1, recorded, newer) is None
    divergence = _first_difference(1, recorded, changed)
    assert divergence is not None and "price" in divergence.detail
