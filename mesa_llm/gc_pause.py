"""Pausing Python's cyclic garbage collector over a stretch of work that allocates much and
leaves little cyclic garbage: a step of LLM agents; and spacing its passes over a run's steps.

Why: a step of N LLM agents keeps every call's request, answer and recorded events alive until the
step resolves, so the collector's passes during the step walk them again and again, and a full
pass promotes what dies a moment later (measured: 11 full passes, 16 s of a 58 s step at 5,000
agents; one 3-13 s full pass right after the calls at 10,000). Paused for the whole step, what the
step leaves behind is collected once, after it, when the step's transient objects are gone.

Between steps the collector's young pass would then run after every step (a step leaves far more
than its 700 new objects), and walk every container the step left alive: 25,000-35,000 at 1,000
rule-based agents (each agent's per-step lists, the observation's kept parts, the DataCollector's
rows), ~2-3 us per agent-step, though most of them are replaced, and freed, in the next step or
two. `young_passes_spaced` lets a run's young objects pile up to `RUN_YOUNG_OBJECTS` before a
pass: objects that die within a few steps are never walked, and cyclic garbage waits at most that
many new objects for its pass.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: new container objects (the collector's generation-0 count) a run leaves between two young passes
RUN_YOUNG_OBJECTS = 100_000

_spacing = threading.Lock()
_spaced_runs = 0  # runs inside `young_passes_spaced` now (threads, nested runs)
_saved_threshold: tuple[int, ...] | None = None  # the threshold before the first of them


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


@contextmanager
def young_passes_spaced(objects: int = RUN_YOUNG_OBJECTS) -> Iterator[None]:
    """Run the ``with`` block (a run's steps) with the collector's young pass waiting for ``objects``
    new objects instead of its threshold (700 by default), and put the threshold back when the last
    such block in the process ends, however it ends. A threshold of 0 (automatic passes off) or
    above ``objects`` is left as it is; the older generations' thresholds are never changed."""
    global _spaced_runs, _saved_threshold
    with _spacing:
        if _spaced_runs == 0:
            threshold = gc.get_threshold()
            _saved_threshold = threshold
            if 0 < threshold[0] < objects:
                gc.set_threshold(objects, *threshold[1:])
        _spaced_runs += 1
    try:
        yield
    finally:
        with _spacing:
            _spaced_runs -= 1
            if _spaced_runs == 0 and _saved_threshold is not None:
                gc.set_threshold(*_saved_threshold)
                _saved_threshold = None


__all__ = ["RUN_YOUNG_OBJECTS", "collector_paused", "young_passes_spaced"]
