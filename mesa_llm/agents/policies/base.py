"""The decision interface shared by rule-based strategies and (later) LLM reasoning, and its registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from mesa_llm.actions import Decision, PlaceOrder
from mesa_llm.agents.observation import Observation

_new = object.__new__
_set = object.__setattr__
#: the fields a `PlaceOrder(good=, side=, price=, quantity=)` call sets (its ``model_fields_set``)
_ORDER_FIELDS_SET = frozenset(("good", "side", "price", "quantity"))


def trusted_order(good: str, side: Literal["buy", "sell"], price: float, quantity: int) -> PlaceOrder:
    """``PlaceOrder(good=good, side=side, price=price, quantity=quantity)`` without validation:
    an equal object (same fields, same fields set) at a third of the cost, for a batch kernel
    whose orders pass validation by construction (a float ``price`` > 0 and finite, an int
    ``quantity`` in 1..10**9, a good of 1-64 characters). Anything else must be validated."""
    order = _new(PlaceOrder)
    _set(order, "__dict__", {"type": "place_order", "good": good, "side": side, "price": price, "quantity": quantity,
                             "lifetime": "step"})  # fmt: skip
    _set(order, "__pydantic_fields_set__", set(_ORDER_FIELDS_SET))
    _set(order, "__pydantic_extra__", None)
    _set(order, "__pydantic_private__", None)
    return order


class OrderColumns:
    """Orders of step lifetime decided by batched populations, one column per field (per order:
    its agent, good, side, price, quantity; the order of appending is the agents' and their
    orders' order): what the resolver hands to the call market as they are, without a
    `PlaceOrder` per order (`ColumnDecision`). Every order passes `PlaceOrder`'s validation by
    construction (as `trusted_order`'s must); `order` makes the equal `PlaceOrder`."""

    __slots__ = ("agents", "buys", "goods", "prices", "quantities")

    def __init__(self) -> None:
        self.agents: list[Any] = []  # each order's agent (a `TraderAgent` in a run)
        self.goods: list[str] = []
        self.buys: list[bool] = []
        self.prices: list[float] = []
        self.quantities: list[int] = []

    def __len__(self) -> int:
        return len(self.goods)

    def order(self, index: int) -> PlaceOrder:
        """Order ``index`` as the `PlaceOrder` it stands for (the per-order path's object)."""
        return trusted_order(self.goods[index], "buy" if self.buys[index] else "sell", self.prices[index],
                             self.quantities[index])  # fmt: skip


class ColumnDecision(Decision):
    """An agent's `Decision` whose orders are ``count`` consecutive orders of ``columns`` from
    ``first`` (nothing else: no plan, no invalid calls, no events, no failure). ``actions`` makes
    their `PlaceOrder` objects on first read (the per-agent path, which is the reference); the
    resolver reads the columns directly when every decision of the step is one of these."""

    __slots__ = ("_actions", "columns", "count", "first")
    # a decision of orders only: the other fields are the defaults, shared (never changed)
    plan = None
    invalid = ()  # type: ignore[assignment]
    events = ()  # type: ignore[assignment]
    failure = None
    fatal = False
    _actions: list[Any] | None

    def __init__(self, columns: OrderColumns, first: int, count: int) -> None:  # noqa: D107 - the class says it
        self.columns, self.first, self.count, self._actions = columns, first, count, None

    @property
    def actions(self) -> list[Any]:  # type: ignore[override]
        """The orders as `PlaceOrder` objects, made once."""
        actions = self._actions
        if actions is None:
            order = self.columns.order
            actions = self._actions = [order(k) for k in range(self.first, self.first + self.count)]
        return actions


class PolicyParams(BaseModel):
    """Base of every policy's parameters: unknown parameters are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DecisionPolicy(ABC):
    """Turns an Observation into a Decision. One instance per agent, so it may keep state.

    Every random draw must come from the ``rng`` passed in (the model's seeded generator), so a run
    is reproducible from its seed.
    """

    #: registry name, as written in scenario files
    name: ClassVar[str] = ""
    #: one-line description shown by ``mesa-llm scenarios`` and docs
    summary: ClassVar[str] = ""
    #: the pydantic model of this policy's parameters
    Params: ClassVar[type[PolicyParams]] = PolicyParams
    #: whether this policy talks to an LLM (async); rule-based ones decide in-process
    is_llm: ClassVar[bool] = False

    def __init__(self, params: PolicyParams | None = None) -> None:
        self.params = params if params is not None else self.Params()

    @abstractmethod
    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        """Return this step's decision for the agent that received ``observation``."""

    @classmethod
    def decide_batch(
        cls, policies: Sequence[DecisionPolicy], observations: Sequence[Any], rng: np.random.Generator
    ) -> list[Decision] | None:
        """The decisions ``policies[i].decide(observations[i], rng)`` would return, for consecutive
        agents whose policies are all of this class, with the same draws from ``rng`` in the same
        order; or None, having drawn nothing: decide them one by one (the default).

        A population decided as a batch amortises the per-agent work (one draw call, array
        arithmetic). `mesa_llm.decisions.decide_rule_based` calls it only for instances whose
        ``decide`` is their class's."""
        return None

    @classmethod
    def decide_columns(
        cls, policies: Sequence[DecisionPolicy], observations: Sequence[Any], rng: np.random.Generator,
        owners: Sequence[Any], columns: OrderColumns,
    ) -> list[Decision] | None:  # fmt: skip
        """`decide_batch` with the orders appended to ``columns`` (``owners[i]``, agent ``i``'s
        agent, as each order's agent) and each agent's decision a `ColumnDecision` of them; or
        None, having drawn and appended nothing. The default: None (no columns)."""
        return None

    def describe(self) -> dict[str, Any]:
        """Name and parameters, as recorded in the recording header."""
        return {"policy": self.name, "params": self.params.model_dump()}


class UnknownPolicyError(KeyError):
    """A scenario names a policy that is not registered (or whose plugin failed to load)."""

    def __init__(self, name: str, known: list[str], failure: str | None = None) -> None:
        super().__init__(name)
        self.message = (
            f"policy {name!r} cannot be used: {failure}"
            if failure is not None
            else f"unknown policy {name!r}; known policies: {', '.join(sorted(known))}"
        )

    def __str__(self) -> str:
        return self.message


class PolicyRegistry:
    """Maps policy names to classes. An explicit object you build and pass: no global state."""

    def __init__(self) -> None:
        self._classes: dict[str, type[DecisionPolicy]] = {}
        #: names whose class is imported on first use (plugins), and why those that failed did
        self._lazy: dict[str, Callable[[], type[DecisionPolicy]]] = {}
        self._failed: dict[str, str] = {}

    def register(self, cls: type[DecisionPolicy]) -> type[DecisionPolicy]:
        """Add a policy class under its ``name``; usable as a decorator on a registry instance."""
        if not cls.name:
            raise ValueError(f"{cls.__name__} has no name")
        self._classes[cls.name] = cls
        self._lazy.pop(cls.name, None)
        return cls

    def register_lazy(self, name: str, load: Callable[[], type[DecisionPolicy]]) -> None:
        """Name a policy whose class ``load()`` imports on first use (a plugin's); ``load`` raises
        ValueError with a one-line reason when it cannot. A registered name is kept."""
        if name not in self._classes:
            self._lazy[name] = load

    def _resolve(self, name: str) -> None:
        load = self._lazy.pop(name, None)
        if load is not None:
            try:
                self._classes[name] = load()
            except ValueError as exc:
                self._failed[name] = str(exc)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self._resolve(name)
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def names(self) -> list[str]:
        """Registered names (also those not imported yet), sorted."""
        return sorted({*self._classes, *self._lazy})

    def unknown(self, name: str) -> str:
        """Why ``name`` is not usable, in one line (unknown, or its plugin failed to load)."""
        return UnknownPolicyError(name, self.names(), self._failed.get(name)).message

    def get(self, name: str) -> type[DecisionPolicy]:
        """The class registered as ``name``, or :class:`UnknownPolicyError`."""
        self._resolve(name)
        try:
            return self._classes[name]
        except KeyError:
            raise UnknownPolicyError(name, self.names(), self._failed.get(name)) from None

    def validate_params(self, name: str, params: dict[str, Any]) -> PolicyParams:
        """Validate ``params`` for policy ``name`` (raises pydantic ValidationError)."""
        return self.get(name).Params.model_validate(params)

    def create(self, name: str, params: dict[str, Any] | None = None) -> DecisionPolicy:
        """A new policy instance with validated parameters."""
        cls = self.get(name)
        return cls(cls.Params.model_validate(params or {}))


__all__ = [
    "ColumnDecision",
    "DecisionPolicy",
    "OrderColumns",
    "PolicyParams",
    "PolicyRegistry",
    "UnknownPolicyError",
    "ValidationError",
    "trusted_order",
]
