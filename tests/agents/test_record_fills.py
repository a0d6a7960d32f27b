"""`record_fills` counts a clearing's fills as asking each party's `induced_units` and then calling
the buyer's and the seller's `TraderAgent.record_fill` per trade (`MarketTallies._fill_parties`):
the same agents' counters (``changes``, units traded, realised surplus, recent trades) and the
same induced surplus - for an agent trading with itself, beyond its schedule, without induced
values for the good, without recent trades, and (the reference path) an agent class of its own
or one whose ``changes`` is a property."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from mesa_llm.agents.trader import TraderAgent, record_fills
from mesa_llm.economics import InducedSurplus
from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario
from mesa_llm.tallies import MarketTallies


class _OwnFill(TraderAgent):
    """An agent counting its fills its own way (a double count of ``changes``)."""

    def record_fill(self, good: str, side: str, quantity: int, price: int, price_units: float, step: int) -> int:
        self.changes += 1  # (not a shown attribute: set as is)
        return super().record_fill(good, side, quantity, price, price_units, step)


class _KeptChanges(TraderAgent):
    """An agent whose ``changes`` is a property keeping the count apart (no plain attribute)."""

    kept = 0

    @property  # type: ignore[override]
    def changes(self) -> int:
        return self.kept

    @changes.setter
    def changes(self, value: int) -> None:
        object.__setattr__(self, "kept", value)


def _world(own_class: Any) -> tuple[dict[int, TraderAgent], InducedSurplus]:
    model = MarketModel(load_scenario("double_auction"), seed=3, steps=1, record=False)
    agents = {a.unique_id: a for a in model.traders}
    ids = sorted(agents)
    agents[ids[2]].private = {}  # an intermediary: no induced values or costs
    agents[ids[3]].keep_trades = False
    if own_class:
        agents[ids[1]].__class__ = own_class
    return agents, InducedSurplus()


def _trades(agents: dict[int, TraderAgent]) -> list[list[Any]]:
    ids = sorted(agents)
    buyers = [a.unique_id for a in agents.values() if a.private.get("widget") and a.private["widget"].values]
    sellers = [a.unique_id for a in agents.values() if a.private.get("widget") and a.private["widget"].costs]
    t = SimpleNamespace
    return [
        [t(buyer_id=buyers[0], seller_id=sellers[0], quantity=1), t(buyer_id=ids[1], seller_id=sellers[1], quantity=2),
         t(buyer_id=buyers[0], seller_id=ids[2], quantity=1), t(buyer_id=ids[2], seller_id=sellers[0], quantity=3)],
        [t(buyer_id=ids[3], seller_id=ids[3], quantity=2),  # one agent on both sides
         t(buyer_id=buyers[0], seller_id=sellers[2], quantity=40),  # beyond both schedules
         t(buyer_id=ids[1], seller_id=ids[0], quantity=1), t(buyer_id=buyers[-1], seller_id=ids[1], quantity=1)],
    ]  # fmt: skip


def _state(agents: dict[int, TraderAgent], surplus: InducedSurplus) -> tuple[Any, ...]:
    return ([(a.unique_id, a.changes, dict(a.units_bought), dict(a.units_sold), a.realised_surplus,
              list(a.recent_trades)) for a in agents.values()],
            (surplus.realised, surplus.imported, surplus.exported, surplus.passed, surplus._pool))  # fmt: skip


@pytest.mark.parametrize("own_class", [None, _OwnFill, _KeptChanges])
def test_record_fills_equals_each_party_in_turn(own_class: Any) -> None:
    batched, batched_surplus = _world(own_class)
    reference, reference_surplus = _world(own_class)
    assert _state(batched, batched_surplus) == _state(reference, reference_surplus)
    good = next(iter(load_scenario("double_auction").goods)).name
    assert good == "widget"
    for step, trades in enumerate(_trades(batched), start=1):
        record_fills(trades, batched, good, 9_500 + step, 95.0 + step / 100, step, batched_surplus.fill)
        for trade in _trades(reference)[step - 1]:
            MarketTallies._fill_parties(reference[trade.buyer_id], reference[trade.seller_id], good, trade.quantity,
                                        9_500 + step, 95.0 + step / 100, step, reference_surplus.fill)  # fmt: skip
    state = _state(batched, batched_surplus)
    assert state == _state(reference, reference_surplus)
    assert batched_surplus.realised and batched_surplus.imported and batched_surplus.exported  # every kind of unit met
    assert any(len(a.recent_trades) == 0 for a in batched.values())
