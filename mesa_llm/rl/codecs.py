"""Observation encoders and action decoders: the objects that turn an agent's `Observation` into
a vector and a learner's action back into the world's typed actions (NegMAS-RL's design: both are
objects you pass, each with a name, pydantic parameters and its space).

Market (call market): `MarketFeatures` — seed 001's 13 features plus a one-hot of the learner's
role; `QuoteDecoder` — ``Discrete(3)`` hold / buy at the best ask / sell at the best bid;
`BoxOrderDecoder` — a ``Box`` of side, price offset in ticks and quantity (normalised to [-1, 1]).
Negotiation: `NegotiationFeatures` — relative time and the utilities of the last offers;
`UtilityLevelDecoder` — ``Discrete(levels + 2)``: offer the outcome nearest a utility level, or
accept the standing offer, or end the negotiation.

Encoders and decoders are pure: they draw nothing at random and keep no state between steps beyond
caches of what they computed from the same input, so the same observations give the same vectors.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mesa_llm.agents.observation import Observation
from mesa_llm.agents.roles import Role
from mesa_llm.rl._deps import require

#: clip of every encoded feature (the Box's bounds)
FEATURE_BOUND = 10.0


class CodecParams(BaseModel):
    """Base of encoder and decoder parameters: unknown parameters are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ActionError(ValueError):
    """A learner's action is not in its action space (one line: which agent, what, which space)."""


def _spaces() -> Any:
    return require("gymnasium.spaces")


# --------------------------------------------------------------------------- encoders


class ObservationEncoder(ABC):
    """Turns one agent's `Observation` into a float32 vector of a fixed `space`.

    ``roles``: the learners' roles (a one-hot of the agent's role is appended, so one shared policy
    can tell them apart); ``good``: the good a market encoder looks at (default the first).
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[CodecParams]] = CodecParams
    #: features before the role one-hot
    size: ClassVar[int] = 0

    def __init__(self, params: CodecParams | Mapping[str, Any] | None = None, *, roles: Sequence[str] = (), good: str | None = None) -> None:
        self.params = params if isinstance(params, CodecParams) else self.Params.model_validate(dict(params or {}))
        self.roles = sorted(set(roles))
        self.good = good

    @cached_property
    def space(self) -> Any:
        """The observation space (one object for the encoder's life)."""
        spaces = _spaces()
        n = self.size + len(self.roles)
        return spaces.Box(-FEATURE_BOUND, FEATURE_BOUND, shape=(n,), dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        """Name, parameters and context, as a checkpoint's sidecar records them."""
        return {"name": self.name, "params": self.params.model_dump(mode="json"), "roles": list(self.roles), "good": self.good}

    def zeros(self) -> np.ndarray:
        """The vector of an agent that sees nothing this step (withdrawn, or past the horizon)."""
        return np.zeros(self.space.shape, dtype=np.float32)

    def encode(self, observation: Observation) -> np.ndarray:
        """The observation as a vector in `space`."""
        values = [min(max(v, -FEATURE_BOUND), FEATURE_BOUND) if v == v else 0.0 for v in self.features(observation)]
        values.extend(1.0 if role == observation.role else 0.0 for role in self.roles)
        return np.array(values, dtype=np.float32)

    @abstractmethod
    def features(self, observation: Observation) -> list[float]:
        """The ``size`` features of ``observation``."""


class MarketFeaturesParams(CodecParams):
    """Parameters of `MarketFeatures`."""

    volatility_window: int = Field(default=10, ge=2, le=1000, description="prices the volatility is taken over")
    inventory_scale: float = Field(default=10.0, gt=0, description="units at which the inventory feature reaches tanh(1)")


class MarketFeatures(ObservationEncoder):
    """Seed 001's 13 market features (relative to the good's reference price) plus the role:
    price, the agent's valuation (fundamental, else its next unit's value or cost; -1 when its
    schedule is used up), volatility, spread, order imbalance, the last 5 returns (latest first;
    log returns and their volatility times 10), inventory (tanh), cash ratio and relative time;
    every feature clipped to +-10."""

    name: ClassVar[str] = "market"
    Params: ClassVar[type[CodecParams]] = MarketFeaturesParams
    size: ClassVar[int] = 13

    def features(self, observation: Observation) -> list[float]:
        p: MarketFeaturesParams = self.params  # type: ignore[assignment]
        good = self.good or next(iter(observation.market.goods))
        snap = observation.market.goods[good]
        ref = snap.reference_price or 1.0
        mark = snap.last_price if snap.last_price is not None else snap.reference_price
        private = observation.private.get(good)
        valuation = 0.0
        if private is not None:
            if private.fundamental is not None:
                valuation = private.fundamental / ref - 1.0
            elif private.values or private.costs:
                nxt = private.values[0] if private.values else private.costs[0] if private.costs else None
                valuation = nxt / ref - 1.0 if nxt is not None else -1.0
        history = [x for x in snap.price_history[-(p.volatility_window + 1) :] if x and x > 0]
        logs = [math.log(b / a) for a, b in zip(history, history[1:], strict=False)]
        volatility = _std(logs[-p.volatility_window :])
        recent = logs[-5:][::-1]
        returns = recent + [0.0] * (5 - len(recent))
        spread = (snap.best_ask - snap.best_bid) / ref if snap.best_ask is not None and snap.best_bid is not None else 0.0
        depth = snap.excess_demand + snap.excess_supply
        imbalance = (snap.excess_demand - snap.excess_supply) / depth if depth else 0.0
        holdings = observation.account.holdings.get(good, 0)
        cash = observation.account.cash
        wealth = cash + holdings * mark
        cash_ratio = cash / wealth if wealth > 0 else 0.0
        time = observation.step / observation.horizon if observation.horizon else 0.0
        return [
            mark / ref - 1.0, valuation, volatility * 10.0, spread, imbalance,
            *(r * 10.0 for r in returns), math.tanh(holdings / p.inventory_scale), cash_ratio, time,
        ]  # fmt: skip


class NegotiationFeaturesParams(CodecParams):
    """Parameters of `NegotiationFeatures` (none yet)."""


class NegotiationFeatures(ObservationEncoder):
    """NegMAS-RL's negotiation features of the agent's first open session, plus the role: relative
    time, the utility (to the agent) of the other side's last offer and of its own last offer,
    whether an offer stands for it to accept, its reservation utility, whether it may offer now,
    whether the session is open."""

    name: ClassVar[str] = "negotiation"
    Params: ClassVar[type[CodecParams]] = NegotiationFeaturesParams
    size: ClassVar[int] = 7

    def features(self, observation: Observation) -> list[float]:
        view = session_view(observation)
        if view is None:
            time = observation.step / observation.horizon if observation.horizon else 0.0
            return [time, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        utility = session_utility(view)
        me = view.get("you")
        offers = list(view.get("offers") or [])
        theirs = next((o for o in reversed(offers) if o.get("proposer") != me), None)
        mine = next((o for o in reversed(offers) if o.get("proposer") == me), None)

        def u(offer: Mapping[str, Any] | None) -> float:
            return float(utility(offer["terms"])) if offer is not None and utility is not None else 0.0

        allowed = view.get("allowed") or []
        max_rounds = int(view.get("max_rounds") or 0)
        return [
            int(view.get("round") or 0) / max_rounds if max_rounds else 0.0,
            u(theirs), u(mine), 1.0 if view.get("standing") and "accept_offer" in allowed else 0.0,
            float(utility.reservation) if utility is not None else 0.0,
            1.0 if "make_offer" in allowed else 0.0, 1.0 if view.get("status") == "open" else 0.0,
        ]  # fmt: skip


def _std(values: Sequence[float]) -> float:
    """Population standard deviation (numpy's default), 0 for fewer than two values."""
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / n)


def session_view(observation: Observation) -> dict[str, Any] | None:
    """The negotiation session a negotiation codec works on: the first open one, else the first."""
    views = observation.negotiations
    return next((v for v in views if v.get("status") == "open"), views[0] if views else None)


def session_utility(view: Mapping[str, Any]) -> Any:
    """The agent's utility function in a session view (None when the view shows none)."""
    from mesa_llm.negotiation import LinearAdditiveUtility, OutcomeSpace

    if not view.get("my_utility"):
        return None
    return LinearAdditiveUtility.from_dict(OutcomeSpace.from_dict(view["space"]), view["my_utility"])


# --------------------------------------------------------------------------- decoders


class ActionDecoder(ABC):
    """Turns a learner's action (an element of `space`) into the world's actions (tagged dicts)."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[CodecParams]] = CodecParams

    def __init__(self, params: CodecParams | Mapping[str, Any] | None = None, *, good: str | None = None) -> None:
        self.params = params if isinstance(params, CodecParams) else self.Params.model_validate(dict(params or {}))
        self.good = good

    def describe(self) -> dict[str, Any]:
        """Name, parameters and context, as a checkpoint's sidecar records them."""
        return {"name": self.name, "params": self.params.model_dump(mode="json"), "good": self.good}

    @cached_property
    @abstractmethod
    def space(self) -> Any:
        """The action space (one object for the decoder's life)."""

    @property
    def idle_action(self) -> Any:
        """The action that does nothing (what a learner with nothing to decide takes)."""
        return 0

    @cached_property
    def discrete(self) -> bool:
        """Whether the action space is ``Discrete``."""
        return hasattr(self.space, "n")

    def check(self, action: Any, agent: str) -> Any:
        """``action`` as an element of `space`, or `ActionError` (one line naming ``agent``)."""
        space = self.space
        if self.discrete:
            value = np.asarray(action)
            if value.size != 1 or value.dtype.kind not in "iub":
                shown = repr(action)[:60]
                raise ActionError(f"action for agent {agent!r}: {shown} is not an integer of {space}")
            index = int(value.reshape(-1)[0])
            if not 0 <= index < int(space.n):
                raise ActionError(f"action for agent {agent!r}: {index} is outside {space} (0..{int(space.n) - 1})")
            return index
        try:
            array = np.asarray(action, dtype=np.float64).reshape(space.shape)
        except (TypeError, ValueError):
            raise ActionError(f"action for agent {agent!r}: {repr(action)[:60]} is not a vector of shape {space.shape}") from None
        if np.isnan(array).any():
            raise ActionError(f"action for agent {agent!r}: NaN in a Box action {np.array2string(array, precision=3)}")
        low, high = space.low, space.high
        if (array < low - 1e-6).any() or (array > high + 1e-6).any():
            raise ActionError(
                f"action for agent {agent!r}: {np.array2string(array, precision=3)} is outside the Box "
                f"[{np.array2string(low, precision=3)}, {np.array2string(high, precision=3)}]"
            )
        return array

    def mask(self, observation: Observation | None) -> np.ndarray | None:
        """1 for each admissible action of a discrete space now (None for a Box)."""
        return None

    @abstractmethod
    def decode(self, action: Any, observation: Observation) -> list[dict[str, Any]]:
        """The world's actions for a checked ``action`` (empty: the agent waits)."""


def _may(role: str) -> tuple[bool, bool]:
    try:
        r = Role(role)
    except ValueError:
        return False, False
    return r.may_buy, r.may_sell


def _price(observation: Observation, good: str, price: float) -> float:
    snap = observation.market.goods[good]
    return observation.snap(min(max(price, snap.min_price), snap.max_price))


class QuoteParams(CodecParams):
    """Parameters of `QuoteDecoder`."""

    quantity: int = Field(default=1, ge=1, le=10**6, description="units per order")


class QuoteDecoder(ActionDecoder):
    """``Discrete(3)``: 0 hold, 1 buy at the best ask, 2 sell at the best bid (the last clearing's;
    the last price, else the reference price, when there is none). Inadmissible actions (a side the
    role may not take, not enough cash or units) are masked and, if taken, do nothing."""

    name: ClassVar[str] = "quote"
    Params: ClassVar[type[CodecParams]] = QuoteParams

    @cached_property
    def space(self) -> Any:
        return _spaces().Discrete(3)

    def _order(self, observation: Observation, side: str) -> dict[str, Any] | None:
        good = self.good or next(iter(observation.market.goods))
        snap = observation.market.goods[good]
        quantity: int = self.params.quantity  # type: ignore[attr-defined]
        mark = snap.last_price if snap.last_price is not None else snap.reference_price
        may_buy, may_sell = _may(observation.role)
        account = observation.account
        if side == "buy":
            price = _price(observation, good, snap.best_ask if snap.best_ask is not None else mark)
            if not may_buy or price * quantity > account.available_cash + 1e-9:
                return None
        else:
            price = _price(observation, good, snap.best_bid if snap.best_bid is not None else mark)
            if not may_sell or account.available_goods.get(good, 0) < quantity:
                return None
        return {"type": "place_order", "good": good, "side": side, "price": price, "quantity": quantity}

    def mask(self, observation: Observation | None) -> np.ndarray | None:
        if observation is None:
            return np.array([1, 0, 0], dtype=np.int8)
        return np.array([1, self._order(observation, "buy") is not None, self._order(observation, "sell") is not None], dtype=np.int8)

    def decode(self, action: Any, observation: Observation) -> list[dict[str, Any]]:
        if action == 0:
            return []
        order = self._order(observation, "buy" if action == 1 else "sell")
        return [order] if order is not None else []


class BoxOrderParams(CodecParams):
    """Parameters of `BoxOrderDecoder`."""

    max_offset_ticks: int = Field(default=500, ge=1, le=10**9, description="largest price offset from the last price, in ticks")
    max_quantity: int = Field(default=5, ge=1, le=10**6, description="largest order")


class BoxOrderDecoder(ActionDecoder):
    """``Box([-1, 1]^3)`` (normalised, as SB3 recommends): side (> 1/3 buy, < -1/3 sell, else
    hold), price offset from the last price (times ``max_offset_ticks`` ticks), quantity
    (``(x + 1) / 2 * max_quantity``, rounded; 0 holds). The price is clipped to the good's range."""

    name: ClassVar[str] = "box"
    Params: ClassVar[type[CodecParams]] = BoxOrderParams

    @cached_property
    def space(self) -> Any:
        return _spaces().Box(-1.0, 1.0, shape=(3,), dtype=np.float32)

    @property
    def idle_action(self) -> Any:
        return np.zeros(3, dtype=np.float32)

    def order(self, action: Any) -> tuple[str | None, int, int]:
        """Side (None: hold), offset in ticks and quantity of a checked action."""
        p: BoxOrderParams = self.params  # type: ignore[assignment]
        side_x, offset_x, qty_x = (float(x) for x in np.asarray(action).reshape(3))
        quantity = int(round((qty_x + 1.0) / 2.0 * p.max_quantity))
        side = "buy" if side_x > 1 / 3 else "sell" if side_x < -1 / 3 else None
        return (side if quantity > 0 else None), int(round(offset_x * p.max_offset_ticks)), quantity

    def decode(self, action: Any, observation: Observation) -> list[dict[str, Any]]:
        side, offset, quantity = self.order(action)
        if side is None:
            return []
        may_buy, may_sell = _may(observation.role)
        if (side == "buy" and not may_buy) or (side == "sell" and not may_sell):
            return []
        good = self.good or next(iter(observation.market.goods))
        snap = observation.market.goods[good]
        mark = snap.last_price if snap.last_price is not None else snap.reference_price
        price = _price(observation, good, mark + offset * observation.tick_size)
        return [{"type": "place_order", "good": good, "side": side, "price": price, "quantity": quantity}]


class UtilityLevelParams(CodecParams):
    """Parameters of `UtilityLevelDecoder`."""

    levels: int = Field(default=10, ge=2, le=1000, description="utility levels an offer may aim at")
    grid_points: int = Field(default=201, ge=2, le=10_001, description="points per continuous issue the outcome is picked from")
    end: bool = Field(default=True, description="offer the end-negotiation action (without it: Discrete(levels + 1))")


class UtilityLevelDecoder(ActionDecoder):
    """``Discrete(levels + 2)`` over the agent's first open session: ``k < levels`` offers the
    outcome whose utility is nearest above ``reservation + (1 - k / (levels - 1)) * (best -
    reservation)`` (0: the agent's best, ``levels - 1``: its reservation value); ``levels``
    accepts the standing offer; ``levels + 1`` ends the negotiation. Masked when not allowed."""

    name: ClassVar[str] = "utility_level"
    Params: ClassVar[type[CodecParams]] = UtilityLevelParams

    def __init__(self, params: CodecParams | Mapping[str, Any] | None = None, *, good: str | None = None) -> None:
        super().__init__(params, good=good)
        self._grids: dict[str, tuple[list[dict[str, Any]], np.ndarray]] = {}

    @cached_property
    def space(self) -> Any:
        p: UtilityLevelParams = self.params  # type: ignore[assignment]
        return _spaces().Discrete(p.levels + (2 if p.end else 1))

    def mask(self, observation: Observation | None) -> np.ndarray | None:
        p: UtilityLevelParams = self.params  # type: ignore[assignment]
        levels = p.levels
        out = np.zeros(int(self.space.n), dtype=np.int8)
        view = session_view(observation) if observation is not None else None
        if view is None or view.get("status") != "open":
            out[0] = 1  # nothing to do: any offer level decodes to waiting
            return out
        allowed = view.get("allowed") or []
        if "make_offer" in allowed:
            out[:levels] = 1
        else:
            out[0] = 1
        out[levels] = 1 if view.get("standing") and "accept_offer" in allowed else 0
        if p.end:
            out[levels + 1] = 1 if "end_negotiation" in allowed else 0
        return out

    def decode(self, action: Any, observation: Observation) -> list[dict[str, Any]]:
        p: UtilityLevelParams = self.params  # type: ignore[assignment]
        view = session_view(observation)
        if view is None or view.get("status") != "open":
            return []
        allowed = view.get("allowed") or []
        session = view["session_id"]
        if p.end and action == p.levels + 1:
            return [{"type": "end_negotiation", "session_id": session}] if "end_negotiation" in allowed else []
        if action == p.levels:
            standing = list(view.get("standing") or [])
            if not standing or "accept_offer" not in allowed:
                return []
            utility = session_utility(view)
            best = max(standing, key=lambda o: (float(utility(o["terms"])) if utility else 0.0, -o["offer_id"]))
            return [{"type": "accept_offer", "session_id": session, "offer_id": best["offer_id"]}]
        if "make_offer" not in allowed:
            return []
        utility = session_utility(view)
        if utility is None:
            return []
        grid, values = self._grid(view, utility)
        best_u = float(values.max())
        reservation = min(float(utility.reservation), best_u)
        target = reservation + (1.0 - action / (p.levels - 1)) * (best_u - reservation)
        candidates = np.flatnonzero(values >= target - 1e-9)
        index = int(candidates[np.argmin(values[candidates])]) if candidates.size else int(np.argmax(values))
        offer: dict[str, Any] = {"type": "make_offer", "session_id": session, "terms": dict(grid[index])}
        return [offer]

    def _grid(self, view: Mapping[str, Any], utility: Any) -> tuple[list[dict[str, Any]], np.ndarray]:
        key = f"{view['session_id']}|{view.get('you')}|{sorted(view['my_utility'].items())!r}"
        cached = self._grids.get(key)
        if cached is None:
            grid = utility.space.grid(int(self.params.grid_points))  # type: ignore[attr-defined]
            cached = self._grids[key] = (grid, np.asarray(utility.many(grid), dtype=float))
            while len(self._grids) > 4096:
                del self._grids[next(iter(self._grids))]
        return cached


#: the encoders and decoders by name (what a checkpoint's sidecar and the CLI name)
ENCODERS: dict[str, type[ObservationEncoder]] = {c.name: c for c in (MarketFeatures, NegotiationFeatures)}
DECODERS: dict[str, type[ActionDecoder]] = {c.name: c for c in (QuoteDecoder, BoxOrderDecoder, UtilityLevelDecoder)}


def build_encoder(description: Mapping[str, Any]) -> ObservationEncoder:
    """An encoder from its `describe()` (ValueError, one line, for an unknown name or parameters)."""
    name = str(description.get("name"))
    if name not in ENCODERS:
        raise ValueError(f"unknown observation encoder {name!r}; encoders: {', '.join(ENCODERS)}")
    return ENCODERS[name](_params(ENCODERS[name].Params, description, "encoder"), roles=list(description.get("roles") or []), good=description.get("good"))


def build_decoder(description: Mapping[str, Any]) -> ActionDecoder:
    """A decoder from its `describe()` (ValueError, one line, for an unknown name or parameters)."""
    name = str(description.get("name"))
    if name not in DECODERS:
        raise ValueError(f"unknown action decoder {name!r}; decoders: {', '.join(DECODERS)}")
    return DECODERS[name](_params(DECODERS[name].Params, description, "decoder"), good=description.get("good"))


def _params(model: type[CodecParams], description: Mapping[str, Any], what: str) -> CodecParams:
    from pydantic import ValidationError

    try:
        return model.model_validate(dict(description.get("params") or {}))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"{what} {description.get('name')!r} params.{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


__all__ = [
    "DECODERS",
    "ENCODERS",
    "ActionDecoder",
    "ActionError",
    "BoxOrderDecoder",
    "MarketFeatures",
    "NegotiationFeatures",
    "ObservationEncoder",
    "QuoteDecoder",
    "UtilityLevelDecoder",
    "build_decoder",
    "build_encoder",
    "session_utility",
    "session_view",
]
