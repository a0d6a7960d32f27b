"""Gode & Sunder's zero-intelligence traders: ZI-C (budget-constrained) and ZI-U (unconstrained).

Each step a ZI trader offers its next untraded unit of each good it has a schedule for, at a price
drawn uniformly at random: ZI-C never bids above the unit's value nor asks below its cost; ZI-U
draws from the whole admissible price range. (Gode & Sunder 1993, JPE 101(1).)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from mesa_llm.actions import ActionBase, Decision, PlaceOrder
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.observation_batch import LazyObservation
from mesa_llm.agents.policies.base import ColumnDecision, DecisionPolicy, OrderColumns, PolicyParams
from mesa_llm.agents.roles import Role

_SIDES: dict[str, tuple[bool, bool]] = {role.value: (role.may_buy, role.may_sell) for role in Role}
#: per tick size: snapped prices by tick count (`Observation.snap`'s rule), bounded as its cache is
_SNAPPED: dict[float, dict[int, float]] = {}
_SNAPPED_KEPT = 1 << 16


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """``rng.uniform(low, high)`` for finite floats, the same number from the same draw: numpy
    computes ``low + (high - low) * rng.random()`` in doubles too, but its scalar call costs
    four times as much (argument broadcasting), once per agent and step."""
    return low + (high - low) * rng.random()


class ZIParams(PolicyParams):
    """Parameters of the zero-intelligence traders."""

    quantity: int = Field(default=1, gt=0, description="units per order")


class _ZeroIntelligence(DecisionPolicy):
    Params: ClassVar[type[PolicyParams]] = ZIParams
    constrained: ClassVar[bool] = True

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        actions: list[ActionBase] = []
        quantity = self.params.quantity  # type: ignore[attr-defined]
        role_may_buy, role_may_sell = _SIDES[observation.role]
        account = observation.account
        constrained, snap = self.constrained, observation.snap
        for good, private in observation.private.items():
            market = observation.market.goods[good]
            lo, hi = market.min_price, market.max_price
            if role_may_buy and private.values:
                q = min(quantity, private.values_left, len(private.values))
                # the order's last unit has the lowest value: bidding above it could lose money
                top = min(private.values[q - 1], hi) if constrained else hi
                if top >= lo:
                    price = snap(_uniform(rng, lo, top))
                    price = min(price, top) if constrained else price
                    if price * q <= account.available_cash:
                        actions.append(PlaceOrder(good=good, side="buy", price=price, quantity=q))
            if role_may_sell and private.costs:
                q = min(quantity, private.costs_left, len(private.costs), account.available_goods.get(good, 0))
                if q > 0:
                    bottom = max(private.costs[q - 1], lo) if constrained else lo
                    if bottom <= hi:
                        price = snap(_uniform(rng, bottom, hi))
                        price = max(price, bottom) if constrained else price
                        actions.append(PlaceOrder(good=good, side="sell", price=price, quantity=q))
        return Decision(actions=actions)

    @classmethod
    def decide_batch(
        cls, policies: Sequence[DecisionPolicy], observations: Sequence[Any], rng: np.random.Generator
    ) -> list[Decision] | None:
        """`decide` for consecutive agents at once: the same decisions from the same draws
        (`decide_columns`' orders, each made a `PlaceOrder`)."""
        decided = cls.decide_columns(policies, observations, rng, range(len(policies)), OrderColumns())
        return None if decided is None else [Decision(actions=d.actions) for d in decided]

    @classmethod
    def decide_columns(
        cls, policies: Sequence[DecisionPolicy], observations: Sequence[Any], rng: np.random.Generator,
        owners: Sequence[Any], columns: OrderColumns,
    ) -> list[Decision] | None:  # fmt: skip
        """`decide` for consecutive agents at once, the orders appended to ``columns``: the same
        decisions from the same draws.

        Every condition deciding whether an agent draws (its role, schedule, free goods, the
        range) is known before any draw, so the draws (one per agent, good and side that bids or
        asks, in `decide`'s order: agent, good, buy then sell) are taken in one call, and the
        prices are computed as arrays with the same double arithmetic; numpy's ``random(n)``
        gives the doubles of ``n`` scalar ``random()`` calls. None (nothing drawn) when an
        observation is one `decide` might refuse (an order that would fail validation): the
        agents then decide one by one."""
        if cls.decide is not _ZeroIntelligence.decide or cls.decide_batch.__func__ is not _ZeroIntelligence.decide_batch.__func__:  # type: ignore[attr-defined]
            return None  # a subclass decides otherwise (its own `decide`, or its own batch)
        constrained = cls.constrained
        # per draw, in draw order: (agent index, good, buy?, low and high of the draw, quantity, tick size)
        draws: list[tuple[int, str, bool, float, float, int, float]] = []
        add = draws.append
        cash: list[Any] = []  # each agent's available cash, read before drawing
        if len(policies) != len(observations):
            raise ValueError("one observation per policy")
        # a step's observations made when read (`Observations`): its numbers read without making them
        zi_rows = getattr(observations, "zi_rows", None)
        rows = zi_rows() if zi_rows is not None else None
        for i, policy in enumerate(policies):
            quantity = policy.params.quantity  # type: ignore[attr-defined]
            if rows is not None:
                zi = rows[i]
                observation = None
            else:
                observation = observations[i]
                # a lazy observation's numbers from what it keeps, its fields unset (`LazyObservation.zi_view`)
                zi = observation.zi_view() if observation.__class__ is LazyObservation else None
            if zi is None:  # the numbers from the built account and private parts
                if observation is None:
                    observation = observations[i]
                account = observation.account
                available = account.available_goods
                zi = observation.role, observation.market.goods, observation.tick_size, account.available_cash, [
                    (good, p.values, p.costs, p.values_left, p.costs_left, available.get(good, 0))
                    for good, p in observation.private.items()
                ]
            role, market_goods, tick_size, available_cash, inputs = zi
            role_may_buy, role_may_sell = _SIDES[role]
            cash.append(available_cash)
            for good, values, costs, values_left, costs_left, available_goods in inputs:
                market = market_goods[good]
                lo, hi = market.min_price, market.max_price
                if role_may_buy and values:
                    q = min(quantity, values_left, len(values))
                    top = min(values[q - 1], hi) if constrained else hi
                    if top >= lo:
                        add((i, good, True, lo, top, q, tick_size))
                if role_may_sell and costs:
                    q = min(quantity, costs_left, len(costs), available_goods)
                    if q > 0:
                        bottom = max(costs[q - 1], lo) if constrained else lo
                        if bottom <= hi:
                            add((i, good, False, bottom, hi, q, tick_size))
        first = len(columns)
        if not draws:
            return [ColumnDecision(columns, first, 0) for _ in policies]
        who, goods, buys, lows, highs, sizes, ticks = zip(*draws, strict=True)
        if not _valid_orders(goods, lows, highs, sizes, ticks):
            return None
        # read before drawing: nothing after the draw may fail (the agents could not be decided again)
        if any(buys) and not all(c.__class__ is float or c.__class__ is int for c in cash):
            return None
        low, high, tick_array = np.array(lows), np.array(highs), np.array(ticks)
        raw = low + (high - low) * rng.random(len(draws))  # `_uniform`'s arithmetic, element-wise
        counts = np.maximum(np.rint(raw / tick_array), 1.0).astype(np.int64).tolist()  # round(): half-even too
        snapped = _SNAPPED.get(ticks[0]) if len(set(ticks)) == 1 else None
        if snapped is None or len(snapped) >= _SNAPPED_KEPT:
            snapped = {}
        if len(snapped_ticks := set(ticks)) == 1 and all(c.__class__ is float for c in cash):
            # one tick size, every cash a float: the clamps and the cash check as arrays too
            return _append_columns(
                columns, first, len(policies), owners, who, goods, buys, low, high, sizes, counts, snapped,
                snapped_ticks.pop(), cash, constrained,
            )  # fmt: skip
        orders = [0] * len(policies)  # each agent's orders
        add_agent, add_good, add_buy = columns.agents.append, columns.goods.append, columns.buys.append
        add_price, add_quantity = columns.prices.append, columns.quantities.append
        for (i, good, buy, bottom, top, q, tick), n in zip(draws, counts, strict=True):
            price = snapped.get(n)
            if price is None:
                price = _snapped(tick, n)
            if buy:
                if constrained and price > top:
                    price = top
                if price * q > cash[i]:
                    continue
            elif constrained and price < bottom:
                price = bottom
            add_agent(owners[i])
            add_good(good)
            add_buy(buy)
            add_price(price)
            add_quantity(q)
            orders[i] += 1
        decided: list[Decision] = []
        for count in orders:
            decided.append(ColumnDecision(columns, first, count))
            first += count
        return decided


def _append_columns(
    columns: OrderColumns, first: int, agents: int, owners: Sequence[Any], who: Sequence[int], goods: Sequence[str],
    buys: Sequence[bool], low: np.ndarray, high: np.ndarray, sizes: Sequence[int], counts: list[int],
    snapped: dict[int, float], tick: float, cash: list[float], constrained: bool,
) -> list[Decision]:  # fmt: skip
    """`decide_columns`' last part (each draw's snapped price, clamped to its bound, a bid kept when
    its agent's cash covers it; the kept orders appended, each agent's decision made) for draws of
    one tick size and agents whose cash is a float: the same doubles as its loop, as arrays."""
    get = snapped.get
    prices = np.array([get(n) or _snapped(tick, n) for n in counts])
    buy = np.array(buys, dtype=bool)
    if constrained:  # a bid above its top is the top, an ask below its bottom the bottom
        prices = np.where(buy, np.minimum(prices, high), np.maximum(prices, low))
    where = np.array(who, dtype=np.intp)
    # float times int as in `decide` (the int made a double), compared with the agent's cash
    keep = ~buy | ~(prices * np.array(sizes, dtype=np.float64) > np.array(cash)[where])
    if keep.all():
        columns.agents.extend([owners[i] for i in who])
        columns.goods.extend(goods)
        columns.buys.extend(buys)
        columns.prices.extend(prices.tolist())
        columns.quantities.extend(sizes)
        orders = np.bincount(where, minlength=agents).tolist()
    else:
        kept = keep.tolist()
        columns.agents.extend([owners[i] for i, k in zip(who, kept, strict=True) if k])
        columns.goods.extend([g for g, k in zip(goods, kept, strict=True) if k])
        columns.buys.extend([b for b, k in zip(buys, kept, strict=True) if k])
        columns.prices.extend(prices[keep].tolist())
        columns.quantities.extend([q for q, k in zip(sizes, kept, strict=True) if k])
        orders = np.bincount(where[keep], minlength=agents).tolist()
    decided: list[Decision] = []
    for count in orders:
        decided.append(ColumnDecision(columns, first, count))
        first += count
    return decided


def _snapped(tick: float, ticks: int) -> float:
    """`Observation.snap` of a price ``ticks`` ticks away from zero (at least one tick)."""
    kept = _SNAPPED.get(tick)
    if kept is None or len(kept) >= _SNAPPED_KEPT:
        kept = _SNAPPED[tick] = {}
    snapped = kept.get(ticks)
    if snapped is None:
        snapped = kept[ticks] = round(ticks * tick, 10)
    return snapped


def _valid_orders(goods: Sequence[str], lows: Sequence[float], highs: Sequence[float], sizes: Sequence[int], ticks: Sequence[float]) -> bool:
    """Whether every order drawn from these ranges passes `PlaceOrder`'s validation whatever the
    draw (so `trusted_order` may skip it): a good of 1-64 characters, an int quantity in
    1..10**9, finite bounds, a tick that snaps every price to a positive one, prices of fewer
    than 2**52 ticks."""
    return (
        all(0 < len(g) <= 64 for g in set(goods))
        and all(type(q) is int and 0 < q <= 10**9 for q in sizes)
        and all(math.isfinite(x) for x in lows) and all(math.isfinite(x) for x in highs)
        and all(t >= 1e-9 and math.isfinite(t) for t in set(ticks))
        and all(abs(x) / t < 2**52 for x, t in zip(highs, ticks, strict=True))  # a tick count an int64 holds exactly
    )  # fmt: skip


class ZeroIntelligenceConstrained(_ZeroIntelligence):
    """ZI-C: random prices that never lose money on a unit (bid <= value, ask >= cost)."""

    name: ClassVar[str] = "zi_c"
    summary: ClassVar[str] = "Gode-Sunder ZI-C: random bid <= value / ask >= cost"
    constrained: ClassVar[bool] = True


class ZeroIntelligenceUnconstrained(_ZeroIntelligence):
    """ZI-U: random prices over the whole admissible range, ignoring values and costs."""

    name: ClassVar[str] = "zi_u"
    summary: ClassVar[str] = "Gode-Sunder ZI-U: random prices over the whole range"
    constrained: ClassVar[bool] = False
