"""`load_recording` checks a type's contents when a table first needs them (issue 24, part 2).

Loading reads the envelopes and checks sizes, depth, UTF-8 and order; the contents of a type are
decoded and checked, all at once, by the first table (or event) that needs them, so a load that
uses three tables does not decode twenty. A corrupt content is still one `RecordingError` naming
the file and line, before any table is built from it; `Recording.check` and `load_recordings`
check every type at once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mesa_llm.analysis import load_recording, load_recordings
from mesa_llm.recording import RecordingError

CORPUS = Path(__file__).parents[1] / "hostile" / "recordings"
TRADE_LINE = r"line 18: trade\.buyer_id"


@pytest.fixture
def corrupt_trade(tmp_path: Path) -> Path:
    path = tmp_path / "run.jsonl"
    path.write_bytes((CORPUS / "trade_unknown_buyer.jsonl").read_bytes())
    return path


def test_a_table_that_does_not_need_the_corrupt_type_is_built(corrupt_trade: Path) -> None:
    rec = load_recording(corrupt_trade)  # the trades are not decoded yet
    assert rec.header["scenario"]["name"]
    assert len(rec.orders) > 0
    with pytest.raises(RecordingError, match=TRADE_LINE):
        rec.trades  # noqa: B018
    with pytest.raises(RecordingError, match=TRADE_LINE):  # and again: nothing half-built cached
        rec.trades_at(1)


def test_check_and_load_recordings_refuse_every_corrupt_type_at_once(corrupt_trade: Path) -> None:
    rec = load_recording(corrupt_trade)
    with pytest.raises(RecordingError, match=rf"^{corrupt_trade}: {TRADE_LINE}"):
        rec.check()
    with pytest.raises(RecordingError, match=TRADE_LINE):
        load_recordings(corrupt_trade.parent)


def test_a_non_utf8_byte_in_a_type_no_table_reads_is_refused_at_load(tmp_path: Path) -> None:
    lines = (CORPUS / "loadable" / "intact.jsonl").read_bytes().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if b'"event_type":"step_end"' in line)
    lines[at] = lines[at].replace(b'"content":{', b'"content":{"note":"\xff",', 1)
    path = tmp_path / "bytes.jsonl"
    path.write_bytes(b"".join(lines))
    with pytest.raises(RecordingError, match=rf"line {at + 1} is corrupt: not UTF-8"):
        load_recording(path)
