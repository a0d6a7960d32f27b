"""Retries of transient chat-call failures: bounded, exponential, jittered.

Only :class:`~mesa_llm.llm.errors.LLMError` instances with ``retryable=True`` (rate limits, timeouts,
connection failures, 5xx, 408) are retried; everything else fails at once — any other 4xx, and a 500
whose body says the request itself is invalid (see :func:`~mesa_llm.llm.errors.classify`), since the
same request gets the same answer. Backends pass ``num_retries=0`` to litellm and ``max_retries=0`` to
the provider SDK so these are the only retries.

The first attempt is a plain ``await``: tenacity's per-call setup (a retry state, action chain and
coroutine inspection) cost more client CPU per call than the HTTP request's headers at 10,000
agents, and nearly every call is answered at once. A retryable failure hands the call to tenacity's
``AsyncRetrying`` (the first attempt counted as made), which runs the rest.

:class:`AttemptClock` times the calls: the wall time from the first send to the final answer or
failure (backoff waits included — what the caller waited) and each attempt's own time.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base

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
        started = self.begin()
        try:
            yield
        finally:
            self.end(started)

    def begin(self) -> float:
        """Note an attempt's start; returns it for :meth:`end` (:meth:`attempt` without its
        generator, for a caller on the hot path that ends it in a ``finally``)."""
        started = time.perf_counter()
        if self._first is None:
            self._first = started
        return started

    def end(self, started: float) -> None:
        """Note the end of the attempt that :meth:`begin` started at ``started``."""
        self._last = time.perf_counter()
        self.attempt_latencies_s.append(self._last - started)

    @property
    def latency_s(self) -> float:
        """Seconds from the first send to the end of the last attempt (0.0 before any attempt)."""
        if self._first is None or self._last is None:
            return 0.0
        return self._last - self._first


def _as_llm_error(exc: Exception, model: str) -> LLMError:
    """``exc`` as an `LLMError` (classified, the original kept as its cause)."""
    if isinstance(exc, LLMError):
        return exc
    error = classify(exc, model)
    error.__cause__, error.__suppress_context__ = exc, True
    return error


class _Backoff(wait_base):
    """tenacity's wait: :func:`backoff_wait` for the attempt that just failed."""

    def __init__(self, initial: float, max_wait: float) -> None:
        self.initial, self.max_wait = initial, max_wait

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        return backoff_wait(retry_state.attempt_number, error or Exception(), self.initial, self.max_wait)


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, LLMError) and exc.retryable


def _log_retry(retry_state: RetryCallState) -> None:
    outcome = retry_state.outcome
    exc = outcome.exception() if outcome is not None else None
    wait = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
    logger.info("%s; retry %d in %.2f s", exc, retry_state.attempt_number + 1, wait)


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
    try:
        return await fn(), 1
    except Exception as exc:
        first = _as_llm_error(exc, model)
    limit = max(1, max_attempts)
    if not first.retryable or limit == 1:
        first.attempts = 1
        raise first
    attempts = 1
    pending = [first]  # attempt 1, already made: tenacity sees its failure first

    async def attempt() -> T:
        nonlocal attempts
        if pending:
            raise pending.pop()
        attempts += 1
        try:
            return await fn()
        except Exception as exc:
            raise _as_llm_error(exc, model)  # noqa: B904 - the cause is set on the error itself

    retrying = AsyncRetrying(
        stop=stop_after_attempt(limit),
        wait=_Backoff(initial_wait, max_wait),
        retry=retry_if_exception(_is_retryable),
        before_sleep=_log_retry,
        reraise=True,
    )
    try:
        result: T = await retrying(attempt)
    except LLMError as err:
        err.attempts = attempts
        raise
    return result, attempts
