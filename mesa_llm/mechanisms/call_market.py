"""The call market as a mechanism: the exchange's orders, its per-good call auction and settlement.

An adapter over :class:`mesa_llm.world.exchange.Exchange` (which keeps the rules: goods, ticks,
admissible prices, reservations, the numpy clearing): orders and cancellations are resolved here,
and every step's clearings and trades are recorded (``clearing``, ``trade``) as they always were.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from itertools import repeat
from json.encoder import encode_basestring
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar

from mesa_llm import payloads
from mesa_llm.actions import ActionBase, CancelOrder, PlaceOrder, RejectedAction
from mesa_llm.encoded_json import int_texts
from mesa_llm.market.orders import Side
from mesa_llm.mechanisms.base import Mechanism, Record, Recorded, emit
from mesa_llm.tallies import TradeEvents
from mesa_llm.text_batch import TextBatch

if TYPE_CHECKING:
    from mesa_llm.agents.policies.base import OrderColumns
    from mesa_llm.agents.roles import Role
    from mesa_llm.agents.trader import TraderAgent
    from mesa_llm.market import Money, Order
    from mesa_llm.world.exchange import Exchange, Trade

#: the tools of the call market
CALL_MARKET_TOOLS = ("place_order", "cancel_order")
_INF = math.inf
_BUY_SIDE = Side.BUY
_FINITE = math.isfinite
#: an order's side and lifetime as JSON text
_LITERAL = {name: f'"{name}"' for name in ("buy", "sell", "step", "gtc")}
#: JSON text of the positive floats (prices) and the strings (goods) met before, bounded
_FLOATS: dict[float, str] = {}
_STRINGS: dict[str, str] = {}
_JSON_KEPT = 1 << 16


def float_json(value: float) -> str:
    """A finite float's JSON text as the recorder's encoder writes it (``float.__repr__``),
    remembered for positive ones: a repr costs ~0.4 us, and a run meets the same prices again
    and again (0.0 is not kept: -0.0 equals it and prints otherwise)."""
    text = _FLOATS.get(value)
    if text is None:
        text = repr(value)
        if value > 0.0:
            if len(_FLOATS) >= _JSON_KEPT:
                _FLOATS.clear()
            _FLOATS[value] = text
    return text


def string_json(value: str) -> str:
    """A string's JSON text as the recorder's encoder writes it (`encode_basestring`), remembered."""
    text = _STRINGS.get(value)
    if text is None:
        if len(_STRINGS) >= _JSON_KEPT:
            _STRINGS.clear()
        text = _STRINGS[value] = encode_basestring(value)
    return text


def action_json(good: str, side: str, price: float, quantity: int, lifetime: str) -> str | None:
    """The recorder's compact encoding of an ``action`` placing this order (`Resolver.apply`'s
    content), or None when it is not a validated order's (then the recorder encodes it)."""
    if price.__class__ is not float or quantity.__class__ is not int or good.__class__ is not str \
            or side not in _LITERAL or lifetime not in _LITERAL or not 0.0 < price < _INF:  # fmt: skip
        return None
    return (f'{{"type":"place_order","arguments":{{"good":{string_json(good)},"side":{_LITERAL[side]},'
            f'"price":{float_json(price)},"quantity":{quantity},"lifetime":{_LITERAL[lifetime]}}}}}')  # fmt: skip


def order_json(order_id: int, side: str, good: str, price: float, quantity: int, lifetime: str) -> str | None:
    """The recorder's compact encoding of an ``order`` event's content (`CallMarketMechanism.act`'s),
    or None when it is not a booked order's (then the recorder encodes it)."""
    if price.__class__ is not float or quantity.__class__ is not int or order_id.__class__ is not int \
            or good.__class__ is not str or side not in _LITERAL or lifetime not in _LITERAL or not 0.0 < price < _INF:  # fmt: skip
        return None
    return (f'{{"order_id":{order_id},"side":{_LITERAL[side]},"good":{string_json(good)},'
            f'"price":{float_json(price)},"quantity":{quantity},"lifetime":{_LITERAL[lifetime]}}}')  # fmt: skip


#: per (good, side, lifetime) of an order: the JSON text around its price in its ``action`` content
#: (up to the price), in its ``order`` content (from after the id up to the price), and after
#: its quantity (both end so; the action's then closes its arguments)
_PARTS: dict[tuple[str, str, str], tuple[str, str, str]] = {}


def _parts(good: str, side: str, lifetime: str) -> tuple[str, str, str]:
    """The texts `action_json` and `order_json` put around an order's price, quantity and id."""
    if len(_PARTS) >= _JSON_KEPT:
        _PARTS.clear()
    good_json, side_json = string_json(good), _LITERAL[side]
    part = _PARTS[good, side, lifetime] = (
        f'{{"type":"place_order","arguments":{{"good":{good_json},"side":{side_json},"price":',
        f',"side":{side_json},"good":{good_json},"price":', f',"lifetime":{_LITERAL[lifetime]}}}',
    )  # fmt: skip
    return part


class CallMarketMechanism(Mechanism):
    """Limit orders cleared by a uniform-price call auction per good at the end of every step."""

    name: ClassVar[str] = "call_market"
    summary: ClassVar[str] = "limit orders, a uniform-price call auction per good each step"
    builtin: ClassVar[bool] = True
    actions: ClassVar[tuple[type[ActionBase], ...]] = (PlaceOrder, CancelOrder)

    def __init__(
        self, exchange: Exchange, *, enabled: bool, money: Money, record: Record, traders: Sequence[TraderAgent],
        encoded: bool = False, record_many: Callable[[list[tuple[str, Any, Any, str | None]]], None] | None = None,
    ) -> None:  # fmt: skip
        """``enabled`` is the scenario's ``market.call_market`` (orders refused when False);
        ``traders`` (creation order) give each clearing's mean fundamental value. ``record`` gets
        the JSON text of the orders' and trades' contents too (``record(type, content, agent_id,
        text)``) when ``encoded`` (a recorder will write them; without one the text is not made);
        ``record_many`` (the model's `_record_many`), when given, gets a clearing's events in one call."""
        super().__init__()
        self.encoded = encoded
        self.record_many = record_many
        self.exchange = exchange
        self.enabled = enabled
        self.money = money
        self.record = record
        self.traders = traders
        #: last step's trades (good, price, quantity, parties): what a regulator surveils
        self.last_trades: list[dict[str, Any]] = []

    def tools(self, population: str | None, role: Role) -> list[str]:
        return [name for name in CALL_MARKET_TOOLS if role.allows(name) and (self.enabled or name == "cancel_order")]

    def available(self, agent: TraderAgent, step: int) -> list[str]:
        """``place_order`` when the market is open to the agent (not suspended), ``cancel_order``
        when it has open orders."""
        out = []
        if self.enabled and not self.exchange.rules.is_suspended(agent.unique_id, step):
            out.append("place_order")
        if self.exchange.open_orders(agent.unique_id):
            out.append("cancel_order")
        return out

    def act(self, agent: TraderAgent, action: ActionBase, step: int) -> list[Recorded]:
        me = agent.unique_id
        if isinstance(action, PlaceOrder):
            if not self.enabled:
                raise RejectedAction("this scenario has no call market: trade by negotiation")
            order = self.exchange.place_order(me, agent.role, action, step)
            # `._value_`: `.value` is a property, 8x slower per order
            content = _order_content(order.order_id, action.side, order.good, action.price, order.quantity, order.lifetime._value_)
            return [("order", content, me)]
        assert isinstance(action, CancelOrder)
        cancelled = self.exchange.cancel_order(me, action.order_id)
        return [("order_cancelled", {"order_id": cancelled.order_id, "remaining": cancelled.remaining}, me)]

    def place_orders(
        self, orders: Sequence[tuple[TraderAgent, PlaceOrder]], step: int, events: list[Any], encoded: bool,
        refused: Callable[[TraderAgent, PlaceOrder, str], Any],
    ) -> None:  # fmt: skip
        """`act` for each ``(agent, place_order)`` in turn (the resolver's batch), appending to
        ``events`` what the resolver records for each, as `ActionResolver.apply` records it: the
        ``action`` and ``order`` events ``(type, content, agent_id, JSON text)`` of a booked order,
        or ``refused(agent, action, reason)`` (the resolver's ``action_rejected`` event). The texts
        are None when not ``encoded`` or left to the recorder's encoder; with a text, the content is
        a function making it (`RecordEncoded`). If something else raises, ``events`` holds the
        events of the orders placed before."""
        if not self.enabled:
            events += [refused(agent, action, "this scenario has no call market: trade by negotiation")
                       for agent, action in orders]  # fmt: skip
            return
        placed: list[Order | str] = []
        try:
            self.exchange.place_orders(orders, step, placed)
        finally:
            add = events.append
            parts = _PARTS
            floats = _FLOATS
            for (agent, action), order in zip(orders, placed, strict=False):
                if order.__class__ is str:
                    add(refused(agent, action, order))
                    continue
                assert not isinstance(order, str)
                me = agent.unique_id
                price, good, side, lifetime = action.price, order.good, action.side, order.lifetime._value_
                order_id, quantity = order.order_id, order.quantity
                # a booked order's usual values: both texts from the parts its good, side and lifetime share
                part = parts.get((good, side, lifetime)) if encoded and price.__class__ is float \
                    and quantity.__class__ is int and 0.0 < price < _INF else None  # fmt: skip
                if part is None and encoded and order_json(order_id, side, good, price, quantity, lifetime) is not None:
                    part = _parts(good, side, lifetime)
                if part is not None and action.lifetime == lifetime and action.good == good:
                    price_text = floats.get(price) or float_json(price)
                    add(("action", partial(_action_content, good, side, price, quantity, lifetime), me,
                         f'{part[0]}{price_text},"quantity":{quantity}{part[2]}}}'))  # fmt: skip
                    add(("order", partial(_order_content, order_id, side, good, price, quantity, lifetime), me,
                         f'{{"order_id":{order_id}{part[1]}{price_text},"quantity":{quantity}{part[2]}'))  # fmt: skip
                    continue
                # anything else: each text on its own (the recorder's encoder where there is none)
                a_good, a_side, a_price, a_quantity, a_lifetime = action.good, side, price, action.quantity, action.lifetime
                text = action_json(a_good, a_side, a_price, a_quantity, a_lifetime) if encoded else None
                content: Any = (_action_content(a_good, a_side, a_price, a_quantity, a_lifetime) if text is None
                                else partial(_action_content, a_good, a_side, a_price, a_quantity, a_lifetime))  # fmt: skip
                add(("action", content, me, text))
                text = order_json(order_id, side, good, price, quantity, lifetime) if encoded else None
                content = (_order_content(order_id, side, good, price, quantity, lifetime) if text is None
                           else partial(_order_content, order_id, side, good, price, quantity, lifetime))  # fmt: skip
                add(("order", content, me, text))

    def place_columns(
        self, columns: OrderColumns, positions: Sequence[int], step: int, events: list[Any],
        refused: Callable[[TraderAgent, PlaceOrder, str], Any], encoded: bool = True,
    ) -> TextBatch | None:  # fmt: skip
        """`place_orders` (encoded) of the orders of ``columns`` at ``positions``, in that order
        (`Exchange.place_columns`): the same events, the orders' values read from the columns; a
        refused order's `PlaceOrder` (``columns.order``) goes to ``refused``. When every order is
        booked with its texts made from shared parts, the events are returned as one `TextBatch`
        (``action`` and ``order`` lines alternating, their contents made only if needed) and
        ``events`` stays empty; else (a refusal, a value off the usual path, something raising)
        they are appended to ``events`` one by one and None is returned. Not ``encoded`` (no
        recorder): one by one, each content a dict and no text made."""
        agents = columns.agents
        if not self.enabled:
            events += [refused(agents[k], columns.order(k), "this scenario has no call market: trade by negotiation")
                       for k in positions]  # fmt: skip
            return None
        placed: list[int | str] = []
        picked: list[Any] = []  # the orders' values at ``positions``, as the exchange read them
        done = False
        try:
            self.exchange.place_columns(columns, positions, step, placed, picked=picked)
            done = True
        finally:
            batch = _text_batch(columns, positions, placed, picked) if done and encoded else None
            if batch is None:
                self._column_events(columns, positions, placed, events, refused, encoded)
        return batch

    @staticmethod
    def _column_events(columns: OrderColumns, positions: Sequence[int], placed: list[int | str], events: list[Any],
                       refused: Callable[[TraderAgent, PlaceOrder, str], Any], encoded: bool) -> None:  # fmt: skip
        """The events of `place_columns`, one by one (``placed``: each order's id, or why it was
        refused), with their texts when ``encoded``."""
        add = events.append
        agents, parts, floats = columns.agents, _PARTS, _FLOATS
        goods, buys, prices, quantities = columns.goods, columns.buys, columns.prices, columns.quantities
        for k, order_id in zip(positions, placed, strict=False):
            if order_id.__class__ is str:
                add(refused(agents[k], columns.order(k), order_id))
                continue
            assert isinstance(order_id, int)
            me, price, good, quantity = agents[k].unique_id, prices[k], goods[k], quantities[k]
            side = "buy" if buys[k] else "sell"
            if not encoded:
                add(("action", _action_content(good, side, price, quantity, "step"), me, None))
                add(("order", _order_content(order_id, side, good, price, quantity, "step"), me, None))
                continue
            # a booked order's usual values: both texts from the parts its good, side and lifetime share
            part = parts.get((good, side, "step")) if price.__class__ is float \
                and quantity.__class__ is int and 0.0 < price < _INF else None  # fmt: skip
            if part is None and order_json(order_id, side, good, price, quantity, "step") is not None:
                part = _parts(good, side, "step")
            if part is not None:
                price_text = floats.get(price) or float_json(price)
                add(("action", partial(_action_content, good, side, price, quantity, "step"), me,
                     f'{part[0]}{price_text},"quantity":{quantity}{part[2]}}}'))  # fmt: skip
                add(("order", partial(_order_content, order_id, side, good, price, quantity, "step"), me,
                     f'{{"order_id":{order_id}{part[1]}{price_text},"quantity":{quantity}{part[2]}'))  # fmt: skip
                continue
            # anything else: each text on its own (the recorder's encoder where there is none)
            text = action_json(good, side, price, quantity, "step")
            add(("action", _action_content(good, side, price, quantity, "step") if text is None
                 else partial(_action_content, good, side, price, quantity, "step"), me, text))  # fmt: skip
            add(("order", _order_content(order_id, side, good, price, quantity, "step"), me, None))

    def begin_step(self, step: int) -> None:
        self.exchange.begin_step()

    def fill_observation(self, observation: Any, agent: TraderAgent, step: int) -> None:
        """Nothing: the market snapshot and open orders are every observation's own fields."""

    def clear(self, step: int) -> None:
        """Clear every good, settle the fills in the ledger and record each clearing and trade
        (in that order: a clearing, then its trades), each trade with its content's JSON text."""
        money = self.money
        encoded = self.encoded
        self.last_trades = last_trades = []
        # the events, with each clearing's trades for the tallies at once (`TradeEvents`)
        events = TradeEvents()
        add, fills = events.append, events.fills
        to_units = money.to_units
        for c in self.exchange.clear(step):
            fundamental = payloads.mean_fundamental(self.traders, c.good, money)
            add(("clearing", payloads.clearing_record(c, money, fundamental), None, None))
            if not c.trades:
                continue
            if fills is not None and c.price is not None and all(t.price == c.price for t in c.trades):
                at = int(c.price)
                fills.append((c.good, at, to_units(at), c.trades))
            else:  # (a clearing's trades are at its price: else each is counted from its event)
                fills = events.fills = None
            if not encoded:  # the general path (`payloads.trade_record`): the reference of the one below
                for t in c.trades:
                    content = payloads.trade_record(t, money)  # the tallies count it (and the parties' fills)
                    add(("trade", content, None, None))
                    last_trades.append({"good": content["good"], "price": content["price"], "quantity": content["quantity"],
                                        "buyer_id": content["buyer_id"], "seller_id": content["seller_id"]})  # fmt: skip
                continue
            good = c.good
            head = string_json(good) if good.__class__ is str else None
            texts = _trade_texts(head, c.trades, money) if head is not None else None
            if texts is not None:  # each trade's text made from the clearing's shared parts, its content when needed
                trades = c.trades
                events.extend(zip(repeat("trade"), map(partial, repeat(payloads.trade_record), trades, repeat(money)),
                                  repeat(None), texts))  # fmt: skip
                traded_at = to_units(trades[0].price)  # (every trade's, `_trade_texts`)
                last_trades += [{"good": t.good, "price": traded_at, "quantity": t.quantity, "buyer_id": t.buyer_id,
                                 "seller_id": t.seller_id} for t in trades]  # fmt: skip
                continue
            # a clearing's trades share their good and (mostly) price and fee: converted and encoded once
            units: dict[int, float] = {}
            for t in c.trades:
                price, buyer_fee, seller_fee = units.get(t.price), units.get(t.buyer_fee), units.get(t.seller_fee)
                if price is None:
                    price = units[t.price] = to_units(t.price)
                if buyer_fee is None:
                    buyer_fee = units[t.buyer_fee] = to_units(t.buyer_fee)
                if seller_fee is None:
                    seller_fee = units[t.seller_fee] = to_units(t.seller_fee)
                quantity, buyer, seller = t.quantity, t.buyer_id, t.seller_id
                # `payloads.trade_record`'s content, made here with the units converted once
                content = {"good": t.good, "price": price, "quantity": quantity, "buyer_id": buyer, "seller_id": seller,
                           "buy_order_id": t.buy_order_id, "sell_order_id": t.sell_order_id,
                           "buyer_fee": buyer_fee, "seller_fee": seller_fee}  # fmt: skip
                text = _trade_text(head, content) if head is not None and t.good is good else trade_json(content)
                add(("trade", content, None, text))
                last_trades.append({"good": t.good, "price": price, "quantity": quantity,
                                    "buyer_id": buyer, "seller_id": seller})  # fmt: skip
        emit(events, self.record, self.record_many)


def _trade_text(good_json: str, content: dict[str, Any]) -> str | None:
    """`trade_json` of a trade ``content`` whose good's JSON text is ``good_json``."""
    _, price, quantity, buyer, seller, buy_order, sell_order, buyer_fee, seller_fee = content.values()
    if price.__class__ is not float or buyer_fee.__class__ is not float or seller_fee.__class__ is not float \
            or quantity.__class__ is not int or buyer.__class__ is not int or seller.__class__ is not int \
            or buy_order.__class__ is not int or sell_order.__class__ is not int \
            or not (_FINITE(price) and _FINITE(buyer_fee) and _FINITE(seller_fee)):  # fmt: skip
        return None
    floats = _FLOATS
    return (f'{{"good":{good_json},"price":{floats.get(price) or float_json(price)},"quantity":{quantity},'
            f'"buyer_id":{buyer},"seller_id":{seller},"buy_order_id":{buy_order},"sell_order_id":{sell_order},'
            f'"buyer_fee":{floats.get(buyer_fee) or float_json(buyer_fee)},'
            f'"seller_fee":{floats.get(seller_fee) or float_json(seller_fee)}}}')  # fmt: skip


def _trade_texts(good_json: str, trades: Sequence[Trade], money: Money) -> list[str] | None:
    """Each of a clearing's ``trades``' `trade_json` (its good's JSON text ``good_json``), made
    from the parts they share: the texts of the good, the price and each fee amount made once,
    the ints written as they are. None unless every trade is of that good, at one price, with
    ints for its quantity, parties, order ids and fees, and the price and fees convert to finite
    floats: then each trade's text is made on its own (`_trade_text`, the reference)."""
    shapes = {(t.good, t.good.__class__, t.price, t.quantity.__class__, t.buyer_id.__class__, t.seller_id.__class__,
               t.buy_order_id.__class__, t.sell_order_id.__class__, t.buyer_fee.__class__, t.seller_fee.__class__)
              for t in trades}  # fmt: skip
    if len(shapes) != 1:
        return None
    good, good_class, price, *classes = shapes.pop()
    if good_class is not str or string_json(good) != good_json or price.__class__ is not int \
            or any(c is not int for c in classes):  # fmt: skip
        return None
    to_units = money.to_units
    units = {fee: to_units(fee) for fee in {t.buyer_fee for t in trades}.union(t.seller_fee for t in trades)}
    price_units = to_units(price)
    if any(u.__class__ is not float or not _FINITE(u) for u in (price_units, *units.values())):
        return None
    fee_texts = {fee: float_json(u) for fee, u in units.items()}
    head = f'{{"good":{good_json},"price":{float_json(price_units)},"quantity":'
    return [f'{head}{t.quantity},"buyer_id":{t.buyer_id},"seller_id":{t.seller_id},"buy_order_id":{t.buy_order_id},'
            f'"sell_order_id":{t.sell_order_id},"buyer_fee":{fee_texts[t.buyer_fee]},'
            f'"seller_fee":{fee_texts[t.seller_fee]}}}' for t in trades]  # fmt: skip


def _action_content(good: str, side: str, price: float, quantity: int, lifetime: str) -> dict[str, Any]:
    """An order's ``action`` content (as `ActionResolver.apply` records it)."""
    return {"type": "place_order",
            "arguments": {"good": good, "side": side, "price": price, "quantity": quantity, "lifetime": lifetime}}  # fmt: skip


def _order_content(order_id: int, side: str, good: str, price: float, quantity: int, lifetime: str) -> dict[str, Any]:
    """An ``order`` event's content (as `CallMarketMechanism.act` records it)."""
    return {"order_id": order_id, "side": side, "good": good, "price": price, "quantity": quantity, "lifetime": lifetime}


def _text_batch(columns: OrderColumns, positions: Sequence[int], placed: list[int | str],
                picked: Sequence[Any] = ()) -> TextBatch | None:  # fmt: skip
    """The ``action`` and ``order`` events of ``placed`` (each order at ``positions`` booked with
    that id) as one `TextBatch`, their texts from the parts shared per good and side
    (`_column_events`' first branch), made column by column; None when an order was refused or a
    value is off that path (a price not a positive finite float, a quantity not an int, a good
    not a string). ``picked``: the orders' agents, goods, sides, prices and quantities at
    ``positions`` already read (`Exchange.place_columns`), else they are read here."""
    n = len(positions)
    if len(placed) != n or not n:
        return None
    if picked:
        agents, goods, buys, prices, quantities = picked
    elif n == 1:
        k = positions[0]
        agents, goods, buys, prices, quantities = ([columns.agents[k]], [columns.goods[k]], [columns.buys[k]],
                                                   [columns.prices[k]], [columns.quantities[k]])  # fmt: skip
    else:
        pick = itemgetter(*positions)
        agents, goods, buys, prices, quantities = (pick(columns.agents), pick(columns.goods), pick(columns.buys),
                                                   pick(columns.prices), pick(columns.quantities))  # fmt: skip
    if {p.__class__ for p in placed} != {int} or {p.__class__ for p in prices} != {float} \
            or {q.__class__ for q in quantities} != {int} or not 0.0 < min(prices) <= max(prices) < _INF:  # fmt: skip
        return None
    names = set(goods)
    if {g.__class__ for g in names} != {str}:
        return None
    parts = _PARTS
    # per (good, buy): the texts around its orders' values (made here as `_column_events` would make them)
    shared = {}
    for good in names:
        for buy, side in ((True, "buy"), (False, "sell")):
            part = parts.get((good, side, "step")) or _parts(good, side, "step")
            shared[good, buy] = (*part, f"{part[2]}}}")
    if len(names) == 1:
        table = {True: shared[goods[0], True], False: shared[goods[0], False]}
        part_of = list(map(table.__getitem__, map(bool, buys)))
    else:
        part_of = list(map(shared.__getitem__, zip(goods, map(bool, buys), strict=True)))
    floats = _FLOATS
    price_texts = [floats.get(price) or float_json(price) for price in prices]
    # The lines' texts as 7 columns of pieces (the recorder joins them into its lines in one pass):
    # an action's ``part[0], "", "", price, ',"quantity":', quantity, part[2] + "}"`` and an order's
    # ``'{"order_id":', order_id, part[1], price, ',"quantity":', quantity, part[2]`` - the texts
    # `_column_events` makes.
    twice = 2 * n
    pieces: list[list[str]] = [[""] * twice for _ in range(7)]
    pieces[0][0::2] = map(itemgetter(0), part_of)
    pieces[0][1::2] = repeat('{"order_id":', n)
    pieces[1][1::2] = int_texts(placed)  # type: ignore[arg-type]  # (ints, checked above)
    pieces[2][1::2] = map(itemgetter(1), part_of)
    pieces[3][0::2] = pieces[3][1::2] = price_texts
    pieces[4] = [',"quantity":'] * twice
    pieces[5][0::2] = pieces[5][1::2] = list(int_texts(quantities))
    pieces[6][0::2] = map(itemgetter(3), part_of)
    pieces[6][1::2] = map(itemgetter(2), part_of)
    ids: list[int] = [0] * twice
    ids[0::2] = ids[1::2] = [agent.unique_id for agent in agents]
    return TextBatch(_ACTION_ORDER * n, ids, None, _ColumnContents(columns, positions, placed), makers=True,  # type: ignore[arg-type]
                     pieces=pieces)  # fmt: skip


#: a booked order's two event types, in their order
_ACTION_ORDER = ["action", "order"]


class _ColumnContents(Sequence[Callable[[], dict[str, Any]]]):
    """The content makers of a `_text_batch`'s lines (each order's ``action``, then its
    ``order``), made only when something iterates them (a subscriber, an LLM agent, a recorder
    that keeps events)."""

    __slots__ = ("columns", "placed", "positions")

    def __init__(self, columns: OrderColumns, positions: Sequence[int], placed: list[int]) -> None:
        self.columns, self.positions, self.placed = columns, positions, placed

    def __len__(self) -> int:
        return 2 * len(self.placed)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return list(self)[index]
        line = range(len(self))[index]  # (IndexError as a list's)
        return self._makers(self.positions[line // 2], self.placed[line // 2])[line % 2]

    def __iter__(self) -> Iterator[Callable[[], dict[str, Any]]]:
        for k, order_id in zip(self.positions, self.placed, strict=True):
            yield from self._makers(k, order_id)

    def _makers(self, k: int, order_id: int) -> tuple[Callable[[], dict[str, Any]], Callable[[], dict[str, Any]]]:
        """Order ``k``'s (booked with ``order_id``) ``action`` and ``order`` content makers."""
        columns = self.columns
        good, price, quantity = columns.goods[k], columns.prices[k], columns.quantities[k]
        side = "buy" if columns.buys[k] else "sell"
        return (partial(_action_content, good, side, price, quantity, "step"),
                partial(_order_content, order_id, side, good, price, quantity, "step"))  # fmt: skip


def trade_json(content: dict[str, Any]) -> str | None:
    """The recorder's compact encoding of a ``trade`` event's content (`payloads.trade_record`'s
    keys in its order), or None when a value is not of the type a settled trade's is."""
    good = content["good"]
    return _trade_text(string_json(good), content) if good.__class__ is str else None


__all__ = ["CALL_MARKET_TOOLS", "CallMarketMechanism", "action_json", "float_json", "order_json", "string_json", "trade_json"]
