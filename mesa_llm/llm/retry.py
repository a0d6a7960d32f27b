"""Retries of transient chat-call failures: bounded, exponential, jittered.

Only :class:`~mesa_llm.llm.errors.LLMError` instances with ``retryable=True`` (rate limits, timeouts,
connection failures, 5xx, 408) are retried; everything else fails at once — any other 4xx, and a 500
whose body says the request itself is invalid (see :func:`~mesa_llm.llm.errors.classify`), since the
same request gets the same answer. Backends pass ``num_retries=0`` to litellm and ``max_retries=0`` to
the provider SDK so these are the only retries.

The loop is tenacity's ``AsyncRetrying(stop_after_attempt, wait_exponential_jitter, reraise=True)``
written out: the same attempts, waits and log line, without tenacity's per-call setup (a retry
state, action chain and coroutine inspection cost more client CPU per call than the HTTP request's
headers at 10,000 agents). An answer on the first attempt costs one ``await``.

:class:`AttemptClock` times the calls: the wall time from the first send to the final answer or
failure (backoff waits included — what the caller waited) and each attempt's own time.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from mesa_llm.llm.errors import LLMError, classify

T = TypeVar("T")

logger = logging.getLogger(__name__)


def backoff_wait(attempt: int, error: BaseException, initial: float, max_wait: float) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): ``initial * 2**(attempt-1)``
    plus up to ``initial`` of jitter, at most ``max_wait`` (tenacity's ``wait_exponential_jitter``);
    stretched to the provider's Retry-After when it asked for longer, still at most ``max_wait``.

    The jitter spreads retries in time only; it decides nothing about results, so it comes from
    ``random`` (as tenacity's did), not the run's seeded generator."""
    jitter = random.uniform(0, initial)
    try:
        wait = initial * 2 ** (attempt - 1) + jitter
    except OverflowError:
        wait = max_wait
    wait = max(0.0, min(wait, max_wait))
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, int | float) and retry_after > wait:
        wait = min(float(retry_after), max_wait)
    return wait


class AttemptClock:
    """Times one call's attempts: wrap each send in :meth:`attempt`.

    ``latency_s`` runs from the start of the first attempt to the end of the last one (waits
    between attempts included); ``attempt_latencies_s`` holds each attempt's own duration, failed
    ones too. Waiting for a concurrency slot before the first send is not counted.
    """

    def __init__(self) -> None:
        self._first: float | None = None
        self._last: float | None = None
        self.attempt_latencies_s: list[float] = []

    @contextmanager
    def attempt(self) -> Iterator[None]:
        """Time one attempt (however it ends: answer, error, timeout or cancellation)."""
        started = time.perf_counter()
        if self._first is None:
            self._first = started
        try:
            yield
        finally:
            self._last = time.perf_counter()
            self.attempt_latencies_s.append(self._last - started)

    @property
    def latency_s(self) -> float:
        """Seconds from the first send to the end of the last attempt (0.0 before any attempt)."""
        if self._first is None or self._last is None:
            return 0.0
        return self._last - self._first


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    model: str,
    max_attempts: int = 4,
    initial_wait: float = 0.5,
    max_wait: float = 20.0,
) -> tuple[T, int]:
    """Await ``fn()`` until it succeeds or fails for good; return ``(result, attempts)``.

    Exceptions are classified first (:func:`~mesa_llm.llm.errors.classify`); retryable ones are
    retried up to ``max_attempts`` calls in total, waiting ``initial_wait * 2**n`` plus jitter (at
    most ``max_wait``), or longer when the provider sent Retry-After. The final failure is raised as
    an ``LLMError`` whose ``attempts`` says how many calls were made. Cancellation propagates.
    """
    limit = max(1, max_attempts)
    attempt = 0
    while True:
        attempt += 1
        try:
            return await fn(), attempt
        except LLMError as exc:
            error = exc
        except Exception as exc:
            error = classify(exc, model)
            error.__cause__, error.__suppress_context__ = exc, True
        if not error.retryable or attempt >= limit:
            error.attempts = attempt
            raise error
        wait = backoff_wait(attempt, error, initial_wait, max_wait)
        logger.info("%s; retry %d in %.2f s", error, attempt + 1, wait)
        await asyncio.sleep(wait)
