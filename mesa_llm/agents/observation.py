"""The Observation: everything one agent may see at the start of a step, and nothing more.

Built by the world from the state at step start (pure: building it changes nothing). Money is in
currency units. The market snapshot is shared by all agents of a step (it is public), the rest is
the agent's own: its account, private values, open orders, its trades of the last step, the
messages delivered to it and the reasons its last actions were rejected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from json.encoder import encode_basestring as _str
from typing import Any

#: a compact JSON encoder (no spaces, UTF-8 kept), as the recorder's: text for a JSON value
Encoder = Callable[[Any], str]

# What the market part is encoded as in `Observation.to_json` before the shared market JSON is
# spliced in: a key "market" with value null cannot occur earlier in the text (the keys before it
# hold numbers, strings and objects of numbers; a quote inside a JSON string is escaped).
_MARKET_SLOT = '"market":null'


#: `Observation.snap`'s prices by tick size and ticks: ``round(ticks * tick, 10)`` made once each
#: (dicts of ints and floats only: the garbage collector does not walk them)
_SNAPPED: dict[float, dict[int, float]] = {}
_SNAPPED_KEPT = 1 << 16


@dataclass(slots=True)
class GoodSnapshot:
    """Public market data about one good at step start."""

    good: str
    reference_price: float
    min_price: float
    max_price: float
    last_price: float | None = None
    last_volume: int = 0
    price_low: float | None = None
    price_high: float | None = None
    excess_demand: int = 0
    excess_supply: int = 0
    price_history: list[float] = field(default_factory=list)
    #: the step of the last trade (None before the first); ``last_price`` is that trade's price
    last_trade_step: int | None = None
    #: the step of the last clearing and its best (highest) bid and (lowest) ask, None if none
    last_clearing_step: int | None = None
    best_bid: float | None = None
    best_ask: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (as recorded)."""
        return {
            "good": self.good,
            "reference_price": self.reference_price,
            "min_price": self.min_price,
            "max_price": self.max_price,
            "last_price": self.last_price,
            "last_volume": self.last_volume,
            "price_low": self.price_low,
            "price_high": self.price_high,
            "excess_demand": self.excess_demand,
            "excess_supply": self.excess_supply,
            "price_history": list(self.price_history),
            "last_trade_step": self.last_trade_step,
            "last_clearing_step": self.last_clearing_step,
            "best_bid": self.best_bid,
            "best_ask": self.best_ask,
        }


@dataclass(slots=True)
class MarketSnapshot:
    """Public market data for all goods at step start (one object shared by every observation)."""

    goods: dict[str, GoodSnapshot]
    _as_dict: dict[str, Any] | None = None
    _json: tuple[Encoder, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, computed once per step."""
        if self._as_dict is None:
            self._as_dict = {name: g.to_dict() for name, g in self.goods.items()}
        return self._as_dict

    def to_json(self, encode: Encoder) -> str:
        """``encode(self.to_dict())``, encoded once per step and encoder: every agent's
        observation splices the same text (it is the bulk of a recorded observation)."""
        cached = self._json
        if cached is None or cached[0] is not encode:
            cached = self._json = (encode, encode(self.to_dict()))
        return cached[1]

    def price(self, good: str) -> float:
        """Last clearing price of ``good``, or its reference price before the first trade."""
        g = self.goods[good]
        return g.last_price if g.last_price is not None else g.reference_price


@dataclass(slots=True)
class AccountView:
    """The agent's own balances (currency units and integer quantities)."""

    cash: float
    holdings: dict[str, int]
    reserved_cash: float
    reserved_goods: dict[str, int]
    available_cash: float
    available_goods: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (as recorded)."""
        return {
            "cash": self.cash,
            "holdings": dict(self.holdings),
            "reserved_cash": self.reserved_cash,
            "reserved_goods": dict(self.reserved_goods),
            "available_cash": self.available_cash,
            "available_goods": dict(self.available_goods),
        }


@dataclass(slots=True)
class PrivateView:
    """The agent's private information about one good.

    ``values`` are the redemption values of the next units it may buy (highest first), ``costs``
    the costs of the next units it may sell (lowest first): units already traded are removed and
    at most the scenario's ``market.private_units_shown`` next units are listed (``values_left`` /
    ``costs_left`` say how many remain), so observations stay small however long the schedule.
    ``fundamental`` is a private estimate of the good's value, for fundamental traders.
    """

    values: list[float] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)
    fundamental: float | None = None
    values_left: int = 0
    costs_left: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (as recorded): every key always present, so templates can rely on it."""
        return {
            "values": self.values,
            "values_left": self.values_left,
            "costs": self.costs,
            "costs_left": self.costs_left,
            "fundamental": self.fundamental,
        }


@dataclass(slots=True)
class Observation:
    """What one agent sees at the start of a step."""

    step: int
    horizon: int
    agent_id: int
    name: str
    role: str
    tick_size: float
    account: AccountView
    private: dict[str, PrivateView]
    market: MarketSnapshot
    open_orders: list[dict[str, Any]] = field(default_factory=list)
    recent_trades: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    #: the tools this agent may use now (role and state: open negotiations, alliances, ...)
    available_actions: list[str] = field(default_factory=list)
    #: the agent's negotiation sessions and auctions, as each protocol shows them to it
    negotiations: list[dict[str, Any]] = field(default_factory=list)
    #: its contracts not yet settled
    contracts: list[dict[str, Any]] = field(default_factory=list)
    #: public reputation scores (agent id -> [0, 1]), bounded
    reputation: dict[str, float] = field(default_factory=dict)
    #: alliances it belongs to and invitations it has
    alliances: dict[str, Any] = field(default_factory=dict)
    #: regulators only: last step's messages and trades under watch, and the rules in force
    surveillance: dict[str, Any] | None = None
    #: the step until which the agent is suspended from trading, if it is
    suspended_until: int | None = None
    #: the plugin mechanisms' parts (name -> what that mechanism shows this agent), if any
    mechanisms: dict[str, Any] = field(default_factory=dict)
    #: set by the agent that built it: exact keys of its ``account``, ``private`` and
    #: ``recent_trades`` as built (ints, strings and identities of objects the key holds), so
    #: that `ObservationEncoder` reuses their JSON while the keys stay equal
    _keys: tuple[Any, Any, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def steps_left(self) -> int:
        """Steps remaining after this one."""
        return max(self.horizon - self.step, 0)

    def snap(self, price: float) -> float:
        """Round a price to the nearest tick, at least one tick (for strategies drawing prices)."""
        tick = self.tick_size
        ticks = max(round(price / tick), 1)
        kept = _SNAPPED.get(tick)
        if kept is None or len(kept) >= _SNAPPED_KEPT:
            kept = _SNAPPED[tick] = {}
        snapped = kept.get(ticks)
        if snapped is None:  # a decimal rounding per new price, a dict lookup after
            snapped = kept[ticks] = round(ticks * tick, 10)
        return snapped

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Observation:
        """The observation of a `to_dict` form (a recorded or transmitted one); KeyError, TypeError
        or ValueError, naming the part, when it is not one."""
        if not isinstance(data, Mapping):
            raise TypeError("an observation is a JSON object")
        try:
            market = data["market"]
            private = data.get("private") or {}
            if not isinstance(market, Mapping) or not isinstance(private, Mapping):
                raise TypeError("market and private are objects")
            return cls(
                **_known(cls, data, skip={"account", "private", "market"}),
                account=AccountView(**_known(AccountView, data["account"])),
                private={str(g): PrivateView(**_known(PrivateView, v)) for g, v in private.items()},
                market=MarketSnapshot(goods={str(g): GoodSnapshot(**_known(GoodSnapshot, v)) for g, v in market.items()}),
            )
        except KeyError as exc:
            raise KeyError(f"observation: missing {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form: exactly what the agent received, as recorded (``mechanisms`` only when
        a plugin mechanism gave a part)."""
        return self._content(self.market.to_dict())

    def to_json(self, encode: Encoder, content: dict[str, Any] | None = None) -> str:
        """``encode(self.to_dict())`` (the same text), with the market part encoded once per step
        for all agents (`MarketSnapshot.to_json`) and spliced in. ``content``: this observation's
        `to_dict` if the caller has it already (it is not changed)."""
        own = dict(content) if content is not None else self._content(None)
        own["market"] = None
        head, slot, tail = encode(own).partition(_MARKET_SLOT)
        if not slot:  # unreachable: the slot is always there; encode it all rather than guess
            return encode(self.to_dict())
        return f'{head}"market":{self.market.to_json(encode)}{tail}'

    def _content(self, market: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "step": self.step,
            "horizon": self.horizon,
            "agent_id": self.agent_id,
            "name": self.name,
            "role": self.role,
            "tick_size": self.tick_size,
            "account": self.account.to_dict(),
            "private": {good: view.to_dict() for good, view in self.private.items()},
            "market": market,
            "open_orders": self.open_orders,
            "recent_trades": self.recent_trades,
            **_rest(self),
        }


# `ObservationEncoder` splices the parts of `Observation.to_dict` in its order: the scalars before
# "account", the parts up to "recent_trades", then the rest (`_rest`). The rest's parts that are
# usually empty, messages, rejections, negotiations, contracts, reputation and alliances, as one
# tuple compared at C speed ([] and {} compare equal to nothing else, exactly):
_EMPTY: tuple[Any, ...] = ([], [], [], [], {}, {})


class ObservationEncoder:
    """Encodes one run's observations as `Observation.to_json` does (the same text), faster.

    The market part is shared by every agent of a step (`MarketSnapshot.to_json`); an agent's
    account, private values and recent trades change only when it trades, so their JSON is kept
    per agent and reused while the keys the agent put in the observation (``_keys``) stay equal.
    """

    def __init__(self, encode: Encoder) -> None:
        """``encode``: the recorder's compact encoder (no spaces: lists are joined with ",")."""
        self.encode = encode
        # agent id -> [account key, its JSON, private key, JSON, trades key, JSON, head key, text,
        # the text of each trade of the trades key]
        self._parts: dict[Any, list[Any]] = {}
        # the text after "recent_trades" of an observation whose rest is empty but for its tools
        self._rest: dict[tuple[Any, ...], str] = {}

    def to_json(self, observation: Observation) -> str:
        """``encode(observation.to_dict())``, made from the observation itself: its dict form is
        not built (a recording that streams only needs the text)."""
        keys = observation._keys
        encode = self.encode
        if keys is None:
            return observation.to_json(encode)
        parts = self._parts.get(observation.agent_id)
        if parts is None:
            parts = self._parts[observation.agent_id] = [None, "", None, "", None, "", None, "", []]
        key = keys[0]
        if parts[0] is None or parts[0] != key:
            parts[0] = key
            parts[1] = account_json(observation.account, encode)
        key = keys[1]
        if parts[2] is None or parts[2] != key:
            parts[2] = key
            parts[3] = private_json(observation.private, encode)
        trades = keys[2]
        if parts[4] is None or parts[4] != trades:
            # each trade record's text is made once, when it first shows, and reused while it
            # stays in the window (records are never changed; the key holds them, so ids are theirs)
            known = dict(zip(map(id, parts[4] or ()), parts[8], strict=True))
            texts = [known.get(id(t)) or encode(t) for t in trades]
            parts[4], parts[8] = trades, texts
            parts[5] = f"[{','.join(texts)}]"
        step, horizon, agent_id, name = observation.step, observation.horizon, observation.agent_id, observation.name
        role, tick_size = observation.role, observation.tick_size
        if (
            type(step) is int and type(horizon) is int and type(agent_id) is int
            and type(name) is str and type(role) is str and type(tick_size) is float
        ):  # fmt: skip
            # the same text as encoding them (ints and strings compare exactly; a tick is > 0)
            key = (horizon, agent_id, name, role, tick_size)
            if parts[6] != key:
                parts[6] = key
                parts[7] = encode({"horizon": horizon, "agent_id": agent_id, "name": name, "role": role,
                                   "tick_size": tick_size})[1:-1]  # fmt: skip
            head = f'{{"step":{step},{parts[7]}'
        else:
            head = encode({"step": step, "horizon": horizon, "agent_id": agent_id, "name": name, "role": role,
                           "tick_size": tick_size})[:-1]  # fmt: skip
        actions = observation.available_actions
        if (
            not observation.mechanisms and type(actions) is list and observation.surveillance is None
            and observation.suspended_until is None
            and (observation.messages, observation.rejections, observation.negotiations, observation.contracts,
                 observation.reputation, observation.alliances) == _EMPTY
        ):  # fmt: skip
            # an agent with nothing but its tools in the rest (the common case): one text per tools
            key = tuple(actions)
            rest = self._rest.get(key)  # only keys of strings are kept: they compare exactly
            if rest is None:
                rest = encode(_rest(observation))
                if all(type(a) is str for a in key):
                    self._rest[key] = rest
        else:
            rest = encode(_rest(observation))
        open_orders = observation.open_orders
        return (
            f'{head},"account":{parts[1]},"private":{parts[3]},'
            f'"market":{observation.market.to_json(encode)},'
            f'"open_orders":{"[]" if type(open_orders) is list and not open_orders else encode(open_orders)},'
            f'"recent_trades":{parts[5]},{rest[1:]}'
        )


# The account and private parts change whenever the agent trades (a third of the observations of
# a busy market), and encoding their dicts costs ~2x the f-strings below. Each gives exactly
# ``encode(part)`` (the recorder's compact encoder: exact finite floats as ``float.__repr__``,
# exact ints as ``int.__repr__``, strings escaped by ``encode_basestring``) and leaves anything
# else to ``encode``: an int or bool where a float was, a NaN or infinity, a key not a string.


def account_json(view: AccountView, encode: Encoder) -> str:
    """``encode(view.to_dict())``, by hand when its values are of the types the world gives."""
    cash, reserved, available = view.cash, view.reserved_cash, view.available_cash
    holdings, reserved_goods = _int_map_json(view.holdings), _int_map_json(view.reserved_goods)
    available_goods = _int_map_json(view.available_goods)
    if (
        holdings is None or reserved_goods is None or available_goods is None or cash.__class__ is not float
        or reserved.__class__ is not float or available.__class__ is not float
        or cash - cash + reserved - reserved + available - available != 0.0  # NaN unless all are finite
    ):  # fmt: skip
        return encode(view.to_dict())
    return (
        f'{{"cash":{cash!r},"holdings":{holdings},"reserved_cash":{reserved!r},"reserved_goods":{reserved_goods},'
        f'"available_cash":{available!r},"available_goods":{available_goods}}}'
    )


def private_json(private: dict[str, PrivateView], encode: Encoder) -> str:
    """``encode({good: view.to_dict() ...})``, by hand when its values are of the types the world gives."""
    if private.__class__ is not dict:
        return encode({good: view.to_dict() for good, view in private.items()})
    out = []
    for good, view in private.items():
        values, costs, fundamental = _floats_json(view.values), _floats_json(view.costs), view.fundamental
        values_left, costs_left = view.values_left, view.costs_left
        if (
            good.__class__ is not str or values is None or costs is None or values_left.__class__ is not int
            or costs_left.__class__ is not int
            or not (fundamental is None or (fundamental.__class__ is float and fundamental - fundamental == 0.0))
        ):  # fmt: skip
            return encode({good: view.to_dict() for good, view in private.items()})
        out.append(
            f'{_str(good)}:{{"values":{values},"values_left":{values_left!r},"costs":{costs},'
            f'"costs_left":{costs_left!r},"fundamental":{"null" if fundamental is None else repr(fundamental)}}}'
        )
    return "{" + ",".join(out) + "}"


def _floats_json(values: Any) -> str | None:
    """A list of finite floats as the encoder writes it, or None."""
    if values.__class__ is not list:
        return None
    if not values:
        return "[]"
    try:
        text = ",".join(map(float.__repr__, values))  # the encoder's text of any float, finite
    except TypeError:  # an int or a bool: not a float
        return None
    return None if "n" in text else f"[{text}]"  # "nan", "inf": the encoder writes NaN, Infinity


def _int_map_json(mapping: Any) -> str | None:
    """A dict of strings to ints as the encoder writes it, or None."""
    if mapping.__class__ is not dict:
        return None
    if not mapping:
        return "{}"
    items = []
    for key, value in mapping.items():
        if key.__class__ is not str or value.__class__ is not int:
            return None
        items.append(f"{_str(key)}:{value!r}")
    return "{" + ",".join(items) + "}"


def _rest(observation: Observation) -> dict[str, Any]:
    """The parts of ``observation.to_dict()`` after ``recent_trades``, in its order."""
    out = {
        "messages": observation.messages,
        "rejections": observation.rejections,
        "available_actions": observation.available_actions,
        "negotiations": observation.negotiations,
        "contracts": observation.contracts,
        "reputation": observation.reputation,
        "alliances": observation.alliances,
        "surveillance": observation.surveillance,
        "suspended_until": observation.suspended_until,
    }
    if observation.mechanisms:
        out["mechanisms"] = observation.mechanisms
    return out


def _known(cls: type, data: Any, skip: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    """The fields of dataclass ``cls`` that ``data`` gives (its own derived keys left out)."""
    if not isinstance(data, Mapping):
        raise TypeError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    names = {f.name for f in fields(cls) if not f.name.startswith("_")} - skip
    return {name: data[name] for name in names if name in data}
