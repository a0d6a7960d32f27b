"""What a recording read back must look like: line limits, safe decoding and field types.

A recording may come from another machine, so readers treat it as untrusted input and check it
once, where it is decoded, against the fields the readers use (the recording contract,
docs/architecture/recording-contract.md). Every check returns a one-line problem (``trade.price: expected a number, got
'abc'``) or None; the readers add the file and the line. Fields not listed here are free.

Limits: a line of at most `MAX_LINE_BYTES` bytes, JSON nested at most `MAX_DEPTH` deep (deeper
values would blow Python's recursion limit in the decoder or in any later code walking them), no
NaN or Infinity literals, numbers within `MAX_NUMBER` and integers within `MAX_INT`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "MAX_DEPTH",
    "MAX_INT",
    "MAX_LINE_BYTES",
    "MAX_NUMBER",
    "LineError",
    "agent_ids",
    "content_problem",
    "contents_problem",
    "decode_json",
    "envelope_problem",
    "header_problem",
    "nesting_depth",
]

#: the longest line read (a few MB: an LLM call with its whole prompt is far below)
MAX_LINE_BYTES = 8 * 1024 * 1024
#: the deepest JSON nesting read (recordings nest about 12 deep)
MAX_DEPTH = 100
#: integers beyond this are not steps, ids or quantities of any run
MAX_INT = 2**53
#: numbers beyond this are not money, tokens or durations of any run
MAX_NUMBER = 1e15
#: the smallest and largest money tick a header may give (they divide every amount)
_TICK_RANGE = (1e-9, 1e9)


class LineError(ValueError):
    """A line (or file) that cannot be decoded; ``cut`` says it may be a line cut by a crash."""

    def __init__(self, message: str, *, cut: bool = False) -> None:
        super().__init__(message)
        self.cut = cut


# ----------------------------------------------------------------------------- decoding

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_OPEN, _CLOSE = np.frombuffer(b"[{", dtype=np.uint8), np.frombuffer(b"]}", dtype=np.uint8)


def nesting_depth(raw: bytes) -> int:
    """How deep the JSON text `raw` nests arrays and objects (brackets inside strings ignored);
    linear time, no recursion. Any bytes are accepted (the count is then only indicative)."""
    text = _STRING.sub(b"", _ESCAPE.sub(b"", raw))  # escapes first, so every quote left is real
    codes = np.frombuffer(text, dtype=np.uint8)
    delta = np.isin(codes, _OPEN).astype(np.int64) - np.isin(codes, _CLOSE)
    return int(np.cumsum(delta).max(initial=0))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def decode_json(raw: bytes, *, limit: int | None = MAX_LINE_BYTES) -> Any:
    """Decode one JSON document from bytes, within the limits of this module.

    Raises:
        LineError: too long, not UTF-8, nested too deep, NaN/Infinity, or not valid JSON (the
            message says which and where; ``cut`` is set when the text may end early).
    """
    if limit is not None and len(raw) > limit:
        raise LineError(f"longer than {limit:,} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a line cut inside a multi-byte character ends with an incomplete one
        cut = exc.reason == "unexpected end of data" and exc.end >= len(raw.rstrip(b"\r\n"))
        raise LineError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})", cut=cut
        ) from None
    # no deeper than its opening brackets: measured only when there are many (rare)
    opens = raw.count(b"[") + raw.count(b"{")
    depth = opens if opens <= MAX_DEPTH else nesting_depth(raw)
    if depth > MAX_DEPTH:
        raise LineError(f"JSON nested {depth} deep (at most {MAX_DEPTH})")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise LineError(f"not valid JSON ({exc.msg} at column {exc.colno})", cut=True) from None
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise LineError(f"JSON nested too deep (at most {MAX_DEPTH})") from None
    except ValueError as exc:  # NaN / Infinity
        raise LineError(str(exc)) from None


# ----------------------------------------------------------------------------- field checks

#: a check: the problem of a value at a path ("trade.price: expected ..."), or None
Check = Callable[[Any, str], "str | None"]


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _leaf(
    ok: Callable[[Any], bool],
    what: str,
    kinds: tuple[type, ...] | None = None,
    *,
    numeric: bool = False,
    nonneg: bool = False,
) -> Check:
    """A check of a plain value; `kinds` (the only types it accepts) and the numeric flags let
    `contents_problem` test a whole column at once."""

    def check(value: Any, path: str) -> str | None:
        if ok(value):
            return None
        if numeric and type(value) in (int, float):  # the right type, out of bounds
            return f"{path}: expected {what} within the limits (|x| <= {MAX_NUMBER:g}, finite), got {_show(value)}"
        return f"{path}: expected {what}, got {_show(value)}"

    if kinds is not None:
        check.kinds = frozenset(kinds)  # type: ignore[attr-defined]
        check.numeric = numeric  # type: ignore[attr-defined]
        check.nonneg = nonneg  # type: ignore[attr-defined]
    return check


def _is_int(v: Any) -> bool:
    return type(v) is int and -MAX_INT <= v <= MAX_INT


def _is_num(v: Any) -> bool:
    return (type(v) is int and -MAX_INT <= v <= MAX_INT) or (
        type(v) is float and math.isfinite(v) and abs(v) <= MAX_NUMBER
    )


INT = _leaf(_is_int, "an integer", (int,), numeric=True)
COUNT = _leaf(
    lambda v: _is_int(v) and v >= 0, "a non-negative integer", (int,), numeric=True, nonneg=True
)
NUM = _leaf(_is_num, "a number", (int, float), numeric=True)
STR = _leaf(lambda v: type(v) is str, "a string", (str,))
BOOL = _leaf(lambda v: type(v) is bool, "true or false", (bool,))
DICT = _leaf(lambda v: type(v) is dict, "an object")
LIST = _leaf(lambda v: type(v) is list, "a list")
TICK = _leaf(
    lambda v: _is_num(v) and _TICK_RANGE[0] <= v <= _TICK_RANGE[1],
    f"a number from {_TICK_RANGE[0]:g} to {_TICK_RANGE[1]:g}",
)
PAIR = _leaf(lambda v: type(v) is list and len(v) == 2 and all(map(_is_num, v)), "[low, high]")


def opt(check: Check) -> Check:
    """`check`, or null."""

    def optional(value: Any, path: str) -> str | None:
        return None if value is None else check(value, path)

    optional.inner = check  # type: ignore[attr-defined]
    return optional


def either(first: Check, second: Check) -> Check:
    """`first` or `second` (the problem named is the second's)."""

    def check(value: Any, path: str) -> str | None:
        return None if first(value, path) is None else second(value, path)

    return check


def list_of(item: Check) -> Check:
    """A list of items each passing `item`."""

    def check(value: Any, path: str) -> str | None:
        if type(value) is not list:
            return f"{path}: expected a list, got {_show(value)}"
        for i, x in enumerate(value):
            problem = item(x, f"{path}[{i}]")
            if problem is not None:
                return problem
        return None

    return check


def dict_of(item: Check) -> Check:
    """An object whose values each pass `item` (any keys)."""

    def check(value: Any, path: str) -> str | None:
        if type(value) is not dict:
            return f"{path}: expected an object, got {_show(value)}"
        for key, x in value.items():
            problem = item(x, f"{path}.{key}")
            if problem is not None:
                return problem
        return None

    return check


def obj(fields: Mapping[str, Check], required: tuple[str, ...] = ()) -> Check:
    """An object whose listed fields, when present, pass their checks; `required` must be there."""

    def check(value: Any, path: str) -> str | None:
        if type(value) is not dict:
            return f"{path}: expected an object, got {_show(value)}"
        for name in required:
            if name not in value:
                return f"{path}.{name}: missing"
        for name, field_check in fields.items():
            if name in value:
                problem = field_check(value[name], f"{path}.{name}")
                if problem is not None:
                    return problem
        return None

    # the fields, for the column-wise check of many contents at once
    check.fields = fields  # type: ignore[attr-defined]
    check.required = required  # type: ignore[attr-defined]
    return check


# ----------------------------------------------------------------------------- the schema

_ISSUE_FIELDS = obj(
    {"name": opt(STR), "type": opt(STR), "low": opt(NUM), "high": opt(NUM), "values": opt(LIST)}
)


def _issue(value: Any, path: str) -> str | None:
    """An issue of an outcome space: a numeric one (not categorical) needs its range."""
    problem = _ISSUE_FIELDS(value, path)
    if problem is None and value.get("type") != "categorical":
        for bound in ("low", "high"):
            if value.get(bound) is None:
                return f"{path}.{bound}: missing (a {value.get('type') or 'numeric'} issue)"
    return problem


_SPACE = obj({"issues": opt(list_of(_issue))})
_NEGOTIATION = obj(
    {
        "session_id": opt(STR),
        "kind": opt(STR),
        "protocol": opt(STR),
        "parties": opt(list_of(INT)),
        "good": opt(STR),
        "space": opt(_SPACE),
        "round": opt(INT),
        "terms": opt(DICT),
        "buyer_id": opt(INT),
        "seller_id": opt(INT),
    }
)
_TOOL_CALL = obj(
    {"id": opt(either(STR, INT)), "name": opt(STR), "arguments": opt(either(STR, DICT))}
)

#: content of each event type: the fields the readers (analysis, replay) use
CONTENT: dict[str, Check] = {
    "step_start": obj({"step": COUNT}),
    "step_end": obj({"step": COUNT}),
    "observation": DICT,
    "plan": obj({"text": opt(STR)}),
    "llm_call": obj(
        {
            "model": opt(STR),
            "purpose": opt(STR),
            "request": opt(DICT),
            "request_hash": opt(STR),
            "response": opt(
                obj(
                    {
                        "content": opt(STR),
                        "tool_calls": opt(list_of(_TOOL_CALL)),
                        "finish_reason": opt(STR),
                        "cached": opt(BOOL),
                    }
                )
            ),
            "usage": opt(obj({"prompt_tokens": opt(INT), "completion_tokens": opt(INT)})),
            "cost_usd": opt(NUM),
            "latency_s": opt(NUM),
            "attempt_latencies_s": opt(list_of(NUM)),
            "attempts": opt(COUNT),
            "error": opt(STR),
            "error_kind": opt(STR),
            "cached": opt(BOOL),
        }
    ),
    "action": obj({"type": opt(STR)}),
    "action_rejected": obj({"type": opt(STR), "reason": opt(STR)}),
    "message": obj({"recipient_ids": opt(list_of(INT)), "text": opt(STR), "channel": opt(STR)}),
    "order": obj({"side": opt(STR), "good": opt(STR), "price": opt(NUM), "quantity": opt(NUM)}),
    "clearing": obj(
        {
            "good": STR,
            "price": opt(NUM),
            "volume": opt(NUM),
            "price_range": opt(PAIR),
            "bid_after": opt(NUM),
            "ask_after": opt(NUM),
            "fundamental": opt(NUM),
        },
        required=("good",),
    ),
    "trade": obj(
        {"good": STR, "price": NUM, "quantity": COUNT, "buyer_id": INT, "seller_id": INT,
         "buyer_fee": opt(NUM), "seller_fee": opt(NUM)},  # fmt: skip
        required=("good", "price", "quantity", "buyer_id", "seller_id"),
    ),
    "contract": obj(
        {
            "stage": opt(STR),
            "status": opt(STR),
            "good": opt(STR),
            "quantity": opt(COUNT),
            "buyer_id": opt(INT),
            "seller_id": opt(INT),
            "price": opt(NUM),
            "value": opt(NUM),
            "settlement": opt(DICT),
        }
    ),
    "negotiation": _NEGOTIATION,
    "offer": _NEGOTIATION,
    "agreement": _NEGOTIATION,
    "agent_state": obj(
        {
            "cash": opt(NUM),
            "holdings": opt(dict_of(NUM)),
            "wealth": opt(NUM),
            "surplus": opt(NUM),
        }
    ),
    "scheduled_event": obj(
        {
            "index": opt(INT),
            "event": opt(
                obj(
                    {
                        "type": opt(STR),
                        "field": opt(STR),
                        "good": opt(STR),
                        "add": opt(NUM),
                        "scale": opt(NUM),
                        "populations": opt(list_of(STR)),
                        "at_step": opt(COUNT),
                        "duration": opt(COUNT),
                        "magnitude": opt(NUM),
                    }
                )
            ),
            "phase": opt(STR),
        }
    ),
    "simulation_end": obj(
        {
            "status": opt(STR),
            "final_step": opt(COUNT),
            "total_events": opt(COUNT),
            # fees and fines collected (the ledger's house account)
            "house": opt(obj({"cash": opt(NUM), "holdings": opt(dict_of(NUM))})),
        }
    ),
}

_AGENT = obj(
    {
        "agent_id": INT,
        "name": opt(STR),
        "role": opt(STR),
        "population": opt(STR),
        "policy": opt(STR),
        "model": opt(STR),
        "private": opt(
            dict_of(opt(obj({"values": opt(list_of(NUM)), "costs": opt(list_of(NUM))})))
        ),
        "endowment": opt(obj({"cash": opt(NUM), "holdings": opt(dict_of(NUM))})),
        "utilities": opt(
            dict_of(
                obj(
                    {
                        "reservation": opt(NUM),
                        "weights": opt(dict_of(NUM)),
                        "preferences": opt(DICT),
                    }
                )
            )
        ),
    },
    required=("agent_id",),
)

HEADER: Check = obj(
    {
        "scenario": opt(
            either(STR, obj({"name": opt(STR), "spec": opt(DICT), "source_dir": opt(STR)}))
        ),
        "seed": opt(INT),
        "steps": opt(COUNT),
        "tick_size": opt(TICK),
        "goods": opt(DICT),
        "agents": opt(list_of(_AGENT)),
        "llm": opt(
            obj(
                {
                    "models": opt(dict_of(opt(STR))),
                    "prompts": opt(dict_of(dict_of(opt(STR)))),
                    # template texts by SHA-256 (a replay renders these, after checking the hash)
                    "prompt_texts": opt(dict_of(STR)),
                }
            )
        ),
        "negotiation": opt(obj({"spaces": opt(dict_of(_SPACE))})),
    }
)

_ENVELOPE: dict[str, Check] = {
    "event_id": opt(STR),
    "timestamp": opt(STR),
    "step": _leaf(lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    "agent_id": opt(INT),
    "content": DICT,
    "metadata": opt(DICT),
}


def envelope_problem(obj_: Any) -> str | None:
    """What makes `obj_` not an event of the contract (its envelope), or None."""
    if type(obj_) is not dict:
        return f"expected a JSON object, got {_show(obj_)}"
    event_type = obj_.get("event_type")
    if type(event_type) is not str or not event_type:
        return "no 'event_type' string"
    if "step" not in obj_:
        return "no integer 'step'"
    for name, check in _ENVELOPE.items():
        if name in obj_:
            problem = check(obj_[name], name)
            if problem is not None:
                return problem
    return None


def agent_ids(header: Mapping[str, Any] | None) -> frozenset[int] | None:
    """The agent ids of a (checked) header, or None when it lists no agents."""
    agents = (header or {}).get("agents")
    if not agents:
        return None
    return frozenset(a["agent_id"] for a in agents)


def header_problem(header: Any) -> str | None:
    """What is wrong with the content of a ``simulation_start`` event, or None."""
    problem = HEADER(header, "simulation_start")
    if problem is not None:
        return problem
    seen: set[int] = set()
    for agent in header.get("agents") or []:
        if agent["agent_id"] in seen:
            return f"simulation_start.agents: agent_id {agent['agent_id']} appears twice"
        seen.add(agent["agent_id"])
    return None


def _unknown_party(
    event_type: str, content: Mapping[str, Any], agents: frozenset[int] | None
) -> str | None:
    """Parties that are no agent of the header; a fulfilled contract without its fill."""
    if event_type == "contract" and (
        content.get("stage") == "settled" and content.get("status") == "fulfilled"
    ):
        for name in ("good", "quantity", "buyer_id", "seller_id"):
            if content.get(name) is None:
                return f"contract.{name}: missing in a fulfilled contract"
    if agents is None or event_type not in ("trade", "contract"):
        return None
    for name in ("buyer_id", "seller_id"):
        value = content.get(name)
        if value is not None and value not in agents:
            return f"{event_type}.{name}: {value} is not an agent of the header"
    return None


def content_problem(
    event_type: str, content: Any, agents: frozenset[int] | None = None
) -> str | None:
    """What is wrong with the content of one event, or None (types without a schema: an object)."""
    if event_type == "simulation_start":
        return header_problem(content)
    check = CONTENT.get(event_type, DICT)
    problem = check(content, event_type)
    if problem is None:
        problem = _unknown_party(event_type, content, agents)
    return problem


def contents_problem(
    event_type: str, contents: list[Any], agents: frozenset[int] | None = None
) -> tuple[int, str] | None:
    """The first problem among many contents of one type, with its position, or None.

    Same answer as `content_problem` on each, but column by column: a type test over a whole
    column is a few C calls, so a million events check in a fraction of a second.
    """
    if event_type == "simulation_start" or event_type not in CONTENT:
        return _one_by_one(event_type, contents, agents)
    if set(map(type, contents)) != {dict}:
        return _one_by_one(event_type, contents, agents)
    check = CONTENT[event_type]
    fields: Mapping[str, Check] = getattr(check, "fields", {})
    for name in getattr(check, "required", ()):
        if not all(name in c for c in contents):
            return _one_by_one(event_type, contents, agents)
    for name, field_check in fields.items():
        values = [c[name] for c in contents if name in c]
        if not _column_ok(field_check, values):
            return _one_by_one(event_type, contents, agents)
    if event_type == "contract" and any(
        c.get("stage") == "settled" and c.get("status") == "fulfilled" for c in contents
    ):
        return _one_by_one(event_type, contents, agents)
    if agents is not None and event_type in ("trade", "contract"):
        for name in ("buyer_id", "seller_id"):
            ids = {c.get(name) for c in contents} - {None}
            if not ids <= agents:
                return _one_by_one(event_type, contents, agents)
    return None


def _column_ok(check: Check, values: list[Any]) -> bool:
    """Whether every value surely passes `check`, tested in bulk for plain values (numbers,
    strings, booleans, null); False means "check them one by one", never a problem by itself."""
    if not values:
        return True
    nullable = hasattr(check, "inner")
    leaf = check.inner if nullable else check  # type: ignore[attr-defined]
    kinds: frozenset[type] | None = getattr(leaf, "kinds", None)
    if kinds is None:
        return all(check(v, "") is None for v in values)
    present = set(map(type, values))
    if not present <= (kinds | {type(None)} if nullable else kinds):
        return False
    if not getattr(leaf, "numeric", False):
        return True
    try:
        numbers = np.asarray([v for v in values if v is not None], dtype=float)
    except OverflowError:
        return False
    ok = bool(np.isfinite(numbers).all() and (np.abs(numbers) <= MAX_NUMBER).all())
    if getattr(leaf, "nonneg", False):
        ok = ok and not bool((numbers < 0).any())
    return ok


def _one_by_one(
    event_type: str, contents: list[Any], agents: frozenset[int] | None
) -> tuple[int, str] | None:
    for i, content in enumerate(contents):
        problem = content_problem(event_type, content, agents)
        if problem is not None:
            return i, problem
    return None
