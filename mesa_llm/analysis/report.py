"""Reports of recordings: a self-contained HTML page, CSV exports, terminal tables and A/B comparison.

`render_html` writes ONE page with everything inline (styles, plots as base64 PNG), so it opens
anywhere without network access; `write_csv` exports every table; `summary_table` and `compare`
give the (metric, value) rows the ``mesa-llm analyze`` and ``mesa-llm compare`` commands print.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import numbers
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mesa_llm.analysis.content_column import ContentDtype
from mesa_llm.analysis.loader import LazyContent, Recording, load_recording
from mesa_llm.analysis.metrics import (
    competitive_equilibrium_by_step,
    flatten_metrics,
    negotiation_sessions,
    pareto_nash_distances,
    summary_metrics,
    supply_and_demand,
    surplus_split,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["compare", "csv_safe", "metric_rows", "render_html", "summary_table", "write_csv"]

RecordingLike = Recording | str | Path
_MISSING = "n/a"
_TABLE_ROWS = 50


def _recording(rec: RecordingLike) -> Recording:
    return rec if isinstance(rec, Recording) else load_recording(rec)


# ----------------------------------------------------------------------------- formatting


def _pct(v: Any) -> str:
    return f"{100 * float(v):.1f}%"


def _money(v: Any) -> str:
    return f"{float(v):,.2f}"


def _price(v: Any) -> str:
    """A price that may lie half a tick between two ticks (an equilibrium midpoint): 2-3 decimals."""
    text = f"{float(v):,.3f}"
    return text[:-1] if text.endswith("0") else text


def _int(v: Any) -> str:
    return f"{int(v):,}"


def _num(v: Any) -> str:
    x = float(v)
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.3g}"
    return f"{x:,.4g}" if abs(x) < 1000 else f"{x:,.1f}"


def _usd(v: Any) -> str:
    return f"${float(v):,.4f}"


def _text(v: Any) -> str:
    if isinstance(v, list):
        return ", ".join(str(x) for x in v) or _MISSING
    return str(v)


def _fmt(value: Any, kind: Callable[[Any], str]) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return _MISSING
    try:
        return kind(value)
    except (TypeError, ValueError):
        return str(value)


# (key in the flattened metrics, label, format); "{good}" rows repeat for every good
_ROWS: list[tuple[str, str, Callable[[Any], str]]] = [
    ("scenario", "scenario", _text),
    ("run_id", "run", _text),
    ("seed", "seed", _text),
    ("status", "status", _text),
    ("truncated", "truncated (cut run)", _text),
    ("final_step", "steps", _int),
    ("events", "events", _int),
    ("agents", "agents", _int),
    ("trades", "trades", _int),
    ("volume", "volume (units)", _int),
    ("goods.{good}.mean_price", "mean trade price ({good})", _money),
    ("goods.{good}.last_price", "last clearing price ({good})", _money),
    ("goods.{good}.ce_price", "CE price ({good})", _price),
    ("goods.{good}.ce_quantity", "CE quantity ({good})", _int),
    ("smiths_alpha.{good}", "Smith's alpha ({good})", _num),
    ("price_volatility.{good}", "price volatility, sd of log returns ({good})", _num),
    ("allocative_efficiency", "allocative efficiency", _pct),
    ("allocative_efficiency_note", "allocative efficiency: why n/a", _text),
    ("units_from_intermediaries", "units induced buyers got from intermediaries' stock", _int),
    ("units_passed_through_intermediaries", "units passed through intermediaries", _int),
    ("realised_surplus", "realised surplus", _money),
    ("max_surplus", "maximum surplus (CE)", _money),
    ("sessions", "negotiation sessions", _int),
    ("agreements", "agreements", _int),
    ("agreement_rate", "agreement rate", _pct),
    ("mean_rounds_to_agreement", "mean rounds to agreement", _num),
    ("mean_buyer_share", "buyer's share of joint gain (mean)", _pct),
    ("mean_distance_to_pareto", "distance to Pareto frontier (mean)", _num),
    ("mean_distance_to_nash", "distance to Nash point (mean)", _num),
    ("contracts", "contracts", _int),
    ("contracts_fulfilled", "contracts fulfilled", _int),
    ("contracts_breached", "contracts breached", _int),
    ("contract_value", "value of fulfilled contracts", _money),
    ("messages", "messages", _int),
    ("broadcasts", "broadcasts", _int),
    ("actions", "actions applied", _int),
    ("rejections", "actions rejected", _int),
    ("invalid_action_rate", "invalid action rate", _pct),
    ("wealth_gini", "wealth Gini", _num),
    ("welfare.{side}.surplus", "surplus vs own values ({side})", _money),
    ("pnl.by_population.{population_all}.mean", "mean P&L at last price ({population_all})", _money),
    ("fees.total", "exchange fees", _money),
    ("fees.buyers", "exchange fees paid by buyers", _money),
    ("fees.sellers", "exchange fees paid by sellers", _money),
    ("fees.house.cash", "house account (fees and fines)", _money),
    ("llm.calls", "LLM calls", _int),
    ("llm.failed_calls", "LLM calls failed", _int),
    ("llm.total_tokens", "LLM tokens", _int),
    ("llm.cost_usd", "LLM cost (USD)", _usd),
    ("llm.models", "LLM models", _text),
    ("llm.cost_per_agreement", "LLM cost per agreement (USD)", _usd),
    ("llm.tokens_per_agreement", "LLM tokens per agreement", _num),
    ("llm.realised_surplus", "LLM agents' surplus", _money),
    ("llm.cost_per_surplus", "LLM cost per unit of its agents' surplus (USD)", _usd),
    ("llm.tokens_per_surplus", "LLM tokens per unit of its agents' surplus", _num),
    ("llm.valid_tool_calls", "LLM tool calls valid", _int),
    ("llm.invalid_tool_calls", "LLM tool calls invalid", _int),
    ("llm.repaired_tool_calls", "LLM tool calls repaired", _int),
    ("llm.invalid_tool_call_rate", "LLM invalid tool call rate", _pct),
    ("llm.actions_applied", "LLM actions applied (not wait)", _int),
    ("llm.invalid_action_rate", "LLM agents' invalid action rate", _pct),
    ("llm.populations.{population}.calls", "LLM calls ({population})", _int),
    ("llm.populations.{population}.failed_calls", "LLM calls failed ({population})", _int),
    ("llm.populations.{population}.valid_tool_calls", "LLM tool calls valid ({population})", _int),
    ("llm.populations.{population}.invalid_tool_calls", "LLM tool calls invalid ({population})", _int),
    ("llm.populations.{population}.repaired_tool_calls", "LLM tool calls repaired ({population})", _int),
    ("llm.populations.{population}.actions_applied", "LLM actions applied ({population})", _int),
]
# rows shown only when the run has something of the kind
_ONLY_IF: dict[str, str] = {
    "sessions": "sessions",
    "agreements": "sessions",
    "agreement_rate": "sessions",
    "mean_rounds_to_agreement": "sessions",
    "mean_buyer_share": "sessions",
    "mean_distance_to_pareto": "sessions",
    "mean_distance_to_nash": "sessions",
    "contracts": "contracts",
    "contracts_fulfilled": "contracts",
    "contracts_breached": "contracts",
    "contract_value": "contracts",
    "llm.": "llm.calls",
    "fees.": "fees.total",
}


# identity rows are always shown; other rows only when the run has a value for them
_ALWAYS = frozenset(
    {"scenario", "run_id", "seed", "status", "final_step", "events", "agents", "trades"}
)


def _relevant(key: str, flat: Mapping[str, Any]) -> bool:
    if flat.get(key) is None and key not in _ALWAYS:
        return False
    for prefix, gate in _ONLY_IF.items():
        if key == prefix or (prefix.endswith(".") and key.startswith(prefix)):
            return bool(flat.get(gate))
    return True


def metric_rows(metrics: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(key, label, formatted value) rows of `summary_metrics` output, in display order; rows of
    kinds the run does not have (negotiations, contracts, LLM calls) are left out."""
    flat = flatten_metrics(metrics)
    goods = list((metrics.get("goods") or {}).keys())
    populations = list(((metrics.get("llm") or {}).get("populations") or {}).keys())
    all_populations = list(((metrics.get("pnl") or {}).get("by_population") or {}).keys())
    out = []
    for key, label, kind in _ROWS:
        if "{good}" in key:
            expanded = [(key.format(good=g), label.format(good=g)) for g in goods]
        elif "{population_all}" in key:
            expanded = [(key.format(population_all=p), label.format(population_all=p)) for p in all_populations]
        elif "{side}" in key:
            expanded = [(key.format(side=s), label.format(side=s)) for s in (metrics.get("welfare") or {})]
        elif "{population}" in key:
            expanded = [(key.format(population=p), label.format(population=p)) for p in populations]
        else:
            expanded = [(key, label)]
        for k, lab in expanded:
            if k.startswith("pnl.") and flat.get("max_surplus") is not None:
                continue  # with induced values, surplus is the measure; P&L at the last price is not
            if k in flat and _relevant(k, flat):
                out.append((k, lab, _fmt(flat[k], kind)))
    for k, value in flat.items():  # plugin metrics: plugins.<metric>.<key> (None: it failed)
        if k.startswith("plugins."):
            label = k.removeprefix("plugins.").replace(".", ": ", 1)
            out.append((k, f"{label} (plugin)", _fmt(value, _num)))
    return out


def summary_table(rec: RecordingLike) -> list[tuple[str, str]]:
    """(metric, formatted value) rows for a terminal table (``mesa-llm analyze``)."""
    return [(label, value) for _, label, value in metric_rows(summary_metrics(_recording(rec)))]


def compare(a: RecordingLike, b: RecordingLike) -> list[tuple[str, str, str]]:
    """(metric, A, B) rows of two recordings side by side (``mesa-llm compare``): every metric
    either run has, "n/a" where the other has none."""
    rows_a = metric_rows(summary_metrics(_recording(a)))
    rows_b = metric_rows(summary_metrics(_recording(b)))
    labels = {k: lab for k, lab, _ in rows_a + rows_b}
    va = {k: v for k, _, v in rows_a}
    vb = {k: v for k, _, v in rows_b}
    keys = [k for k, _, _ in rows_a] + [k for k, _, _ in rows_b if k not in va]
    return [(labels[k], va.get(k, _MISSING), vb.get(k, _MISSING)) for k in keys]


# ----------------------------------------------------------------------------- CSV


def _cell(value: Any) -> Any:
    if isinstance(value, LazyContent):
        value = value.to_dict()
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str, ensure_ascii=False)
    return value


#: first characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _inert_cell(value: Any) -> Any:
    # text only: a number (even a negative one) is written as a number
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` for a CSV file: text cells that begin with = + - @, a tab or a carriage
    return get a leading apostrophe, so a spreadsheet shows them instead of running them (names,
    messages and levels come from files and LLMs). The Parquet and JSON outputs keep the exact text."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = pd.Series([_inert_cell(v) for v in out[column]], index=out.index, dtype=out[column].dtype)
    return out


def _csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Nested values (dicts, lists, contents) as JSON text, so the CSV can be parsed back; text
    cells made inert for spreadsheets (:func:`csv_safe`)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or isinstance(out[column].dtype, ContentDtype):
            out[column] = [_cell(v) for v in out[column]]
    return csv_safe(out)


def write_csv(rec: RecordingLike, folder: str | Path) -> list[Path]:
    """Write every table (`Recording.TABLES`) plus the derived ones (competitive equilibrium by
    step, negotiation sessions, surplus split, Pareto/Nash distances) and the summary metrics as
    CSV files into `folder` (created); nested values are JSON text. Returns the files written."""
    r = _recording(rec)
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    tables: dict[str, pd.DataFrame] = {name: getattr(r, name) for name in Recording.TABLES}
    tables["competitive_equilibrium_by_step"] = competitive_equilibrium_by_step(r)
    tables["negotiation_sessions"] = negotiation_sessions(r)
    tables["surplus_split"] = surplus_split(r)
    tables["pareto_nash_distances"] = pareto_nash_distances(r)
    flat = flatten_metrics(summary_metrics(r))
    tables["summary"] = pd.DataFrame(
        {"metric": list(flat), "value": [_cell(v) for v in flat.values()]}
    )
    written = []
    for name, frame in tables.items():
        path = root / f"{name}.csv"
        _csv_ready(frame).to_csv(path, index=False)
        written.append(path)
    return written


# ----------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       margin: 0; background: #f6f7f9; color: #1d2430; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 19px; margin: 32px 0 10px; border-bottom: 2px solid #dde2ea; padding-bottom: 4px; }
.sub { color: #5b6475; margin: 0 0 16px; font-size: 14px; }
.warn { background: #fff4d6; border: 1px solid #f0c36d; padding: 10px 14px; border-radius: 6px; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 6px 28px; }
table { border-collapse: collapse; font-size: 13px; background: white; min-width: 50%; }
table.metrics { width: 100%; }
th, td { border: 1px solid #dde2ea; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.metrics td:first-child { color: #3a4352; }
.scroll { overflow-x: auto; max-height: 560px; overflow-y: auto; }
figure { margin: 12px 0 20px; background: white; border: 1px solid #dde2ea; border-radius: 6px;
         padding: 8px; text-align: center; }
figure img { max-width: 100%; height: auto; }
figcaption { color: #5b6475; font-size: 13px; margin-top: 4px; }
pre.sample { background: white; border: 1px solid #dde2ea; padding: 8px; font-size: 12px; white-space: pre-wrap;
             max-height: 320px; overflow-y: auto; }
.none { color: #7a8394; font-style: italic; }
footer { color: #7a8394; font-size: 12px; margin-top: 36px; }
"""


def _png(fig: Figure) -> str:
    from mesa_llm.analysis.plots import plain_text_rc

    buffer = io.BytesIO()
    with plain_text_rc():  # tick labels are made while saving: no TeX for them either
        fig.savefig(buffer, format="png", dpi=100)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool | np.bool_)


def _html_table(frame: pd.DataFrame, columns: list[str], limit: int = _TABLE_ROWS) -> str:
    """An escaped HTML table of the first `limit` rows (numbers right-aligned)."""
    if frame.empty:
        return '<p class="none">none recorded</p>'
    cols = [c for c in columns if c in frame.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for row in frame[cols].head(limit).itertuples(index=False):
        cells = []
        for value in row:
            if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
                cells.append("<td></td>")
            elif _is_number(value):
                text = f"{value:,}" if isinstance(value, numbers.Integral) else f"{value:,.2f}"
                cells.append(f'<td class="num">{html.escape(text)}</td>')
            else:
                text = (
                    json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
                )
                cells.append(f"<td>{html.escape(text[:300])}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = len(frame) - limit
    note = f'<p class="sub">first {limit} of {len(frame):,} rows</p>' if more > 0 else ""
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>{note}'


def _metrics_table(rows: list[tuple[str, str, str]]) -> str:
    half = (len(rows) + 1) // 2
    parts = []
    for chunk in (rows[:half], rows[half:]):
        trs = "".join(
            f'<tr><td>{html.escape(label)}</td><td class="num">{html.escape(value)}</td></tr>'
            for _, label, value in chunk
        )
        parts.append(f'<table class="metrics"><tbody>{trs}</tbody></table>')
    return f'<div class="grid">{"".join(parts)}</div>'


def _agent_names(rec: Recording) -> dict[Any, str]:
    agents = rec.agents
    if agents.empty:
        return {}
    return {a: str(n) if isinstance(n, str) and n else str(a) for a, n in zip(agents["agent_id"], agents["name"], strict=True)}


def _named(frame: pd.DataFrame, names: Mapping[Any, str]) -> pd.DataFrame:
    """`frame` with buyer / seller / agent name columns next to the ids (tables use the names
    the charts use)."""
    if frame.empty:
        return frame
    out = frame.copy()
    for id_column, name_column in (("buyer_id", "buyer"), ("seller_id", "seller"), ("agent_id", "agent")):
        if id_column in out:
            out[name_column] = [names.get(a, "" if pd.isna(a) else str(a)) for a in out[id_column]]
    return out


def _pre(text: str) -> str:
    return f'<pre class="sample">{html.escape(text)}</pre>'


def _llm_samples(rec: Recording) -> str:
    """What the LLM agents said (`mesa_llm.analysis.llm_content`): one prompt/answer pair per
    population, sample plans and messages, failure reasons and invalid actions with counts; every
    text cut to a length and escaped."""
    from mesa_llm.analysis.llm_content import llm_content

    content = llm_content(rec)
    parts = ["<h3>One prompt and answer per population</h3>"]
    if content["exchanges"]:
        for x in content["exchanges"]:
            parts.append(
                f"<h4>{html.escape(x['population'])}: {html.escape(x['agent'])}, step {x['step']} "
                f"({html.escape(x['purpose'])})</h4><p class=\"sub\">prompt (the last user message)</p>{_pre(x['prompt'])}"
                f'<p class="sub">answer</p>{_pre(x["answer"])}'
            )
    else:
        parts.append('<p class="none">no call was answered</p>')
    parts.append("<h3>Why calls failed</h3>")
    parts.append(_html_table(pd.DataFrame(content["failures"], columns=["kind", "reason", "calls"]), ["kind", "reason", "calls"]))
    parts.append("<h3>Invalid actions of the LLM agents</h3>")
    columns = ["action", "reason", "count", "example"]
    parts.append(_html_table(pd.DataFrame(content["invalid_actions"], columns=columns), columns))
    parts.append("<h3>Sample plans</h3>")
    parts.append(_html_table(pd.DataFrame(content["plans"], columns=["step", "agent", "text"]), ["step", "agent", "text"]))
    parts.append("<h3>Sample messages</h3>")
    columns = ["step", "sender", "to", "text"]
    parts.append(_html_table(pd.DataFrame(content["messages"], columns=columns), columns))
    return "".join(parts)


def _llm_section(llm: Mapping[str, Any], rec: Recording | None = None) -> str:
    """The LLM activity of the run: totals, then valid / invalid tool calls and actions by
    population, then (given the recording) what the agents said: `_llm_samples`; empty when the
    run made no LLM call."""
    if not llm.get("calls"):
        return ""
    totals = [
        ("calls", f"{llm['calls']:,}"),
        ("failed calls", f"{llm.get('failed_calls', 0):,}"),
        ("cached calls", f"{llm.get('cached_calls', 0):,}"),
        ("prompt tokens", f"{llm.get('prompt_tokens', 0):,}"),
        ("completion tokens", f"{llm.get('completion_tokens', 0):,}"),
        ("cost (USD)", f"{llm.get('cost_usd') or 0:.4f}"),
        ("mean latency (s)", f"{llm['mean_latency_s']:.2f}" if llm.get("mean_latency_s") is not None else "n/a"),
        ("models", ", ".join(llm.get("models") or [])),
    ]
    head = "".join(f"<tr><td>{html.escape(k)}</td><td class=\"num\">{html.escape(v)}</td></tr>" for k, v in totals)
    rows = [
        {"population": label, **{k: v for k, v in p.items()}}
        for label, p in (llm.get("populations") or {}).items()
    ]
    columns = ["population", "agents", "calls", "failed_calls", "valid_tool_calls", "invalid_tool_calls",
               "repaired_tool_calls", "actions_applied", "waits", "rejected_actions"]  # fmt: skip
    by_population = _html_table(pd.DataFrame(rows), columns) if rows else ""
    warnings = "".join(f'<p class="warn">{html.escape(w)}</p>' for w in llm.get("warnings") or [])
    samples = _llm_samples(rec) if rec is not None else ""
    return f'<table class="metrics"><tbody>{head}</tbody></table><h3>By population</h3>{by_population}{warnings}{samples}'


def _stress_section(metrics: Mapping[str, Any]) -> str:
    """Per stress event, once, with its span: drawdown, recovery, volatility amplification,
    volume, depth and spread before, during and after (`summary_metrics(...)["stress"]`, the
    numbers of ``analyze``'s terminal table and the CSV); empty without stress events."""
    from mesa_llm.analysis.stress import STRESS_COLUMNS, stress_span

    stress = metrics.get("stress") or {}
    if not stress:
        return ""
    rows = []
    for row in stress.values():
        out: dict[str, Any] = {
            "event": str(row["type"]), "span": stress_span(row), "good": row.get("good"),
            "magnitude": row.get("magnitude"),
        }  # fmt: skip
        for key, label, digits in STRESS_COLUMNS:
            value = row.get(key)
            out[label] = "-" if value is None else (f"{value:,.{digits}f}" if digits else str(int(value)))
        out["recovered"] = {True: "yes", False: "no"}.get(row.get("recovered"), "-")
        rows.append(out)
    frame = pd.DataFrame(rows)
    note = (
        '<p class="sub">Windows of the event\'s duration (at least 5 steps) before, during and after it; '
        "drawdown from the last price before the event over the event and the after window; recovery: steps from "
        "the start until the price is back within 2% of that price (- : not by the end of the run). Volume and "
        "depth: units traded and ordered per step; spread: relative (ask - bid) / mid after each call.</p>"
    )
    return note + _html_table(frame, list(frame.columns))


def _welfare_section(rec: Recording) -> str:
    """Per side and per agent: surplus against own values, what it is measured against, cash
    change, and P&L with holdings marked at a stated price (`mesa_llm.analysis.welfare`, the
    dashboard's figures too); empty without agent states."""
    from mesa_llm.analysis.welfare import side_totals, welfare_table

    table = welfare_table(rec)
    if table.empty:
        return ""
    sides = pd.DataFrame(
        [{"side": side, **totals} for side, totals in side_totals(table).items()],
        columns=["side", "agents", "surplus", "agents_without_values", "marked_pnl"],
    ).rename(columns={"surplus": "surplus (against own values)", "agents_without_values": "agents without values",
                      "marked_pnl": "P&L, holdings marked"})  # fmt: skip
    agents = table.rename(columns={
        "name": "agent", "cash_change": "cash change", "surplus": "surplus (against own values)",
        "surplus_basis": "measured against", "marked_pnl": "P&L, holdings marked", "marked_at": "marked at",
    })  # fmt: skip
    columns = ["agent", "population", "side", "cash change", "surplus (against own values)", "measured against",
               "P&L, holdings marked", "marked at"]  # fmt: skip
    note = (
        '<p class="sub">Surplus: cash change plus the value, to the agent, of the units it bought minus that of '
        "the units it sold (its own induced values or costs, reservation price, or an auction's reserve); none "
        "for an agent without private values of what it traded. Marked P&amp;L: cash change plus holdings change "
        "at the stated price (the last clearing price, else the good's reference price).</p>"
    )
    return (
        f"{note}<h3>By side</h3>{_html_table(sides, list(sides.columns))}"
        f"<h3>By agent</h3>{_html_table(agents, columns, limit=200)}"
    )


def _auction_section(rec: Recording) -> str:
    """Each auction: winner, whether the highest value won, surplus of each side, efficiency,
    revenue next to its theoretical expectation (with the assumption), and the bids table
    (bidder, value, bid, shading = 1 - bid/value); empty without auctions."""
    from mesa_llm.analysis.auctions import auction_results, auction_rows

    parts = []
    for result in auction_results(rec):
        rows = "".join(
            f'<tr><td>{html.escape(label)}</td><td>{html.escape(value)}</td></tr>'
            for label, value in auction_rows(result)
        )
        bids = pd.DataFrame(result["bids"])
        if len(bids):
            bids = bids.assign(
                shading=[None if v is None or pd.isna(v) else f"{100 * v:.1f}%" for v in bids["shading"]],
                won=["yes" if w else "" for w in bids["won"]],
            ).rename(columns={"name": "bidder", "bidder": "agent_id"})
        parts.append(
            f'<h3>{html.escape(str(result["session_id"]))}</h3><table class="metrics"><tbody>{rows}</tbody></table>'
            f"<h4>Bids (shading = 1 - bid/value)</h4>{_html_table(bids, ['bidder', 'value', 'bid', 'shading', 'won'])}"
        )
    return "".join(parts)


#: most panels one plugin mechanism may add to a report
_MAX_MECHANISM_PANELS = 8


def _mechanism_panels(r: Recording) -> tuple[list[tuple[str, str, Figure]], list[str]]:
    """The panels of the plugin mechanisms the run used (`Mechanism.report_figures`, read from the
    recording), and one note per mechanism whose plugin is not available or whose panels failed."""
    from matplotlib.figure import Figure as MplFigure

    from mesa_llm.mechanisms.base import BUILTIN_MECHANISMS
    from mesa_llm.plugins import current_plugins

    scenario = r.header.get("scenario")
    spec = scenario.get("spec") if isinstance(scenario, dict) else None
    entries = spec.get("mechanisms") if isinstance(spec, dict) else None
    names = [e.get("type") for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    panels: list[tuple[str, str, Figure]] = []
    notes: list[str] = []
    for name in dict.fromkeys(n for n in names if isinstance(n, str)):
        entry = current_plugins().lookup("mechanisms", name, BUILTIN_MECHANISMS)
        shown = name[:64]
        if entry is None or not entry.usable:
            notes.append(f"mechanism {shown!r}: its plugin is not available here, so its panels are left out")
            continue
        try:
            made = list(entry.obj.report_figures(r))[:_MAX_MECHANISM_PANELS]
            for title, caption, fig in made:
                if not (isinstance(title, str) and isinstance(caption, str) and isinstance(fig, MplFigure)):
                    raise TypeError("a panel is (title, caption, matplotlib Figure)")
                panels.append((title[:200], caption[:2000], fig))
        except Exception as exc:  # noqa: BLE001 - foreign code: one line, never a failed report
            notes.append(f"mechanism {shown!r} ({entry.origin}): its panels failed: {' '.join(f'{type(exc).__name__}: {exc}'.split())[:300]}")
    return panels, notes


def render_html(rec: RecordingLike, path: str | Path) -> Path:
    """Write one self-contained HTML report (no external resource: styles inline, plots as
    base64 PNG): title, summary metrics, prices (only where trades happened, with the fundamental
    and scheduled events), volume, efficiency and Smith's alpha over time, supply and demand,
    message network, surplus by agent (each only when the run has data for it), the panels of the
    plugin mechanisms the run used (`Mechanism.report_figures`), the LLM calls
    (totals and valid / invalid by population), and the first rows of the trades, negotiation
    sessions, contracts and rejected actions with agent names. Returns the path written."""
    from mesa_llm.analysis.plots import (
        plot_efficiency_over_time,
        plot_message_network,
        plot_price_path,
        plot_supply_demand,
        plot_surplus_by_agent,
        plot_volume,
    )

    r = _recording(rec)
    metrics = summary_metrics(r)
    # a panel is drawn only when the run has something for it (no empty panels)
    has_induced = metrics.get("max_surplus") is not None
    has_trades = bool(metrics.get("trades"))
    has_prices = bool(len(r.clearings) and r.clearings["price"].notna().any()) or bool(len(r.offers))
    has_network = bool(len(r.messages) or len(r.offers))
    has_curves = has_induced or supply_and_demand(r)["source"] is not None
    plots = [
        (has_prices, "Prices", "Clearing prices at the steps where units traded (no line across steps without trades) "
         "against the competitive equilibrium (CE) of the units not yet traded; the agents' mean fundamental value "
         "(dotted) and scheduled or stress events (vertical lines); negotiation offers and agreed prices when the run "
         "has negotiations.", plot_price_path),
        (has_trades, "Volume", "Units traded per step; scheduled or stress events as vertical lines.", plot_volume),
        (has_induced and has_trades, "Efficiency and Smith's alpha over time",
         "Allocative efficiency of the trades so far (realised surplus of the induced-value economy over the maximum "
         "CE surplus; Smith 1962, Gode & Sunder 1993) and Smith's alpha of the trades so far (100 x RMS deviation "
         "of trade prices from the CE price / that price).", plot_efficiency_over_time),
        (has_curves, "Supply and demand", "Demand (unit values) and supply (unit costs) at the start of the run with "
         "their CE; without induced values, the reservation prices of single-issue price negotiations, or else the "
         "limit orders of the first step with orders.", plot_supply_demand),
        (has_network, "Message network", "Who messaged whom (arrow width grows with the count); dashed arrows are "
         "negotiation offers, rings mark agents that broadcast.", plot_message_network),
        (len(r.agent_states) > 0, "Welfare by agent",
         "Each agent's surplus in money against its own private values (induced values and costs, "
         "reservation prices, an auction's reserve): cash change plus the value to it of units bought minus "
         "that of units sold; when no agent has private values, its P&L with holdings marked at the last "
         "price. The table below gives both, per agent and per side.",
         plot_surplus_by_agent),
    ]  # fmt: skip
    panels: list[tuple[str, str, Figure]] = [(title, caption, plot(r)) for show, title, caption, plot in plots if show]
    mechanism_panels, mechanism_notes = _mechanism_panels(r)
    figures = [
        f"<h2>{html.escape(title)}</h2><figure>"
        f'<img src="data:image/png;base64,{_png(fig)}" alt="{html.escape(title)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for title, caption, fig in [*panels, *mechanism_panels]
    ]
    figures += [f'<p class="warn">{html.escape(note)}</p>' for note in mechanism_notes]
    names = _agent_names(r)
    sessions = negotiation_sessions(r)
    sections = [
        (
            "Trades",
            _html_table(_named(r.trades, names), ["step", "good", "price", "quantity", "buyer", "seller",
                                                   "buyer_fee", "seller_fee"]),
        ),
        (
            "Negotiation sessions",
            _html_table(
                sessions,
                [
                    "session_id",
                    "protocol",
                    "parties",
                    "good",
                    "opened_step",
                    "closed_step",
                    "outcome",
                    "agreements",
                ],
            ),
        ),
        (
            "Contracts",
            _html_table(
                _named(r.contracts, names),
                [
                    "contract_id",
                    "session_id",
                    "buyer",
                    "seller",
                    "good",
                    "quantity",
                    "price",
                    "value",
                    "created_step",
                    "delivery_step",
                    "settled_step",
                    "status",
                    "penalty",
                    "terms",
                ],
            ),
        ),  # fmt: skip
        (
            "Rejected actions",
            _html_table(_named(r.rejections, names), ["step", "agent", "type", "reason", "arguments"]),
        ),
    ]
    stress = _stress_section(metrics)
    if stress:
        sections.insert(0, ("Stress events", stress))
    welfare = _welfare_section(r)
    if welfare:
        sections.insert(0, ("Welfare by agent and side", welfare))
    auctions = _auction_section(r)
    if auctions:
        sections.insert(0, ("Auctions", auctions))
    llm = _llm_section(metrics.get("llm") or {}, r)
    if llm:
        sections.insert(0, ("LLM calls", llm))
    if sessions.empty:
        sections = [s for s in sections if s[0] != "Negotiation sessions"]
    if r.contracts.empty:
        sections = [s for s in sections if s[0] != "Contracts"]
    title = f"{r.scenario or 'Recording'} - {r.run_id}"
    warning = f'<p class="warn">{html.escape(r.warning)}</p>' if r.warning else ""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<h1>{html.escape(r.scenario or "Recording")}</h1>
<p class="sub">run {html.escape(r.run_id)} &middot; seed {html.escape(str(metrics.get("seed")))} &middot;
{html.escape(str(metrics.get("final_step")))} steps &middot; {metrics.get("events", 0):,} events &middot;
status {html.escape(str(metrics.get("status") or "cut"))}</p>
{warning}
<h2>Summary</h2>
{_metrics_table(metric_rows(metrics))}
{"".join(figures)}
{"".join(f"<h2>{html.escape(name)}</h2>{body}" for name, body in sections)}
<footer>Generated by mesa_llm.analysis on {generated} from {html.escape(r.path.name)}.</footer>
</main>
</body>
</html>
"""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
