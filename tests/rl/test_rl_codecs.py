"""Encoders, decoders and rewards do what their tables say: the 13 market features and the role,
the quote and Box decoders' orders and masks, the utility-level decoder's outcomes, and rewards that
add up to the realised surplus (double auction), the inventory penalty and the mean-variance term."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

if os.environ.get("MESA_LLM_REQUIRE_RL") != "1":
    pytest.importorskip("gymnasium")

from mesa_llm.rl.codecs import (  # noqa: E402
    BoxOrderDecoder,
    MarketFeatures,
    NegotiationFeatures,
    QuoteDecoder,
    UtilityLevelDecoder,
)
from mesa_llm.rl.env import MarketParallelEnv  # noqa: E402
from mesa_llm.rl.rewards import build_reward, mark_to_market  # noqa: E402
from mesa_llm.simulation import Simulation  # noqa: E402


def _stepped(scenario: str = "double_auction", steps: int = 3) -> Simulation:
    sim = Simulation.from_scenario(scenario, record=False, seed=5)
    for _ in range(steps):
        sim.step()
    return sim


def test_market_features_are_the_13_features_and_the_role() -> None:
    sim = _stepped(steps=6)
    buyer = sim.observe(1)
    enc = MarketFeatures(roles=["buyer", "seller"], good="widget")
    vec = enc.encode(buyer)
    assert vec.shape == (15,) and vec.dtype == np.float32 and enc.space.contains(vec)
    snap = buyer.market.goods["widget"]
    mark = snap.last_price if snap.last_price is not None else snap.reference_price
    assert vec[0] == pytest.approx(mark / 100.0 - 1.0, abs=1e-6)
    assert vec[1] == pytest.approx(buyer.private["widget"].values[0] / 100.0 - 1.0, abs=1e-6)
    prices = snap.price_history
    if len(prices) >= 2:
        assert vec[5] == pytest.approx(max(min(10 * math.log(prices[-1] / prices[-2]), 10), -10), abs=1e-4)  # the latest return first
    assert vec[12] == pytest.approx(buyer.step / buyer.horizon)
    assert vec[13:].tolist() == [1.0, 0.0]
    seller = enc.encode(sim.observe(7))
    assert seller[13:].tolist() == [0.0, 1.0]


def test_the_quote_decoder_buys_at_the_best_ask_and_masks_what_the_role_cannot() -> None:
    sim = _stepped(steps=4)
    buyer = sim.observe(1)
    dec = QuoteDecoder(good="widget")
    snap = buyer.market.goods["widget"]
    ask = snap.best_ask if snap.best_ask is not None else snap.last_price or snap.reference_price
    assert dec.decode(0, buyer) == []
    assert dec.decode(1, buyer) == [{"type": "place_order", "good": "widget", "side": "buy", "price": ask, "quantity": 1}]
    assert dec.mask(buyer).tolist() == [1, 1, 0]  # a buyer may not sell
    assert dec.decode(2, buyer) == []
    seller = sim.observe(7)
    assert dec.mask(seller).tolist()[2] == (1 if seller.account.available_goods["widget"] >= 1 else 0)


@pytest.mark.parametrize(
    ("action", "expected"),
    [([0.0, 0.0, 1.0], None), ([0.34, 0.0, 1.0], ("buy", 0, 5)), ([-0.34, 0.5, 1.0], ("sell", 250, 5)),
     ([1.0, -1.0, -1.0], None), ([1.0, -1.0, -0.5], ("buy", -500, 1))],
)  # fmt: skip
def test_the_box_decoder_side_offset_and_quantity(action: list[float], expected: tuple[str, int, int] | None) -> None:
    dec = BoxOrderDecoder(good="widget")
    side, offset, quantity = dec.order(np.array(action, dtype=np.float32))
    assert (None if side is None else (side, offset, quantity)) == expected


def test_the_utility_level_decoder_maps_levels_between_best_and_reservation() -> None:
    sim = Simulation.from_scenario("bilateral_haggle", record=False, seed=5)
    sim.step()
    buyer = sim.observe(1)  # a seller's opening offer stands: the buyer may offer, accept or end
    view = buyer.negotiations[0]
    dec = UtilityLevelDecoder({"levels": 5})
    assert dec.space.n == 7
    assert dec.mask(buyer).tolist() == [1, 1, 1, 1, 1, 1, 1]
    best = dec.decode(0, buyer)[0]
    worst = dec.decode(4, buyer)[0]
    assert best["type"] == worst["type"] == "make_offer"
    assert best["terms"]["price"] == 3000.0  # the buyer's best outcome
    assert worst["terms"]["price"] == pytest.approx(view["my_reservation_price"], abs=50)  # its reservation price
    assert dec.decode(5, buyer) == [{"type": "accept_offer", "session_id": "N1", "offer_id": view["standing"][0]["offer_id"]}]
    assert dec.decode(6, buyer) == [{"type": "end_negotiation", "session_id": "N1"}]
    no_end = UtilityLevelDecoder({"levels": 5, "end": False})
    assert no_end.space.n == 6 and no_end.mask(buyer).tolist() == [1] * 6
    features = NegotiationFeatures(roles=["buyer"]).encode(buyer)
    assert features[3] == 1.0 and features[5] == 1.0 and features[6] == 1.0  # standing offer, may offer, open


def test_pnl_in_a_double_auction_adds_up_to_the_realised_surplus() -> None:
    env = MarketParallelEnv("double_auction", populations=["buyers"], reward="pnl")
    env.reset(seed=9)
    rng = np.random.default_rng(0)
    totals = dict.fromkeys(env.possible_agents, 0.0)
    while env.agents:
        _, rewards, *_ = env.step({a: int(rng.integers(0, 2)) for a in env.agents})
        for name, r in rewards.items():
            totals[name] += r
    sim = env.simulation
    assert sim is not None
    for name, total in totals.items():
        account = sim.account(env.agent_id(name))
        assert total == pytest.approx(account["surplus"], abs=1e-6)
        assert total == pytest.approx(mark_to_market(account) - 1000.0, abs=1e-6)  # buyers start with 1,000 cash
    assert any(abs(t) > 0 for t in totals.values())


def test_inventory_and_risk_rewards_shape_the_pnl() -> None:
    account = {"cash": 100.0, "holdings": {"x": 3}, "marks": {"x": 10.0}, "induced": [], "realised_surplus": 0.0, "surplus": 0.0}
    moved = {**account, "cash": 90.0, "holdings": {"x": 5}, "marks": {"x": 11.0}}
    pnl, inventory, risk = build_reward("pnl"), build_reward({"name": "inventory", "params": {"weight": 0.5}}), build_reward({"name": "risk_adjusted", "params": {"risk_aversion": 0.1}})
    for reward in (pnl, inventory, risk):
        reward.reset(1, account, None)  # type: ignore[arg-type]
    change = (90 + 5 * 11) - (100 + 3 * 10)
    assert pnl(1, moved, None) == pytest.approx(change)  # type: ignore[arg-type]
    assert inventory(1, moved, None) == pytest.approx(change - 0.5 * 2)  # type: ignore[arg-type]
    assert risk(1, moved, None) == pytest.approx(change - 0.1 * change**2)  # type: ignore[arg-type]
    scaled = build_reward({"name": "pnl", "params": {"scale": 0.01}})
    scaled.reset(1, account, None)  # type: ignore[arg-type]
    assert scaled(1, moved, None) == pytest.approx(change * 0.01)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"unknown reward 'sharpe'; rewards: pnl, inventory"):
        build_reward("sharpe")
