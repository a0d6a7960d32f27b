"""Corrupt recordings read back: every reader refuses them with one line naming the file and the
line, and none lets a traceback through (issue 8, part 7).

The corpus is ``tests/hostile/recordings/`` (written by ``tests/hostile/make_recordings.py`` from a
real one-step run). Each file goes through `load_recording`, ``analyze``, ``compare`` and
``replay --verify``; a recording cut by a crash still loads, with a warning.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mesa_llm.analysis import load_recording, load_recordings
from mesa_llm.analysis.metrics import summary_metrics
from mesa_llm.cli import app
from mesa_llm.recording import RecordingError, load_events
from mesa_llm.recording.schema import MAX_LINE_BYTES, nesting_depth

pytestmark = pytest.mark.usefixtures("no_network")  # replays and cassettes must not connect

CORPUS = Path(__file__).parents[1] / "hostile" / "recordings"
LOADABLE = CORPUS / "loadable"

#: what each corrupt recording must be refused for (a regex of the message after the file name)
EXPECTED: dict[str, str] = {
    "trade_price_not_a_number.jsonl": r"line 18: trade\.price: expected a number, got 'abc'",
    "header_agents_not_a_list.jsonl": r"line 1: simulation_start\.agents: expected a list, got 'nope'",
    "trade_unknown_buyer.jsonl": r"line 18: trade\.buyer_id: 999 is not an agent of the header",
    "llm_call_content_is_a_list.jsonl": r"line 9 is not an event: content: expected an object, got a list",
    "order_content_not_an_object.jsonl": r"line 6 is not an event: content: expected an object",
    "step_not_an_integer.jsonl": r"line 6 is not an event: step: expected a non-negative integer, got '1'",
    "agent_id_not_an_integer.jsonl": r"line 5 is not an event: agent_id: expected an integer, got 'x'",
    "header_tick_size_zero.jsonl": r"line 1: simulation_start\.tick_size: expected a number from",
    "markup_in_a_value.jsonl": r"line 18: trade\.quantity: expected a non-negative integer, got '\[/\]\[bold red\]1'",
    "step_absurdly_large.jsonl": r"line 18 is not an event: step: expected a non-negative integer",
    "missing_header.jsonl": r"no simulation_start header",
    "header_twice.jsonl": r"line 4: simulation_start is not the first event",
    "steps_out_of_order.jsonl": r"line 4: step 1 comes after step 5: events out of order",
    "empty.jsonl": r"empty recording",
    "deep_nesting.jsonl": r"line 3 is corrupt: JSON nested 100000 deep \(at most 100\)",
    "non_object_line.jsonl": r"line 6 is not an event: expected a JSON object, got a list",
    "nan_literal.jsonl": r"line 18 is corrupt: NaN is not a number JSON allows",
    "infinity_literal.jsonl": r"line 20 is corrupt: Infinity is not a number JSON allows",
    "non_utf8_bytes.jsonl": r"line 6 is corrupt: not UTF-8 text \(byte 0xff at column \d+\)",
    "export_trade_seller_not_an_integer.json": r"events\[17\]: trade\.seller_id: expected an integer, got 'seller'",
}
#: the replay names no line when the header it needs is not there at all
REPLAY_EXPECTED = {"missing_header.jsonl": r"no simulation_start header with the scenario"}

runner = CliRunner()


def corpus() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.is_file() and p.suffix in (".jsonl", ".json"))


def test_the_corpus_is_the_expected_one() -> None:
    assert [p.name for p in corpus()] == sorted(EXPECTED)
    assert len(EXPECTED) >= 12


def _one_error_line(output: str, path: Path, expected: str) -> None:
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith(f"error: {path}: "), output
    assert re.search(expected, lines[0]), lines[0]


@pytest.mark.parametrize("path", corpus(), ids=lambda p: p.name)
def test_load_recording_refuses_with_one_recording_error(path: Path) -> None:
    started = time.perf_counter()
    with pytest.raises(RecordingError) as info:
        rec = load_recording(path)
        summary_metrics(rec)  # nothing corrupt may wait for the metrics: see the loader's checks
        pytest.fail("loaded")  # pragma: no cover
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert re.search(EXPECTED[path.name], message), message
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("name", ["infinity_literal.jsonl", "nan_literal.jsonl"])
def test_without_orjson_the_stdlib_decoder_refuses_the_same_way(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """orjson is optional: the stdlib fallback must refuse NaN/Infinity too, with the same line."""
    path = CORPUS / name
    monkeypatch.setitem(__import__("sys").modules, "orjson", None)  # `import orjson` now fails
    with pytest.raises(RecordingError) as info:
        summary_metrics(load_recording(path))
    assert re.search(EXPECTED[name], str(info.value)), str(info.value)


@pytest.mark.parametrize("path", corpus(), ids=lambda p: p.name)
def test_analyze_says_one_line_and_exits_2(path: Path) -> None:
    result = runner.invoke(app, ["analyze", str(path)], env={"COLUMNS": "80"})
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    _one_error_line(result.output, path, EXPECTED[path.name])


@pytest.mark.parametrize("path", corpus(), ids=lambda p: p.name)
def test_replay_verify_says_one_line_and_exits_2(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["replay", str(path), "--verify", "--out", str(out)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    _one_error_line(result.output, path, REPLAY_EXPECTED.get(path.name, EXPECTED[path.name]))
    assert not out.exists() or not any(out.iterdir())  # nothing was run


@pytest.mark.parametrize(
    "name", ["trade_price_not_a_number.jsonl", "llm_call_content_is_a_list.jsonl", "empty.jsonl"]
)
def test_compare_says_one_line_and_exits_2(name: str) -> None:
    path = CORPUS / name
    result = runner.invoke(app, ["compare", str(LOADABLE / "intact.jsonl"), str(path)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    _one_error_line(result.output, path, EXPECTED[name])


def test_load_recordings_names_the_corrupt_file(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes((LOADABLE / "intact.jsonl").read_bytes())
    (tmp_path / "b.jsonl").write_bytes((CORPUS / "trade_unknown_buyer.jsonl").read_bytes())
    with pytest.raises(RecordingError, match=r"b\.jsonl: line 18: trade\.buyer_id"):
        load_recordings(tmp_path)


def test_an_intact_recording_of_the_corpus_analyses_and_replays(tmp_path: Path) -> None:
    # the corpus is made of a real run: intact, every reader takes it
    path = LOADABLE / "intact.jsonl"
    assert load_recording(path).warning is None
    assert runner.invoke(app, ["analyze", str(path)]).exit_code == 0
    result = runner.invoke(app, ["replay", str(path), "--verify", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output


def test_a_cut_last_line_loads_with_a_warning(tmp_path: Path) -> None:
    path = LOADABLE / "cut_last_line.jsonl"
    rec = load_recording(path)
    assert rec.truncated and rec.complete_steps == 1
    assert rec.warning is not None and "is incomplete" in rec.warning
    assert len(rec.trades) > 0  # the intact step is all there
    result = runner.invoke(app, ["analyze", str(path)])
    assert result.exit_code == 0 and "note: cut_last_line.jsonl: the last line" in result.output
    loaded = load_events(path)
    assert loaded.truncated and loaded.events[-1]["event_type"] == "step_end"


def test_a_line_cut_inside_a_utf8_character_is_a_cut_not_corruption(tmp_path: Path) -> None:
    whole = (LOADABLE / "intact.jsonl").read_bytes().rstrip(b"\n")
    last = whole.rfind(b"\n")
    path = tmp_path / "cut.jsonl"
    path.write_bytes(whole[: last + 1] + b'{"event_id":"x","text":"caf\xc3')
    assert load_recording(path).truncated


def test_a_line_longer_than_the_limit_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    lines = (LOADABLE / "intact.jsonl").read_text().splitlines()
    plan = next(i for i, line in enumerate(lines) if '"event_type":"plan"' in line)
    event = json.loads(lines[plan])
    event["content"]["text"] = "x" * (MAX_LINE_BYTES + 10)
    lines[plan] = json.dumps(event, separators=(",", ":"))
    path = tmp_path / "long.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordingError, match=rf"long\.jsonl: line {plan + 1} is longer than"):
        load_recording(path)
    with pytest.raises(RecordingError, match=rf"line {plan + 1} is longer than"):
        load_events(path)


def test_nesting_under_the_recursion_limit_but_over_the_depth_limit_is_refused(
    tmp_path: Path,
) -> None:
    # 500 deep decodes (orjson and json both take it) but would break code walking it later
    lines = (LOADABLE / "intact.jsonl").read_text().splitlines()
    order = next(i for i, line in enumerate(lines) if '"event_type":"order"' in line)
    event = json.loads(lines[order])
    event["content"]["note"] = json.loads("[" * 500 + "]" * 500)
    lines[order] = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    path = tmp_path / "deep.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordingError, match=rf"line {order + 1} is corrupt: JSON nested 502 deep"):
        load_recording(path)


def test_nesting_depth_ignores_brackets_inside_strings() -> None:
    assert nesting_depth(b'{"a": "[[[[" }') == 1
    text = json.dumps({"s": "]" * 300 + '\\"', "v": json.loads("[" * 150 + "]" * 150)}).encode()
    assert nesting_depth(text) == 151


def test_a_corrupt_large_content_found_by_a_table_is_a_recording_error(tmp_path: Path) -> None:
    # LLM calls are checked when a table decodes them (not at load): still one RecordingError
    lines = (LOADABLE / "intact.jsonl").read_text().splitlines()
    call = next(i for i, line in enumerate(lines) if '"event_type":"llm_call"' in line)
    event = json.loads(lines[call])
    event["content"]["usage"] = {"prompt_tokens": "many"}
    lines[call] = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(lines) + "\n")
    one = load_recording(path).events["content"].iloc[call]  # decoded alone, on first access
    with pytest.raises(RecordingError, match=rf"line {call + 1}: llm_call\.usage"):
        dict(one)
    rec = load_recording(path)
    with pytest.raises(
        RecordingError,
        match=rf"line {call + 1}: llm_call\.usage\.prompt_tokens: expected an integer",
    ):
        rec.llm_calls  # noqa: B018
    result = runner.invoke(app, ["analyze", str(path)])
    assert result.exit_code == 2
    _one_error_line(result.output, path, r"llm_call\.usage\.prompt_tokens")
