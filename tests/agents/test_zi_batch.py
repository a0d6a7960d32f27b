"""A population of ZI traders is decided as a batch (`_ZeroIntelligence.decide_batch`): one draw
call, array arithmetic, orders built without re-validation. It must be the batch that decides them
(not each agent's `decide`), with the decisions and generator state of deciding them one by one;
a policy whose `decide` is replaced is never batched."""

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
from mesa_llm.agents.policies import ZeroIntelligenceConstrained, ZeroIntelligenceUnconstrained
from mesa_llm.agents.policies.base import trusted_order
from mesa_llm.agents.policies.zero_intelligence import ZIParams, _ZeroIntelligence
from mesa_llm.agents.roles import Role
from mesa_llm.agents.trader import TraderAgent
from mesa_llm.decisions import decide_rule_based

TICK = 0.01


def _observation(rng: np.random.Generator, role: Role, goods: list[str]) -> Observation:
    market = {}
    for good in goods:
        lo = int(rng.integers(1, 300))
        market[good] = GoodSnapshot(good, 1.0, lo * TICK, (lo + int(rng.integers(0, 3000))) * TICK)
    private = {}
    for good in goods:
        values = sorted((int(v) * TICK for v in rng.integers(1, 3000, int(rng.integers(0, 4)))), reverse=True)
        costs = sorted(int(c) * TICK for c in rng.integers(1, 3000, int(rng.integers(0, 4))))
        private[good] = PrivateView(values, costs, None, len(values), len(costs))
    held = {g: int(rng.integers(0, 3)) for g in goods}
    cash = int(rng.integers(0, 4000)) * TICK
    return Observation(1, 10, 0, "a", role.value, TICK, AccountView(cash, held, 0.0, {}, cash, dict(held)), private,
                       MarketSnapshot(goods=market))  # fmt: skip


def _population(cls: type[_ZeroIntelligence], n: int, rng: np.random.Generator, goods: list[str]) -> list[tuple[TraderAgent, Observation]]:
    model = mesa.Model(seed=1)
    pairs = []
    for i in range(n):
        role = (Role.BUYER, Role.SELLER, Role.TRADER)[i % 3]
        policy = cls(ZIParams(quantity=1 + i % 2))
        agent = TraderAgent(model, persona=Persona(name=f"a{i}", role=role, policy=cls.name), policy=policy, private={})
        pairs.append((agent, _observation(rng, role, goods)))
    return pairs


def _one_by_one(pairs: list[tuple[TraderAgent, Observation]], rng: np.random.Generator) -> list[Decision]:
    return [agent.policy.decide(obs, rng) for agent, obs in pairs]


@pytest.mark.parametrize("cls", [ZeroIntelligenceConstrained, ZeroIntelligenceUnconstrained])
@pytest.mark.parametrize("goods", [["widget"], ["widget", "gadget", "gizmo"]])
def test_a_population_is_decided_by_its_batch_as_one_by_one(
    cls: type[_ZeroIntelligence], goods: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pairs = _population(cls, 300, np.random.default_rng(len(goods)), goods)
    ours, theirs = np.random.default_rng(9), np.random.default_rng(9)
    want = _one_by_one(pairs, theirs)
    calls: list[int] = []
    original = cls.decide
    monkeypatch.setattr(cls, "decide", lambda self, obs, rng: calls.append(1) or original(self, obs, rng))
    monkeypatch.setattr(_ZeroIntelligence, "decide", cls.decide)  # the batch's own check sees the class's decide
    decisions, llm_jobs, crashes = decide_rule_based(pairs, ours)
    assert calls == []  # the batch decided them, not each agent
    assert llm_jobs == [] and crashes == {}
    assert [d.actions for d in decisions if d is not None] == [d.actions for d in want]
    assert sum(len(d.actions) for d in want) > 150
    assert ours.bit_generator.state == theirs.bit_generator.state


def test_a_replaced_decide_is_never_batched() -> None:
    """A subclass's own `decide`, or one patched on an instance, decides that agent (in order)."""

    class Fixed(ZeroIntelligenceConstrained):
        def decide(self, observation: Any, rng: np.random.Generator) -> Decision:
            rng.random()
            return Decision(actions=[PlaceOrder(good="widget", side="buy", price=1.0, quantity=1)])

    rng = np.random.default_rng(3)
    pairs = _population(ZeroIntelligenceConstrained, 6, rng, ["widget"])
    fixed = _population(Fixed, 4, rng, ["widget"])
    pairs[2][0].policy.decide = lambda obs, rng: Decision(actions=[])  # type: ignore[method-assign]
    mixed = pairs[:3] + fixed + pairs[3:]
    ours, theirs = np.random.default_rng(5), np.random.default_rng(5)
    decisions, _, crashes = decide_rule_based(mixed, ours)
    want = _one_by_one(mixed, theirs)
    assert crashes == {}
    assert [d.actions for d in decisions if d is not None] == [d.actions for d in want]
    assert decisions[2] is not None and decisions[2].actions == []
    assert all(d is not None and d.actions[0].price == 1.0 for d in decisions[3:7])
    assert ours.bit_generator.state == theirs.bit_generator.state


def test_a_trusted_order_is_the_validated_one() -> None:
    for good, side, price, quantity in (("widget", "buy", 12.34, 1), ("ünï €", "sell", 0.01, 10**9)):
        made = trusted_order(good, side, price, quantity)  # type: ignore[arg-type]
        validated = PlaceOrder(good=good, side=side, price=price, quantity=quantity)  # type: ignore[arg-type]
        assert made == validated and hash(made) == hash(validated)
        assert made.model_fields_set == validated.model_fields_set
        assert made.model_dump() == validated.model_dump() and made.arguments() == validated.arguments()
        assert made.model_fields_set is not trusted_order(good, side, price, quantity).model_fields_set  # type: ignore[arg-type]


def test_a_batch_that_cannot_decide_everyone_draws_nothing_and_leaves_them_to_one_by_one() -> None:
    """An observation `decide` fails on after its draws (cash that is no number): the batch finds
    out before drawing, so the agents are decided one by one, that one's failure its own."""
    pairs = _population(ZeroIntelligenceConstrained, 30, np.random.default_rng(4), ["widget"])
    buyer = next(i for i, (a, o) in enumerate(pairs) if a.role is Role.BUYER and o.private["widget"].values)
    pairs[buyer][1].account.available_cash = None  # type: ignore[assignment]
    ours, theirs = np.random.default_rng(2), np.random.default_rng(2)
    decisions, _, crashes = decide_rule_based(pairs, ours)
    want: list[Any] = []
    for agent, obs in pairs:
        try:
            want.append(agent.policy.decide(obs, theirs).actions)
        except TypeError:
            want.append(None)
    assert list(crashes) == [buyer] and "TypeError" in crashes[buyer]
    assert [d.actions if d is not None else None for d in decisions] == want
    assert ours.bit_generator.state == theirs.bit_generator.state


def test_a_subclass_with_its_own_batch_is_decided_by_it() -> None:
    """The columns are ZI's own batch: a subclass that batches otherwise gets its `decide_batch`."""
    made: list[int] = []

    class OwnBatch(ZeroIntelligenceConstrained):
        @classmethod
        def decide_batch(cls, policies: Any, observations: Any, rng: np.random.Generator) -> list[Decision] | None:
            made.append(len(policies))
            return [Decision(actions=[]) for _ in policies]

    pairs = _population(OwnBatch, 5, np.random.default_rng(1), ["widget"])
    decisions, _, crashes = decide_rule_based(pairs, np.random.default_rng(2))
    assert made == [5] and crashes == {}
    assert [d.actions for d in decisions if d is not None] == [[]] * 5
