"""Retry caps: attempts are bounded, waits are capped (a Retry-After above ``max_wait`` too), and
only retryable failures are retried. Sleeps are recorded instead of slept."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from mesa_llm.llm import LLMError
from mesa_llm.llm.retry import call_with_retries


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The seconds each retry would have slept (tenacity sleeps through asyncio.sleep)."""
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float, *args: object, **kwargs: object) -> None:
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return waits


def failing(errors: list[BaseException], result: str = "ok") -> tuple[Callable[[], Awaitable[str]], list[int]]:
    """A call that raises ``errors`` in turn, then returns ``result``; counts its calls."""
    calls = [0]

    async def call() -> str:
        calls[0] += 1
        if errors:
            raise errors.pop(0)
        return result

    return call, calls


def rate_limited(retry_after: float | None = None) -> LLMError:
    return LLMError("429", model="m", kind="rate_limit", status_code=429, retryable=True, retry_after=retry_after)


def run(call: Callable[[], Awaitable[str]], **kwargs: float) -> tuple[str, int]:
    return asyncio.run(call_with_retries(call, model="m", **kwargs))  # type: ignore[arg-type]


def test_retry_after_above_max_wait_is_capped(sleeps: list[float]) -> None:
    call, calls = failing([rate_limited(3600.0) for _ in range(3)])
    assert run(call, max_attempts=4, initial_wait=0.01, max_wait=2.0) == ("ok", 4)
    assert calls[0] == 4
    assert sleeps == [2.0, 2.0, 2.0]


def test_retry_after_within_max_wait_is_honoured(sleeps: list[float]) -> None:
    call, _ = failing([rate_limited(1.5)])
    assert run(call, initial_wait=0.01, max_wait=20.0) == ("ok", 2)
    assert sleeps == [1.5]


def test_backoff_without_retry_after_stays_under_max_wait(sleeps: list[float]) -> None:
    call, _ = failing([rate_limited() for _ in range(5)])
    run(call, max_attempts=6, initial_wait=1.0, max_wait=3.0)
    assert len(sleeps) == 5 and all(0 <= s <= 3.0 for s in sleeps)
    assert sleeps[-1] == pytest.approx(3.0)  # 1, 2, 4+ ... reaches the cap


def test_attempts_are_bounded_and_the_last_error_says_how_many(sleeps: list[float]) -> None:
    call, calls = failing([rate_limited() for _ in range(10)])
    with pytest.raises(LLMError) as info:
        run(call, max_attempts=3, initial_wait=0.01, max_wait=0.1)
    assert calls[0] == 3 and info.value.attempts == 3 and len(sleeps) == 2


def test_a_single_attempt_is_never_retried(sleeps: list[float]) -> None:
    call, calls = failing([rate_limited()])
    with pytest.raises(LLMError):
        run(call, max_attempts=1)
    assert calls[0] == 1 and sleeps == []


def test_non_retryable_failures_fail_at_once(sleeps: list[float]) -> None:
    bad_request = LLMError("400", model="m", kind="bad_request", status_code=400, retryable=False)
    call, calls = failing([bad_request])
    with pytest.raises(LLMError) as info:
        run(call, max_attempts=4)
    assert calls[0] == 1 and info.value.attempts == 1 and sleeps == []


def test_other_exceptions_are_classified_then_retried_when_transient(sleeps: list[float]) -> None:
    call, calls = failing([TimeoutError("read timed out")])
    assert run(call, initial_wait=0.01, max_wait=0.1) == ("ok", 2)
    assert calls[0] == 2 and len(sleeps) == 1
