"""A ZI population's column decision (`_ZeroIntelligence.decide_columns`) clamps and checks its
draws as arrays when they share a tick size and every cash is a float: each order must be the one
`decide` gives one by one, from the same draws, also where the clamps and the cash check bite
(bounds off the tick grid, cash short of a bid)."""

from __future__ import annotations

from typing import Any

import mesa
import numpy as np
import pytest

from mesa_llm import decisions as decisions_module
from mesa_llm.actions import Decision
from mesa_llm.agents.observation import (
    AccountView,
    GoodSnapshot,
    MarketSnapshot,
    Observation,
    PrivateView,
)
from mesa_llm.agents.persona import Persona
from mesa_llm.agents.policies import ZeroIntelligenceConstrained, ZeroIntelligenceUnconstrained
from mesa_llm.agents.policies.base import OrderColumns
from mesa_llm.agents.policies.zero_intelligence import (
    ZIParams,
    _snapped,
    _snapped_prices,
    _ZeroIntelligence,
)
from mesa_llm.agents.roles import Role
from mesa_llm.agents.trader import TraderAgent
from mesa_llm.decisions import collect, decide_rule_based

TICK = 0.01


def _observation(rng: np.random.Generator, role: Role, cash: float | int) -> Observation:
    """Bounds off the tick grid (a snapped price may pass them: clamped), cash from none to plenty."""
    lo = int(rng.integers(1, 50)) * TICK + 0.004
    market = {"w": GoodSnapshot("w", 1.0, lo, lo + int(rng.integers(1, 400)) * TICK + 0.003)}
    values = sorted((int(v) * TICK + 0.006 for v in rng.integers(1, 500, int(rng.integers(1, 4)))), reverse=True)
    costs = sorted(int(c) * TICK + 0.002 for c in rng.integers(1, 500, int(rng.integers(1, 4))))
    held = {"w": int(rng.integers(0, 3))}
    private = {"w": PrivateView(values, costs, None, len(values), len(costs))}
    return Observation(1, 10, 0, "a", role.value, TICK, AccountView(cash, held, 0.0, {}, cash, dict(held)), private,
                       MarketSnapshot(goods=market))  # fmt: skip


@pytest.mark.parametrize("cls", [ZeroIntelligenceConstrained, ZeroIntelligenceUnconstrained])
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("int_cash", [False, True])  # an int cash: the loop (the arrays' reference)
def test_columns_are_the_orders_decided_one_by_one(cls: type[_ZeroIntelligence], seed: int, int_cash: bool) -> None:
    rng = np.random.default_rng(seed)
    roles = (Role.BUYER, Role.SELLER, Role.TRADER)
    observations = []
    for i in range(300):
        cash = int(rng.integers(0, 600)) * TICK
        observations.append(_observation(rng, roles[i % 3], int(cash) if int_cash and i == 7 else cash))
    policies = [cls(ZIParams(quantity=1 + i % 3)) for i in range(len(observations))]
    one_by_one = np.random.default_rng(seed + 100)
    expected = [[a.model_dump() for a in p.decide(o, one_by_one).actions] for p, o in zip(policies, observations, strict=True)]
    columns, batched = OrderColumns(), np.random.default_rng(seed + 100)
    decided = cls.decide_columns(policies, observations, batched, list(range(len(observations))), columns)
    assert decided is not None
    assert [[a.model_dump() for a in d.actions] for d in decided] == expected
    assert columns.agents == [i for i, d in enumerate(decided) for _ in range(d.count)]  # each order's agent
    assert sum(map(len, expected)) < sum(1 for o in observations for _ in o.private) * 2  # some did not bid
    assert batched.random() == one_by_one.random()


def _agents(n: int, rng: np.random.Generator) -> list[tuple[TraderAgent, Observation]]:
    model = mesa.Model(seed=1)
    pairs = []
    for i in range(n):
        role = (Role.BUYER, Role.SELLER, Role.TRADER)[i % 3]
        policy = ZeroIntelligenceConstrained(ZIParams(quantity=1))
        agent = TraderAgent(model, persona=Persona(name=f"a{i}", role=role, policy="zi_c"), policy=policy, private={})
        pairs.append((agent, _observation(rng, role, int(rng.integers(0, 600)) * TICK)))
    return pairs


def test_one_population_is_one_batch_but_for_what_is_replaced_in_it() -> None:
    """A population of one agent and one policy class is decided as one batch (`decide_rule_based`'s
    shortcut) only when no agent in it, not only the first, has its `decide` replaced or asks an LLM."""
    for patched in ("policy", "agent", "llm"):
        pairs = _agents(40, np.random.default_rng(4))
        agent, _ = pairs[17]
        if patched == "policy":
            agent.policy.decide = lambda obs, rng: Decision(actions=[])  # type: ignore[method-assign]
        elif patched == "agent":
            agent.decide = lambda obs, rng: Decision(actions=[])  # type: ignore[method-assign]
        else:
            agent.policy.is_llm = True  # type: ignore[misc]
        ours, theirs = np.random.default_rng(5), np.random.default_rng(5)
        decisions, llm_jobs, crashes = decide_rule_based(pairs, ours)
        want = [None if patched == "llm" and a is agent else a.decide(o, theirs) for a, o in pairs]
        assert crashes == {} and llm_jobs == ([17] if patched == "llm" else [])
        assert [d.actions if d is not None else None for d in decisions] == [
            d.actions if d is not None else None for d in want
        ]
        assert decisions[17] is None or decisions[17].actions == []
        assert ours.bit_generator.state == theirs.bit_generator.state


@pytest.mark.parametrize("tick", [0.01, 0.05, 0.1, 1.0, 0.25, 1e-9, 0.003])
def test_snapped_prices_are_the_snapped_dict_prices(tick: float) -> None:
    """The array of snapped prices (`_snapped_prices`: a table filled as counts are first met, grown
    as larger ones come) gives `_snapped`'s doubles for every count, in any order; past its bound, None."""
    rng = np.random.default_rng(11)
    for top in (50, 3000, 2**16 - 1):  # the table grows from the first run's size
        counts = np.concatenate([rng.integers(1, top + 1, 4000), np.array([1, top])]).astype(np.int64)
        prices = _snapped_prices(tick, counts)
        assert prices is not None
        expected = [round(int(n) * tick, 10) for n in counts]
        assert [p.hex() for p in prices.tolist()] == [e.hex() for e in expected]
        assert [p.hex() for p in prices.tolist()] == [_snapped(tick, int(n)).hex() for n in counts]
    assert _snapped_prices(tick, np.array([3, 2**16], dtype=np.int64)) is None  # then price by price


@pytest.mark.parametrize("crash", [False, True])
def test_collect_pairs_column_decisions_as_its_loop_does(crash: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """`collect` of a step of column decisions (and None) pairs each agent with its own and records
    nothing, as its agent-by-agent loop does; an agent whose decide raised (decided alone, beside
    the batches) still has its error recorded."""
    pairs = _agents(40, np.random.default_rng(6))
    if crash:
        def fails(obs: Observation, rng: np.random.Generator) -> Decision:
            raise RuntimeError("a test's")

        pairs[17][0].policy.decide = fails  # type: ignore[method-assign]

    def collected(loop: bool) -> tuple[list[Any], list[Any]]:
        if loop:  # the reference: no class is taken for orders only
            monkeypatch.setattr(decisions_module, "_ORDERS_ONLY", frozenset())
        decisions, llm_jobs, crashes = decide_rule_based(pairs, np.random.default_rng(8))
        records: list[Any] = []
        out, fatal = collect(pairs, decisions, llm_jobs, [], crashes, lambda *event: records.append(event))
        monkeypatch.undo()
        assert fatal is None
        return [(agent, None if d is None else d.actions) for agent, d in out], records

    fast, fast_records = collected(False)
    loop, loop_records = collected(True)
    assert [agent for agent, _ in fast] == [agent for agent, _ in pairs]
    assert fast == loop and fast_records == loop_records
    assert len(fast_records) == (1 if crash else 0)
