"""Stress metrics: what each flash crash, volatility spike and liquidity shock did to the market.

Computed from the recording alone (the ``scheduled_event`` records of stress events and the
``clearing`` records), per event and good, over three windows of ``window`` steps (default: the
event's duration, at least :data:`MIN_WINDOW`): *before* the event (cut so it never reaches back
into an earlier stress event), *during* it ([at_step, at_step + duration)) and *after* it.

- volatility: standard deviation of log returns between consecutive clearing prices, a return
  counted in the window of the step it ends at; ``volatility_amplification`` = during / before
  (the "volatility amplification" of the Ray financial-ABM seed; > 1: the event added volatility);
- volume: mean units traded per step; ``volume_ratio`` = during / before;
- depth: mean units bid and offered per step (all orders placed for the good); ``depth_ratio``
  = during / before;
- spread: mean relative spread (ask - bid) / mid of the best limits left in the book after each
  call (``bid_after``, ``ask_after`` of the clearing record); ``spread_ratio`` = during / before;
- ``max_drawdown``: the largest fall from a running peak, starting at the last price before the
  event, over the event and the after window (a fraction: 0.1 = 10%);
- ``recovery_time``: steps from ``at_step`` until the price, after its lowest point, is back
  within ``tolerance`` (default 2%) of the last price before the event (0 if it never left that
  band; None if it had not come back by the end of the run, with ``recovered`` False).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from mesa_llm.analysis.loader import Recording

__all__ = [
    "STRESS_COLUMNS", "STRESS_EVENT_TYPES", "stress_events", "stress_label", "stress_metrics", "stress_rows", "stress_span",
]

#: the timeline types these metrics apply to (see mesa_llm.stress for their mechanics)
STRESS_EVENT_TYPES = ("flash_crash", "volatility_spike", "liquidity_shock")
#: shortest window compared, in steps (a shorter one gives no meaningful standard deviation)
MIN_WINDOW = 5
#: how close to the pre-event price counts as recovered
DEFAULT_TOLERANCE = 0.02


def stress_events(rec: Recording) -> list[dict[str, Any]]:
    """The stress events the run started: index, type, at_step, duration, magnitude, good,
    populations (one dict each, in timeline order)."""
    table = rec.table("scheduled_event")
    out: list[dict[str, Any]] = []
    if not len(table) or "event" not in table:
        return out
    phases = table["phase"] if "phase" in table else pd.Series([None] * len(table), index=table.index)
    for step, event, phase in zip(table["step"], table["event"], phases, strict=True):
        if not isinstance(event, Mapping) or event.get("type") not in STRESS_EVENT_TYPES:
            continue
        if phase not in (None, "start") or (isinstance(phase, float) and math.isnan(phase)):
            continue
        duration = int(event.get("duration") or 1)
        out.append(
            {
                "type": event["type"],
                "at_step": int(event.get("at_step") or step),
                "duration": duration,
                "magnitude": event.get("magnitude"),
                "good": event.get("good"),
                "populations": event.get("populations"),
            }
        )
    return sorted(out, key=lambda e: e["at_step"])


def _depth(rec: Recording, good: str) -> pd.Series:
    orders = rec.orders
    if not len(orders):
        return pd.Series(dtype=float)
    orders = orders[orders["good"] == good]
    qty = pd.to_numeric(orders["quantity"], errors="coerce").fillna(0).astype(float)
    return qty.groupby(pd.to_numeric(orders["step"], errors="coerce").to_numpy()).sum()


def _series(rec: Recording, good: str) -> pd.DataFrame:
    """Per step: price (NaN without trade), volume, depth (units ordered), relative spread after the call."""
    c = rec.clearings
    c = c[c["good"] == good]
    if not len(c):
        return pd.DataFrame(columns=["price", "volume", "depth", "spread"], dtype=float)
    steps = pd.to_numeric(c["step"], errors="coerce")
    price = pd.to_numeric(c["price"], errors="coerce").astype(float)
    volume = pd.to_numeric(c["volume"], errors="coerce").fillna(0).astype(float)
    bid = pd.to_numeric(c["bid_after"], errors="coerce") if "bid_after" in c else pd.Series(np.nan, index=c.index)
    ask = pd.to_numeric(c["ask_after"], errors="coerce") if "ask_after" in c else pd.Series(np.nan, index=c.index)
    mid = (bid + ask) / 2
    spread = ((ask - bid) / mid).where(mid > 0)
    frame = pd.DataFrame(
        {"price": price.to_numpy(), "volume": volume.to_numpy(), "spread": spread.astype(float).to_numpy()},
        index=steps.to_numpy(),
    )
    frame = frame.groupby(level=0).agg({"price": "last", "volume": "sum", "spread": "mean"})
    frame["depth"] = _depth(rec, good).reindex(frame.index).fillna(0.0)
    return frame.sort_index()


def _returns(frame: pd.DataFrame) -> pd.Series:
    prices = frame["price"].dropna()
    prices = prices[prices > 0]
    return pd.Series(np.diff(np.log(prices.to_numpy())), index=prices.index[1:])


def _sd(values: pd.Series) -> float | None:
    values = values.dropna()
    return float(values.std(ddof=1)) if len(values) >= 2 else None


def _mean(values: pd.Series) -> float | None:
    values = values.dropna()
    return float(values.mean()) if len(values) else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b is not None and b > 0 else None


def _between(series: pd.Series, start: int, stop: int) -> pd.Series:
    index = series.index.to_numpy()
    return series[(index >= start) & (index < stop)]


def stress_metrics(
    rec: Recording, *, window: int | None = None, tolerance: float = DEFAULT_TOLERANCE
) -> dict[str, dict[str, Any]]:
    """Per stress event and good (key ``"{type}_step{at_step}_{good}"``): the module's metrics."""
    events = stress_events(rec)
    if not events:
        return {}
    goods = sorted({str(g) for g in rec.clearings["good"].dropna()}) if len(rec.clearings) else []
    out: dict[str, dict[str, Any]] = {}
    previous_end = 1
    for event in events:
        at, duration = event["at_step"], event["duration"]
        end = at + duration
        w = window if window is not None else max(duration, MIN_WINDOW)
        # the before window never reaches back into the previous stress event
        before_start = max(at - w, previous_end, 1)
        previous_end = max(previous_end, end)
        for good in [event["good"]] if event["good"] else goods:
            frame = _series(rec, good)
            returns = _returns(frame)
            windows = {"before": (before_start, at), "during": (at, end), "after": (end, end + w)}
            row: dict[str, Any] = {
                "type": event["type"],
                "good": good,
                "at_step": at,
                "duration": duration,
                "magnitude": event["magnitude"],
                "window": w,
            }
            for name, (lo, hi) in windows.items():
                row[f"volatility_{name}"] = _sd(_between(returns, lo, hi))
                row[f"volume_{name}"] = _mean(_between(frame["volume"], lo, hi))
                row[f"depth_{name}"] = _mean(_between(frame["depth"], lo, hi))
                row[f"spread_{name}"] = _mean(_between(frame["spread"], lo, hi))
            row["volatility_amplification"] = _ratio(row["volatility_during"], row["volatility_before"])
            row["volume_ratio"] = _ratio(row["volume_during"], row["volume_before"])
            row["depth_ratio"] = _ratio(row["depth_during"], row["depth_before"])
            row["spread_ratio"] = _ratio(row["spread_during"], row["spread_before"])
            row.update(_drawdown(frame["price"], at, end + w, tolerance))
            out[f"{event['type']}_step{at}_{good}"] = row
    return out


def _drawdown(prices: pd.Series, at: int, stop: int, tolerance: float) -> dict[str, Any]:
    """Max drawdown over [at, stop) from the last price before ``at``; recovery time (to the run's end)."""
    before = prices[prices.index < at].dropna()
    if not len(before):
        return {"reference_price": None, "max_drawdown": None, "trough_step": None, "recovery_time": None, "recovered": None}
    reference = float(before.iloc[-1])
    span = _between(prices, at, stop).dropna()
    if not len(span):
        return {"reference_price": reference, "max_drawdown": None, "trough_step": None, "recovery_time": None, "recovered": None}
    path = np.concatenate([[reference], span.to_numpy()])
    peaks = np.maximum.accumulate(path)
    drawdown = float(np.max((peaks - path) / peaks))
    trough_step = int(span.idxmin())
    if float(span.min()) >= reference * (1 - tolerance):
        recovery: int | None = 0
    else:
        later = prices[prices.index >= trough_step].dropna()
        back = later[later >= reference * (1 - tolerance)]
        recovery = int(back.index[0]) - at if len(back) else None
    return {
        "reference_price": reference,
        "max_drawdown": drawdown,
        "trough_step": trough_step,
        "recovery_time": recovery,
        "recovered": recovery is not None,
    }


def stress_rows(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) rows of ``summary_metrics(...)["stress"]`` for a terminal table: each event
    once with its span; volatility, volume, depth and spread before -> during -> after."""

    def num(v: Any, digits: int = 4) -> str:
        return "-" if v is None else f"{v:.{digits}f}"

    rows = []
    for row in (metrics.get("stress") or {}).values():
        rows.append(
            (
                stress_label(row),
                f"vol {num(row['volatility_before'])} -> {num(row['volatility_during'])} -> "
                f"{num(row['volatility_after'])} (x{num(row['volatility_amplification'], 2)}); "
                f"volume {num(row['volume_before'], 1)} -> {num(row['volume_during'], 1)} -> {num(row['volume_after'], 1)}; "
                f"depth {num(row['depth_before'], 1)} -> {num(row['depth_during'], 1)} -> {num(row['depth_after'], 1)}; "
                f"spread {num(row['spread_before'])} -> {num(row['spread_during'])} -> {num(row['spread_after'])}; "
                f"drawdown {num(row['max_drawdown'], 3)}; "
                f"recovery {'-' if row['recovery_time'] is None else row['recovery_time']} steps",
            )
        )
    return rows


def stress_span(row: Mapping[str, Any]) -> str:
    """The steps a stress event lasts: "steps 20-29" (or "step 20")."""
    at, duration = int(row["at_step"]), int(row["duration"] or 1)
    return f"steps {at}-{at + duration - 1}" if duration > 1 else f"step {at}"


def stress_label(row: Mapping[str, Any]) -> str:
    """One stress event of `stress_metrics` in words: type, span, good and magnitude."""
    return f"{row['type']} {stress_span(row)} ({row['good']}, m={row['magnitude']})"


#: (key of a `stress_metrics` row, label, digits) of the report's stress table, in order
STRESS_COLUMNS: list[tuple[str, str, int]] = [
    ("max_drawdown", "max drawdown", 3),
    ("trough_step", "trough step", 0),
    ("recovery_time", "recovery (steps)", 0),
    ("volatility_before", "volatility before", 4),
    ("volatility_during", "volatility during", 4),
    ("volatility_after", "volatility after", 4),
    ("volatility_amplification", "volatility amplification", 2),
    ("volume_before", "volume before", 1),
    ("volume_during", "volume during", 1),
    ("volume_after", "volume after", 1),
    ("depth_before", "depth before", 1),
    ("depth_during", "depth during", 1),
    ("depth_after", "depth after", 1),
    ("spread_before", "spread before", 4),
    ("spread_during", "spread during", 4),
    ("spread_after", "spread after", 4),
]
