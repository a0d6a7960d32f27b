"""Stress events as a researcher reads them (issue 19, item 6): the HTML report has a stress
section with the numbers of ``analyze`` and the CSV, each event appears once with its span (in the
report and the dashboard), and the stress metrics use the right windows (a synthetic price path
whose answers are known)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mesa_llm import Simulation
from mesa_llm.analysis import load_recording
from mesa_llm.analysis.metrics import summary_metrics
from mesa_llm.analysis.plots import scheduled_events
from mesa_llm.analysis.report import render_html, write_csv
from mesa_llm.analysis.stress import stress_metrics, stress_rows
from mesa_llm.dashboard import charts
from mesa_llm.dashboard.data import RunData
from mesa_llm.recording import load_events


@pytest.fixture(scope="module")
def stressed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stress")
    with Simulation.from_scenario("financial_market_stress", seed=3, out=out, steps=100) as sim:
        sim.run()
        return Path(sim.recording_path)


def test_the_report_has_a_stress_section_with_the_csv_numbers(stressed: Path, tmp_path: Path) -> None:
    rec = load_recording(stressed)
    metrics = summary_metrics(rec)["stress"]
    assert len(metrics) == 3
    page = render_html(rec, tmp_path / "r.html").read_text()
    section = page[page.index("<h2>Stress events</h2>"):]
    section = section[: section.index("<h2>", 10)]
    write_csv(rec, tmp_path / "csv")
    with open(tmp_path / "csv" / "summary.csv", newline="") as handle:
        summary = {row["metric"]: row["value"] for row in csv.DictReader(handle)}
    body_rows = section.split("<tbody>")[1].split("</tr>")[:-1]
    assert len(body_rows) == 3  # each event once
    for key, row in metrics.items():
        [html_row] = [r for r in body_rows if f"<td>{row['type']}</td>" in r]
        at, duration = row["at_step"], row["duration"]
        assert f"<td>steps {at}-{at + duration - 1}</td>" in html_row
        for name, digits in (("max_drawdown", 3), ("volume_before", 1), ("volume_after", 1),
                             ("depth_before", 1), ("depth_after", 1), ("volatility_amplification", 2)):  # fmt: skip
            value = float(summary[f"stress.{key}.{name}"])
            assert f"{value:,.{digits}f}" in html_row, (key, name)
        shown = {True: "<td>yes</td>", False: "<td>no</td>"}
        if row["recovered"] is not None:
            assert shown[row["recovered"]] in html_row and shown[not row["recovered"]] not in html_row
        recovery = summary[f"stress.{key}.recovery_time"]
        assert f">{recovery or '-'}<" in html_row.replace('class="num">', ">")


def test_the_terminal_rows_show_each_event_once_with_its_span_and_after(stressed: Path) -> None:
    metrics = summary_metrics(load_recording(stressed))
    rows = stress_rows(metrics)
    assert len(rows) == 3
    for (label, effect), row in zip(rows, metrics["stress"].values(), strict=True):
        assert f"steps {row['at_step']}-{row['at_step'] + row['duration'] - 1}" in label
        assert f"-> {row['volume_after']:.1f};" in effect and f"-> {row['depth_after']:.1f};" in effect


def test_the_report_marks_each_stress_event_once(stressed: Path) -> None:
    marks = scheduled_events(load_recording(stressed))
    assert [step for step, _ in marks] == [20, 50, 80]  # not the undo records at 30, 60, 90
    assert all("(steps " in label for _, label in marks)


def test_the_dashboard_lists_each_stress_event_once_with_its_span(stressed: Path) -> None:
    data = RunData().add_many(load_events(stressed).events)
    table = data.stress_events()
    assert table["step"].tolist() == [20, 50, 80]
    assert table["span"].tolist() == ["steps 20-29", "steps 50-59", "steps 80-89"]
    assert table["end_step"].tolist() == [29, 59, 89]
    figure = charts.price_figure(data.prices(), table, "stock")
    texts = [a["text"] for a in figure["layout"]["annotations"]] if isinstance(figure, dict) else [
        a.text for a in figure.layout.annotations
    ]
    joined = " ".join(texts)
    assert joined.count("flash_crash") == 1 and "steps 20-29" in joined


# ----------------------------------------------------------------------------- windows


class _Recording:
    """The three tables `stress_metrics` reads, built from a known price path."""

    def __init__(self, scheduled: pd.DataFrame, clearings: pd.DataFrame, orders: pd.DataFrame) -> None:
        self._scheduled = scheduled
        self.clearings = clearings
        self.orders = orders

    def table(self, name: str) -> pd.DataFrame:
        return self._scheduled if name == "scheduled_event" else pd.DataFrame()


STEPS = range(1, 41)
PRICE = {s: 100.0 + (s % 2) for s in STEPS}  # 100/101 alternating: some volatility before
PRICE.update({12: 80.0})  # event A's dip
# event B: still in the 2% band at its first step (recovery counts from after the trough, not from 20)
PRICE.update({20: 99.0, 21: 90.0, 22: 85.0, 23: 92.0, 24: 97.0, 25: 99.0})
PRICE.update({19: 100.0, 26: 100.0, 32: 60.0})  # 32: a fall beyond B's windows
VOLUME = {s: 10 for s in STEPS}
VOLUME.update({15: 50, 16: 50})  # inside B's naive before window, inside A's event
VOLUME.update({20: 2, 21: 2, 22: 2, 23: 2, 24: 2, 25: 5, 26: 5, 27: 5, 28: 5, 29: 5, 30: 90})
DEPTH = {s: 3 * v for s, v in VOLUME.items()}
SPREAD = {s: 1.0 if s < 20 else 2.0 if s < 25 else 3.0 for s in STEPS}


def _synthetic() -> _Recording:
    events = [
        {"type": "flash_crash", "at_step": 12, "duration": 5, "magnitude": 0.2, "good": "x"},
        {"type": "flash_crash", "at_step": 20, "duration": 5, "magnitude": 0.15, "good": "x"},
    ]
    scheduled = pd.DataFrame(
        [
            {"step": 12, "event": events[0], "phase": "start"}, {"step": 17, "event": events[0], "phase": "end"},
            {"step": 20, "event": events[1], "phase": "start"}, {"step": 25, "event": events[1], "phase": "end"},
        ]
    )  # fmt: skip
    clearings = pd.DataFrame(
        [{"step": s, "good": "x", "price": PRICE[s], "volume": VOLUME[s],
          "bid_after": PRICE[s] - SPREAD[s] / 2, "ask_after": PRICE[s] + SPREAD[s] / 2} for s in STEPS]
    )  # fmt: skip
    orders = pd.DataFrame([{"step": s, "good": "x", "quantity": DEPTH[s]} for s in STEPS])
    return _Recording(scheduled, clearings, orders)


def _sd_of_returns(lo: int, hi: int) -> float:
    returns = [math.log(PRICE[s] / PRICE[s - 1]) for s in range(max(lo, 2), hi)]
    return float(np.std(returns, ddof=1))


def _mean(d: dict[int, Any], lo: int, hi: int) -> float:
    return float(np.mean([d[s] for s in range(lo, hi)]))


def test_windows_drawdown_and_recovery_of_a_known_path() -> None:
    metrics = stress_metrics(_synthetic())  # type: ignore[arg-type]
    a, b = metrics["flash_crash_step12_x"], metrics["flash_crash_step20_x"]
    # B: window 5; its before window starts where A ended (17), not at 20 - 5 = 15
    assert b["window"] == 5
    assert b["volume_before"] == pytest.approx(_mean(VOLUME, 17, 20))
    assert b["volume_during"] == pytest.approx(2.0) and b["volume_after"] == pytest.approx(5.0)  # [25, 30)
    assert b["depth_before"] == pytest.approx(_mean(DEPTH, 17, 20)) and b["depth_after"] == pytest.approx(15.0)
    assert b["volume_ratio"] == pytest.approx(2.0 / _mean(VOLUME, 17, 20))
    assert b["volatility_before"] == pytest.approx(_sd_of_returns(17, 20))
    assert b["volatility_during"] == pytest.approx(_sd_of_returns(20, 25))
    assert b["volatility_after"] == pytest.approx(_sd_of_returns(25, 30))
    assert b["volatility_amplification"] == pytest.approx(_sd_of_returns(20, 25) / _sd_of_returns(17, 20))
    mid = {s: PRICE[s] for s in STEPS}
    assert b["spread_before"] == pytest.approx(_mean({s: 1.0 / mid[s] for s in STEPS}, 17, 20))
    assert b["spread_during"] == pytest.approx(_mean({s: 2.0 / mid[s] for s in STEPS}, 20, 25))
    # drawdown from the last price before the event (100 at 19) over [20, 30): 100 -> 85, not the 60 at 32
    assert b["reference_price"] == 100.0
    assert b["max_drawdown"] == pytest.approx(0.15)
    assert b["trough_step"] == 22
    # recovery counted from the event's start (20) to the first step back within 2% (99 at 25)
    assert b["recovery_time"] == 5 and b["recovered"] is True
    # A: reference 101 at step 11; the dip to 80 at 12; back at 13 (101)
    assert a["reference_price"] == 101.0
    assert a["max_drawdown"] == pytest.approx((101 - 80) / 101)
    assert a["trough_step"] == 12 and a["recovery_time"] == 1
    assert a["volume_before"] == pytest.approx(10.0)  # [7, 12)


def test_a_price_that_never_leaves_the_band_recovers_in_zero_steps_and_one_that_stays_down_never() -> None:
    rec = _synthetic()
    flat = rec.clearings.copy()
    flat.loc[flat["step"].between(20, 40), "price"] = 99.0  # within 2% of 100
    metrics = stress_metrics(_Recording(rec.table("scheduled_event"), flat, rec.orders))  # type: ignore[arg-type]
    assert metrics["flash_crash_step20_x"]["recovery_time"] == 0
    down = rec.clearings.copy()
    down.loc[down["step"] >= 20, "price"] = 97.0  # 3% below, to the end of the run
    metrics = stress_metrics(_Recording(rec.table("scheduled_event"), down, rec.orders))  # type: ignore[arg-type]
    b = metrics["flash_crash_step20_x"]
    assert b["recovery_time"] is None and b["recovered"] is False
    assert b["max_drawdown"] == pytest.approx(0.03)
