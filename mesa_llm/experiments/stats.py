"""Statistics of a sweep's results table: per-cell means with 95% confidence intervals, paired
comparisons between conditions on shared seeds, and, for a grid design, paired tests between the
levels of each factor (main effects) and of each pair of factors (interactions). Every test is
paired within replicate seeds (paired t-test, Wilcoxon signed-rank, Cohen's d_z; scipy's) and every
p-value is Holm-adjusted within its metric's family (the condition comparisons, main effects and
interactions of that one metric: never across metrics).

Only rows with status ``ok`` count; a metric a run did not report (NaN) drops that run, or that
pair, from that metric alone.
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from mesa_llm.experiments.store import LEAD_COLUMNS, MID_COLUMNS, TAIL_COLUMNS
from mesa_llm.experiments.worker import OK

CONFIDENCE = 0.95


def metric_columns(frame: pd.DataFrame, factor_paths: list[str]) -> list[str]:
    """The metric columns of a results table (everything between the fixed columns)."""
    fixed = set(LEAD_COLUMNS + MID_COLUMNS + TAIL_COLUMNS + factor_paths)
    return [c for c in frame.columns if c not in fixed]


def _clean(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def describe(values: np.ndarray) -> dict[str, Any]:
    """n, mean, standard deviation and the t-based 95% confidence interval of the mean."""
    x = values[np.isfinite(values)]
    n = int(x.size)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "ci_low": None, "ci_high": None}
    mean = float(np.mean(x))
    if n < 2:
        return {"n": n, "mean": mean, "sd": None, "ci_low": None, "ci_high": None}
    sd = float(np.std(x, ddof=1))
    if sd == 0.0:  # every run gave the same value: the interval is that value
        return {"n": n, "mean": mean, "sd": 0.0, "ci_low": mean, "ci_high": mean}
    from scipy import stats

    ci = stats.ttest_1samp(x, popmean=mean).confidence_interval(CONFIDENCE)
    return {"n": n, "mean": mean, "sd": sd, "ci_low": float(ci.low), "ci_high": float(ci.high)}


def paired(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Paired comparison of ``a`` and ``b`` (same length, pair i shares a seed): mean difference
    a - b with its 95% CI, paired t-test, Wilcoxon signed-rank test and Cohen's d_z."""
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    d = a - b
    n = int(d.size)
    out: dict[str, Any] = {
        "n_pairs": n, "mean_a": _clean(np.mean(a)) if n else None, "mean_b": _clean(np.mean(b)) if n else None,
        "mean_diff": _clean(np.mean(d)) if n else None, "diff_ci_low": None, "diff_ci_high": None,
        "t": None, "p_t": None, "wilcoxon": None, "p_wilcoxon": None, "effect_size_dz": None,
    }  # fmt: skip
    if n < 2:
        return out
    from scipy import stats

    sd = float(np.std(d, ddof=1))
    # a constant difference (up to the rounding of the values' sums): no test can say more than
    # the difference itself, and a t-test on rounding noise would report p = 1e-47
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), 1e-300)
    if sd <= 1e-12 * scale:
        if np.all(d == 0.0) or abs(float(np.mean(d))) <= 1e-12 * scale:
            out.update(mean_diff=0.0, diff_ci_low=0.0, diff_ci_high=0.0, p_t=1.0, p_wilcoxon=1.0)
        else:
            out.update(diff_ci_low=out["mean_diff"], diff_ci_high=out["mean_diff"])
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's notes on ties and small samples
        t = stats.ttest_rel(a, b)
        ci = t.confidence_interval(CONFIDENCE)
        out.update(t=_clean(t.statistic), p_t=_clean(t.pvalue), diff_ci_low=_clean(ci.low), diff_ci_high=_clean(ci.high))
        if np.any(d != 0):
            w = stats.wilcoxon(a, b)
            out.update(wilcoxon=_clean(w.statistic), p_wilcoxon=_clean(w.pvalue))
    out["effect_size_dz"] = float(np.mean(d)) / sd
    return out


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None stays None; scipy has Benjamini-Hochberg only)."""
    index = [i for i, p in enumerate(pvalues) if p is not None]
    m = len(index)
    order = sorted(index, key=lambda i: pvalues[i])  # type: ignore[arg-type, return-value]
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        p = pvalues[i]
        assert p is not None
        running = max(running, min(1.0, (m - rank) * p))  # monotone: never below an earlier step
        adjusted[i] = running
    return adjusted


def constant_metrics(frame: pd.DataFrame, metrics: list[str]) -> dict[str, float]:
    """The metrics with one value in every ok run that reported them (nothing to plot or test)."""
    ok = frame[frame["status"] == OK]
    out: dict[str, float] = {}
    for metric in metrics:
        values = pd.to_numeric(ok[metric], errors="coerce").to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if values.size and bool(np.all(values == values[0])):
            out[metric] = float(values[0])
    return out


def factor_levels(frame: pd.DataFrame, factor_paths: list[str]) -> dict[str, list[Any]]:
    """Each factor's levels in the table's (plan) order."""
    return {f: list(dict.fromkeys(v for v in frame[f].tolist() if not _missing(v))) for f in factor_paths}


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _replicate_means(
    frame: pd.DataFrame, metric: str, fixed: dict[str, Any], rest: list[str], replicates: list[Any]
) -> np.ndarray:
    """Per replicate, the mean of ``metric`` over every combination of the ``rest`` columns at the
    ``fixed`` levels; NaN for a replicate missing any of those runs or values (so its pair drops)."""
    sel = frame
    for column, level in fixed.items():
        sel = sel[sel[column] == level]
    expected = max(1, len(frame.drop_duplicates(rest))) if rest else 1
    out = np.full(len(replicates), np.nan)
    for i, rep in enumerate(replicates):
        rows = sel[(sel["replicate"] == rep) & (sel["status"] == OK)]
        values = pd.to_numeric(rows[metric], errors="coerce").to_numpy(dtype=float)
        if values.size == expected and bool(np.all(np.isfinite(values))):
            out[i] = float(np.mean(values))
    return out


def factor_effects(
    frame: pd.DataFrame, factor_paths: list[str], metrics: list[str]
) -> list[dict[str, Any]]:
    """Paired tests between factor levels, within replicate seeds, for a full factorial (grid).

    Main effects: for each factor and each pair of its levels, replicate r's pair is (the mean of
    the metric over every other cell — conditions and other factors' levels — at level a, the
    same at level b); a replicate missing any of those runs or values is dropped (``n_pairs`` says
    how many remain). Interactions: for each pair of factors and each pair of adjacent levels of
    each, the paired difference of the first factor's effect at the second's two levels (a
    difference of differences; zero when the factors act independently)."""
    effects: list[dict[str, Any]] = []
    levels = factor_levels(frame, factor_paths)
    varied = [f for f in factor_paths if len(levels[f]) > 1]
    replicates = sorted(v for v in dict.fromkeys(frame["replicate"].tolist()) if not _missing(v))
    for metric in metrics:
        for factor in varied:
            rest = ["condition", *[f for f in factor_paths if f != factor]]
            for a, b in itertools.combinations(levels[factor], 2):
                test = paired(
                    _replicate_means(frame, metric, {factor: a}, rest, replicates),
                    _replicate_means(frame, metric, {factor: b}, rest, replicates),
                )
                effects.append({
                    "metric": metric, "kind": "main", "factor": factor, "level_a": _clean(a), "level_b": _clean(b),
                    "label": f"{factor}: {_clean(a)} − {_clean(b)}", "test": _test_name(test), **test,
                })  # fmt: skip
        for f, g in itertools.combinations(varied, 2):
            rest = ["condition", *[x for x in factor_paths if x not in (f, g)]]
            m = {(x, y): _replicate_means(frame, metric, {f: x, g: y}, rest, replicates)
                 for x in levels[f] for y in levels[g]}  # fmt: skip
            for a1, a2 in itertools.pairwise(levels[f]):
                for b1, b2 in itertools.pairwise(levels[g]):
                    # the effect of f (a1 - a2) at g = b1, against the same at g = b2
                    test = paired(m[a1, b1] - m[a2, b1], m[a1, b2] - m[a2, b2])
                    effects.append({
                        "metric": metric, "kind": "interaction", "factor": f, "level_a": _clean(a1),
                        "level_b": _clean(a2), "factor_2": g, "level_2a": _clean(b1), "level_2b": _clean(b2),
                        "label": f"{f}: {_clean(a1)} − {_clean(a2)} at {g} {_clean(b1)} vs {_clean(b2)}",
                        "test": _test_name(test), **test,
                    })  # fmt: skip
    return effects


#: most levels a factor may have for its levels to be compared pairwise
MAX_LEVELS_COMPARED = 12


def full_factorial(frame: pd.DataFrame, factor_paths: list[str]) -> bool:
    """Whether the table's factor points are every combination of the factors' levels (a grid, not
    a Latin hypercube: ``frame.attrs["design"]`` says so when :func:`load_results` read it), with
    at most :data:`MAX_LEVELS_COMPARED` levels each."""
    if not factor_paths or frame.empty or frame.attrs.get("design", "grid") != "grid":
        return False
    levels = factor_levels(frame, factor_paths)
    if any(len(v) > MAX_LEVELS_COMPARED for v in levels.values()):
        return False
    points = len(frame[factor_paths].drop_duplicates())
    return points == math.prod(len(v) for v in levels.values())


def _test_name(test: dict[str, Any]) -> str:
    """What the p-value of a paired result comes from."""
    if test["n_pairs"] < 2:
        return "none (fewer than 2 pairs)"
    if test["t"] is None:
        return "none (every pair differs by the same amount)" if test["mean_diff"] != 0.0 else "paired t (every pair equal: p = 1)"
    return "paired t"


def sweep_statistics(
    frame: pd.DataFrame, factor_paths: list[str], conditions: list[str] | None = None
) -> dict[str, Any]:
    """Cells, per-condition summaries, paired comparisons between conditions and, for a grid, the
    factors' main effects and interactions (:func:`factor_effects`) of a results table, as plain data."""
    metrics = metric_columns(frame, factor_paths)
    ok = frame[frame["status"] == OK]
    conditions = conditions or list(dict.fromkeys(frame["condition"].dropna().tolist()))
    counts = frame["status"].value_counts().to_dict()
    result: dict[str, Any] = {
        "runs": int(len(frame)), "status_counts": {str(k): int(v) for k, v in counts.items()},
        "cost_usd": float(pd.to_numeric(frame["cost_usd"], errors="coerce").fillna(0).sum()),
        "tokens": int(pd.to_numeric(frame["tokens"], errors="coerce").fillna(0).sum()),
        "metrics": metrics, "factors": factor_paths, "conditions": {}, "cells": [], "comparisons": [],
        "effects": [], "constant_metrics": constant_metrics(frame, metrics),
        "levels": {f: [_clean(v) for v in vs] for f, vs in factor_levels(frame, factor_paths).items()},
    }  # fmt: skip
    for condition in conditions:
        sub = ok[ok["condition"] == condition]
        result["conditions"][condition] = {
            m: describe(pd.to_numeric(sub[m], errors="coerce").to_numpy(dtype=float)) for m in metrics
        }
    keys = ["condition", *factor_paths]
    for cell_key, sub in ok.groupby(keys, sort=False, dropna=False):
        values = dict(zip(keys, cell_key if isinstance(cell_key, tuple) else (cell_key,), strict=True))
        result["cells"].append({
            "condition": values["condition"], "factors": {p: _clean(values[p]) for p in factor_paths},
            "metrics": {m: describe(pd.to_numeric(sub[m], errors="coerce").to_numpy(dtype=float)) for m in metrics},
        })  # fmt: skip
    comparisons: list[dict[str, Any]] = []
    points = ok.groupby(factor_paths, sort=False, dropna=False) if factor_paths else [((), ok)]
    for point_key, sub in points:
        levels = point_key if isinstance(point_key, tuple) else (point_key,)
        factors = {p: _clean(v) for p, v in zip(factor_paths, levels, strict=True)}
        for cond_a, cond_b in itertools.combinations(conditions, 2):
            a = sub[sub["condition"] == cond_a].set_index("replicate")
            b = sub[sub["condition"] == cond_b].set_index("replicate")
            shared = a.index.intersection(b.index).sort_values()
            if len(shared) and not (a.loc[shared, "seed"].to_numpy() == b.loc[shared, "seed"].to_numpy()).all():
                raise ValueError(f"conditions {cond_a} and {cond_b} do not share seeds: the table is not a paired sweep")
            for metric in metrics:
                test = paired(
                    pd.to_numeric(a.loc[shared, metric], errors="coerce").to_numpy(dtype=float),
                    pd.to_numeric(b.loc[shared, metric], errors="coerce").to_numpy(dtype=float),
                )
                comparisons.append({
                    "metric": metric, "condition_a": cond_a, "condition_b": cond_b, "factors": factors,
                    "test": _test_name(test), **test,
                })  # fmt: skip
    tested = [m for m in metrics if m not in result["constant_metrics"]]  # one value everywhere: nothing to test
    effects = factor_effects(frame, factor_paths, tested) if full_factorial(frame, factor_paths) else []
    for metric in metrics:  # Holm within each metric's family: its comparisons, main effects, interactions
        family = [c for c in comparisons if c["metric"] == metric] + [e for e in effects if e["metric"] == metric]
        for name in ("p_t", "p_wilcoxon"):
            for c, adj in zip(family, holm([c[name] for c in family]), strict=True):
                c[f"{name}_holm"] = adj
    result["comparisons"] = comparisons
    result["effects"] = effects
    return result


def load_results(out_dir: Any) -> tuple[pd.DataFrame, list[str], list[str]]:
    """A sweep folder's table, factor paths and conditions (from the spec copied into it)."""
    from pathlib import Path

    from mesa_llm.experiments.spec import load_sweep_spec
    from mesa_llm.experiments.store import RESULTS_PARQUET, SPEC_COPY, StoreError

    folder = Path(out_dir)
    table = folder / RESULTS_PARQUET
    if not table.is_file():
        raise StoreError(f"{folder}: no {RESULTS_PARQUET} (not a sweep folder, or the sweep wrote no row yet)")
    spec = load_sweep_spec(folder / SPEC_COPY)
    try:
        frame = pd.read_parquet(table)
    except Exception as exc:  # a truncated or foreign file
        raise StoreError(f"{table}: cannot read the table ({type(exc).__name__})") from None
    missing = [c for c in LEAD_COLUMNS + MID_COLUMNS + TAIL_COLUMNS + list(spec.factors) if c not in frame.columns]
    if missing:
        raise StoreError(f"{table}: not a sweep table (missing columns {', '.join(missing[:5])})")
    conditions = list(spec.conditions) or list(dict.fromkeys(frame["condition"].dropna().tolist()))
    frame.attrs["design"] = spec.design  # main effects and interactions are for a grid only
    return frame, list(spec.factors), conditions
