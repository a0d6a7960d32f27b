"""The events table's content column (`mesa_llm.analysis.content_column`): no object per event
until a cell is read, and cells that behave as the column of mappings it replaces (filtering,
sorting, reindexing, stacking, writing, copying)."""

from __future__ import annotations

import copy
import gc
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mesa_llm.analysis import LazyContent, load_recording
from mesa_llm.analysis.content_column import ContentDtype
from mesa_llm.analysis.loader import MultiRecording


def _run(out: Path, seed: int) -> Path:
    from mesa_llm import Simulation

    with Simulation.from_scenario("double_auction", seed=seed, out=out, steps=4) as sim:
        sim.run()
    return Path(sim.recording_path or "")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One double-auction run's stream."""
    return _run(tmp_path_factory.mktemp("content_column"), seed=5)


def _contents(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line)["content"] for line in path.read_text().splitlines()]


def _lazy_contents() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, LazyContent))


def test_the_events_table_makes_no_content_object_until_a_cell_is_read(recorded: Path) -> None:
    rec = load_recording(recorded)
    before = _lazy_contents()
    events = rec.events
    assert isinstance(events["content"].dtype, ContentDtype)
    assert _lazy_contents() == before  # was one per event
    cell = events["content"].iloc[3]
    assert isinstance(cell, LazyContent) and dict(cell) == _contents(recorded)[3]


def test_the_cells_are_the_contents_however_the_table_is_cut(recorded: Path) -> None:
    events, contents = load_recording(recorded).events, _contents(recorded)
    assert [dict(c) for c in events["content"]] == contents
    as_objects = events["content"].to_numpy()
    assert as_objects.dtype == object and isinstance(as_objects[0], LazyContent)
    trades = events[events["event_type"] == "trade"]
    assert [dict(c) for c in trades["content"]] == [contents[i] for i in trades.index]
    backwards = events.sort_values("step", ascending=False, kind="stable")
    assert [dict(c) for c in backwards["content"]] == [contents[i] for i in backwards.index]
    assert [dict(c) for c in events["content"].iloc[::-3]] == contents[::-3]
    missing = events["content"].reindex([1, len(events) + 5])
    assert dict(missing.iloc[0]) == contents[1] and missing.isna().tolist() == [False, True]
    pieces = pd.concat([events.iloc[:3], events.iloc[5:7]])
    assert [dict(c) for c in pieces["content"]] == contents[:3] + contents[5:7]
    assert bool((events["content"] == events["content"]).all())
    assert (events["content"].iloc[:2] == contents[:2]).tolist() == [True, True]


def test_the_events_of_several_runs_stack(recorded: Path, tmp_path: Path) -> None:
    other = _run(tmp_path, seed=6)
    stacked = MultiRecording([load_recording(recorded), load_recording(other)]).events
    assert [dict(c) for c in stacked["content"]] == _contents(recorded) + _contents(other)


def test_a_copy_of_the_table_can_be_written_to_and_the_recording_keeps_its_contents(recorded: Path) -> None:
    rec = load_recording(recorded)
    edited = rec.events.copy()
    edited.at[0, "content"] = {"note": "mine"}
    trades = edited["event_type"] == "trade"
    edited.loc[trades, "content"] = [{"note": "a trade"}] * int(trades.sum())
    assert edited["content"].iloc[0] == {"note": "mine"}
    assert all(c == {"note": "a trade"} for c in edited.loc[trades, "content"])
    assert [dict(c) for c in rec.events["content"]] == _contents(recorded)


def test_a_copied_column_holds_dicts_not_the_recording(recorded: Path) -> None:
    # what pickling the column gives too (a LazyContent pickles as its dict)
    column = copy.copy(load_recording(recorded).events["content"].array)
    cells = list(column)
    assert all(type(c) is dict for c in cells) and cells == _contents(recorded)
