"""The sweep report: one self-contained HTML page (inline PNG plots, escaped tables) of a sweep
folder — each metric against each factor with 95% CIs per condition, the paired differences
between conditions, and the tables of cells and comparisons."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from mesa_llm.analysis.plots import plain_text, safe_label
from mesa_llm.experiments.stats import load_results, sweep_statistics


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}"
    return html.escape(str(value))


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return '<p class="none">none</p>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _distinct_labels(values: list[Any]) -> dict[str, str]:
    """A plot label per distinct level (:func:`safe_label`), numbered where cutting made two alike."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for value in dict.fromkeys(str(v) for v in values):
        label = safe_label(value)
        n = 2
        while label in taken:
            label = safe_label(value, 36) + f" #{n}"
            n += 1
        taken.add(label)
        out[value] = label
    return out


#: lines beyond which a plot's legend goes in two columns
MAX_LINES = 8


def _line_key(cell: dict[str, Any], factor: str | None, conditions: int) -> str:
    """The line a cell belongs to on a plot against ``factor``: its condition (when there are
    several) and its level of every other factor — never pooled across them."""
    parts = [str(cell["condition"])] if conditions > 1 or factor is None else []
    parts += [f"{k}={v}" for k, v in cell["factors"].items() if k != factor]
    return ", ".join(parts) or "all runs"


@plain_text
def _metric_vs_factor(stats: dict[str, Any], metric: str, factor: str | None) -> Any:
    """The metric's cell means (95% CI) against ``factor``: one line per combination of the
    condition and the other factors' levels (a mean over other factors' levels would draw their
    effect as this factor's)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    conditions = len({c["condition"] for c in stats["cells"]})
    lines: dict[str, list[tuple[Any, Any, Any, Any]]] = {}
    for cell in stats["cells"]:
        d = cell["metrics"].get(metric) or {}
        if d.get("mean") is None:
            continue
        x = cell["factors"].get(factor) if factor else cell["condition"]
        key = _line_key(cell, factor, conditions) if factor else "all runs"
        lines.setdefault(key, []).append((x, d["mean"], d.get("ci_low"), d.get("ci_high")))
    # levels come from the spec: plain text, cut, and distinct (a categorical axis merges equal labels)
    labels = _distinct_labels([p[0] for points in lines.values() for p in points])
    fig = Figure(figsize=(6.4, 3.6 + (0.18 * len(lines) if len(lines) > MAX_LINES else 0)), layout="constrained")
    ax = fig.add_subplot()
    # lines that lie on top of each other stay visible: each next line is dashed a little differently
    styles = ["-", "--", "-.", ":"]
    numeric_xs = [p[0] for points in lines.values() for p in points if isinstance(p[0], int | float)]
    span = (max(numeric_xs) - min(numeric_xs)) if numeric_xs else 0.0
    for i, (key, points) in enumerate(lines.items()):
        numeric = all(isinstance(p[0], int | float) for p in points)
        points.sort(key=lambda p: p[0] if numeric else str(p[0]))
        # lines with equal values (no effect of the other factor) side by side, not hidden under each other
        dodge = (i - (len(lines) - 1) / 2) * 0.01 * span if numeric and len(lines) > 1 else 0.0
        xs = [p[0] + dodge if numeric else labels[str(p[0])] for p in points]
        means = [p[1] for p in points]
        lo = [p[1] - p[2] if p[2] is not None else 0.0 for p in points]
        hi = [p[3] - p[1] if p[3] is not None else 0.0 for p in points]
        ax.errorbar(xs, means, yerr=[lo, hi], marker="o", capsize=3, linestyle=styles[i % len(styles)],
                    label=safe_label(key, 60))  # fmt: skip
        if not numeric:  # text levels up to 40 characters side by side would overlap
            ax.tick_params(axis="x", labelrotation=25, labelsize=8)
    ax.set_xlabel(safe_label(factor or "condition", 80))
    ax.set_ylabel(safe_label(metric, 80))
    title = safe_label(f"{metric}: mean and 95% CI" + (f" vs {factor}" if factor else ""), 120)
    if factor and len(lines) > 1:
        title += f"\none line per level of the other factors ({len(lines)} lines)"
    ax.set_title(title, fontsize=10)
    if len(lines) > 1:  # beside the plot: lines that cross the middle stay visible
        ax.legend(fontsize=7, ncol=2 if len(lines) > MAX_LINES else 1, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def _effect_label(c: dict[str, Any]) -> str:
    """What a comparison or factor effect compares, in words."""
    if "condition_a" in c:
        return f"{c['condition_a']} − {c['condition_b']}" + "".join(f" | {k}={v}" for k, v in c["factors"].items())
    kind = "main effect" if c["kind"] == "main" else "interaction"
    return f"{kind} {c['label']}"


@plain_text
def _differences(stats: dict[str, Any], metric: str) -> Any:
    """The paired differences of ``metric`` with their 95% CIs: between conditions, between the
    levels of each factor (main effects) and interactions."""
    from matplotlib.figure import Figure

    rows = [c for c in stats["comparisons"] + stats.get("effects", []) if c["metric"] == metric and c["mean_diff"] is not None]
    if not rows:
        return None
    fig = Figure(figsize=(6.4, 0.7 + 0.3 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    for i, c in enumerate(rows):
        lo = c["diff_ci_low"] if c["diff_ci_low"] is not None else c["mean_diff"]
        hi = c["diff_ci_high"] if c["diff_ci_high"] is not None else c["mean_diff"]
        ax.errorbar([c["mean_diff"]], [i], xerr=[[c["mean_diff"] - lo], [hi - c["mean_diff"]]], fmt="o", capsize=3)
    ax.set_yticks(range(len(rows)), [safe_label(_effect_label(c), 90) for c in rows], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0.0, color="#888", lw=1)
    ax.set_title(f"paired differences in {safe_label(metric, 80)}", fontsize=10)
    ax.set_xlabel("mean difference A − B (95% CI)")
    return fig


def render_sweep_report(out_dir: str | Path, path: str | Path) -> Path:
    """Write the report of the sweep in ``out_dir`` to ``path`` (StoreError if it is not a sweep)."""
    from mesa_llm.analysis.report import _png

    frame, factor_paths, conditions = load_results(out_dir)
    stats = sweep_statistics(frame, factor_paths, conditions)
    figures: list[str] = []
    constant = stats.get("constant_metrics", {})
    for metric in [m for m in stats["metrics"] if m not in constant]:  # one value everywhere: said in words
        factors: list[str | None] = list(factor_paths) or [None]
        for factor in factors:
            if factor is not None and pd.api.types.is_string_dtype(frame[factor]) and frame[factor].nunique() > 30:
                continue
            fig = _metric_vs_factor(stats, metric, factor)
            figures.append(f'<figure><img src="data:image/png;base64,{_png(fig)}" alt="{html.escape(metric)}"></figure>')
        fig = _differences(stats, metric)
        if fig is not None:
            figures.append(f'<figure><img src="data:image/png;base64,{_png(fig)}" alt="differences"></figure>')
    cell_rows = []
    for cell in stats["cells"]:
        for metric, d in cell["metrics"].items():
            cell_rows.append([cell["condition"], *[cell["factors"][f] for f in factor_paths], metric, d["n"], d["mean"], d["ci_low"], d["ci_high"]])
    effect_rows = [
        [e["metric"], "main effect" if e["kind"] == "main" else "interaction", e["label"], e["test"], e["n_pairs"],
         e["mean_a"], e["mean_b"], e["mean_diff"], e["diff_ci_low"], e["diff_ci_high"], e["effect_size_dz"],
         e["p_t"], e["p_t_holm"], e["p_wilcoxon"], e["p_wilcoxon_holm"]]
        for e in stats.get("effects", [])
    ]  # fmt: skip
    same = "".join(
        f"<li>{html.escape(m)} = {_fmt(v)}</li>" for m, v in constant.items()
    )
    same_html = f"<p>The same in every run (not plotted, nothing to test):</p><ul>{same}</ul>" if same else ""
    comp_rows = [
        [c["metric"], c["condition_a"], c["condition_b"], *[c["factors"][f] for f in factor_paths], c["test"], c["n_pairs"],
         c["mean_diff"], c["diff_ci_low"], c["diff_ci_high"], c["effect_size_dz"], c["p_t"], c["p_t_holm"],
         c["p_wilcoxon"], c["p_wilcoxon_holm"]]
        for c in stats["comparisons"]
    ]  # fmt: skip
    status = ", ".join(f"{k}: {v}" for k, v in stats["status_counts"].items())
    name = html.escape(Path(out_dir).name)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>sweep {name}</title><style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #1d2330; }}
table {{ border-collapse: collapse; font-size: 13px; }} td, th {{ border: 1px solid #d5d9e0; padding: 3px 6px; }}
.scroll {{ overflow-x: auto; max-height: 520px; }} .none {{ color: #7a8394; font-style: italic; }}
figure {{ display: inline-block; margin: 8px; }}
</style></head><body>
<h1>Sweep {name}</h1>
<p>{stats['runs']} runs ({html.escape(status)}); LLM tokens {stats['tokens']:,}; cost ${stats['cost_usd']:.4f}.
Means over runs with status ok; 95% t confidence intervals. Every test pairs runs of the same replicate (same seed),
dropping a pair with a missing value; a factor's main effect compares the mean over every other cell at one level with
the same at another, per replicate; an interaction is the difference between a factor's effect at two levels of another.
Each plot draws one line per level of the other factors (never their mean). p-values are Holm-adjusted within each
metric (its condition comparisons, main effects and interactions).</p>
{same_html}
<h2>Plots</h2>{''.join(figures) or '<p class="none">no metric values</p>'}
<h2>Cells</h2>{_table(["condition", *factor_paths, "metric", "n", "mean", "95% CI low", "95% CI high"], cell_rows)}
<h2>Factor effects (paired within replicates)</h2>{_table(["metric", "kind", "levels compared", "test", "pairs", "mean A", "mean B", "mean A−B", "CI low", "CI high", "d_z", "p (t)", "p (t, Holm)", "p (Wilcoxon)", "p (Wilcoxon, Holm)"], effect_rows)}
<h2>Paired comparisons of conditions</h2>{_table(["metric", "A", "B", *factor_paths, "test", "pairs", "mean A−B", "CI low", "CI high", "d_z", "p (t)", "p (t, Holm)", "p (Wilcoxon)", "p (Wilcoxon, Holm)"], comp_rows)}
<footer><p>generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} by mesa_llm</p></footer>
</body></html>"""
    out = Path(path)
    out.write_text(page, encoding="utf-8")
    return out
