"""Tests of the analysis reports: plots, the self-contained HTML page, CSV export, terminal and
A/B tables, and the loading benchmark at a small size."""

from __future__ import annotations

import html
import importlib.util
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mesa_llm.analysis import (
    compare,
    load_recording,
    plot_message_network,
    plot_price_path,
    plot_supply_demand,
    plot_surplus_by_agent,
    render_html,
    summary_table,
    write_csv,
)
from mesa_llm.analysis.loader import Recording

ROOT = Path(__file__).resolve().parents[2]


def _record(name: str, folder: Path, *overrides: str) -> Recording:
    from mesa_llm.model import MarketModel
    from mesa_llm.scenario import load_scenario

    model = MarketModel(load_scenario(name, overrides=list(overrides)), output_dir=folder)
    model.run()
    assert model.recording_path is not None
    return load_recording(model.recording_path)


@pytest.fixture(scope="module")
def auction(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    return _record("double_auction", tmp_path_factory.mktemp("auction"), "steps=12")


@pytest.fixture(scope="module")
def haggle(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    return _record("bilateral_haggle", tmp_path_factory.mktemp("haggle"))


PLOTS = [plot_price_path, plot_supply_demand, plot_message_network, plot_surplus_by_agent]


@pytest.mark.parametrize("plot", PLOTS, ids=lambda p: p.__name__)
@pytest.mark.parametrize("which", ["auction", "haggle"])
def test_each_plot_draws_data(
    plot: Callable[[Recording], Any], which: str, request: pytest.FixtureRequest
) -> None:
    from matplotlib.figure import Figure

    rec = request.getfixturevalue(which)
    fig = plot(rec)
    assert isinstance(fig, Figure)
    assert any(ax.has_data() for ax in fig.axes)
    fig.canvas.draw()  # renders without error on the Agg canvas


def test_supply_demand_at_a_later_step_has_fewer_units(auction: Recording) -> None:
    first = plot_supply_demand(auction)
    later = plot_supply_demand(auction, step=12, good="widget")
    assert "step 1" in first.axes[0].get_title() and "step 12" in later.axes[0].get_title()

    def units(fig: Any) -> int:
        """Units on the longest drawn curve (a step curve of n units has n + 1 points)."""
        return max(len(line.get_xdata()) - 1 for line in fig.axes[0].get_lines() if len(line.get_xdata()) > 1)

    traded = int(auction.trades[auction.trades["step"] < 12]["quantity"].sum())
    assert traded > 0 and units(later) < units(first)


def test_plots_leave_pyplot_alone(auction: Recording) -> None:
    import matplotlib
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend()
    before = plt.get_fignums()
    plot_price_path(auction)
    assert plt.get_fignums() == before and matplotlib.get_backend() == backend


@pytest.mark.parametrize("which", ["auction", "haggle"])
def test_render_html_writes_one_self_contained_page(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    rec = request.getfixturevalue(which)
    path = render_html(rec, tmp_path / "sub" / "report.html")
    assert path.exists()
    page = path.read_text(encoding="utf-8")
    # a panel only where the run has data for it: the auction sends no message, the haggle
    # trades no unit on the exchange (its contracts are not exchange trades)
    panels = {
        "auction": ["Prices", "Volume", "Efficiency and Smith's alpha over time", "Supply and demand", "Surplus by agent"],
        "haggle": ["Prices", "Supply and demand", "Message network", "P&L by agent"],  # no induced values
    }[which]
    assert page.count('<img src="data:image/png;base64,') == len(panels)
    for heading in panels:
        assert f"<h2>{html.escape(heading)}</h2><figure>" in page
    # no external resource of any kind
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "<link" not in page and "<script" not in page and "url(" not in page
    assert rec.scenario is not None and rec.scenario in page
    assert "<h2>Summary</h2>" in page
    if which == "auction":
        assert "allocative efficiency" in page


def test_render_html_shows_tables(haggle: Recording, tmp_path: Path) -> None:
    page = render_html(haggle, tmp_path / "r.html").read_text(encoding="utf-8")
    for heading in ("Trades", "Negotiation sessions", "Contracts", "Rejected actions"):
        assert f"<h2>{heading}</h2>" in page
    assert "agreement rate" in page


def test_write_csv_writes_every_table(auction: Recording, tmp_path: Path) -> None:
    files = write_csv(auction, tmp_path / "csv")
    names = {p.stem for p in files}
    assert {
        "events",
        "trades",
        "clearings",
        "contracts",
        "agent_states",
        "summary",
        "competitive_equilibrium_by_step",
    } <= names
    assert all(p.exists() for p in files)
    trades = pd.read_csv(tmp_path / "csv" / "trades.csv")
    assert len(trades) == len(auction.trades)
    events = pd.read_csv(tmp_path / "csv" / "events.csv")
    assert len(events) == len(auction.events)
    assert events["content"].iloc[0].startswith("{")  # contents as JSON text
    summary = pd.read_csv(tmp_path / "csv" / "summary.csv")
    assert "allocative_efficiency" in set(summary["metric"])


def test_summary_table_rows(auction: Recording) -> None:
    rows = dict(summary_table(auction))
    assert rows["scenario"] == "double_auction"
    # the table shows the recording's own numbers
    assert rows["trades"] == f"{len(auction.trades):,}"
    assert rows["volume (units)"] == f"{int(auction.trades['quantity'].sum()):,}"
    assert rows["allocative efficiency"].endswith("%")


def test_compare_gives_rows_for_both(auction: Recording, haggle: Recording) -> None:
    rows = compare(auction, haggle)
    assert all(len(row) == 3 for row in rows)
    by_metric = {metric: (a, b) for metric, a, b in rows}
    assert by_metric["scenario"] == ("double_auction", "bilateral_haggle")
    assert by_metric["allocative efficiency"][1] == "n/a"  # only the auction has induced values
    assert by_metric["agreement rate"][0] == "n/a"  # only the haggle negotiates
    assert compare(auction.path, auction.path)[0] == (
        "scenario",
        "double_auction",
        "double_auction",
    )


def test_the_benchmark_runs_at_a_small_size() -> None:
    spec = importlib.util.spec_from_file_location(
        "bench_analysis", ROOT / "benchmarks" / "bench_analysis.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_analysis"] = module
    try:
        spec.loader.exec_module(module)
        result = module.run(2000)
    finally:
        sys.modules.pop("bench_analysis", None)
    assert 2000 <= result["events"] < 2300
    assert result["rows"]["events"] == result["events"]
    assert result["rows"]["trades"] > 0 and result["rows"]["actions"] > 0
    assert result["load_s"] >= result["load_recording_s"] > 0
    assert result["allocative_efficiency"] is not None
