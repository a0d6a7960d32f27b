"""The Mesa model end to end: pipeline, world rules, rejections, conservation, data collection."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from mesa_llm.actions import (
    ActionValidationError,
    Broadcast,
    CancelOrder,
    PlaceOrder,
    SendMessage,
)
from mesa_llm.agents.observation import Observation
from mesa_llm.model import MarketModel
from mesa_llm.scenario import validate_scenario
from tests.support.scripted import Scripted, scripted_model


def _events(model: MarketModel) -> list[dict[str, Any]]:
    path = model.recording_path
    assert path is not None
    return [json.loads(line) for line in path.read_text().splitlines()]


def _conserved(model: MarketModel, cash0: int, goods0: dict[str, int]) -> None:
    ledger = model.exchange.ledger
    ledger.check_invariants()
    assert ledger.total_cash() == cash0
    for good, total in goods0.items():
        assert ledger.total_goods(good) == total
    for account in ledger.accounts():
        assert account.cash >= -account.credit_limit
        assert all(q >= -account.short_limit for q in account.holdings.values())


def test_tiny_auction_trades_and_conserves_every_step(small_auction, tmp_path):
    model = MarketModel(validate_scenario(small_auction), output_dir=tmp_path)
    ledger = model.exchange.ledger
    cash0 = ledger.total_cash()
    goods0 = {g: ledger.total_goods(g) for g in model.exchange.goods}
    while model.running:
        model.step()
        _conserved(model, cash0, goods0)
    model.finish()
    assert model.tallies.volume > 0
    # buyers never pay more than their values, sellers never sell below cost (ZI-C + limit prices)
    for event in _events(model):
        if event["event_type"] == "trade":
            assert 50.0 <= event["content"]["price"] <= 150.0
    # every surplus is non-negative for ZI-C traders
    assert all(model.agent_surplus(a) >= 0 for a in model.traders)


def test_every_shipped_scenario_runs_and_conserves(tmp_path):
    from mesa_llm.scenario import load_scenario, shipped_scenarios

    assert {"double_auction", "commodity_exchange"} <= set(shipped_scenarios())
    for name in shipped_scenarios():
        spec = load_scenario(name)
        model = MarketModel(spec, steps=8, output_dir=tmp_path, check_invariants=True)
        ledger = model.exchange.ledger
        cash0 = ledger.total_cash()
        goods0 = {g: ledger.total_goods(g) for g in model.exchange.goods}
        model.run()
        _conserved(model, cash0, goods0)
        assert model.tallies.trades > 0 or not spec.market.call_market, name


def test_fees_go_to_the_house_and_cash_is_conserved(small_auction, tmp_path):
    small_auction["market"]["fee_per_unit"] = 0.5
    model = MarketModel(validate_scenario(small_auction), output_dir=tmp_path)
    cash0 = model.exchange.ledger.total_cash()
    model.run()
    house = model.exchange.ledger.account("house")
    assert model.tallies.volume > 0
    assert house.cash == 2 * 50 * model.tallies.volume  # 0.50 per unit per side, in ticks
    assert model.exchange.ledger.total_cash() == cash0


def test_data_collector_has_price_volume_efficiency_and_wealth(small_auction, tmp_path):
    model = MarketModel(validate_scenario(small_auction), record=False)
    model.run()
    frame = model.datacollector.get_model_vars_dataframe()
    assert {"price", "volume", "allocative_efficiency"} <= set(frame.columns)
    assert len(frame) == model.steps
    assert frame["volume"].sum() == model.tallies.volume
    eff = frame["allocative_efficiency"].dropna()
    assert (eff.diff().dropna() >= -1e-12).all()  # ZI-C never destroys surplus
    agents = model.datacollector.get_agent_vars_dataframe()
    assert "wealth" in agents.columns and len(agents) == model.steps * len(model.traders)


# --------------------------------------------------------------------------- scripted agents


def test_world_rejects_bad_actions_with_reasons_the_agent_sees_next_step(small_auction, tmp_path):
    script = {
        1: [
            PlaceOrder(good="widget", side="buy", price=100.005, quantity=1),  # off tick
            PlaceOrder(good="gold", side="buy", price=10.0, quantity=1),  # unknown good
            PlaceOrder(good="widget", side="sell", price=10.0, quantity=1),  # buyer may not sell
            PlaceOrder(good="widget", side="buy", price=90.0, quantity=2),  # 180 > 100 cash
            PlaceOrder(good="widget", side="buy", price=250.0, quantity=1),  # above max price
            CancelOrder(order_id=1),  # someone else's order
            SendMessage(recipient_id=9999, text="hello?"),
            ActionValidationError("place_order", {"price": "cheap"}, "price: not a number"),
        ],
    }
    model = scripted_model(small_auction, tmp_path, script)
    scripted = model.populations["scripted"][0]
    model.step()
    model.step()
    model.finish()
    events = _events(model)
    rejected = [e for e in events if e["event_type"] == "action_rejected" and e["agent_id"] == scripted.unique_id]
    reasons = [e["content"]["reason"] for e in rejected]
    assert len(rejected) == 8
    assert any("tick" in r for r in reasons)
    assert any("unknown good 'gold'" in r for r in reasons)
    assert any("may not sell" in r for r in reasons)
    assert any("insufficient funds" in r for r in reasons)
    assert any("outside the admissible range" in r for r in reasons)
    assert any("not one of your open orders" in r for r in reasons)
    assert any("no other agent" in r for r in reasons)
    assert any("not a number" in r for r in reasons)
    # nothing was reserved for the rejected orders
    account = model.exchange.ledger.account(scripted.unique_id)
    assert account.reserved_cash == 0 and account.cash == 10000
    # the agent sees exactly these reasons in its next observation, and only once
    step2 = [o for o in Scripted.seen if o.step == 2][0]
    assert sorted(r["reason"] for r in step2.rejections) == sorted(reasons)
    # the failing agent is recorded and did not stop the others from trading
    errors = [e for e in events if e["event_type"] == "agent_error"]
    assert errors and "model server fell over" in errors[0]["content"]["error"]
    assert any(e["event_type"] == "trade" for e in events)
    # the plan was recorded
    assert any(e["event_type"] == "plan" and e["agent_id"] == scripted.unique_id for e in events)


def test_valid_order_cancel_and_messages(small_auction, tmp_path):
    script = {
        1: [
            PlaceOrder(good="widget", side="buy", price=2.0, quantity=1, lifetime="gtc"),
            Broadcast(text="buying widgets"),
        ],
    }
    model = scripted_model(small_auction, tmp_path, script)
    scripted = model.populations["scripted"][0]
    model.step()
    open_orders = model.exchange.open_orders(scripted.unique_id)
    assert len(open_orders) == 1 and open_orders[0].price == 200
    assert model.exchange.ledger.account(scripted.unique_id).reserved_cash == 200
    Scripted.script[2] = [
        CancelOrder(order_id=open_orders[0].order_id),
        SendMessage(recipient_id=model.traders[0].unique_id, text="psst"),
    ]
    model.step()
    assert model.exchange.open_orders(scripted.unique_id) == []
    assert model.exchange.ledger.account(scripted.unique_id).reserved_cash == 0
    step2 = [o for o in Scripted.seen if o.step == 2][0]
    assert step2.open_orders and step2.open_orders[0]["lifetime"] == "gtc"
    # a broadcast is delivered to everyone else at the next step, a message only to its recipient
    first = model.traders[0]
    model.step()
    model.finish()
    events = _events(model)
    msgs = [e for e in events if e["event_type"] == "message"]
    assert msgs[0]["content"]["channel"] == "broadcast" and msgs[0]["content"]["recipient_ids"] == []
    assert msgs[1]["content"]["recipient_ids"] == [first.unique_id]
    obs_first = [
        e for e in events if e["event_type"] == "observation" and e["agent_id"] == first.unique_id
    ]
    assert [m["text"] for m in obs_first[1]["content"]["messages"]] == ["buying widgets"]
    assert [m["text"] for m in obs_first[2]["content"]["messages"]] == ["psst"]
    assert any(e["event_type"] == "order_cancelled" for e in events)


def test_timeline_shift_and_endowment_shock(small_auction, tmp_path):
    small_auction["steps"] = 4
    small_auction["timeline"] = [
        {"type": "shift_private", "at_step": 2, "populations": ["sellers"], "good": "widget", "field": "costs", "add": 10.0},
        {"type": "endow", "at_step": 3, "populations": ["buyers"], "cash": 25.0, "holdings": {"widget": 1}},
    ]
    model = MarketModel(validate_scenario(small_auction), output_dir=tmp_path)
    seller = model.populations["sellers"][0]
    buyer = model.populations["buyers"][0]
    costs_before = list(seller.private["widget"].costs)
    cash0 = model.exchange.ledger.total_cash()
    model.step()
    model.step()
    assert seller.private["widget"].costs == [c + 1000 for c in costs_before]
    model.step()
    assert model.exchange.ledger.total_cash() == cash0 + 2 * 2500
    model.exchange.ledger.check_invariants()
    assert model.exchange.ledger.account(buyer.unique_id).holdings["widget"] >= 1
    model.run()
    kinds = [e["content"]["event"]["type"] for e in _events(model) if e["event_type"] == "scheduled_event"]
    assert kinds == ["shift_private", "endow"]


def test_recording_follows_the_contract(small_auction, tmp_path):
    model = MarketModel(validate_scenario(small_auction), output_dir=tmp_path)
    model.run()
    events = _events(model)
    for e in events:
        assert set(e) >= {"event_id", "timestamp", "step", "agent_id", "event_type", "content", "metadata"}
    start = events[0]
    assert start["event_type"] == "simulation_start" and start["agent_id"] is None
    header = start["content"]
    assert header["seed"] == 1 and header["tick_size"] == 0.01
    assert header["scenario"]["name"] == "tiny_auction" and header["scenario"]["spec"]["steps"] == 5
    assert {"mesa_llm", "mesa", "numpy", "python"} <= set(header["versions"])
    agent0 = header["agents"][0]
    assert set(agent0) >= {"agent_id", "name", "role", "policy", "model", "private", "endowment"}
    assert agent0["private"]["widget"]["values"] == [150.0, 120.0]
    assert events[-1]["event_type"] == "simulation_end"
    assert events[-1]["content"]["status"] == "completed"
    types = {e["event_type"] for e in events}
    assert types >= {"step_start", "step_end", "observation", "action", "order", "clearing", "trade", "agent_state"}
    trade = next(e for e in events if e["event_type"] == "trade")
    assert set(trade["content"]) >= {"good", "price", "quantity", "buyer_id", "seller_id"}
    clearing = next(e for e in events if e["event_type"] == "clearing")
    assert set(clearing["content"]) >= {"good", "price", "volume", "price_range"}
    order = next(e for e in events if e["event_type"] == "order")
    assert set(order["content"]) >= {"order_id", "side", "good", "price", "quantity"}
    states = [e for e in events if e["event_type"] == "agent_state"]
    assert len(states) == len(model.traders)
    # final balances in the recording equal the ledger's
    for s in states:
        account = model.exchange.ledger.account(s["agent_id"])
        assert s["content"]["cash"] == model.money.to_units(account.cash)
        assert s["content"]["holdings"] == account.holdings
    # step events are grouped: every event of step k lies between its step_start and step_end
    current = 0
    for e in events[1:-1]:
        if e["event_type"] == "step_start":
            current = e["step"]
        assert e["step"] == current


@pytest.mark.parametrize("policy", ["market_maker", "fundamental", "momentum", "noise", "zi_u"])
def test_each_builtin_policy_trades_in_a_mixed_market(policy, tmp_path):
    raw = {
        "name": "mixed",
        "seed": 3,
        "steps": 30,
        "goods": [{"name": "g", "reference_price": 100.0, "min_price": 0.01, "max_price": 1000.0}],
        "market": {"check_invariants": True},
        "populations": [
            {"name": "noise_flow", "role": "trader", "count": 10, "policy": "noise", "params": {"sigma": 0.05},
             "endowment": {"cash": 10000.0, "holdings": {"g": 50}}},
            {"name": "subject", "role": "market_maker" if policy == "market_maker" else "trader", "count": 2,
             "policy": policy,
             "private": {"g": {"fundamental": 110.0, "units": 3, "values": [120.0, 110.0, 105.0], "costs": [90.0, 95.0, 99.0]}},
             "endowment": {"cash": 10000.0, "holdings": {"g": 50}}},
        ],
    }
    model = MarketModel(validate_scenario(raw), output_dir=tmp_path)
    model.run()
    subject = {a.unique_id for a in model.populations["subject"]}
    trades = [e for e in _events(model) if e["event_type"] == "trade"]
    assert any(t["content"]["buyer_id"] in subject or t["content"]["seller_id"] in subject for t in trades)


def test_fundamental_trader_buys_below_value_and_sells_above():
    from mesa_llm.agents.observation import AccountView, GoodSnapshot, MarketSnapshot, PrivateView
    from mesa_llm.agents.policies import FundamentalTrader

    def obs(last: float) -> Observation:
        snap = GoodSnapshot("g", 100.0, 0.01, 1000.0, last_price=last, price_history=[last])
        return Observation(
            step=1, horizon=10, agent_id=1, name="f", role="trader", tick_size=0.01,
            account=AccountView(1000.0, {"g": 10}, 0.0, {}, 1000.0, {"g": 10}),
            private={"g": PrivateView(fundamental=100.0)}, market=MarketSnapshot({"g": snap}),
        )

    policy = FundamentalTrader()
    rng = np.random.default_rng(0)
    low = policy.decide(obs(90.0), rng).actions
    high = policy.decide(obs(110.0), rng).actions
    fair = policy.decide(obs(100.5), rng).actions
    assert [a.side for a in low] == ["buy"] and 90.0 < low[0].price <= 100.0
    assert [a.side for a in high] == ["sell"] and 100.0 <= high[0].price < 110.0
    assert fair == []


def test_momentum_follows_the_trend():
    from mesa_llm.agents.observation import AccountView, GoodSnapshot, MarketSnapshot
    from mesa_llm.agents.policies import MomentumTrader

    def obs(history: list[float]) -> Observation:
        snap = GoodSnapshot("g", 100.0, 0.01, 1000.0, last_price=history[-1], price_history=history)
        return Observation(
            step=9, horizon=10, agent_id=1, name="m", role="speculator", tick_size=0.01,
            account=AccountView(1000.0, {"g": 10}, 0.0, {}, 1000.0, {"g": 10}),
            private={}, market=MarketSnapshot({"g": snap}),
        )

    policy = MomentumTrader()
    rng = np.random.default_rng(0)
    up = policy.decide(obs([100, 101, 102, 103, 104, 105, 106]), rng).actions
    down = policy.decide(obs([106, 105, 104, 103, 102, 101, 100]), rng).actions
    flat = policy.decide(obs([100.0] * 7), rng).actions
    assert [a.side for a in up] == ["buy"] and up[0].price > 106
    assert [a.side for a in down] == ["sell"] and down[0].price < 100
    assert flat == []


def test_market_maker_skews_quotes_against_inventory():
    from mesa_llm.agents.observation import AccountView, GoodSnapshot, MarketSnapshot
    from mesa_llm.agents.policies import MarketMaker

    def obs(inventory: int) -> Observation:
        snap = GoodSnapshot("g", 100.0, 0.01, 1000.0, last_price=100.0, price_history=[100.0])
        return Observation(
            step=1, horizon=10, agent_id=1, name="mm", role="market_maker", tick_size=0.01,
            account=AccountView(10000.0, {"g": inventory}, 0.0, {}, 10000.0, {"g": inventory}),
            private={}, market=MarketSnapshot({"g": snap}),
        )

    policy = MarketMaker()
    rng = np.random.default_rng(0)
    flat = policy.decide(obs(50), rng).actions  # first call fixes the target inventory at 50
    long = policy.decide(obs(80), rng).actions
    bid, ask = flat[0], flat[1]
    assert bid.side == "buy" and ask.side == "sell" and bid.price < 100.0 < ask.price
    assert long[0].price < bid.price and long[1].price < ask.price  # leans towards selling


def test_a_step_runs_with_the_cyclic_collector_paused_and_resumes_it(small_auction, tmp_path, monkeypatch):
    import gc

    model = MarketModel(validate_scenario(small_auction), output_dir=tmp_path)
    seen: list[bool] = []
    decide = model._decide

    def watched(observations):
        seen.append(gc.isenabled())
        return decide(observations)

    monkeypatch.setattr(model, "_decide", watched)
    assert gc.isenabled()
    model.step()
    assert seen == [False] and gc.isenabled()

    def failing(observations):
        raise RuntimeError("a step failed")

    monkeypatch.setattr(model, "_decide", failing)
    with pytest.raises(RuntimeError):
        model.step()
    assert gc.isenabled()  # resumed however the step ended
    model.finish()


def test_observation_dicts_are_built_only_for_who_needs_them(small_auction, tmp_path, monkeypatch):
    """A streaming recording writes an observation from its text; a subscriber gets its dict,
    equal to what was recorded."""
    built = 0
    to_dict = Observation.to_dict

    def counting(self):
        nonlocal built
        built += 1
        return to_dict(self)

    monkeypatch.setattr(Observation, "to_dict", counting)
    model = MarketModel(validate_scenario(small_auction), output_dir=tmp_path / "a")
    model.step()
    assert built == 0
    seen: list[dict[str, Any]] = []
    model.events.subscribe("observation", lambda event: seen.append(event.content))
    model.step()
    model.finish()
    assert built == len(model.traders) == len(seen)
    recorded = [e["content"] for e in _events(model) if e["event_type"] == "observation" and e["step"] == 2]
    assert recorded == json.loads(json.dumps(seen))


def test_the_collector_comes_back_after_the_steps_observations_are_freed(small_auction, tmp_path, monkeypatch):
    """Its first pass after a step must not walk the step's observations and decisions."""
    import gc

    def observations() -> int:
        return sum(isinstance(o, Observation) for o in gc.get_objects())

    model = MarketModel(validate_scenario(small_auction), output_dir=tmp_path)
    before = observations()  # other tests' leftovers, if any
    alive: list[int] = []
    enable = gc.enable

    def watched() -> None:
        alive.append(observations())
        enable()

    monkeypatch.setattr(gc, "enable", watched)
    model.step()
    model.step()
    monkeypatch.undo()
    model.finish()
    assert len(alive) == 2 and all(n <= before for n in alive), (before, alive)
