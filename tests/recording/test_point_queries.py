"""Point queries into a loaded recording: `Recording.agent_state`, `trades_at`, `messages_of`.

Each answer is checked against a plain pandas filter of the whole table, on a recording written by
the real `SimulationRecorder` (the synthetic market of benchmarks/bench_analysis.py), and on a
stream whose steps and agents come in an order the indexes must not assume.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

from mesa_llm.analysis import Recording, load_recording

ROOT = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_analysis_for_queries", ROOT / "benchmarks" / "bench_analysis.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    folder = tmp_path_factory.mktemp("queries")
    return load_recording(_bench().write_recording(folder, 4000))


def _expected_state(rec: Recording, agent: int, step: int) -> dict[str, Any] | None:
    frame = rec.agent_states
    mine = frame[(frame["agent_id"] == agent) & (frame["step"] <= step)]
    return None if mine.empty else mine.iloc[-1].to_dict()


def test_agent_state_is_the_last_state_recorded_at_or_before_the_step(rec: Recording) -> None:
    recorded = sorted(set(rec.agent_states["step"].tolist()))
    assert len(recorded) >= 2  # states every tenth step: the query must look back
    first = recorded[0]
    for agent in (1, 7, 21, 40):
        assert rec.agent_state(agent, first - 1) is None
        for step in (first, first + 1, recorded[1] - 1, recorded[1], rec.final_step + 5):
            got = rec.agent_state(agent, step)
            assert got == _expected_state(rec, agent, step)
            assert got is not None and got["agent_id"] == agent
    assert rec.agent_state(first, recorded[1])["step"] == recorded[1]  # type: ignore[index]
    assert rec.agent_state(999, rec.final_step) is None  # no such agent


def test_trades_at_gives_exactly_the_trades_of_that_step(rec: Recording) -> None:
    trades = rec.trades
    for step in range(0, rec.final_step + 2):
        got = rec.trades_at(step)
        pd.testing.assert_frame_equal(got, trades[trades["step"] == step])
    assert rec.trades_at(rec.final_step + 1).empty


def test_messages_of_gives_what_the_agent_sent_or_was_sent(rec: Recording) -> None:
    messages = rec.messages
    assert messages["broadcast"].any() and not messages["broadcast"].all()
    for agent in (1, 2, 20, 33, 40, 999):
        direct = [
            row.sender_id == agent or agent in (row.recipient_ids or [])
            for row in messages.itertuples()
        ]
        mine = pd.Series(direct, index=messages.index)
        pd.testing.assert_frame_equal(rec.messages_of(agent, broadcasts=False), messages[mine])
        pd.testing.assert_frame_equal(
            rec.messages_of(agent), messages[mine | messages["broadcast"]]
        )


def test_queries_do_not_assume_the_table_is_sorted(tmp_path: Path) -> None:
    """A recording read by the reader (here: a JSON export) whose states come agent by agent."""
    events: list[dict[str, Any]] = [
        {"event_id": "e0", "timestamp": "2026-01-01T00:00:00+00:00", "step": 0, "agent_id": None,
         "event_type": "simulation_start", "content": {"scenario": {"name": "t"}, "agents": [
             {"agent_id": 1}, {"agent_id": 2}]}},
    ]  # fmt: skip
    states = [(2, 1, 5.0), (1, 1, 10.0), (2, 3, 6.0), (1, 3, 11.0), (1, 3, 12.0)]
    for i, (agent, step, cash) in enumerate(states):
        events.append(
            {"event_id": f"s{i}", "timestamp": "2026-01-01T00:00:00+00:00", "step": step,
             "agent_id": agent, "event_type": "agent_state", "content": {"cash": cash}}
        )  # fmt: skip
    events.append(
        {"event_id": "end", "timestamp": "2026-01-01T00:00:00+00:00", "step": 3, "agent_id": None,
         "event_type": "simulation_end", "content": {"status": "completed", "final_step": 3}}
    )  # fmt: skip
    path = tmp_path / "export.json"
    path.write_text(json.dumps({"metadata": {}, "events": events}))
    rec = load_recording(path)
    assert rec.agent_state(1, 0) is None
    assert rec.agent_state(1, 2)["cash"] == 10.0  # type: ignore[index]
    assert rec.agent_state(1, 3)["cash"] == 12.0  # type: ignore[index]  # the later of one step
    assert rec.agent_state(2, 3)["cash"] == 6.0  # type: ignore[index]
