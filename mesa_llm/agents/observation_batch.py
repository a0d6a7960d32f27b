"""A step's observations built in one pass, with the JSON text each is recorded as.

`TraderAgent.observe` builds one agent's observation; a recording then encodes it (~1.1 KB, most
of it the market part all agents share and parts that change only when the agent trades).
`ObservationBatch` builds the same observation objects and, alongside, their recorded text from
parts made once per step (the market part, the step) or once per agent and kept while what they
show is unchanged (the agent's head, account and private parts, from the ledger's integers and the
schedules; its recent trades; the tail of its tools and empty parts, once per tool list). The text
is exactly ``encode(observation.to_dict())``: every part is made by the encoder or by the
hand-built writers that give its text (`account_json`, `private_json`).

The observations are `LazyObservation`s: their ``account`` and ``private`` parts (~12 us per
agent to build, the bulk of an observation's objects) are built from what they show, kept at
observe time, only when someone reads them (an LLM agent's prompt, a policy's ``decide``, a
subscriber's dict). A batched ZI population reads the few numbers it needs from the same kept
state instead (`LazyObservation.zi_inputs`), so in a rule-based market most of them
are never built.

`ObservationBatch.observe_step` observes a plain population in one pass: an agent whose shown
state did not change since its last observation (its ledger numbers, `TraderAgent.changes`, its
tools; no message or rejection) costs a comparison and a line made of its kept parts, and its
observation is made only when read (`ObservedAgents`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import fields
from itertools import accumulate, islice
from operator import is_ as _is
from typing import TYPE_CHECKING, Any

from mesa_llm.agents.observation import (
    AccountView,
    Encoder,
    MarketSnapshot,
    Observation,
    PrivateView,
    _int_map_json,
    _rest,
    _str,
    account_json,
    private_json,
)

if TYPE_CHECKING:
    from mesa_llm.agents.trader import TraderAgent
    from mesa_llm.market import Ledger, Money

__all__ = ["LazyObservation", "ObservationBatch", "ObservedAgents", "Observations", "account_view"]

#: how many times a `PrivateValues` field was set in this process (`private_changes`)
PRIVATE_SETS = [0]


def private_changes() -> int:
    """A number that changes whenever any `PrivateValues`' values, costs or fundamental is set
    (a scenario shock, a stress test): `ObservationBatch.observe_step` compares what agents'
    private parts show again only after it changed."""
    return PRIVATE_SETS[0]


#: schedules whose units and texts are kept (`_Schedules`), at most
_TEXTS_KEPT = 1 << 16
#: ``n + 1`` (a text's length and its comma, `_Schedules._join`)
_one_more = (1).__add__

#: an account as an observation shows it: (cash, reserved cash, credit limit, short limit,
#: holdings, reserved goods), ints and dicts never changed once kept (a change makes new ones)
AccountState = tuple[int, int, int, int, dict[str, int], dict[str, int]]


def account_view(account: Any, to_units: Any) -> AccountView:
    """The `AccountView` of a ledger account (its balances in currency units; goods reserved by
    open orders listed only when nonzero; available goods with the short limit added)."""
    return _account_view(account.cash, account.holdings, account.reserved_cash, account.reserved_goods,
                         account.available_cash(), account.short_limit, to_units)  # fmt: skip


def _account_view(
    cash: int, holdings_of: dict[str, int], reserved_cash: int, reserved: dict[str, int], available_cash: int,
    short_limit: int, to_units: Any,
) -> AccountView:  # fmt: skip
    holdings = dict(holdings_of)
    if any(reserved.values()):
        shown_reserved = {g: q for g, q in reserved.items() if q}
        available = {g: q - reserved.get(g, 0) + short_limit for g, q in holdings.items()}
    else:  # nothing reserved (the usual state at a step's start): the same dicts, fewer steps
        shown_reserved = {}
        available = {g: q + short_limit for g, q in holdings.items()} if short_limit else dict(holdings)
    # positional: the view's fields in their order (keywords cost a third more per view)
    return AccountView(
        to_units(cash), holdings, to_units(reserved_cash), shown_reserved, to_units(available_cash), available,
    )  # fmt: skip


def _state_view(state: AccountState, to_units: Any) -> AccountView:
    """`account_view` of an account in ``state`` (`Account.available_cash`'s formula)."""
    cash, reserved_cash, credit_limit, short_limit, holdings, reserved = state
    return _account_view(cash, holdings, reserved_cash, reserved, cash - (reserved_cash - 0) + credit_limit,
                         short_limit, to_units)  # fmt: skip


def _state_json(state: AccountState, to_units: Any) -> str | None:
    """``account_json`` of `_state_view` ``(state)`` made from the ledger's numbers without the view,
    when nothing is reserved (a step's start in a market of day orders) and the amounts are finite
    floats and the goods' maps strings to ints; else None (then ask `account_json`)."""
    cash, reserved_cash, credit_limit, short_limit, holdings, reserved = state
    if reserved and any(reserved.values()):
        return None
    cash_units, reserved_units = to_units(cash), to_units(reserved_cash)
    available = cash - (reserved_cash - 0) + credit_limit
    # nothing reserved, no credit (the usual case): the available cash is the cash, its text too
    same = available == cash
    available_units = cash_units if same else to_units(available)
    holdings_text = _int_map_json(holdings)
    if (
        holdings_text is None or cash_units.__class__ is not float or reserved_units.__class__ is not float
        or available_units.__class__ is not float
        or cash_units - cash_units + reserved_units - reserved_units + available_units - available_units != 0.0
    ):  # fmt: skip
        return None
    available_text = _int_map_json({g: q + short_limit for g, q in holdings.items()}) if short_limit else holdings_text
    if available_text is None:
        return None
    cash_text = float.__repr__(cash_units)
    return (
        f'{{"cash":{cash_text},"holdings":{holdings_text},"reserved_cash":{reserved_units!r},"reserved_goods":{{}},'
        f'"available_cash":{cash_text if same else float.__repr__(available_units)},"available_goods":{available_text}}}'
    )


def private_key(agent: TraderAgent) -> tuple[Any, ...]:
    """What ``agent.private_views(money)`` is a function of, as that method keys it (the units
    shown, then per good its name, schedules in ticks, fundamental and units bought and sold)."""
    private, bought, sold = agent.private, agent.units_bought, agent.units_sold
    if len(private) == 1:  # the usual agent: one good, its tuple made at once
        ((good, pv),) = private.items()
        return (agent.units_shown, good, pv.values, pv.costs, pv.fundamental, bought.get(good, 0), sold.get(good, 0))
    key: list[Any] = [agent.units_shown]
    for good, pv in private.items():
        key += (good, pv.values, pv.costs, pv.fundamental, bought.get(good, 0), sold.get(good, 0))
    return tuple(key)


class _Schedules:
    """One run's schedules (values or costs in ticks, by identity: a schedule is replaced, never
    changed) with, per unit, its value in currency units and that value's JSON text, each made the
    first time the unit is shown: a window of the next units is shown, and it moves along the
    schedule as units trade, so a run converts the units it shows, not whole schedules."""

    def __init__(self) -> None:
        #: id of the ticks list -> [the list (kept: the id stays its own), units, texts]
        self._kept: dict[int, list[Any]] = {}
        #: a unit's text by its ticks (an int), for every schedule (`_texts`)
        self._by_tick: dict[int, str] = {}

    def clear(self) -> None:
        """Forget every schedule (the currency unit changed)."""
        self._kept.clear()
        self._by_tick.clear()

    def _entry(self, ticks: list[int]) -> list[Any]:
        entry = self._kept.get(id(ticks))
        if entry is None or entry[0] is not ticks:
            if len(self._kept) >= _TEXTS_KEPT:
                self._kept.clear()
            # [ticks, units, texts, the first texts joined by commas, where each text starts in it]
            entry = self._kept[id(ticks)] = [ticks, [None] * len(ticks), [None] * len(ticks), "", [0]]
        return entry

    def units(self, ticks: list[int], start: int, shown: int, to_units: Any) -> list[float]:
        """``[to_units(t) for t in ticks][start : start + shown]`` (a new list)."""
        if not ticks:
            return []
        units = self._entry(ticks)[1]
        window = units[start : start + shown]
        if None in window:
            for i in range(len(ticks))[start : start + shown]:
                if units[i] is None:
                    units[i] = to_units(ticks[i])
            window = units[start : start + shown]
        return window

    def text(self, ticks: list[int], start: int, shown: int, to_units: Any) -> str | None:
        """The encoder's text of `units` ``(ticks, start, shown)``, or None when one is not a finite float.

        The schedule's texts up to the last unit shown are kept joined, with where each starts,
        so a window (which moves along as units trade) is one slice of them."""
        if not ticks and start >= 0 and shown >= 0:  # no schedule (a buyer's costs, a seller's values)
            return "[]"
        end = min(start + shown, len(ticks))
        if start >= end or start < 0:
            return "[]" if start >= 0 and shown >= 0 else self._text(self._entry(ticks), ticks, start, shown, to_units)
        entry = self._entry(ticks)
        starts = entry[4]
        if end >= len(starts) and not self._join(entry, ticks, end, shown, to_units):
            return None
        return f"[{entry[3][starts[start] : starts[end] - 1]}]"

    def joined(self, ticks: list[int], start: int, end: int) -> str | None:
        """`text` of ``ticks[start:end]`` without its brackets (``0 <= start``) when its texts are joined
        already (or it is empty), else None (then ask `text`): one slice."""
        if end > len(ticks):
            end = len(ticks)
        if start >= end:
            return ""
        entry = self._kept.get(id(ticks))
        if entry is None or entry[0] is not ticks:
            return None
        starts = entry[4]
        return entry[3][starts[start] : starts[end] - 1] if end < len(starts) else None

    def _join(self, entry: list[Any], ticks: list[int], end: int, shown: int, to_units: Any) -> bool:
        """Join the schedule's texts up to ``end`` at least onto those joined; False when a unit
        there is not a finite float (nothing joined then)."""
        starts = entry[4]
        first = len(starts) - 1
        # when the window moved past the joined texts (a unit or so per trade), a window's worth
        # ahead too: joined once per window, not once per trade (the first window: exactly, as
        # most schedules never move, and the texts of a first move's units are mostly kept by
        # tick by then); exactly to ``end`` when a unit ahead is not a finite float
        ahead = min(end + shown, len(ticks)) if first else end
        made = self._texts(entry, ticks, first, ahead, to_units)
        if made is None and ahead > end:
            made = self._texts(entry, ticks, first, end, to_units)
        if made is None:
            return False
        joined = ",".join(made)
        entry[3] = f"{entry[3]},{joined}" if entry[3] else joined
        # where each text starts: after the one before and its comma (the sums made in C)
        starts += islice(accumulate(map(_one_more, map(len, made)), initial=starts[-1]), 1, None)
        return True

    def _texts(self, entry: list[Any], ticks: list[int], start: int, end: int, to_units: Any) -> list[str] | None:
        """The texts of units ``start:end`` (``start < end``), made where not made yet; None when one
        is not a finite float. A unit's text is a function of its ticks alone: made once per tick
        (kept for every schedule: schedules share their price range, and a float's repr is dear)."""
        texts = entry[2]
        window = texts[start:end]
        if None in window:
            segment, units = ticks[start:end], entry[1]
            values = units[start:end]
            if None in values:  # converted once and kept: a zero-intelligence trader reads them (`units`)
                values = units[start:end] = list(map(to_units, segment))
            if set(map(type, values)) != {float}:
                return None
            total = sum(values)  # finite only when each is (an overflow only sends it to the encoder)
            if total - total != 0.0:  # a NaN, an infinity
                return None
            if set(map(type, segment)) != {int}:  # not ints (a numpy schedule): not kept by tick
                window = list(map(float.__repr__, values))
            else:
                by_tick = self._by_tick
                if len(by_tick) >= _TEXTS_KEPT:
                    by_tick.clear()
                window = list(map(by_tick.get, segment))
                if None in window:
                    by_tick.update(
                        (tick, float.__repr__(value))
                        for tick, value, text in zip(segment, values, window, strict=True) if text is None
                    )  # fmt: skip
                    window = list(map(by_tick.__getitem__, segment))
            texts[start:end] = window
        return window

    @staticmethod
    def _text(entry: list[Any], ticks: list[int], start: int, shown: int, to_units: Any) -> str | None:
        texts = entry[2]
        window = texts[start : start + shown]
        if None in window:
            units = entry[1]
            for i in range(len(ticks))[start : start + shown]:
                if texts[i] is None:
                    value = units[i]
                    if value is None:
                        value = units[i] = to_units(ticks[i])
                    if value.__class__ is not float or value - value != 0.0:  # an int, a NaN, an infinity
                        return None
                    texts[i] = float.__repr__(value)
            window = texts[start : start + shown]
        return f"[{','.join(window)}]"


def _private_views(agent: TraderAgent, key: tuple[Any, ...], money: Money, schedules: _Schedules) -> dict[str, PrivateView]:
    """``agent.private_views(money)[0]`` as it was when ``key`` (`private_key`) was taken."""
    to_units = money.to_units
    shown = key[0]
    private = {}
    for i in range(1, len(key), 6):
        good, values, costs, fundamental, bought, sold = key[i : i + 6]
        private[good] = PrivateView(
            schedules.units(values, bought, shown, to_units), schedules.units(costs, sold, shown, to_units),
            to_units(fundamental) if fundamental is not None else None,
            max(len(values) - bought, 0), max(len(costs) - sold, 0),
        )  # fmt: skip
    return private


_ACCOUNT_SLOT: Any = Observation.__dict__["account"]
_PRIVATE_SLOT: Any = Observation.__dict__["private"]
_init = Observation.__init__
_new = object.__new__
#: what an unbuilt part of a `LazyObservation` holds
_UNBUILT: Any = object()


#: `LazyObservation._lazy`'s bits: its fields are not set yet; its account, its private part not built yet
_FIELDS_UNSET, _ACCOUNT_UNBUILT, _PRIVATE_UNBUILT = 1, 2, 4
_UNREAD = _ACCOUNT_UNBUILT | _PRIVATE_UNBUILT
_NOTHING_READ = _FIELDS_UNSET | _UNREAD

#: what a `LazyObservation` is made of: (the step's `_Shared`, the agent, its account state, its
#: private key, its `_Seen`, its recent trades, open orders (None: none), messages (None: none),
#: rejections, tools, surveillance, (horizon, name, role, tick size))
Source = tuple[
    "_Shared", "TraderAgent", AccountState, tuple[Any, ...], "_Seen", tuple[Any, ...], "list[dict[str, Any]] | None",
    "list[dict[str, Any]] | None", "list[dict[str, Any]]", tuple[str, ...], "dict[str, Any] | None", tuple[Any, ...],
]  # fmt: skip


class _Shared:
    """What every observation of a step shares: the step, the horizon, the market snapshot, the
    money and the run's schedules."""

    __slots__ = ("step", "horizon", "market", "money", "schedules")

    def __init__(self, step: Any, horizon: int, market: MarketSnapshot, money: Money, schedules: _Schedules) -> None:
        self.step, self.horizon, self.market, self.money, self.schedules = step, horizon, market, money, schedules


class LazyObservation(Observation):
    """An `Observation` whose fields are set when one is first read or set, and whose ``account``
    and ``private`` parts are built when first read, all from what was kept when the agent was
    observed (so they show the state at observe time, as an eagerly built observation does).
    Equal to the `Observation` with the same content; anything reading it (attributes,
    ``to_dict``, ``dataclasses``) sees one. Observing makes only the object and its source (a
    tuple): an observation nobody reads (a batched ZI trader's: `zi_view`) costs no more."""

    __slots__ = ("_source", "_lazy")

    _source: Source
    #: what is not set or built yet (`_FIELDS_UNSET`, `_ACCOUNT_UNBUILT`, `_PRIVATE_UNBUILT`)
    _lazy: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """A lazy observation with every field given (``dataclasses.replace`` makes one so)."""
        self._lazy = 0
        _init(self, *args, **kwargs)

    def _fill(self) -> None:
        """Set every field from the source but the parts not built yet, as `Observation`'s
        ``__init__`` would (through the slots: the properties would come back here)."""
        shared, agent, _, _, _, trades, open_orders, messages, rejections, tools, surveillance, head = self._source
        _, name, role, tick_size = head
        lazy = self._lazy
        values: tuple[Any, ...] = (
            shared.step, shared.horizon, agent.unique_id, name, role, tick_size, shared.market,
            [] if open_orders is None else open_orders, list(trades), [] if messages is None else messages, rejections,
            list(tools), [], [], {}, {}, surveillance, None, {}, None,
        )  # fmt: skip
        for put, value in zip(_PUTS, values, strict=True):  # the account and private parts: not here
            put(self, value)
        self._lazy = lazy & ~_FIELDS_UNSET

    @property
    def account(self) -> AccountView:
        if self._lazy & _ACCOUNT_UNBUILT:
            shared, _, state, _, _, _, _, _, _, _, _, _ = self._source
            _PUT_ACCOUNT(self, _state_view(state, shared.money.to_units))
            self._lazy &= ~_ACCOUNT_UNBUILT
        return _ACCOUNT_SLOT.__get__(self)

    @account.setter
    def account(self, view: AccountView) -> None:
        _PUT_ACCOUNT(self, view)
        self._lazy &= ~_ACCOUNT_UNBUILT

    @property
    def private(self) -> dict[str, PrivateView]:
        if self._lazy & _PRIVATE_UNBUILT:
            shared, agent, _, key, _, _, _, _, _, _, _, _ = self._source
            _PUT_PRIVATE(self, _private_views(agent, key, shared.money, shared.schedules))
            self._lazy &= ~_PRIVATE_UNBUILT
        return _PRIVATE_SLOT.__get__(self)

    @private.setter
    def private(self, private: dict[str, PrivateView]) -> None:
        _PUT_PRIVATE(self, private)
        self._lazy &= ~_PRIVATE_UNBUILT

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Observation):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in _COMPARED)

    __hash__ = None  # type: ignore[assignment]

    def __reduce_ex__(self, protocol: Any) -> Any:
        # a copy is a plain observation with every part built (not the agent and money behind it)
        return _plain, (tuple(getattr(self, name) for name in _FIELDS),)

    def unread(self) -> bool:
        """Whether neither the account nor the private part was built (nor set) yet: then
        `zi_inputs` gives what they would show."""
        return self._lazy & _UNREAD == _UNREAD

    def zi_view(self) -> tuple[str, dict[str, Any], Any, float, list[tuple[str, list[float], list[float], int, int, int]]] | None:
        """``(role, market.goods, tick_size, *zi_inputs())``, read without setting the fields when
        none was read or set yet (a batched ZI trader reads only these); None as `zi_inputs`."""
        lazy = self._lazy
        if lazy & _UNREAD != _UNREAD:
            return None
        source = self._source
        kept = source[4].zi  # `zi_inputs`'s kept numbers, read here (one call less per agent)
        if kept is not None and kept[0] is source[2] and kept[1] is source[3]:
            inputs = kept[2]
        else:
            inputs = self.zi_inputs()
            if inputs is None:
                return None
        if lazy & _FIELDS_UNSET:  # nothing read or set: as observed
            head = source[11]
            return head[2], source[0].market.goods, head[3], inputs[0], inputs[1]
        return self.role, self.market.goods, self.tick_size, inputs[0], inputs[1]

    def zi_inputs(self) -> tuple[float, list[tuple[str, list[float], list[float], int, int, int]]] | None:
        """What a zero-intelligence trader reads from ``account`` and ``private``, without building
        them: the available cash (currency units) and per good, in ``private``'s order, ``(good,
        values, costs, values_left, costs_left, available_goods.get(good, 0))`` as they show them.
        Kept per agent while its account state and private key are the same objects (they are
        never changed); the lists are not to be changed. None when a part was read or set
        (`unread`): then it is the one to decide from."""
        if self._lazy & _UNREAD != _UNREAD:
            return None
        shared, _, state, key, seen, _, _, _, _, _, _, _ = self._source
        return _zi_inputs(shared, state, key, seen)


def _zi_inputs(shared: _Shared, state: AccountState, key: tuple[Any, ...], seen: _Seen) -> Any:
    """`LazyObservation.zi_inputs` of an observation made of ``state`` and ``key`` (kept in ``seen``)."""
    kept = seen.zi
    if kept is not None and kept[0] is state and kept[1] is key:
        return kept[2]
    cash, reserved_cash, credit_limit, short_limit, holdings, reserved = state
    money, schedules = shared.money, shared.schedules
    to_units = money.to_units
    shown = key[0]
    out = []
    for i in range(1, len(key), 6):
        good, values, costs, _, bought, sold = key[i : i + 6]
        available = holdings[good] - reserved.get(good, 0) + short_limit if good in holdings else 0
        out.append((
            good, schedules.units(values, bought, shown, to_units), schedules.units(costs, sold, shown, to_units),
            max(len(values) - bought, 0), max(len(costs) - sold, 0), available,
        ))  # fmt: skip
    inputs = (to_units(cash - (reserved_cash - 0) + credit_limit), out)
    seen.zi = (state, key, inputs)
    return inputs


def _lazy_field(name: str) -> property:
    """A property for the field ``name`` of a `LazyObservation`: the fields are set from the
    source when one is first read or set (a set field then keeps what was set)."""
    slot = Observation.__dict__[name]
    get, put = slot.__get__, slot.__set__

    def read(self: LazyObservation) -> Any:
        if self._lazy & _FIELDS_UNSET:
            self._fill()
        return get(self)

    def write(self: LazyObservation, value: Any) -> None:
        if self._lazy & _FIELDS_UNSET:
            self._fill()
        put(self, value)

    return property(read, write, doc=f"the observation's ``{name}`` (set from its source when first read)")


for _name in (f.name for f in fields(Observation)):
    if _name not in ("account", "private"):
        setattr(LazyObservation, _name, _lazy_field(_name))
del _name


#: each field's slot setter, in `Observation`'s order (`LazyObservation._fill`)
#: (built, or set, when first read: not these)
_PUTS = tuple(Observation.__dict__[f.name].__set__ for f in fields(Observation) if f.name not in ("account", "private"))
_PUT_ACCOUNT, _PUT_PRIVATE = _ACCOUNT_SLOT.__set__, _PRIVATE_SLOT.__set__
assert tuple(f.name for f in fields(Observation))[-6:] == (
    "reputation", "alliances", "surveillance", "suspended_until", "mechanisms", "_keys"
), "LazyObservation._fill sets the fields in this order"


def _plain(values: tuple[Any, ...]) -> Observation:
    """The `Observation` with these field values (a `LazyObservation`'s copy)."""
    return Observation(*values)


#: every field of an observation, in order, and those its equality compares (the dataclass's own
#: ``__eq__``: not ``_keys``)
_FIELDS = tuple(f.name for f in fields(Observation))
#: the fields an observation's equality compares (the dataclass's own ``__eq__``: not ``_keys``)
_COMPARED = tuple(f.name for f in fields(Observation) if f.compare)


#: a trade record's keys, in `TraderAgent.record_fill`'s order
_TRADE_KEYS = ("step", "good", "side", "price", "quantity")


def _trade_json(trade: Any, encode: Encoder, made: dict[tuple[Any, ...], str]) -> str:
    """``encode(trade)`` of a recent-trade record, written directly when it is `record_fill`'s
    (an int step and quantity, string good and side, a finite float price), and then kept in
    ``made`` by its values: a clearing's trades share their step, good and price, so each side's
    record text is made once per clearing and quantity, not once per party."""
    if trade.__class__ is dict and tuple(trade) == _TRADE_KEYS:
        values = tuple(trade.values())
        step, good, side, price, quantity = values
        if (
            step.__class__ is int and good.__class__ is str and side.__class__ is str and price.__class__ is float
            and quantity.__class__ is int and price - price == 0.0
        ):  # fmt: skip
            text = made.get(values)
            if text is None:
                text = (
                    f'{{"step":{step!r},"good":{_str(good)},"side":{_str(side)},"price":{float.__repr__(price)},'
                    f'"quantity":{quantity!r}}}'
                )
                if price:  # equal values of these types have one text, but for a zero price (0.0 == -0.0)
                    made[values] = text
            return text
    return encode(trade)


def _head_json(horizon: Any, agent_id: Any, head_key: tuple[Any, ...], encode: Encoder) -> str:
    """The text of an observation's first five fields (without braces), written directly when they
    are an int horizon and agent id, string name and role and a finite float tick size, else by
    ``encode`` (``head_key``: horizon, name, role, tick size)."""
    _, name, role, tick_size = head_key
    if (
        horizon.__class__ is int and agent_id.__class__ is int and name.__class__ is str and role.__class__ is str
        and tick_size.__class__ is float and tick_size - tick_size == 0.0
    ):  # fmt: skip
        return (
            f'"horizon":{int.__repr__(horizon)},"agent_id":{int.__repr__(agent_id)},"name":{_str(name)},'
            f'"role":{_str(role)},"tick_size":{float.__repr__(tick_size)}'
        )
    return encode({"horizon": horizon, "agent_id": agent_id, "name": name, "role": role, "tick_size": tick_size})[1:-1]


def _tools_rest(tools: tuple[str, ...]) -> dict[str, Any]:
    """`_rest` of an observation showing nothing after its recent trades but its ``tools``."""
    return {
        "messages": [], "rejections": [], "available_actions": list(tools), "negotiations": [], "contracts": [],
        "reputation": {}, "alliances": {}, "surveillance": None, "suspended_until": None,
    }  # fmt: skip


class _Seen:
    """What an agent's last recorded observation was made of, and the text made of it."""

    __slots__ = (
        "cash", "reserved_cash", "credit_limit", "short_limit", "holdings", "reserved_goods", "state", "account_json",
        "private_key", "private_json", "head_key", "head", "mid", "trades", "trade_texts", "tools", "tail", "zi",
        "changes", "account", "kept",
    )  # fmt: skip

    def __init__(self) -> None:
        self.cash: Any = None  # None: nothing made yet
        self.reserved_cash: Any = None
        self.credit_limit: Any = None
        self.short_limit: Any = None
        self.holdings: dict[str, int] = {}
        self.reserved_goods: dict[str, int] = {}
        #: the six above as one tuple, what the agent's observations show (`LazyObservation`)
        self.state: AccountState | None = None
        self.account_json: str | None = None  # None: not made for ``state`` yet
        self.private_key: Any = None
        self.private_json: str | None = None  # None: not made for ``private_key`` yet
        self.head_key: Any = None
        self.head = ""
        #: the text from the head to the market part's key, made of the three before
        self.mid: str | None = None
        self.trades: tuple[Any, ...] | None = None
        self.trade_texts: list[str] = []
        self.tools: Any = None
        #: the text from "recent_trades" to the end, for ``trades`` and ``tools`` (None: remake it)
        self.tail: str | None = None
        #: (state, private key, `LazyObservation.zi_inputs` of them), None before the first
        self.zi: tuple[Any, Any, Any] | None = None
        #: the agent's `TraderAgent.changes` when ``kept`` was made
        self.changes = -1
        #: its ledger account (the live object: an account id's is never replaced)
        self.account: Any = None
        #: the agent's last observation's parts but the step's (`_Kept`), None: not kept
        self.kept: tuple[Any, ...] | None = None

    def take_account(self, account: Any) -> bool:
        """Keep ``account`` (the live ledger account) and, when the numbers it shows differ from the
        kept ones (or none are kept), take them as the kept state and drop the texts made of the
        old ones; returns whether they differed."""
        self.account = account
        if not (
            self.state is None or self.cash != account.cash or self.reserved_cash != account.reserved_cash
            or self.credit_limit != account.credit_limit or self.short_limit != account.short_limit
            or self.holdings != account.holdings or self.reserved_goods != account.reserved_goods
        ):  # fmt: skip
            return False
        # new dicts (the kept ones may be shown by earlier observations not built yet)
        self.cash, self.reserved_cash = account.cash, account.reserved_cash
        self.credit_limit, self.short_limit = account.credit_limit, account.short_limit
        self.holdings, self.reserved_goods = dict(account.holdings), dict(account.reserved_goods)
        self.state = (
            self.cash, self.reserved_cash, self.credit_limit, self.short_limit, self.holdings, self.reserved_goods,
        )  # fmt: skip
        self.account_json = self.mid = None
        return True


class ObservationBatch:
    """Builds one run's observations step by step, as `TraderAgent.observe` does, and (given the
    recorder's encoder) the JSON text of each, ``encode(observation.to_dict())``, from kept parts.

    Call `begin` at each step, then `observe` for each agent; the kept parts are per agent and
    compared with the state they were made from at every step (the ledger's integers, the private
    schedules and unit counts, the trade records, the tool list), so no change goes unseen.
    """

    def __init__(self, encode: Encoder | None) -> None:
        """``encode``: the recorder's compact encoder (None: observations are not recorded)."""
        self.encode = encode
        self._seen: dict[Any, _Seen] = {}
        #: the text after "recent_trades" of an observation whose rest is empty but for its tools
        #: (without its opening brace)
        self._rest: dict[tuple[str, ...], str] = {}
        self._step: Any = None
        self._step_text = ""
        self._market_text = ""
        self._horizon = 0
        self._market: MarketSnapshot | None = None
        self._accounts: Any = None
        self._ledger: Ledger | None = None
        self._money: Money | None = None
        self._shared: _Shared | None = None
        #: the schedules' units and their texts, made when shown
        self._schedules = _Schedules()
        #: (`private_changes`, horizon, tick size) at the last `observe_step`
        self._marks: tuple[Any, ...] = ()
        #: this step's trade records' texts by their values (`_trade_json`)
        self._trade_texts: dict[tuple[Any, ...], str] = {}

    def begin(self, step: int, horizon: int, market: MarketSnapshot, ledger: Ledger, money: Money) -> None:
        """Start a step: the shared market snapshot and what every agent's observation reads."""
        encode = self.encode
        if money is not self._money or ledger is not self._ledger:
            self._seen.clear()  # the texts are in another currency unit, the accounts kept another ledger's
            self._schedules.clear()
        self._step, self._horizon, self._market = step, horizon, market
        self._trade_texts = {}
        self._shared = _Shared(step, horizon, market, money, self._schedules)
        self._accounts, self._money, self._ledger = ledger.account, money, ledger
        if encode is not None:
            self._step_text = f'{{"step":{step if type(step) is int else encode(step)},'
            self._market_text = market.to_json(encode)

    def _private_text(self, key: tuple[Any, ...], money: Money) -> str | None:
        """``private_json`` of the private part ``key`` (`private_key`) shows (`_private_views`), each
        schedule's window one slice of its kept joined texts (`_Schedules.text`); None when a value is
        not a finite float or the part is one `private_json` leaves to the encoder (then it is asked)."""
        if len(key) == 7 and key[4] is None:  # one good, no fundamental (a usual trader): sliced here
            shown, good, values, costs, _, bought, sold = key
            if (
                good.__class__ is str and shown.__class__ is int and bought.__class__ is int and sold.__class__ is int
                and shown > 0 and bought >= 0 and sold >= 0
            ):  # fmt: skip
                value_text = self._schedules.joined(values, bought, bought + shown)
                cost_text = self._schedules.joined(costs, sold, sold + shown)
                if value_text is not None and cost_text is not None:
                    return (
                        f'{{{_str(good)}:{{"values":[{value_text}],"values_left":{max(len(values) - bought, 0)!r},'
                        f'"costs":[{cost_text}],"costs_left":{max(len(costs) - sold, 0)!r},"fundamental":null}}}}'
                    )
        shown, text, to_units = key[0], self._schedules.text, money.to_units
        out = []
        for i in range(1, len(key), 6):
            good, values, costs, fundamental, bought, sold = key[i : i + 6]
            if good.__class__ is not str or bought.__class__ is not int or sold.__class__ is not int \
                    or not (fundamental is None or fundamental.__class__ is int):  # fmt: skip
                return None
            value_text, cost_text = text(values, bought, shown, to_units), text(costs, sold, shown, to_units)
            if value_text is None or cost_text is None:
                return None
            if fundamental is None:
                fundamental_text = "null"
            else:
                units = to_units(fundamental)
                if units.__class__ is not float or units - units != 0.0:
                    return None
                fundamental_text = repr(units)
            out.append(
                f'{_str(good)}:{{"values":{value_text},"values_left":{max(len(values) - bought, 0)!r},'
                f'"costs":{cost_text},"costs_left":{max(len(costs) - sold, 0)!r},"fundamental":{fundamental_text}}}'
            )
        return "{" + ",".join(out) + "}"

    def observe(
        self, agent: TraderAgent, open_orders: list[dict[str, Any]], tools: tuple[str, ...],
        surveillance: dict[str, Any] | None = None,
    ) -> tuple[Observation, str | None]:  # fmt: skip
        """``agent``'s observation (what `TraderAgent.observe` gives, with ``tools`` as its
        ``available_actions`` and ``surveillance`` set) and its JSON text (None when not recording)."""
        money, shared = self._money, self._shared
        assert money is not None and shared is not None, "begin() first"
        me = agent.unique_id
        seen = self._seen.get(me)
        if seen is None:
            seen = self._seen[me] = _Seen()
        seen.kept = None  # kept again only by `observe_step`, for what this observation shows
        self._refresh(agent, seen, self._accounts(me), tools)
        shown, inbox = agent.messages_shown, agent.inbox
        messages = inbox[-shown:] if shown and inbox else None
        rejections = agent.rejections
        observation = _new(LazyObservation)
        # the fields are set when first read (a batched ZI trader reads none of them)
        observation._lazy = _NOTHING_READ
        observation._source = (
            shared, agent, seen.state, seen.private_key, seen, seen.trades, open_orders or None, messages, rejections,
            tools, surveillance, seen.head_key,
        )  # type: ignore[assignment]  # fmt: skip  (`_refresh` made state and trades)
        encode = self.encode
        if encode is None:
            return observation, None
        tail = seen.tail
        if messages or rejections or surveillance is not None:  # shown this step only: not kept
            tail = f'"recent_trades":[{",".join(seen.trade_texts)}],{encode(_rest(observation))[1:]}'
        open_text = "[]" if not open_orders else encode(open_orders)
        return observation, f'{self._step_text}{seen.mid}{self._market_text},"open_orders":{open_text},{tail}'

    def _refresh(self, agent: TraderAgent, seen: _Seen, account: Any, tools: tuple[str, ...]) -> None:
        """Bring what ``seen`` keeps of ``agent``'s observation up to date: its account state,
        private key, recent trades, head and tools (each compared with what it was made of and
        replaced when it differs), and when recording the texts made of them (the text from the
        head to the market part; the tail from the recent trades on, for an observation showing
        no messages, rejections or surveillance)."""
        money = self._money
        assert money is not None
        seen.take_account(account)
        key = private_key(agent)
        if seen.private_key != key:  # else the kept tuple stays: the same content
            seen.private_key, seen.private_json, seen.mid = key, None, None
        encode = self.encode
        trades = tuple(agent.recent_trades) if agent.keep_trades else ()
        if seen.trades != trades:
            if encode is not None:
                # a trade record's text is made once, when it first shows, and reused while it stays in
                # the window (records are never changed; the kept tuple holds them, so ids are theirs)
                known = dict(zip(map(id, seen.trades or ()), seen.trade_texts, strict=True))
                made = self._trade_texts
                seen.trade_texts = [known.get(id(t)) or _trade_json(t, encode, made) for t in trades]
            seen.trades, seen.tail = trades, None
        head_key = (self._horizon, agent.name, agent.role._value_, money.tick_size)
        if seen.head_key != head_key or type(head_key[3]) is not float:
            seen.head_key, seen.head, seen.mid = head_key, "", None
        if seen.tools is not tools:
            seen.tools, seen.tail = tools, None
        if encode is None:
            return
        if seen.mid is None:
            state = seen.state
            assert state is not None, "take_account() keeps a state"
            if seen.account_json is None:
                seen.account_json = _state_json(state, money.to_units) or account_json(_state_view(state, money.to_units), encode)
            if seen.private_json is None:
                seen.private_json = self._private_text(key, money) or private_json(
                    _private_views(agent, key, money, self._schedules), encode
                )
            if not seen.head:
                seen.head = _head_json(self._horizon, agent.unique_id, head_key, encode)
            seen.mid = f'{seen.head},"account":{seen.account_json},"private":{seen.private_json},"market":'
        if seen.tail is None:
            rest = self._rest.get(tools)
            if rest is None:
                rest = self._rest[tools] = encode(_tools_rest(tools))[1:]
            seen.tail = f'"recent_trades":[{",".join(seen.trade_texts)}],{rest}'

    def observe_step(
        self, agents: Sequence[TraderAgent], tools: Sequence[tuple[str, ...]], *, pieces: bool = False
    ) -> tuple[ObservedAgents, list[Any] | None]:
        """Every agent's observation and its text (None when not recording) as `observe` gives
        each with no open orders and no surveillance (the caller knows they have none), and each
        agent's step started (`TraderAgent.start_step`, which the caller knows is the class's).
        ``pieces``: the texts as four columns of pieces instead (text ``i`` the join of each
        column's item ``i``: the step, the kept head-to-market part, the market, the kept tail), for
        a recorder joining them into its lines (`mesa_llm.record_batch.TextBatch`): no text is
        made here, and the long kept parts are copied once, into the recording.

        One pass over the population: an agent whose shown state is the one its last observation
        was made of (the same ledger numbers, fills, units traded, tools, fields, and no message or
        rejection to show) costs a comparison and its line, made of its kept parts; its
        observation is made only when read (`ObservedAgents`). The others, and every agent after
        a private schedule was set anywhere (`private_changes`) or the horizon or tick size
        changed, are observed by `observe` (which compares everything it shows)."""
        money, shared = self._money, self._shared
        assert money is not None and shared is not None, "begin() first"
        marks = (private_changes(), self._horizon, money.tick_size)
        recheck = marks != self._marks
        self._marks = marks
        observe, refresh, seen_of, accounts = self.observe, self._refresh, self._seen, self._accounts
        items: list[Any] = []
        add = items.append
        # the texts as columns: the step's and market's texts around each agent's two kept parts
        mids: list[str] | None = [] if self.encode is not None else None
        tails: list[str] = []
        whole: list[int] = []  # the agents whose whole text is their mid (observed by `observe`)
        #: (index, agent, seen, tools) of the agents whose texts are remade together
        changed: list[tuple[int, TraderAgent, _Seen, tuple[str, ...]]] = []
        for agent, shown in zip(agents, tools, strict=True):
            me = agent.unique_id
            seen = seen_of.get(me)
            account: Any = seen.account if seen is not None else None
            if (
                recheck or seen is None or seen.kept is None or seen.changes != agent.changes or seen.tools is not shown
                or seen.cash != account.cash or seen.holdings != account.holdings
                or seen.reserved_cash != account.reserved_cash or seen.reserved_goods != account.reserved_goods
                or seen.credit_limit != account.credit_limit or seen.short_limit != account.short_limit
                or agent.rejections or agent.inbox
            ):  # fmt: skip
                if agent.rejections or agent.inbox:  # shown once (a message, a rejection): observed as one
                    observation, text = observe(agent, [], shown)
                    agent.start_step()
                    if mids is not None:
                        whole.append(len(items))
                        mids.append(text)  # type: ignore[arg-type]
                        tails.append("")
                    add(observation)
                    continue
                if seen is None:
                    seen = seen_of[me] = _Seen()
                if recheck or mids is None or seen.mid is None:
                    refresh(agent, seen, accounts(me), shown)
                    # what it shows is kept: while nothing of it changes, its next lines are made of it
                    seen.kept = (agent, seen.state, seen.private_key, seen, seen.trades, shown, seen.head_key)
                    seen.changes = agent.changes
                else:  # made with the step's other changed agents, in columns (`_refresh_changed`)
                    changed.append((len(items), agent, seen, shown))
                    add(None)
                    mids.append("")
                    tails.append("")
                    continue
            add(seen.kept)
            if mids is not None:
                mids.append(seen.mid)  # type: ignore[arg-type]  # (made: `_refresh`)
                tails.append(seen.tail)  # type: ignore[arg-type]
        if changed:
            assert mids is not None
            self._refresh_changed(changed)
            for index, agent, seen, _ in changed:
                seen.kept = items[index] = (agent, seen.state, seen.private_key, seen, seen.trades, seen.tools, seen.head_key)
                seen.changes = agent.changes
                mids[index], tails[index] = seen.mid, seen.tail  # type: ignore[assignment]
        observed = ObservedAgents(list(agents), items, shared)
        if mids is None:
            return observed, None
        count = len(mids)
        steps, markets = [self._step_text] * count, [f'{self._market_text},"open_orders":[],'] * count
        for index in whole:
            steps[index] = markets[index] = ""
        columns = [steps, mids, markets, tails]
        return observed, columns if pieces else list(map("".join, zip(*columns, strict=True)))

    def _refresh_changed(self, changed: list[tuple[int, TraderAgent, _Seen, tuple[str, ...]]]) -> None:
        """`_refresh` of each changed agent ``(index, agent, seen, tools)`` observed before (its texts
        made), with the step's texts made in columns: the accounts' amounts converted and written in
        one pass, each new trade record's text made once. An agent whose head or tools changed, or
        whose account shows anything reserved or a credit or short limit, or whose amounts are not
        finite floats, goes through `_refresh` (the reference)."""
        money, encode = self._money, self.encode
        assert money is not None and encode is not None
        to_units, horizon, tick_size = money.to_units, self._horizon, money.tick_size
        refresh, private_text, rest, made = self._refresh, self._private_text, self._rest, self._trade_texts
        columns: list[_Seen] = []  # whose account text is made in columns
        later: list[_Seen] = []  # whose texts are joined after their account texts are made
        for _, agent, seen, tools in changed:
            head = seen.head_key
            if (
                seen.tools is not tools or not agent.keep_trades or tick_size.__class__ is not float
                or head[1] != agent.name or head[2] != agent.role._value_ or head[0] != horizon or head[3] != tick_size
            ):  # fmt: skip  (the head key's fields compared without making the key)
                refresh(agent, seen, seen.account, tools)  # (the live account: an id's is never replaced)
                continue
            if seen.take_account(seen.account):
                columns.append(seen)
            later.append(seen)
            key = private_key(agent)
            if seen.private_key != key:  # else the kept tuple stays: the same content
                seen.private_key, seen.mid = key, None
                seen.private_json = private_text(key, money) or private_json(
                    _private_views(agent, key, money, self._schedules), encode
                )
            trades = tuple(agent.recent_trades)
            old = seen.trades
            if old != trades:
                assert old is not None  # observed before
                # records are only appended (the oldest dropped past the window): the kept texts of
                # those still shown, found by identity, and a text made for each new one
                drop = 0
                if trades:
                    first = trades[0]
                    while drop < len(old) and old[drop] is not first:
                        drop += 1
                kept = len(old) - drop
                if kept <= len(trades) and all(map(_is, old[drop:], trades)):
                    texts = seen.trade_texts[drop:]
                    texts += [_trade_json(t, encode, made) for t in trades[kept:]]
                else:  # not appended to: by identity, as `_refresh`
                    known = dict(zip(map(id, old), seen.trade_texts, strict=True))
                    texts = [known.get(id(t)) or _trade_json(t, encode, made) for t in trades]
                seen.trade_texts, seen.trades = texts, trades
                seen.tail = f'"recent_trades":[{",".join(texts)}],{rest[tools]}'
        if columns:
            self._account_texts(columns, to_units, encode)
        for seen in later:
            if seen.mid is None:
                seen.mid = f'{seen.head},"account":{seen.account_json},"private":{seen.private_json},"market":'

    @staticmethod
    def _account_texts(columns: list[_Seen], to_units: Any, encode: Encoder) -> None:
        """Each of ``columns``' ``account_json`` (for its ``state``), the amounts converted and written
        in one pass; an account showing anything reserved, a credit or short limit, or an amount that is
        not a finite float is written by `_state_json` or `account_json` (the reference)."""
        plain = [
            seen for seen in columns
            if not seen.reserved_cash and not seen.credit_limit and not seen.short_limit
            and seen.reserved_cash.__class__ is int and not any(seen.reserved_goods.values())
        ]  # fmt: skip
        if plain:
            zero = to_units(0)
            cash = list(map(to_units, [seen.cash for seen in plain]))
            total = sum(cash, zero)
            if zero.__class__ is float and set(map(type, cash)) == {float} and total - total == 0.0:
                zero_text = float.__repr__(zero)
                for seen, text in zip(plain, map(float.__repr__, cash), strict=True):
                    holdings = _int_map_json(seen.holdings)
                    if holdings is not None:  # nothing reserved, no limits: available is cash and holdings
                        seen.account_json = (
                            f'{{"cash":{text},"holdings":{holdings},"reserved_cash":{zero_text},"reserved_goods":{{}},'
                            f'"available_cash":{text},"available_goods":{holdings}}}'
                        )
        for seen in columns:
            if seen.account_json is None:
                state = seen.state
                assert state is not None  # set with the account's numbers
                seen.account_json = _state_json(state, to_units) or account_json(_state_view(state, to_units), encode)


def _made(shared: _Shared, kept: tuple[Any, ...]) -> LazyObservation:
    """The `LazyObservation` `ObservationBatch.observe` would have made of what ``kept`` holds."""
    agent, state, key, seen, trades, tools, head_key = kept
    observation = _new(LazyObservation)
    observation._lazy = _NOTHING_READ
    observation._source = (shared, agent, state, key, seen, trades, None, None, [], tools, None, head_key)
    return observation


class ObservedAgents(Sequence[tuple["TraderAgent", Observation]]):
    """A step's ``(agent, observation)`` pairs, in agent order (`ObservationBatch.observe_step`),
    each observation made when first read (then the same object on every read): equal item by
    item to the list of them. A batched population's deciding reads its numbers without making
    them (`zi_row`)."""

    __slots__ = ("_items", "_shared", "agents")

    def __init__(self, agents: list[TraderAgent], items: list[Any], shared: _Shared) -> None:
        """``items[i]``: agent ``i``'s observation, or what it is made of (`_made`)."""
        self.agents, self._items, self._shared = agents, items, shared

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self._items))[index]]
        return self.agents[index], self.observation(index)

    def __iter__(self) -> Iterator[tuple[TraderAgent, Observation]]:
        agents, observation = self.agents, self.observation
        for i in range(len(self._items)):
            yield agents[i], observation(i)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (ObservedAgents, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ObservedAgents({list(self)!r})"

    def observation(self, index: int) -> Observation:
        """Agent ``index``'s observation (made on the first read)."""
        item = self._items[index]
        if item.__class__ is tuple:
            item = self._items[index] = _made(self._shared, item)
        return item

    def observations(self) -> Observations:
        """The observations alone, in agent order (each made when read)."""
        return Observations(self, range(len(self._items)))

    def observations_of(self, indexes: Sequence[int]) -> Observations:
        """The observations of the agents ``indexes``, in that order (each made when read)."""
        return Observations(self, indexes)

    def zi_row(self, index: int) -> Any:
        """What `LazyObservation.zi_view` gives for agent ``index``'s observation, read from what
        it is made of when it was not made (read) yet; None as `zi_view`'s."""
        item = self._items[index]
        if item.__class__ is tuple:
            _, state, key, seen, _, _, head_key = item
            inputs = _zi_inputs(self._shared, state, key, seen)
            return head_key[2], self._shared.market.goods, head_key[3], inputs[0], inputs[1]
        return item.zi_view() if item.__class__ is LazyObservation else None

    def zi_rows(self, indexes: Sequence[int]) -> list[Any]:
        """`zi_row` of each of ``indexes``, in order (one call for a population)."""
        items, shared, zi_row = self._items, self._shared, self.zi_row
        goods = shared.market.goods
        out: list[Any] = []
        add = out.append
        for index in indexes:
            item = items[index]
            if item.__class__ is tuple:
                _, state, key, seen, _, _, head_key = item
                kept = seen.zi  # `_zi_inputs`' kept numbers, read here (a call less per agent)
                inputs = kept[2] if kept is not None and kept[0] is state and kept[1] is key else _zi_inputs(
                    shared, state, key, seen
                )
                add((head_key[2], goods, head_key[3], inputs[0], inputs[1]))
            else:
                add(zi_row(index))
        return out


class Observations(Sequence[Observation]):
    """Some agents' observations of an `ObservedAgents` (by their indexes), each made when read;
    ``zi_row(k)`` is `ObservedAgents.zi_row` of the ``k``-th."""

    __slots__ = ("_indexes", "_observed")

    def __init__(self, observed: ObservedAgents, indexes: Sequence[int]) -> None:  # noqa: D107 - the class says it
        self._observed, self._indexes = observed, indexes

    def __len__(self) -> int:
        return len(self._indexes)

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, slice):
            return [self[i] for i in range(len(self._indexes))[k]]
        return self._observed.observation(self._indexes[k])

    def __iter__(self) -> Iterator[Observation]:
        observation = self._observed.observation
        for i in self._indexes:
            yield observation(i)

    def zi_row(self, k: int) -> Any:
        """`ObservedAgents.zi_row` of the ``k``-th observation."""
        return self._observed.zi_row(self._indexes[k])

    def zi_rows(self, ks: Sequence[int] | None = None) -> list[Any]:
        """`zi_row` of each (of the ``ks``-th only, when given), in order."""
        indexes = self._indexes
        return self._observed.zi_rows(indexes if ks is None else [indexes[k] for k in ks])


def zi_items(observations: Any) -> tuple[list[Any], dict[str, Any]] | None:
    """What each of ``observations`` (an `Observations`) is made of, in order, and the step's
    market goods: an agent's item is the same object from step to step while its shown state is
    unchanged (`ObservationBatch.observe_step` keeps it), else its kept parts or its observation
    (made when read) anew; None for any other sequence. (A batched population keeps what it
    derived from an item while the item is the same: `_ZeroIntelligence.decide_columns`.)"""
    if observations.__class__ is not Observations:
        return None
    observed, indexes = observations._observed, observations._indexes
    items = observed._items
    # a copy: an observation made later (when read) replaces its item in the step's list
    chosen = list(items) if indexes == range(len(items)) else [items[i] for i in indexes]
    return chosen, observed._shared.market.goods
