"""The Mesa agent that trades: a persona, private values, a decision policy, and its inbox.

The agent owns nothing the world checks: its cash and goods live in the model's ledger. It holds
what is private to it (induced values and costs in ticks, a fundamental estimate), counts the units
it has traded (so its next unit's value is known), and receives messages and rejection reasons
that it will see in its next observation.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import mesa

from mesa_llm.actions import Decision
from mesa_llm.agents.observation import (
    MarketSnapshot,
    Observation,
    PrivateView,
)
from mesa_llm.agents.observation_batch import PRIVATE_SETS, account_view
from mesa_llm.agents.persona import Persona
from mesa_llm.agents.policies.base import DecisionPolicy

if TYPE_CHECKING:
    import numpy as np

    from mesa_llm.market import Ledger, Money


@dataclass(slots=True)
class PrivateValues:
    """An agent's private information about one good, in ticks.

    Assign new lists (never mutate in place) so the cached currency-unit copies stay right (and
    `mesa_llm.agents.observation_batch.private_changes` counts the change).
    """

    values: list[int] = field(default_factory=list)  # redemption values, highest first
    costs: list[int] = field(default_factory=list)  # unit costs, lowest first
    fundamental: int | None = None
    _cache: tuple[list[int], list[int], list[float], list[float]] | None = None

    def in_units(self, money: Money) -> tuple[list[float], list[float]]:
        """Values and costs in currency units, converted once per schedule change."""
        cache = self._cache
        if cache is None or cache[0] is not self.values or cache[1] is not self.costs:
            to_units = money.to_units
            cache = (
                self.values,
                self.costs,
                [to_units(v) for v in self.values],
                [to_units(c) for c in self.costs],
            )
            self._cache = cache
        return cache[2], cache[3]

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "_cache":
            PRIVATE_SETS[0] += 1
        object.__setattr__(self, name, value)


_set = object.__setattr__

#: what an observation shows of an agent besides its ledger account, inbox and rejections: setting
#: one of these attributes counts as a change (`TraderAgent.changes`)
SHOWN_ATTRIBUTES = frozenset(
    ("name", "role", "private", "units_bought", "units_sold", "recent_trades", "keep_trades", "units_shown")
)


class TraderAgent(mesa.Agent):
    """A market participant: a persona, private values, and a ``policy`` that decides for it.

    ``changes`` counts what changed what its observations show besides its ledger account, inbox
    and rejections: each fill (`record_fill`: its units traded and recent trades) and each set of
    one of `SHOWN_ATTRIBUTES` (its `PrivateValues` count theirs apart:
    `mesa_llm.agents.observation_batch.private_changes`). An observer keeping its last
    observation's parts compares this number, not each part, to see them unchanged: so the units
    traded and recent trades change through `record_fill` only (or by assigning new ones), never
    in place from outside."""

    #: see the class docstring (0 until the first attribute counted is set)
    changes: int = 0

    def __setattr__(self, name: str, value: Any) -> None:
        _set(self, name, value)
        if name in SHOWN_ATTRIBUTES:
            _set(self, "changes", self.changes + 1)

    def __init__(
        self,
        model: mesa.Model,
        *,
        persona: Persona,
        policy: DecisionPolicy,
        private: dict[str, PrivateValues],
        recent_trades: int = 5,
        units_shown: int = 10,
        messages_shown: int = 10,
    ) -> None:
        super().__init__(model)
        self.persona = persona
        self.name = persona.name
        self.role = persona.role
        self.population = persona.population or persona.role.value
        self.policy = policy
        self.private = private
        self.units_bought: dict[str, int] = {}
        self.units_sold: dict[str, int] = {}
        self.inbox: list[dict[str, Any]] = []
        self.rejections: list[dict[str, Any]] = []
        self.recent_trades: deque[dict[str, Any]] = deque(maxlen=max(recent_trades, 1))
        self.keep_trades = recent_trades > 0
        self.units_shown = units_shown
        self.messages_shown = messages_shown
        self.realised_surplus = 0  # ticks: value of units bought - cost of units sold
        #: private utility functions per outcome space (negotiations), set by the model
        self.utilities: dict[str, Any] = {}

    # ------------------------------------------------------------------ observe

    def observe(
        self,
        *,
        step: int,
        horizon: int,
        market: MarketSnapshot,
        ledger: Ledger,
        money: Money,
        open_orders: list[dict[str, Any]],
        keyed: bool = False,
    ) -> Observation:
        """Build this agent's observation from the state at step start (changes nothing).

        ``keyed``: also give it the keys of its account, private and recent_trades parts
        (``Observation._keys``), with which a recording reuses their JSON while they are unchanged."""
        account = ledger.account(self.unique_id)
        view = account_view(account, money.to_units)
        private, private_key = self.private_views(money)
        recent_trades = list(self.recent_trades) if self.keep_trades else []
        observation = Observation(
            step, horizon, self.unique_id, self.name, self.role._value_, money.tick_size, view, private, market,
            open_orders, recent_trades, self.inbox[-self.messages_shown :] if self.messages_shown else [], self.rejections,
        )  # fmt: skip
        if not keyed:
            return observation
        # What the account, private and recent_trades parts are a function of (the ledger's ints,
        # the schedules in ticks, the trade records, which are never changed once made): equal
        # keys, equal parts, so their recorded JSON is reused (`ObservationEncoder`).
        observation._keys = (
            (
                account.cash,
                account.reserved_cash,
                account.credit_limit,
                account.short_limit,
                tuple(account.holdings.items()),
                tuple(account.reserved_goods.items()),
                money,
            ),
            private_key,
            tuple(recent_trades),
        )
        return observation

    def private_views(self, money: Money) -> tuple[dict[str, PrivateView], tuple[Any, ...]]:
        """The agent's private parts as its observation shows them (currency units; the next
        ``units_shown`` untraded units), and what they are a function of (the schedules in ticks,
        the fundamental and the unit counts: equal keys, equal views)."""
        to_units = money.to_units
        private = {}
        shown = self.units_shown
        key: list[Any] = [shown]
        units_bought, units_sold = self.units_bought, self.units_sold
        for good, pv in self.private.items():
            bought = units_bought.get(good, 0)
            sold = units_sold.get(good, 0)
            values, costs = pv.in_units(money)
            fundamental = pv.fundamental
            private[good] = PrivateView(
                values[bought : bought + shown], costs[sold : sold + shown],
                to_units(fundamental) if fundamental is not None else None,
                max(len(values) - bought, 0), max(len(costs) - sold, 0),
            )  # fmt: skip
            key += (good, pv.values, pv.costs, fundamental, bought, sold)
        return private, tuple(key)

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        """Ask the policy for this step's decision."""
        return self.policy.decide(observation, rng)

    def start_step(self) -> None:
        """Forget what was shown last step (messages and rejections are shown once)."""
        # not counted (`changes`): set past `__setattr__`, once per agent and step
        _set(self, "inbox", [])
        _set(self, "rejections", [])

    # ------------------------------------------------------------------ world feedback

    def induced_units(self, good: str, side: str, quantity: int) -> list[int]:
        """The induced values (buy) or costs (sell) the next `quantity` units would consume (ticks;
        shorter, possibly empty, beyond the schedule). Ask before `record_fill` counts them."""
        pv = self.private.get(good)
        if pv is None:
            return []
        if side == "buy":
            start = self.units_bought.get(good, 0)
            return list(pv.values[start : start + quantity])
        start = self.units_sold.get(good, 0)
        return list(pv.costs[start : start + quantity])

    def record_fill(self, good: str, side: str, quantity: int, price: int, price_units: float, step: int) -> int:
        """Count traded units and return the surplus (ticks) they realise for this agent."""
        _set(self, "changes", self.changes + 1)  # its units traded and recent trades (changed in place: counted here)
        pv = self.private.get(good)
        gained = 0
        if side == "buy":
            start = self.units_bought.get(good, 0)
            self.units_bought[good] = start + quantity
            if pv is not None and pv.values:
                gained = sum(pv.values[start : start + quantity])
        else:
            start = self.units_sold.get(good, 0)
            self.units_sold[good] = start + quantity
            if pv is not None and pv.costs:
                gained = -sum(pv.costs[start : start + quantity])
        if pv is not None and (pv.values or pv.costs):
            self.realised_surplus += gained
        if self.keep_trades:  # a new record each time, never changed: recordings reuse its JSON
            self.recent_trades.append(
                {"step": step, "good": good, "side": side, "price": price_units, "quantity": quantity}
            )
        return gained


#: agent classes whose fills `record_fills` may count inline (TraderAgent's own `induced_units`,
#: `record_fill` and `__setattr__`), by class
_PLAIN_FILLS: dict[type, bool] = {}


def _plain_fills(cls: type) -> bool:
    """Whether ``cls`` counts a fill as `TraderAgent` does (nothing of it overridden)."""
    plain = _PLAIN_FILLS.get(cls)
    if plain is None:
        plain = _PLAIN_FILLS[cls] = (
            cls.record_fill is TraderAgent.record_fill and cls.induced_units is TraderAgent.induced_units  # type: ignore[attr-defined]
            and cls.__setattr__ is TraderAgent.__setattr__
            # the two counts plain attributes (set in the instance's dict), no slot or property
            and not any(hasattr(getattr(cls, name, None), "__set__") for name in ("changes", "realised_surplus"))
        )  # fmt: skip
    return plain


def record_fills(
    trades: Sequence[Any], agents: Mapping[int, TraderAgent], good: str, price: int, price_units: float, step: int,
    surplus_fill: Callable[[str, int, Sequence[int], Sequence[int]], Any],
) -> None:  # fmt: skip
    """A clearing's fills counted for both parties of each of its ``trades`` (of ``good``, all at
    ``price`` ticks, ``price_units`` units; each with ``buyer_id``, ``seller_id``, ``quantity``), in
    order: per trade ``surplus_fill(good, quantity, buyer's induced_units, seller's induced_units)``,
    then the buyer's and the seller's `TraderAgent.record_fill` - the same effects (``changes``,
    units traded, realised surplus, recent trades), made inline for agents of a class that does
    not override them (the methods are called for any other)."""
    plain_of = _PLAIN_FILLS  # (`_plain_fills` of a class not met before)
    for trade in trades:
        quantity, buyer, seller = trade.quantity, agents[trade.buyer_id], agents[trade.seller_id]
        if not ((plain_of.get(buyer.__class__) or _plain_fills(buyer.__class__))
                and (plain_of.get(seller.__class__) or _plain_fills(seller.__class__))):  # the reference path
            surplus_fill(good, quantity, buyer.induced_units(good, "buy", quantity),
                         seller.induced_units(good, "sell", quantity))  # fmt: skip
            buyer.record_fill(good, "buy", quantity, price, price_units, step)
            seller.record_fill(good, "sell", quantity, price, price_units, step)
            continue
        # `induced_units` of both parties before either counts its units
        bought, sold = buyer.units_bought, seller.units_sold
        b_pv, s_pv = buyer.private.get(good), seller.private.get(good)
        b_start, s_start = bought.get(good, 0), sold.get(good, 0)
        values = b_pv.values[b_start : b_start + quantity] if b_pv is not None else []
        costs = s_pv.costs[s_start : s_start + quantity] if s_pv is not None else []
        surplus_fill(good, quantity, values, costs)
        # `record_fill` of the buyer, then of the seller (plain attributes: set in the instance's dict)
        b_dict, s_dict = buyer.__dict__, seller.__dict__
        b_dict["changes"] = buyer.changes + 1
        bought[good] = b_start + quantity
        if b_pv is not None and (b_pv.values or b_pv.costs):
            b_dict["realised_surplus"] = buyer.realised_surplus + (sum(values) if b_pv.values else 0)
        if buyer.keep_trades:  # a new record each time (recordings reuse its JSON)
            buyer.recent_trades.append({"step": step, "good": good, "side": "buy", "price": price_units, "quantity": quantity})
        s_dict["changes"] = seller.changes + 1
        # (one agent on both sides: its units bought and sold are apart, so ``s_start`` still holds)
        sold[good] = s_start + quantity
        if s_pv is not None and (s_pv.values or s_pv.costs):
            s_dict["realised_surplus"] = seller.realised_surplus + (-sum(costs) if s_pv.costs else 0)
        if seller.keep_trades:
            seller.recent_trades.append({"step": step, "good": good, "side": "sell", "price": price_units, "quantity": quantity})
