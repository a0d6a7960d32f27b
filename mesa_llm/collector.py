"""The model's time series: a Mesa DataCollector whose memory does not grow with the run.

The recording holds every step; the collector keeps the last ``max_rows`` collections for plots and
notebooks (``model.datacollector.get_model_vars_dataframe()``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, overload

import mesa

DEFAULT_HISTORY_STEPS = 500
"""Steps of DataCollector history a model keeps by default (see `BoundedDataCollector`)."""


class BoundedDataCollector(mesa.DataCollector):
    """A Mesa DataCollector that keeps only the rows of the last `max_rows` collections.

    A run's memory must not grow with its length, and the full history is in the recording
    anyway. The frames it returns are the tail of what an unbounded collector would return, with
    the same index: ``get_model_vars_dataframe()`` is indexed by collection number (0 for the
    first collection ever, as in Mesa), the agent frame by (Step, AgentID).
    """

    def __init__(
        self,
        *args: Any,
        max_rows: int | None = DEFAULT_HISTORY_STEPS,
        agent_rows: Callable[[Any], Iterable[tuple[Any, ...]]] | None = None,
        agent_columns: Callable[[Any], AgentRows] | None = None,
        **kwargs: Any,
    ) -> None:
        """Like `mesa.DataCollector`; `max_rows` None keeps everything. ``agent_rows(model)``, if
        given, yields every agent's row ``(step, agent id, *reports)`` at once, in ``model.agents``
        order, as Mesa would build them from the agent reporters (which still name the columns):
        one pass that shares what the reporters would each look up again. ``agent_columns(model)``,
        if given, makes them as an `AgentRows` instead, kept as the collection's records and made
        into rows when first read (the market collector's: a step makes no tuple per agent)."""
        if max_rows is not None and max_rows < 1:
            raise ValueError(f"the data collector must keep at least 1 step, got {max_rows}")
        super().__init__(*args, **kwargs)
        self.agent_rows = agent_rows
        #: ``agent_columns(model)``, if given, is a collection's `AgentRows` (the rows ``agent_rows``
        #: gives, made when first read): kept as the collection's agent records instead of a list
        self.agent_columns = agent_columns
        self._columns: AgentRows | None = None  # the collection's, between `_record_agents` and `collect`
        self.max_rows = max_rows
        #: collections dropped from the front of the model history
        self.dropped_rows = 0

    def collect(self, model: Any) -> None:
        """Collect as Mesa does, then drop the rows beyond `max_rows`."""
        super().collect(model)
        columns, self._columns = self._columns, None
        if columns is not None:  # Mesa listed nothing (see `_record_agents`): the rows, made when read
            self._agent_records[model.steps] = columns
        limit = self.max_rows
        if limit is None:
            return
        excess = 0
        for values in self.model_vars.values():
            excess = max(excess, len(values) - limit)
            if len(values) > limit:
                del values[: len(values) - limit]
        self.dropped_rows += excess
        for records in (self._agent_records, getattr(self, "_agenttype_records", {})):
            while len(records) > limit:
                del records[next(iter(records))]  # the oldest step (dicts keep insertion order)

    def _record_agents(self, model: Any) -> Any:
        if self.agent_columns is not None:
            self._columns = self.agent_columns(model)
            return ()  # Mesa lists what this returns; `collect` keeps the columns instead
        if self.agent_rows is not None:
            return self.agent_rows(model)
        return super()._record_agents(model)

    def get_model_vars_dataframe(self) -> Any:
        """The model variables of the rows kept, indexed by collection number."""
        frame = super().get_model_vars_dataframe()
        if self.dropped_rows:
            frame.index = frame.index + self.dropped_rows
        return frame


def _first_price(model: Any) -> float | None:
    """Last clearing price of the first good (currency units)."""
    state = next(iter(model.exchange.goods.values()))
    return model.money.to_units(state.last_price) if state.last_price is not None else None


def _agent_rows(model: Any) -> Iterator[tuple[Any, ...]]:
    """Every agent's (step, id, wealth, cash, surplus): the values of the agent reporters of
    `market_collector`, with one account lookup per agent and the reference prices looked up
    once per collection (wealth: `model.wealth`, surplus: `model.agent_surplus`)."""
    step, to_units = model.steps, model.money.to_units
    accounts, initial_cash = model.exchange.ledger.account, model.initial_cash
    prices: dict[str, int] = {}
    reference_price = model.exchange.reference_price
    for agent in model.agents:
        me = agent.unique_id
        account = accounts(me)
        cash = account.cash
        ticks = cash
        for good, quantity in account.holdings.items():
            if quantity:
                price = prices.get(good)
                if price is None:
                    price = prices[good] = reference_price(good)
                ticks += quantity * price
        yield (step, me, to_units(ticks), to_units(cash),
               to_units(agent.realised_surplus + cash - initial_cash[me]))  # fmt: skip


class AgentRows(Sequence[tuple[Any, ...]]):
    """One collection's agent rows ``(step, agent id, wealth, cash, surplus)`` as `_agent_rows` makes
    them, kept as the integer ticks they are made of (one list per column, not a tuple per agent)
    and converted (``to_units``) when first read: the frame, or anyone reading the collector's
    records, gets the same rows, value for value."""

    __slots__ = ("_columns", "_rows")

    def __init__(self, step: int, ids: list[Any], wealth: list[int], cash: list[int], surplus: list[int],
                 to_units: Callable[[int], float]) -> None:  # fmt: skip
        self._columns: tuple[Any, ...] | None = (step, ids, wealth, cash, surplus, to_units)
        self._rows: list[tuple[Any, ...]] | None = None

    def rows(self) -> list[tuple[Any, ...]]:
        """The rows, made on the first call (the columns are then dropped)."""
        rows = self._rows
        if rows is None:
            step, ids, wealth, cash, surplus, to_units = self._columns  # type: ignore[misc]
            rows = self._rows = [
                (step, me, to_units(w), to_units(c), to_units(s)) for me, w, c, s in zip(ids, wealth, cash, surplus, strict=True)
            ]
            self._columns = None
        return rows

    @overload
    def __getitem__(self, index: int) -> tuple[Any, ...]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[Any, ...]]: ...
    def __getitem__(self, index: int | slice) -> tuple[Any, ...] | list[tuple[Any, ...]]:
        return self.rows()[index]

    def __len__(self) -> int:
        return len(self._columns[1]) if self._columns is not None else len(self.rows())

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AgentRows):
            return self.rows() == other.rows()
        return self.rows() == other if isinstance(other, list) else NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a list, mutable like one

    def __repr__(self) -> str:
        return repr(self.rows())


def _agent_columns(model: Any) -> AgentRows:
    """`_agent_rows`' rows as columns of ticks (`AgentRows`): the per-agent reads only (account,
    holdings at the reference prices, realised surplus), the conversions and tuples left to the
    first read; the reference prices looked up once per good per collection, as there."""
    agents = list(model.agents)
    ids = [agent.unique_id for agent in agents]
    accounts = model.exchange.ledger.accounts_of(ids)
    cash = [account.cash for account in accounts]
    initial_cash = model.initial_cash
    surplus = [agent.realised_surplus + c - initial_cash[me] for agent, c, me in zip(agents, cash, ids, strict=True)]
    return AgentRows(model.steps, ids, _wealth(model.exchange, accounts, cash), cash, surplus, model.money.to_units)


def _wealth(exchange: Any, accounts: list[Any], cash: list[int]) -> list[int]:
    """Each account's cash plus its holdings at their goods' reference prices (ticks), as
    `_agent_rows` adds them: a column per good held (a good's price looked up once, and only
    if someone holds some: a good the exchange does not list raises there as it does there).
    Quantities not all ints go account by account, as there (the same order of additions)."""
    holdings = [account.holdings for account in accounts]
    goods = set().union(*holdings)
    columns = {good: [held.get(good, 0) for held in holdings] for good in goods}
    wealth = cash.copy()
    if any(set(map(type, column)) - {int} for column in columns.values()):
        prices: dict[str, int] = {}
        for i, held in enumerate(holdings):
            for good, quantity in held.items():
                if quantity:
                    price = prices.get(good)
                    if price is None:
                        price = prices[good] = exchange.reference_price(good)
                    wealth[i] += quantity * price
        return wealth
    for good, column in columns.items():  # (ints: the order the goods are added in makes no difference)
        if any(column):
            price = exchange.reference_price(good)
            wealth = [w + q * price for w, q in zip(wealth, column, strict=True)]
    return wealth


def market_collector(history_steps: int | None) -> BoundedDataCollector:
    """The collector of a market model: price, volume, trades, allocative efficiency and last prices per
    step; each agent's wealth, cash and surplus (currency units). Reporters use the model's public
    accessors only."""
    return BoundedDataCollector(
        max_rows=history_steps,
        agent_rows=_agent_rows,
        agent_columns=_agent_columns,
        model_reporters={
            "price": _first_price,
            "volume": lambda m: m.tallies.step_volume,
            "trades": lambda m: m.tallies.step_trades,
            "allocative_efficiency": lambda m: m.efficiency(),
            "prices": lambda m: m.exchange.snapshot_prices(),
        },
        agent_reporters={
            "wealth": lambda a: a.model.wealth(a),
            "cash": lambda a: a.model.money.to_units(a.model.exchange.ledger.account(a.unique_id).cash),
            "surplus": lambda a: a.model.money.to_units(a.model.agent_surplus(a)),
        },
    )
