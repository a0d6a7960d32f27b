"""The model's time series: a Mesa DataCollector whose memory does not grow with the run.

The recording holds every step; the collector keeps the last ``max_rows`` collections for plots and
notebooks (``model.datacollector.get_model_vars_dataframe()``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

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
        **kwargs: Any,
    ) -> None:
        """Like `mesa.DataCollector`; `max_rows` None keeps everything. ``agent_rows(model)``, if
        given, yields every agent's row ``(step, agent id, *reports)`` at once, in ``model.agents``
        order, as Mesa would build them from the agent reporters (which still name the columns):
        one pass that shares what the reporters would each look up again."""
        if max_rows is not None and max_rows < 1:
            raise ValueError(f"the data collector must keep at least 1 step, got {max_rows}")
        super().__init__(*args, **kwargs)
        self.agent_rows = agent_rows
        self.max_rows = max_rows
        #: collections dropped from the front of the model history
        self.dropped_rows = 0

    def collect(self, model: Any) -> None:
        """Collect as Mesa does, then drop the rows beyond `max_rows`."""
        super().collect(model)
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


def market_collector(history_steps: int | None) -> BoundedDataCollector:
    """The collector of a market model: price, volume, trades, allocative efficiency and last prices per
    step; each agent's wealth, cash and surplus (currency units). Reporters use the model's public
    accessors only."""
    return BoundedDataCollector(
        max_rows=history_steps,
        agent_rows=_agent_rows,
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
