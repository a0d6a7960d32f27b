"""aiohttp's request-body writer runs in the sender's turn of the event loop (mesa_llm.llm.eager)."""

from __future__ import annotations

import asyncio
import contextvars
import sys
from typing import Any

import aiohttp
import pytest

from mesa_llm.llm import eager
from mesa_llm.llm_wiring import AsyncBridge

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("eager_test_var", default="unset")


async def _no_wait(log: list[str]) -> str:
    log.append(f"ran with {VAR.get()}")
    VAR.set("inside")
    return "done"


async def _waits(fut: asyncio.Future[int], log: list[str]) -> int:
    log.append("started")
    try:
        value = await fut
    except asyncio.CancelledError:
        log.append("cancelled")
        raise
    log.append(f"got {value} with {VAR.get()}")
    return value * 2


def test_a_coroutine_that_does_not_wait_runs_before_the_call_returns() -> None:
    async def main() -> None:
        log: list[str] = []
        VAR.set("caller")
        fut = eager.start_eagerly(asyncio.get_running_loop(), _no_wait(log))
        assert log == ["ran with caller"]  # already run, in this turn
        assert fut.done() and fut.result() == "done"
        assert VAR.get() == "caller"  # it ran in a copy of the caller's context

    asyncio.run(main())


def test_a_coroutine_that_waits_goes_on_as_a_task_with_its_values_and_context() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        log: list[str] = []
        gate: asyncio.Future[int] = loop.create_future()
        VAR.set("caller")
        task = eager.start_eagerly(loop, _waits(gate, log))
        assert log == ["started"] and not task.done()
        VAR.set("changed later")  # the task keeps the context it started in
        gate.set_result(21)
        assert await task == 42
        assert log == ["started", "got 21 with caller"]

    asyncio.run(main())


def test_cancelling_the_task_reaches_the_started_coroutine() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        log: list[str] = []
        gate: asyncio.Future[int] = loop.create_future()
        task = eager.start_eagerly(loop, _waits(gate, log))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert log == ["started", "cancelled"]

    asyncio.run(main())


def test_a_failure_before_the_first_wait_is_kept_in_the_future() -> None:
    async def fails() -> None:
        raise ValueError("boom")

    async def main() -> None:
        fut = eager.start_eagerly(asyncio.get_running_loop(), fails())
        assert fut.done()
        with pytest.raises(ValueError, match="boom"):
            fut.result()

    asyncio.run(main())


def test_only_aiohttps_body_writer_is_started_eagerly() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        log: list[str] = []
        task = eager.eager_body_writes(loop, _no_wait(log))
        assert isinstance(task, asyncio.Task) and log == []  # an ordinary task: runs next turn
        assert await task == "done"

    asyncio.run(main())


def _post_through_the_bridge(body: bytes, server_delay: float = 0.0) -> list[bytes]:
    """POST ``body`` with aiohttp from the step loop (`AsyncBridge`) to a one-shot local server
    that waits ``server_delay`` s before reading it; the bodies the server received."""
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        await asyncio.sleep(server_delay)
        received.append(await reader.readexactly(length))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}")
        await writer.drain()
        writer.close()

    async def post() -> int:
        assert asyncio.get_running_loop().get_task_factory() is eager.eager_body_writes
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with aiohttp.ClientSession() as session, session.post(f"http://127.0.0.1:{port}/v1", data=body) as answer:
                await answer.read()
                return answer.status
        finally:
            server.close()
            await server.wait_closed()

    bridge = AsyncBridge()
    try:
        assert bridge.run(post()) == 200
    finally:
        bridge.close()
    return received


@pytest.fixture
def eager_starts(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each coroutine `eager.start_eagerly` started had finished when it returned, in order."""
    outcomes: list[bool] = []
    real = eager.start_eagerly

    def spy(loop: asyncio.AbstractEventLoop, coro: Any, context: Any = None) -> asyncio.Future[Any]:
        fut = real(loop, coro, context)
        outcomes.append(fut.done())
        return fut

    monkeypatch.setattr(eager, "start_eagerly", spy)
    return outcomes


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="aiohttp starts its writer eagerly itself")
def test_the_bridge_loop_writes_an_aiohttp_body_without_a_task(eager_starts: list[bool]) -> None:
    started = eager_starts
    received = _post_through_the_bridge(b'{"x": 1}')
    assert received == [b'{"x": 1}']
    assert started == [True]  # aiohttp's writer was recognised, and finished in the sender's turn


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="aiohttp starts its writer eagerly itself")
def test_a_body_the_socket_cannot_take_at_once_is_finished_by_a_task(eager_starts: list[bool]) -> None:
    outcomes = eager_starts
    body = bytes(range(256)) * 40_000  # ~10 MB: the writer waits for the socket to drain
    received = _post_through_the_bridge(body, server_delay=0.05)  # the client's buffer fills meanwhile
    assert outcomes == [False]  # started at once, then went on as a task
    assert received == [body]  # every byte, in order


def test_install_keeps_a_task_factory_the_loop_already_has() -> None:
    loop = asyncio.new_event_loop()
    try:

        def mine(loop: asyncio.AbstractEventLoop, coro: Any, context: Any = None) -> asyncio.Task[Any]:
            return asyncio.Task(coro, loop=loop, context=context)

        loop.set_task_factory(mine)  # type: ignore[arg-type]
        eager.install(loop)
        assert loop.get_task_factory() is mine
    finally:
        loop.close()
