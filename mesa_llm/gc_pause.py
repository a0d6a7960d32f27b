"""Pausing Python's cyclic garbage collector for one step of work.

A step keeps what it builds alive until it ends (every agent's observation and decision, the
recorded events of its LLM calls), so the collector's passes during a step find nothing to free
and come again and again, each walking more of it. Paused, the step's cyclic garbage (little: the
world holds plain data) is collected after it, as usual.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the cyclic collector in the block (if it was enabled), enable it again after."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()
