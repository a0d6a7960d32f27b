"""A run spaces the cyclic collector's young passes over its steps (`mesa_llm.gc_pause`): the
generation-0 threshold is raised while a run steps and put back when the last run ends, however it
ends; a threshold a user chose (automatic passes off, or a larger one) is left alone."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from mesa_llm.gc_pause import RUN_YOUNG_OBJECTS, young_passes_spaced
from mesa_llm.model import MarketModel
from mesa_llm.scenario import validate_scenario
from mesa_llm.simulation import Simulation


@pytest.fixture
def threshold() -> Iterator[tuple[int, ...]]:
    """The process's thresholds, set to Python's defaults for the test and put back after it."""
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield gc.get_threshold()
    finally:
        gc.set_threshold(*before)


def test_a_models_run_raises_the_young_threshold_while_it_steps(small_auction: dict[str, Any],
                                                                 threshold: tuple[int, ...]) -> None:  # fmt: skip
    small_auction["steps"] = 3
    seen: list[tuple[int, ...]] = []
    MarketModel(validate_scenario(small_auction), record=False).run(progress=lambda step: seen.append(gc.get_threshold()))
    assert seen == [(RUN_YOUNG_OBJECTS, 10, 10)] * 3
    assert gc.get_threshold() == threshold


def test_a_failing_run_puts_the_threshold_back(small_auction: dict[str, Any], threshold: tuple[int, ...]) -> None:
    def fail(step: int) -> None:
        assert gc.get_threshold()[0] == RUN_YOUNG_OBJECTS
        raise RuntimeError("a callback failed")

    with pytest.raises(RuntimeError, match="a callback failed"):
        MarketModel(validate_scenario(small_auction), record=False).run(progress=fail)
    assert gc.get_threshold() == threshold


def test_a_simulations_run_and_arun_raise_it_too(threshold: tuple[int, ...]) -> None:
    seen: list[int] = []
    with Simulation.from_scenario("double_auction", seed=2, record=False) as sim:
        sim.run(2, progress=lambda step: seen.append(gc.get_threshold()[0]))
    assert gc.get_threshold() == threshold

    async def main() -> None:
        with Simulation.from_scenario("double_auction", seed=2, record=False) as sim:
            sim.subscribe("step_end", lambda e: seen.append(gc.get_threshold()[0]))
            await sim.arun(2)

    asyncio.run(main())
    assert seen == [RUN_YOUNG_OBJECTS] * 4
    assert gc.get_threshold() == threshold


def test_overlapping_runs_put_it_back_when_the_last_one_ends(threshold: tuple[int, ...]) -> None:
    outer = young_passes_spaced()
    outer.__enter__()
    inner_done = threading.Event()

    def other_run() -> None:  # a run in another thread, ending before the first
        with young_passes_spaced():
            assert gc.get_threshold()[0] == RUN_YOUNG_OBJECTS
        inner_done.set()

    thread = threading.Thread(target=other_run)
    thread.start()
    thread.join()
    assert inner_done.is_set()
    assert gc.get_threshold()[0] == RUN_YOUNG_OBJECTS  # the first run still steps
    outer.__exit__(None, None, None)
    assert gc.get_threshold() == threshold


@pytest.mark.parametrize("chosen", [0, RUN_YOUNG_OBJECTS * 2])
def test_a_threshold_the_user_chose_is_left_alone(chosen: int, threshold: tuple[int, ...]) -> None:
    gc.set_threshold(chosen, 10, 10)
    with young_passes_spaced():
        assert gc.get_threshold() == (chosen, 10, 10)
    assert gc.get_threshold() == (chosen, 10, 10)
    with young_passes_spaced(objects=500):  # never lowered either
        assert gc.get_threshold()[0] == chosen
