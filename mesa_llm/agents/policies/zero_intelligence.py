"""Gode & Sunder's zero-intelligence traders: ZI-C (budget-constrained) and ZI-U (unconstrained).

Each step a ZI trader offers its next untraded unit of each good it has a schedule for, at a price
drawn uniformly at random: ZI-C never bids above the unit's value nor asks below its cost; ZI-U
draws from the whole admissible price range. (Gode & Sunder 1993, JPE 101(1).)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import accumulate, chain, compress, repeat
from operator import attrgetter, is_, is_not
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from mesa_llm.actions import ActionBase, Decision, PlaceOrder
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.observation_batch import LazyObservation, zi_items
from mesa_llm.agents.policies.base import ColumnDecision, DecisionPolicy, OrderColumns, PolicyParams
from mesa_llm.agents.roles import Role

_PARAMS = attrgetter("params")
_SIDES: dict[str, tuple[bool, bool]] = {role.value: (role.may_buy, role.may_sell) for role in Role}
#: per tick size: snapped prices by tick count (`Observation.snap`'s rule), bounded as its cache is
_SNAPPED: dict[float, dict[int, float]] = {}
_SNAPPED_KEPT = 1 << 16
#: per tick size: `_SNAPPED`'s prices as an array by tick count, NaN where not made yet (`_snapped_prices`)
_TABLES: dict[float, np.ndarray] = {}
#: `_limits`' distinct values
_LIMITS: dict[tuple[Any, ...], tuple[Any, ...]] = {}


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
        agents then decide one by one.

        A population observed in one pass (`ObservedAgents`) keeps its agents' draws from step to
        step (`_KeptDraws`): only the agents whose observation is made of other parts than last
        step's have theirs made (and validated) again."""
        if cls.decide is not _ZeroIntelligence.decide or cls.decide_batch.__func__ is not _ZeroIntelligence.decide_batch.__func__:  # type: ignore[attr-defined]
            return None  # a subclass decides otherwise (its own `decide`, or its own batch)
        if len(policies) != len(observations):
            raise ValueError("one observation per policy")
        if not policies:
            return []
        constrained = cls.constrained
        kept = _KeptDraws.of(policies, observations, constrained)
        # per agent: its draws, in draw order ((good, buy?, low and high of the draw, quantity, tick
        # size) each, `_agent_draws`), and its available cash, read before drawing
        made = kept.draws if kept is not None else _each_draws(policies, observations, constrained)
        if made is None:
            return None
        templates, cash, fresh = made
        first = len(columns)
        draws = list(chain.from_iterable(templates))
        if not draws:
            return _decisions(columns, first, [0] * len(policies))
        if fresh:  # the draws not validated yet (kept ones were, when made)
            fresh_goods, _, fresh_lows, fresh_highs, fresh_sizes, fresh_ticks = zip(*fresh, strict=True)
            if not _valid_orders(fresh_goods, fresh_lows, fresh_highs, fresh_sizes, fresh_ticks):
                return None
        goods, buys, lows, highs, sizes, ticks = zip(*draws, strict=True)
        cash_types = set(map(type, cash))
        # read before drawing: nothing after the draw may fail (the agents could not be decided again)
        if any(buys) and not cash_types <= {float, int}:
            return None
        if kept is not None:
            kept.keep()  # (only now: every draw is valid)
        per_agent = list(map(len, templates))
        low, high, tick_array = np.array(lows), np.array(highs), np.array(ticks)
        raw = low + (high - low) * rng.random(len(draws))  # `_uniform`'s arithmetic, element-wise
        counts = np.maximum(np.rint(raw / tick_array), 1.0).astype(np.int64)  # round(): half-even too
        if len(snapped_ticks := set(ticks)) == 1 and cash_types == {float}:
            # one tick size, every cash a float: the prices, the clamps and the cash check as arrays too
            prices = _snapped_prices(snapped_ticks.pop(), counts)
            if prices is not None:
                one_each = len(draws) == len(policies) and per_agent.count(1) == len(policies)
                return _append_columns(
                    columns, first, owners, per_agent, one_each, goods, buys, low, high, sizes, prices, cash,
                    constrained,
                )  # fmt: skip
        return _loop_columns(columns, first, owners, per_agent, draws, counts.tolist(), cash, constrained)


#: one draw of `_agent_draws`: (good, buy?, low, high, quantity, tick size)
Draw = tuple[str, bool, float, float, int, float]


def _each_draws(
    policies: Sequence[DecisionPolicy], observations: Sequence[Any], constrained: bool
) -> tuple[list[tuple[Draw, ...]], list[Any], list[Draw]]:
    """Each agent's draws (`_agent_draws`) and available cash, from the numbers its observation
    shows, agent by agent (the reference of `_KeptDraws`); every draw is new (to validate)."""
    templates: list[tuple[Draw, ...]] = []
    cash: list[Any] = []
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
        cash.append(available_cash)
        templates.append(_agent_draws(constrained, quantity, role, market_goods, tick_size, inputs))
    return templates, cash, list(chain.from_iterable(templates))


class _KeptDraws:
    """A ZI population's draws (`_agent_draws`) and cash kept from its last step, per agent with
    what its observation was made of then (`zi_items`: the same object while the agent's shown
    state is unchanged) and its policy's parameters; kept by the population's first policy.

    A step of the same agents, parameters and market price ranges makes the draws again only for
    the agents whose observation is made of something else (`ObservedAgents.zi_row`): the others
    show the same numbers, so they draw from the same ranges. Anything else (another population,
    an observation read and decided from its built parts) is decided agent by agent
    (`_each_draws`), and what is kept is made again from that."""

    __slots__ = ("items", "params", "limits", "constrained", "templates", "cash", "draws", "_next")

    def __init__(self) -> None:  # noqa: D107 - nothing kept yet
        self.items: list[Any] = []
        self.params: list[Any] = []
        self.limits: Any = None
        self.constrained: bool | None = None
        self.templates: list[tuple[Draw, ...]] = []
        self.cash: list[Any] = []
        #: this step's (templates, cash, draws made anew), what `decide_columns` reads
        self.draws: tuple[list[tuple[Draw, ...]], list[Any], list[Draw]] | None = None
        #: this step's items, limits, constrained and parameters, kept by `keep`
        self._next: tuple[list[Any], Any, bool, list[Any]] | None = None

    @classmethod
    def of(cls, policies: Sequence[DecisionPolicy], observations: Sequence[Any], constrained: bool) -> _KeptDraws | None:
        """The population's kept draws with this step's (``draws``) made from them, or None when
        its observations are not a population observed in one pass (then `_each_draws`)."""
        population = zi_items(observations)
        if population is None:
            return None
        items, goods = population
        head: Any = policies[0]
        kept = head.__dict__.get("_zi_kept")
        if kept is None:
            kept = head.__dict__["_zi_kept"] = cls()
        limits = _limits(goods)
        params = list(map(_PARAMS, policies))
        n = len(policies)
        if (
            len(kept.items) != n or kept.constrained is not constrained or kept.limits is not limits
            or not all(map(is_, params, kept.params))
        ):  # fmt: skip
            changed: Sequence[int] = range(n)
            templates: list[Any] = [()] * n
            cash: list[Any] = [0.0] * n
        else:
            changed = list(compress(range(n), map(is_not, items, kept.items)))  # (in C: most are the same)
            templates, cash = list(kept.templates), list(kept.cash)
        fresh: list[Draw] = []
        rows = observations.zi_rows(changed)  # type: ignore[attr-defined]
        for i, zi in zip(changed, rows, strict=True):
            if zi is None:  # its observation was read: decided from its built parts (`_each_draws`)
                kept.items = []
                return None
            role, _, tick_size, available_cash, inputs = zi
            template = _agent_draws(constrained, params[i].quantity, role, goods, tick_size, inputs)
            templates[i], cash[i] = template, available_cash
            fresh += template
        kept.draws = templates, cash, fresh
        kept._next = items, limits, constrained, params
        return kept

    def keep(self) -> None:
        """Keep this step's draws (`draws`, every one valid) for the next step."""
        assert self.draws is not None and self._next is not None
        self.templates, self.cash, _ = self.draws
        self.items, self.limits, self.constrained, self.params = self._next


def _loop_columns(
    columns: OrderColumns, first: int, owners: Sequence[Any], per_agent: list[int],
    draws: list[tuple[str, bool, float, float, int, float]], counts: list[int], cash: list[Any], constrained: bool,
) -> list[Decision]:  # fmt: skip
    """`decide_columns`' last part draw by draw (the reference of `_append_columns`): each draw's
    snapped price (``counts`` ticks), clamped to its bound, a bid kept when its agent's cash covers
    it; the kept orders appended, each agent's decision made."""
    ticks = {draw[5] for draw in draws}
    snapped = _SNAPPED.get(ticks.pop()) if len(ticks) == 1 else None
    if snapped is None or len(snapped) >= _SNAPPED_KEPT:
        snapped = {}
    orders = [0] * len(per_agent)  # each agent's orders
    add_agent, add_good, add_buy = columns.agents.append, columns.goods.append, columns.buys.append
    add_price, add_quantity = columns.prices.append, columns.quantities.append
    who = [i for i, n in enumerate(per_agent) for _ in range(n)]
    for i, (good, buy, bottom, top, q, tick), n in zip(who, draws, counts, strict=True):
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
    return _decisions(columns, first, orders)


def _decisions(columns: OrderColumns, first: int, orders: list[int]) -> list[Decision]:
    """Each agent's `ColumnDecision`: ``orders[i]`` orders of ``columns``, agent after agent from ``first``."""
    starts = accumulate(orders, initial=first)
    return list(map(ColumnDecision, repeat(columns), starts, orders))


def _agent_draws(
    constrained: bool, quantity: int, role: str, market_goods: dict[str, Any], tick_size: Any,
    inputs: Sequence[tuple[str, Sequence[float], Sequence[float], int, int, int]],
) -> tuple[tuple[str, bool, float, float, int, float], ...]:  # fmt: skip
    """An agent's draws as `decide` takes them (per good, the bid then the ask it draws a price for):
    ``(good, buy?, low, high, quantity, tick size)`` from the numbers its observation shows
    (``inputs``: `LazyObservation.zi_inputs`' per-good rows)."""
    role_may_buy, role_may_sell = _SIDES[role]
    out = []
    for good, values, costs, values_left, costs_left, available_goods in inputs:
        market = market_goods[good]
        lo, hi = market.min_price, market.max_price
        if role_may_buy and values:
            q = min(quantity, values_left, len(values))
            top = min(values[q - 1], hi) if constrained else hi
            if top >= lo:
                out.append((good, True, lo, top, q, tick_size))
        if role_may_sell and costs:
            q = min(quantity, costs_left, len(costs), available_goods)
            if q > 0:
                bottom = max(costs[q - 1], lo) if constrained else lo
                if bottom <= hi:
                    out.append((good, False, bottom, hi, q, tick_size))
    return tuple(out)


def _limits(market_goods: dict[str, Any]) -> tuple[tuple[Any, Any, Any], ...]:
    """Each good's price range, ``(good, min_price, max_price)`` (what `_agent_draws` reads of the
    market), one object per distinct content (so a kept template compares it by identity)."""
    limits = tuple((good, g.min_price, g.max_price) for good, g in market_goods.items())
    if len(_LIMITS) >= 1024:
        _LIMITS.clear()
    return _LIMITS.setdefault(limits, limits)


def _append_columns(
    columns: OrderColumns, first: int, owners: Sequence[Any], per_agent: list[int], one_each: bool,
    goods: Sequence[str], buys: Sequence[bool], low: np.ndarray, high: np.ndarray, sizes: Sequence[int],
    prices: np.ndarray, cash: list[float], constrained: bool,
) -> list[Decision]:  # fmt: skip
    """`_loop_columns` for draws of one tick size (their snapped ``prices``) and agents whose cash is
    a float: the same doubles as its loop, as arrays (``one_each``: one draw per agent)."""
    buy = np.array(buys, dtype=bool)
    if constrained:  # a bid above its top is the top, an ask below its bottom the bottom
        prices = np.where(buy, np.minimum(prices, high), np.maximum(prices, low))
    agents = len(per_agent)
    where = np.arange(agents) if one_each else np.repeat(np.arange(agents), per_agent)
    # float times int as in `decide` (the int made a double), compared with the agent's cash
    cash_array = np.array(cash) if one_each else np.array(cash)[where]
    keep = ~buy | ~(prices * np.array(sizes, dtype=np.float64) > cash_array)
    if keep.all():
        columns.agents.extend(owners if one_each else [owners[i] for i in where.tolist()])
        columns.goods.extend(goods)
        columns.buys.extend(buys)
        columns.prices.extend(prices.tolist())
        columns.quantities.extend(sizes)
        return _decisions(columns, first, per_agent)
    kept = keep.tolist()
    columns.agents.extend([owners[i] for i, k in zip(where.tolist(), kept, strict=True) if k])
    columns.goods.extend([g for g, k in zip(goods, kept, strict=True) if k])
    columns.buys.extend([b for b, k in zip(buys, kept, strict=True) if k])
    columns.prices.extend(prices[keep].tolist())
    columns.quantities.extend([q for q, k in zip(sizes, kept, strict=True) if k])
    return _decisions(columns, first, np.bincount(where[keep], minlength=agents).tolist())


def _snapped_prices(tick: float, counts: np.ndarray) -> np.ndarray | None:
    """`_snapped` ``(tick, n)`` of each of ``counts`` (int64, at least 1), as one array lookup in a
    table of the prices made so far for ``tick`` (each made by `_snapped`'s own rounding when first
    needed, so the same doubles); None when a count is past the table's bound (then one by one)."""
    top = int(counts.max())
    if top >= _SNAPPED_KEPT:
        return None
    table = _TABLES.get(tick)
    if table is None or len(table) <= top:
        if table is None and len(_TABLES) >= 16:
            _TABLES.clear()
        grown = np.full(min(max(top + 1, 2 * (0 if table is None else len(table)), 1024), _SNAPPED_KEPT), np.nan)
        if table is not None:
            grown[: len(table)] = table
        table = _TABLES[tick] = grown
    prices = table[counts]
    missing = np.isnan(prices)  # (a snapped price is never a NaN: not made yet)
    if missing.any():
        for n in set(counts[missing].tolist()):
            table[n] = round(n * tick, 10)
        prices = table[counts]
    return prices


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
