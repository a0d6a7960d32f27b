"""The posted-price mechanism as the world runs it: money and goods move only through the ledger,
the world's rules hold for every agent (external, LLM, rule-based), runs are reproducible, the
plugin's parts are listed and recorded, LLM pricers get their history and the rules only.

Without the plugin installed these tests skip, except in CI (``MESA_LLM_REQUIRE_CONSUMER_MARKETS=1``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

DISTRIBUTION = "mesa-llm-consumer-markets"
ROOT = Path(__file__).resolve().parents[3]



def _events(path: Path | str | None, kind: str) -> list[dict[str, Any]]:
    assert path is not None
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if e["event_type"] == kind]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MESA_LLM_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "mesa_llm", *args], capture_output=True, text=True, env=env, timeout=600)


# ---------------------------------------------------------------------------- the ledger


@pytest.mark.parametrize("scenario", ["pricing_competition", "product_launch"])
def test_every_purchase_settles_through_the_ledger(scenario: str, tmp_path: Path) -> None:
    from mesa_llm import Simulation

    overrides = ["populations.0.policy=premium"] if scenario == "pricing_competition" else []
    with Simulation.from_scenario(scenario, overrides=overrides, steps=12, out=tmp_path, check_invariants=True) as sim:
        sim.run()
        ledger = sim.mesa_model.exchange.ledger
        consumers = ledger.account("consumers")
    setup = _events(sim.recording_path, "posted_price_setup")[0]["content"]
    outcomes = [e["content"] for e in _events(sim.recording_path, "posted_price_outcome")]
    header = _events(sim.recording_path, "simulation_start")[0]["content"]
    finals = {e["agent_id"]: e["content"] for e in _events(sim.recording_path, "agent_state")}
    for k, firm in enumerate(setup["firms"]):
        start = next(a for a in header["agents"] if a["agent_id"] == firm)["endowment"]["cash"]
        revenue = sum(o["revenue"][k] for o in outcomes)
        cost = sum(o["cost"][k] for o in outcomes)
        advertising = sum(o["advertising"][k] for o in outcomes)
        assert revenue == pytest.approx(sum(o["prices"][k] * o["quantities"][k] for o in outcomes))
        assert finals[firm]["cash"] == pytest.approx(start + revenue - cost - advertising, abs=1e-6)
        assert finals[firm]["holdings"]["product"] == 0  # every unit produced was delivered
    sold = sum(sum(o["quantities"]) for o in outcomes)
    assert sold > 0
    assert consumers.holdings["product"] == sold
    assert sim.mesa_model.money.to_units(consumers.cash) == pytest.approx(
        setup["consumer_cash"] - sum(sum(o["revenue"]) for o in outcomes), abs=1e-6
    )


def test_a_firm_pricing_below_cost_sells_only_what_it_can_pay_for(tmp_path: Path) -> None:
    # the good admits prices down to 0.5, below the cost of 1.0; each firm has 10 in cash: at a loss
    # of 0.5 a unit, firm 1 can pay for 20 units, and its other buyers get nothing
    with _external_market(tmp_path, "goods.0.min_price=0.5", "populations.0.endowment.cash=10", grid=False) as sim:
        sim.act(1, {"type": "post_price", "price": 0.5})
        sim.step()
        assert sim.mesa_model.exchange.ledger.account(1).cash == 0
    outcome = _events(sim.recording_path, "posted_price_outcome")[0]["content"]
    assert outcome["quantities"][0] == 20 and outcome["profit"][0] == -10.0
    assert outcome["rationed"][0] > 0 and outcome["rationed"][1] == 0


# ---------------------------------------------------------------------------- the world's rules


def _external_market(tmp_path: Path, *extra: str, grid: bool = True) -> Any:
    """pricing_competition with external firms (and an external shopper), on Calvano's grid."""
    from mesa_llm import Simulation

    on_grid = ["mechanisms.0.price_grid={points: 15}", "mechanisms.0.initial_price=1.466"] if grid else []
    return Simulation.from_scenario(
        "pricing_competition",
        overrides=["populations.0.policy=external", "populations.0.fallback=null", *on_grid,
                   "populations.1={name: shoppers, role: buyer, count: 1, policy: external}", *extra],
        out=tmp_path,
    )  # fmt: skip


def test_an_external_firm_is_held_to_the_grid_the_tick_and_one_price_a_step(tmp_path: Path) -> None:
    with _external_market(tmp_path) as sim:
        firm, other, shopper = 1, 2, 3
        assert sim.act(firm, {"type": "post_price", "price": "cheap"})[0]["reason"].startswith("price:")
        assert sim.act(firm, [{"type": "post_price", "price": 1.621}, {"type": "post_price", "price": 1.583}]) == []
        assert sim.act(other, {"type": "post_price", "price": 1.6}) == []  # parses; off the grid
        assert sim.act(shopper, {"type": "post_price", "price": 1.621}) == []
        report = sim.step()
        assert report.rejections[firm][1:] == [
            {"type": "post_price", "arguments": {"price": 1.583}, "reason": "you already posted a price this step"}
        ]  # (the first: the unparsable one, refused at once and recorded with the step)
        assert re.fullmatch(r"price 1\.6 is not on the price grid \(15 prices from 1\.428 to 1\.97: .*\)", report.rejections[other][0]["reason"])
        assert report.rejections[shopper][0]["reason"] == "role 'buyer' may not post_price"
        outcome = _events(sim.recording_path, "posted_price_outcome")[-1]["content"]
        assert outcome["prices"] == [1.621, 1.466]  # the refused post left the old price in force
        assert sim.act(firm, {"type": "post_price", "price": 1.6205}) == []
        assert "not a multiple of the tick size" in sim.step().rejections[firm][0]["reason"]


def test_a_firm_cannot_advertise_beyond_its_budget_or_cash(tmp_path: Path) -> None:
    with _external_market(tmp_path, "mechanisms.0.marketing_budget=50", "populations.0.endowment.cash=30") as sim:
        observation = sim.observe(1)
        assert observation.available_actions[:2] == ["post_price", "advertise"]
        assert observation.mechanisms["posted_price"]["marketing_budget_left"] == 50
        sim.act(1, [{"type": "advertise", "amount": 60}, {"type": "advertise", "amount": 40}, {"type": "advertise", "amount": 20}])
        reasons = [r["reason"] for r in sim.step().rejections[1]]
        assert reasons == [
            "advertising 60 exceeds your marketing budget left, 50",
            "insufficient funds: advertising 40 needs that much available cash",
        ]
        assert _events(sim.recording_path, "posted_price_outcome")[-1]["content"]["advertising"] == [20.0, 0.0]
        assert sim.observe(1).mechanisms["posted_price"]["marketing_budget_left"] == 30


def test_advertising_raises_a_firms_share(tmp_path: Path) -> None:
    with _external_market(tmp_path, "mechanisms.0.marketing_budget=50", "mechanisms.0.advertising={lift: 0.5, scale: 10}") as sim:
        sim.step()
        sim.act(1, {"type": "advertise", "amount": 10})
        sim.step()
    first, second = (e["content"] for e in _events(sim.recording_path, "posted_price_outcome"))
    assert first["quantities"][0] == first["quantities"][1]
    assert second["quantities"][0] > second["quantities"][1]


# ---------------------------------------------------------------------------- reproducibility


def test_sampled_demand_draws_from_the_runs_generator() -> None:
    from mesa_llm import Simulation

    def quantities(seed: int) -> list[list[int]]:
        out: list[list[int]] = []
        with Simulation.from_scenario(
            "pricing_competition", overrides=["populations.0.policy=nash", "mechanisms.0.demand=sampled"], seed=seed, steps=5, record=False
        ) as sim:
            sim.subscribe("posted_price_outcome", lambda e: out.append(e.content["quantities"] + [e.content["outside"]]))
            sim.run()
        return out

    first = quantities(4)
    assert first == quantities(4)
    assert first != quantities(5)
    assert all(sum(q) == 10_000 for q in first)


def test_the_scenarios_and_policies_conform() -> None:
    from mesa_llm_consumer_markets.policies import (
        MonopolyPricer,
        NashPricer,
        PenetrationPricer,
        PremiumPricer,
        QLearningPricer,
    )

    from mesa_llm.scenario import load_scenario
    from mesa_llm.testing import check_policy, check_scenario

    check_scenario("pricing_competition")
    check_scenario("product_launch")
    for policy in (NashPricer, MonopolyPricer, PenetrationPricer, PremiumPricer, QLearningPricer):
        spec = load_scenario("pricing_competition", overrides=[f"populations.0.policy={policy.name}"])
        check_policy(policy, scenario=spec, steps=8)


def test_the_q_learning_pricer_updates_its_table_as_calvano_et_al() -> None:
    from mesa_llm import Simulation

    # alpha 1 and delta 0: the entry of last step's state and price becomes last step's profit;
    # beta huge: it explores at its first step only (epsilon_0 = 1), then plays greedily
    params = "populations.0.params={alpha: 1.0, delta: 0.0, beta: 1000.0}"
    outcomes: list[dict[str, Any]] = []
    with Simulation.from_scenario(
        "pricing_competition", overrides=["populations.0.policy=q_learning", params, "mechanisms.0.price_grid={points: 15}",
                                          "mechanisms.0.initial_price=1.466"], steps=2, record=False,
    ) as sim:  # fmt: skip
        sim.subscribe("posted_price_outcome", lambda e: outcomes.append(dict(e.content)))
        sim.run()
        policy = sim.mesa_model.agent(1).policy
    grid = list(policy.grid)
    assert len(grid) == 15 and grid[0] == pytest.approx(1.428) and grid[-1] == pytest.approx(1.97)
    first_state = policy.state([1.466, 1.466])
    first_action = grid.index(outcomes[0]["prices"][0])
    untouched = policy.q[(first_state + 1) % len(policy.q)]  # Q_0: the same in every state
    row = policy.q[first_state]
    assert row[first_action] == pytest.approx(outcomes[0]["profit_per_consumer"][0], rel=1e-12)
    assert [k for k in range(15) if row[k] != untouched[k]] == [first_action]
    # Q_0 is the discounted profit against uniformly random rivals (delta = 0: just the profit)
    from mesa_llm_consumer_markets.economics import LogitDemand

    demand = LogitDemand.of([2.0, 2.0], 0.0, 0.25, [1.0, 1.0])
    expected = [np.mean([demand.profits([mine, theirs])[0] for theirs in grid]) for mine in grid]
    assert np.allclose(untouched, expected, rtol=1e-12)


def test_the_vectorised_sessions_are_seeded_and_learn_supra_competitive_prices() -> None:
    from mesa_llm_consumer_markets.economics import LogitDemand
    from mesa_llm_consumer_markets.qlearning import run_sessions

    demand = LogitDemand.of([2.0, 2.0], 0.0, 0.25, [1.0, 1.0])
    fast = {"beta": 2e-4, "convergence": 5_000, "max_periods": 200_000}
    first = run_sessions(demand, 6, seed=11, **fast)  # type: ignore[arg-type]
    again = run_sessions(demand, 6, seed=11, **fast)  # type: ignore[arg-type]
    assert first.converged.all()
    assert np.array_equal(first.steps, again.steps) and np.array_equal(first.profit_gain, again.profit_gain)
    assert 0.2 < first.profit_gain.mean() <= 1.0  # above Nash: supra-competitive, as in the paper
    assert first.nash_price == pytest.approx(1.4729, abs=1e-4) and len(first.grid) == 15


# ---------------------------------------------------------------------------- listed and recorded


def test_mesa_llm_plugins_lists_the_distributions_parts() -> None:
    result = _cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {(r["group"], r["name"]): r for r in json.loads(result.stdout) if r["distribution"] == DISTRIBUTION}
    assert set(rows) == {
        ("mesa_llm.mechanisms", "posted_price"),
        ("mesa_llm.scenarios", "consumer_markets"),
        *{("mesa_llm.policies", p) for p in ("nash", "monopoly", "penetration", "premium", "q_learning")},
        ("mesa_llm.metrics", "pricing"),
        ("mesa_llm.metrics", "adoption"),
    }
    assert {r["status"] for r in rows.values()} == {"loaded"}
    listed = _cli("scenarios").stdout
    assert "pricing_competition" in listed and "product_launch" in listed


def test_mesa_llm_run_prints_the_mechanisms_numbers(tmp_path: Path) -> None:
    """The terminal summary of a run shows the market's own metrics (the call-market table is empty)."""
    result = _cli("run", "pricing_competition", "--steps", "3", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("posted_price: "))
    assert "steps 3," in line and "nash_prices [1.473, 1.473]" in line and "monopoly_prices [1.925, 1.925]" in line
    # a sweep can name the mechanism's metrics before any run has stepped
    from mesa_llm.experiments.worker import summary_metric_names
    from mesa_llm.scenario import load_scenario

    names = summary_metric_names(load_scenario("pricing_competition"))
    assert {"mechanisms.posted_price.mean_price", "mechanisms.posted_price.profit_gain"} <= set(names)


def test_the_header_names_the_plugin_and_a_replay_verifies(tmp_path: Path) -> None:
    from mesa_llm import Simulation

    with Simulation.from_scenario("pricing_competition", steps=4, out=tmp_path) as sim:
        sim.run()  # no model: the LLM firms run their nash fallback
    header = _events(sim.recording_path, "simulation_start")[0]["content"]
    assert {(p["group"], p["name"]) for p in header["plugins"]} >= {
        ("mesa_llm.mechanisms", "posted_price"), ("mesa_llm.policies", "nash"), ("mesa_llm.scenarios", "consumer_markets")
    }  # fmt: skip
    assert header["scenario"]["spec"]["mechanisms"][0]["type"] == "posted_price"
    replay = _cli("replay", str(sim.recording_path), "--verify", "--out", str(tmp_path / "replays"))
    assert replay.returncode == 0, replay.stderr
    assert "identical" in replay.stdout


# ---------------------------------------------------------------------------- LLM pricers


def _answer_json(price: float) -> Any:
    from mesa_llm.llm.testing import ScriptedChatModel, text_response

    def respond(request: Any) -> Any:
        if request.purpose == "plan":
            return text_response("Hold a steady price.")
        return text_response(json.dumps({"actions": [{"tool": "post_price", "arguments": {"price": price}}]}))

    return ScriptedChatModel(respond, tool_mode="json")


def test_llm_pricers_post_within_the_schema_and_see_their_history_and_the_rules_only(tmp_path: Path) -> None:
    from mesa_llm import Simulation

    chat = _answer_json(1.8)
    with Simulation.from_scenario("pricing_competition", steps=3, out=tmp_path, chat_model=chat) as sim:
        sim.run()
    outcomes = [e["content"] for e in _events(sim.recording_path, "posted_price_outcome")]
    assert [o["prices"] for o in outcomes] == [[1.8, 1.8]] * 3
    acts = [r for r in chat.requests if r.purpose == "act"]
    assert len(acts) == 6
    price = None
    for variant in acts[0].response_format["json_schema"]["schema"]["properties"]["actions"]["items"]["anyOf"]:
        if variant["properties"]["tool"]["const"] == "post_price":
            price = variant["properties"]["arguments"]["properties"]["price"]
    assert price is not None and price["minimum"] == 1.0 and price["maximum"] == 2.5
    last = acts[-1]
    system, user = last.messages[0]["content"], last.messages[-1]["content"]
    assert "marginal cost is 1" in system and "10000 consumers" in system
    second = outcomes[1]
    assert f"- step 2: price 1.8, sold {second['quantities'][0]} units, profit {second['profit'][0]:g}" in user
    assert "Other firms' prices in force: 1.8." in user
    text = (system + user).lower()
    for word in ("collu", "cartel", "cooperat", "coordinat", "agree"):
        assert word not in text
    # the answer format's example (after "e.g.", in the tools block) shows a price, not a message
    example = user.split("e.g. ", 1)[1].split("\n", 1)[0]
    assert json.loads(example)["actions"][0]["tool"] == "post_price" and "send_message" not in example


def test_llm_pricers_are_offered_the_grid_as_an_enum(tmp_path: Path) -> None:
    from mesa_llm import Simulation

    chat = _answer_json(1.6)  # off the grid: the world refuses it
    with Simulation.from_scenario(
        "pricing_competition", overrides=["mechanisms.0.price_grid={points: 15}", "mechanisms.0.initial_price=1.466"],
        steps=1, out=tmp_path, chat_model=chat,
    ) as sim:  # fmt: skip
        sim.run()
    variants = chat.requests[-1].response_format["json_schema"]["schema"]["properties"]["actions"]["items"]["anyOf"]
    price = next(v for v in variants if v["properties"]["tool"]["const"] == "post_price")["properties"]["arguments"]["properties"]["price"]
    assert len(price["enum"]) == 15 and price["enum"][0] == pytest.approx(1.428)
    rejected = _events(sim.recording_path, "action_rejected")
    assert rejected and all("not on the price grid" in e["content"]["reason"] for e in rejected)
