"""Statistics of a sweep's results table: per-cell means with 95% confidence intervals, and paired
comparisons between conditions on shared seeds (paired t-test, Wilcoxon signed-rank, effect size)
with Holm's correction across the comparisons of each metric. The tests are scipy's.

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
    if sd == 0.0:  # a constant difference: no test can say more than the difference itself
        out.update(diff_ci_low=out["mean_diff"], diff_ci_high=out["mean_diff"])
        if out["mean_diff"] == 0.0:
            out.update(p_t=1.0, p_wilcoxon=1.0)
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


def sweep_statistics(
    frame: pd.DataFrame, factor_paths: list[str], conditions: list[str] | None = None
) -> dict[str, Any]:
    """Cells, per-condition summaries and paired comparisons of a results table, as plain data."""
    metrics = metric_columns(frame, factor_paths)
    ok = frame[frame["status"] == OK]
    conditions = conditions or list(dict.fromkeys(frame["condition"].dropna().tolist()))
    counts = frame["status"].value_counts().to_dict()
    result: dict[str, Any] = {
        "runs": int(len(frame)), "status_counts": {str(k): int(v) for k, v in counts.items()},
        "cost_usd": float(pd.to_numeric(frame["cost_usd"], errors="coerce").fillna(0).sum()),
        "tokens": int(pd.to_numeric(frame["tokens"], errors="coerce").fillna(0).sum()),
        "metrics": metrics, "factors": factor_paths, "conditions": {}, "cells": [], "comparisons": [],
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
                comparisons.append({"metric": metric, "condition_a": cond_a, "condition_b": cond_b, "factors": factors, **test})
    for metric in metrics:  # Holm within each metric's family of comparisons
        family = [c for c in comparisons if c["metric"] == metric]
        for name in ("p_t", "p_wilcoxon"):
            for c, adj in zip(family, holm([c[name] for c in family]), strict=True):
                c[f"{name}_holm"] = adj
    result["comparisons"] = comparisons
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
    return frame, list(spec.factors), conditions
