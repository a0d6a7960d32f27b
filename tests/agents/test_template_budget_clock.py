"""A render's budget reads its clock every few operations, yet stops at the exact operation limit,
at the size limit and at an earlier failure at once (mesa_llm.agents.template_sandbox)."""

from __future__ import annotations

from typing import Any

import pytest

from mesa_llm.agents import template_sandbox as sandbox
from mesa_llm.agents.template_sandbox import TemplateBudgetError, _RenderBudget


class _Clock:
    """Stands in for the module's ``time``: counts readings, and can jump past the deadline."""

    def __init__(self) -> None:
        self.readings = 0
        self.now = 1000.0

    def monotonic(self) -> float:
        self.readings += 1
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(sandbox, "time", fake)
    return fake


def test_the_clock_is_read_once_per_clock_every_operations(clock: _Clock) -> None:
    budget = _RenderBudget()
    clock.readings = 0
    for _ in range(10 * sandbox.CLOCK_EVERY):
        budget.step()
    assert clock.readings == 10


def test_a_render_past_its_time_stops_within_clock_every_operations(clock: _Clock) -> None:
    budget = _RenderBudget()
    budget.step()
    clock.now += sandbox.MAX_RENDER_SECONDS + 1
    with pytest.raises(TemplateBudgetError, match="took longer than"):
        for _ in range(sandbox.CLOCK_EVERY + 1):
            budget.step()


def test_the_operation_limit_is_exact(clock: _Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "MAX_TEMPLATE_OPS", 100)  # not a multiple of CLOCK_EVERY
    budget = _RenderBudget()
    for _ in range(100):
        budget.step()
    with pytest.raises(TemplateBudgetError, match="ran more than 100 operations"):
        budget.step()
    assert budget.ops == 101


def test_the_size_limit_and_an_earlier_failure_stop_the_next_operation(clock: _Clock) -> None:
    budget = _RenderBudget()
    budget.step()
    budget.step()  # the clock was read at the first operation: the next reading is far off
    with pytest.raises(TemplateBudgetError, match="built more than"):
        budget.step(sandbox.MAX_TEMPLATE_BUILT_CHARS + 1)
    other = _RenderBudget()
    other.step()
    caught: Any = other.fail("a failure something caught")
    assert isinstance(caught, TemplateBudgetError)
    with pytest.raises(TemplateBudgetError, match="a failure something caught"):
        other.step()
