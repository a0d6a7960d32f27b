"""The SimulationRecorder: streams every event to a JSON-lines file and exports single-file JSON.

The recorder receives events; it knows nothing of agents' internals. The model reads nothing from it
but ``model.steps``, ``model.max_steps`` (optional) and ``len(model.agents)``, as in the existing
mesa-llm recorder, whose public methods and single-file JSON export it keeps.

Two outputs:

* a JSON-lines stream (``stream=True``, the default): each event is written as one line the moment
  it is recorded, and ``flush()`` (called by the model at the end of every step) pushes it to the OS,
  so a crash loses at most the step in progress; the ``simulation_start`` header is pushed at once. An existing file is never overwritten.
* ``save()``: the single-file JSON export of the mesa-llm ``SimulationRecorder``
  (``{"metadata", "events", "agent_summaries"}``).

Memory stays bounded however long the run: a streaming recorder keeps no event by default; its
query methods (``events``, ``get_*``, ``export_agent_memory``, ``save``) read the events back from
the stream. ``keep_in_memory=True`` (alias ``keep_events=True``) keeps them in memory as the
mesa-llm recorder did, for fast repeated queries on short runs; a recorder with ``stream=False``
always keeps them (nothing else would).

No pickle, ever: a pickle file executes code when loaded.

The recorder is not thread-safe; the model records from one thread (the asyncio loop's).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import logging
import os
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import chain, cycle, islice, repeat
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from mesa_llm.encoded_json import PLACEHOLDER, encoded_text, fill, int_texts, messages_json
from mesa_llm.recording.events import (
    LLM_CALL,
    MESSAGE,
    SIMULATION_END,
    SIMULATION_START,
    SimulationEvent,
)
from mesa_llm.recording.shapes import SHAPES
from mesa_llm.text_batch import LeanItem

__all__ = [
    "REDACTED",
    "SECRET_KEYS",
    "SimulationRecorder",
    "make_simulation_id",
    "redact",
]

logger = logging.getLogger(__name__)

REDACTED = "[REDACTED]"
"""What a secret's value is replaced with in a recording."""

SECRET_KEYS: frozenset[str] = frozenset(
    {"api_key", "authorization", "x-api-key", "api-key", "x-goog-api-key", "key"}
)
"""Dict keys (compared case-insensitively) whose values never reach a recording."""

# Event types whose content and metadata are walked in full for secrets: they carry request and
# configuration data (LLM requests with headers, the resolved scenario with model settings).
_DEEP_REDACT_TYPES = frozenset({LLM_CALL, SIMULATION_START})

# Types `stream_event` leaves to `record_event`: side effects (header, end), their own content
# form (message), secrets walked in full.
_SPECIAL_TYPES = _DEEP_REDACT_TYPES | {SIMULATION_END, MESSAGE}

# Recorded lines held before they are written as one text (characters): a step's lines when it is
# small, else chunks of about this much. Not more: the joined text and its bytes are allocated
# afresh at each write, and at 1 MB that costs page faults (60 MB written with a 1 MB bound: 0.092
# CPU-s; 256 KB: 0.032 CPU-s; 64 KB: 0.041, more calls).
_PENDING_CHARS = 1 << 18


# Steps whose byte range in the stream is remembered for get_events_by_step (see _step_ranges).
_STEP_INDEX_SIZE = 64

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_INT = frozenset({int})  # the one type of agent id whose text a template prints as its JSON (not bool, not numpy's)

_PICKLE_ERROR = (
    "pickle recordings are not supported: they can execute code when loaded; use format='json'"
)


def redact(obj: Any) -> Any:
    """Return `obj` with the value of every secret key (see `SECRET_KEYS`) replaced by ``"[REDACTED]"``.

    Walks nested dicts, lists and tuples. Keys are compared case-insensitively. The input is never
    modified: containers on the path to a secret are copied, everything else is shared, and `obj`
    itself is returned when it holds no secret.
    """
    if isinstance(obj, dict):
        copy: dict[Any, Any] | None = None
        for key, value in obj.items():
            if isinstance(key, str) and key.lower() in SECRET_KEYS:
                new_value: Any = REDACTED
            else:
                new_value = redact(value)
            if new_value is not value:
                if copy is None:
                    copy = dict(obj)
                copy[key] = new_value
        return obj if copy is None else copy
    if isinstance(obj, list | tuple):
        items: list[Any] | None = None
        for i, value in enumerate(obj):
            new_value = redact(value)
            if new_value is not value:
                if items is None:
                    items = list(obj)
                items[i] = new_value
        if items is None:
            return obj
        return items if isinstance(obj, list) else tuple(items)
    return obj


#: a secret key as compact JSON writes it as a key (lowercase, as `redact` compares them)
_SECRET_KEY_TEXTS = tuple(sorted(f'"{key}":' for key in SECRET_KEYS))


def _names_secret_key(text: str) -> bool:
    """Whether ``text`` (compact JSON, as the recorder encodes) may hold a dict key `redact` would
    blank: some key whose lowercase is one of `SECRET_KEYS`. A string value cannot look like one
    (its quotes are escaped); when this says yes, `redact` decides."""
    lowered = text.lower()
    return any(key in lowered for key in _SECRET_KEY_TEXTS)


def make_simulation_id(*parts: Any) -> str:
    """Return a deterministic 8-hex-digit simulation id from `parts` (e.g. scenario name and seed).

    Two runs with the same parts get the same id, hence identical event ids.
    """
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def _json_default(obj: Any) -> Any:
    """Turn what `json` cannot encode into JSON values; only called for such objects."""
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    # numpy scalars and arrays (duck-typed: numpy is not a dependency of this layer)
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, set | frozenset):
        try:
            return sorted(obj)
        except TypeError:
            return list(obj)
    if isinstance(obj, Decimal):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    model_dump = getattr(obj, "model_dump", None)  # pydantic models (actions)
    if callable(model_dump):
        return model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    # A recorder must not crash a simulation over an odd value; the seed used default=str too.
    return str(obj)


#: the JSON of a string with non-ASCII kept, as the recorder's encoder writes it
_quoted: Callable[[str], str] = json.encoder.encode_basestring


def _make_encoder() -> Callable[[Any], str]:
    """Return a compact JSON encoder (no spaces, UTF-8 kept, `_json_default` for odd values).

    Builds CPython's C encoder once and reuses it: ``json.dumps`` with keyword arguments builds a
    new encoder on every call, which costs as much as encoding a small event. One per recorder,
    because the C encoder's circular-reference markers must not be shared between threads.
    """
    fallback = json.JSONEncoder(
        ensure_ascii=False, separators=(",", ":"), default=_json_default
    ).encode
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return fallback
    markers: dict[int, Any] = {}
    try:
        c_encode = make(
            markers,
            _json_default,
            json.encoder.encode_basestring,
            None,
            ":",
            ",",
            False,
            False,
            True,
        )
    except TypeError:  # another signature on another Python
        return fallback
    join = "".join

    def encode(obj: Any) -> str:
        try:
            return join(c_encode(obj, 0))
        except BaseException:
            markers.clear()  # a failed encoding can leave markers behind
            raise

    return encode


#: `_encode_llm_call` reads the text around a kept value alone: no secret key may hold its edges
assert not any(c in key for key in SECRET_KEYS for c in '[]{}"\n')

#: an ``llm_call`` content's keys in the order `mesa_llm.agents.llm_policy.LLMPolicy` writes them, and its request's
#: (`mesa_llm.llm.types.ChatRequest.to_record`): `SimulationRecorder._llm_call_template` writes such a content's text
#: around its parts; none of these keys is a secret key
_CALL_KEYS = ("model", "purpose", "request_hash", "request", "response", "parsed_tool_calls", "usage", "cost_usd",
              "latency_s", "attempt_latencies_s", "attempts", "cached", "error", "error_kind")  # fmt: skip
_CALL_REST = _CALL_KEYS[4:]
_REQUEST_KEYS = ("messages", "tools", "tool_choice", "response_format", "params")
assert SECRET_KEYS.isdisjoint(_CALL_KEYS + _REQUEST_KEYS)


#: "000" to "999": the last three digits of the event indexes `record_texts` writes
_THREE_DIGITS = tuple(f"{n:03d}" for n in range(1000))


def _index_pieces(start: int, count: int, prefix: str = "") -> tuple[Iterator[str], Iterator[str]]:
    """The event indexes ``start`` to ``start + count - 1`` (>= 0) as `_stream_line` writes them
    (``str(index).zfill(6)``), each as two pieces: ``prefix`` and its thousands (``f"{index //
    1000:03d}"``, one text per thousand, repeated) and its last three digits (from `_THREE_DIGITS`).
    Formatting each index costs ~4x as much as joining the two pieces."""
    end = start + count
    thousands = chain.from_iterable(
        repeat(f"{prefix}{k:03d}", min(end, (k + 1) * 1000) - max(start, k * 1000))
        for k in range(start // 1000, (end - 1) // 1000 + 1)
    )  # fmt: skip
    return thousands, islice(cycle(_THREE_DIGITS), start % 1000, start % 1000 + count)


class SimulationRecorder:
    """Records every simulation event, streams it as JSON lines and exports the mesa-llm JSON format.

    Attributes:
        model: the Mesa model (or None); only ``steps``, ``max_steps`` and ``agents`` are read.
        output_dir: where the stream and the exports go (created with the recorder).
        simulation_id: prefix of every event id.
        events: recorded events in order (read-only): the list kept in memory with
            ``keep_in_memory``, else a new list read back from the stream on each access.
        simulation_metadata: ``simulation_id``, ``start_time``, ``model_class`` and, after `save`,
            the end-of-run fields of the export.
        start_time: UTC time the recorder was created.
        encode: the recorder's compact JSON encoder (value -> text), for callers that encode a
            content once and pass it to `record_event` as ``encoded``.
    """

    def __init__(
        self,
        model: Any | None = None,
        output_dir: str | Path = "recordings",
        *,
        simulation_id: str | None = None,
        stream: bool = True,
        run_name: str | None = None,
        keep_in_memory: bool | None = None,
        record_state_changes: bool = True,
        auto_save_interval: int | None = None,
        keep_events: bool | None = None,
        storage_mode: str | None = None,
        max_events_in_memory: int | None = None,
    ) -> None:
        """Create a recorder and its output folder (as the mesa-llm recorder does); the stream
        file with the first event (at once with ``storage_mode="jsonl"``).

        Args:
            model: the model recorded; None for a standalone recorder (step 0 unless given).
            output_dir: directory of the JSON-lines stream and of `save` exports.
            simulation_id: prefix of the event ids; the model passes a hash of scenario and seed
                (see `make_simulation_id`) so that equal seeds give equal ids. Random if None.
            stream: write each event as a line of ``<run_name or simulation_<id>>.jsonl``.
            run_name: stem of the stream file name.
            keep_in_memory: keep the events (and the per-agent/type/step indexes) in memory for the
                query methods. None (the default) means "only when not streaming": a streaming
                recorder keeps nothing, so a long run's memory does not grow with its length, and
                the query methods read the stream back.
            record_state_changes: kept from the mesa-llm recorder; the model reads it to decide
                whether to record ``agent_state`` events every step.
            auto_save_interval: write a `save` snapshot every this many events.
            keep_events: another name for `keep_in_memory` (give one or the other).
            storage_mode: the mesa-llm recorder's switch. ``"memory"``: keep every event in memory
                and write no stream (``stream=False``); ``"jsonl"``: stream to
                ``simulation_<id>_events.jsonl`` (unless `run_name` is given), created now. None
                (the default): as `stream` says. Recorded as ``simulation_metadata["storage_mode"]``.
            max_events_in_memory: with a stream, `events` is the last this many events only (the
                queries still read the whole stream); None: `events` reads the stream back.
        """
        if storage_mode is not None:
            if storage_mode not in ("memory", "jsonl"):
                raise ValueError(f"storage_mode must be 'memory' or 'jsonl', got {storage_mode!r}")
            stream = storage_mode == "jsonl"
            if stream and keep_in_memory is None and keep_events is None:
                keep_in_memory = False
        if keep_events is not None:
            if keep_in_memory is not None and keep_in_memory != keep_events:
                raise ValueError("keep_events and keep_in_memory disagree; give only one")
            keep_in_memory = keep_events
        if keep_in_memory is None:
            keep_in_memory = not stream
        if not stream and not keep_in_memory:
            raise ValueError("stream=False and keep_in_memory=False would record nothing")
        if auto_save_interval is not None and auto_save_interval <= 0:
            raise ValueError(f"auto_save_interval must be positive, got {auto_save_interval}")
        if max_events_in_memory is not None and (keep_in_memory or max_events_in_memory < 0):
            raise ValueError(
                f"max_events_in_memory={max_events_in_memory} needs a streaming recorder that does not "
                "keep every event, and a count of 0 or more"
            )
        self.model = model
        self.output_dir = Path(output_dir)
        # created now, as the mesa-llm recorder does: a folder that cannot be made fails here,
        # before the run, not at its first event
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.simulation_id: str = (
            simulation_id if simulation_id is not None else secrets.token_hex(4)
        )
        self.stream = stream
        self.storage_mode = "jsonl" if stream else "memory"
        self.max_events_in_memory = max_events_in_memory
        if storage_mode == "jsonl" and run_name is None:
            run_name = f"simulation_{self.simulation_id}_events"  # the mesa-llm stream's name
        self.run_name = run_name
        self.keep_in_memory = keep_in_memory
        self.record_state_changes = record_state_changes
        self.auto_save_interval = auto_save_interval

        self._events: list[SimulationEvent] = []  # only with keep_in_memory
        self.start_time = datetime.now(UTC)
        self.previous_agent_states: dict[int, dict[str, Any]] = {}  # kept from the seed
        self.events_since_save = 0
        self.simulation_metadata: dict[str, Any] = {
            "simulation_id": self.simulation_id,
            "start_time": self.start_time.isoformat(),
            "model_class": type(model).__name__ if model is not None else None,
            "storage_mode": self.storage_mode,
        }
        # the last events, for `events` with max_events_in_memory (bounded by it)
        self._recent: deque[SimulationEvent] | None = (
            deque(maxlen=max_events_in_memory) if max_events_in_memory is not None else None
        )

        self._id_prefix = f"{self.simulation_id}_"
        self._count = 0  # events recorded (the save() checkpoint marker is not one)
        self._by_agent: dict[int, list[SimulationEvent]] = {}
        self._by_type: dict[str, list[SimulationEvent]] = {}
        self._by_step: dict[int, list[SimulationEvent]] = {}
        # Counts kept instead of the indexes when the events are not kept in memory.
        self._agent_counts: Counter[Any] = Counter()
        self._type_counts: Counter[str] = Counter()
        self._header: dict[str, Any] | None = None
        self._checkpoint: SimulationEvent | None = None  # simulation_end marker appended by save()
        self._end_status: str | None = None  # set once simulation_end is recorded
        self._file: IO[bytes] | None = None
        self._jsonl_path: Path | None = None
        self._offset = 0  # bytes of the stream (written or pending)
        # Lines recorded since the last write, written as one text by `flush` (every step) or
        # when they pass _PENDING_CHARS: one write per step instead of one call per event.
        self._pending: list[str] = []
        self._pending_chars = 0
        # Byte ranges of the most recent steps in the stream (step -> [start, end)), so that
        # get_events_by_step() reads back one step, not the whole file (replay --verify asks for
        # every step as it goes). Bounded to _STEP_INDEX_SIZE steps; only steps whose events form
        # one contiguous run, first seen after every earlier step, are indexed (see _index_step).
        self._step_ranges: dict[int, list[int]] = {}
        self._run_step: Any = None  # step of the last streamed event
        self._run_range: list[int] | None = None  # its range in _step_ranges, if indexed
        self._max_step: int | None = None
        self._closed = False
        self._blocked = False  # closed or ended: no more events
        # Stream-line helpers (see record_event): the escaped id prefix without its closing quote,
        # escaped event types, and the ISO text of the current wall-clock second.
        self._encode = self.encode = _make_encoder()
        #: values their owners keep unchanged (`keep_encoded`), by id: (value, its JSON once made
        #: and whether that names a secret key, or None before)
        self._kept: dict[int, tuple[Any, tuple[str, bool] | None]] = {}
        self._id_prefix_json = self._encode(self._id_prefix)[:-1]
        self._type_json: dict[str, str] = {}
        self._second = -1  # the wall-clock second (since the epoch) whose ISO text is _second_text
        self._second_text = ""
        if storage_mode == "jsonl":
            self._open_stream()  # the mesa-llm recorder creates its stream file at once

    # -- properties ----------------------------------------------------------------------------

    @property
    def events(self) -> list[SimulationEvent]:
        """Recorded events in order (treat as read-only).

        With ``keep_in_memory`` the list kept in memory; with ``max_events_in_memory`` the last
        events only; otherwise a new list read back from the stream at each access (plus the
        marker of the last `save`, as long as it stands).
        """
        if self.keep_in_memory:
            return self._events
        if self._recent is not None:
            return list(self._recent)
        return self._read_back(lambda e: True)

    @property
    def jsonl_path(self) -> Path | None:
        """Path of the JSON-lines stream; None before the first event or when not streaming."""
        return self._jsonl_path

    @property
    def events_stream_path(self) -> Path | None:
        """The mesa-llm recorder's name for `jsonl_path`."""
        return self._jsonl_path

    @property
    def total_events_recorded(self) -> int:
        """Events recorded so far (not counting the marker a `save` appends)."""
        return self._count

    def iter_events(self) -> Iterator[SimulationEvent]:
        """Every recorded event in order, one at a time (read back from the stream unless kept)."""
        if self.keep_in_memory:
            yield from list(self._events)
            return
        for line in self._stream_lines():
            yield _event_from_dict(json.loads(line))
        if self._checkpoint is not None:
            yield self._checkpoint

    # the mesa-llm recorder's name (its tests call it)
    _iter_all_events = iter_events

    @property
    def header(self) -> dict[str, Any] | None:
        """Content of the first ``simulation_start`` event, if one was recorded."""
        return self._header

    @property
    def ended(self) -> bool:
        """Whether ``simulation_end`` has been recorded (no event may follow it)."""
        return self._end_status is not None

    # -- recording -----------------------------------------------------------------------------

    def record_event(
        self,
        event_type: str,
        content: dict[str, Any] | str | Any | None = None,
        agent_id: int | None = None,
        metadata: dict[str, Any] | None = None,
        recipient_ids: list[int] | None = None,
        *,
        step: int | None = None,
        as_given: bool = False,
        encoded: str | None = None,
    ) -> SimulationEvent:
        """Record one event, write it to the stream at once, and return it.

        Content is formatted as in the mesa-llm recorder: a ``message``'s content, whatever it is,
        becomes ``{"message": content, "recipient_ids": recipient_ids or []}``; for other types a
        dict is used as is (not copied) and anything else becomes ``{"data": content}``. With
        `as_given` a dict content is recorded as it is for every type (the model's own events,
        whose ``message`` content already has the recording contract's ``recipient_ids``,
        ``text`` and ``channel``). `metadata` None becomes ``{}``; `step` None becomes
        ``model.steps``. ``events_since_save`` counts every event, as in the mesa-llm recorder.
        `encoded` is the text of the (dict) content as `encode` gives it, already made by the
        caller (an observation splices the market part all agents share): it is streamed as is.

        Secrets: for ``llm_call`` and ``simulation_start`` events, content and metadata are walked in
        full by `redact`; for other types (the hot path) only their top-level keys are checked, with
        exact (case-sensitive) matching against `SECRET_KEYS`, and walked in full on a hit.

        Raises:
            RuntimeError: after `close` or after ``simulation_end`` was recorded.
        """
        if self._blocked:
            raise RuntimeError(
                f"cannot record {event_type!r}: the recording is "
                + ("closed" if self._closed else "ended (simulation_end was recorded)")
            )
        data: dict[str, Any]
        if event_type == MESSAGE and not (as_given and isinstance(content, dict)):
            data = {"message": content, "recipient_ids": list(recipient_ids or [])}
        elif isinstance(content, dict):
            data = content
        else:
            data = {"data": content}
        if metadata is None:
            metadata = {}
        # Deep walk only where secrets are expected; elsewhere a C-speed top-level key check.
        content_json: str | None = None
        if event_type in _DEEP_REDACT_TYPES and self.stream and encoded is None:
            # The walk costs twice what encoding does (an llm_call's request: ~140 us against
            # ~60 us): encode first, and walk only when the text names a secret key as a key.
            names: bool | None = None  # whether the text names a secret key, when already known
            if event_type == LLM_CALL:
                content_json, names = self._encode_llm_call(data)
            else:
                content_json = self._encode(data)
            if names is None:
                names = _names_secret_key(content_json)
            if names or (metadata and _names_secret_key(self._encode(metadata))):
                content_json = None
                data = redact(data)
                metadata = redact(metadata)
        elif (
            event_type in _DEEP_REDACT_TYPES
            or not SECRET_KEYS.isdisjoint(data)
            or (metadata and not SECRET_KEYS.isdisjoint(metadata))
        ):
            data = redact(data)
            metadata = redact(metadata)
        if step is None:
            try:
                step = self.model.steps  # type: ignore[union-attr]
            except AttributeError:  # no model, or a model without steps
                step = 0
        if self._checkpoint is not None:
            self._drop_checkpoint()

        micros = time.time_ns() // 1000  # datetime.now's clock and its floor to the microsecond
        timestamp = _EPOCH + timedelta(microseconds=micros)
        index = self._count
        event = SimulationEvent(
            f"{self._id_prefix}{index:06d}", timestamp, step, agent_id, event_type, data, metadata
        )
        if self.stream:
            if content_json is None:
                content_json = encoded if encoded is not None and data is content else self._encode(data)
            self._stream_line(event_type, content_json, self._encode(metadata) if metadata else "{}", agent_id, step, micros, index)
        self._count = index + 1
        if self._recent is not None:
            self._recent.append(event)
        if self.keep_in_memory:
            self._events.append(event)
            if agent_id is not None:
                try:
                    self._by_agent[agent_id].append(event)
                except KeyError:
                    self._by_agent[agent_id] = [event]
            try:
                self._by_type[event_type].append(event)
            except KeyError:
                self._by_type[event_type] = [event]
            try:
                self._by_step[step].append(event)
            except KeyError:
                self._by_step[step] = [event]
        else:
            if agent_id is not None:
                self._agent_counts[agent_id] = self._agent_counts.get(agent_id, 0) + 1
            self._type_counts[event_type] = self._type_counts.get(event_type, 0) + 1
        if event_type == SIMULATION_START:
            if self._header is None:
                self._header = data
            # on disk at step 0: a slow first step (a local model) must not leave the file empty
            self.flush()
        elif event_type == SIMULATION_END:
            self._end_status = str(data.get("status", "unknown"))
            self._blocked = True

        self.events_since_save += 1
        if self.auto_save_interval and self.events_since_save >= self.auto_save_interval:
            self.save(f"autosave_{self.simulation_id}_{self._count}.json")
            self.events_since_save = 0
        return event

    def keep_encoded(self, value: Any) -> None:
        """Note that ``value`` (a list or dict) stays unchanged from now on: an LLM policy's
        run-long tool list, which every ``llm_call`` of its agent records as ``request.tools``.
        Its JSON is then made once and put in place in each such event's text (the same bytes:
        ~2.4 KB of a ~4.7 KB act call, most of its encoding time)."""
        if self._kept.get(id(value), (None,))[0] is not value:
            if len(self._kept) > 1024:  # populations' lists; a long-lived recorder drops old ones
                self._kept.clear()
            self._kept[id(value)] = (value, None)

    def _encode_llm_call(self, data: dict[str, Any]) -> tuple[str, bool | None]:
        """``encode(data)`` of an ``llm_call`` content, encoded once with its request's already-made parts put in
        place: the messages' JSON (`mesa_llm.encoded_json.messages_json`: each message's strings encoded once
        for the request body, its key and this record) and a kept `request.tools` (`keep_encoded`: made once
        per list); and whether the text names a secret key as a key (`_names_secret_key`), read from the text
        around those parts and the kept list's own answer, made once (None when nothing was put in place: the
        caller reads the whole text). Plain messages (``{"role": str, "content": str}``) name no key but those
        two: their strings' quotes are escaped, so no ``"key":`` is read inside them."""
        request = data.get("request")
        if type(request) is not dict:
            return self._encode(data), None
        if tuple(data) == _CALL_KEYS and tuple(request) == _REQUEST_KEYS:  # the policy's content
            done = self._llm_call_template(data, request)
            if done is not None:
                return done
        elif not all(type(k) is str for k in data):
            return self._encode(data), None
        made: dict[str, str] = {}
        messages = messages_json(request.get("messages"))
        if messages is not None:
            made["messages"] = messages
        names = False
        tools = request.get("tools")
        kept = self._kept_tools(tools) if tools is not None else None
        if kept is not None:
            made["tools"], names = kept
        if not made:
            return self._encode(data), None
        stand_in = {k: (PLACEHOLDER if k in made else v) for k, v in request.items()}
        # the placeholder is a string: its edges are quotes, and the parts put in place start with "[" or "{"
        # and end with "]" or "}", which no secret key's '"key":' holds: no match runs across their edges
        around = self._encode({k: (stand_in if k == "request" else v) for k, v in data.items()})
        whole = fill(around, [made[k] for k in request if k in made])
        if whole is None:  # a content that held the placeholder itself
            return self._encode(data), None
        return whole, names or _names_secret_key(around)

    def _kept_tools(self, tools: Any) -> tuple[str, bool] | None:
        """A kept tool list's JSON and whether it names a secret key (made once per list), or None
        when ``tools`` is not kept (`keep_encoded`)."""
        kept = self._kept.get(id(tools))
        if kept is None or kept[0] is not tools:
            return None
        done = kept[1]
        if done is None:
            text = self._encode(tools)
            done = (text, _names_secret_key(text))
            self._kept[id(tools)] = (tools, done)
        return done

    def _llm_call_template(self, data: dict[str, Any], request: dict[str, Any]) -> tuple[str, bool] | None:
        """`_encode_llm_call` for a content with the policy's keys (`_CALL_KEYS`, its request's `_REQUEST_KEYS`,
        in that order), plain messages, string model, purpose and hash, and no or a kept tool list: its text
        written from a fixed template with the messages and tools put in as made and the rest encoded in two
        pieces, without placeholders to split; and whether a secret key is named (read from those two pieces
        and the kept list's answer: the template's keys are none, its strings' quotes escaped). None for any
        other such content (the placeholder way)."""
        model, purpose, key = data["model"], data["purpose"], data["request_hash"]
        if type(model) is not str or type(purpose) is not str or type(key) is not str:
            return None
        messages = messages_json(request["messages"])
        if messages is None:
            return None
        tools = request["tools"]
        if tools is None:
            tools_text, names = "null", False
        else:
            kept = self._kept_tools(tools)
            if kept is None:
                return None
            tools_text, names = kept
        encode = self._encode
        # the request after its tools, closing it, and the content after its request, closing it
        request_rest = encode({"tool_choice": request["tool_choice"], "response_format": request["response_format"],
                               "params": request["params"]})  # fmt: skip
        rest = encode({name: data[name] for name in _CALL_REST})
        text = (
            f'{{"model":{encoded_text(model)},"purpose":{encoded_text(purpose)},"request_hash":{_quoted(key)},'
            f'"request":{{"messages":{messages},"tools":{tools_text},{request_rest[1:]},{rest[1:]}'
        )
        # read as one text: no secret key's '"key":' holds the "}{" where the two pieces meet
        return text, names or _names_secret_key(request_rest + rest)

    def stream_event(
        self, event_type: str, encoded: str | None, agent_id: int | None = None, *, step: int,
        content: dict[str, Any] | None = None,
    ) -> bool:  # fmt: skip
        """Stream an event as `record_event` with ``as_given`` would (the same line), without
        building its event object, and return True; ``encoded`` is its content's JSON text made
        with `encode`, or None to have ``content`` encoded here.

        The hot path of a streaming recorder: returns False, recording nothing, when the event
        needs `record_event` (a recorder that keeps events or the last ones, an auto-save, a
        closed recording, a ``save`` marker to drop, the types with side effects or walked for
        secrets, a ``content`` with a secret key at its top level; then call it). Given only
        ``encoded``, the caller vouches that the content has no `SECRET_KEYS` at its top level
        (its keys are fixed, as an observation's).
        """
        return self._lean(event_type, content, encoded, agent_id, step)

    def record_lean(
        self, event_type: str, content: dict[str, Any] | Callable[[], dict[str, Any]], agent_id: int | None = None, *,
        step: int, encoded: str | None = None, need_event: bool = False,
    ) -> SimulationEvent | None:  # fmt: skip
        """`record_event` with ``as_given``, streamed by `stream_event` when it can (then None is
        returned: no event object is built) unless ``need_event``. ``content`` may be a function
        making the dict when ``encoded`` is given: it is called only if the dict is needed. An
        ``llm_call`` given as its dict is streamed too, when it names no secret key (`_lean_call`)."""
        if not need_event and (
            self._lean_call(content, agent_id, step) if event_type == LLM_CALL and encoded is None
            else self._lean(event_type, content, encoded, agent_id, step)
        ):  # fmt: skip
            return None
        if callable(content):
            content = content()
        return self.record_event(event_type, content, agent_id=agent_id, step=step, as_given=True, encoded=encoded)

    def _lean(self, event_type: str, content: Any, encoded: str | None, agent_id: Any, step: Any) -> bool:
        """`stream_event`'s work (``content`` may be a function, as `record_lean`'s: then only
        ``encoded`` is streamed)."""
        if event_type in _SPECIAL_TYPES or not self._lean_ready():
            return False
        if content is not None and not callable(content):
            shape = SHAPES.get(event_type) if encoded is None else None
            text = shape(content) if shape is not None else None
            if text is not None:  # a fixed shape: its keys are known, none of them a secret key
                encoded = text
            elif not isinstance(content, dict) or not SECRET_KEYS.isdisjoint(content):
                return False
            elif encoded is None:
                encoded = self._encode(content)
        elif encoded is None:
            return False
        return self._stream_lean(event_type, encoded, agent_id, step)

    def _lean_call(self, content: Any, agent_id: Any, step: Any) -> bool:
        """`_lean` for an ``llm_call`` (`record_lean` only): its line as `record_event` writes it
        (`_encode_llm_call`), streamed when no secret key is named (else `record_event` blanks them)."""
        if type(content) is not dict or not self._lean_ready():
            return False
        made, names = self._encode_llm_call(content)
        if names or (names is None and _names_secret_key(made)):
            return False
        return self._stream_lean(LLM_CALL, made, agent_id, step)

    def _stream_lean(self, event_type: str, encoded: str, agent_id: Any, step: Any) -> bool:
        """Stream one lean event's line (its content's text ``encoded``) and count it."""
        index = self._count
        self._stream_line(event_type, encoded, "{}", agent_id, step, time.time_ns() // 1000, index)
        self._count = index + 1
        if agent_id is not None:
            self._agent_counts[agent_id] = self._agent_counts.get(agent_id, 0) + 1
        self._type_counts[event_type] = self._type_counts.get(event_type, 0) + 1
        self.events_since_save += 1
        return True

    def record_many(self, items: Iterable[LeanItem], *, step: int) -> None:
        """`record_lean` (``need_event`` False) for each ``(event_type, content, agent_id, encoded)``
        in order, all at ``step``: the same lines, ids, counts and step index, with the lines of
        the items the lean path takes built in one loop and added to the stream together.

        Their timestamp is taken once per batch (one clock reading for all of them, not one
        each). An item the lean path refuses (a type with side effects or walked for secrets, a
        top-level secret key; every item when the recorder keeps events, auto-saves, has a
        ``save`` marker or is closed) goes through `record_lean` in its place, in order, and then
        raises as it would."""
        lines: list[str] = []
        index = start = self._count
        stamp = ""  # the batch's timestamp and step, made at its first lean line
        shapes, encode, special = SHAPES, self._encode, _SPECIAL_TYPES
        agent_counts, type_counts = self._agent_counts, self._type_counts
        lean = self._lean_ready()
        for event_type, content, agent_id, encoded in items:
            if lean and event_type not in special:
                # what `_lean` streams, or None where it refuses
                text = encoded
                if content is not None and not callable(content):
                    shape = shapes.get(event_type) if encoded is None else None
                    text = shape(content) if shape is not None else None  # a fixed shape: no secret key
                    if text is None and isinstance(content, dict) and SECRET_KEYS.isdisjoint(content):
                        text = encoded if encoded is not None else encode(content)
                if text is not None:
                    if not stamp:  # datetime.now's clock, floored to the microsecond
                        stamp = self._stamp_prefix(time.time_ns() // 1000, step)
                    type_json = self._type_json.get(event_type)
                    if type_json is None:
                        type_json = self._type_json[event_type] = encode(event_type)
                    lines.append(
                        f'{{"event_id":{self._id_prefix_json}{str(index).zfill(6)}",{stamp}'
                        f'{"null" if agent_id is None else agent_id if type(agent_id) is int else encode(agent_id)},'
                        f'"event_type":{type_json},"content":{text},"metadata":{{}}}}\n'
                    )  # fmt: skip
                    index += 1
                    if agent_id is not None:
                        agent_counts[agent_id] = agent_counts.get(agent_id, 0) + 1
                    type_counts[event_type] = type_counts.get(event_type, 0) + 1
                    continue
            # not lean: the lines so far go first, then this item the usual way, in its place
            self._add_lines(lines, index - start, step)
            lines = []
            self.record_lean(event_type, content, agent_id, step=step, encoded=encoded)
            index = start = self._count
            lean = self._lean_ready()
        self._add_lines(lines, index - start, step)

    def record_texts(
        self, event_type: str | Sequence[str], agent_ids: Sequence[int], texts: Sequence[str] | None, *, step: int,
        pieces: Sequence[Sequence[str]] | None = None,
    ) -> bool:
        """`record_many` of ``(event_type, content, agent_id, text)`` for each agent id and content
        text, in order (every agent id an int): the same lines, ids, counts and step index, made
        and added to the stream as one text. ``event_type`` is the type of every line, or a
        sequence of one type per line (a batch's action and order lines, alternating). Returns
        False, recording nothing, when `record_many` would not stream them all (a type, or a
        recorder not ready for the lean path): then record them the usual way. The caller vouches
        that no content has a `SECRET_KEYS` key at its top level (an observation's keys are fixed).
        ``pieces`` (``texts`` None): the content texts as columns of pieces (text ``i`` the join of
        each column's item ``i``), joined into the lines with the rest, each piece copied once."""
        if not self._lean_ready() or step.__class__ is not int:
            return False
        if pieces is not None:
            columns = list(pieces)
            count = len(columns[0]) if columns else -1
            if texts is not None or any(len(column) != count for column in columns):
                return False
        else:
            if texts is None:
                return False
            columns = [texts]
            count = len(texts)
        if count != len(agent_ids) or not _INT.issuperset(map(type, agent_ids)):
            return False
        # one type for all (``single``), or one per line (``per_line``)
        single, per_line = (event_type, None) if isinstance(event_type, str) else ("", event_type)
        kinds: tuple[str, ...] = (single,)  # the types, in the order they first appear
        if per_line is not None:
            kinds = tuple(dict.fromkeys(per_line)) if len(per_line) == count else ()
            if len(per_line) != count or any(t.__class__ is not str or t in _SPECIAL_TYPES for t in kinds):
                return False
        elif single in _SPECIAL_TYPES:
            return False
        if not count:
            return True
        start = self._count
        type_jsons = self._type_json
        for name in kinds:
            if name not in type_jsons:
                type_jsons[name] = self._encode(name)
        # The lines are joined from their pieces, not made one by one: each line is the same text
        # around its index, agent id (and type) and content, and the pieces come from iterators over
        # the columns, so no Python code runs per line and each content is copied once, into its
        # chunk. The line's head and index are two pieces (`_index_pieces`); an int agent id's str is its JSON.
        head = f'{{"event_id":{self._id_prefix_json}'
        stamp = f'",{self._stamp_prefix(time.time_ns() // 1000, step)}'
        tail = ',"metadata":{}}\n'
        if per_line is not None:
            middles = {name: f',"event_type":{type_jsons[name]},"content":' for name in kinds}
            middle: Iterator[str] = map(middles.__getitem__, per_line)
        else:
            middle = repeat(f',"event_type":{type_jsons[single]},"content":')
        rows = zip(*_index_pieces(start, count, head), repeat(stamp),
                   int_texts(agent_ids), middle, *columns, repeat(tail))  # fmt: skip
        # joined in chunks of about what the stream writes at once (not one text of megabytes)
        size = max(_PENDING_CHARS // (sum(len(column[0]) for column in columns) + len(head) + len(stamp) + 80), 1)
        chunks = ["".join(chain.from_iterable(islice(rows, size))) for _ in range(0, count, size)]
        self._agent_counts.update(agent_ids)  # counted in C (`Counter.update`), in the lines' order
        if per_line is not None:  # (as ``update`` counts them, a pass per type in C)
            for name in kinds:
                self._type_counts[name] = self._type_counts.get(name, 0) + per_line.count(name)
        else:
            self._type_counts[single] = self._type_counts.get(single, 0) + count
        self._add_lines(chunks, count, step)
        return True

    def _lean_ready(self) -> bool:
        """Whether `_lean` may stream events now (their types and contents aside)."""
        return not (
            not self.stream or self.keep_in_memory or self._recent is not None or self._blocked
            or self.auto_save_interval or self._checkpoint is not None
        )  # fmt: skip

    def _stamp_prefix(self, micros: int, step: Any) -> str:
        """The text of a stream line from its timestamp to its ``agent_id`` value (exclusive)."""
        second, micro = divmod(micros, 1_000_000)
        if second != self._second:
            self._set_second(second)
        return (
            f'"timestamp":"{self._second_text}{"." + str(micro).zfill(6) + "+00:00" if micro else "+00:00"}",'
            f'"step":{step if type(step) is int else self._encode(step)},"agent_id":'
        )

    def _add_lines(self, lines: list[str], count: int, step: Any) -> None:
        """Add ``count`` lines of events of ``step`` made by `record_many` (their ids taken in
        order from ``_count``) to the stream, as `_stream_line` adds one."""
        if not lines:
            return
        if self._file is None:
            self._open_stream()
        size = 0
        pending, chars, ascii_only = self._pending, self._pending_chars, True
        for line in lines:  # written in chunks of about _PENDING_CHARS, as `_stream_line` does
            n = len(line)
            size += n
            ascii_only = ascii_only and line.isascii()  # a flag of the text, not a scan
            if n >= _PENDING_CHARS // 2:  # a chunk of `record_texts`: written as it is, not joined again
                self._write_pending()
                self._file.write(line.encode("utf-8"))  # type: ignore[union-attr]  # opened above
                chars = 0
                continue
            pending.append(line)
            chars += n
            if chars > _PENDING_CHARS:
                self._write_pending()
                chars = 0
        self._pending_chars = chars
        start = self._offset
        self._offset = end = start + (size if ascii_only else sum(len(line.encode("utf-8")) for line in lines))
        self._count += count
        self.events_since_save += count
        if step == self._run_step and step.__class__ is int:
            if self._run_range is not None:
                self._run_range[1] = end
        else:
            self._index_step(step, start, end)

    def _stream_line(
        self, event_type: str, content_json: str, metadata_json: str, agent_id: Any, step: Any, micros: int, index: int
    ) -> None:
        """Add one event's line to the stream (written by `flush`) and index its step's bytes;
        ``micros``: the event's time, in microseconds since the epoch (UTC)."""
        # The line is assembled by hand around the encoded content: encoding the whole event
        # dict would cost twice as much. Same bytes as encoding event.to_dict().
        encode = self._encode
        second, micro = divmod(micros, 1_000_000)
        if second != self._second:
            self._set_second(second)
        type_json = self._type_json.get(event_type)
        if type_json is None:
            type_json = self._type_json[event_type] = encode(event_type)
        # one f-string: the line (kilobytes for an observation) is built in one allocation;
        # str(n).zfill(6) is f"{n:06d}" (sign first, then zeros, for any int) at a third of its cost
        line = (
            f'{{"event_id":{self._id_prefix_json}{str(index).zfill(6)}",'
            f'"timestamp":"{self._second_text}{"." + str(micro).zfill(6) + "+00:00" if micro else "+00:00"}",'
            f'"step":{step if type(step) is int else encode(step)},'
            f'"agent_id":{"null" if agent_id is None else agent_id if type(agent_id) is int else encode(agent_id)},'
            f'"event_type":{type_json},"content":{content_json},'
            f'"metadata":{metadata_json}}}\n'
        )
        if self._file is None:
            self._open_stream()
        self._pending.append(line)
        size = len(line)  # its bytes: isascii() is a flag lookup, encoding is a copy
        start = self._offset
        self._offset = end = start + (size if line.isascii() else len(line.encode("utf-8")))
        self._pending_chars += size
        if self._pending_chars > _PENDING_CHARS:
            self._write_pending()
        if step == self._run_step and step.__class__ is int:
            if self._run_range is not None:
                self._run_range[1] = end
        else:
            self._index_step(step, start, end)

    def record_model_event(self, event_type: str, content: dict[str, Any]) -> SimulationEvent:
        """Record a model-level event (no agent; metadata ``{"source": "model"}``)."""
        return self.record_event(
            event_type=event_type, content=content, agent_id=None, metadata={"source": "model"}
        )

    def record_simulation_end(self, status: str, house: dict[str, Any] | None = None) -> SimulationEvent:
        """Record the final ``simulation_end`` event (on the stream too) and return it.

        Content: ``status``, ``final_step`` (current step), ``total_events`` (events recorded
        before this one) and, when given, the ``house`` account ({cash, holdings}: fees and fines
        collected). No event may be recorded after it; `save` then exports it as is instead
        of appending its own marker.
        """
        content: dict[str, Any] = {"status": status, "final_step": self._current_step(), "total_events": self._count}
        if house is not None:
            content["house"] = house
        return self.record_event(
            SIMULATION_END,
            content,
            agent_id=None,
            metadata={"source": "model"},
        )

    # -- stream --------------------------------------------------------------------------------

    def flush(self, fsync: bool = False) -> None:
        """Push buffered stream lines to the OS (and to disk with ``fsync=True``)."""
        if self._file is not None:
            self._write_pending()
            self._file.flush()
            if fsync:
                os.fsync(self._file.fileno())

    def close(self) -> None:
        """Flush and close the stream. Idempotent; no event may be recorded afterwards."""
        if self._file is not None:
            self._write_pending()
            self._file.flush()
            self._file.close()
            self._file = None
        self._closed = True
        self._blocked = True

    def __enter__(self) -> SimulationRecorder:
        """Return the recorder; leaving the ``with`` block closes it."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the stream (does not record ``simulation_end``: a crash stays visible as a cut)."""
        self.close()

    # -- queries -------------------------------------------------------------------------------

    def get_agent_events(self, agent_id: int) -> list[SimulationEvent]:
        """Return all events of one agent, in order (read back from the stream unless kept)."""
        if self.keep_in_memory:
            return list(self._by_agent.get(agent_id, ()))
        return self._read_back(lambda e: e["agent_id"] == agent_id)

    def get_events_by_type(self, event_type: str) -> list[SimulationEvent]:
        """Return all events of one type, in order (read back from the stream unless kept)."""
        if self.keep_in_memory:
            return list(self._by_type.get(event_type, ()))
        return self._read_back(lambda e: e["event_type"] == event_type)

    def get_events_by_step(self, step: int) -> list[SimulationEvent]:
        """Return all events of one simulation step, in order (read back from the stream unless kept).

        Reading back, one of the last few steps costs a read of that step only; an older one
        costs a read of the whole stream.
        """
        if self.keep_in_memory:
            return list(self._by_step.get(step, ()))
        span = self._step_ranges.get(step) if type(step) is int else None
        if span is None:
            return self._read_back(lambda e: e["step"] == step)
        self.flush()
        assert self._jsonl_path is not None  # an indexed step was streamed
        with open(self._jsonl_path, "rb") as f:
            f.seek(span[0])
            chunk = f.read(span[1] - span[0])
        events = [_event_from_dict(json.loads(raw)) for raw in chunk.splitlines() if raw.strip()]
        marker = self._checkpoint
        if marker is not None and marker.step == step:
            events.append(marker)
        return events

    def export_agent_memory(self, agent_id: int) -> dict[str, Any]:
        """Export one agent's events and a summary, in the mesa-llm recorder's shape.

        ``{"agent_id", "events": [event dicts], "summary": {"total_events", "event_types",
        "active_steps", "first_event", "last_event"}}``; timestamps are ISO strings.
        """
        agent_events = (
            self._by_agent.get(agent_id, [])
            if self.keep_in_memory
            else self.get_agent_events(agent_id)
        )
        return {
            "agent_id": agent_id,
            "events": [event.to_dict() for event in agent_events],
            "summary": _summary(agent_events),
        }

    def get_stats(self) -> dict[str, Any]:
        """Return recording statistics (the mesa-llm recorder's keys).

        ``total_events`` counts recorded events, not the marker a `save` appends.
        """
        if self.keep_in_memory:
            per_agent = {agent_id: len(evs) for agent_id, evs in self._by_agent.items()}
            event_types = list(self._by_type)
        else:
            per_agent = dict(self._agent_counts)
            event_types = list(self._type_counts)
        elapsed = datetime.now(UTC) - self.start_time
        return {
            "total_events": self._count,
            "unique_agents": len(per_agent),
            "event_types": event_types,
            "simulation_steps": self._current_step(),
            "recording_duration_minutes": elapsed.total_seconds() / 60,
            "events_per_agent": per_agent,
        }

    # -- single-file export --------------------------------------------------------------------

    def save(self, filename: str | None = None, format: str = "json") -> Path:
        """Write the single-file JSON export of the mesa-llm recorder and return its path.

        ``{"metadata": {..., "end_time", "total_steps", "total_events", "total_agents",
        "duration_minutes", "completion_status"}, "events": [...], "agent_summaries": {...}}``.

        The export ends with one ``simulation_end`` event: the one `record_simulation_end` recorded
        or, before that, a marker built here (status from ``max_steps``) which is appended to
        `events` and replaced by the next `save` or dropped by the next `record_event`, as in the
        mesa-llm recorder. The marker is never written to the stream.

        With `filename` None the name is ``simulation_<id>_<UTC time>.json`` made unique; a given
        `filename` (relative to `output_dir`) is replaced atomically if it exists.

        Raises:
            ValueError: for ``format="pickle"`` (never supported) or any format other than "json"
                (with the mesa-llm recorder's message, "Format must be 'json' or 'pickle'").
        """
        if format == "pickle":
            raise ValueError(_PICKLE_ERROR)
        if format != "json":
            raise ValueError(
                f"Format must be 'json' or 'pickle', got {format!r}; only 'json' is written here "
                "(a pickle file can execute code when loaded)"
            )

        self.output_dir.mkdir(parents=True, exist_ok=True)
        if filename is None:
            stem = f"simulation_{self.simulation_id}_{datetime.now(UTC).strftime('%Y%m%d_%H%M%S')}"
            filepath = _unique_path(self.output_dir, stem, ".json")
        else:
            filepath = _inside(self.output_dir, filename)
        self.flush()

        if self._checkpoint is not None:
            self._drop_checkpoint()
        step = self._current_step()
        now = datetime.now(UTC)
        real_events = self._count - (1 if self._end_status is not None else 0)
        max_steps = getattr(self.model, "max_steps", None) if self.model is not None else None
        if self._end_status is not None:
            status = self._end_status
        elif max_steps is None:
            status = "unknown"
        else:
            status = "interrupted" if step < max_steps else "completed"
        self.simulation_metadata.update(
            {
                "end_time": now.isoformat(),
                "total_steps": step,
                "total_events": real_events,
                "total_agents": self._agent_total(),
                "duration_minutes": (now - self.start_time).total_seconds() / 60,
                "completion_status": status,
                "jsonl_path": str(self._jsonl_path) if self._jsonl_path is not None else None,
            }
        )

        marker: SimulationEvent | None = None
        if self._end_status is None:
            marker = SimulationEvent(
                event_id=f"{self._id_prefix}{self._count:06d}",
                timestamp=now,
                step=step,
                agent_id=None,
                event_type=SIMULATION_END,
                content={"status": status, "final_step": step, "total_events": real_events},
                metadata={"source": "model"},
            )
            if self.keep_in_memory:
                self._index(marker)
            self._checkpoint = marker  # seen by the queries until the next event replaces it

        # Same shape as the mesa-llm export (json.dump with indent=2), but one compact line per
        # event: json's C encoder does not indent, and the pure-Python one is 4x slower.
        encode = self._encode
        filepath.parent.mkdir(parents=True, exist_ok=True)
        tmp = filepath.with_name(filepath.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write('{\n  "metadata": ' + _indented(self.simulation_metadata) + ',\n  "events": [')
            sep = "\n    "
            if self.keep_in_memory:
                for event in self._events:
                    f.write(sep + encode(event.to_dict()))
                    sep = ",\n    "
                summaries = {
                    agent_id: _summary(events) for agent_id, events in self._by_agent.items()
                }
            else:
                builder = _SummaryBuilder()
                for line in self._stream_lines():
                    f.write(sep + line)
                    sep = ",\n    "
                    builder.add(json.loads(line))
                if marker is not None:
                    f.write(sep + encode(marker.to_dict()))
                    sep = ",\n    "
                summaries = builder.result()
            f.write("\n  ]" if sep != "\n    " else "]")
            f.write(',\n  "agent_summaries": ' + _indented(summaries) + "\n}\n")
        os.replace(tmp, filepath)
        logger.info("Simulation recording saved to: %s", filepath)
        return filepath

    # -- internals -----------------------------------------------------------------------------

    def _write_pending(self) -> None:
        """Hand the lines recorded since the last write to the file's buffer, as one text."""
        if self._pending and self._file is not None:
            self._file.write("".join(self._pending).encode("utf-8"))
            self._pending.clear()
            self._pending_chars = 0

    def _set_second(self, second: int) -> None:
        """Cache the ISO text of a second (since the epoch), which all stream lines of it share."""
        self._second = second
        self._second_text = (_EPOCH + timedelta(seconds=second)).isoformat()[:-6]  # without "+00:00"

    def _current_step(self) -> int:
        steps = getattr(self.model, "steps", 0) if self.model is not None else 0
        return int(steps) if steps is not None else 0

    def _agent_total(self) -> int:
        agents = getattr(self.model, "agents", None) if self.model is not None else None
        try:
            return len(agents) if agents is not None else 0
        except TypeError:
            return 0

    def _index_step(self, step: Any, start: int, end: int) -> None:
        """Start a run of stream lines of `step` at byte `start` (see ``_step_ranges``).

        A step is indexed when its first event comes after every earlier step's: then all its
        events lie in one range as long as no other step comes in between. If one does and `step`
        comes back, its range is dropped and its queries scan the stream.
        """
        self._run_step = step
        self._run_range = None
        if step.__class__ is not int:
            return
        ranges = self._step_ranges
        if self._max_step is None or step > self._max_step:
            self._max_step = step
            self._run_range = ranges[step] = [start, end]
            if len(ranges) > _STEP_INDEX_SIZE:
                del ranges[next(iter(ranges))]  # the oldest (dicts keep insertion order)
        else:
            ranges.pop(step, None)

    def _read_back(self, keep: Callable[[dict[str, Any]], bool]) -> list[SimulationEvent]:
        """Events of the stream for which ``keep(event dict)`` is true, plus the save() marker."""
        events = []
        for lineno, line in enumerate(self._stream_lines(), 1):
            try:
                obj = json.loads(line)
            except ValueError as exc:  # the file was changed behind the recorder's back
                raise RuntimeError(
                    f"{self._jsonl_path}: line {lineno} cannot be read back ({exc})"
                ) from None
            if keep(obj):
                events.append(_event_from_dict(obj))
        marker = self._checkpoint
        if marker is not None and keep(marker.to_dict()):
            events.append(marker)
        return events

    def _index(self, event: SimulationEvent) -> None:
        self._events.append(event)
        if event.agent_id is not None:
            by_agent = self._by_agent.get(event.agent_id)
            if by_agent is None:
                self._by_agent[event.agent_id] = [event]
            else:
                by_agent.append(event)
        by_type = self._by_type.get(event.event_type)
        if by_type is None:
            self._by_type[event.event_type] = [event]
        else:
            by_type.append(event)
        by_step = self._by_step.get(event.step)
        if by_step is None:
            self._by_step[event.step] = [event]
        else:
            by_step.append(event)

    def _drop_checkpoint(self) -> None:
        """Remove the save() marker: it is the last entry of `events` and of its index lists."""
        marker = self._checkpoint
        self._checkpoint = None
        if marker is None or not self._events or self._events[-1] is not marker:
            return
        self._events.pop()
        by_type = self._by_type[marker.event_type]
        by_type.pop()
        if not by_type:
            del self._by_type[marker.event_type]
        by_step = self._by_step[marker.step]
        by_step.pop()
        if not by_step:
            del self._by_step[marker.step]

    def _open_stream(self) -> IO[bytes]:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        stem = self.run_name or f"simulation_{self.simulation_id}"
        n = 0
        while True:
            path = _inside(self.output_dir, f"{stem}.jsonl" if n == 0 else f"{stem}-{n}.jsonl")
            try:
                # "x": create, never overwrite an existing recording.
                # Binary, so that the recorder knows each line's byte offset (``_step_ranges``).
                file = open(  # noqa: SIM115 - kept open for the recorder's lifetime; close() closes it
                    path, "xb", buffering=1 << 16
                )
            except FileExistsError:
                n += 1
                continue
            self._file = file
            self._jsonl_path = path
            return file

    def _stream_lines(self) -> Iterator[str]:
        """Yield the stream's lines (flushed first), without their newlines."""
        if self._jsonl_path is None:
            return
        self.flush()
        try:
            f = open(self._jsonl_path, encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise RuntimeError(
                f"cannot read the recorded events back from {self._jsonl_path}: {exc}"
            ) from None
        with f:
            for line in f:
                line = line.rstrip("\n")
                if line:
                    yield line


def _event_from_dict(obj: dict[str, Any]) -> SimulationEvent:
    """The `SimulationEvent` of a stream line (the inverse of `SimulationEvent.to_dict`)."""
    return SimulationEvent(
        obj["event_id"],
        datetime.fromisoformat(obj["timestamp"]),
        obj["step"],
        obj["agent_id"],
        obj["event_type"],
        obj["content"],
        obj["metadata"],
    )


def _inside(directory: Path, name: str | Path) -> Path:
    """``directory / name``, refused (ValueError) unless it resolves inside ``directory``: a run
    name or export file name must never steer a recording elsewhere (``../x``, ``/abs``, links)."""
    root = directory.resolve()
    path = (directory / name).resolve()
    if path == root or not path.is_relative_to(root):
        raise ValueError(f"recording file name {str(name)[:80]!r} leaves the output folder {directory}")
    return path


def _unique_path(directory: Path, stem: str, suffix: str) -> Path:
    path = directory / f"{stem}{suffix}"
    n = 0
    while path.exists():
        n += 1
        path = directory / f"{stem}-{n}{suffix}"
    return path


def _indented(obj: Any) -> str:
    """JSON of `obj` indented by 2, to sit at the second level of the export."""
    text = json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default)
    return text.replace("\n", "\n  ")  # JSON strings hold no raw newline


def _summary(events: list[SimulationEvent]) -> dict[str, Any]:
    """An agent's summary in the mesa-llm recorder's shape."""
    return {
        "total_events": len(events),
        "event_types": list(dict.fromkeys(e.event_type for e in events)),
        "active_steps": list(dict.fromkeys(e.step for e in events)),
        "first_event": events[0].timestamp.isoformat() if events else None,
        "last_event": events[-1].timestamp.isoformat() if events else None,
    }


class _SummaryBuilder:
    """Builds per-agent summaries from event dicts one at a time (for exports read from a stream)."""

    def __init__(self) -> None:
        self._agents: dict[Any, dict[str, Any]] = {}

    def add(self, event: dict[str, Any]) -> None:
        agent_id = event.get("agent_id")
        if agent_id is None:
            return
        summary = self._agents.get(agent_id)
        if summary is None:
            summary = self._agents[agent_id] = {
                "total_events": 0,
                "event_types": {},
                "active_steps": {},
                "first_event": event.get("timestamp"),
                "last_event": None,
            }
        summary["total_events"] += 1
        summary["event_types"][event.get("event_type")] = None
        summary["active_steps"][event.get("step")] = None
        summary["last_event"] = event.get("timestamp")

    def result(self) -> dict[Any, dict[str, Any]]:
        return {
            agent_id: {
                **summary,
                "event_types": list(summary["event_types"]),
                "active_steps": list(summary["active_steps"]),
            }
            for agent_id, summary in self._agents.items()
        }
