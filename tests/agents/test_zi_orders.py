"""ZI traders' prices are snapped through `Observation.snap`, which keeps the prices it made: each
agent's decision, its crash and the generator's state after a step of ZI and other traders must be
those of the ZI decision as it was written before (kept below), and a snapped price that of the
rounding it stands for."""

from __future__ import annotations

from typing import Any

import mesa
import numpy as np
import pytest

from mesa_llm.actions import Decision, PlaceOrder
from mesa_llm.agents.observation import (
    AccountView,
    GoodSnapshot,
    MarketSnapshot,
    Observation,
    PrivateView,
)
from mesa_llm.agents.persona import Persona
from mesa_llm.agents.policies import (
    NoiseTrader,
    ZeroIntelligenceConstrained,
    ZeroIntelligenceUnconstrained,
)
from mesa_llm.agents.policies.noise import NoiseParams
from mesa_llm.agents.policies.zero_intelligence import ZIParams, _ZeroIntelligence
from mesa_llm.agents.roles import Role
from mesa_llm.agents.trader import TraderAgent
from mesa_llm.decisions import decide_rule_based

TICK = 0.01


def reference_zi(observation: Observation, rng: np.random.Generator, quantity: int, constrained: bool) -> Decision:
    """The ZI decision as it was before: ``rng.uniform`` and a fresh rounding per priced order."""
    actions = []
    may_buy = observation.role in ("buyer", "trader")
    may_sell = observation.role in ("seller", "trader")
    account = observation.account
    for good, private in observation.private.items():
        snap = observation.market.goods[good]
        lo, hi = snap.min_price, snap.max_price
        if may_buy and private.values:
            q = min(quantity, private.values_left, len(private.values))
            top = min(private.values[q - 1], hi) if constrained else hi
            if top >= lo:
                price = observation.snap(rng.uniform(lo, top))
                price = min(price, top) if constrained else price
                if price * q <= account.available_cash:
                    actions.append(PlaceOrder(good=good, side="buy", price=price, quantity=q))
        if may_sell and private.costs:
            q = min(quantity, private.costs_left, len(private.costs), account.available_goods.get(good, 0))
            if q > 0:
                bottom = max(private.costs[q - 1], lo) if constrained else lo
                if bottom <= hi:
                    price = observation.snap(rng.uniform(bottom, hi))
                    price = max(price, bottom) if constrained else price
                    actions.append(PlaceOrder(good=good, side="sell", price=price, quantity=q))
    return Decision(actions=actions)


def random_observation(rng: np.random.Generator, role: str, goods: list[str], missing: str | None = None) -> Observation:
    """An observation with random schedules, balances and price ranges (``missing``: a good the
    agent holds values for that the market does not list)."""
    market = {}
    for good in goods:
        lo = int(rng.integers(1, 500))
        hi = lo + int(rng.integers(0, 3)) * int(rng.integers(0, 2000))
        market[good] = GoodSnapshot(good, 1.0, lo * TICK, hi * TICK)
    private = {}
    for good in [*goods, *([missing] if missing else [])]:
        values = sorted((round(int(v) * TICK, 2) for v in rng.integers(1, 3000, int(rng.integers(0, 5)))), reverse=True)
        costs = sorted(round(int(c) * TICK, 2) for c in rng.integers(1, 3000, int(rng.integers(0, 5))))
        private[good] = PrivateView(values, costs, None, len(values) + int(rng.integers(0, 2)), len(costs))
    held = {g: int(rng.integers(0, 4)) for g in goods}
    cash = round(int(rng.integers(0, 5000)) * TICK, 2)
    account = AccountView(cash, held, 0.0, {}, cash, dict(held))
    return Observation(1, 10, 0, "a", role, TICK, account, private, MarketSnapshot(goods=market))


def make_agents(policies: list[Any]) -> list[TraderAgent]:
    model = mesa.Model(seed=1)
    agents = []
    for i, policy in enumerate(policies):
        role = Role.TRADER if i % 3 == 0 else (Role.BUYER if i % 3 == 1 else Role.SELLER)
        persona = Persona(name=f"a{i}", role=role, policy=policy.name or "custom")
        agents.append(TraderAgent(model, persona=persona, policy=policy, private={}))
    return agents


def expected(pairs: list[tuple[TraderAgent, Observation]], rng: np.random.Generator) -> tuple[list[Any], dict[int, str]]:
    """Each agent decided one at a time, ZI ones as before the batch."""
    decisions: list[Any] = []
    crashes = {}
    for index, (agent, obs) in enumerate(pairs):
        policy = agent.policy
        try:
            if isinstance(policy, _ZeroIntelligence):
                decisions.append(reference_zi(obs, rng, policy.params.quantity, policy.constrained))  # type: ignore[attr-defined]
            else:
                decisions.append(agent.decide(obs, rng))
        except Exception as exc:  # noqa: BLE001
            decisions.append(None)
            crashes[index] = f"{type(exc).__name__}: {exc}"
    return decisions, crashes


@pytest.mark.parametrize("seed", range(6))
def test_a_step_of_zi_and_other_traders_decides_and_draws_as_before(seed: int) -> None:
    shapes = np.random.default_rng(seed)
    policies: list[Any] = []
    for _ in range(60):
        kind = int(shapes.integers(0, 6))
        if kind == 5:  # draws its own way (normal, integers) between the ZI traders' draws
            policies.append(NoiseTrader(NoiseParams()))
        else:
            cls = ZeroIntelligenceConstrained if kind < 3 else ZeroIntelligenceUnconstrained
            policies.append(cls(ZIParams(quantity=int(shapes.integers(1, 4)))))
    agents = make_agents(policies)
    goods = ["widget", "gadget"][: 1 + seed % 2]
    pairs = [(a, random_observation(shapes, a.role.value, goods, missing="ghost" if i % 17 == 5 else None))
             for i, a in enumerate(agents)]  # fmt: skip
    ours, theirs = np.random.default_rng(100 + seed), np.random.default_rng(100 + seed)
    decisions, llm_jobs, crashes = decide_rule_based(pairs, ours)
    want, want_crashes = expected(pairs, theirs)
    assert llm_jobs == []
    assert crashes == want_crashes and crashes  # the "ghost" good: a KeyError after the draws before it
    assert [d.actions if d is not None else None for d in decisions] == [d.actions if d is not None else None for d in want]
    assert sum(len(d.actions) for d in decisions if d is not None) > 20
    assert ours.bit_generator.state == theirs.bit_generator.state


def test_a_zi_trader_alone_decides_as_before() -> None:
    shapes = np.random.default_rng(7)
    for constrained, cls in ((True, ZeroIntelligenceConstrained), (False, ZeroIntelligenceUnconstrained)):
        policy = cls(ZIParams(quantity=2))
        ours, theirs = np.random.default_rng(3), np.random.default_rng(3)
        for _ in range(300):
            obs = random_observation(shapes, "trader", ["widget", "gadget"])
            assert policy.decide(obs, ours).actions == reference_zi(obs, theirs, 2, constrained).actions
        assert ours.bit_generator.state == theirs.bit_generator.state


def test_a_snapped_price_is_the_rounding_it_stands_for() -> None:
    """`Observation.snap` keeps each (ticks, tick size)'s price: the same number as rounding it
    anew, for prices met again and for the same tick count under another tick size."""
    draws = np.random.default_rng(4)
    for tick in (0.01, 0.05, 0.5, 1.0, 0.001, 0.01):
        obs = Observation(1, 2, 0, "a", "trader", tick, None, {}, MarketSnapshot(goods={}))  # type: ignore[arg-type]
        for price in [*(float(p) for p in draws.uniform(-1, 300, 400)), 0.0, tick / 3, 12.345, 12.345]:
            expected = round(max(round(price / tick), 1) * tick, 10)
            got = obs.snap(price)
            assert got == expected and type(got) is float, (tick, price)
