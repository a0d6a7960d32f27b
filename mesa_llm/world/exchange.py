"""The exchange: world rules for orders, the call market per good, and settlement through the ledger.

This is where intent meets the rules. An order is accepted only if its good exists, the agent's
role may take that side, its price is on the tick and inside the admissible range, the agent has
not exceeded its orders for the step, and the funds or goods it needs can be *reserved* in the
ledger. Clearing runs the numpy call auction per good and settles every fill atomically in the
ledger; unfilled step orders expire and their reservations are released. Nothing here knows about
LLMs, Mesa or recording: the model calls it and records what it returns.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np

from mesa_llm.actions import PlaceOrder, RejectedAction
from mesa_llm.agents.roles import Role
from mesa_llm.market import (
    ClearingResult,
    Ledger,
    LedgerError,
    Lifetime,
    Money,
    OffTickError,
    Order,
    OrderBook,
    Side,
    StepOrders,
    clear_call_auction,
    pair_fills,
)
from mesa_llm.world.regulation import MarketRules, RuleViolation

#: an order's lifetime by its text: a dict lookup per order instead of the enum call
_LIFETIMES: dict[str, Lifetime] = {lifetime.value: lifetime for lifetime in Lifetime}
#: whether each role may buy and may sell (two properties, each a set lookup, per order otherwise)
_ROLE_SIDES: dict[Role, tuple[bool, bool]] = {role: (role.may_buy, role.may_sell) for role in Role}
_ROLE, _UNIQUE_ID = attrgetter("role"), attrgetter("unique_id")
# the enum members as plain names (an attribute of the enum class is looked up per use)
_BUY, _SELL = Side.BUY, Side.SELL


@dataclass(slots=True)
class Trade:
    """One bilateral fill of a clearing (prices in ticks)."""

    good: str
    price: int
    quantity: int
    buyer_id: int
    seller_id: int
    buy_order_id: int
    sell_order_id: int
    buyer_fee: int = 0  # ticks, paid to the house on top of the price
    seller_fee: int = 0  # ticks, kept from the seller's proceeds for the house


@dataclass(slots=True)
class Clearing:
    """What one good's call auction did in one step (prices in ticks)."""

    good: str
    price: int | None
    volume: int
    price_low: int | None
    price_high: int | None
    excess_demand: int
    excess_supply: int
    buy_orders: int
    sell_orders: int
    trades: list[Trade] = field(default_factory=list)
    #: the best buy and sell limits left unfilled by the call: the spread quoted after it (None: none left)
    bid_after: int | None = None
    ask_after: int | None = None


@dataclass(slots=True)
class GoodState:
    """Market state of one good (ticks)."""

    name: str
    reference_price: int
    min_price: int
    max_price: int
    last_price: int | None = None
    last_volume: int = 0
    price_low: int | None = None
    price_high: int | None = None
    excess_demand: int = 0
    excess_supply: int = 0
    history: deque[int] = field(default_factory=deque)
    #: the step of the last clearing with a trade (None before the first trade or when unknown)
    last_trade_step: int | None = None
    #: the step of the last clearing, and its highest buy and lowest sell limit (None: no such order)
    last_clearing_step: int | None = None
    best_bid: int | None = None
    best_ask: int | None = None


class Exchange:
    """Order validation, the per-good call market and settlement in the ledger."""

    def __init__(
        self,
        goods: list[tuple[str, int, int, int]],
        money: Money,
        *,
        k: float = 0.5,
        fee_per_unit: int = 0,
        max_orders_per_step: int = 20,
        price_history: int = 20,
        rules: MarketRules | None = None,
    ) -> None:
        """``goods`` holds (name, reference, min, max) prices in ticks."""
        self.money = money
        self.rules = rules if rules is not None else MarketRules(money)
        self.k = k
        self.fee_per_unit = fee_per_unit
        self.max_orders_per_step = max_orders_per_step
        self.ledger = Ledger([g[0] for g in goods])
        self.book = OrderBook()
        self.goods: dict[str, GoodState] = {
            name: GoodState(name, ref, lo, hi, history=deque(maxlen=price_history))
            for name, ref, lo, hi in goods
        }
        self._orders_this_step: dict[int, int] = {}
        # per good: its (min, max) price in ticks and in currency units, converted once per range
        self._units: dict[str, tuple[int, int, float, float]] = {}

    # ------------------------------------------------------------------ accounts

    def open_account(
        self,
        agent_id: int,
        cash: int,
        holdings: dict[str, int],
        credit_limit: int = 0,
        short_limit: int = 0,
    ) -> None:
        """Open an agent's account with its endowment (ticks, units)."""
        self.ledger.open_account(
            agent_id, cash=cash, holdings=holdings, credit_limit=credit_limit, short_limit=short_limit
        )

    def reference_price(self, good: str) -> int:
        """Last clearing price, or the scenario's reference price before the first trade."""
        state = self.goods[good]
        return state.last_price if state.last_price is not None else state.reference_price

    def admissible(self, good: str) -> tuple[int, int]:
        """The good's admissible price range in ticks, narrowed by the rules' floor and cap."""
        state = self.goods[good]
        low = max(state.min_price, self.rules.price_floors.get(good, state.min_price))
        high = min(state.max_price, self.rules.price_caps.get(good, state.max_price))
        return low, max(high, low)

    # ------------------------------------------------------------------ actions

    def begin_step(self) -> None:
        """Reset per-step order counters."""
        self._orders_this_step.clear()

    def place_order(self, agent_id: int, role: Role, action: PlaceOrder, step: int) -> Order:
        """Validate an order against the world's rules, reserve what it needs, and book it."""
        good = action.good
        state = self.goods.get(good)
        if state is None:
            raise RejectedAction(f"unknown good {good!r}; traded goods: {', '.join(self.goods)}")
        buy = action.side == "buy"
        may_buy, may_sell = _ROLE_SIDES[role]
        if buy and not may_buy:
            raise RejectedAction(f"role {role.value!r} may not buy")
        if not buy and not may_sell:
            raise RejectedAction(f"role {role.value!r} may not sell")
        units = self._units.get(good)
        if units is None or units[0] != state.min_price or units[1] != state.max_price:
            units = self._range_units(state)
        low, high = units[2], units[3]
        tick = self.money.tick_size
        if not low - tick < action.price < high + tick:
            # checked before the conversion: an absurd price is out of range, not "too large to convert"
            raise RejectedAction(f"price {action.price} outside the admissible range [{low}, {high}]")
        try:
            price = self.money.to_ticks(action.price)
        except (OffTickError, ValueError) as exc:
            raise RejectedAction(str(exc)) from None
        if not state.min_price <= price <= state.max_price:
            raise RejectedAction(
                f"price {action.price} outside the admissible range "
                f"[{self.money.to_units(state.min_price)}, {self.money.to_units(state.max_price)}]"
            )
        side = _BUY if buy else _SELL
        rules = self.rules
        if rules.suspended_until or rules.price_caps or rules.price_floors or rules.position_limits:
            self._check_rules(agent_id, action, side, price, step)  # only rules in force are checked
        placed = self._orders_this_step.get(agent_id, 0)
        if placed >= self.max_orders_per_step:
            raise RejectedAction(f"at most {self.max_orders_per_step} orders per step")
        quantity = action.quantity
        fee = self.fee_per_unit
        try:
            if buy:
                self.ledger.reserve_cash(agent_id, (price + fee) * quantity)
            else:
                if fee > price:
                    raise RejectedAction(f"price {action.price} does not cover the fee per unit")
                self.ledger.reserve_goods(agent_id, good, quantity)
        except LedgerError as exc:
            raise RejectedAction(_insufficient(exc, side, action, self.money, price, fee)) from None
        book = self.book
        order_id = book.next_order_id()
        # positional: Order's fields in their order (order_id doubles as the arrival number)
        order = Order(order_id, agent_id, good, side, price, quantity, quantity,
                      _LIFETIMES.get(action.lifetime) or Lifetime(action.lifetime), order_id, step)  # fmt: skip
        book.add(order)
        self._orders_this_step[agent_id] = placed + 1
        return order

    def place_orders(self, orders: Sequence[tuple[Any, PlaceOrder]], step: int, out: list[Order | str]) -> None:
        """`place_order` for each ``(agent, action)`` in turn (``agent``: its ``unique_id`` and
        ``role``, a trader's), appending to ``out`` the
        order booked or why it was refused (the `RejectedAction` reason): the same checks,
        reservations and order ids as placing them one by one (a step's orders at once). If
        something else raises, ``out`` holds the orders placed before.

        The usual order (a known good, a side the role may take, a price on the tick inside the
        range, no rule in force, funds or goods to reserve) is booked here with what every order
        shares looked up once; any other goes through `place_order`, which refuses it as usual."""
        add = out.append
        place = self._place_or_refuse
        goods, units_cache, tick, to_ticks = self.goods, self._units, self.money.tick_size, self.money.to_ticks
        # every price converted at once (None: `to_ticks` decides it, or refuses it with its reason)
        prices = self.money.floats_to_ticks([action.price for _, action in orders]) if len(orders) > 16 else None
        rules = self.rules
        plain = not (rules.suspended_until or rules.price_caps or rules.price_floors or rules.position_limits)
        placed_of, most, fee = self._orders_this_step, self.max_orders_per_step, self.fee_per_unit
        reserve_cash, reserve_goods = self.ledger.reserve_cash, self.ledger.reserve_goods
        book = self.book
        book_add, next_id = book.add_new, book.next_order_id
        lifetimes = _LIFETIMES
        for index, (agent, action) in enumerate(orders):
            agent_id, role = agent.unique_id, agent.role
            good, side, price = action.good, action.side, action.price
            state = goods.get(good)
            units = units_cache.get(good)
            placed = placed_of.get(agent_id, 0)
            buy = side == "buy"
            if (
                not plain or state is None or units is None or placed >= most
                or units[0] != state.min_price or units[1] != state.max_price
                or not units[2] - tick < price < units[3] + tick or not _ROLE_SIDES[role][0 if buy else 1]
            ):  # fmt: skip
                add(place(agent_id, role, action, step))
                continue
            ticks = prices[index] if prices is not None else None
            if ticks is None:
                try:
                    ticks = to_ticks(price)
                except (OffTickError, ValueError) as exc:
                    add(str(exc))
                    continue
            if not state.min_price <= ticks <= state.max_price:
                add(place(agent_id, role, action, step))  # refused with its message
                continue
            quantity = action.quantity
            try:
                if buy:
                    reserve_cash(agent_id, (ticks + fee) * quantity)
                else:
                    if fee > ticks:
                        add(f"price {price} does not cover the fee per unit")
                        continue
                    reserve_goods(agent_id, good, quantity)
            except LedgerError as exc:
                add(_insufficient(exc, _BUY if buy else _SELL, action, self.money, ticks, fee))
                continue
            order_id = next_id()
            order = Order(order_id, agent_id, good, _BUY if buy else _SELL, ticks, quantity, quantity,
                          lifetimes.get(action.lifetime) or Lifetime(action.lifetime), order_id, step)  # fmt: skip
            book_add(order)
            placed_of[agent_id] = placed + 1
            add(order)

    def _place_or_refuse(self, agent_id: int, role: Role, action: PlaceOrder, step: int) -> Order | str:
        """`place_order`'s order, or the reason it refuses ``action``: a batch's order off its usual path."""
        try:
            return self.place_order(agent_id, role, action, step)
        except RejectedAction as exc:
            return exc.reason

    def place_columns(self, columns: Any, positions: Sequence[int], step: int, out: list[int | str], *,
                      picked: list[Any] | None = None) -> None:  # fmt: skip
        """`place_orders` of the orders of ``columns`` (an `OrderColumns`: per order its agent,
        good, side, price and quantity, lifetime a step) at ``positions``, in that order: the
        same checks, reservations, order ids and refusals, read from the columns instead of a
        `PlaceOrder` per order; ``out`` gets each booked order's id (its values are the
        columns') or why it was refused. The usual order is booked as columns too
        (`OrderBook.add_step_order`); any order off the usual path goes through `place_order`
        with the `PlaceOrder` it stands for (``columns.order``).

        The orders up to the first one off the usual path are placed at once (`_place_at_once`),
        the rest one by one (`_place_one_by_one`, the reference). ``picked``, if given, gets the
        orders' agents, goods, sides, prices and quantities at ``positions`` as lists, in that
        order, when they were read at once (the caller's texts read them from there)."""
        done = self._place_at_once(columns, positions, step, out, picked) if positions else 0
        if done < len(positions):
            self._place_one_by_one(columns, positions[done:], step, out)

    def _place_at_once(self, columns: Any, positions: Sequence[int], step: int, out: list[int | str],
                       picked: list[Any] | None = None) -> int:  # fmt: skip
        """`_place_one_by_one` of the orders at ``positions`` up to the first that is off the usual
        path (a rule in force, an unknown good, a side the role may not take, a price off the tick
        or out of range, an agent at its orders per step), all at once: the checks as arrays, the
        reservations in one pass (`Ledger.reserve_each`; a refusal gets the loop's reason), the
        order ids a range, the columns extended. Needs every order's agent to be another (else
        places none: the loop's counts per agent decide). Returns how many orders it placed or refused."""
        rules = self.rules
        if rules.suspended_until or rules.price_caps or rules.price_floors or rules.position_limits:
            return 0
        n = len(positions)
        pick = itemgetter(*positions)
        if n == 1:
            agents, goods, buys, prices, quantities = ([pick(columns.agents)], [pick(columns.goods)],
                                                       [pick(columns.buys)], [pick(columns.prices)],
                                                       [pick(columns.quantities)])  # fmt: skip
        else:
            agents, goods, buys, prices, quantities = (list(pick(columns.agents)), list(pick(columns.goods)),
                                                       list(pick(columns.buys)), list(pick(columns.prices)),
                                                       list(pick(columns.quantities)))  # fmt: skip
        if picked is not None:
            picked[:] = agents, goods, buys, prices, quantities  # (never changed below)
        ids = list(map(_UNIQUE_ID, agents))
        if len(set(ids)) != n:
            return 0
        placed_of, most = self._orders_this_step, self.max_orders_per_step
        # the first order that must go one by one (n: none), found check by check
        end = n
        if placed_of:
            end = next((i for i, agent_id in enumerate(ids) if placed_of.get(agent_id, 0) >= most), n)
        elif most < 1:
            return 0
        # each (role, side) met checked once; only if one may not be taken, where its first order is
        pairs = set(zip(map(_ROLE, agents), buys, strict=True))
        if not all((_ROLE_SIDES.get(role) or (False, False))[0 if buy else 1] for role, buy in pairs):
            end = next((i for i, (agent, buy) in enumerate(zip(agents, buys, strict=True))
                        if not (_ROLE_SIDES.get(agent.role) or (False, False))[0 if buy else 1]), end)  # fmt: skip
        if {q.__class__ for q in quantities} != {int} or min(quantities) < 1:  # (never, by `OrderColumns`' contract)
            end = min(end, next(i for i, q in enumerate(quantities) if q.__class__ is not int or q < 1))
        tick = self.money.tick_size
        names = set(goods)
        ranges = {}
        for good in names:
            state = self.goods.get(good)
            if state is None:
                end = min(end, goods.index(good))
                continue
            ranges[good] = self._range_units(state)
        values, tick_array, on_the_tick = self.money.floats_to_tick_array(prices)
        ticks: list[int] = tick_array.tolist()  # (0 where not on the tick: such an order is not placed here)
        low: Any
        high: Any
        low_units: Any
        high_units: Any
        if len(names) == 1 and ranges:
            low, high, low_units, high_units = ranges[goods[0]]
        else:  # per order its good's range (an unknown good's: nothing passes, the loop refuses it)
            none = (1, 0, np.inf, -np.inf)
            low, high, low_units, high_units = (np.array(column) for column in
                                                zip(*(ranges.get(good, none) for good in goods), strict=True))  # fmt: skip
        with np.errstate(invalid="ignore"):
            usual = ((low_units - tick < values) & (values < high_units + tick) & (low <= tick_array)
                     & (tick_array <= high) & on_the_tick)  # fmt: skip
        if not usual.all():
            end = min(end, int(np.argmin(usual)))
        if end == 0:
            return 0
        if end < n:
            ids, goods, buys, prices, quantities, ticks = (ids[:end], goods[:end], buys[:end], prices[:end],
                                                          quantities[:end], ticks[:end])  # fmt: skip
        fee = self.fee_per_unit
        amounts = _amounts(ticks, quantities, buys, fee)
        # a sell whose price does not cover the fee is refused before anything is reserved for it
        short = {i for i, (t, b) in enumerate(zip(ticks, buys, strict=True)) if not b and fee > t} if fee else set()
        if short:
            keep = [i for i in range(end) if i not in short]
            refused = {keep[i] for i in self.ledger.reserve_each([ids[i] for i in keep], [goods[i] for i in keep],
                                                                 [buys[i] for i in keep], [amounts[i] for i in keep])}  # fmt: skip
        else:
            refused = set(self.ledger.reserve_each(ids, goods, buys, amounts))
        if not short and not refused:
            booked = ids
            order_ids: Sequence[int] = self.book.next_order_ids(end)
            out += order_ids
            placed_at: Sequence[int] = range(end)
        else:
            placed_at = [i for i in range(end) if i not in short and i not in refused]
            order_ids = self.book.next_order_ids(len(placed_at))
            booked = [ids[i] for i in placed_at]
            given = iter(order_ids)
            add = out.append
            for i in range(end):
                if i in short:
                    add(f"price {prices[i]} does not cover the fee per unit")
                elif i in refused:
                    add(_insufficient(None, _BUY if buys[i] else _SELL, columns.order(positions[i]), self.money,
                                      ticks[i], fee))  # fmt: skip
                else:
                    add(next(given))
            goods, buys, ticks, quantities = ([goods[i] for i in placed_at], [buys[i] for i in placed_at],
                                              [ticks[i] for i in placed_at], [quantities[i] for i in placed_at])  # fmt: skip
        if placed_at:
            step_orders = self.book.step_columns(step)
            step_orders.ids += order_ids
            step_orders.agents += booked
            step_orders.goods += goods
            step_orders.buys += buys
            step_orders.prices += ticks
            step_orders.quantities += quantities
            if placed_of:
                for agent_id in booked:
                    placed_of[agent_id] = placed_of.get(agent_id, 0) + 1
            else:
                placed_of.update(dict.fromkeys(booked, 1))
        return end

    def _place_one_by_one(self, columns: Any, positions: Sequence[int], step: int, out: list[int | str]) -> None:
        """`place_columns` of the orders at ``positions``, each in turn (the reference of `_place_at_once`)."""
        add = out.append
        place = self._place_or_refuse
        goods, tick, to_ticks = self.goods, self.money.tick_size, self.money.to_ticks
        rules = self.rules
        plain = not (rules.suspended_until or rules.price_caps or rules.price_floors or rules.position_limits)
        agents, col_goods, col_buys, col_prices, col_quantities = (columns.agents, columns.goods, columns.buys,
                                                                   columns.prices, columns.quantities)  # fmt: skip
        # every price converted at once (None: `to_ticks` decides it, or refuses it with its reason)
        prices = self.money.floats_to_ticks(col_prices) if len(positions) > 16 else None
        # per good: (state, low and high in ticks, low - tick and high + tick in units), looked up once
        ranges: dict[str, tuple[GoodState, int, int, float, float] | None] = {}
        for good in set(col_goods):
            state = goods.get(good)
            if state is None or not plain:
                ranges[good] = None
                continue
            units = self._range_units(state)
            ranges[good] = (state, units[0], units[1], units[2] - tick, units[3] + tick)
        placed_of, most, fee = self._orders_this_step, self.max_orders_per_step, self.fee_per_unit
        reserve_cash, reserve_goods = self.ledger.reserve_cash, self.ledger.reserve_goods
        book = self.book
        next_id = book.next_order_id
        role_sides = _ROLE_SIDES
        booked = None  # the book's step columns (`add_step_order`), looked up again after a `place_order`
        for k in positions:
            agent = agents[k]
            agent_id, good, buy, price = agent.unique_id, col_goods[k], col_buys[k], col_prices[k]
            known = ranges[good]
            placed = placed_of.get(agent_id, 0)
            if known is None or placed >= most or not known[3] < price < known[4] \
                    or not role_sides[agent.role][0 if buy else 1]:  # fmt: skip
                booked = None
                placed_order = place(agent_id, agent.role, columns.order(k), step)  # refused, or placed the usual way
                add(placed_order if isinstance(placed_order, str) else placed_order.order_id)
                continue
            ticks = prices[k] if prices is not None else None
            if ticks is None:
                try:
                    ticks = to_ticks(price)
                except (OffTickError, ValueError) as exc:
                    add(str(exc))
                    continue
            if not known[1] <= ticks <= known[2]:
                booked = None
                placed_order = place(agent_id, agent.role, columns.order(k), step)  # refused with its message
                add(placed_order if isinstance(placed_order, str) else placed_order.order_id)
                continue
            quantity = col_quantities[k]
            try:
                if buy:
                    reserve_cash(agent_id, (ticks + fee) * quantity)
                else:
                    if fee > ticks:
                        add(f"price {price} does not cover the fee per unit")
                        continue
                    reserve_goods(agent_id, good, quantity)
            except LedgerError as exc:
                add(_insufficient(exc, _BUY if buy else _SELL, columns.order(k), self.money, ticks, fee))
                continue
            order_id = next_id()
            if booked is None:
                columns_now = book.step_columns(step)
                booked = (columns_now.ids.append, columns_now.agents.append, columns_now.goods.append,
                          columns_now.buys.append, columns_now.prices.append, columns_now.quantities.append)  # fmt: skip
            booked[0](order_id)
            booked[1](agent_id)
            booked[2](good)
            booked[3](buy)
            booked[4](ticks)
            booked[5](quantity)
            placed_of[agent_id] = placed + 1
            add(order_id)

    def _check_rules(self, agent_id: int, action: PlaceOrder, side: Side, price: int, step: int) -> None:
        """The checks of the market rules in force (suspension, price floor and cap, position limit)."""
        rules = self.rules
        try:
            if rules.suspended_until:
                rules.check_suspension(agent_id, step)
            if rules.price_caps or rules.price_floors:
                rules.check_price(action.good, price)
            if rules.position_limits:
                account = self.ledger.account(agent_id)
                mine = [o for o in self.book.open_orders(agent_id) if o.good == action.good]
                rules.check_position(
                    action.good,
                    side,
                    action.quantity,
                    account.holdings.get(action.good, 0),
                    sum(o.remaining for o in mine if o.side is Side.BUY),
                    sum(o.remaining for o in mine if o.side is Side.SELL),
                )
        except RuleViolation as exc:
            raise RejectedAction(exc.reason) from None

    def _range_units(self, state: GoodState) -> tuple[int, int, float, float]:
        """The good's (min, max) price in ticks and in currency units (converted once per range)."""
        cached = self._units.get(state.name)
        if cached is None or cached[0] != state.min_price or cached[1] != state.max_price:
            to_units = self.money.to_units
            cached = self._units[state.name] = (state.min_price, state.max_price, to_units(state.min_price),
                                                to_units(state.max_price))  # fmt: skip
        return cached

    def cancel_order(self, agent_id: int, order_id: int) -> Order:
        """Cancel one of the agent's own open orders and release its reservation."""
        order = self.book.get(order_id)
        if order is None or order.agent_id != agent_id:
            raise RejectedAction(f"order {order_id} is not one of your open orders")
        self.book.cancel(order_id)
        self._release(order)
        return order

    def _release(self, order: Order) -> None:
        if order.remaining <= 0:
            return
        if order.side is _BUY:
            self.ledger.release_cash(order.agent_id, (order.price + self.fee_per_unit) * order.remaining)
        else:
            self.ledger.release_goods(order.agent_id, order.good, order.remaining)

    # ------------------------------------------------------------------ clearing

    def clear(self, step: int | None = None) -> list[Clearing]:
        """Run the call auction of every good, settle all fills, expire step orders (``step``
        is remembered as the step of the last clearing and of the last trade, for observations)."""
        columns = self.book.take_step_columns()
        if columns is not None:  # the book holds only a batch's step orders: cleared from their columns
            return self._clear_columns(columns, step)
        results = [self._clear_good(state, step) for state in self.goods.values()]
        ledger, fee = self.ledger, self.fee_per_unit
        release_cash, release_goods = ledger.release_cash, ledger.release_goods
        for order in self.book.expire(Lifetime.STEP):  # `_release` of each, what it needs looked up once
            remaining = order.remaining
            if remaining > 0:
                if order.side is _BUY:
                    release_cash(order.agent_id, (order.price + fee) * remaining)
                else:
                    release_goods(order.agent_id, order.good, remaining)
        return results

    def _clear_columns(self, columns: StepOrders, step: int | None) -> list[Clearing]:
        """`clear` of a book holding only ``columns`` (step orders, taken out of the book): each
        good's call auction over its orders (the same arrays in the same arrival order as
        `OrderBook.side_arrays` gives), the fills settled, the rest released, as `_clear_good`
        and the expiry do for `Order` objects."""
        n = len(columns)
        prices = np.fromiter(columns.prices, dtype=np.int64, count=n)
        quantities = np.fromiter(columns.quantities, dtype=np.int64, count=n)
        buys = np.fromiter(columns.buys, dtype=bool, count=n)
        names = list(self.goods)
        codes = {name: i for i, name in enumerate(names)}
        present = set(columns.goods)
        if len(present) == 1:  # one good for all (the usual batch): its code, no lookup per order
            good_of = np.full(n, codes.get(next(iter(present)), -1), dtype=np.int64)
        else:
            good_of = np.fromiter((codes.get(g, -1) for g in columns.goods), dtype=np.int64, count=n)
        fills = np.zeros(n, dtype=np.int64)
        results = [self._clear_good_columns(state, step, columns, prices, quantities,
                                            np.flatnonzero(buys & (good_of == code)),
                                            np.flatnonzero(~buys & (good_of == code)), fills)
                   for code, state in enumerate(self.goods.values())]  # fmt: skip
        # what expires: its reservation released (a buy's cash at its limit and fee, a sell's units)
        left = quantities - fills
        expiring = np.flatnonzero(left > 0)
        amounts = np.where(buys, prices + self.fee_per_unit, 1)[expiring] * left[expiring]
        if len(expiring) == n:
            self.ledger.release_each(columns.agents, columns.goods, columns.buys, amounts.tolist())
        else:
            pick = expiring.tolist()
            agents, goods = columns.agents, columns.goods
            self.ledger.release_each([agents[k] for k in pick], [goods[k] for k in pick],
                                     buys[expiring].tolist(), amounts.tolist())  # fmt: skip
        return results

    def _clear_good_columns(
        self, state: GoodState, step: int | None, columns: StepOrders, prices: np.ndarray, quantities: np.ndarray,
        buy_index: np.ndarray, sell_index: np.ndarray, fills: np.ndarray,
    ) -> Clearing:  # fmt: skip
        """`_clear_good` of one good's orders in ``columns`` (``buy_index``, ``sell_index``: their
        places, in arrival order), adding each order's fill to ``fills``."""
        clearing, result = self._auction(state, step, prices[buy_index], quantities[buy_index], prices[sell_index],
                                         quantities[sell_index])  # fmt: skip
        if result.price is None or result.volume == 0:
            return clearing
        price = int(result.price)
        fee = self.fee_per_unit
        fills[buy_index] += result.buy_fills
        fills[sell_index] += result.sell_fills
        buy_at, sell_at, quantity_of = pair_fills(result.buy_fills, result.sell_fills)
        # each trade's places in the columns, quantity, the cash its buy order reserved and the fee
        buys, sells = buy_index[buy_at], sell_index[sell_at]
        reserved = ((prices[buys] + fee) * quantity_of).tolist()
        fees = (fee * quantity_of).tolist()
        buys_at, sells_at, quantity_list = buys.tolist(), sells.tolist(), quantity_of.tolist()
        agents, ids = columns.agents, columns.ids
        buyers, sellers = [agents[b] for b in buys_at], [agents[s] for s in sells_at]
        good = state.name
        self.ledger.settle_trades(good, price, buyers, sellers, quantity_list, reserved, fees)
        clearing.trades = [Trade(good, price, q, buyer, seller, ids[b], ids[s], f, f)
                           for q, buyer, seller, b, s, f in zip(quantity_list, buyers, sellers, buys_at, sells_at,
                                                                 fees, strict=True)]  # fmt: skip
        _traded(state, step, price, result)
        return clearing

    def _auction(self, state: GoodState, step: int | None, buy_prices: np.ndarray, buy_qty: np.ndarray,
                 sell_prices: np.ndarray, sell_qty: np.ndarray) -> tuple[Clearing, ClearingResult]:  # fmt: skip
        """One good's call auction over its bids and asks (limits in ticks, arrival order): the
        clearing (no trades yet) and the auction's result, with the good's state updated for it."""
        # the best limits entered into this clearing (shown to agents as last step's bid and ask)
        state.last_clearing_step = step
        state.best_bid = int(buy_prices.max()) if len(buy_prices) else None
        state.best_ask = int(sell_prices.min()) if len(sell_prices) else None
        result = clear_call_auction(buy_prices, buy_qty, sell_prices, sell_qty, k=self.k)
        clearing = Clearing(
            good=state.name, price=result.price, volume=result.volume, price_low=result.price_low,
            price_high=result.price_high, excess_demand=result.excess_demand, excess_supply=result.excess_supply,
            buy_orders=len(buy_prices), sell_orders=len(sell_prices),
        )  # fmt: skip
        bids_left = buy_prices[buy_qty > result.buy_fills]
        asks_left = sell_prices[sell_qty > result.sell_fills]
        clearing.bid_after = int(bids_left.max()) if len(bids_left) else None
        clearing.ask_after = int(asks_left.min()) if len(asks_left) else None
        state.last_volume = result.volume
        state.excess_demand = result.excess_demand
        state.excess_supply = result.excess_supply
        return clearing, result

    def _clear_good(self, state: GoodState, step: int | None = None) -> Clearing:
        buys, buy_prices, buy_qty = self.book.side_arrays(state.name, Side.BUY)
        sells, sell_prices, sell_qty = self.book.side_arrays(state.name, Side.SELL)
        clearing, result = self._auction(state, step, buy_prices, buy_qty, sell_prices, sell_qty)
        if result.price is None or result.volume == 0:
            return clearing
        price = int(result.price)
        fee = self.fee_per_unit
        buy_index, sell_index, quantities = pair_fills(result.buy_fills, result.sell_fills)
        settle, good, trades = self.ledger.settle_trade, state.name, clearing.trades
        add = trades.append
        for b, s, q in zip(buy_index.tolist(), sell_index.tolist(), quantities.tolist(), strict=True):
            buy, sell = buys[b], sells[s]
            buyer, seller, fees = buy.agent_id, sell.agent_id, fee * q
            settle(buyer, seller, good, q, price, buyer_reserved_cash=(buy.price + fee) * q, seller_reserved_goods=q,
                   buyer_fee=fees, seller_fee=fees)  # fmt: skip
            add(Trade(good, price, q, buyer, seller, buy.order_id, sell.order_id, fees, fees))
        self.book.apply_fills(buys, result.buy_fills)
        self.book.apply_fills(sells, result.sell_fills)
        _traded(state, step, price, result)
        return clearing

    def open_orders(self, agent_id: int) -> list[Order]:
        """The agent's resting orders."""
        return self.book.open_orders(agent_id)

    def cancel_all(self, agent_id: int) -> list[Order]:
        """Cancel every open order of the agent (e.g. on suspension), releasing reservations."""
        cancelled = []
        for order in list(self.book.open_orders(agent_id)):
            self.book.cancel(order.order_id)
            self._release(order)
            cancelled.append(order)
        return cancelled

    def snapshot_prices(self) -> dict[str, Any]:
        """Last prices per good in currency units (None before the first trade)."""
        to_units = self.money.to_units
        return {
            name: (to_units(s.last_price) if s.last_price is not None else None)
            for name, s in self.goods.items()
        }


def _amounts(ticks: list[int], quantities: list[int], buys: list[bool], fee: int) -> list[int]:
    """What each order reserves: a buy's cash at its limit and fee, ``(tick + fee) * quantity``,
    a sell's units, ``quantity`` - as arrays when the products fit in int64 with room to spare
    (the ints the loop makes), else order by order (Python's ints do not overflow)."""
    if len(ticks) > 16 and max(ticks) + abs(fee) < 1 << 40 and min(ticks) > -(1 << 40) and max(quantities) < 1 << 20:
        q = np.array(quantities, dtype=np.int64)
        return np.where(np.array(buys, dtype=bool), (np.array(ticks, dtype=np.int64) + fee) * q, q).tolist()
    return [(t + fee) * q if b else q for t, q, b in zip(ticks, quantities, buys, strict=True)]


def _insufficient(
    exc: LedgerError | None, side: Side, action: PlaceOrder, money: Money, price: int, fee: int
) -> str:
    if side is Side.BUY:
        need = money.to_units((price + fee) * action.quantity)
        return f"insufficient funds: buying {action.quantity} {action.good} at {action.price} needs {need} available cash"
    return f"insufficient goods: selling {action.quantity} {action.good} needs {action.quantity} available units"


def _traded(state: GoodState, step: int | None, price: int, result: ClearingResult) -> None:
    """The good's state after a clearing that traded at ``price`` (ticks)."""
    state.last_price = price
    state.last_trade_step = step
    state.price_low = result.price_low
    state.price_high = result.price_high
    state.history.append(price)


__all__ = ["Clearing", "Exchange", "GoodState", "RejectedAction", "Trade"]
