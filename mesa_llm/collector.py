"""The model's time series: a Mesa DataCollector whose memory does not grow with the run.

The recording holds every step; the collector keeps the last ``max_rows`` collections for plots and
notebooks (``model.datacollector.get_model_vars_dataframe()``).
"""

from __future__ import annotations

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

    def __init__(self, *args: Any, max_rows: int | None = DEFAULT_HISTORY_STEPS, **kwargs: Any) -> None:
        """Like `mesa.DataCollector`; `max_rows` None keeps everything."""
        if max_rows is not None and max_rows < 1:
            raise ValueError(f"the data collector must keep at least 1 step, got {max_rows}")
        super().__init__(*args, **kwargs)
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


def market_collector(history_steps: int | None) -> BoundedDataCollector:
    """The collector of a market model: price, volume, trades, allocative efficiency and last prices per
    step; each agent's wealth, cash and surplus (currency units). Reporters use the model's public
    accessors only."""
    return BoundedDataCollector(
        max_rows=history_steps,
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
