"""Retries of transient chat-call failures with tenacity: bounded, exponential, jittered.

Only :class:`~mesa_llm.llm.errors.LLMError` instances with ``retryable=True`` (rate limits, timeouts,
connection failures, 5xx, 408) are retried; everything else fails at once — any other 4xx, and a 500
whose body says the request itself is invalid (see :func:`~mesa_llm.llm.errors.classify`), since the
same request gets the same answer. Backends pass ``num_retries=0`` to litellm and ``max_retries=0`` to
the provider SDK so these are the only retries.

:class:`AttemptClock` times the calls: the wall time from the first send to the final answer or
failure (backoff waits included — what the caller waited) and each attempt's own time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential_jitter

from mesa_llm.llm.errors import LLMError, classify

T = TypeVar("T")

logger = logging.getLogger(__name__)


def _exponential_jitter(initial: float, max_wait: float) -> wait_base:
    """``wait_exponential_jitter`` scaled by ``initial`` (its keyword changed across tenacity versions)."""
    try:
        return wait_exponential_jitter(multiplier=initial, max=max_wait, jitter=initial)  # type: ignore[call-arg, unused-ignore]
    except TypeError:  # tenacity < 9.1 names the scale "initial"
        return wait_exponential_jitter(initial=initial, max=max_wait, jitter=initial)


class _WaitHonouringRetryAfter(wait_base):
    """Exponential backoff, stretched to the provider's Retry-After when it gave one (capped)."""

    def __init__(self, backoff: wait_base, max_wait: float) -> None:
        self.backoff = backoff
        self.max_wait = max_wait

    def __call__(self, retry_state: RetryCallState) -> float:
        wait = float(self.backoff(retry_state))
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after > wait:
            wait = min(float(retry_after), self.max_wait)
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
    attempts = 0

    async def attempt() -> T:
        nonlocal attempts
        attempts += 1
        try:
            return await fn()
        except LLMError:
            raise
        except Exception as exc:
            raise classify(exc, model) from exc

    retrying = AsyncRetrying(
        stop=stop_after_attempt(max(1, max_attempts)),
        wait=_WaitHonouringRetryAfter(_exponential_jitter(initial_wait, max_wait), max_wait),
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
