"""Loading recordings: JSON-lines streams and single-file JSON exports, with clear errors.

`load_events` returns the events as plain dicts (the recording contract, docs/architecture/recording-contract.md), the header
(content of ``simulation_start``), and whether the run was cut. A stream cut by a crash is not an
error: its incomplete last line and the events of its unfinished last step are dropped, so that
every step returned is intact, and a warning says so. Corruption anywhere else is an error that
names the file and the line: each event is checked, as it is decoded, against the field types of
`mesa_llm.recording.schema` (lines of at most a few MB, nesting depth bounded, no NaN), events must
come in step order, and a ``simulation_start`` header, when there is one, comes first. An empty
file is an error. Pickle files are refused: loading one can execute code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesa_llm.recording.events import SIMULATION_END, SIMULATION_START, STEP_END, STEP_START
from mesa_llm.recording.schema import (
    MAX_LINE_BYTES,
    LineError,
    agent_ids,
    content_problem,
    decode_json,
    envelope_problem,
)

__all__ = ["LoadedRecording", "RecordingError", "load_events"]

_HEAD_BYTES = 4096


class RecordingError(ValueError):
    """A recording cannot be read; the message names the file and the line or what is wrong."""


@dataclass
class LoadedRecording:
    """A loaded recording.

    Attributes:
        path: the file read.
        header: content of the first ``simulation_start`` event, if any.
        events: the events, as dicts with the keys of the recording contract.
        truncated: the stream was cut: its last line is incomplete or it has no ``simulation_end``.
        complete_steps: the last step whose ``step_end`` was recorded (see `load_events` for
            recordings without step markers).
        warning: what was wrong with a cut stream and what was dropped; None when intact.
        metadata: the ``metadata`` of a single-file JSON export; None for a stream.
    """

    path: Path
    header: dict[str, Any] | None
    events: list[dict[str, Any]]
    truncated: bool
    complete_steps: int
    warning: str | None
    metadata: dict[str, Any] | None = None


def load_events(path: str | Path) -> LoadedRecording:
    """Load a recording: a ``.jsonl`` stream (one event per line) or a single-file JSON export.

    The format is detected from the content (a JSON object whose first key is ``"metadata"`` is an
    export), else from the suffix (``.json`` is an export unless it holds several JSON values, one
    per line; anything else is JSON lines).

    For a cut stream (``truncated``): the incomplete last line is ignored and, when there is no
    ``simulation_end``, the events after the last ``step_end`` are dropped. A stream without any
    step markers (e.g. from the mesa-llm recorder's users) loses the events of its last step instead,
    since that step may be incomplete.

    Raises:
        RecordingError: missing or unreadable file, pickle file, a corrupt line that is not the last,
            an event that is not an object with ``event_type`` (str) and ``step`` (int), or an
            export that is not valid JSON of the expected shape.
    """
    p = Path(path)
    if not p.exists():
        raise RecordingError(f"{p}: no such recording file")
    if not p.is_file():
        raise RecordingError(f"{p}: not a file")
    try:
        with open(p, "rb") as f:
            head = f.read(_HEAD_BYTES)
    except OSError as exc:
        raise RecordingError(f"{p}: cannot be read: {exc}") from exc
    if head.startswith(b"\x80") or p.suffix.lower() in {".pkl", ".pickle"}:
        raise RecordingError(
            f"{p}: pickle recordings are not supported (loading one can execute code); "
            "record with the JSON-lines stream or save(format='json')"
        )
    stripped = head.lstrip()
    if stripped.startswith(b"{") and stripped[1:].lstrip().startswith(b'"metadata"'):
        return _load_export(p)
    if p.suffix.lower() == ".json":
        return _load_export(p, jsonl_fallback=True)
    return _load_jsonl(p)


class _Order:
    """Checks that events come as a recorder writes them: the header first and once, steps never
    going back, one ``step_start`` per step; and the contents against the schema."""

    def __init__(self) -> None:
        self.count = 0
        self.step = 0
        self.started = -1
        self.agents: frozenset[int] | None = None

    def problem(self, event: dict[str, Any]) -> str | None:
        """What is wrong with the next event (its envelope is checked), or None."""
        event_type, step = event["event_type"], event["step"]
        event.setdefault("content", {})  # the readers' view of an event without content
        self.count += 1
        if event_type == SIMULATION_START and self.count > 1:
            return "simulation_start is not the first event (two runs in one file?)"
        if step < self.step:
            return f"step {step} comes after step {self.step}: events out of order"
        self.step = step
        if event_type == STEP_START:
            if step <= self.started:
                return f"step_start of step {step} repeats or goes back"
            self.started = step
        problem = content_problem(event_type, event["content"], self.agents)
        if problem is None and event_type == SIMULATION_START:
            self.agents = agent_ids(event["content"])
        return problem


def _header(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    for event in events:
        if event["event_type"] == SIMULATION_START:
            content = event.get("content")
            return content if isinstance(content, dict) else None
    return None


def _last_step_end(events: list[dict[str, Any]]) -> int | None:
    for i in range(len(events) - 1, -1, -1):
        if events[i]["event_type"] == STEP_END:
            return i
    return None


def _load_export(p: Path, jsonl_fallback: bool = False) -> LoadedRecording:
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise RecordingError(f"{p}: cannot be read: {exc}") from exc
    if not raw.strip():
        raise RecordingError(f"{p}: empty file: no recording in it")
    try:
        json.loads(raw)  # only for the position of a syntax error; the checked decode follows
    except json.JSONDecodeError as exc:
        if jsonl_fallback and exc.msg == "Extra data":  # JSON lines in a .json file
            return _load_jsonl(p)
        raise RecordingError(
            f"{p}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except (ValueError, RecursionError):
        pass  # not UTF-8, or too deep: said below
    try:
        data = decode_json(raw, limit=None)
    except LineError as exc:
        raise RecordingError(f"{p}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise RecordingError(
            f"{p}: not a recording export (expected an object with an 'events' list)"
        )
    events: list[dict[str, Any]] = data["events"]
    if not events:
        raise RecordingError(f"{p}: the export holds no events")
    order = _Order()
    for i, event in enumerate(events):
        problem = envelope_problem(event)
        if problem is not None:
            raise RecordingError(f"{p}: events[{i}] is not an event: {problem}")
        problem = order.problem(event)
        if problem is not None:
            raise RecordingError(f"{p}: events[{i}]: {problem}")
    metadata = data.get("metadata")
    if not isinstance(metadata, dict):
        metadata = None
    last_end = _last_step_end(events)
    if last_end is not None:
        complete_steps = int(events[last_end]["step"])
    elif metadata is not None and isinstance(metadata.get("total_steps"), int):
        complete_steps = int(metadata["total_steps"])
    else:
        complete_steps = int(events[-1]["step"]) if events else 0
    return LoadedRecording(
        path=p,
        header=_header(events),
        events=events,
        truncated=False,
        complete_steps=complete_steps,
        warning=None,
        metadata=metadata,
    )


def _lines(f: Any) -> Any:
    """(line number, bytes) of every line, each read with a bound (a line longer than the limit
    is returned cut to limit + 1 bytes without its newline, and the reader stops at it)."""
    lineno = 0
    while True:
        raw = f.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        lineno += 1
        yield lineno, raw


def _load_jsonl(p: Path) -> LoadedRecording:
    events: list[dict[str, Any]] = []
    bad_line: tuple[int, str] | None = None  # a cut line: an error unless it is the last
    order = _Order()
    try:
        with open(p, "rb") as f:
            for lineno, raw in _lines(f):
                if not raw.strip():
                    continue
                if bad_line is not None:
                    raise RecordingError(
                        f"{p}: line {bad_line[0]} is corrupt ({bad_line[1]}) and is not the last "
                        "line, so this is not a cut run"
                    )
                if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                    raise RecordingError(
                        f"{p}: line {lineno} is longer than {MAX_LINE_BYTES:,} bytes"
                    )
                try:
                    obj = decode_json(raw)
                except LineError as exc:
                    if not exc.cut:
                        raise RecordingError(f"{p}: line {lineno} is corrupt: {exc}") from None
                    bad_line = (lineno, str(exc))
                    continue
                problem = envelope_problem(obj)
                if problem is not None:
                    raise RecordingError(f"{p}: line {lineno} is not an event: {problem}")
                problem = order.problem(obj)
                if problem is not None:
                    raise RecordingError(f"{p}: line {lineno}: {problem}")
                events.append(obj)
    except OSError as exc:
        raise RecordingError(f"{p}: cannot be read: {exc}") from exc
    if not events:
        cause = "it holds no events" if bad_line is None else "its only line is cut"
        raise RecordingError(f"{p}: empty recording: {cause}")

    has_end = any(event["event_type"] == SIMULATION_END for event in events)
    truncated = bad_line is not None or not has_end
    last_end = _last_step_end(events)
    has_step_markers = last_end is not None or any(
        event["event_type"] == STEP_START for event in events
    )

    kept = events
    if last_end is not None:
        complete_steps = int(events[last_end]["step"])
    elif has_step_markers:
        complete_steps = 0
    else:  # no step markers: the steps of the events are all we have
        final_step = int(events[-1]["step"]) if events else 0
        complete_steps = final_step if has_end or final_step == 0 else final_step - 1

    if not has_end:
        if last_end is not None:
            kept = events[: last_end + 1]
        elif has_step_markers:
            first_start = next(
                i for i, event in enumerate(events) if event["event_type"] == STEP_START
            )
            kept = events[:first_start]
        elif events and complete_steps < int(events[-1]["step"]):
            kept = [event for event in events if event["step"] <= complete_steps]

    warning: str | None = None
    if truncated:
        if bad_line is not None:
            cause = f"{p.name}: the last line ({bad_line[0]}) is incomplete"
        else:
            cause = f"{p.name}: there is no simulation_end event"
        if has_end:
            warning = f"{cause}; the run had ended (simulation_end) before it, nothing else is lost"
        else:
            dropped = len(events) - len(kept)
            intact = (
                "no step is intact"
                if complete_steps < 1
                else "step 1 is intact"
                if complete_steps == 1
                else f"steps 1-{complete_steps} are intact"
            )
            if dropped:
                cut_step = int(events[len(kept)]["step"])
                warning = (
                    f"{cause}: the run was cut during step {cut_step}; {intact} "
                    f"({dropped} event(s) of step {cut_step} dropped)"
                )
            else:
                warning = f"{cause}: the run was cut after step {complete_steps}; {intact}"

    return LoadedRecording(
        path=p,
        header=_header(kept),
        events=kept,
        truncated=truncated,
        complete_steps=complete_steps,
        warning=warning,
    )
