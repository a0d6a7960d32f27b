"""Statistics between a sweep's factor levels and the plots of a factorial sweep: tests pair runs
within replicate seeds (a pair with a missing value is dropped and counted out), main effects and
interactions of a grid, Holm per metric, plots with one line per level of the other factors, and
zero-variance metrics said in words. The factor_sweep example must show no fee effect under ZI-C."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from mesa_llm.experiments.report import _metric_vs_factor, render_sweep_report
from mesa_llm.experiments.stats import holm, load_results, sweep_statistics
from mesa_llm.experiments.store import results_frame

ROOT = Path(__file__).resolve().parents[2]


def _frame(values: dict[tuple[Any, ...], float | None], factors: dict[str, list[Any]], replicates: int,
           *, conditions: tuple[str, ...] = ("default",), status: dict[tuple[Any, ...], str] | None = None,
           metric: str = "y", extra: dict[str, dict[tuple[Any, ...], float | None]] | None = None) -> pd.DataFrame:
    """A results table as the store builds it: ``values[(condition, *levels, replicate)]``."""
    rows: dict[str, dict[str, Any]] = {}
    order = []
    paths = list(factors)
    for r in range(replicates):
        for cond in conditions:
            for i, combo in enumerate(itertools.product(*factors.values())):
                key = (cond, *combo, r)
                run_id = f"{cond}.p{i}.r{r}"
                order.append(run_id)
                metrics = {metric: values.get(key)}
                for name, table in (extra or {}).items():
                    metrics[name] = table.get(key)
                rows[run_id] = {
                    "run_id": run_id, "condition": cond, "factors": dict(zip(paths, combo, strict=True)),
                    "replicate": r, "seed": 1000 + r, "key": run_id, "status": (status or {}).get(key, "ok"),
                    "error": None, "metrics": metrics, "prompt_tokens": 0, "completion_tokens": 0, "tokens": 0,
                    "cost_usd": 0.0, "wall_s": 0.1, "recording": None,
                }  # fmt: skip
    return results_frame(rows, order, paths)


def _effect(stats: dict[str, Any], metric: str, kind: str, factor: str, a: Any, b: Any) -> dict[str, Any]:
    found = [e for e in stats["effects"] if e["metric"] == metric and e["kind"] == kind and e["factor"] == factor
             and e["level_a"] == a and e["level_b"] == b]  # fmt: skip
    assert len(found) == 1, [e["label"] for e in stats["effects"]]
    return found[0]


RNG = np.random.default_rng(7)
# a strong replicate (seed) effect and a small level effect: only a paired test sees the latter
SEED_EFFECT = RNG.normal(0, 10, size=8)
NOISE = RNG.normal(0, 0.05, size=(2, 3, 8))


def _two_factor_values(interaction: float = 0.0) -> dict[tuple[Any, ...], float | None]:
    values: dict[tuple[Any, ...], float | None] = {}
    for i, f in enumerate([0, 1]):
        for j, g in enumerate(["x", "y", "z"]):
            for r in range(8):
                values[("default", f, g, r)] = SEED_EFFECT[r] + 0.3 * f + 2.0 * j + interaction * f * j + NOISE[i, j, r]
    return values


FACTORS = {"f": [0, 1], "g": ["x", "y", "z"]}


def test_main_effect_pairs_within_replicates_and_averages_over_the_other_factor() -> None:
    values = _two_factor_values()
    stats = sweep_statistics(_frame(values, FACTORS, 8), list(FACTORS))
    e = _effect(stats, "y", "main", "f", 0, 1)
    # per replicate: the mean over g at f=0 against the same at f=1, paired by seed
    a = np.array([np.mean([values[("default", 0, g, r)] for g in "xyz"]) for r in range(8)])
    b = np.array([np.mean([values[("default", 1, g, r)] for g in "xyz"]) for r in range(8)])
    expected = sps.ttest_rel(a, b)
    assert e["n_pairs"] == 8 and e["test"] == "paired t"
    assert e["mean_diff"] == pytest.approx(np.mean(a - b)) and e["mean_diff"] == pytest.approx(-0.3, abs=0.05)
    assert e["p_t"] == pytest.approx(expected.pvalue, rel=1e-9)
    ci = expected.confidence_interval(0.95)
    assert (e["diff_ci_low"], e["diff_ci_high"]) == pytest.approx((ci.low, ci.high))
    assert e["p_t"] < 1e-6  # unpaired, the seeds' spread (sd 10) would hide a 0.3 effect
    g = _effect(stats, "y", "main", "g", "x", "z")
    assert g["mean_diff"] == pytest.approx(-4.0, abs=0.1) and g["n_pairs"] == 8
    assert {(e["level_a"], e["level_b"]) for e in stats["effects"] if e["factor"] == "g" and e["kind"] == "main"} == {
        ("x", "y"), ("x", "z"), ("y", "z")}


def test_a_pair_with_a_missing_value_or_a_failed_run_is_dropped_and_counted_out() -> None:
    values = _two_factor_values()
    values[("default", 1, "y", 3)] = None  # the run reported no value
    status = {("default", 0, "z", 5): "failed"}  # a failed run's row does not count either
    stats = sweep_statistics(_frame(values, FACTORS, 8, status=status), list(FACTORS))
    e = _effect(stats, "y", "main", "f", 0, 1)
    assert e["n_pairs"] == 6
    kept = [r for r in range(8) if r not in (3, 5)]
    a = np.array([np.mean([values[("default", 0, g, r)] for g in "xyz"]) for r in kept])
    b = np.array([np.mean([values[("default", 1, g, r)] for g in "xyz"]) for r in kept])
    assert e["mean_diff"] == pytest.approx(np.mean(a - b))
    assert e["p_t"] == pytest.approx(sps.ttest_rel(a, b).pvalue, rel=1e-9)
    # the g levels x vs y: replicate 3 lacks (1, y); replicate 5's (0, z) is not in this pair
    gxy = _effect(stats, "y", "main", "g", "x", "y")
    assert gxy["n_pairs"] == 7


def test_condition_comparisons_drop_a_pair_with_a_missing_value() -> None:
    values: dict[tuple[Any, ...], float | None] = {}
    for r in range(6):
        values[("a", 1, r)] = 10.0 + r + 0.1 * r * r
        values[("b", 1, r)] = 9.0 + r
    values[("b", 1, 2)] = None
    stats = sweep_statistics(_frame(values, {"k": [1]}, 6, conditions=("a", "b")), ["k"], ["a", "b"])
    (c,) = [c for c in stats["comparisons"] if c["metric"] == "y"]
    kept = [0, 1, 3, 4, 5]
    diffs = [values[("a", 1, r)] - values[("b", 1, r)] for r in kept]  # type: ignore[operator]
    assert c["n_pairs"] == 5 and c["mean_diff"] == pytest.approx(np.mean(diffs))
    assert stats["effects"] == []  # one level: no factor to compare


def test_interaction_is_the_difference_of_effects_and_zero_when_additive() -> None:
    additive = sweep_statistics(_frame(_two_factor_values(), FACTORS, 8), list(FACTORS))
    inter = sweep_statistics(_frame(_two_factor_values(interaction=1.5), FACTORS, 8), list(FACTORS))
    kinds = [(e["factor"], e["factor_2"], e["level_a"], e["level_b"], e["level_2a"], e["level_2b"])
             for e in inter["effects"] if e["kind"] == "interaction"]  # fmt: skip
    assert kinds == [("f", "g", 0, 1, "x", "y"), ("f", "g", 0, 1, "y", "z")]  # adjacent levels: a full basis
    for stats, size in ((additive, 0.0), (inter, 1.5)):
        e = [e for e in stats["effects"] if e["kind"] == "interaction"][1]
        # (f0 - f1 at g=y) - (f0 - f1 at g=z) = (-0.3 - 1.5) - (-0.3 - 3.0) = +1.5 * (2 - 1)
        assert e["mean_diff"] == pytest.approx(size, abs=0.1)
        assert e["n_pairs"] == 8
    assert [e for e in inter["effects"] if e["kind"] == "interaction"][1]["p_t"] < 1e-6
    assert [e for e in additive["effects"] if e["kind"] == "interaction"][1]["p_t"] > 0.001


def test_holm_is_applied_per_metric_never_across_metrics() -> None:
    values = _two_factor_values()
    other = {k: (v or 0.0) * 0.5 + (3.0 if k[1] == "z" else 0.0) for k, v in values.items()}
    stats = sweep_statistics(_frame(values, FACTORS, 8, extra={"w": other}), list(FACTORS))
    assert stats["metrics"] == ["y", "w"]
    for metric in ("y", "w"):
        family = [e for e in stats["effects"] if e["metric"] == metric]
        assert len(family) == 3 + 1 + 2  # g pairs, f, interactions
        assert [e["p_t_holm"] for e in family] == pytest.approx(holm([e["p_t"] for e in family]))
        assert [e["p_wilcoxon_holm"] for e in family] == pytest.approx(holm([e["p_wilcoxon"] for e in family]))
    everything = [e for e in stats["effects"]]
    across = holm([e["p_t"] for e in everything])
    assert [e["p_t_holm"] for e in everything] != pytest.approx(across)


def test_holm_steps_down_and_stays_monotone() -> None:
    assert holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert holm([0.01, 0.02, 0.2]) == pytest.approx([0.03, 0.04, 0.2])
    assert holm([0.011, 0.012]) == pytest.approx([0.022, 0.022])  # never below an earlier step
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])


def test_a_latin_hypercube_gets_no_level_tests() -> None:
    values = {("default", lvl, r): float(lvl) + r for lvl in (0.1, 0.2, 0.3) for r in range(3)}
    frame = _frame(values, {"k": [0.1, 0.2, 0.3]}, 3)
    frame.attrs["design"] = "lhs"
    assert sweep_statistics(frame, ["k"])["effects"] == []
    frame.attrs["design"] = "grid"
    assert len(sweep_statistics(frame, ["k"])["effects"]) == 3


def test_a_metric_with_one_value_in_every_run_is_said_not_tested() -> None:
    values = _two_factor_values()
    same = dict.fromkeys(values, 4.0)
    stats = sweep_statistics(_frame(values, FACTORS, 8, extra={"fixed": same}), list(FACTORS))
    assert stats["constant_metrics"] == {"fixed": 4.0}
    assert not [e for e in stats["effects"] if e["metric"] == "fixed"]
    one_off = dict(same)
    one_off[("default", 0, "x", 0)] = 4.5
    stats = sweep_statistics(_frame(values, FACTORS, 8, extra={"fixed": one_off}), list(FACTORS))
    assert stats["constant_metrics"] == {}


def test_a_plot_draws_one_line_per_level_of_the_other_factor() -> None:
    values = _two_factor_values()
    stats = sweep_statistics(_frame(values, FACTORS, 8), list(FACTORS))
    fig = _metric_vs_factor(stats, "y", "f")
    ax = fig.axes[0]
    containers = list(ax.containers)  # one errorbar per line drawn
    assert sorted(c.get_label() for c in containers) == ["g=x", "g=y", "g=z"]
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["g=x", "g=y", "g=z"]
    for c in containers:  # each line's two points are one g level's cells, never a mean over g
        line = c.lines[0]
        j = "xyz".index(c.get_label()[-1])
        want = [np.mean([values[("default", f, "xyz"[j], r)] for r in range(8)]) for f in (0, 1)]
        assert list(line.get_ydata()) == pytest.approx(want)


@pytest.fixture(scope="module")
def factor_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    from mesa_llm.experiments import run_sweep

    out = tmp_path_factory.mktemp("fs") / "out"
    run_sweep(ROOT / "examples" / "sweeps" / "factor_sweep.yaml", out, workers=2, replicates=3)
    frame, factors, conditions = load_results(out)
    return out, sweep_statistics(frame, factors, conditions)


def test_factor_sweep_reports_no_fee_effect_under_zi_c(factor_sweep: tuple[Path, dict[str, Any]]) -> None:
    _, stats = factor_sweep
    fee = _effect(stats, "allocative_efficiency", "main", "market.fee_per_unit", 0.0, 1.0)
    # a per-unit fee is a transfer to the house: ZI-C traders' trades, hence efficiency, are unchanged
    assert fee["n_pairs"] == 3 and fee["mean_diff"] == 0.0
    assert (fee["diff_ci_low"], fee["diff_ci_high"]) == (0.0, 0.0)
    assert fee["p_t"] == 1.0 and fee["p_t_holm"] == 1.0
    for e in stats["effects"]:
        if e["metric"] == "allocative_efficiency" and e["kind"] == "interaction":
            assert e["mean_diff"] == 0.0
    steps = _effect(stats, "allocative_efficiency", "main", "steps", 2, 30)
    assert steps["mean_diff"] < -0.3 and steps["p_t_holm"] < 0.05  # the horizon does matter
    fees = _effect(stats, "fees.total", "main", "market.fee_per_unit", 0.0, 1.0)
    assert fees["mean_diff"] < 0  # the fee is collected: it shows where it belongs


def test_factor_sweep_report_draws_per_level_lines(factor_sweep: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, stats = factor_sweep
    fig = _metric_vs_factor(stats, "allocative_efficiency", "market.fee_per_unit")
    ax = fig.axes[0]
    lines = [c.lines[0] for c in ax.containers]
    assert len(lines) == 4  # one per horizon
    for line in lines:
        y = list(line.get_ydata())
        assert y[0] == y[1]  # flat: the fee changes nothing at any horizon
    page = render_sweep_report(out, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "main effect" in page and "market.fee_per_unit: 0.0 − 1.0" in page


def test_a_constant_difference_up_to_rounding_is_not_a_p_of_1e_minus_47() -> None:
    from mesa_llm.experiments.stats import paired

    a = np.array([0.1 + 0.2, 0.7, 1.3 + 0.37 * 9, 2.9, 0.37 * 16 + 0.1])
    shifted = paired(a + 1.0, a)  # differences 1.0 up to float rounding
    assert shifted["mean_diff"] == pytest.approx(1.0) and shifted["p_t"] is None and shifted["t"] is None
    same = paired(a * 3 / 3, a + 0.0)
    assert same["p_t"] == 1.0 and same["mean_diff"] == 0.0
    varied = paired(a + np.array([1.0, 1.1, 0.9, 1.05, 0.95]), a)
    assert varied["p_t"] is not None and 0 < varied["p_t"] < 0.001 and varied["n_pairs"] == 5


def test_main_effects_average_over_conditions_too_and_need_every_conditions_run() -> None:
    values: dict[tuple[Any, ...], float | None] = {}
    for r in range(5):
        for cond, shift in (("a", 0.0), ("b", 5.0)):
            for k in (1, 2):
                values[(cond, k, r)] = SEED_EFFECT[r] + shift + 0.5 * k + NOISE[0, k, r]
    values[("b", 2, 4)] = None  # replicate 4 lacks one condition's run at k=2: its pair drops
    stats = sweep_statistics(_frame(values, {"k": [1, 2]}, 5, conditions=("a", "b")), ["k"], ["a", "b"])
    e = _effect(stats, "y", "main", "k", 1, 2)
    assert e["n_pairs"] == 4
    a = [np.mean([values[(c, 1, r)] for c in "ab"]) for r in range(4)]
    b = [np.mean([values[(c, 2, r)] for c in "ab"]) for r in range(4)]  # type: ignore[misc]
    assert e["mean_diff"] == pytest.approx(np.mean(np.subtract(a, b)))
    assert e["mean_a"] == pytest.approx(np.mean(a))


def test_level_tests_need_a_complete_grid_of_at_most_twelve_levels() -> None:
    from mesa_llm.experiments.stats import MAX_LEVELS_COMPARED

    values = _two_factor_values()
    partial = _frame(values, FACTORS, 8)
    partial = partial[~((partial["f"] == 1) & (partial["g"] == "z"))]  # a cell the design never had
    assert sweep_statistics(partial, list(FACTORS))["effects"] == []
    for n, tested in ((MAX_LEVELS_COMPARED, True), (MAX_LEVELS_COMPARED + 1, False)):
        levels = list(range(n))
        many = {("default", lvl, r): float(lvl + r) + 0.01 * ((lvl * r) % 3) for lvl in levels for r in range(3)}
        effects = sweep_statistics(_frame(many, {"k": levels}, 3), ["k"])["effects"]
        assert len(effects) == (n * (n - 1) // 2 if tested else 0)


def test_the_test_is_named_and_two_pairs_are_enough_for_a_t_test() -> None:
    values = {("default", k, r): float(k * 2 + r + 0.1 * r * k * k) for k in (0, 1) for r in range(2)}
    stats = sweep_statistics(_frame(values, {"k": [0, 1]}, 2), ["k"])
    (e,) = stats["effects"]
    assert e["n_pairs"] == 2 and e["test"] == "paired t" and e["p_t"] is not None
    one = sweep_statistics(_frame({k: v for k, v in values.items() if k[2] == 0}, {"k": [0, 1]}, 1), ["k"])
    (single,) = one["effects"]
    assert single["test"].startswith("none") and single["n_pairs"] == 1 and single["mean_diff"] is not None
    assert single["p_t"] is single["effect_size_dz"] is single["diff_ci_low"] is None  # one pair: no test, no spread


def _sweep_folder(tmp_path: Path, frame: pd.DataFrame, factors: dict[str, list[Any]]) -> Path:
    import yaml

    folder = tmp_path / "sweep"
    folder.mkdir()
    (folder / "spec.yaml").write_text(yaml.safe_dump({"name": "s", "scenario": "double_auction", "factors": factors}))
    frame.to_parquet(folder / "results.parquet")
    return folder


def test_the_report_says_constant_metrics_in_words_and_plots_factor_effects(tmp_path: Path) -> None:
    values = _two_factor_values()
    frame = _frame(values, FACTORS, 8, extra={"fixed": dict.fromkeys(values, 4.0)})
    page = render_sweep_report(_sweep_folder(tmp_path, frame, FACTORS), tmp_path / "r.html").read_text(encoding="utf-8")
    assert "The same in every run" in page and "<li>fixed = 4</li>" in page
    assert page.count('alt="y"') == 2  # y against f and against g; "fixed" is not plotted
    assert 'alt="fixed"' not in page
    assert page.count('alt="differences"') == 1  # y's main effects and interaction (no conditions here)
    assert page.count("<td>main effect</td>") == 3 + 1 and page.count("<td>interaction</td>") == 2
