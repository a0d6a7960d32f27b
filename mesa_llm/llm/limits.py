"""Throttling of chat calls: a per-model concurrency limit and an optional request-rate limit.

litellm's Router rejects requests over its ``rpm`` instead of waiting; a simulation wants the
opposite (every agent's call happens, some later), so callers queue on an ``asyncio.Semaphore`` per
model and, when ``requests_per_second`` is set, on a token bucket. asyncio primitives belong to one
event loop, so both are created lazily for each running loop (a model run uses one loop for all its
steps; tests and ``complete_sync`` may use several).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager


class TokenBucket:
    """At most ``rate`` acquisitions per second on average, with bursts up to ``capacity``."""

    def __init__(self, rate: float, capacity: float | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"requests_per_second must be > 0, got {rate}")
        self.rate = rate
        self.capacity = max(1.0, capacity if capacity is not None else rate)
        self._tokens = self.capacity
        self._updated: float | None = None
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until a token is available and take it (waiters are served in order)."""
        loop = asyncio.get_running_loop()
        async with self._lock:
            while True:
                now = loop.time()
                if self._updated is not None:
                    elapsed = now - self._updated
                    self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
                self._updated = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.rate)


class _LoopState:
    """The semaphores and buckets of one event loop."""

    def __init__(self) -> None:
        self.semaphores: dict[str, asyncio.Semaphore] = {}
        self.buckets: dict[str, TokenBucket] = {}


class ConcurrencyLimiter:
    """Per-model asyncio.Semaphore with an optional requests-per-second token bucket.

    Semaphores are created lazily per running event loop (a model run uses one asyncio.Runner for
    all its steps, tests may use several loops). Models not in ``per_model`` get ``default_limit``.
    """

    def __init__(
        self,
        default_limit: int = 8,
        per_model: dict[str, int] | None = None,
        requests_per_second: float | None = None,
    ) -> None:
        if default_limit < 1:
            raise ValueError(f"default_limit must be >= 1, got {default_limit}")
        for model, limit in (per_model or {}).items():
            if limit < 1:
                raise ValueError(f"limit for {model!r} must be >= 1, got {limit}")
        if requests_per_second is not None and requests_per_second <= 0:
            raise ValueError(f"requests_per_second must be > 0, got {requests_per_second}")
        self.default_limit = default_limit
        self.per_model = dict(per_model or {})
        self.requests_per_second = requests_per_second
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )

    def limit_for(self, model: str) -> int:
        """How many calls to ``model`` may be in flight at once."""
        return self.per_model.get(model, self.default_limit)

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = _LoopState()
        return state

    def semaphore(self, model: str) -> asyncio.Semaphore | None:
        """The running loop's semaphore of ``model``'s slots, the one :meth:`slot` holds, when
        holding it is all a slot does (no request rate set, ``slot`` not overridden): ``async with``
        it directly spares a call the context-manager generator (a hot path at thousands of calls
        a step). None otherwise: use :meth:`slot`."""
        if self.requests_per_second is not None or type(self).slot is not ConcurrencyLimiter.slot:
            return None
        if type(self)._slot is not ConcurrencyLimiter._slot:
            return None
        return self._semaphore(self._state(), model)

    def _semaphore(self, state: _LoopState, model: str) -> asyncio.Semaphore:
        semaphore = state.semaphores.get(model)
        if semaphore is None:
            semaphore = state.semaphores[model] = asyncio.Semaphore(self.limit_for(model))
        return semaphore

    def slot(self, model: str) -> AbstractAsyncContextManager[None]:
        """``async with limiter.slot(model):`` — hold one of ``model``'s slots for the call."""
        return self._slot(model)

    @asynccontextmanager
    async def _slot(self, model: str) -> AsyncIterator[None]:
        state = self._state()
        async with self._semaphore(state, model):
            if self.requests_per_second is not None:
                bucket = state.buckets.get(model)
                if bucket is None:
                    bucket = state.buckets[model] = TokenBucket(self.requests_per_second)
                await bucket.acquire()
            yield

    def __repr__(self) -> str:
        return (
            f"ConcurrencyLimiter(default_limit={self.default_limit}, per_model={self.per_model}, "
            f"requests_per_second={self.requests_per_second})"
        )
