"""The consumer markets against theory: logit price competition (Calvano et al. 2020) and Bass
diffusion, through real runs of the plugin's scenarios.

Every reference number is computed here by a method independent of the plugin's: best responses by
grid search and refinement of the profit itself (the plugin solves first-order conditions with
scipy), the joint-profit maximum by grid search and refinement (the plugin minimises with BFGS), the
Bass curve by its own recursion. Without the plugin installed these tests skip, except in CI
(``MESA_LLM_REQUIRE_CONSUMER_MARKETS=1``), where they fail.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

# ---------------------------------------------------------------------------- independent theory


def _shares(prices: np.ndarray, quality: np.ndarray, a0: float, mu: float) -> np.ndarray:
    """Logit shares of the firms; ``prices`` may hold many price vectors (rows)."""
    w = np.exp((quality - prices) / mu)
    return w / (w.sum(axis=-1, keepdims=True) + math.exp(a0 / mu))


def _profit(i: int, prices: np.ndarray, quality: np.ndarray, a0: float, mu: float, cost: np.ndarray) -> float:
    return float((prices[i] - cost[i]) * _shares(prices, quality, a0, mu)[i])


def _argmax_1d(f: Any, low: float, high: float) -> float:
    """Maximise a unimodal f on [low, high]: f on a grid of 4,001 points (vectorised), then
    golden-section refinement between the best point's neighbours."""
    xs = np.linspace(low, high, 4_001)
    k = int(np.argmax(f(xs)))
    a, b = xs[max(k - 1, 0)], xs[min(k + 1, len(xs) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if f(np.array([c]))[0] > f(np.array([d]))[0]:
            b = d
        else:
            a = c
    return (a + b) / 2


def _nash(quality: list[float], a0: float, mu: float, cost: list[float]) -> np.ndarray:
    """Bertrand-Nash prices by best-response iteration, each best response a search of the profit."""
    q, c = np.asarray(quality, float), np.asarray(cost, float)
    prices = c + 2 * mu
    for _ in range(500):
        new = prices.copy()
        for i in range(len(q)):
            def own(x: np.ndarray, i: int = i, current: np.ndarray = new) -> np.ndarray:
                trial = np.repeat(current[None, :], len(x), axis=0)
                trial[:, i] = x
                return (x - c[i]) * _shares(trial, q, a0, mu)[:, i]

            new[i] = _argmax_1d(own, c[i], c[i] + 20 * mu + 5)
        if np.max(np.abs(new - prices)) < 1e-9:  # a flat maximum: the search is good to ~1e-8
            break
        prices = new
    return prices


def _joint(prices: np.ndarray, quality: list[float], a0: float, mu: float, cost: list[float]) -> float:
    p = np.asarray(prices, float)
    return float(((p - np.asarray(cost)) * _shares(p, np.asarray(quality, float), a0, mu)).sum())


def _monopoly_symmetric(quality: float, a0: float, mu: float, cost: float, n: int) -> float:
    """The joint-profit-maximising common price of n identical firms (1-D search)."""
    q = np.full(n, quality)

    def joint(x: np.ndarray) -> np.ndarray:
        p = np.repeat(x[:, None], n, axis=1)
        return ((p - cost) * _shares(p, q, a0, mu)).sum(axis=1)

    return _argmax_1d(joint, cost, cost + 20 * mu + 5)


def _monopoly(quality: list[float], a0: float, mu: float, cost: list[float]) -> np.ndarray:
    """The joint-profit maximum: the best common markup on a grid, then Nelder-Mead (derivative
    free) on all prices."""
    from scipy.optimize import minimize

    c = np.asarray(cost, float)
    q = np.asarray(quality, float)

    def joint_markup(m: np.ndarray) -> np.ndarray:
        p = c[None, :] + m[:, None]
        return ((p - c) * _shares(p, q, a0, mu)).sum(axis=1)

    start = c + _argmax_1d(joint_markup, 0.0, 20 * mu + 5)
    result = minimize(lambda p: -_joint(p, quality, a0, mu, cost), start, method="Nelder-Mead",
                      options={"xatol": 1e-11, "fatol": 1e-15, "maxiter": 20_000})  # fmt: skip
    return np.asarray(result.x)


# ---------------------------------------------------------------------------- runs


def _run(overrides: list[str], seed: int = 1, steps: int | None = None) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """A record-free run of a plugin scenario: (the simulation, the outcome events, the setup)."""
    from mesa_llm import Simulation

    name, *rest = overrides
    outcomes: list[dict[str, Any]] = []
    sim = Simulation.from_scenario(name, overrides=rest, seed=seed, steps=steps, record=False)
    sim.subscribe("posted_price_outcome", lambda e: outcomes.append(dict(e.content)))
    with sim:
        sim.run()
    return sim, outcomes, sim.summary().to_dict()["mechanisms"]["posted_price"]


def _delta_from_outcomes(outcomes: list[dict[str, Any]], quality: list[float], a0: float, mu: float, cost: list[float]) -> float:
    """The profit gain recomputed here from the recorded prices and quantities and the theory
    computed here."""
    n = len(quality)
    market = sum(outcomes[0]["quantities"]) + outcomes[0]["outside"]
    profits = np.array([[(p - c) * q / market for p, c, q in zip(o["prices"], cost, o["quantities"], strict=True)] for o in outcomes])
    nash = _nash(quality, a0, mu, cost)
    monopoly = _monopoly(quality, a0, mu, cost)
    q, c = np.asarray(quality, float), np.asarray(cost, float)
    nash_profit = np.mean([_profit(i, nash, q, a0, mu, c) for i in range(n)])
    monopoly_profit = np.mean([_profit(i, monopoly, q, a0, mu, c) for i in range(n)])
    return float((profits.mean() - nash_profit) / (monopoly_profit - nash_profit))


# ---------------------------------------------------------------------------- tests


def test_the_baseline_nash_and_monopoly_prices_match_an_independent_computation() -> None:
    from mesa_llm_consumer_markets.economics import LogitDemand

    demand = LogitDemand.of([2.0, 2.0], 0.0, 0.25, [1.0, 1.0])
    nash, monopoly = demand.nash_prices(), demand.monopoly_prices()
    assert np.allclose(nash, _nash([2, 2], 0.0, 0.25, [1, 1]), atol=1e-6)
    assert np.allclose(monopoly, _monopoly_symmetric(2.0, 0.0, 0.25, 1.0, 2), atol=1e-6)
    assert round(float(nash[0]), 4) == 1.4729 and round(float(monopoly[0]), 4) == 1.9250
    # a deviation from the joint maximum in any direction lowers the joint profit
    for direction in ([1e-3, 0], [0, -1e-3], [1e-3, -1e-3], [-1e-3, -1e-3]):
        assert _joint(monopoly + np.asarray(direction), [2, 2], 0.0, 0.25, [1, 1]) < _joint(monopoly, [2, 2], 0.0, 0.25, [1, 1])


@pytest.mark.parametrize(
    ("quality", "a0", "mu", "cost"),
    [
        ([2.0, 2.2, 1.8], 0.5, 0.3, [1.0, 1.1, 0.9]),  # three asymmetric firms
        ([1.5, 1.5, 1.5], -0.5, 0.1, [1.0, 1.0, 1.0]),  # three firms, little differentiation
        ([3.0, 2.0], 1.0, 0.5, [1.5, 0.5]),  # two asymmetric firms, a strong outside option
    ],
)
def test_other_demands_match_an_independent_computation(quality: list[float], a0: float, mu: float, cost: list[float]) -> None:
    from mesa_llm_consumer_markets.economics import LogitDemand

    demand = LogitDemand.of(quality, a0, mu, cost)
    assert np.allclose(demand.nash_prices(), _nash(quality, a0, mu, cost), atol=1e-6)
    assert np.allclose(demand.monopoly_prices(), _monopoly(quality, a0, mu, cost), atol=1e-5)


def test_nash_pricers_hold_the_profit_gain_at_zero() -> None:
    sim, outcomes, _ = _run(["pricing_competition", "populations.0.policy=nash"], steps=40)
    delta = _delta_from_outcomes(outcomes, [2.0, 2.0], 0.0, 0.25, [1.0, 1.0])
    assert abs(delta) <= 0.02, delta
    live = sim.summary().to_dict()["mechanisms"]["posted_price"]["profit_gain"]
    assert live == pytest.approx(delta, abs=1e-6)
    # after the first steps of best responses the prices sit at Nash (to the tick)
    assert all(abs(p - 1.4729) <= 0.001 for o in outcomes[10:] for p in o["prices"])


def test_monopoly_pricers_hold_the_profit_gain_at_one() -> None:
    _, outcomes, _ = _run(["pricing_competition", "populations.0.policy=monopoly"], steps=20)
    delta = _delta_from_outcomes(outcomes, [2.0, 2.0], 0.0, 0.25, [1.0, 1.0])
    assert abs(delta - 1) <= 0.02, delta


@pytest.mark.parametrize("policy, expected", [("nash", 0.0), ("monopoly", 1.0)])
def test_three_asymmetric_firms_hit_their_benchmarks(policy: str, expected: float) -> None:
    quality, a0, mu, cost = [2.0, 2.2, 1.8], 0.5, 0.3, [1.0, 1.1, 0.9]
    _, outcomes, setup = _run(
        [
            "pricing_competition", f"populations.0.policy={policy}", "populations.0.count=3",
            f"mechanisms.0.quality={quality}", f"mechanisms.0.outside_quality={a0}", f"mechanisms.0.mu={mu}",
            f"mechanisms.0.cost={cost}",
        ],
        steps=30,
    )  # fmt: skip
    assert np.allclose(setup["nash_prices"], _nash(quality, a0, mu, cost), atol=1e-6)
    delta = _delta_from_outcomes(outcomes[10:], quality, a0, mu, cost)  # once the best responses settled
    assert abs(delta - expected) <= 0.02, delta


def test_the_pricing_metric_reads_the_profit_gain_from_the_recording(tmp_path: Any) -> None:
    from mesa_llm import Simulation
    from mesa_llm.analysis import load_recording, summary_metrics

    with Simulation.from_scenario("pricing_competition", overrides=["populations.0.policy=monopoly"], steps=10, out=tmp_path) as sim:
        sim.run()
    metrics = summary_metrics(load_recording(sim.recording_path))["plugins"]["pricing"]
    assert metrics["profit_gain"] == pytest.approx(1.0, abs=0.02)
    assert metrics["nash_price"] == pytest.approx(1.4729, abs=1e-4) and metrics["monopoly_price"] == pytest.approx(1.9250, abs=1e-4)
    assert metrics["mean_price"] == pytest.approx(1.925, abs=0.001)


def _bass(p: np.ndarray, q: float, market: int) -> np.ndarray:
    n = [0.0]
    for p_t in p:
        n.append(n[-1] + (p_t + q * n[-1] / market) * (market - n[-1]))
    return np.asarray(n[1:])


@pytest.mark.parametrize(
    "overrides",
    [
        [],  # the scenario's p, q and its advertising (p_t as recorded each step)
        ["mechanisms.0.bass.p=0.05", "mechanisms.0.bass.q=0.2", "mechanisms.0.advertising.lift=0"],
    ],
)
def test_fully_mixed_adoption_follows_the_bass_recursion(overrides: list[str]) -> None:
    market = 10_000
    curves, innovations = [], []
    for seed in range(5):
        _, outcomes, _ = _run(["product_launch", f"mechanisms.0.num_consumers={market}", *overrides], seed=seed)
        curves.append([o["adopters"] for o in outcomes])
        innovations.append([o["innovation"] for o in outcomes])
    assert all(i == innovations[0] for i in innovations)  # advertising is the policy's, not chance's
    mean = np.mean(curves, axis=0)
    expected = _bass(np.asarray(innovations[0]), 0.2 if overrides else 0.38, market)
    assert np.max(np.abs(mean - expected)) <= 0.01 * market, np.max(np.abs(mean - expected))
    assert mean[-1] > 0.5 * market  # the curve went somewhere (not a trivially flat match)


def test_the_fitted_bass_coefficients_recover_the_true_ones() -> None:
    from mesa_llm_consumer_markets.economics import fit_bass

    market = 10_000
    _, outcomes, _ = _run(
        ["product_launch", f"mechanisms.0.num_consumers={market}", "mechanisms.0.bass.p=0.03",
         "mechanisms.0.advertising.lift=0", "mechanisms.0.bass.q=0.38"], seed=3
    )  # fmt: skip
    fitted = fit_bass([0] + [o["adopters"] for o in outcomes], market)
    assert fitted is not None
    assert fitted[0] == pytest.approx(0.03, abs=0.005) and fitted[1] == pytest.approx(0.38, abs=0.03)


def test_a_small_world_spreads_slower_than_full_mixing() -> None:
    mixed = _run(["product_launch", "mechanisms.0.advertising.lift=0"], seed=2)[1]
    world = _run(
        ["product_launch", "mechanisms.0.advertising.lift=0", "mechanisms.0.bass.contacts=small_world",
         "mechanisms.0.bass.neighbours=4", "mechanisms.0.bass.rewire=0.01"], seed=2
    )  # fmt: skip
    again = _run(
        ["product_launch", "mechanisms.0.advertising.lift=0", "mechanisms.0.bass.contacts=small_world",
         "mechanisms.0.bass.neighbours=4", "mechanisms.0.bass.rewire=0.01"], seed=2
    )  # fmt: skip
    assert [o["adopters"] for o in world[1]] == [o["adopters"] for o in again[1]]  # seeded network and draws
    midway = len(mixed) // 3
    assert world[1][midway]["adopters"] < mixed[midway]["adopters"]
