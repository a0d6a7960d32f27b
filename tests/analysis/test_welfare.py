"""Welfare as a researcher reads it (issue 19, item 3): surplus in money against each agent's own
private values (induced values/costs, reservation prices, an auction's reserve), per side, in the
report and the dashboard from one function; marks-to-market kept apart, at a stated price."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mesa_llm import Simulation
from mesa_llm.analysis import load_recording
from mesa_llm.analysis.metrics import summary_metrics
from mesa_llm.analysis.report import render_html
from mesa_llm.analysis.welfare import agent_welfare, side_totals, welfare_table
from mesa_llm.dashboard.data import RunData


def _run(tmp_path: Path, scenario: str, overrides: list[str] | None = None, seed: int = 5, steps: int | None = None) -> Path:
    with Simulation.from_scenario(scenario, seed=seed, out=tmp_path, overrides=overrides or [], steps=steps) as sim:
        sim.run()
        return Path(sim.recording_path)


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _reservations(header: dict[str, Any]) -> dict[int, float]:
    """Each agent's reservation price of the car, from its utility (independent of the module)."""
    [space] = header["negotiation"]["spaces"].values()
    [issue] = space["issues"]
    low, high = issue["low"], issue["high"]
    out = {}
    for a in header["agents"]:
        [u] = a["utilities"].values()
        r = u["reservation"]
        out[a["agent_id"]] = low + (1 - r) * (high - low) if u["preferences"]["price"] == "decreasing" else low + r * (high - low)
    return out


@pytest.fixture(scope="module")
def haggle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(tmp_path_factory.mktemp("haggle"), "bilateral_haggle")


def test_a_haggle_buyer_who_bought_below_value_shows_a_gain(haggle: Path) -> None:
    events = _events(haggle)
    header = events[0]["content"]
    reservation = _reservations(header)
    settled = [e["content"] for e in events if e["event_type"] == "contract" and e["content"]["stage"] == "settled"]
    assert settled
    table = welfare_table(load_recording(haggle)).set_index("agent_id")
    for c in settled:
        buyer, seller, price = c["buyer_id"], c["seller_id"], c["price"]
        assert table.at[buyer, "side"] == "buyers" and table.at[seller, "side"] == "sellers"
        assert table.at[buyer, "surplus"] == pytest.approx(reservation[buyer] - price, abs=1e-6)
        assert table.at[seller, "surplus"] == pytest.approx(price - reservation[seller], abs=1e-6)
        assert table.at[buyer, "surplus"] >= 0  # bought below its value: a gain, not the price paid
        assert table.at[buyer, "cash_change"] == pytest.approx(-price)
        assert "reservation price" in table.at[buyer, "surplus_basis"]
    # marked P&L stays a separate column, at the stated price (the car's reference price: no clearing)
    reference = header["goods"]["car"]["reference_price"]
    for c in settled:
        assert table.at[c["buyer_id"], "marked_pnl"] == pytest.approx(-c["price"] + reference)
        assert table.at[c["buyer_id"], "marked_at"] == f"car at {reference:,.2f}"


def test_side_totals_add_up_each_side_alone(haggle: Path) -> None:
    table = welfare_table(load_recording(haggle))
    totals = side_totals(table)
    for side in ("buyers", "sellers"):
        mine = table[table["side"] == side]
        assert totals[side]["agents"] == len(mine)
        assert totals[side]["surplus"] == pytest.approx(mine["surplus"].sum())
        assert totals[side]["marked_pnl"] == pytest.approx(mine["marked_pnl"].sum())
    assert totals["buyers"]["surplus"] != pytest.approx(totals["sellers"]["surplus"])
    metrics = summary_metrics(load_recording(haggle))
    assert metrics["welfare"]["buyers"]["surplus"] == pytest.approx(totals["buyers"]["surplus"])


def test_the_dashboard_and_the_report_show_the_same_welfare(haggle: Path) -> None:
    data = RunData().add_many(_events(haggle))
    dash = data.agents_table().set_index("agent_id")
    report = welfare_table(load_recording(haggle)).set_index("agent_id")
    assert list(dash.index) == list(report.index)
    for aid in report.index:
        assert dash.at[aid, "surplus"] == pytest.approx(report.at[aid, "surplus"], abs=0.005)  # to the cent
        assert dash.at[aid, "P&L marked"] == pytest.approx(report.at[aid, "marked_pnl"], abs=0.005)
        assert dash.at[aid, "side"] == report.at[aid, "side"]
        assert dash.at[aid, "measured against"] == report.at[aid, "surplus_basis"]
    assert (dash.loc[dash["side"] == "buyers", "surplus"] >= 0).all()  # not the cash change (-9,180)
    assert "buyers: surplus" in data.side_line() and "sellers: surplus" in data.side_line()


def test_the_report_labels_what_it_measures(haggle: Path, tmp_path: Path) -> None:
    page = render_html(load_recording(haggle), tmp_path / "r.html").read_text()
    section = page[page.index("<h2>Welfare by agent and side</h2>"):]
    section = section[: section.index("<h2>", 10)]
    assert "surplus (against own values)" in section and "measured against" in section
    assert "P&amp;L, holdings marked" in section and "marked at" in section
    table = welfare_table(load_recording(haggle))
    for row in table.itertuples(index=False):
        assert f"<td>{row.name}</td>" in section
        assert f"{row.surplus:,.2f}" in section
    assert "Welfare by agent" in page


def test_the_welfare_chart_draws_surplus_against_own_values(haggle: Path) -> None:
    from mesa_llm.analysis.plots import plot_surplus_by_agent

    rec = load_recording(haggle)
    ax = plot_surplus_by_agent(rec).axes[0]
    heights = sorted(p.get_height() for p in ax.patches)
    expected = sorted(welfare_table(rec)["surplus"])
    assert heights == pytest.approx(expected)
    assert "own values" in ax.get_ylabel()


def test_induced_value_traders_match_the_runs_own_surplus(tmp_path: Path) -> None:
    path = _run(tmp_path, "double_auction", seed=2)
    rec = load_recording(path)
    table = welfare_table(rec).set_index("agent_id")
    final = {e["agent_id"]: e["content"] for e in _events(path) if e["event_type"] == "agent_state"}
    for aid, state in final.items():
        assert table.at[aid, "surplus"] == pytest.approx(state["surplus"], abs=1e-6), aid
    # the dashboard marks at the same (last) clearing price as the report
    dash = RunData().add_many(_events(path)).agents_table().set_index("agent_id")
    for aid in table.index:
        assert dash.at[aid, "marked at"] == table.at[aid, "marked_at"]
    metrics = summary_metrics(rec)
    total = sum(t["surplus"] for t in metrics["welfare"].values() if t["surplus"] is not None)
    assert total == pytest.approx(metrics["realised_surplus"], abs=0.011)


def test_an_auction_seller_is_measured_against_its_reserve(tmp_path: Path) -> None:
    path = _run(tmp_path, "sealed_bid_auction", ["negotiation.sessions.0.reserve_price=250"], seed=1)
    events = _events(path)
    [c] = [e["content"] for e in events if e["event_type"] == "contract" and e["content"]["stage"] == "settled"]
    table = welfare_table(load_recording(path)).set_index("agent_id")
    assert table.at[c["seller_id"], "surplus"] == pytest.approx(c["price"] - 250)
    assert table.at[c["seller_id"], "side"] == "sellers"


def _header(agents: list[dict[str, Any]]) -> dict[str, Any]:
    return {"goods": {"widget": {"reference_price": 10.0}}, "agents": agents}


def test_units_are_valued_in_order_and_beyond_the_schedule_count_nothing() -> None:
    header = _header([
        {"agent_id": 1, "name": "b", "role": "buyer", "population": "p", "endowment": {"cash": 100.0, "holdings": {}},
         "private": {"widget": {"values": [30.0, 20.0], "costs": []}}},
        {"agent_id": 2, "name": "s", "role": "seller", "population": "q", "endowment": {"cash": 0.0, "holdings": {"widget": 3}},
         "private": {"widget": {"values": [], "costs": [5.0, 8.0]}}},
        {"agent_id": 3, "name": "x", "role": "speculator", "population": "r", "endowment": {"cash": 50.0, "holdings": {}}},
        {"agent_id": 4, "name": "g", "role": "buyer", "population": "p", "endowment": {"cash": 100.0, "holdings": {}},
         "private": {"gadget": {"values": [50.0], "costs": []}}},
        {"agent_id": 5, "name": "idle", "role": "regulator", "population": "z", "endowment": {"cash": 0.0, "holdings": {}}},
    ])  # fmt: skip
    states = {
        1: {"cash": 64.0, "holdings": {"widget": 3}, "units_bought": {"widget": 3}, "units_sold": {}},
        2: {"cash": 36.0, "holdings": {"widget": 0}, "units_bought": {}, "units_sold": {"widget": 3}},
        3: {"cash": 40.0, "holdings": {"widget": 1}, "units_bought": {"widget": 1}, "units_sold": {}},
        4: {"cash": 90.0, "holdings": {"widget": 1}, "units_bought": {"widget": 1}, "units_sold": {}},
        5: {"cash": 0.0, "holdings": {}, "units_bought": {}, "units_sold": {}},
    }
    table = agent_welfare(header, states, {"widget": 12.0}).set_index("agent_id")
    assert table.at[1, "surplus"] == pytest.approx(-36 + 30 + 20)  # the third unit is worth nothing to it
    assert table.at[2, "surplus"] == pytest.approx(36 - 5 - 8)  # a third unit without a cost
    assert pd.isna(table.at[3, "surplus"]) and table.at[3, "surplus_basis"] == "no private values of what it traded"
    assert pd.isna(table.at[5, "surplus"]) and table.at[5, "side"] == "others"  # no values, no trade: no surplus, not 0
    # values of another good say nothing of what the widget was worth to it
    assert pd.isna(table.at[4, "surplus"]) and table.at[4, "marked_pnl"] == pytest.approx(-10 + 12)
    assert table.at[3, "marked_pnl"] == pytest.approx(-10 + 12) and table.at[3, "marked_at"] == "widget at 12.00"
    assert table.at[3, "side"] == "others"
    totals = side_totals(table.reset_index())
    assert totals["others"]["surplus"] is None and totals["others"]["agents_without_values"] == 2
    assert totals["buyers"]["surplus"] == pytest.approx(14) and totals["sellers"]["surplus"] == pytest.approx(23)
    assert totals["buyers"]["agents_without_values"] == 1
