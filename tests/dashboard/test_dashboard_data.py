"""The dashboard's panel data (mesa_llm.dashboard.data and .sessions), without a browser."""

from __future__ import annotations

import time
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pytest
from pydantic import BaseModel, Field

from mesa_llm.dashboard import charts
from mesa_llm.dashboard.data import RunData
from mesa_llm.dashboard.sessions import (
    LiveSession,
    ReplaySession,
    apply_params,
    timeline_event_types,
)
from mesa_llm.model import MarketModel
from mesa_llm.negotiation import LinearAdditiveUtility, OutcomeSpace, nash_point, pareto_frontier
from mesa_llm.recording import load_events
from mesa_llm.scenario import TimelineEvent, load_scenario

HOSTILE = '<script>window.__pwned = 1</script> **bold** <b>b</b> [link](javascript:alert(1))'


def _run(name: str, tmp_path: Path, steps: int | None = None) -> list[dict[str, Any]]:
    model = MarketModel(load_scenario(name), steps=steps, output_dir=tmp_path)
    model.run()
    return load_events(model.recording_path).events


def _ev(event_type: str, step: int, content: dict[str, Any], agent_id: int | None = None) -> dict[str, Any]:
    return {"event_type": event_type, "step": step, "agent_id": agent_id, "content": content}


HEADER = _ev(
    "simulation_start",
    0,
    {
        "goods": {"widget": {}},
        "competitive_equilibrium": {"widget": {"price_low": 90.0, "price_high": 110.0}},
        "agents": [
            {"agent_id": 1, "name": "Ann", "population": "buyers", "policy": "llm", "endowment": {"cash": 100.0, "holdings": {}}},
            {"agent_id": 2, "name": "Bob", "population": "sellers", "policy": "zi_c", "endowment": {"cash": 0.0, "holdings": {"widget": 3}}},
        ],
    },
)


def test_prices_follow_the_clearings_with_the_equilibrium_band(tmp_path: Path) -> None:
    events = _run("double_auction", tmp_path, steps=8)
    data = RunData().add_many(events)
    prices = data.prices()
    clearings = [e for e in events if e["event_type"] == "clearing"]
    assert prices["step"].tolist() == [e["step"] for e in clearings]
    recorded = [e["content"]["price"] for e in clearings]
    assert [None if np.isnan(p) else p for p in prices["price"]] == recorded
    assert prices["volume"].tolist() == [e["content"]["volume"] for e in clearings]
    ce = events[0]["content"]["competitive_equilibrium"]["widget"]
    assert set(prices["ce_low"]) == {ce["price_low"]} and set(prices["ce_high"]) == {ce["price_high"]}
    assert data.panels()["market"] and not data.panels()["negotiation"]


def test_a_stress_event_is_marked_and_moves_the_fundamental(tmp_path: Path) -> None:
    data = RunData().add_many(_run("financial_market_stress", tmp_path, steps=31))
    stress = data.stress_events()
    # the flash crash starts at step 20 and is undone at step 30 (duration 10)
    assert stress["step"].tolist() == [20, 30] and not stress["pending"].any()
    prices = data.prices().set_index("step")
    # fundamentals drop by the magnitude (10%) at once and climb back linearly
    assert prices.at[20, "fundamental"] == pytest.approx(0.9 * prices.at[19, "fundamental"], rel=1e-4)
    assert prices.at[25, "fundamental"] == pytest.approx(0.95 * prices.at[19, "fundamental"], rel=1e-4)
    assert prices.at[30, "fundamental"] == pytest.approx(prices.at[19, "fundamental"], rel=1e-4)
    figure = charts.price_figure(data.prices(), stress, "stock")
    assert [s["x0"] for s in figure["layout"]["shapes"]] == [19.5, 29.5]  # at the start of steps 20, 30
    assert [a["text"] for a in figure["layout"]["annotations"]] == ["flash_crash", "flash_crash"]


def test_an_injected_stress_event_acts_at_the_next_step(tmp_path: Path) -> None:
    """A stress type from the menu runs from the model's stress schedule: the fundamental drops."""
    live = LiveSession(load_scenario("financial_market_stress"), output_dir=tmp_path)
    assert live.step() and live.step()
    label = next(k for k in live.stress_presets() if k.startswith("flash_crash"))
    assert live.inject(label) == "flash_crash at step 3"
    live.step()
    fundamental = live.data.prices().set_index("step")["fundamental"]
    assert fundamental[3] == pytest.approx(0.9 * fundamental[2], rel=1e-4)
    # a double auction has no market makers (no liquidity shock); its flash crash hits demand
    menu = LiveSession(load_scenario("double_auction"), output_dir=tmp_path / "da").stress_presets()
    assert not [k for k in menu if k.startswith("liquidity_shock")]
    assert [k for k in menu if k.startswith("flash_crash")]


def test_supply_and_demand_of_the_last_clearing() -> None:
    events = [
        HEADER,
        _ev("order", 1, {"order_id": 1, "side": "buy", "good": "widget", "price": 120.0, "quantity": 2}, 1),
        _ev("order", 1, {"order_id": 2, "side": "buy", "good": "widget", "price": 100.0, "quantity": 1}, 1),
        _ev("order", 1, {"order_id": 3, "side": "sell", "good": "widget", "price": 90.0, "quantity": 1, "lifetime": "gtc"}, 2),
        _ev("order", 1, {"order_id": 4, "side": "sell", "good": "widget", "price": 130.0, "quantity": 2, "lifetime": "gtc"}, 2),
        _ev("clearing", 1, {"good": "widget", "price": 105.0, "volume": 1}),
        _ev("trade", 1, {"good": "widget", "price": 105.0, "quantity": 1, "buyer_id": 1, "seller_id": 2, "buy_order_id": 1, "sell_order_id": 3}),
        _ev("order", 2, {"order_id": 5, "side": "buy", "good": "widget", "price": 95.0, "quantity": 1}, 1),
        _ev("clearing", 2, {"good": "widget", "price": None, "volume": 0}),
    ]
    data = RunData().add_many(events)
    curves = data.supply_demand("widget")
    assert curves is not None and curves["step"] == 2 and curves["price"] is None
    # step 2 saw the new bid and the ask that rests (order 3 filled at step 1, order 4 rests)
    assert curves["demand"].values.tolist() == [[0.0, 95.0], [1.0, 95.0]]
    assert curves["supply"].values.tolist() == [[0.0, 130.0], [2.0, 130.0]]
    first = RunData().add_many(events[:6]).supply_demand("widget")
    assert first is not None
    assert first["demand"]["quantity"].tolist() == [0.0, 2.0, 2.0, 3.0]  # cumulative, highest bid first
    assert first["demand"]["price"].tolist() == [120.0, 120.0, 100.0, 100.0]
    assert first["supply"]["price"].tolist() == [90.0, 90.0, 130.0, 130.0]


def test_the_agents_table_from_trades_then_from_states() -> None:
    events = [
        HEADER,
        _ev("trade", 1, {"good": "widget", "price": 40.0, "quantity": 2, "buyer_id": 1, "seller_id": 2}),
    ]
    table = RunData().add_many(events).agents_table().set_index("name")
    assert table.at["Ann", "cash"] == 20.0 and table.at["Ann", "holdings"] == "widget: 2"
    assert table.at["Bob", "cash"] == 80.0 and table.at["Bob", "holdings"] == "widget: 1"
    assert set(table["source"]) == {"trades"} and table.at["Ann", "population"] == "buyers"
    events.append(_ev("agent_state", 1, {"cash": 19.0, "holdings": {"widget": 2}, "surplus": 7.5}, 1))
    table = RunData().add_many(events).agents_table().set_index("name")
    assert (table.at["Ann", "cash"], table.at["Ann", "surplus"], table.at["Ann", "source"]) == (19.0, 7.5, "state")


def test_messages_stay_verbatim_text_with_names() -> None:
    events = [
        HEADER,
        _ev("message", 1, {"recipient_ids": [2], "text": HOSTILE, "channel": "direct"}, 1),
        _ev("message", 2, {"recipient_ids": [], "text": "hello all", "channel": "broadcast"}, 2),
        _ev("alliance", 2, {"alliance": "cartel", "action": "created", "agent_id": 1}, 1),
        _ev("alliance", 2, {"alliance": "cartel", "action": "joined", "agent_id": 2}, 2),
        _ev("alliance", 3, {"alliance": "cartel", "action": "left", "agent_id": 1}, 1),
        _ev("reputation", 3, {"agent_id": 2, "before": 0.5, "after": 0.4}, 2),
    ]
    data = RunData().add_many(events)
    feed = data.message_feed()
    assert feed.to_dict("records") == [
        {"step": 2, "sender": "Bob", "recipients": "everyone", "channel": "broadcast", "text": "hello all"},
        {"step": 1, "sender": "Ann", "recipients": "Bob", "channel": "direct", "text": HOSTILE},
    ]
    assert data.alliance_table().to_dict("records") == [{"alliance": "cartel", "members": "Bob"}]
    assert data.reputation_table().to_dict("records") == [{"agent": "Bob", "reputation": 0.4}]
    assert data.panels()["messages"]


def test_the_llm_panel_sums_calls_and_keeps_last_plans_actions_and_rejections() -> None:
    usage = {"prompt_tokens": 100, "completion_tokens": 20}
    events = [
        HEADER,
        _ev("llm_call", 1, {"usage": usage, "cost_usd": 0.01, "error": None}, 1),
        _ev("llm_call", 1, {"usage": None, "cost_usd": None, "error": "timeout"}, 1),
        _ev("plan", 1, {"text": "buy low"}, 1),
        _ev("action", 1, {"type": "place_order", "arguments": {"side": "buy", "price": 90}}, 1),
        _ev("action_rejected", 1, {"type": "place_order", "arguments": {}, "reason": "over budget"}, 1),
        _ev("llm_call", 2, {"usage": usage, "cost_usd": 0.02, "error": None}, 1),
        _ev("plan", 2, {"text": "sell high"}, 1),
    ]
    data = RunData().add_many(events)
    totals = data.llm_totals()
    assert (totals["calls"], totals["failed"], totals["prompt_tokens"], totals["completion_tokens"]) == (3, 1, 200, 40)
    assert totals["cost_usd"] == pytest.approx(0.03)
    agents = data.llm_agents().to_dict("records")
    assert agents == [{"agent": "Ann", "plan_step": 2, "plan": "sell high", "actions_step": 1, "actions": "place_order side=buy, price=90"}]
    assert data.rejection_table().to_dict("records") == [{"step": 1, "agent": "Ann", "action": "place_order", "reason": "over budget"}]


def test_negotiation_sessions_offers_and_utility_space(tmp_path: Path) -> None:
    events = _run("bilateral_haggle", tmp_path)
    data = RunData().add_many(events)
    offers = [e for e in events if e["event_type"] == "offer"]
    table = data.session_table().set_index("session_id")
    assert table["offers"].sum() == len(offers)
    agreed = next(s for s in data.sessions.values() if s.agreement)
    space = data.utility_space(agreed.session_id)
    assert space is not None and len(space["offers"]) == len(agreed.offers)
    # the same frontier and Nash point as the negotiation analysis over the same grid
    header = events[0]["content"]
    outcome_space = OutcomeSpace.from_dict(agreed.space)
    by_id = {a["agent_id"]: a for a in header["agents"]}
    name = next(iter(by_id[agreed.parties[0]]["utilities"]))
    ua, ub = (LinearAdditiveUtility.from_dict(outcome_space, by_id[p]["utilities"][name]) for p in agreed.parties)
    grid = outcome_space.grid(21)
    nash = grid[nash_point([ua, ub], grid)]
    assert space["nash"] == pytest.approx((ua(nash), ub(nash)))
    assert len(space["pareto"]) == len(pareto_frontier([ua, ub], grid))
    terms = agreed.agreement["terms"]
    assert space["agreement"] == pytest.approx((ua(terms), ub(terms)))
    assert charts.utility_space_figure(space, agreed.session_id)["data"][-1]["name"] == "agreement"


class _FlashCrash(BaseModel):
    type: Literal["flash_crash"]
    at_step: int
    good: str


def test_the_pareto_frontier_of_a_multi_issue_session(tmp_path: Path) -> None:
    data = RunData().add_many(_run("supply_contract", tmp_path))
    session = next(iter(data.sessions.values()))
    space = data.utility_space(session.session_id)
    assert space is not None
    offers = data.offers(session.session_id)
    first = offers[offers["round"] == 0].set_index("issue")
    # placed in each issue's range: price 8 of [8, 16] -> 0; quantity 200 of [50, 200] -> 1; warranty by index
    assert first.at["price", "scaled"] == 0.0 and first.at["quantity", "scaled"] == 1.0
    assert offers["scaled"].between(0, 1).all()
    frontier, outcomes = space["pareto"], space["outcomes"]
    assert 1 < len(frontier) < len(outcomes) and frontier["x"].is_monotonic_increasing
    # no outcome of the grid dominates a frontier point
    grid = outcomes.to_numpy()
    for x, y in frontier.to_numpy():
        assert not ((grid[:, 0] >= x) & (grid[:, 1] >= y) & ((grid[:, 0] > x) | (grid[:, 1] > y))).any()


def test_the_stress_menu_lists_every_timeline_type() -> None:
    union = typing.get_args(TimelineEvent)[0]
    assert set(timeline_event_types().values()) == set(typing.get_args(union))
    # a type added to the timeline shows up without a change here
    extended = Annotated[union | _FlashCrash, Field(discriminator="type")]
    assert timeline_event_types(extended)["flash_crash"] is _FlashCrash
    assert set(timeline_event_types(extended)) == {*timeline_event_types(), "flash_crash"}
    live = LiveSession(load_scenario("financial_market_stress"))
    labels = list(live.stress_presets())
    assert {label.split(":")[0] for label in labels} >= {"flash_crash", "volatility_spike", "liquidity_shock", "shift_private"}


def test_live_steps_inject_and_reset(tmp_path: Path) -> None:
    live = LiveSession(load_scenario("double_auction"), output_dir=tmp_path)
    assert live.step() and live.step() and live.steps == 2 and live.data.complete_step == 2
    ce_before = live.model.tallies.equilibria["widget"].price_high
    label = next(k for k in live.stress_presets() if k.startswith("shift_private"))
    assert live.inject(label) == "shift_private at step 3"
    assert live.data.stress_events().to_dict("records") == [
        {"step": 3, "type": "shift_private", "description": "demand shock: values -30%", "good": None, "pending": True}
    ]
    live.step()
    stress = live.data.stress_events()
    assert stress[["step", "pending"]].values.tolist() == [[3, False]]  # the recorded event replaced the mark
    assert live.model.tallies.equilibria["widget"].price_high < ce_before  # the shock moved demand down
    assert len(live.data.agents_table()) == 12 and set(live.data.agents_table()["source"]) == {"state"}
    live.reset({"counts": {"buyers": 2, "sellers": 3}, "k": 0.25, "fee_per_unit": 0.0})
    assert live.steps == 0 and len(live.model.traders) == 5 and live.model.exchange.k == 0.25
    assert live.error is None and live.data.prices().empty
    live.reset({"counts": {"buyers": 2, "sellers": 3}, "k": 7, "fee_per_unit": 0.0})
    # the line `validate` prints: the scenario, then the field
    assert live.error == f"cannot reset: {live.base.source_dir / 'double_auction.yaml'}: market.k: Input should be less than or equal to 1"
    assert len(live.model.traders) == 5


def test_an_llm_scenario_runs_live_with_its_calls_in_flight(tmp_path: Path) -> None:
    import threading

    from mesa_llm.llm.testing import ScriptedChatModel, text_response, tool_call_response

    release = threading.Event()

    def answer(request: Any) -> Any:
        release.wait(10)  # the step stays in flight until the test has looked at it
        if request.purpose == "plan":
            return text_response("<b>bid</b> under value")
        return tool_call_response("place_order", {"good": "widget", "side": "buy", "price": 500.0, "quantity": 1})

    spec = load_scenario("llm_double_auction", overrides=["steps=3"])
    live = LiveSession(spec, output_dir=tmp_path, chat_model=ScriptedChatModel(answer, name="scripted/test"))
    assert live.has_llm and live.in_flight() is None
    worker = threading.Thread(target=live.step)
    worker.start()
    deadline = time.monotonic() + 10
    while live.in_flight() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    flight = live.in_flight()
    assert flight is not None and flight["step"] == 1 and flight["llm_agents"] == 6 and flight["calls_done"] == 0
    release.set()
    worker.join(20)
    assert live.in_flight() is None and live.steps == 1
    totals = live.data.llm_totals()
    assert totals["calls"] == 12 and totals["prompt_tokens"] == 120  # a plan and an act call per LLM agent
    agents = live.data.llm_agents()
    assert len(agents) == 6 and set(agents["plan"]) == {"<b>bid</b> under value"}
    assert live.data.panels()["llm"] and len(live.data.rejection_table()) > 0  # sellers may not buy


def test_apply_params_keeps_the_base_spec() -> None:
    base = load_scenario("double_auction")
    new = apply_params(base, {"counts": {"buyers": 1}, "k": 0.5, "fee_per_unit": 0.0})
    assert [p.count for p in new.populations] == [1, 6] and [p.count for p in base.populations] == [6, 6]
    assert new.recording.agent_states == "every_step"


def test_replay_goes_back_and_forth_to_the_same_data(tmp_path: Path) -> None:
    events = _run("double_auction", tmp_path, steps=6)
    path = next(tmp_path.glob("*.jsonl"))
    replay = ReplaySession(path)
    assert replay.final_step == 6
    at5 = replay.at(5).prices()
    assert replay.at(2).prices()["step"].tolist() == [1, 2]
    assert replay.at(5).prices().equals(at5) and len(at5) == 5
    fresh = RunData().add_many(e for e in events if e["step"] <= 5)
    assert fresh.prices().equals(replay.at(5).prices())


def test_nothing_in_the_package_imports_the_dashboard() -> None:
    root = Path(__file__).resolve().parents[2] / "mesa_llm"
    for path in root.rglob("*.py"):
        if "dashboard" in path.relative_to(root).parts:
            continue
        text = path.read_text(encoding="utf-8")
        if path.name == "cli.py":  # the command imports it inside its function only
            assert "\nfrom mesa_llm.dashboard" not in text and "\nimport mesa_llm.dashboard" not in text
            continue
        assert "mesa_llm.dashboard" not in text, path


@pytest.mark.requires("solara", extra="dashboard")
def test_the_dashboard_command_rejects_bad_targets_in_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mesa_llm.cli import app

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"event_type": "simulation_start"\n{"x": 1}\n')
    runner = CliRunner()
    for args in (["dashboard", str(bad), "--no-browser"], ["dashboard", "no_such_scenario", "--no-browser"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert result.output.count("\n") == 1 and result.output.startswith("error:"), result.output


@pytest.mark.requires("solara", extra="dashboard")
def test_the_server_runs_solara_without_telemetry_or_version_check(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import solara.__main__

    from mesa_llm.dashboard import server

    seen: dict[str, Any] = {}
    monkeypatch.setenv("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "")  # so that the undo removes what serve sets
    monkeypatch.delenv("SOLARA_TELEMETRY_MIXPANEL_ENABLE")
    monkeypatch.setattr(solara.__main__, "cli", lambda args, standalone_mode: seen.update(args=args))
    server.serve(9999, "127.0.0.1", open_browser=False)
    assert os.environ["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] == "False"
    assert {"--no-check-version", "--no-open", "--production"} <= set(seen["args"])
    assert seen["args"][:2] == ["run", "mesa_llm.dashboard.app"] and "9999" in seen["args"]
