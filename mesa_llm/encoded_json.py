"""A chat request's messages as JSON text, each message's strings encoded once for every place that writes them.

Three places write one call's messages: the request body (``openapi_dumps``: compact, UTF-8 kept), the request key
(`mesa_llm.llm.types.ChatRequest.cache_key`: the same with sorted keys) and the ``llm_call`` record (the recorder's
compact encoder, UTF-8 kept). For a plain message (``{"role": str, "content": str}``, in that order) all three are
made of the same two JSON strings, so each string is encoded once (`encoded_text`: a population's system prompt
once per run, an agent's user prompt once per call) and the texts are joined around them (`messages_json`).
Anything else (tool turns, content lists, other keys or key orders) is left to the encoders as before: None.

`fill` writes a value with some members' JSON already made: the caller encodes it once with `PLACEHOLDER` where
each made member goes, and the placeholders are replaced (they must appear exactly as often as given: a value that
happened to hold one falls back to the whole encoding).

`int_texts` writes many ints' JSON from a kept table (agent ids, order ids, quantities): the recorder's lines and
the call market's order texts both use it, so it lives here, below the recording and the world alike.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

#: ``json.encoder.encode_basestring``: the JSON of a string with non-ASCII kept, as all three encoders write it
_encode: Callable[[str], str] = json.encoder.encode_basestring

#: strings asked lately, by id: (the string, its JSON); a call's user prompt is asked by the body, the key and the
#: record, a population's system prompt by every call
_TEXTS: dict[int, tuple[str, str]] = {}
#: how many strings `_TEXTS` keeps before it starts again (~the calls in flight, a few KB each)
MAX_TEXTS = 2048


def encoded_text(text: str) -> str:
    """``json.dumps(text, ensure_ascii=False)``, kept for the strings asked lately (checked by identity)."""
    held = _TEXTS.get(id(text))
    if held is None or held[0] is not text:
        if len(_TEXTS) >= MAX_TEXTS:
            _TEXTS.clear()
        held = _TEXTS[id(text)] = (text, _encode(text))
    return held[1]


def message_parts(messages: Any) -> list[tuple[str, str]] | None:
    """Per message, the JSON of its role and of its content, when every message is a plain dict
    ``{"role": str, "content": str}`` with its keys in that order; None for any other shape."""
    if type(messages) is not list:
        return None
    out = []
    for message in messages:
        if type(message) is not dict or len(message) != 2 or next(iter(message)) != "role":
            return None
        role, content = message["role"], message.get("content")
        if type(role) is not str or type(content) is not str:
            return None
        out.append((encoded_text(role), encoded_text(content)))
    return out


def messages_json(messages: Any) -> str | None:
    """The compact JSON (keys in their order, UTF-8 kept) of a list of plain messages (`message_parts`), as
    ``json.dumps(messages, ensure_ascii=False, separators=(",", ":"))`` writes it; None for any other shape."""
    parts = message_parts(messages)
    if parts is None:
        return None
    return "[" + ",".join([f'{{"role":{role},"content":{content}}}' for role, content in parts]) + "]"


def canonical_messages(parts: Sequence[tuple[str, str]]) -> str:
    """The messages of `message_parts` as `mesa_llm.llm.types.canonical_json` writes them (sorted keys)."""
    return "[" + ",".join([f'{{"content":{content},"role":{role}}}' for role, content in parts]) + "]"


#: the stand-in for a member whose JSON is made already (random per process: no content holds it by chance)
PLACEHOLDER = f"\x00mesa_llm-spliced-{uuid.uuid4().hex}\x00"
_PLACEHOLDER_JSON = _encode(PLACEHOLDER)
_PLACEHOLDER_BYTES = _PLACEHOLDER_JSON.encode("utf-8")
#: `PLACEHOLDER` as it stands in a UTF-8 JSON body (where a caller splits one at it)
PLACEHOLDER_BYTES = _PLACEHOLDER_BYTES

T = TypeVar("T", str, bytes)


def fill(text: T, values: Sequence[T]) -> T | None:
    """``text`` (JSON written with `PLACEHOLDER` standing for some values) with ``values`` in their places, in
    order: the JSON of the whole, encoded once. None when the placeholder does not appear exactly
    ``len(values)`` times (a content that held it: the caller encodes the whole)."""
    placeholder: Any = _PLACEHOLDER_BYTES if isinstance(text, bytes) else _PLACEHOLDER_JSON
    pieces = text.split(placeholder)
    if len(pieces) != len(values) + 1:
        return None
    out = [pieces[0]]
    for value, piece in zip(values, pieces[1:], strict=True):
        out.append(value)
        out.append(piece)
    return text[:0].join(out)


#: the texts of the ints 0, 1, 2, ... met so far by `int_texts` (up to `_INT_TEXTS_KEPT`)
_INT_TEXTS: list[str] = []
_INT_TEXTS_KEPT = 1 << 16


def int_texts(values: Sequence[int]) -> Iterator[str]:
    """Each of ``values``' text, ``str(value)`` (its JSON): from a kept table when every value is
    an int from 0 to `_INT_TEXTS_KEPT` (agent ids, order ids, quantities; a lookup costs about
    half a conversion), else converted. The caller vouches that they are ints (not bools)."""
    if values and min(values) >= 0:
        top = max(values)
        if top < _INT_TEXTS_KEPT:
            if top >= len(_INT_TEXTS):
                _INT_TEXTS.extend(map(str, range(len(_INT_TEXTS), top + 1)))
            return map(_INT_TEXTS.__getitem__, values)
    return map(str, values)
