"""Recordings as pandas DataFrames: fast loading of JSON-lines streams and exports, one table per event type.

`load_recording` reads one recording (the JSON-lines stream of `SimulationRecorder`, or its
single-file JSON export) into a `Recording`, whose tables are built on first use and cached;
`load_recordings` stacks many runs into a `MultiRecording` with a ``run_id`` column.

Speed (a million events in a few seconds) comes from never handling events one by one in Python:

* the file is memory-mapped; the envelope of every line (event_id, timestamp, step, agent_id,
  event_type) is cut out by a regular expression, a chunk of lines per call, and its columns are
  converted with numpy, remembering where each line's content starts;
* contents are decoded per event type, from those offsets, a chunk of lines per ``json.loads``
  call, and only when something needs them: a table, or an event's content read from the events
  table (a `LazyContent` mapping, which decodes all the events of its type at once, except the
  large observations and LLM calls, decoded one by one until their table is built);
* Python's cyclic garbage collector is paused while millions of containers are created.

Since contents are read back from the file when first needed, the file must stay as it was while
its `Recording` is in use (a changed file raises `RecordingError`).

A recording is untrusted input, checked once where it is decoded (`mesa_llm.recording.schema`):
the envelopes, line sizes, nesting depth, UTF-8 and event order when it is loaded; the contents of
a type when a table (or an event's content) first needs them, all the events of the type at once
(`Recording.check` checks every type but the large observations and LLM calls at once;
`load_recordings` calls it). A problem is a `RecordingError` naming the file and the line; a recording without its
``simulation_start`` header, or empty, is one too.

A finished stream with its columnar copy beside it (``REC.parquet/``, `mesa_llm.analysis.columnar`)
is read from the copy when the copy belongs to it (sizes and SHA-256 hashes match; the stream's
hash is kept with its file identity, `mesa_llm.analysis.columnar.STAMP`): the envelopes
come from Parquet columns, the contents from the copy's bytes, with the same checks and tables.

A stream that was cut (incomplete last line, no ``simulation_end``), that is not in the recorder's
exact line format, or an export, is read by `mesa_llm.recording.load_events` instead, so a cut run
loads with the same semantics (``truncated``, ``warning``, its unfinished step dropped).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import logging
import math
import mmap
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from mesa_llm.analysis.columnar import CopyColumns, CopySource, read_copy
from mesa_llm.analysis.content_column import ContentArray, LazyContent
from mesa_llm.recording import LoadedRecording, RecordingError, load_events
from mesa_llm.recording.schema import (
    MAX_DEPTH,
    MAX_INT,
    MAX_LINE_BYTES,
    LineError,
    agent_ids,
    content_problem,
    contents_problem,
    decode_json,
    nesting_depth,
)

__all__ = [
    "LAZY_TYPES",
    "LazyContent",
    "MultiRecording",
    "Recording",
    "load_recording",
    "load_recordings",
]

_log = logging.getLogger(__name__)

#: Event types whose contents are large: reading one from the events table decodes it alone (other
#: types decode all their events at once); their table decodes them all.
LAZY_TYPES: frozenset[str] = frozenset({"observation", "llm_call"})

# The envelope of one line of the recorder's stream, up to its content.
_LINE = re.compile(
    rb'\{"event_id":"([^"\\\n]*)","timestamp":"([^"\\\n]*)","step":(-?\d+),'
    rb'"agent_id":(null|-?\d+),"event_type":"([^"\\\n]*)","content":'
)
_LINE_FIXED_BYTES = len(
    b'{"event_id":"","timestamp":"","step":,"agent_id":,"event_type":"","content":'
)
_HEAD_BYTES = 4096
# Lines parsed (envelopes) or decoded (contents) per call: the temporary objects of one chunk are
# freed before the next, whose objects reuse their memory instead of touching new pages.
_CHUNK_LINES = 65_536

# The first columns of each table (after step and agent_id); an empty table has at least these.
_COLUMNS: dict[str, tuple[str, ...]] = {
    "observation": (),
    "plan": ("text",),
    "llm_call": (
        "model",
        "purpose",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "cost_usd",
        "latency_s",
        "attempts",
        "cached",
        "error",
    ),
    "action": ("type", "arguments"),
    "action_rejected": ("type", "arguments", "reason"),
    "message": (
        "sender_id",
        "recipient_ids",
        "broadcast",
        "n_recipients",
        "text",
        "channel",
        "message_id",
        "forwarded_from",
    ),
    "order": ("order_id", "side", "good", "price", "quantity"),
    "order_cancelled": ("order_id", "remaining"),
    "trade": ("good", "price", "quantity", "buyer_id", "seller_id"),
    "clearing": (
        "good",
        "price",
        "volume",
        "price_low",
        "price_high",
        "price_range",
        "excess_demand",
        "excess_supply",
    ),
    "offer": (
        "session_id",
        "protocol",
        "kind",
        "parties",
        "good",
        "round",
        "offer_id",
        "proposer",
        "terms",
    ),
    "agreement": (
        "session_id",
        "protocol",
        "kind",
        "parties",
        "good",
        "round",
        "buyer_id",
        "seller_id",
        "terms",
    ),
    "negotiation": ("session_id", "protocol", "kind", "parties", "good", "round"),
    "contract": (
        "contract_id",
        "session_id",
        "protocol",
        "stage",
        "status",
        "buyer_id",
        "seller_id",
        "good",
        "quantity",
        "price",
        "value",
        "delivery_step",
        "terms",
        "breached_by",
    ),
    "agent_state": ("cash", "holdings", "surplus", "wealth", "units_bought", "units_sold"),
    "scheduled_event": ("index", "event"),
}
_ENVELOPE_COLUMNS = ("step", "agent_id")
_AGENT_COLUMNS = ("agent_id", "name", "role", "population", "policy", "model", "endowment_cash")

# ----------------------------------------------------------------------------- decoding


def _json_loads() -> Callable[[bytes], Any]:
    """The fastest JSON decoder available: orjson when installed (optional), else the stdlib's."""
    try:
        import orjson
    except ImportError:
        # like orjson, refuse NaN and Infinity (the line-by-line pass then names the line and why)
        return functools.partial(json.loads, parse_constant=_not_json_number)
    return cast(Callable[[bytes], Any], orjson.loads)


def _not_json_number(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: decoding creates millions of containers, none cyclic,
    and each automatic collection would rescan all of them."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_PLAIN_END = b',"metadata":{}}'  # how a line ends when its metadata is empty (most events)


@dataclass
class _LineSource:
    """Where the undecoded contents of a stream are: byte offsets of every line in the file.

    Contents are read back from the file when needed (memory-mapped for a whole type, one read for
    a single event), so the file must not change while the recording is in use.
    """

    path: Path
    size: int
    mtime_ns: int
    line_start: np.ndarray  # offset of each line
    line_end: np.ndarray  # offset of each line's newline
    content_start: np.ndarray  # offset of each line's content value
    plain: np.ndarray  # the line ends with _PLAIN_END, so its content ends just before it

    def _check(self) -> None:
        try:
            stat = self.path.stat()
        except OSError as exc:
            raise RecordingError(f"{self.path}: cannot be read any more: {exc}") from None
        if stat.st_size != self.size or stat.st_mtime_ns != self.mtime_ns:
            raise RecordingError(
                f"{self.path}: the file changed after it was loaded; load it again"
            )

    def read_many(self, idx: np.ndarray) -> list[Any]:
        """Decoded contents of the events at these positions: one JSON call per chunk of lines
        (a chunk at a time, so the temporary bytes stay small)."""
        self._check()
        out: list[Any] = []
        with open(self.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            for first in range(0, len(idx), _CHUNK_LINES):
                out.extend(self._read_chunk(mm, idx[first : first + _CHUNK_LINES]))
        return out

    def _read_chunk(self, mm: mmap.mmap, idx: np.ndarray) -> list[Any]:
        if bool(self.plain[idx].all()):  # the common case: contents alone, no envelope
            starts = self.content_start[idx].tolist()
            stops = (self.line_end[idx] - len(_PLAIN_END)).tolist()
            return self._decode([mm[a:b] for a, b in zip(starts, stops, strict=True)], idx)
        lines = [
            mm[a:b]
            for a, b in zip(self.line_start[idx].tolist(), self.line_end[idx].tolist(), strict=True)
        ]
        return [e.get("content") if isinstance(e, dict) else None for e in self._decode(lines, idx)]

    def _decode(self, chunks: list[bytes], sel: np.ndarray) -> list[Any]:
        try:
            return _decode_all(chunks)
        except (ValueError, RecursionError):
            pass
        # One line at a time, with the limits (NaN, depth, UTF-8) and its line number when it fails.
        out = []
        for chunk, index in zip(chunks, sel.tolist(), strict=True):
            try:
                out.append(decode_json(chunk, limit=None))
            except LineError as exc:
                self.read_one(index)  # the whole line, for columns counted from its start
                raise RecordingError(f"{self.path}: line {index + 1} is corrupt: {exc}") from None
        return out

    def read_one(self, index: int) -> Any:
        """Decoded content of one event."""
        self._check()
        start = int(self.line_start[index])
        with open(self.path, "rb") as f:
            line = os.pread(f.fileno(), int(self.line_end[index]) - start, start)
        try:
            event = decode_json(line, limit=None)
        except LineError as exc:
            raise RecordingError(f"{self.path}: line {index + 1} is corrupt: {exc}") from None
        return event.get("content") if isinstance(event, dict) else None


def _decode_all(chunks: list[bytes]) -> list[Any]:
    """Decode JSON texts in one call (ValueError or RecursionError if one is not valid)."""
    return cast(list[Any], _json_loads()(b"[" + b",".join(chunks) + b"]"))


class _CopyContents:
    """Contents of a recording read from its columnar copy (`mesa_llm.analysis.columnar`), with
    the limits the stream's lines have (size, nesting, UTF-8, an object), checked when decoded."""

    def __init__(self, source: CopySource, stream: _LineSource) -> None:
        self.source = source
        self.stream = stream  # the stream's identity at load: it must stay as it was, as without a copy

    def read_many(self, idx: np.ndarray) -> list[Any]:
        """Decoded contents of the events at these positions."""
        self.stream._check()
        text = self.source.array_text(idx)
        if text is not None:
            try:
                return cast(list[Any], _json_loads()(text))
            except (ValueError, RecursionError):
                pass  # one by one below, naming the row at fault
        chunks = self.source.chunks(idx)
        try:
            return _decode_all(chunks)
        except (ValueError, RecursionError):
            pass
        out = []
        for chunk, index in zip(chunks, idx.tolist(), strict=True):
            try:
                out.append(decode_json(chunk, limit=None))
            except LineError as exc:
                raise RecordingError(f"{self.source.place(index)} is corrupt: {exc}") from None
        return out

    def read_one(self, index: int) -> Any:
        """Decoded content of one event."""
        return self.read_many(np.asarray([index]))[0]


@dataclass
class _EventStore:
    """Columns of the events' envelopes plus their contents, decoded per type on demand."""

    path: Path
    event_id: pd.api.extensions.ExtensionArray | np.ndarray  # text (`_texts`)
    step: np.ndarray
    agent_id: pd.api.extensions.ExtensionArray | np.ndarray
    timestamp: pd.DatetimeIndex
    type_codes: np.ndarray
    type_names: list[str]
    contents: np.ndarray  # object: the decoded content, or None while not decoded
    source: _LineSource | _CopyContents | None  # where undecoded contents are read from (streams only)
    decoded: set[str] = field(default_factory=set)
    #: contents decoded from the file are checked against the schema (the reader checked the rest)
    checked: bool = False
    agents: frozenset[int] | None = None  # the header's agent ids, for the checks

    def check(self, event_type: str, idx: np.ndarray, values: list[Any]) -> None:
        """Raise `RecordingError` at the first content of `values` (events `idx`) that does not
        fit the schema; the header's agents are remembered for the checks of later types."""
        if not self.checked:
            return
        if len(values) == 1:
            problem = content_problem(event_type, values[0], self.agents)
            found = None if problem is None else (0, problem)
        else:
            found = contents_problem(event_type, values, self.agents)
        if found is not None:
            raise RecordingError(f"{self.path}: line {int(idx[found[0]]) + 1}: {found[1]}")
        if event_type == "simulation_start" and values:
            self.agents = agent_ids(values[0])

    def __len__(self) -> int:
        return len(self.step)

    def indices(self, event_type: str) -> np.ndarray:
        """Positions of the events of this type, in recording order."""
        try:
            code = self.type_names.index(event_type)
        except ValueError:
            return np.empty(0, dtype=np.intp)
        return np.flatnonzero(self.type_codes == code)

    def content(self, index: int) -> dict[str, Any]:
        """Content of one event: its type's contents are decoded all at once, except those of
        the large types (LAZY_TYPES), decoded alone until their table is built."""
        value = self.contents[index]
        if value is None:
            name = self.type_names[int(self.type_codes[index])]
            if name in LAZY_TYPES:
                assert self.source is not None
                raw = self.source.read_one(index)
                self.check(name, np.asarray([index]), [raw])
                value = _as_content(raw)
                self.contents[index] = value
            else:
                self.contents_of(name)
                value = self.contents[index]
        return cast(dict[str, Any], value)

    def contents_of(self, event_type: str) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Positions and contents of every event of a type, decoding them in one call if needed."""
        idx = self.indices(event_type)
        if event_type not in self.decoded:
            if self.source is not None and len(idx):
                missing = idx[pd.isna(self.contents[idx])]
                if len(missing):
                    with _gc_paused():
                        values = self.source.read_many(missing)
                        self.check(event_type, missing, values)
                        self.contents[missing] = np.fromiter(
                            map(_as_content, values), dtype=object, count=len(values)
                        )
            self.decoded.add(event_type)
        return idx, self.contents[idx].tolist()


def _as_content(value: Any) -> dict[str, Any]:
    """A content as a dict (the recorder always writes one; wrap anything else)."""
    if type(value) is dict:
        return value
    if isinstance(value, dict):
        return dict(value)
    return {} if value is None else {"data": value}


# ----------------------------------------------------------------------------- reading files


def _agent_array(values: Sequence[Any]) -> pd.api.extensions.ExtensionArray | np.ndarray:
    """Agent ids as a nullable Int64 array (object if some id is not an integer)."""
    try:
        return pd.array(values, dtype="Int64")
    except (TypeError, ValueError):
        return np.asarray(values, dtype=object)


def _texts(values: pa.Array) -> pd.api.extensions.ExtensionArray | np.ndarray:
    """A column of text as pandas keeps text it infers (its ``str`` dtype, Arrow-backed: no Python
    string per value, and each table's slice is taken without converting it again), or as Python
    strings where that inference is switched off."""
    dtype = pd.Series(["x"]).dtype
    if dtype == np.dtype(object):
        return cast(np.ndarray, values.to_numpy(zero_copy_only=False))
    return pd.array(values, dtype=dtype)


def _timestamps(texts: Sequence[bytes] | Sequence[str]) -> pd.DatetimeIndex:
    """ISO timestamps as UTC datetimes: the recorder's own format (``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``,
    the fraction left out when it is zero) with numpy, any other ISO form with pandas, NaT for what
    cannot be read."""
    n = len(texts)
    if n and isinstance(texts[0], bytes):
        fast = _recorder_timestamps(cast(Sequence[bytes], texts))
        if fast is not None:
            return fast
        texts = [t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t) for t in texts]
    for kwargs in ({"format": "%Y-%m-%dT%H:%M:%S.%f%z"}, {"format": "ISO8601"}):
        try:
            return pd.DatetimeIndex(pd.to_datetime(texts, utc=True, **kwargs))
        except (ValueError, TypeError):
            continue
    return pd.DatetimeIndex(pd.to_datetime(texts, utc=True, format="ISO8601", errors="coerce"))


def _recorder_timestamps(texts: Sequence[bytes]) -> pd.DatetimeIndex | None:
    """Timestamps written by the recorder (UTC, +00:00), parsed by numpy; None for other forms."""
    n = len(texts)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    long, short = lengths == 32, lengths == 25  # with and without the microseconds
    if not bool((long | short).all()):
        return None
    raw = np.asarray(texts, dtype="S32")
    matrix = raw.view(np.uint8).reshape(n, 32)
    utc = np.frombuffer(b"+00:00", dtype=np.uint8)
    if not bool((matrix[long, 26:] == utc).all() and (matrix[short, 19:25] == utc).all()):
        return None
    naive = raw.astype("S26")
    naive[short] = raw[short].astype("S19")
    try:
        return pd.DatetimeIndex(naive.astype("datetime64[us]")).tz_localize("UTC")
    except ValueError:
        return None


def _newlines(buffer: np.ndarray) -> np.ndarray:
    """Offsets of every newline byte, scanned in chunks to keep the temporary masks small."""
    chunk = 1 << 24
    parts = [
        np.flatnonzero(buffer[start : start + chunk] == 10) + start
        for start in range(0, len(buffer), chunk)
    ]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.intp)


def _bytes_at(buffer: np.ndarray, offsets: np.ndarray, expected: bytes) -> np.ndarray:
    """Whether `buffer` holds `expected` at each offset (a bool per offset; offsets >= 0)."""
    width = len(expected)
    if len(buffer) < width:
        return np.zeros(len(offsets), dtype=bool)
    # Every window of `width` bytes as a row of a (read-only, not copied) 2-D view: one gather.
    windows = np.lib.stride_tricks.as_strided(
        buffer, shape=(len(buffer) - width + 1, width), strides=(1, 1), writeable=False
    )
    inside = offsets <= len(buffer) - width
    ok = np.zeros(len(offsets), dtype=bool)
    ok[inside] = (windows[offsets[inside]] == np.frombuffer(expected, dtype=np.uint8)).all(axis=1)
    return ok


@dataclass
class _Envelopes:
    """Envelope columns of a stream, built chunk by chunk."""

    ids: list[pa.Array] = field(default_factory=list)
    steps: list[np.ndarray] = field(default_factory=list)
    agents: list[np.ndarray] = field(default_factory=list)
    missing: list[np.ndarray] = field(default_factory=list)
    stamps: list[np.ndarray] = field(default_factory=list)
    codes: list[np.ndarray] = field(default_factory=list)
    lengths: list[np.ndarray] = field(default_factory=list)
    type_code: dict[bytes, int] = field(default_factory=dict)
    agent_value: dict[bytes, int] = field(default_factory=dict)

    def add(self, matches: list[tuple[bytes, ...]]) -> None:
        n = len(matches)
        ids, stamps, steps, agents, types = zip(*matches, strict=True)
        for t in dict.fromkeys(types):  # codes in order of first appearance (a set's order varies)
            self.type_code.setdefault(t, len(self.type_code))
        for a in set(agents).difference(self.agent_value):
            self.agent_value[a] = -1 if a == b"null" else int(a)
        values = np.fromiter(map(self.agent_value.__getitem__, agents), dtype=np.int64, count=n)
        missing = values == -1
        if missing.any():  # -1 is null, unless an agent really has that id
            missing[missing] = [agents[i] == b"null" for i in np.flatnonzero(missing).tolist()]
        # the envelope's variable lengths, to find where each content starts
        length = np.fromiter(map(len, ids), dtype=np.int64, count=n)
        for column in (stamps, steps, agents, types):
            length += np.fromiter(map(len, column), dtype=np.int64, count=n)
        self.ids.append(pa.array(ids, type=pa.binary()))  # text once all are read (UTF-8 checked)
        self.steps.append(np.fromiter(map(int, steps), dtype=np.int64, count=n))
        self.agents.append(np.where(missing, 0, values))
        self.missing.append(missing)
        self.stamps.append(_timestamps(stamps).to_numpy(dtype="datetime64[us]"))
        self.codes.append(
            np.fromiter(map(self.type_code.__getitem__, types), dtype=np.int32, count=n)
        )
        self.lengths.append(length)


def _map(file: Any) -> mmap.mmap:
    """A read-only memory map of a whole file, its pages mapped at once where the system can
    (Linux: MAP_POPULATE; faulting them in one by one took seconds for a 500 MB recording)."""
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if populate and hasattr(mmap, "MAP_SHARED"):
        return mmap.mmap(file.fileno(), 0, flags=mmap.MAP_SHARED | populate, prot=mmap.PROT_READ)
    return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)


def _store_from_stream(path: Path) -> _EventStore | None:
    """Envelopes of a complete stream in the recorder's exact line format; None if it is not one
    (the caller then reads it with the reader)."""
    stat = path.stat()
    if stat.st_size == 0:
        return None
    env = _Envelopes()
    with open(path, "rb") as f, _map(f) as mm:
        buffer = np.frombuffer(mm, dtype=np.uint8)
        try:
            if buffer[-1] != 10:
                return None  # the last line is incomplete: a cut run
            line_end = _newlines(buffer).astype(np.int64)
            n = len(line_end)
            line_start = np.empty(n, dtype=np.int64)
            line_start[0] = 0
            line_start[1:] = line_end[:-1] + 1
            plain = _bytes_at(buffer, np.maximum(line_end - len(_PLAIN_END), 0), _PLAIN_END)
            for first in range(0, n, _CHUNK_LINES):
                last = min(first + _CHUNK_LINES, n) - 1
                matches = _LINE.findall(mm, int(line_start[first]), int(line_end[last]) + 1)
                if len(matches) != last - first + 1:
                    return None
                env.add(matches)
                del matches
            # "content": must end where the envelope's lengths say on every line, or a match was
            # not at its line's start (some line is not in the recorder's format).
            content_start = line_start + _LINE_FIXED_BYTES + np.concatenate(env.lengths)
            if not _bytes_at(buffer, content_start - 10, b'"content":').all():
                return None
            if not _within_limits(mm, buffer, line_start, line_end, content_start):
                return None
            if not _utf8(mm, buffer, line_start, line_end):
                return None
        finally:
            del buffer  # the mmap cannot close while a numpy view of it is alive
    names = [t.decode("utf-8") for t in sorted(env.type_code, key=env.type_code.__getitem__)]
    if "simulation_end" not in names:
        return None  # a cut run: the reader drops its unfinished step
    steps = np.concatenate(env.steps)
    agents = np.concatenate(env.agents)
    codes = np.concatenate(env.codes)
    if not _in_order(steps, agents, codes, names):
        return None
    return _EventStore(
        path=path,
        event_id=_texts(pa.chunked_array(env.ids, type=pa.binary()).cast(pa.string()).combine_chunks()),
        step=steps,
        agent_id=pd.arrays.IntegerArray(agents, np.concatenate(env.missing)),
        timestamp=pd.DatetimeIndex(np.concatenate(env.stamps)).tz_localize("UTC"),
        type_codes=codes,
        type_names=names,
        contents=np.full(n, None, dtype=object),
        source=_LineSource(
            path=path,
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            line_start=line_start,
            line_end=line_end,
            content_start=content_start,
            plain=plain,
        ),
    )


def _within_limits(
    mm: mmap.mmap,
    buffer: np.ndarray,
    line_start: np.ndarray,
    line_end: np.ndarray,
    content_start: np.ndarray,
) -> bool:
    """Every line within the size and depth limits, every content an object (else the reader
    reads the file and names the line at fault)."""
    if bool((line_end - line_start > MAX_LINE_BYTES).any()):
        return False
    if not bool((buffer[content_start] == ord("{")).all()):
        return False
    # A line has at most as many levels as opening brackets: count them per line, a chunk of
    # lines at a time, and measure the depth of the few lines with more (headers, observations).
    for first in range(0, len(line_start), _CHUNK_LINES):
        starts = line_start[first : first + _CHUNK_LINES]
        base = int(starts[0])
        chunk = buffer[base : int(line_end[first : first + _CHUNK_LINES][-1]) + 1]
        opens = chunk == ord("[")
        opens |= chunk == ord("{")
        where = np.flatnonzero(opens)  # sorted: the count of a line is a difference of ranks
        ends = line_end[first : first + _CHUNK_LINES] - base
        counts = np.searchsorted(where, ends) - np.searchsorted(where, starts - base)
        for i in np.flatnonzero(counts > MAX_DEPTH).tolist():
            a, b = int(starts[i]), int(line_end[first + i])
            if nesting_depth(mm[a:b]) > MAX_DEPTH:
                return False
    return True


def _utf8(mm: mmap.mmap, buffer: np.ndarray, line_start: np.ndarray, line_end: np.ndarray) -> bool:
    """Every line is UTF-8 text (else the reader names the line and the byte). Contents are
    decoded per type when first needed; this keeps a stray byte in a type no analysis reads from
    passing unnoticed. Only the lines with a non-ASCII byte are decoded."""
    lines: set[int] = set()
    for first in range(0, len(buffer), 1 << 24):
        high = np.flatnonzero(buffer[first : first + (1 << 24)] >= 0x80)
        if len(high):
            lines.update(np.searchsorted(line_end, high + first, side="left").tolist())
    for i in sorted(lines):
        try:
            mm[int(line_start[i]) : int(line_end[i])].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


_NO_LINES = np.empty(0, dtype=np.int64)


def _store_from_copy(path: Path, columns: CopyColumns) -> _EventStore | None:
    """The events of a stream from its columnar copy; None if they are not in a run's order
    (the stream is read then)."""
    names = columns.type_names
    if "simulation_end" not in names or not _in_order(
        columns.step, columns.agent_id, columns.type_codes, names
    ):
        return None
    return _EventStore(
        path=path,
        event_id=_texts(columns.event_id),
        step=columns.step,
        agent_id=pd.arrays.IntegerArray(columns.agent_id, columns.missing),
        timestamp=pd.DatetimeIndex(columns.timestamp).tz_localize("UTC"),
        type_codes=columns.type_codes,
        type_names=names,
        contents=np.full(len(columns.step), None, dtype=object),
        source=_CopyContents(columns.source, _LineSource(
            path=path, size=columns.stream_size, mtime_ns=columns.stream_mtime_ns,
            line_start=_NO_LINES, line_end=_NO_LINES, content_start=_NO_LINES, plain=_NO_LINES,
        )),  # fmt: skip
    )


def _in_order(steps: np.ndarray, agents: np.ndarray, codes: np.ndarray, names: list[str]) -> bool:
    """The header first and once, steps from 0 never going back, one step_start per step, agent
    ids within bounds (else the reader names the line at fault)."""
    if names[int(codes[0])] != "simulation_start":
        return False
    if names.count("simulation_start") != 1:  # pragma: no cover - names are unique
        return False
    if int((codes == names.index("simulation_start")).sum()) != 1:
        return False
    if bool((steps < 0).any()) or bool((np.diff(steps) < 0).any()):
        return False
    if bool((np.abs(agents) > MAX_INT).any()):
        return False
    if "step_start" in names:
        started = steps[codes == names.index("step_start")]
        if bool((np.diff(started) <= 0).any()):
            return False
    return True


def _store_from_events(path: Path, events: list[dict[str, Any]]) -> _EventStore:
    """Envelopes and contents of already decoded events (the reader's output)."""
    n = len(events)
    types = [e["event_type"] for e in events]
    type_codes, type_names = pd.factorize(np.asarray(types, dtype=object))
    return _EventStore(
        path=path,
        event_id=np.fromiter((str(e.get("event_id", "")) for e in events), dtype=object, count=n),
        step=np.asarray([e["step"] for e in events], dtype=np.int64),
        agent_id=_agent_array([e.get("agent_id") for e in events]),
        timestamp=_timestamps([str(e.get("timestamp", "")) for e in events]),
        type_codes=np.asarray(type_codes, dtype=np.int32),
        type_names=[str(t) for t in type_names],
        contents=np.fromiter(
            (_as_content(e.get("content")) for e in events), dtype=object, count=n
        ),
        source=None,
    )


def _is_export(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(_HEAD_BYTES).lstrip()
    return path.suffix.lower() == ".json" or (
        head.startswith(b"{") and head[1:].lstrip().startswith(b'"metadata"')
    )


# ----------------------------------------------------------------------------- Recording


def _table_property(event_type: str, doc: str) -> cached_property[pd.DataFrame]:
    def getter(self: Recording) -> pd.DataFrame:
        return self.table(event_type)

    getter.__doc__ = doc
    getter.__name__ = event_type
    return cached_property(getter)


class Recording:
    """One recording as pandas DataFrames (built lazily and cached per table).

    Attributes:
        path: the file read.
        header: content of ``simulation_start`` (scenario, seed, tick_size, goods, agents, ...);
            empty when the recording has none.
        run_id: the file's stem.
        truncated: the stream was cut (see `mesa_llm.recording.load_events`).
        warning: what was wrong with a cut stream and what was dropped; None when intact.
        complete_steps: the last step whose ``step_end`` was recorded.
        metadata: the ``metadata`` of a single-file JSON export; None for a stream.
        columnar: the columnar copy (``REC.parquet/``) the events were read from, or None.
        copy_note: why a copy next to the stream was not used (stale, edited, ...), or None.

    Every table has the columns ``step`` and ``agent_id`` (nullable Int64; null for model events)
    first, then the content's fields (one column per top-level key: nested dicts and lists stay
    Python objects), then ``event_id``. A content key named like an envelope column is dropped.
    Money is in currency units, as recorded.
    """

    def __init__(
        self,
        path: Path,
        store: _EventStore,
        *,
        truncated: bool = False,
        warning: str | None = None,
        complete_steps: int = 0,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.path = path
        self._store = store
        self.run_id: str = path.stem
        self.truncated = truncated
        self.warning = warning
        self.complete_steps = complete_steps
        self.metadata = metadata
        #: the columnar copy the events were read from (`mesa_llm.analysis.columnar`), or None
        self.columnar: Path | None = None
        #: why a copy next to the stream was not used (also logged), or None
        self.copy_note: str | None = None
        self._tables: dict[str, pd.DataFrame] = {}
        self._indexes: dict[tuple[str, ...], Any] = {}  # of the point queries, built on first use
        self._message_rows: dict[tuple[int, bool], np.ndarray] = {}
        idx, contents = store.contents_of("simulation_start")
        self.header: dict[str, Any] = dict(contents[0]) if contents else {}

    def __repr__(self) -> str:
        return (
            f"Recording({self.run_id!r}, events={len(self._store)}, "
            f"scenario={self.scenario!r}, truncated={self.truncated})"
        )

    def __len__(self) -> int:
        return len(self._store)

    # -- facts about the run -------------------------------------------------------------------

    @property
    def scenario(self) -> str | None:
        """Name of the scenario recorded (None without a header)."""
        scenario = self.header.get("scenario")
        if isinstance(scenario, dict):
            name = scenario.get("name")
            return str(name) if name is not None else None
        return str(scenario) if scenario is not None else None

    @property
    def tick_size(self) -> float:
        """The money tick of the run (0.01 when the header does not say)."""
        tick = self.header.get("tick_size")
        return float(tick) if isinstance(tick, int | float) and tick > 0 else 0.01

    @property
    def event_types(self) -> dict[str, int]:
        """Number of events of each type, in order of first appearance."""
        counts = np.bincount(self._store.type_codes, minlength=len(self._store.type_names))
        return {name: int(c) for name, c in zip(self._store.type_names, counts, strict=True)}

    def positions(self, event_type: str) -> np.ndarray:
        """Position of each event of a type in the recording, aligned with the rows of
        ``table(event_type)`` (to merge tables of several types in recording order)."""
        return self._store.indices(event_type)

    def count(self, event_type: str) -> int:
        """Number of events of a type (no decoding)."""
        return int(len(self._store.indices(event_type)))

    @property
    def final_step(self) -> int:
        """The last step of the run: ``simulation_end``'s ``final_step``, else the last event's step."""
        idx, contents = self._store.contents_of("simulation_end")
        if contents:
            final = contents[-1].get("final_step")
            if isinstance(final, int):
                return final
        return int(self._store.step.max()) if len(self._store) else 0

    @property
    def status(self) -> str | None:
        """``simulation_end``'s status (completed, interrupted, failed, ...), or None if cut."""
        idx, contents = self._store.contents_of("simulation_end")
        if contents:
            status = contents[-1].get("status")
            return str(status) if status is not None else None
        return None

    # -- tables --------------------------------------------------------------------------------

    @cached_property
    def events(self) -> pd.DataFrame:
        """One row per event: event_id, step, agent_id (Int64, NA for model events), event_type
        (categorical), timestamp (UTC) and content: the event's content as a read-only mapping
        (`LazyContent`), decoded from the file on first access; ``dict(content)`` gives a dict.
        The content column's dtype is `ContentDtype` (`mesa_llm.analysis.content_column`): its
        cells are made when read; ``to_numpy()`` gives them as objects."""
        store = self._store
        # a LazyContent per event is made when its cell is read, not here (`ContentArray`)
        content = ContentArray(store, np.arange(len(store), dtype=np.int64))
        event_type = pd.Categorical.from_codes(store.type_codes, categories=store.type_names)
        return pd.DataFrame(
            {
                "event_id": store.event_id,
                "step": store.step,
                "agent_id": store.agent_id,
                "event_type": event_type,
                "timestamp": store.timestamp,
                "content": content,
            }
        )

    def table(self, event_type: str) -> pd.DataFrame:
        """The events of any type as a table: step, agent_id, the content's fields, event_id.

        The table is cached: treat it as read-only (copy it to modify it).
        """
        cached = self._tables.get(event_type)
        if cached is None:
            with _gc_paused():
                cached = self._build(event_type)
            self._tables[event_type] = cached
        return cached

    def _build(self, event_type: str) -> pd.DataFrame:
        store = self._store
        idx, contents = store.contents_of(event_type)
        first = _COLUMNS.get(event_type, ())
        if not contents:
            frame = pd.DataFrame({c: pd.Series(dtype=object) for c in first})
        else:
            frame = pd.DataFrame.from_records(contents)
            frame = frame.drop(columns=[c for c in ("step", "agent_id", "event_id") if c in frame])
        frame.insert(0, "step", store.step[idx])
        frame.insert(1, "agent_id", store.agent_id[idx])
        frame["event_id"] = store.event_id[idx]
        extra = _DERIVED.get(event_type)
        if extra is not None:
            frame = extra(frame)
        for column in first:
            if column not in frame:
                frame[column] = pd.Series([None] * len(frame), dtype=object, index=frame.index)
        order = [*_ENVELOPE_COLUMNS, *first]
        rest = [c for c in frame.columns if c not in order and c != "event_id"]
        return frame[[*order, *rest, "event_id"]]

    observations = _table_property("observation", "Observations as the agents received them.")
    plans = _table_property("plan", "Plans (text) of the agents.")
    llm_calls = _table_property(
        "llm_call",
        "LLM calls: model, purpose, prompt/completion/total tokens, cost_usd, latency_s, attempts, "
        "error, plus the request and response.",
    )
    actions = _table_property("action", "Actions applied: type and arguments (world units).")
    rejections = _table_property("action_rejected", "Rejected actions: type, arguments, reason.")
    messages = _table_property(
        "message",
        "Messages: sender_id, recipient_ids ([] = broadcast), broadcast, n_recipients, text, channel.",
    )
    orders = _table_property("order", "Orders placed: order_id, side, good, price, quantity.")
    trades = _table_property("trade", "Trades: good, price, quantity, buyer_id, seller_id.")
    clearings = _table_property(
        "clearing",
        "Call-auction clearings per good and step: price (NaN without trade), volume, range.",
    )
    offers = _table_property("offer", "Offers, bids and proposals in negotiations and auctions.")
    agreements = _table_property("agreement", "Agreements reached in negotiations and auctions.")
    agent_states = _table_property(
        "agent_state", "Agent states: cash, holdings, surplus, wealth, units bought and sold."
    )

    def check(self) -> None:
        """Decode and check now the contents of every type but the large ones (`LAZY_TYPES`),
        which `load_recording` leaves to the first table that needs them.

        Raises:
            RecordingError: the first content that does not fit the schema (file and line).
        """
        with _gc_paused():
            for name in self._store.type_names:
                if name not in LAZY_TYPES:
                    self._store.contents_of(name)

    # -- point queries -------------------------------------------------------------------------
    # Each builds a sorted index of its table once (cached), then answers by binary search and a
    # positional slice: milliseconds on a recording of a million events, however many queries.

    def _step_index(self, event_type: str) -> tuple[np.ndarray, np.ndarray]:
        """Rows of a table sorted by step (stable: recording order within a step), and their steps."""
        key = ("step", event_type)
        cached = self._indexes.get(key)
        if cached is None:
            steps = np.asarray(self.table(event_type)["step"], dtype=np.int64)
            order = np.argsort(steps, kind="stable")
            cached = (order, steps[order])
            self._indexes[key] = cached
        return cached

    def rows_at(self, event_type: str, step: int) -> pd.DataFrame:
        """The events of a type recorded at one step, as rows of ``table(event_type)``."""
        order, steps = self._step_index(event_type)
        lo, hi = np.searchsorted(steps, [step, step + 1], side="left")
        return self.table(event_type).iloc[np.sort(order[lo:hi])]

    def trades_at(self, step: int) -> pd.DataFrame:
        """The trades of one step (rows of `trades`, in recording order)."""
        return self.rows_at("trade", step)

    def agent_state(self, agent_id: int, step: int) -> dict[str, Any] | None:
        """The state of an agent after a step: its last ``agent_state`` event recorded at or
        before `step` (the recorder writes states every few steps), as a dict of the row of
        `agent_states`; None when none was recorded by then."""
        cached = self._indexes.get(("agent_state",))
        if cached is None:
            frame = self.agent_states
            agents = frame["agent_id"]
            known = ~np.asarray(agents.isna(), dtype=bool)
            rows = np.flatnonzero(known)
            ids = np.asarray(agents[known], dtype=np.int64)
            steps = np.asarray(frame["step"], dtype=np.int64)[known]
            # last key is primary; ties (one agent, one step) keep recording order
            order = np.lexsort((np.arange(len(rows)), steps, ids))
            cached = (rows[order], ids[order], steps[order])
            self._indexes[("agent_state",)] = cached
        rows, ids, steps = cached
        lo, hi = np.searchsorted(ids, [agent_id, agent_id + 1], side="left")
        at = lo + int(np.searchsorted(steps[lo:hi], step, side="right")) - 1
        if at < lo:
            return None
        return cast(dict[str, Any], self.agent_states.iloc[int(rows[at])].to_dict())

    def messages_of(self, agent_id: int, *, broadcasts: bool = True) -> pd.DataFrame:
        """The messages an agent sent or was sent (rows of `messages`, in recording order);
        with `broadcasts`, also the broadcasts of the others, which every agent receives."""
        cached = self._indexes.get(("message",))
        if cached is None:
            frame = self.messages
            by_agent: dict[int, list[int]] = {}
            senders = frame["sender_id"].astype(object).where(frame["sender_id"].notna(), None)
            for row, (sender, recipients) in enumerate(
                zip(senders.tolist(), frame["recipient_ids"].tolist(), strict=True)
            ):
                involved = {sender} if isinstance(sender, int) else set()
                if isinstance(recipients, list):
                    involved.update(r for r in recipients if isinstance(r, int))
                for agent in involved:
                    by_agent.setdefault(agent, []).append(row)
            index = {a: np.asarray(r, dtype=np.intp) for a, r in by_agent.items()}
            cast_rows = np.flatnonzero(np.asarray(frame["broadcast"], dtype=bool))
            cached = (index, cast_rows)
            self._indexes[("message",)] = cached
        index, cast_rows = cached
        key = (agent_id, broadcasts)
        rows = self._message_rows.get(key)
        if rows is None:
            own = index.get(agent_id, np.empty(0, dtype=np.intp))
            rows = np.union1d(own, cast_rows) if broadcasts else own
            self._message_rows[key] = rows
        return self.messages.iloc[rows]

    @cached_property
    def negotiation_events(self) -> pd.DataFrame:
        """Every negotiation event (opened, offer, accept, reject, agreement, disagreement, end,
        ...) in recording order, with its ``event_type`` (negotiation, offer or agreement)."""
        parts = []
        for event_type in ("negotiation", "offer", "agreement"):
            frame = self.table(event_type)
            parts.append(
                frame.assign(event_type=event_type, _order=self._store.indices(event_type))
            )
        frame = pd.concat(parts, ignore_index=True).sort_values("_order", kind="stable")
        frame = frame.drop(columns="_order").reset_index(drop=True)
        order = ["step", "agent_id", "event_type", *_COLUMNS["negotiation"]]
        rest = [c for c in frame.columns if c not in order and c != "event_id"]
        return frame[[*order, *rest, "event_id"]]

    @cached_property
    def contracts(self) -> pd.DataFrame:
        """One row per contract: its last recorded stage (settled when it was settled), with
        ``created_step``, ``settled_step`` (NA while pending) and the settlement's ``penalty``."""
        frame = self.table("contract")
        first = (
            "contract_id",
            "created_step",
            "settled_step",
            *_COLUMNS["contract"][1:],
            "penalty",
        )
        if frame.empty:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in ("step", *first)})
        stage = frame["stage"].astype(object)
        created = frame[stage == "created"].groupby("contract_id")["step"].min()
        settled = frame[stage == "settled"].groupby("contract_id")["step"].max()
        last = frame.drop_duplicates("contract_id", keep="last").set_index("contract_id")
        last = last.assign(
            created_step=created.reindex(last.index).astype("Int64"),
            settled_step=settled.reindex(last.index).astype("Int64"),
        )
        if "settlement" in last:
            last["penalty"] = [
                s.get("penalty") if isinstance(s, dict) else None for s in last["settlement"]
            ]
        last = last.reset_index()
        for column in first:
            if column not in last:
                last[column] = None
        rest = [
            c for c in last.columns if c not in first and c not in ("step", "agent_id", "event_id")
        ]
        return last[["step", *first, *rest, "event_id"]].reset_index(drop=True)

    @cached_property
    def agents(self) -> pd.DataFrame:
        """The agents of the header: agent_id, name, role, population, policy, model,
        endowment_cash, endowment_holdings."""
        rows = []
        for agent in self.header.get("agents") or []:
            endowment = agent.get("endowment") or {}
            rows.append(
                {
                    "agent_id": agent.get("agent_id"),
                    "name": agent.get("name"),
                    "role": agent.get("role"),
                    "population": agent.get("population"),
                    "policy": agent.get("policy"),
                    "model": agent.get("model"),
                    "endowment_cash": endowment.get("cash"),
                    "endowment_holdings": endowment.get("holdings") or {},
                }
            )
        if not rows:
            return pd.DataFrame(
                {c: pd.Series(dtype=object) for c in (*_AGENT_COLUMNS, "endowment_holdings")}
            )
        frame = pd.DataFrame(rows)
        frame["agent_id"] = _agent_array(frame["agent_id"].tolist())
        return frame

    #: tables written by `mesa_llm.analysis.report.write_csv` and stacked by `MultiRecording`
    TABLES: tuple[str, ...] = (
        "events",
        "agents",
        "observations",
        "plans",
        "llm_calls",
        "actions",
        "rejections",
        "messages",
        "orders",
        "trades",
        "clearings",
        "offers",
        "agreements",
        "negotiation_events",
        "contracts",
        "agent_states",
    )


def _derive_llm_calls(frame: pd.DataFrame) -> pd.DataFrame:
    usage = (
        frame["usage"] if "usage" in frame else pd.Series([None] * len(frame), index=frame.index)
    )
    prompt = [u.get("prompt_tokens") if isinstance(u, dict) else None for u in usage]
    completion = [u.get("completion_tokens") if isinstance(u, dict) else None for u in usage]
    frame["prompt_tokens"] = pd.array(prompt, dtype="Int64")
    frame["completion_tokens"] = pd.array(completion, dtype="Int64")
    frame["total_tokens"] = frame["prompt_tokens"] + frame["completion_tokens"]
    return frame


def _derive_messages(frame: pd.DataFrame) -> pd.DataFrame:
    frame["sender_id"] = frame["agent_id"]
    recipients = frame["recipient_ids"] if "recipient_ids" in frame else [None] * len(frame)
    counts = [len(r) if isinstance(r, list) else 0 for r in recipients]
    frame["n_recipients"] = np.asarray(counts, dtype=np.int64)
    frame["broadcast"] = frame["n_recipients"].to_numpy() == 0
    return frame


def _derive_clearings(frame: pd.DataFrame) -> pd.DataFrame:
    ranges = frame["price_range"] if "price_range" in frame else [None] * len(frame)
    low = [r[0] if isinstance(r, list) and len(r) == 2 else math.nan for r in ranges]
    high = [r[1] if isinstance(r, list) and len(r) == 2 else math.nan for r in ranges]
    frame["price_low"] = np.asarray(low, dtype=float)
    frame["price_high"] = np.asarray(high, dtype=float)
    if "price" in frame:
        frame["price"] = pd.to_numeric(frame["price"], errors="coerce").astype(float)
    return frame


_DERIVED: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "llm_call": _derive_llm_calls,
    "message": _derive_messages,
    "clearing": _derive_clearings,
}


# ----------------------------------------------------------------------------- loading


def load_recording(path: str | Path) -> Recording:
    """Load a recording: a ``.jsonl`` stream or the single-file ``.json`` export.

    A cut stream loads with ``truncated`` True and the reader's ``warning`` kept.

    Raises:
        RecordingError: missing, unreadable or corrupt file (the message names the file and line).
    """
    p = Path(path)
    with _gc_paused():
        store: _EventStore | None = None
        copy_note: str | None = None
        copy: Path | None = None
        if p.is_file() and not _is_export(p):
            columns, copy_note = read_copy(p)
            if columns is not None:
                store = _store_from_copy(p, columns)
                if store is None:
                    copy_note = f"{columns.folder}: columnar copy not used (events out of order); reading {p.name}"
                else:
                    copy = columns.folder
            if copy_note:
                _log.warning("%s", copy_note)
            if store is None:
                try:
                    store = _store_from_stream(p)
                except (OSError, ValueError, OverflowError):
                    store = None  # the reader says what is wrong
        if store is not None:
            store.checked = True
            # Contents are checked per type when a table (or an event of the type) first needs
            # them, all the events of the type at once: a table is never half built from a
            # corrupt file, and a load that uses three tables does not decode the other twenty.
            rec = Recording(p, store, complete_steps=_complete_steps(store))
            rec.columnar, rec.copy_note = copy, copy_note
            return rec
        loaded: LoadedRecording = load_events(p)
        if loaded.header is None or loaded.events[0]["event_type"] != "simulation_start":
            raise RecordingError(
                f"{p}: line 1: no simulation_start header (the first event is "
                f"{loaded.events[0]['event_type'] if loaded.events else 'missing'}): "
                "not a run recording"
            )
        rec = Recording(
            p,
            _store_from_events(p, loaded.events),
            truncated=loaded.truncated,
            warning=loaded.warning,
            complete_steps=loaded.complete_steps,
            metadata=loaded.metadata,
        )
        rec.copy_note = copy_note
        return rec


def _complete_steps(store: _EventStore) -> int:
    """As the reader counts them for an intact stream: the last step_end's step, else 0 if the
    stream has step markers, else the last event's step."""
    ends = store.indices("step_end")
    if len(ends):
        return int(store.step[ends[-1]])
    if len(store.indices("step_start")):
        return 0
    return int(store.step[-1]) if len(store) else 0


# ----------------------------------------------------------------------------- many runs


def _stacked_property(name: str) -> cached_property[pd.DataFrame]:
    def getter(self: MultiRecording) -> pd.DataFrame:
        return self._stack(lambda rec: cast(pd.DataFrame, getattr(rec, name)))

    getter.__doc__ = f"Every run's ``{name}`` table stacked, with ``run_id`` first."
    getter.__name__ = name
    return cached_property(getter)


#: the columns that say which run a row of a stacked table comes from, first in every stacked table
RUN_COLUMNS = ("run_id", "scenario", "seed", "condition", "cell")


class MultiRecording:
    """Many runs: the tables of every run stacked, each row led by the run it comes from —
    ``run_id``, ``scenario``, ``seed`` and, for the runs of a sweep, its ``condition`` and ``cell``
    (the factor levels, ``path=level, ...``; None outside a sweep)."""

    def __init__(self, runs: Sequence[Recording], cells: dict[str, tuple[str | None, str | None]] | None = None) -> None:
        self.runs: list[Recording] = list(runs)
        #: run id -> (sweep condition, cell) of the runs a sweep's journal names
        self.cells: dict[str, tuple[str | None, str | None]] = dict(cells or {})

    def labels(self, rec: Recording) -> dict[str, Any]:
        """The run columns of ``rec``'s rows (``RUN_COLUMNS``)."""
        seed = rec.header.get("seed")
        condition, cell = self.cells.get(rec.run_id, (None, None))
        return {
            "run_id": rec.run_id, "scenario": rec.scenario,
            "seed": seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            "condition": condition, "cell": cell,
        }  # fmt: skip

    def __repr__(self) -> str:
        return f"MultiRecording({[r.run_id for r in self.runs]!r})"

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[Recording]:
        return iter(self.runs)

    def __getitem__(self, run_id: str) -> Recording:
        for rec in self.runs:
            if rec.run_id == run_id:
                return rec
        raise KeyError(f"no run {run_id!r}; the runs are {[r.run_id for r in self.runs]}")

    def _stack(self, get: Callable[[Recording], pd.DataFrame]) -> pd.DataFrame:
        # the run's columns replace a table's own column of the same name (a `seed` of an event)
        parts = [get(rec).assign(**self.labels(rec)) for rec in self.runs]
        if not parts:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in RUN_COLUMNS})
        non_empty = [p for p in parts if not p.empty] or parts[:1]
        frame = pd.concat(non_empty, ignore_index=True)
        frame["seed"] = frame["seed"].astype("Int64")
        return frame[[*RUN_COLUMNS, *[c for c in frame.columns if c not in RUN_COLUMNS]]]

    def table(self, event_type: str) -> pd.DataFrame:
        """Every run's table of this event type stacked, with ``run_id`` first."""
        return self._stack(lambda rec: rec.table(event_type))

    events = _stacked_property("events")
    agents = _stacked_property("agents")
    observations = _stacked_property("observations")
    plans = _stacked_property("plans")
    llm_calls = _stacked_property("llm_calls")
    actions = _stacked_property("actions")
    rejections = _stacked_property("rejections")
    messages = _stacked_property("messages")
    orders = _stacked_property("orders")
    trades = _stacked_property("trades")
    clearings = _stacked_property("clearings")
    offers = _stacked_property("offers")
    agreements = _stacked_property("agreements")
    negotiation_events = _stacked_property("negotiation_events")
    contracts = _stacked_property("contracts")
    agent_states = _stacked_property("agent_states")

    def summary(self) -> pd.DataFrame:
        """The summary metrics of every run (`mesa_llm.analysis.metrics.summary_metrics`), one
        row per run, nested metrics flattened to ``name.key`` columns."""
        from mesa_llm.analysis.metrics import flatten_metrics, summary_metrics

        rows = [{**flatten_metrics(summary_metrics(rec)), **self.labels(rec)} for rec in self.runs]
        frame = pd.DataFrame(rows)
        if frame.empty:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in RUN_COLUMNS})
        frame["seed"] = frame["seed"].astype("Int64")
        return frame[[*RUN_COLUMNS, *[c for c in frame.columns if c not in RUN_COLUMNS]]]


#: where replays and forks of a folder's runs are written (``mesa_llm.replay.REPLAYS_DIR``)
REPLAYS_DIR = "replays"


def load_recordings(
    folder: str | Path, pattern: str = "*.jsonl", *, include_forks: bool = False
) -> MultiRecording:
    """Load every run of a folder matching `pattern` (sorted by name); run_id = file stem.

    Replays and forks are not runs of the folder: they are written to its ``replays/`` subfolder,
    which is not read, and a recording whose header names a ``parent`` (one written next to the
    runs by an older version) is left out too. A replay repeats its source, so it never counts;
    with ``include_forks`` each fork (``replays/`` included) is a run of its own, after the runs.

    Raises:
        RecordingError: the folder does not exist, or a recording cannot be read.
    """
    root = Path(folder)
    if not root.is_dir():
        raise RecordingError(f"{root}: no such folder")
    if (root / SWEEP_JOURNAL).is_file() and (root / "runs").is_dir():
        root = root / "runs"  # a sweep's folder: its runs are in runs/ (journal.jsonl is not a recording)
    cells = _sweep_cells(root.parent / SWEEP_JOURNAL) if root.name == "runs" else {}
    paths = [p for p in sorted(root.glob(pattern)) if p.is_file()]
    if include_forks and (root / REPLAYS_DIR).is_dir():
        paths += [p for p in sorted((root / REPLAYS_DIR).glob(pattern)) if p.is_file()]
    runs: list[Recording] = []
    forks: list[Recording] = []
    for path in paths:
        rec = load_recording(path)
        rec.check()  # name the corrupt run now, not when some stacked table reaches it
        parent = rec.header.get("parent")
        if not isinstance(parent, dict):
            runs.append(rec)
        elif include_forks and parent.get("kind") == "fork":
            forks.append(rec)
    return MultiRecording(runs + forks, cells)


#: a sweep folder's journal of rows (``mesa_llm.experiments.store.JOURNAL``; its runs are in ``runs/``)
SWEEP_JOURNAL = "journal.jsonl"


def _sweep_cells(journal: Path) -> dict[str, tuple[str | None, str | None]]:
    """Run id -> (condition, cell text) from a sweep's journal (its latest row per run); rows not of
    that shape are skipped — the journal labels runs, it is not needed to read them."""
    if not journal.is_file() or journal.is_symlink():
        return {}
    cells: dict[str, tuple[str | None, str | None]] = {}
    try:
        lines = journal.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return {}
    for line in lines:
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(row, dict) or not isinstance(row.get("run_id"), str):
            continue
        condition = row.get("condition") if isinstance(row.get("condition"), str) else None
        factors = row.get("factors")
        if not isinstance(factors, dict):
            factors = {}
        cell = ", ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in factors.items())
        cells[row["run_id"]] = (condition, cell or None)
    return cells
