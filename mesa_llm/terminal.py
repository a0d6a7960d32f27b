"""Text from files and runs made inert before it reaches a terminal.

Names and values come from scenario files, recordings, sweep specs and LLM answers: an ESC in one
of them could recolour, retitle or clear the user's terminal, and a bidirectional override could
make a line read differently from what it says. :func:`inert` shows every such character as a
visible escape (``\\x1b``, ``\\u202e``); :func:`cell` also keeps rich from reading ``[...]`` as markup.
"""

from __future__ import annotations

import re

from rich.text import Text

#: C0 controls but tab and newline, DEL, C1 controls, and the Unicode format characters that
#: reorder or break lines (bidi marks, embeddings, overrides and isolates; line/paragraph separators)
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(value: object) -> str:
    """``str(value)`` with control and bidi characters shown as visible escapes (tab and newline kept)."""
    return _UNSAFE.sub(_escaped, str(value))


def cell(value: object) -> Text:
    """A rich text of ``value`` made :func:`inert`, never parsed as markup (for tables and titles)."""
    return Text(inert(value))
