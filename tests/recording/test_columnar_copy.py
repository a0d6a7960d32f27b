"""The columnar copy of a recording (``REC.parquet/``, `mesa_llm.analysis.columnar`): written when a
finished run with a large stream closes (or on request), read by `load_recording` only when it belongs to its stream, giving the same
tables; a stale, truncated or edited copy is ignored with a one-line note; a copy is data, its
contents checked like the stream's."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mesa_llm.analysis import load_recording
from mesa_llm.analysis.columnar import MANIFEST, STAMP, copy_path, write_copy
from mesa_llm.recording import RecordingError
from mesa_llm.scenario import shipped_scenarios


def _tables(rec: Any) -> dict[str, pd.DataFrame]:
    out = {name: getattr(rec, name) for name in rec.TABLES}
    out.update({f"table:{t}": rec.table(t) for t in rec.event_types})
    # the events' contents are read-only mappings: compare them as dicts
    out["events"] = out["events"].assign(content=[dict(c) for c in out["events"]["content"]])
    return out


def _assert_same_tables(a: Any, b: Any) -> None:
    ta, tb = _tables(a), _tables(b)
    assert list(ta) == list(tb)
    for name in ta:
        pd.testing.assert_frame_equal(ta[name], tb[name], check_exact=True, obj=name)
    assert a.event_types == b.event_types
    assert (a.header, a.status, a.final_step, a.complete_steps) == (b.header, b.status, b.final_step, b.complete_steps)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished double-auction run (its copy written as it closed)."""
    from mesa_llm import Simulation

    out = tmp_path_factory.mktemp("finished")
    with Simulation.from_scenario("double_auction", seed=3, out=out, steps=6) as sim:
        sim.columnar_copy = True  # small: only on request
        sim.run()
    assert sim.recording_path is not None
    return Path(sim.recording_path)


@pytest.fixture
def run(finished: Path, tmp_path: Path) -> Path:
    """A private copy of the finished run and its columnar copy, for a test to spoil."""
    path = tmp_path / finished.name
    shutil.copy2(finished, path)
    shutil.copytree(copy_path(finished), copy_path(path))
    return path


def _stream_only(path: Path) -> Any:
    """The recording read from its stream (the copy moved away for the read)."""
    aside = path.with_name("aside")
    copy_path(path).rename(aside)
    try:
        rec = load_recording(path)
    finally:
        aside.rename(copy_path(path))
    assert rec.columnar is None
    return rec


@pytest.mark.parametrize("name", shipped_scenarios())
def test_the_copy_gives_the_tables_of_the_stream_for_every_shipped_scenario(
    name: str, run_scenario: Callable[..., Any]
) -> None:
    result = run_scenario(name, seed=1)
    path = result.recording
    folder = copy_path(path)
    assert not folder.exists(), "a small stream gets no copy unless asked"
    assert write_copy(path) == folder
    files = sorted(p.name for p in folder.iterdir())
    assert MANIFEST in files and all(f.endswith(".parquet") for f in files if f not in (MANIFEST, STAMP))
    from_copy = load_recording(path)
    assert from_copy.columnar == folder and from_copy.copy_note is None
    _assert_same_tables(from_copy, _stream_only(path))


def test_the_copy_lives_next_to_the_stream_with_its_hash(finished: Path) -> None:
    folder = copy_path(finished)
    assert folder == finished.with_name(finished.name + ".parquet")
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["source"] == {
        "name": finished.name,
        "size": finished.stat().st_size,
        "sha256": hashlib.sha256(finished.read_bytes()).hexdigest(),
    }
    trades = pq.read_table(folder / "trade.parquet")
    meta = json.loads(trades.schema.metadata[b"mesa_llm.copy"])
    assert meta["source"] == manifest["source"]
    assert trades.num_rows == manifest["files"]["trade"]["rows"] == load_recording(finished).count("trade")
    # each row: the event's line in the stream, its envelope, its content as recorded
    lines = finished.read_bytes().splitlines()
    row = trades.slice(0, 1).to_pylist()[0]
    event = json.loads(lines[row["position"]])
    assert event["event_type"] == "trade" and event["event_id"] == row["event_id"]
    assert json.loads(row["content"]) == event["content"]


def test_an_interrupted_run_has_no_copy_until_exported(tmp_path: Path) -> None:
    from mesa_llm import Simulation

    sim = Simulation.from_scenario("double_auction", seed=1, out=tmp_path, steps=4)
    sim.step()
    sim.step()
    path = Path(sim.recording_path or "")
    sim.mesa_model.recorder.close()  # the process dies: the stream ends without simulation_end
    assert path.is_file() and not copy_path(path).exists()
    with pytest.raises(RecordingError, match="interrupted .no simulation_end.: no columnar copy"):
        write_copy(path)
    assert not copy_path(path).exists()


@pytest.mark.parametrize(
    ("setting", "min_bytes", "written"),
    [(None, 10**12, False), (None, 1, True), (True, 10**12, True), (False, 1, False)],
)
def test_a_finished_run_gets_its_copy_as_it_closes_when_large_or_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: bool | None, min_bytes: int, written: bool
) -> None:
    import mesa_llm.simulation as simulation

    monkeypatch.setattr(simulation, "COLUMNAR_COPY_MIN_BYTES", min_bytes)
    with simulation.Simulation.from_scenario("double_auction", seed=1, out=tmp_path, steps=2) as sim:
        sim.columnar_copy = setting
        sim.run()
    path = Path(sim.recording_path or "")
    assert copy_path(path).is_dir() is written
    rec = load_recording(path)
    assert (rec.columnar == copy_path(path)) is written and rec.count("step_end") == 2


def test_a_copy_that_cannot_be_written_leaves_the_run_closed_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import mesa_llm.analysis.columnar as columnar
    from mesa_llm import Simulation

    def fails(path: Any, out: Any = None) -> Path:
        raise OSError("disk full\nsecond line")

    monkeypatch.setattr(columnar, "write_copy", fails)
    with (
        caplog.at_level(logging.WARNING, logger="mesa_llm.simulation"),
        Simulation.from_scenario("double_auction", seed=1, out=tmp_path, steps=2) as sim,
    ):
        sim.columnar_copy = True
        sim.run()
    assert sim.status == "completed" and not copy_path(Path(sim.recording_path or "")).exists()
    [line] = [r.getMessage() for r in caplog.records if "columnar copy" in r.getMessage()]
    assert line.endswith("disk full") and "\n" not in line


def _ignored(path: Path, caplog: pytest.LogCaptureFixture, words: str) -> Any:
    with caplog.at_level(logging.WARNING, logger="mesa_llm.analysis.loader"):
        rec = load_recording(path)
    assert rec.columnar is None
    assert rec.copy_note is not None and words in rec.copy_note
    assert "\n" not in rec.copy_note and str(copy_path(path)) in rec.copy_note
    assert [r.getMessage() for r in caplog.records] == [rec.copy_note]
    return rec


def test_a_stale_copy_is_ignored_and_the_stream_read(run: Path, caplog: pytest.LogCaptureFixture) -> None:
    # same size, one digit changed: only the hash tells
    data = bytearray(run.read_bytes())
    at = data.index(b'"price":') + len(b'"price":')
    data[at] = ord("7") if data[at] != ord("7") else ord("8")
    run.write_bytes(bytes(data))
    rec = _ignored(run, caplog, "SHA-256")
    assert rec.trades.equals(_stream_only(run).trades)


def test_a_longer_stream_makes_the_copy_stale(run: Path, caplog: pytest.LogCaptureFixture) -> None:
    with open(run, "ab") as f:
        f.write(b"\n")
    _ignored(run, caplog, "stale")


@pytest.mark.parametrize(
    "spoil, words",
    [
        (lambda f: f.write_bytes(f.read_bytes()[: f.stat().st_size // 2]), "truncated or edited"),
        (lambda f: f.write_bytes(f.read_bytes().replace(b"widget", b"gadget")), "truncated or edited"),
        (lambda f: f.unlink(), "missing"),
        (lambda f: f.write_bytes(b"PAR1" + b"\0" * 100 + b"PAR1"), "truncated or edited"),
    ],
    ids=["truncated", "edited", "deleted", "garbage"],
)
def test_a_truncated_or_edited_file_of_the_copy_is_ignored(
    run: Path, caplog: pytest.LogCaptureFixture, spoil: Callable[[Path], Any], words: str
) -> None:
    spoil(copy_path(run) / "trade.parquet")
    rec = _ignored(run, caplog, words)
    assert len(rec.trades) == load_recording(run).count("trade") > 0


def _rewrite(path: Path, event_type: str, change: Callable[[pa.Table], pa.Table]) -> None:
    """Edit one file of the copy and make the manifest agree (a careful forger): the copy is then
    used, and what it holds must pass the same checks as the stream."""
    folder = copy_path(path)
    file = folder / f"{event_type}.parquet"
    table = pq.read_table(file)
    pq.write_table(change(table).replace_schema_metadata(table.schema.metadata), file)
    manifest = json.loads((folder / MANIFEST).read_text())
    entry = manifest["files"][event_type]
    entry.update(size=file.stat().st_size, sha256=hashlib.sha256(file.read_bytes()).hexdigest(), rows=len(change(table)))
    (folder / MANIFEST).write_text(json.dumps(manifest))


def _set_content(table: pa.Table, row: int, content: bytes) -> pa.Table:
    values = table.column("content").to_pylist()
    values[row] = content
    return table.set_column(table.schema.get_field_index("content"), "content", pa.array(values, pa.binary()))


@pytest.mark.parametrize(
    "content, words",
    [
        (b'{"good": ' + b"[" * 150 + b"]" * 150 + b"}", "nested deeper than 100 levels"),
        (b'{"price": NaN}', "is corrupt"),
        (b'{"good": "\xff"}', "not UTF-8"),
        (b'"a string"', "not a JSON object"),
        (b'{"good": "widget", "price": "cheap", "quantity": 1, "buyer_id": 1, "seller_id": 2}', "trade.price"),
    ],
    ids=["deep", "nan", "not-utf8", "not-object", "wrong-type"],
)
def test_a_forged_copy_is_checked_like_the_stream(run: Path, content: bytes, words: str) -> None:
    _rewrite(run, "trade", lambda t: _set_content(t, 1, content))
    rec = load_recording(run)
    assert rec.columnar is not None  # the forged copy is used: what it holds is checked
    with pytest.raises(RecordingError) as err:
        rec.table("trade")
    message = str(err.value)
    assert "\n" not in message and words in message
    if words != "trade.price":  # the limits name the copy's file and row; the schema the event
        assert "trade.parquet: row 2" in message


def test_a_copy_that_loses_or_doubles_events_is_ignored(run: Path, caplog: pytest.LogCaptureFixture) -> None:
    _rewrite(run, "order", lambda t: t.slice(1))
    _ignored(run, caplog, "rows do not add up")


def test_a_copy_with_events_out_of_order_is_ignored(run: Path, caplog: pytest.LogCaptureFixture) -> None:
    steps = lambda t: t.set_column(  # noqa: E731
        t.schema.get_field_index("step"), "step", pa.array([0] * t.num_rows, pa.int64())
    )
    _rewrite(run, "simulation_end", steps)  # the last event back at step 0
    _ignored(run, caplog, "out of order")


def test_a_copy_folder_that_is_a_link_is_not_followed(run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    elsewhere = tmp_path / "elsewhere"
    copy_path(run).rename(elsewhere)
    copy_path(run).symlink_to(elsewhere, target_is_directory=True)
    _ignored(run, caplog, "symbolic link")


def test_writing_the_copy_again_replaces_it_and_leaves_other_folders_alone(run: Path, tmp_path: Path) -> None:
    (copy_path(run) / "trade.parquet").write_bytes(b"spoiled")
    assert write_copy(run) == copy_path(run)
    assert load_recording(run).columnar == copy_path(run)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(RecordingError, match="holds other files"):
        write_copy(run, mine)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_event_types_are_in_order_of_first_appearance_from_the_stream_too(finished: Path) -> None:
    from_stream = _stream_only(finished)
    first_seen = list(dict.fromkeys(json.loads(line)["event_type"] for line in finished.read_text().splitlines()))
    assert list(from_stream.event_types) == first_seen == list(load_recording(finished).event_types)
    assert list(from_stream.events["event_type"].cat.categories) == first_seen


def _streams_hashed(run: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The times the copy's reader and writer hash the stream `run` (a list that grows)."""
    import mesa_llm.analysis.columnar as columnar

    hashed: list[Path] = []
    real = columnar._sha256_file

    def counted(path: Path) -> str:
        if Path(path) == run:
            hashed.append(Path(path))
        return real(path)

    monkeypatch.setattr(columnar, "_sha256_file", counted)
    return hashed


def test_a_stream_once_hashed_is_not_hashed_again_until_it_changes(
    run: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import mesa_llm.analysis.columnar as columnar

    monkeypatch.setattr(columnar, "RACY_NS", 0)  # the stream was just written: trust a stamp at once
    hashed = _streams_hashed(run, monkeypatch)
    # the stamp that came with the copy is of another file (the run it was copied from): not trusted
    assert load_recording(run).columnar == copy_path(run) and hashed == [run]
    assert (copy_path(run) / columnar.STAMP).is_file()
    again = load_recording(run)
    assert again.columnar == copy_path(run) and hashed == [run]  # the stamp stood for the hash
    _assert_same_tables(again, _stream_only(run))
    # edited in place, same size, its mtime put back: only the ctime (and the hash) tell
    stat = run.stat()
    data = bytearray(run.read_bytes())
    at = data.index(b'"price":') + len(b'"price":')
    data[at] = ord("7") if data[at] != ord("7") else ord("8")
    run.write_bytes(bytes(data))
    os.utime(run, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert run.stat().st_size == stat.st_size and run.stat().st_mtime_ns == stat.st_mtime_ns
    _ignored(run, caplog, "SHA-256")
    assert hashed == [run, run]
    write_copy(run)  # the writer stamps the stream it hashed (as it reads it): no load hashes it
    assert load_recording(run).columnar == copy_path(run) and hashed == [run, run]


def test_a_stamp_taken_while_the_stream_was_fresh_is_not_trusted(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the copy's stream was written just now: a change in the same tick of a coarse clock could
    # keep its ctime, so every load hashes it until the stamp is taken well after that ctime
    hashed = _streams_hashed(run, monkeypatch)
    for _ in range(2):
        assert load_recording(run).columnar == copy_path(run)
    assert hashed == [run, run]


def test_a_table_of_the_copy_is_decoded_as_one_text_not_event_by_event(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mesa_llm.analysis.columnar import CopySource

    rec = load_recording(run)
    assert rec.columnar == copy_path(run)

    def one_by_one(self: Any, idx: Any) -> list[bytes]:
        raise AssertionError("a bytes object per event: the array text was not used")

    monkeypatch.setattr(CopySource, "chunks", one_by_one)
    pd.testing.assert_frame_equal(rec.trades, _stream_only(run).trades, check_exact=True)
    pd.testing.assert_frame_equal(rec.agent_states, _stream_only(run).agent_states, check_exact=True)
