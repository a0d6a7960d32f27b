"""Sweep specs, designs, seeds and statistics (no runs): fast checks of mesa_llm.experiments."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sst

from mesa_llm.experiments import SweepSpecError, parse_sweep_spec, plan_runs, replicate_seeds
from mesa_llm.experiments.stats import describe, holm, paired, sweep_statistics
from mesa_llm.scenario import parse_override


def spec(**fields):
    base = {"name": "t", "scenario": "double_auction"}
    return parse_sweep_spec({**base, **fields}, "spec.yaml")


def test_grid_crosses_conditions_factors_and_replicates() -> None:
    s = spec(
        replicates=3,
        factors={"market.k": [0.25, 0.75], "populations.0.count": [2, 4, 6]},
        conditions={"a": {"populations.0.policy": "zi_c"}, "b": {"populations.0.policy": "zi_u"}},
    )
    runs = plan_runs(s)
    assert len(runs) == s.n_runs == 2 * 3 * 2 * 3
    assert len({r.run_id for r in runs}) == len(runs)
    cells = {(r.condition, r.factors["market.k"], r.factors["populations.0.count"]) for r in runs}
    assert cells == {(c, k, n) for c in "ab" for k in (0.25, 0.75) for n in (2, 4, 6)}
    run = next(r for r in runs if r.condition == "b" and r.factors == {"market.k": 0.75, "populations.0.count": 4})
    # the overrides read back through the scenario's --set parser with their types: condition first
    assert [parse_override(o) for o in run.overrides] == [
        (["populations", "0", "policy"], "zi_u"), (["market", "k"], 0.75), (["populations", "0", "count"], 4)
    ]  # fmt: skip
    # replicate-major: every cell's replicate 0 comes before any replicate 1
    assert [r.replicate for r in runs] == sorted(r.replicate for r in runs)


def test_lhs_puts_one_sample_in_each_stratum_of_every_factor() -> None:
    s = spec(design="lhs", samples=8, seed=3, factors={
        "market.k": {"low": 0.0, "high": 1.0}, "market.fee_per_unit": {"low": 0.0, "high": 2.0, "digits": 2},
        "populations.0.count": {"low": 2, "high": 9, "integer": True},
    })  # fmt: skip
    points = [r.factors for r in plan_runs(s)]
    assert len(points) == 8
    strata = sorted(math.floor(p["market.k"] * 8) for p in points)
    assert strata == list(range(8))  # a Latin hypercube: each eighth of the range exactly once
    assert sorted(math.floor(p["market.fee_per_unit"] / 2.0 * 8) for p in points) == list(range(8))
    assert all(round(p["market.fee_per_unit"], 2) == p["market.fee_per_unit"] for p in points)
    assert all(isinstance(p["populations.0.count"], int) and 2 <= p["populations.0.count"] <= 9 for p in points)
    assert points == [r.factors for r in plan_runs(s)]  # seeded: the same design again
    other = spec(design="lhs", samples=8, seed=4, factors={"market.k": {"low": 0.0, "high": 1.0}})
    assert [r.factors["market.k"] for r in plan_runs(other)] != [p["market.k"] for p in points]


def test_replicate_r_of_every_cell_shares_one_seed_from_the_seed_sequence() -> None:
    s = spec(replicates=4, seed=11, factors={"market.k": [0.2, 0.8]},
             conditions={"a": {"market.fee_per_unit": 0}, "b": {"market.fee_per_unit": 1}})  # fmt: skip
    runs = plan_runs(s)
    children = np.random.SeedSequence(11).spawn(4)
    expected = [int(c.generate_state(1, dtype=np.uint32)[0]) for c in children]
    assert replicate_seeds(11, 4) == expected
    for r in runs:
        assert r.seed == expected[r.replicate]
    assert len(set(expected)) == 4


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"bogus": 1}, "bogus: unknown field"),
        ({"name": "../etc"}, "name:"),
        ({"factors": {"market.k; rm -rf": [1]}}, "is not a --set path"),
        ({"conditions": {"a/b": {}}}, "condition 'a/b'"),
        ({"design": "lhs", "samples": 3, "factors": {"market.k": [0.1]}}, "needs ranges"),
        ({"factors": {"market.k": {"low": 0, "high": 1}}}, "a grid needs a list"),
        ({"factors": {"market.k": list(range(1000))}, "replicates": 1000}, "more than 100,000"),
        ({"metrics": ["efficiency", "efficiency"]}, "listed twice"),
    ],
)
def test_bad_specs_fail_with_one_line_naming_the_field(fields, where) -> None:
    with pytest.raises(SweepSpecError) as info:
        spec(**fields)
    message = str(info.value)
    assert message.startswith("spec.yaml: ") and where in message and "\n" not in message


def test_holm_adjusts_step_down_and_stays_monotone() -> None:
    # by hand: sorted 0.01, 0.03, 0.04 -> 3*0.01, 2*0.03, max(0.06, 1*0.04)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, None, 0.9]) == [1.0, None, 1.0]
    assert holm([0.2, 0.01]) == pytest.approx([0.2, 0.02])


def _table() -> pd.DataFrame:
    a = [0.91, 0.95, 0.88, 0.97, 0.93]
    b = [0.80, 0.90, 0.70, 0.95, 0.85]
    rows = []
    for cond, values in (("a", a), ("b", b)):
        for rep, v in enumerate(values):
            rows.append({"run_id": f"{cond}.{rep}", "condition": cond, "replicate": rep, "seed": 100 + rep,
                         "status": "ok", "error": None, "efficiency": v, "prompt_tokens": 0, "completion_tokens": 0,
                         "tokens": 0, "cost_usd": 0.0, "wall_s": 0.1, "recording": None, "key": "k"})  # fmt: skip
    rows.append({**rows[0], "run_id": "b.9", "condition": "b", "replicate": 9, "status": "failed", "efficiency": 0.0})
    return pd.DataFrame(rows)


def test_statistics_match_scipy_on_a_hand_made_table() -> None:
    frame = _table()
    out = sweep_statistics(frame, [], ["a", "b"])
    a = np.array([0.91, 0.95, 0.88, 0.97, 0.93])
    b = np.array([0.80, 0.90, 0.70, 0.95, 0.85])
    cell_b = out["conditions"]["b"]["efficiency"]
    assert cell_b["n"] == 5  # the failed row does not count
    low, high = sst.t.interval(0.95, 4, loc=b.mean(), scale=sst.sem(b))
    assert cell_b["mean"] == pytest.approx(b.mean()) and (cell_b["ci_low"], cell_b["ci_high"]) == pytest.approx((low, high))
    (comparison,) = out["comparisons"]
    t = sst.ttest_rel(a, b)
    w = sst.wilcoxon(a, b)
    d = a - b
    assert comparison["n_pairs"] == 5 and comparison["mean_diff"] == pytest.approx(d.mean())
    assert comparison["p_t"] == pytest.approx(t.pvalue) and comparison["t"] == pytest.approx(t.statistic)
    assert comparison["p_wilcoxon"] == pytest.approx(w.pvalue)
    assert comparison["effect_size_dz"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert comparison["p_t_holm"] == pytest.approx(t.pvalue)  # one comparison: Holm leaves it
    # the comparison pairs by replicate, not by row order
    shuffled = sweep_statistics(frame.sample(frac=1.0, random_state=1), [], ["a", "b"])
    assert shuffled["comparisons"][0]["p_t"] == pytest.approx(t.pvalue)


def test_describe_and_paired_handle_degenerate_samples() -> None:
    assert describe(np.array([2.0]))["ci_low"] is None
    assert describe(np.array([2.0, 2.0, np.nan])) == {"n": 2, "mean": 2.0, "sd": 0.0, "ci_low": 2.0, "ci_high": 2.0}
    same = paired(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    assert same["mean_diff"] == 0.0 and same["p_t"] == 1.0 and same["p_wilcoxon"] == 1.0


def test_unpaired_seeds_are_refused() -> None:
    frame = _table()
    frame.loc[frame["run_id"] == "a.2", "seed"] = 7
    with pytest.raises(ValueError, match="do not share seeds"):
        sweep_statistics(frame, [], ["a", "b"])
