"""Pausing Python's cyclic garbage collector over a stretch of work that allocates much and
leaves little cyclic garbage: a step of LLM agents.

Why: a step of N LLM agents keeps every call's request, answer and recorded events alive until the
step resolves, so the collector's passes during the step walk them again and again, and a full
pass promotes what dies a moment later (measured: 11 full passes, 16 s of a 58 s step at 5,000
agents; one 3-13 s full pass right after the calls at 10,000). Paused for the whole step, what the
step leaves behind is collected once, after it, when the step's transient objects are gone.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused(pause: bool = True) -> Iterator[None]:
    """Run the ``with`` block with the cyclic collector off (when ``pause``), and turn it back on
    afterwards, however the block ends; a collector the caller had turned off stays off."""
    paused = pause and gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


__all__ = ["collector_paused"]
