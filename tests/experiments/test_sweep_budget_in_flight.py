"""The sweep's LLM budget with two workers: a run's cap is what is left after what was spent AND
what the runs still in flight may spend (their reservations), so spending never passes the budget
however the runs finish; a run waits for a reservation to come back rather than start over it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesa_llm.experiments.budget import RunEstimate
from mesa_llm.experiments.design import PlannedRun
from mesa_llm.experiments.spec import SweepSpec
from mesa_llm.experiments.store import ResultsStore
from mesa_llm.experiments.sweep import SweepTally, _execute, _Resolved

BUDGET = 1.0


class TwoWorkers:
    """An executor with two workers whose runs spend half of what they are allowed, the first (the
    pilot) a tenth of it; it records at each start the most that spent + reserved came to."""

    note = None

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.prefetch = 2 * capacity
        self.in_flight: dict[str, float] = {}
        self.spent = 0.0
        self.most_in_flight = 0
        self.started: list[tuple[str, float]] = []
        self.worst = 0.0

    def submit(self, tag: str, task: dict[str, Any]) -> None:
        cap = task["max_cost_usd"]
        assert cap is not None and cap > 0, (tag, cap)
        self.in_flight[tag] = cap
        self.started.append((tag, cap))
        self.most_in_flight = max(self.most_in_flight, len(self.in_flight))
        self.worst = max(self.worst, self.spent + sum(self.in_flight.values()))

    def wait(self) -> list[tuple[str, dict[str, Any]]]:
        tag = next(iter(self.in_flight))  # the oldest run finishes first, the other is still running
        cap = self.in_flight.pop(tag)
        cost = cap / 10 if tag == self.started[0][0] else cap / 2
        self.spent += cost
        return [(tag, {"status": "ok", "metrics": {}, "cost_usd": cost, "wall_s": 0.01})]

    def pending(self) -> int:
        return len(self.in_flight)

    def close(self) -> None:
        pass


def _plan(n: int) -> list[tuple[PlannedRun, _Resolved]]:
    return [
        (PlannedRun(run_id=f"llm.p0.r{i}", condition="llm", point=0, replicate=i, seed=100 + i, factors={}),
         _Resolved(key=f"k{i}", error=None, estimate=RunEstimate(llm_agents=2, calls=10, cost_usd=0.2)))
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.parametrize("workers", [2, 3])
def test_runs_in_flight_hold_their_share_of_the_budget(tmp_path: Path, workers: int) -> None:
    spec = SweepSpec(name="b", scenario="llm_double_auction", replicates=12)
    todo = _plan(12)
    store = ResultsStore(tmp_path / "out")
    store.open("name: b\n")
    tally = SweepTally(total=len(todo))
    executor = TwoWorkers(workers)
    notes: list[str] = []
    try:
        _execute(spec, "llm_double_auction", tmp_path / "out", todo, executor, store, tally, BUDGET, notes.append,
                 None, [r.run_id for r, _ in todo], [], {})  # fmt: skip
    finally:
        store.close()
    assert executor.started[0][1] == pytest.approx(BUDGET)  # the pilot alone, with everything
    assert executor.most_in_flight == workers  # the runs did overlap: the case under test
    # what was spent plus what the runs in flight may still spend never passed the budget
    assert executor.worst <= BUDGET + 1e-9
    assert tally.cost_usd == pytest.approx(executor.spent) and executor.spent <= BUDGET + 1e-9
    # a run that finds the rest reserved waits for it (it does not start with nothing, nor stop the sweep)
    assert tally.done + tally.not_run == 12 and tally.done >= 4
    second, third = executor.started[1][1], executor.started[2][1]
    left = BUDGET - BUDGET / 10
    assert second == pytest.approx(left / workers) and third == pytest.approx(left / workers)
    rows = list(store.read())
    assert [r["status"] for r in rows].count("not_run_budget") == tally.not_run
