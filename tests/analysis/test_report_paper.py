"""Reports a researcher would put in a paper (issue 11, part 7): prices only where trades happened,
volume bars, efficiency and Smith's alpha over time, the fundamental and scheduled events marked,
agent names in tables, empty panels left out, an LLM section."""

from __future__ import annotations

import html
import math

import numpy as np
import pytest
import yaml

from mesa_llm.analysis import (
    allocative_efficiency,
    efficiency_over_time,
    load_recording,
    plot_price_path,
    render_html,
    smiths_alpha,
)
from mesa_llm.analysis.loader import Recording
from mesa_llm.analysis.plots import (
    fundamental_paths,
    plot_efficiency_over_time,
    plot_volume,
    scheduled_events,
)
from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario, resolve_scenario_path, validate_scenario

_FUNDS = {"name": "funds", "role": "trader", "count": 3, "policy": "fundamental",
          "params": {"threshold": 0.02, "size": 1},
          "private": {"widget": {"fundamental": 100.0}},
          "endowment": {"cash": 2000.0, "holdings": {"widget": 5}}}  # fmt: skip


@pytest.fixture(scope="module")
def shocked(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    """double_auction with fundamental traders, a fundamental shock at step 5 and a rule change at 8."""
    raw = yaml.safe_load(resolve_scenario_path("double_auction").read_text())
    raw["steps"] = 12
    raw["populations"].append(_FUNDS)
    raw["timeline"] = [
        {"type": "shift_private", "at_step": 5, "populations": ["funds"], "good": "widget", "field": "fundamental",
         "scale": 0.5, "description": "news halves the fundamental"},
        {"type": "set_params", "at_step": 8, "populations": ["funds"], "params": {"size": 2}, "description": "bolder"},
    ]  # fmt: skip
    model = MarketModel(validate_scenario(raw, source="test"), seed=1, output_dir=tmp_path_factory.mktemp("shock"))
    model.run()
    return load_recording(model.recording_path)


@pytest.fixture(scope="module")
def llm_run(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    from mesa_llm.llm.testing import ScriptedChatModel
    from tests.support.chat_scripts import sensible

    spec = load_scenario("llm_double_auction", overrides=["steps=2", "populations.0.count=1", "populations.1.count=1"])
    model = MarketModel(spec, output_dir=tmp_path_factory.mktemp("llm"),
                        chat_model=ScriptedChatModel(sensible, name="scripted/sensible"))  # fmt: skip
    model.run()
    return load_recording(model.recording_path)


def test_prices_are_drawn_only_at_steps_with_trades(shocked: Recording) -> None:
    fig = plot_price_path(shocked)
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("clearing price")]
    traded = set(shocked.trades["step"].astype(int))
    for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True):
        assert (int(x) in traded) == (not math.isnan(y)), (x, y)
    # the line never bridges a step without trades: drawn segments join neighbouring steps only
    xs, ys = np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float)
    joined = ~np.isnan(ys[:-1]) & ~np.isnan(ys[1:])
    assert (np.diff(xs)[joined] == 1).all()
    assert 2 not in traded and {1, 3} <= traded  # an interior step without trades (seed 1): tested


def test_the_fundamental_and_the_events_are_marked(shocked: Recording) -> None:
    path = fundamental_paths(shocked)["widget"]
    assert path.loc[4] == pytest.approx(100.0) and path.loc[5] == pytest.approx(50.0)
    assert [step for step, _ in scheduled_events(shocked)] == [5, 8]
    ax = plot_price_path(shocked).axes[0]
    fundamental = [ln for ln in ax.get_lines() if ln.get_label() == "fundamental (mean)"]
    assert fundamental and min(fundamental[0].get_ydata()) == pytest.approx(50.0)
    vertical = [ln for ln in ax.get_lines() if len(set(ln.get_xdata())) == 1 and ln.get_linestyle() == "-."]
    assert sorted(float(ln.get_xdata()[0]) for ln in vertical) == [5.0, 8.0]
    labels = [t.get_text() for t in ax.texts]
    assert "news halves the fundamental" in labels


def test_volume_bars_add_up_to_the_traded_units(shocked: Recording) -> None:
    ax = plot_volume(shocked).axes[0]
    assert sum(p.get_height() for p in ax.patches) == pytest.approx(float(shocked.trades["quantity"].sum()))


def test_efficiency_and_alpha_over_time_end_at_the_run_totals(shocked: Recording) -> None:
    path = efficiency_over_time(shocked)
    assert list(path["step"]) == list(range(1, shocked.final_step + 1))
    assert path["efficiency"].iloc[-1] == pytest.approx(allocative_efficiency(shocked))
    assert path["alpha_widget"].iloc[-1] == pytest.approx(smiths_alpha(shocked)["widget"])
    fig = plot_efficiency_over_time(shocked)
    assert fig.axes[0].has_data()


def test_report_leaves_empty_panels_out_and_names_agents(shocked: Recording, tmp_path) -> None:
    page = render_html(shocked, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<h2>Message network</h2>" not in page  # nobody sent a message
    assert "<h2>LLM calls</h2>" not in page
    for heading in ("Prices", "Volume", "Efficiency and Smith's alpha over time"):
        assert f"<h2>{html.escape(heading)}</h2>" in page
    first = shocked.trades.iloc[0]
    names = dict(zip(shocked.agents["agent_id"], shocked.agents["name"], strict=True))
    assert f"<td>{html.escape(names[first['buyer_id']])}</td>" in page


def test_report_has_an_llm_section_by_population(llm_run: Recording, tmp_path) -> None:
    page = render_html(llm_run, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<h2>LLM calls</h2>" in page
    section = page[page.index("<h2>LLM calls</h2>"):]
    for population in ("llm_buyers", "llm_sellers"):
        assert f"<td>{population}</td>" in section
    for column in ("valid_tool_calls", "invalid_tool_calls", "failed_calls"):
        assert f"<th>{column}</th>" in section
    assert "prompt tokens" in section and "cost (USD)" in section


def test_the_fundamental_follows_a_flash_crash_from_the_clearing_records(tmp_path) -> None:
    """A flash crash moves fundamentals step by step (the header alone cannot say): the clearing
    records carry the mean fundamental, and the report's line is theirs."""
    model = MarketModel(load_scenario("financial_market_stress"), steps=22, output_dir=tmp_path)
    model.run()
    path = fundamental_paths(load_recording(model.recording_path))["stock"]
    assert path.loc[20] == pytest.approx(0.9 * path.loc[19], rel=1e-4)
    assert path.loc[21] == pytest.approx(0.91 * path.loc[19], rel=1e-4)  # recovering linearly
