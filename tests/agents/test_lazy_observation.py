"""A plain market's observations are `LazyObservation`s: their account and private parts are built
only when read, from the state kept when the agent was observed, and a batched ZI population reads
its numbers from that state without building them (`LazyObservation.zi_inputs`). Whatever is read
when, an observation must show what an eager one built at observe time shows, and the ZI fast path
must decide (and draw) exactly as deciding from the built parts does."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mesa_llm.actions import PlaceOrder, RejectedAction
from mesa_llm.agents.observation import AccountView, Observation
from mesa_llm.agents.observation_batch import LazyObservation
from mesa_llm.agents.trader import TraderAgent
from mesa_llm.decisions import decide_rule_based
from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario

#: ZI markets whose agents trade part of their schedules, hold reservations, may go short or on
#: credit, and see fewer units than they have left (the shown slice and the units left differ)
MARKETS = [
    ("double_auction", []),
    ("double_auction", ["market.private_units_shown=2", "populations.0.policy=zi_u", "populations.1.policy=zi_u"]),
    ("double_auction", ["market.private_units_shown=1", "populations.1.short_limit=2", "populations.0.credit_limit=50",
                        "populations.0.endowment.cash=120", "populations.0.private.widget.units=7",
                        "populations.0.params.quantity=2", "populations.1.params.quantity=3"]),
    ("energy_trading", ["social.reputation_shown=0"]),
]  # fmt: skip


def _eager(model: MarketModel, observations: list[tuple[TraderAgent, Any]]) -> list[tuple[TraderAgent, Observation]]:
    """Each agent's observation built now by `TraderAgent.observe` (with the lazy one's tools and surveillance)."""
    out = []
    for agent, lazy in observations:
        obs = TraderAgent.observe(
            agent, step=lazy.step, horizon=lazy.horizon, market=lazy.market, ledger=model.exchange.ledger,
            money=model.money, open_orders=lazy.open_orders,
        )  # fmt: skip
        obs.available_actions = list(lazy.available_actions)
        obs.surveillance = lazy.surveillance
        out.append((agent, obs))
    return out


def _rest_orders(model: MarketModel) -> None:
    """A buyer's bid at the lowest price reserving most of its cash, a seller's ask at the highest
    reserving its goods, both resting (gtc)."""
    ledger = model.exchange.ledger
    for agent in model.traders[:: max(len(model.traders) // 4, 1)]:
        for good in agent.private:
            low, high = model.exchange.admissible(good)
            if agent.role.may_buy:
                quantity = ledger.available_cash(agent.unique_id) // low - 1
                side, price = "buy", model.money.to_units(low)
            else:
                quantity = ledger.account(agent.unique_id).holdings.get(good, 0)
                side, price = "sell", model.money.to_units(high)
            if quantity > 0:
                order = PlaceOrder(good=good, side=side, price=price, quantity=quantity, lifetime="gtc")
                with contextlib.suppress(RejectedAction):
                    model.exchange.place_order(agent.unique_id, agent.role, order, model.steps)


@pytest.mark.parametrize(("scenario", "overrides"), MARKETS)
@pytest.mark.parametrize("seed", [1, 4])
def test_lazy_observations_decide_and_show_what_eager_ones_built_at_observe_time_do(
    scenario: str, overrides: list[str], seed: int
) -> None:
    model = MarketModel(load_scenario(scenario, overrides=overrides), seed=seed, steps=12, record=False)
    fast = 0
    while model.running:
        if model.steps % 3 == 1:  # resting orders: reservations move an account without a trade
            _rest_orders(model)
        observations = model.prepare_step()
        eager = _eager(model, observations)
        lazy_rng, eager_rng = copy.deepcopy(model.rng), copy.deepcopy(model.rng)
        unread = [obs.unread() for _, obs in observations if isinstance(obs, LazyObservation)]
        assert unread and all(unread)  # nothing built them: observing (and its recording) did not read them
        decided = decide_rule_based(observations, lazy_rng)
        fast += sum(obs.unread() for _, obs in observations)  # decided from the kept state, still not built
        assert decided == decide_rule_based(eager, eager_rng)
        assert lazy_rng.bit_generator.state == eager_rng.bit_generator.state  # the same draws
        model.step()  # trades, fills, reservations: the ledger and the unit counts move
        for (_, lazy), (_, obs) in zip(observations, eager, strict=True):
            assert lazy.private == obs.private and lazy.account == obs.account  # built now, as they were then
            assert lazy == obs and obs == lazy and lazy.to_dict() == obs.to_dict()
    assert fast > 0
    assert model.tallies.trades > 0


@pytest.mark.parametrize(("scenario", "overrides"), MARKETS[:3])
def test_the_zi_fast_path_records_what_deciding_from_the_built_parts_records(
    scenario: str, overrides: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run(name: str) -> list[dict[str, Any]]:
        model = MarketModel(load_scenario(scenario, overrides=overrides), seed=3, steps=15, output_dir=tmp_path,
                            run_name=name)  # fmt: skip
        model.run()
        lines = [json.loads(line) for line in Path(model.recording_path).read_text().splitlines()]  # type: ignore[arg-type]
        for line in lines:
            line.pop("timestamp", None)
        return [line for line in lines if line.get("event_type") != "simulation_start"]

    fast = run("fast")
    monkeypatch.setattr(LazyObservation, "zi_view", lambda self: None)  # every ZI agent reads the built parts
    slow = run("slow")
    assert fast == slow
    assert sum(line.get("event_type") == "trade" for line in fast) > 0


def test_a_part_set_before_deciding_is_the_one_decided_from() -> None:
    model = MarketModel(load_scenario("double_auction"), seed=1, steps=3, record=False)
    observations = model.prepare_step()
    buyers = [(a, o) for a, o in observations if o.role == "buyer"]
    assert buyers and all(o.unread() for _, o in buyers)
    for _, obs in buyers:  # no cash left: a ZI-C buyer offers nothing
        obs.account = AccountView(0.0, {}, 0.0, {}, 0.0, {})
        assert not obs.unread() and obs.zi_inputs() is None
    decisions, _, _ = decide_rule_based(buyers, copy.deepcopy(model.rng))
    assert all(d is not None and not d.actions for d in decisions)
    _, obs = buyers[0]
    del_private = {good: dataclasses.replace(view, values=[]) for good, view in obs.private.items()}
    obs.private = del_private
    assert obs.private is del_private


def test_a_lazy_observation_is_an_observation_in_every_use() -> None:
    model = MarketModel(load_scenario("double_auction"), seed=2, steps=3, record=False)
    observations = model.prepare_step()
    eager = _eager(model, observations)
    _, lazy = observations[0]
    _, obs = eager[0]
    assert isinstance(lazy, Observation) and lazy.unread()
    assert copy.deepcopy(lazy) == obs  # copies read the parts: built from the kept state
    assert dataclasses.replace(observations[1][1]) == eager[1][1]
    assert dataclasses.asdict(observations[2][1]) == dataclasses.asdict(eager[2][1])
    assert lazy != dataclasses.replace(obs, agent_id=obs.agent_id + 1)
    assert lazy.account.available_cash == obs.account.available_cash and not lazy.unread()
    with pytest.raises(TypeError):
        hash(lazy)
    assert np.isclose(lazy.account.cash, obs.account.cash)


def _fields(obs: Observation) -> dict[str, Any]:
    return {f.name: getattr(obs, f.name) for f in dataclasses.fields(Observation)}


def test_observing_sets_no_field_and_deciding_reads_none() -> None:
    """A batched ZI trader's observation is never filled: its role, market and tick come from
    what observing kept (`zi_view`), and every field shows observe-time state when read late."""
    spec = load_scenario("double_auction", overrides=["social.gossip=true"])
    model, twin = (MarketModel(spec, seed=2, steps=6, record=False) for _ in range(2))
    for _ in range(2):
        model.step()
        twin.step()
    for m in (model, twin):  # a message delivered to one agent, a rejection to another
        m.traders[0].inbox.append({"sender_id": 1, "text": "ünï"})
        m.traders[1].rejections.append({"reason": "r"})
    observations = model.prepare_step()
    at_once = [_fields(o) for _, o in twin.prepare_step()]  # the same state, read at once
    assert all(o._lazy == 7 for _, o in observations)  # nothing set or built by observing
    decide_rule_based(observations, copy.deepcopy(model.rng))
    assert all(o._lazy == 7 for _, o in observations)  # nor by deciding
    for agent, _ in observations:  # what the agents see next changes: not what was observed
        agent.inbox.append({"sender_id": 0, "text": "late"})
        agent.rejections.append({"reason": "late"})
    model.step()
    assert [_fields(o) for _, o in observations] == at_once
    assert any(o["recent_trades"] for o in at_once) and at_once[0]["messages"] and at_once[1]["rejections"]


def test_a_part_or_field_read_or_set_first_stays_when_the_rest_are_set() -> None:
    model, twin = (MarketModel(load_scenario("double_auction"), seed=2, steps=3, record=False) for _ in range(2))
    observations = model.prepare_step()
    assert all(o._lazy == 7 for _, o in observations)
    eager = _eager(twin, twin.prepare_step())  # the same state (the twin's are read: set now)
    (_, built), (_, given), (_, renamed) = observations[:3]
    account = built.account  # built before any field: filling the fields keeps it
    assert built.step == 1 and built.account is account and built == eager[0][1]
    view = AccountView(0.0, {}, 0.0, {}, 0.0, {})
    given.account = view
    assert given.role == eager[1][1].role and given.account is view and given.zi_inputs() is None
    renamed.name = "someone else"  # set before any field was read: kept, the rest as observed
    assert renamed.name == "someone else" and renamed.horizon == eager[2][1].horizon and renamed.unread()
    renamed.role = "seller"  # a field set after filling: what a batch decides from
    view_ = renamed.zi_view()
    assert view_ is not None and view_[0] == "seller" and view_[1] == eager[2][1].market.goods
    assert renamed == dataclasses.replace(eager[2][1], name="someone else", role="seller")
    copied = dataclasses.replace(renamed)  # made by __init__: every field given
    assert type(copied) is LazyObservation and not copied.unread() and copied.zi_view() is None
    assert copied == renamed
