"""A run's memory does not grow with its number of steps (issue 8, part 8).

These tests assert on the sizes of the structures that used to grow with every step (recorded
events, DataCollector rows, ledger journal, trade prices, frozen objects), not on RSS or timings:
``benchmarks/bench_memory.py`` measures peak RSS.
"""

from __future__ import annotations

import gc
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesa_llm.market import Ledger
from mesa_llm.model import DEFAULT_HISTORY_STEPS, MarketModel
from mesa_llm.recording import load_events
from mesa_llm.run_summary import PriceStats, smith_alpha
from mesa_llm.scenario import load_scenario, validate_scenario


def test_a_long_recorded_run_keeps_neither_events_nor_all_its_history(
    small_auction: dict[str, Any], tmp_path: Any
) -> None:
    small_auction["steps"] = DEFAULT_HISTORY_STEPS + 20
    model = MarketModel(validate_scenario(small_auction), output_dir=tmp_path)
    model.run()
    recorder = model.recorder
    assert recorder is not None and recorder.keep_in_memory is False
    assert recorder._events == [] and recorder._by_step == {}
    assert len(recorder._step_ranges) <= 64
    collector = model.datacollector
    assert all(len(v) == DEFAULT_HISTORY_STEPS for v in collector.model_vars.values())
    assert len(collector._agent_records) == DEFAULT_HISTORY_STEPS
    # Everything is still in the recording.
    assert model.recording_path is not None
    loaded = load_events(model.recording_path)
    assert loaded.complete_steps == model.steps == DEFAULT_HISTORY_STEPS + 20
    # The in-memory API still answers, from the stream.
    assert [e.to_dict() for e in recorder.get_events_by_step(3)] == [
        e for e in loaded.events if e["step"] == 3
    ]


def test_bounded_data_collector_frames_are_the_tail_of_the_full_ones(
    small_auction: dict[str, Any],
) -> None:
    small_auction["steps"] = 12
    spec = validate_scenario(small_auction)
    full = MarketModel(spec, record=False, history_steps=None)
    full.run()
    tail = MarketModel(spec, record=False, history_steps=4)
    tail.run()
    assert len(tail.datacollector.model_vars["price"]) == 4
    full_frame = full.datacollector.get_model_vars_dataframe()
    assert len(full_frame) == 12
    assert tail.datacollector.get_model_vars_dataframe().equals(full_frame.tail(4))
    full_agents = full.datacollector.get_agent_vars_dataframe()
    tail_agents = tail.datacollector.get_agent_vars_dataframe()
    assert tail_agents.equals(full_agents.loc[9:12])
    with pytest.raises(ValueError, match="at least 1 step"):
        MarketModel(spec, record=False, history_steps=0)


def test_run_summary_comes_from_running_aggregates() -> None:
    spec = load_scenario("commodity_exchange")
    model = MarketModel(spec, steps=40, record=False)
    summary = model.run()
    assert not hasattr(model, "trade_prices")  # no per-trade list any more
    assert summary.trades == sum(s.count for s in model.tallies.price_stats.values()) > 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 10**9), min_size=1, max_size=40),
    st.integers(1, 2 * 10**9).map(lambda h: h / 2),
)
def test_price_stats_give_the_smith_alpha_of_the_full_price_list(
    prices: list[int], ce_price: float
) -> None:
    stats = PriceStats()
    for price in prices:
        stats.add(price)
    assert stats.count == len(prices)
    assert stats.smith_alpha(ce_price) == pytest.approx(smith_alpha(prices, ce_price), rel=1e-9)
    assert PriceStats().smith_alpha(ce_price) is None and stats.smith_alpha(None) is None


def test_ledger_journal_is_bounded_and_keeps_counting() -> None:
    ledger = Ledger(["x"], journal_limit=10)
    ledger.open_account(1, cash=1_000)
    ledger.open_account(2, cash=1_000)
    base = ledger.journal_size
    rng = random.Random(3)
    amounts = [rng.randint(1, 5) for _ in range(100)]
    for amount in amounts:
        ledger.transfer_cash(1, 2, amount)
    assert ledger.journal_size == base + 100
    assert len(ledger.journal()) <= 20  # between limit and twice the limit
    assert ledger.journal_start == ledger.journal_size - len(ledger.journal())
    last = ledger.journal(ledger.journal_size - 3)
    assert [entry[4] for entry in last] == amounts[-3:]
    assert ledger.account(2).cash == 1_000 + sum(amounts)
    ledger.check_invariants()
    unbounded = Ledger(["x"], journal_limit=None)
    unbounded.open_account(1, cash=10)
    for _ in range(50):
        unbounded.transfer_cash(1, "house", 0)
    assert len(unbounded.journal()) == unbounded.journal_size


def test_run_does_not_freeze_each_steps_objects(small_auction: dict[str, Any]) -> None:
    """gc.freeze() after every step pinned each step's cyclic garbage until the run ended."""
    small_auction["steps"] = 30
    model = MarketModel(validate_scenario(small_auction), record=False)
    frozen: list[int] = []
    model.run(progress=lambda step: frozen.append(gc.get_freeze_count()))
    assert len(frozen) == 30
    assert frozen[-1] == frozen[0]  # nothing frozen after the first step
    assert gc.get_freeze_count() == 0  # and everything given back when the run ends
