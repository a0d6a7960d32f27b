"""The changed agents' texts made together (`ObservationBatch._refresh_changed`): each part must be
the reference's text however the schedule windows move, and a run whose agents' recent trades roll
past a small window, with schedule windows moving and a private part changing alone, records what the agent-by-agent path records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesa_llm.agents.observation_batch import _Schedules
from mesa_llm.market import Money
from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario
from tests.support.recordings import untimed_lines


@pytest.mark.parametrize("moves", [[1] * 30, [2, 3, 1, 7, 1, 1, 4], [11, 1, 1], [0, 0, 1, 0, 2]])
def test_a_moving_window_is_the_encoders_text_of_the_units_shown(moves: list[int]) -> None:
    money = Money(0.01)
    ticks = list(range(900, 0, -17))
    schedules, start, shown = _Schedules(), 0, 5
    for move in [0, *moves]:
        start += move
        end = min(start + shown, len(ticks))
        expected = json.dumps([money.to_units(t) for t in ticks[start:end]], separators=(",", ":"))
        assert schedules.text(ticks, start, shown, money.to_units) == expected
        # the slice alone once joined (None only while not joined: never a wrong text)
        window = schedules.window(ticks, start, end) if start < end else "[]"
        assert window in (None, expected)


def _recording(columns: bool, out: Path) -> list[str]:
    overrides = ["market.recent_trades=2", "market.private_units_shown=3"]
    model = MarketModel(load_scenario("double_auction", overrides=overrides), seed=5, steps=15, output_dir=out, run_name="r")
    model.observer.columns = columns
    while model.running:
        if model.steps == 6:  # a private part shown anew with no account change (most agents trade not)
            for agent in model.traders:
                agent.units_shown = 2
        model.step()
    model.finish()
    assert model.recording_path is not None
    return [line for line in untimed_lines(Path(model.recording_path)) if '"simulation_start"' not in line]


def test_rolling_recent_trades_and_moving_windows_record_as_agent_by_agent(tmp_path: Path) -> None:
    reference = _recording(False, tmp_path / "ref")
    fast = _recording(True, tmp_path / "fast")
    assert sum('"recent_trades":[{' in line for line in fast) > 50  # trades shown, rolling
    assert fast == reference
