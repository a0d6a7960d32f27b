"""Request bodies written in the turn of the event loop that sends them (aiohttp on Python 3.11).

aiohttp writes a request's body from a task of its own (``ClientRequest.write_bytes``). From Python
3.12 on it starts that task eagerly: the body is written at once, in the sender's turn. On 3.11 the
task waits for the loop's next turn, behind every other callback of this one: a burst of agents
wrote none of its requests until every one of them had built its prompt (and the answers then came
back together), and each call paid for a task scheduled, stepped and finished a turn later.

:func:`eager_body_writes` is a task factory for the loops that run a step's LLM calls
(:class:`mesa_llm.llm_wiring.AsyncBridge`): it runs a ``write_bytes`` coroutine at once, in a copy of
the caller's context, as Python 3.12's eager tasks do. A body written without waiting (the usual
case: the socket takes it) needs no task at all; a write that has to wait (a full socket buffer,
``Expect: 100-continue``) goes on as a task from where it stopped, in the same context. Every other
coroutine becomes an ordinary task.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Coroutine, Generator
from types import CodeType
from typing import Any

#: the code objects started eagerly: aiohttp's body writer, found once aiohttp is imported
_eager_codes: list[CodeType] = []


def _write_bytes_code() -> CodeType | None:
    """The code of ``aiohttp.ClientRequest.write_bytes``, once aiohttp is loaded (None before)."""
    if _eager_codes:
        return _eager_codes[0]
    module = sys.modules.get("aiohttp.client_reqrep")
    if module is None:
        return None
    try:
        code = module.ClientRequest.write_bytes.__code__
    except AttributeError:  # another aiohttp: its tasks are left as they are
        code = None
    if code is not None:
        _eager_codes.append(code)
    return code


def eager_body_writes(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], context: contextvars.Context | None = None
) -> asyncio.Future[Any]:
    """A task factory (``loop.set_task_factory``): aiohttp's body writer runs eagerly (see the
    module's docstring), every other coroutine becomes ``asyncio.Task(coro)``."""
    code = getattr(coro, "cr_code", None)
    if code is None or code is not _write_bytes_code():
        return asyncio.Task(coro, loop=loop, context=context)
    return start_eagerly(loop, coro, context)


def start_eagerly(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], context: contextvars.Context | None = None
) -> asyncio.Future[Any]:
    """Run ``coro`` now, up to its first wait, in ``context`` (a copy of the current one if None).
    Returns a done future with its outcome when it finished, else a task that goes on from there."""
    ctx = context if context is not None else contextvars.copy_context()
    try:
        pending = ctx.run(coro.send, None)
    except StopIteration as stop:
        done = loop.create_future()
        done.set_result(stop.value)
        return done
    except asyncio.CancelledError:
        done = loop.create_future()
        done.cancel()
        return done
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - kept in the future, as a task keeps it
        done = loop.create_future()
        done.set_exception(exc)
        return done
    return asyncio.Task(_resume(coro, pending), loop=loop, context=ctx)


async def _resume(coro: Coroutine[Any, Any, Any], pending: Any) -> Any:
    return await _Resumed(coro, pending)


class _Resumed:
    """Awaiting this goes on with a coroutine already started: it hands the task what the coroutine
    waits for, then passes every wake-up (a value or an exception: a cancellation) on to it."""

    __slots__ = ("coro", "pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.coro = coro
        self.pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self.coro, self.pending
        self.pending = None
        while True:
            try:
                sent = yield pending
            except BaseException as exc:  # noqa: BLE001 - thrown in by the task: passed on
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


def install(loop: asyncio.AbstractEventLoop) -> None:
    """Start aiohttp's body writers eagerly on ``loop`` (Python 3.11; later Pythons do it anyway),
    unless the loop already has a task factory of its own."""
    if sys.version_info < (3, 12) and loop.get_task_factory() is None:
        loop.set_task_factory(eager_body_writes)  # type: ignore[arg-type]


__all__ = ["eager_body_writes", "install", "start_eagerly"]
