"""The public Simulation API: build, step, subscribe, schedule, act for external agents, observe,
snapshot and close — and every run it makes replays with --verify."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from mesa_llm import Simulation
from mesa_llm.model import MarketModel
from mesa_llm.replay import replay
from mesa_llm.scenario import ScenarioError, load_scenario
from mesa_llm.simulation import ExternalAgentError, SimulationClosedError


def _events(path: Path | None) -> list[dict[str, Any]]:
    assert path is not None
    return [json.loads(line) for line in path.read_text().splitlines()]


def _without_time(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["step"], e["agent_id"], e["event_type"], json.dumps(e["content"], sort_keys=True)) for e in events
            if e["event_type"] not in ("simulation_start", "simulation_end")]  # fmt: skip


ME = {
    "name": "me", "role": "buyer", "count": 1, "policy": "external",
    "private": {"widget": {"units": 2, "values": [150.0, 140.0]}}, "endowment": {"cash": 1000.0},
}  # fmt: skip
WITH_ME = [f"populations.2={json.dumps(ME)}"]


def _external_sim(tmp_path: Path, **kwargs: Any) -> Simulation:
    return Simulation.from_scenario("double_auction", seed=3, out=tmp_path, overrides=WITH_ME, **kwargs)


# ----------------------------------------------------------------------------- building


def test_from_scenario_takes_a_name_a_path_a_spec_and_a_dict_alike(tmp_path: Path, small_auction) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(small_auction))  # JSON is YAML
    runs = []
    for source in ("x", path, load_scenario(path), small_auction):
        if source == "x":
            continue
        with Simulation.from_scenario(source, seed=5, record=False) as sim:
            runs.append(sim.run().to_dict() | {"recording": None})
    assert len(runs) == 3 and runs[0] == runs[1] == runs[2]
    assert small_auction["populations"][0]["count"] == 2  # the dict given is left unchanged


def test_overrides_and_validation_are_those_of_validate(small_auction) -> None:
    with Simulation.from_scenario(small_auction, overrides=["populations.0.count=3"], record=False) as sim:
        assert sum(a["population"] == "buyers" for a in sim.agents()) == 3
    with pytest.raises(ScenarioError, match=r"populations.0.count"):
        Simulation.from_scenario(small_auction, overrides=["populations.0.count=-1"])
    bad = dict(small_auction, populations=[dict(small_auction["populations"][0], policy="nope")])
    with pytest.raises(ScenarioError, match="unknown policy 'nope'"):
        Simulation.from_scenario(bad)


def test_a_run_through_the_api_records_what_the_model_records(tmp_path: Path) -> None:
    with Simulation.from_scenario("double_auction", seed=4, out=tmp_path / "a") as sim:
        summary = sim.run()
    model = MarketModel(load_scenario("double_auction"), seed=4, output_dir=tmp_path / "b")
    direct = model.run()
    assert summary.to_dict() | {"recording": None} == direct.to_dict() | {"recording": None}
    assert _without_time(_events(sim.recording_path)) == _without_time(_events(model.recording_path))


# ----------------------------------------------------------------------------- stepping, subscribing


def test_run_n_steps_then_to_the_horizon(tmp_path: Path) -> None:
    with Simulation.from_scenario("double_auction", seed=1, out=tmp_path) as sim:
        sim.run(4)
        assert sim.steps == 4 and not sim.done and sim.status == "running"
        report = sim.step()
        assert report.step == 5
        sim.run()
        assert sim.steps == sim.max_steps == 30 and sim.done
        with pytest.raises(SimulationClosedError, match="over at step 30"):
            sim.step()
    assert _events(sim.recording_path)[-1]["content"]["status"] == "completed"


def test_subscribers_get_the_recorded_events_in_order_as_they_happen(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    trades: list[tuple[int, float]] = []
    with Simulation.from_scenario("double_auction", seed=2, out=tmp_path) as sim:
        sim.subscribe("*", lambda e: seen.append(e.to_dict()))

        def on_trade(event: Any) -> None:
            assert sim.steps == event.step  # during the step: delivered as it happens
            trades.append((event.step, event.content["price"]))

        sim.subscribe("trade", on_trade)
        sim.run()
    recorded = [e for e in _events(sim.recording_path) if e["event_type"] not in ("simulation_start", "simulation_end")]
    assert [e["event_id"] for e in seen] == [e["event_id"] for e in recorded]
    assert [(e["event_type"], e["content"]) for e in seen] == [(e["event_type"], e["content"]) for e in recorded]
    assert trades == [(e["step"], e["content"]["price"]) for e in recorded if e["event_type"] == "trade"] != []


def test_a_failing_subscriber_is_reported_once_and_unsubscribed(tmp_path: Path) -> None:
    calls: list[int] = []
    others: list[int] = []

    def broken(event: Any) -> None:
        calls.append(event.step)
        raise RuntimeError("subscriber bug")

    with Simulation.from_scenario("double_auction", seed=2, out=tmp_path) as sim:
        sim.subscribe("step_start", broken)
        sim.subscribe("step_start", lambda e: others.append(e.step))
        sim.run(3)
    assert calls == [1]
    assert others == [1, 2, 3]
    assert len(sim.subscriber_errors) == 1 and "subscriber bug" in sim.subscriber_errors[0]
    assert _events(sim.recording_path)[-1]["content"]["status"] == "stopped"  # closed before its horizon


def test_subscribers_work_without_a_recording_and_unsubscribe_stops_them() -> None:
    got: list[str] = []
    with Simulation.from_scenario("double_auction", seed=2, record=False) as sim:
        handle = sim.subscribe("step_end", lambda e: got.append(e.event_id))
        sim.run(2)
        assert sim.unsubscribe(handle)
        sim.run(2)
    assert len(got) == 2 and len(set(got)) == 2


def test_async_subscribers_in_order_with_arun_and_with_plain_steps(tmp_path: Path) -> None:
    got: list[tuple[str, int]] = []

    async def slow(event: Any) -> None:
        await asyncio.sleep(0)
        got.append((event.event_type, event.step))

    async def main() -> None:
        sim = Simulation.from_scenario("double_auction", seed=2, out=tmp_path / "a")
        sim.subscribe("step_start", slow)
        sim.subscribe("step_end", slow)
        await sim.arun(3)
        sim.close()

    asyncio.run(main())
    assert got == [("step_start", 1), ("step_end", 1), ("step_start", 2), ("step_end", 2), ("step_start", 3), ("step_end", 3)]
    got.clear()
    with Simulation.from_scenario("double_auction", seed=2, out=tmp_path / "b") as sim:
        sim.subscribe("step_start", slow)
        sim.run(2)
    assert got == [("step_start", 1), ("step_start", 2)]


# ----------------------------------------------------------------------------- scheduling


def test_a_scheduled_flash_crash_acts_at_the_next_step_and_replays(tmp_path: Path) -> None:
    with Simulation.from_scenario("financial_market_stress", seed=1, out=tmp_path, steps=14) as sim:
        sim.run(5)
        before = sim.state()["goods"]
        event = sim.schedule({"type": "flash_crash", "magnitude": 0.3, "duration": 4})
        assert event["at_step"] == 6 and event["type"] == "flash_crash"
        sim.run()
    assert before["stock"]["last_price"] is not None
    events = _events(sim.recording_path)
    started = [e for e in events if e["event_type"] == "scheduled_event" and e["content"]["event"]["type"] == "flash_crash"
               and e["content"].get("phase") == "start" and e["content"]["event"]["at_step"] == 6]  # fmt: skip
    assert [e["step"] for e in started] == [6]
    fundamentals = {e["step"]: e["content"]["fundamental"] for e in events if e["event_type"] == "clearing"}
    assert fundamentals[6] == pytest.approx(0.7 * fundamentals[5], rel=1e-3)
    result = replay(sim.recording_path, verify=True, output_dir=tmp_path)
    assert result.divergence is None and result.final_state_matches


@pytest.mark.parametrize(
    ("event", "at_step", "message"),
    [
        ({"type": "flash_crash", "magnitude": 1.5, "duration": 3}, None, "magnitude"),
        ({"type": "shift_private", "good": "gold", "field": "values", "add": 1}, None, "unknown good 'gold'"),
        ({"type": "endow", "populations": ["nobody"], "cash": 5}, None, "unknown population 'nobody'"),
        ({"type": "no_such_event"}, None, "type"),
        ({"type": "endow", "cash": 5}, 2, "earliest step"),
        ({"type": "endow", "cash": 5}, 99, "after the run's last step"),
    ],
)
def test_a_bad_scheduled_event_is_one_clear_error_and_changes_nothing(tmp_path: Path, event, at_step, message) -> None:
    with Simulation.from_scenario("financial_market_stress", seed=1, out=tmp_path, steps=10) as sim:
        sim.run(3)
        with pytest.raises(ValueError, match=message) as info:
            sim.schedule(event, at_step=at_step)
        assert "\n" not in str(info.value)
        sim.run()
    assert not [e for e in _events(sim.recording_path) if e["event_type"] == "event_scheduled"]


# ----------------------------------------------------------------------------- external agents


def test_an_external_agent_acts_under_the_worlds_rules_and_the_run_replays(tmp_path: Path) -> None:
    with _external_sim(tmp_path) as sim:
        [me] = sim.external_agents
        observation = sim.observe(me)
        assert observation.agent_id == me and "place_order" in observation.available_actions
        assert sim.act(me, {"type": "place_order", "good": "widget", "side": "buy", "price": 150.0, "quantity": 1}) == []
        report = sim.step()
        assert report.rejections == {}
        sim.run()
    events = _events(sim.recording_path)
    mine = [e for e in events if e["agent_id"] == me]
    assert [e["event_type"] for e in mine if e["step"] == 1 and e["event_type"] != "observation"] == ["external_actions", "action", "order"]
    recorded_obs = next(e for e in mine if e["event_type"] == "observation" and e["step"] == 1)
    assert recorded_obs["content"] == observation.to_dict()
    assert not [e for e in mine if e["event_type"] in ("action", "order") and e["step"] > 1]  # given nothing: waits
    result = replay(sim.recording_path, verify=True, output_dir=tmp_path)
    assert result.divergence is None and result.final_state_matches


def test_hostile_external_actions_are_refused_and_nothing_is_applied(tmp_path: Path) -> None:
    with _external_sim(tmp_path) as sim:
        [me] = sim.external_agents
        others = [a["agent_id"] for a in sim.agents() if a["agent_id"] != me]
        cash_before = sim.state()["agents"]
        with pytest.raises(ExternalAgentError, match="no agent 999"):
            sim.act(999, {"type": "wait"})
        with pytest.raises(ExternalAgentError, match="not driven from outside"):
            sim.act(others[0], {"type": "wait"})
        with pytest.raises(ExternalAgentError, match="expected an integer"):
            sim.act("1", {"type": "wait"})  # type: ignore[arg-type]
        refused = sim.act(
            me,
            [
                {"type": "place_order", "good": "widget", "side": "buy", "price": 1e12, "quantity": 1},
                {"type": "place_order", "good": "widget", "side": "buy", "price": float("nan"), "quantity": 1},
                {"type": "place_order", "good": "gold", "side": "buy", "price": 10.0, "quantity": 1},
                {"type": "place_order", "good": "widget", "side": "sell", "price": 10.0, "quantity": 1},
                {"type": "impose_fine", "agent_id": others[0], "amount": 100.0, "reason": "x"},
                {"type": "drop_table"},
                "not an action",
            ],
        )
        assert [r["type"] for r in refused] == ["place_order", "drop_table", "?"]
        report = sim.step()
        reasons = [r["reason"] for r in report.rejections[me]]
        assert any("outside the admissible range" in r for r in reasons)
        assert any("unknown good 'gold'" in r for r in reasons)
        assert any("insufficient goods" in r or "may not sell" in r for r in reasons)
        assert any("may not impose_fine" in r for r in reasons)
        assert any("unknown action type 'drop_table'" in r for r in reasons)
        after = {a["agent_id"]: a for a in sim.state()["agents"]}
        mine_before = next(a for a in cash_before if a["agent_id"] == me)
        assert (after[me]["cash"], after[me]["holdings"]) == (mine_before["cash"], mine_before["holdings"])
    assert not [e for e in _events(sim.recording_path) if e["agent_id"] == me and e["event_type"] in ("order", "trade")]


def test_too_many_actions_in_a_step_are_refused(tmp_path: Path) -> None:
    with _external_sim(tmp_path) as sim:
        [me] = sim.external_agents
        wait = {"type": "wait"}
        assert sim.act(me, [wait] * 32) == []
        assert sim.act(me, [wait, wait]) == [{"type": "wait", "reason": "at most 32 actions per step"}] * 2


def test_two_runs_with_the_same_seed_and_actions_record_the_same(tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        with _external_sim(tmp_path / name) as sim:
            [me] = sim.external_agents
            for step in range(10):
                sim.observe(me)
                sim.act(me, {"type": "place_order", "good": "widget", "side": "buy", "price": 100.0 + step, "quantity": 1})
                sim.step()
        runs.append(_without_time(_events(sim.recording_path)))
    assert runs[0] == runs[1]


# ----------------------------------------------------------------------------- state, close


def test_state_is_json_and_agrees_with_the_ledger(tmp_path: Path) -> None:
    with Simulation.from_scenario("financial_market_stress", seed=2, out=tmp_path, steps=6) as sim:
        sim.run(5)
        state = sim.state()
        json.dumps(state)
        model = sim.mesa_model
        ledger = model.exchange.ledger
        for row in state["agents"]:
            account = ledger.account(row["agent_id"])
            assert row["cash"] == model.money.to_units(account.cash)
            assert row["holdings"] == dict(account.holdings)
        book = state["goods"]["stock"]
        resting = [o for o in model.exchange.book.orders("stock", 1)]
        assert book["bid_depth"] == sum(o.remaining for o in resting)
        assert state["step"] == 5 and state["metrics"]["trades"] == model.tallies.trades


@pytest.mark.parametrize(("error", "status"), [(RuntimeError("boom"), "failed"), (KeyboardInterrupt(), "interrupted")])
def test_close_writes_the_right_status(tmp_path: Path, error: BaseException, status: str) -> None:
    with pytest.raises(type(error)), Simulation.from_scenario("double_auction", seed=1, out=tmp_path) as sim:
        sim.run(2)
        raise error
    end = _events(sim.recording_path)[-1]
    assert end["event_type"] == "simulation_end" and end["content"]["status"] == status
    sim.close()  # idempotent
    with pytest.raises(SimulationClosedError):
        sim.step()


def test_an_llm_run_steps_async_with_calls_on_the_callers_loop(tmp_path: Path) -> None:
    from mesa_llm.llm.testing import ScriptedChatModel, tool_call_response

    def answer(request: Any) -> Any:
        return tool_call_response("wait", {})

    async def main() -> Simulation:
        sim = Simulation.from_scenario("llm_double_auction", seed=1, out=tmp_path, steps=2, chat_model=ScriptedChatModel(answer))
        await sim.arun()
        with pytest.raises(RuntimeError, match="either by step"):
            sim._mode(False)
        sim.close()
        return sim

    sim = asyncio.run(main())
    calls = [e for e in _events(sim.recording_path) if e["event_type"] == "llm_call"]
    assert calls and [c["content"]["error"] for c in calls if c["content"]["error"]] == []
