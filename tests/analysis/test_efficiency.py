"""Allocative efficiency means one thing for every population (issue 11, part 1).

The definition (mesa_llm.economics): realised surplus of the induced-value economy over the maximum
competitive-equilibrium surplus (Smith 1962; Gode & Sunder 1993). Intermediaries (market makers,
speculators, noise traders) only pass units on: their endowed inventory and their trading profits
must not inflate it, and it stays in [0, 1] (or is None with a reason) for any mix of populations.
"""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesa_llm.analysis import load_recording, summary_metrics
from mesa_llm.economics import InducedSurplus, competitive_equilibrium, efficiency
from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario, validate_scenario

# ----------------------------------------------------------------------------- the pure rule


def test_intermediary_inventory_adds_no_surplus():
    s = InducedSurplus()
    # an induced buyer (value 150) buys from a market maker's own stock: nothing to count
    assert s.fill("w", 1, [150], []) == 0
    assert s.imported == 1
    # an induced seller (cost 40) sells to the market maker, who passes that unit on (value 120)
    assert s.fill("w", 1, [], [40]) == 0
    assert s.fill("w", 1, [120], []) == 80
    assert (s.realised, s.passed, s.exported) == (80, 1, 1)


def test_units_sold_to_intermediaries_cost_nothing_until_passed_on():
    s = InducedSurplus()
    s.fill("w", 2, [], [90, 100])
    assert s.realised == 0
    # last in, first out: the unit bought most recently (cost 100) is the one passed on
    assert s.fill("w", 1, [130], []) == 30
    # a unit beyond the buyer's schedule is an intermediary's unit: the cost waits in the pool
    assert s.fill("w", 2, [110], [50, 60]) == 110 - 50
    assert s.realised == 30 + 60


def test_direct_trades_count_value_minus_cost():
    s = InducedSurplus()
    assert s.fill("w", 2, [150, 140], [40, 50]) == 200
    assert s.imported == s.exported == s.passed == 0


def test_efficiency_is_none_with_a_reason_outside_the_unit_interval():
    assert efficiency(50, 100).value == 0.5
    assert efficiency(100, 100).value == 1.0
    for report in (efficiency(-1, 100), efficiency(101, 100), efficiency(5, 0), efficiency(5, 10, induced=False)):
        assert report.value is None and report.reason


_agent = st.tuples(
    st.lists(st.integers(0, 300), max_size=4),  # induced values (empty: none)
    st.lists(st.integers(0, 300), max_size=4),  # induced costs
)


@settings(max_examples=300, deadline=None)
@given(
    agents=st.lists(_agent, min_size=2, max_size=8),
    fills=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7), st.integers(1, 3)), max_size=30),
)
def test_realised_surplus_never_exceeds_the_equilibrium_maximum(agents, fills):
    # Any sequence of trades among agents with or without induced schedules (intermediaries):
    # realised <= maximum CE surplus, so efficiency <= 1 whatever the mix.
    values = [sorted(v, reverse=True) for v, _ in agents]
    costs = [sorted(c) for _, c in agents]
    bought = [0] * len(agents)
    sold = [0] * len(agents)
    s = InducedSurplus()
    for b, k, q in fills:
        b, k = b % len(agents), k % len(agents)
        if b == k:
            continue
        s.fill("w", q, values[b][bought[b] : bought[b] + q], costs[k][sold[k] : sold[k] + q])
        bought[b] += q
        sold[k] += q
    best = competitive_equilibrium([v for vs in values for v in vs], [c for cs in costs for c in cs]).max_surplus
    assert s.realised <= best
    report = efficiency(s.realised, best)
    assert report.value is None or 0.0 <= report.value <= 1.0
    assert report.value is not None or report.reason


# ----------------------------------------------------------------------------- whole runs

_MM = {"name": "market_makers", "role": "market_maker", "policy": "market_maker",
       "params": {"spread": 0.02, "size": 2}, "endowment": {"cash": 5000.0, "holdings": {"widget": 20}}}  # fmt: skip
_MOMENTUM = {"name": "momentum", "role": "speculator", "policy": "momentum",
             "params": {"lookback": 3, "threshold": 0.01, "size": 2},
             "endowment": {"cash": 2000.0, "holdings": {"widget": 10}}}  # fmt: skip
_NOISE = {"name": "noise", "role": "trader", "policy": "noise", "params": {"activity": 0.5, "sigma": 0.05, "max_size": 2},
          "endowment": {"cash": 2000.0, "holdings": {"widget": 10}}}  # fmt: skip


def _double_auction_with(extra: list[dict], steps: int = 15) -> dict:
    import yaml

    from mesa_llm.scenario import resolve_scenario_path

    raw = yaml.safe_load(resolve_scenario_path("double_auction").read_text())
    raw["steps"] = steps
    raw["populations"] += [copy.deepcopy(p) for p in extra]
    return raw


def _run(raw: dict, seed: int, tmp_path) -> tuple[MarketModel, dict]:
    model = MarketModel(validate_scenario(raw, source="test"), seed=seed, output_dir=tmp_path, check_invariants=True)
    model.run()
    return model, summary_metrics(load_recording(model.recording_path))


def test_a_market_maker_no_longer_inflates_efficiency(tmp_path):
    # on main this set-up gave 1.10 and 1.47 (seeds 2, 3)
    for seed in (2, 3):
        mm = dict(_MM, count=1)
        model, metrics = _run(_double_auction_with([mm], steps=30), seed, tmp_path / str(seed))
        eff = model.efficiency()
        assert eff is not None and 0.0 <= eff <= 1.0
        assert metrics["allocative_efficiency"] == eff  # the analysis agrees with the model
        assert metrics["units_from_intermediaries"] > 0  # the market maker did sell from its stock


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    mm=st.integers(0, 2),
    momentum=st.integers(0, 2),
    noise=st.integers(0, 3),
)
def test_efficiency_stays_in_range_for_random_populations(tmp_path, seed, mm, momentum, noise):
    extra = [dict(p, count=n) for p, n in ((_MM, mm), (_MOMENTUM, momentum), (_NOISE, noise)) if n]
    model = MarketModel(validate_scenario(_double_auction_with(extra, steps=12), source="test"), seed=seed, record=False)
    model.run()
    report = model.tallies.efficiency_report()
    assert report.value is None or 0.0 <= report.value <= 1.0, (report, extra)
    assert report.value is not None or report.reason
    assert model.tallies.induced_surplus.realised <= sum(eq.max_surplus for eq in model.tallies.initial_equilibria.values())


def test_pure_induced_value_market_is_unchanged():
    # the shipped double_auction's numbers from before the definition covered intermediaries
    expected = {42: 0.9704401790689184, 2: 0.9578934987797347, 3: 0.9812384187770229}
    for seed, eff in expected.items():
        model = MarketModel(load_scenario("double_auction"), seed=seed, record=False)
        model.run()
        assert model.efficiency() == eff


def test_no_induced_values_reports_why_and_the_measures_that_apply(tmp_path):
    model = MarketModel(load_scenario("financial_market_stress"), seed=3, steps=8, output_dir=tmp_path)
    summary = model.run()
    assert summary.allocative_efficiency is None and "no induced values" in (summary.allocative_efficiency_note or "")
    metrics = summary_metrics(load_recording(model.recording_path))
    assert metrics["allocative_efficiency"] is None
    assert "no induced values" in metrics["allocative_efficiency_note"]
    assert metrics["price_volatility"]["stock"] is not None
    assert metrics["wealth_gini"] is not None
    assert metrics["pnl"]["by_population"]
