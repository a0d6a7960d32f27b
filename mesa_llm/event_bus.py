"""The event bus: subscribers receive the run's events — the same ones the recorder writes — in
order, as they happen (``Simulation.subscribe``).

A callback is a function or a coroutine function of one `SimulationEvent`. Sync callbacks run at
once, inside the step. Async ones run in order on the event loop that drives the run (``astep``);
with a plain ``step`` they are run to completion, in order, as their events happen. A callback that
raises is reported once (a warning, and in `EventBus.errors`) and unsubscribed: it never breaks the
step or keeps the other subscribers from their events.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mesa_llm.recording.events import SimulationEvent

Callback = Callable[[SimulationEvent], Any]
#: the event type that subscribes to every event
ALL = "*"

_log = logging.getLogger("mesa_llm")


@dataclass(eq=False)
class Subscription:
    """One subscriber: what it listens to and its callback (a handle for `EventBus.unsubscribe`)."""

    event_type: str
    callback: Callback
    is_async: bool
    active: bool = True
    #: events waiting for an async callback on a running loop, and the task draining them
    queue: asyncio.Queue[SimulationEvent] | None = field(default=None, repr=False)
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class EventBus:
    """Subscribers by event type; `publish` hands each event to those of its type and of ``"*"``."""

    def __init__(self) -> None:
        self._by_type: dict[str, list[Subscription]] = {}
        #: one line per callback that raised (and was unsubscribed)
        self.errors: list[str] = []
        self._runner: asyncio.Runner | None = None
        self._runner_thread: int | None = None

    def subscribe(self, event_type: str, callback: Callback) -> Subscription:
        """Call ``callback(event)`` for every event of ``event_type`` (``"*"``: every event)."""
        if not isinstance(event_type, str) or not event_type:
            raise ValueError("event_type must be an event type name or '*'")
        if not callable(callback):
            raise TypeError(f"callback {callback!r} is not callable")
        is_async = inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(
            getattr(callback, "__call__", None)  # noqa: B004 - an object with an async __call__
        )
        sub = Subscription(event_type, callback, is_async)
        self._by_type.setdefault(event_type, []).append(sub)
        return sub

    def unsubscribe(self, handle: Subscription | Callback) -> bool:
        """Remove a subscription (its handle, or every subscription of a callback); whether any was."""
        removed = False
        for event_type, subs in list(self._by_type.items()):
            keep = []
            for sub in subs:
                if sub is handle or (not isinstance(handle, Subscription) and sub.callback == handle):
                    sub.active = False
                    removed = True
                else:
                    keep.append(sub)
            if keep:
                self._by_type[event_type] = keep
            else:
                del self._by_type[event_type]
        return removed

    def wants(self, event_type: str) -> bool:
        """Whether anyone listens to ``event_type`` (cheap: the hot path asks it per event)."""
        return bool(self._by_type) and (event_type in self._by_type or ALL in self._by_type)

    def publish(self, event: SimulationEvent) -> None:
        """Hand ``event`` to its subscribers, in subscription order (type-specific ones first)."""
        subs = self._by_type.get(event.event_type, []) + self._by_type.get(ALL, [])
        for sub in subs:
            if not sub.active:
                continue
            if sub.is_async:
                self._deliver_async(sub, event)
            else:
                try:
                    sub.callback(event)
                except Exception as exc:  # noqa: BLE001 - a subscriber must not break the step
                    self._failed(sub, exc)

    async def drain(self) -> None:
        """Wait until every async callback has had the events published so far."""
        for subs in list(self._by_type.values()):
            for sub in subs:
                if sub.queue is not None:
                    await sub.queue.join()

    def close(self) -> None:
        """Stop the async delivery tasks and the private runner (nothing is delivered after)."""
        for subs in self._by_type.values():
            for sub in subs:
                if sub.task is not None:
                    sub.task.cancel()
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    # ------------------------------------------------------------------ internals

    def _deliver_async(self, sub: Subscription, event: SimulationEvent) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            # a plain step(): run the callback to completion now, in order
            try:
                self._run_now(sub.callback(event))
            except Exception as exc:  # noqa: BLE001
                self._failed(sub, exc)
            return
        if sub.queue is None or sub.task is None or sub.task.done():
            sub.queue = asyncio.Queue()
            sub.task = loop.create_task(self._consume(sub))
        sub.queue.put_nowait(event)

    async def _consume(self, sub: Subscription) -> None:
        assert sub.queue is not None
        while True:
            event = await sub.queue.get()
            try:
                if sub.active:
                    await sub.callback(event)
            except Exception as exc:  # noqa: BLE001
                self._failed(sub, exc)
            finally:
                sub.queue.task_done()

    def _run_now(self, awaitable: Awaitable[Any]) -> None:
        me = threading.get_ident()
        if self._runner is None or self._runner_thread != me:
            if self._runner is not None:
                self._runner.close()
            self._runner = asyncio.Runner()
            self._runner_thread = me

        async def wrapped() -> None:
            await awaitable

        self._runner.run(wrapped())

    def _failed(self, sub: Subscription, exc: BaseException) -> None:
        if not sub.active:
            return
        self.unsubscribe(sub)
        name = getattr(sub.callback, "__qualname__", None) or repr(sub.callback)
        line = f"subscriber {name} to {sub.event_type!r} raised {type(exc).__name__}: {exc} — unsubscribed"
        self.errors.append(line[:500])
        _log.warning(line[:500])


__all__ = ["ALL", "Callback", "EventBus", "Subscription"]
