"""The lean HTTP/1.1 client (mesa_llm.llm.http1) gives what aiohttp gave on the direct path.

Every exchange runs against a real local server twice: once on a loop that installed the lean
client and once on one that did not (aiohttp sends), comparing the answer as recorded or the error
as classified; a spy checks the lean run really went through ``http1.Pool.post``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mesa_llm.llm import ChatRequest, LiteLLMChatModel, LLMError, http1
from mesa_llm.llm_wiring import AsyncBridge
from tests.fake_openai_server import build_completion

KEY = "sk-test-http1-not-a-real-key"
REQUEST = ChatRequest(model="openai/fake-model", messages=[{"role": "user", "content": "Cash 500. Act."}], max_tokens=20)

# what the server does with one request: write bytes (with pauses), then keep the connection,
# close it, or reset it
Action = Callable[[socket.socket], str]


def _completion_bytes(content: str = "ok") -> bytes:
    return json.dumps(build_completion({"model": "fake-model", "messages": []}, {"content": content})).encode()


def _head(status: int = 200, reason: str = "OK", headers: dict[str, str] | None = None, length: int | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer(body: bytes | None = None, *, status: int = 200, headers: dict[str, str] | None = None,
           then: str = "keep", pieces: int = 1, pause: float = 0.0) -> Action:
    """Send a Content-Length answer, in ``pieces`` writes ``pause`` seconds apart."""
    body = _completion_bytes() if body is None else body
    raw = _head(status, "X", headers, len(body)) + body
    return send(raw, then=then, pieces=pieces, pause=pause)


def chunked(body: bytes | None = None, *, sizes: int = 7, headers: dict[str, str] | None = None) -> Action:
    """Send a chunked answer (chunks of ``sizes`` bytes, an extension and a trailer), byte by byte."""
    body = _completion_bytes() if body is None else body
    parts = [_head(headers={"Transfer-Encoding": "chunked", **(headers or {})})]
    for at in range(0, len(body), sizes):
        chunk = body[at : at + sizes]
        parts.append(b"%x;ext=1\r\n%b\r\n" % (len(chunk), chunk))
    parts.append(b"0\r\nX-Trailer: yes\r\n\r\n")
    raw = b"".join(parts)
    return send(raw, pieces=len(raw))


def send(raw: bytes, *, then: str = "keep", pieces: int = 1, pause: float = 0.0) -> Action:
    def act(conn: socket.socket) -> str:
        step = max(1, -(-len(raw) // pieces))
        for at in range(0, len(raw), step):
            conn.sendall(raw[at : at + step])
            if pause:
                time.sleep(pause)
        return then

    return act


def silence(seconds: float) -> Action:
    def act(conn: socket.socket) -> str:
        time.sleep(seconds)
        return "close"

    return act


@contextlib.contextmanager
def _setting(event: threading.Event) -> Iterator[None]:
    try:
        yield
    finally:
        event.set()


class ScriptedServer:
    """An HTTP/1.1 server on 127.0.0.1 that answers each request with the next scripted action
    (the last one repeats), one thread per connection; it keeps the raw requests it read."""

    def __init__(self, *actions: Action) -> None:
        self.actions = list(actions)
        self.requests: list[bytes] = []
        self.connections = 0
        self.ended = threading.Event()  # set when a connection ends (the client closed it, or we did)
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        with conn, _setting(self.ended):
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                with self._lock:
                    self.requests.append(head + b"\r\n\r\n" + buffer[:length])
                    action = self.actions.pop(0) if len(self.actions) > 1 else self.actions[0]
                buffer = buffer[length:]
                try:
                    then = action(conn)
                except OSError:
                    return
                if then == "close":
                    return
                if then == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def lean_posts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the posts that went through http1 (one entry per post)."""
    posts: list[int] = []
    post = http1.Pool.post

    async def counted(self: http1.Pool, *args: Any) -> Any:
        posts.append(1)
        return await post(self, *args)

    monkeypatch.setattr(http1.Pool, "post", counted)
    return posts


def _outcome(result: ChatResponseLike) -> Any:
    if isinstance(result, LLMError):
        # litellm's timeout text carries the seconds taken: the only part allowed to differ
        return ("error", result.kind, result.retryable, result.status_code, result.retry_after,
                re.sub(r"time taken=[0-9.]+", "time taken=T", str(result)))
    data = result.to_dict()
    del data["latency_s"], data["attempt_latencies_s"]
    return data


ChatResponseLike = Any


def run_calls(base_url: str, *, lean: bool, calls: int = 1, request: ChatRequest = REQUEST, pause: float = 0.0,
              **options: Any) -> list[Any]:
    """The outcomes of ``calls`` sequential calls ``pause`` seconds apart on a fresh loop (lean: with
    http1 installed)."""
    options.setdefault("max_attempts", 1)
    options.setdefault("initial_wait", 0.01)

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        if lean:
            http1.install(loop)
        model = LiteLLMChatModel(request.model, api_base=base_url, api_key=KEY, **options)
        out = []
        try:
            for i in range(calls):
                if i and pause:
                    await asyncio.sleep(pause)
                try:
                    out.append(_outcome(await model.complete(request)))
                except LLMError as err:
                    out.append(_outcome(err))
        finally:
            http1.close(loop)
        return out

    return asyncio.run(main())


@contextlib.contextmanager
def server(*actions: Action) -> Iterator[ScriptedServer]:
    s = ScriptedServer(*actions)
    try:
        yield s
    finally:
        s.close()


def both(make: Callable[[], tuple[Action, ...]], lean_posts: list[int], **options: Any) -> tuple[list[Any], list[Any], ScriptedServer, ScriptedServer]:
    """(aiohttp outcomes, lean outcomes, their servers): the same script served to each."""
    lean_posts.clear()
    with server(*make()) as old:
        full = run_calls(old.base_url, lean=False, **options)
    assert not lean_posts
    with server(*make()) as new:
        lean = run_calls(new.base_url, lean=True, **options)
    assert lean_posts, "the lean run did not post through http1"
    return full, lean, old, new


def test_the_request_bytes_are_aiohttps(lean_posts: list[int]) -> None:
    full, lean, old, new = both(lambda: (answer(),), lean_posts, calls=2)
    assert full == lean and full[0]["content"] == "ok"
    port = re.compile(rb"host: 127\.0\.0\.1:\d+")
    assert [port.sub(b"host: H", r) for r in old.requests] == [port.sub(b"host: H", r) for r in new.requests]
    assert new.requests[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert new.connections == 1  # the second call reused the connection


ANSWERS: dict[str, Callable[[], tuple[Action, ...]]] = {
    "split_in_many_reads": lambda: (answer(pieces=40, pause=0.001),),
    "chunked_byte_by_byte": lambda: (chunked(),),
    "gzip": lambda: (answer(gzip.compress(_completion_bytes("zipped")), headers={"Content-Encoding": "gzip"}),),
    "interim_100_continue": lambda: (send(b"HTTP/1.1 100 Continue\r\n\r\n" + _head(length=len(_completion_bytes())) + _completion_bytes()),),
    "read_to_close": lambda: (send(_head() + _completion_bytes(), then="close"),),
    "connection_close": lambda: (answer(headers={"Connection": "close"}, then="close"),),
    "http_1_0": lambda: (send(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + _completion_bytes(), then="close"),),
    "status_500": lambda: (answer(b'{"error": {"message": "boom"}}', status=500),),
    "status_429_retry_after": lambda: (answer(b'{"error": {"message": "slow down"}}', status=429, headers={"Retry-After": "7"}),),
    "bad_json": lambda: (answer(b'{"id": "x", "choices": [tru'),),
    "reset_mid_head": lambda: (send(b"HTTP/1.1 200 OK\r\nContent-Le", then="reset"),),
    "html_error_page": lambda: (send(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 11\r\n\r\n<h1>no</h1>"),),
    "malformed_status_line": lambda: (send(b"HTTP/1.1 OK\r\n\r\n", then="close"),),
    "not_http": lambda: (send(b"SSH-2.0-OpenSSH\r\n\r\n", then="close"),),
    "bad_chunk": lambda: (send(_head(headers={"Transfer-Encoding": "chunked"}) + b"zz\r\nabc\r\n0\r\n\r\n", then="close"),),
    "closed_mid_body": lambda: (send(_head(length=500) + _completion_bytes()[:50], then="close"),),
    "reset_mid_body": lambda: (send(_head(length=500) + _completion_bytes()[:50], then="reset"),),
    "closed_before_answer": lambda: (send(b"", then="close"),),
    "reset_before_answer": lambda: (send(b"", then="reset"),),
    "chunked_closed_mid_body": lambda: (send(_head(headers={"Transfer-Encoding": "chunked"}) + b"5\r\nab", then="close"),),
    "key_echoed_in_error": lambda: (answer(json.dumps({"error": {"message": f"bad key {KEY}"}}).encode(), status=401),),
}


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_same_outcome_as_aiohttp(name: str, lean_posts: list[int]) -> None:
    full, lean, _, _ = both(ANSWERS[name], lean_posts)
    assert full == lean
    assert KEY not in repr(lean)


def test_retries_after_failures_reach_the_answer(lean_posts: list[int]) -> None:
    """A reset, a 500 and a 429 (Retry-After 0), then the answer: the retry loop gets each
    failure as before and the 4th attempt answers, on a new connection after each failure."""
    def script() -> tuple[Action, ...]:
        return (send(_head(length=500) + b"{", then="reset"), answer(b"{}", status=500),
                answer(b"{}", status=429, headers={"Retry-After": "0"}), answer())

    full, lean, old, new = both(script, lean_posts, max_attempts=4)
    assert full == lean and lean[0]["attempts"] == 4 and lean[0]["content"] == "ok"
    assert len(new.requests) == 4 and new.connections == 2  # the reset one, then one kept


def test_read_timeout_is_between_reads_not_for_the_whole_answer(lean_posts: list[int]) -> None:
    """Timeout 1 s: an answer trickling in 0.2 s apart for ~1.2 s in all is read; a server silent
    for longer than the timeout is a timeout error on both paths."""
    trickle = lambda: (answer(pieces=6, pause=0.2),)  # noqa: E731
    full, lean, _, _ = both(trickle, lean_posts, timeout=1.0)
    assert full == lean and lean[0]["content"] == "ok"
    full, lean, _, _ = both(lambda: (silence(3.0),), lean_posts, timeout=0.5)
    assert full == lean and lean[0][:2] == ("error", "timeout")


def test_a_connection_the_server_closed_while_idle_is_not_reused(lean_posts: list[int]) -> None:
    with server(answer(then="close"), answer()) as s:
        outcomes = run_calls(s.base_url, lean=True, calls=3, pause=0.2)
    assert [o["content"] for o in outcomes] == ["ok", "ok", "ok"]
    assert s.connections == 2


def test_a_cancelled_call_closes_its_connection(lean_posts: list[int]) -> None:
    async def main(base_url: str) -> tuple[str, Any]:
        loop = asyncio.get_running_loop()
        http1.install(loop)
        model = LiteLLMChatModel(REQUEST.model, api_base=base_url, api_key=KEY, max_attempts=1)
        try:
            task = asyncio.ensure_future(model.complete(REQUEST))
            await asyncio.sleep(0.3)  # the first answer is late: cancel while it is awaited
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            pool = http1.pool_for(loop, "127.0.0.1", s.port)
            assert pool is not None and not pool.idle
            return "cancelled", (await model.complete(REQUEST)).content
        finally:
            http1.close(loop)

    with server(answer(pieces=2, pause=1.0), answer()) as s:
        assert asyncio.run(main(s.base_url)) == ("cancelled", "ok")
    assert s.connections == 2  # the cancelled one was not reused mid-answer


def test_only_installed_loops_use_it_and_closing_closes_the_connections(lean_posts: list[int]) -> None:
    with server(answer()) as s:
        run_calls(s.base_url, lean=False)
        assert not lean_posts
        bridge = AsyncBridge()
        model = LiteLLMChatModel(REQUEST.model, api_base=s.base_url, api_key=KEY)
        assert bridge.run(model.complete(REQUEST)).content == "ok"
        assert lean_posts
        loop = bridge._runner.get_loop()  # type: ignore[union-attr]
        (pool,) = http1._pools[loop].values()
        (conn,) = pool.idle
        bridge.close()
        assert pool.closed and not pool.idle and conn.transport is not None and conn.transport.is_closing()


def test_a_bridge_that_never_ran_closes_inside_a_running_loop() -> None:
    """The server makes a simulation (and its bridge) outside its loop and closes it from a request
    handler, inside the loop: a bridge that made no call has no loop to close and must not make one
    (closing a runner's loop runs it, which fails inside another loop)."""
    bridge = AsyncBridge()

    async def handler() -> None:
        bridge.close()

    asyncio.run(handler())
    assert bridge._runner is not None and not bridge._ran


def test_a_patched_aiohttp_or_a_proxy_keeps_aiohttp(lean_posts: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """A cassette recorder (vcrpy) patches ClientSession._request: it must see every request;
    a proxy from the environment is aiohttp's to use."""
    import functools

    import aiohttp

    seen: list[str] = []
    original = aiohttp.ClientSession._request

    @functools.wraps(original)
    async def recorder(self: Any, method: str, url: Any, **kwargs: Any) -> Any:
        seen.append(str(url))
        return await original(self, method, url, **kwargs)

    with server(answer()) as s:
        with monkeypatch.context() as patch:
            patch.setattr(aiohttp.ClientSession, "_request", recorder)
            assert run_calls(s.base_url, lean=True)[0]["content"] == "ok"
        assert seen and not lean_posts
        with monkeypatch.context() as patch:
            patch.setenv("HTTP_PROXY", f"http://127.0.0.1:{s.port}")  # the server answers as the proxy
            patch.setenv("NO_PROXY", "")
            assert run_calls(s.base_url, lean=True)[0]["content"] == "ok"
        assert not lean_posts
        assert run_calls(s.base_url, lean=True)[0]["content"] == "ok"
        assert lean_posts


def test_a_bridge_in_a_helper_thread_closes_its_connections(lean_posts: list[int]) -> None:
    """Inside a running loop (a notebook) the bridge runs its own loop in a thread: closing it
    closes the connections of that loop too, before the loop stops."""
    async def inside() -> None:
        bridge = AsyncBridge()
        model = LiteLLMChatModel(REQUEST.model, api_base=s.base_url, api_key=KEY)
        assert bridge.run(model.complete(REQUEST)).content == "ok"
        loop = bridge._loop
        assert loop is not None
        (pool,) = http1._pools[loop].values()
        (conn,) = pool.idle
        bridge.close()
        assert pool.closed and conn.transport is not None and conn.transport.is_closing()
        assert s.ended.wait(5)  # the socket was closed before the loop stopped, not left to the collector

    with server(answer()) as s:
        asyncio.run(inside())
    assert lean_posts


def test_a_run_records_the_same_through_http1_and_aiohttp(lean_posts: list[int], tmp_path: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Three steps of LLM traders: the same recording with our client and with aiohttp (the
    bridge's loop not installing it). Failures are compared call by call above: here which agent's
    call would meet a queued fault depends on arrival order, so none is queued."""
    from tests.fake_openai_server import FakeOpenAIServer
    from tests.support.recordings import record_llm_double_auction

    monkeypatch.setenv("OPENAI_API_KEY", KEY)

    def record(out: str) -> list[str]:
        return record_llm_double_auction(fake.base_url, tmp_path / out, seed=3)

    with FakeOpenAIServer() as fake:  # one server: its address is in the recording
        lean = record("lean")
        assert lean_posts
        lean_posts.clear()
        monkeypatch.setattr(http1, "install", lambda loop: None)
        full = record("full")
        assert not lean_posts
    assert '"event_type": "llm_call"' in "".join(lean)
    assert lean == full


def test_at_most_limit_exchanges_and_connections_at_once() -> None:
    """Limit 2, five calls at once to a server answering in 0.3 s: two connections, every call
    answered in turn; a call that cannot get a turn within its connect timeout fails as a
    connect timeout, and its turn is not lost."""
    import httpx

    head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: h\r\nContent-Length: "

    async def main(port: int) -> tuple[list[int], Any, int]:
        loop = asyncio.get_running_loop()
        pool = http1.Pool(loop, "127.0.0.1", port, limit=2)
        answers = await asyncio.gather(*(pool.post(head, b"{}", 5.0, 5.0) for _ in range(5)))
        slow = [asyncio.ensure_future(pool.post(head, b"{}", 5.0, 5.0)) for _ in range(2)]
        await asyncio.sleep(0.05)
        late = await asyncio.gather(pool.post(head, b"{}", 0.1, 5.0), return_exceptions=True)
        await asyncio.gather(*slow)
        busy = pool.busy
        pool.close()
        return [status for status, _, _ in answers], late[0], busy

    with server(answer(pieces=2, pause=0.3)) as s:
        statuses, late, busy = asyncio.run(main(s.port))
    assert statuses == [200] * 5
    assert isinstance(late, httpx.ConnectTimeout)
    assert busy == 0  # every turn given back
    assert s.connections == 2


@pytest.mark.parametrize("raw", [
    _head(length=len(_completion_bytes()), headers={"Connection": "close"}) + _completion_bytes(),
    b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%b"
    % (len(_completion_bytes()), _completion_bytes()),
])
def test_an_answer_that_ends_the_connection_is_not_reused(raw: bytes, lean_posts: list[int]) -> None:
    """"Connection: close" (or HTTP/1.0 without keep-alive): the next call opens a new connection,
    even though this server would go on answering on the old one."""
    with server(send(raw, then="keep")) as s:
        outcomes = run_calls(s.base_url, lean=True, calls=2)
    assert [o["content"] for o in outcomes] == ["ok", "ok"]
    assert s.connections == 2 and len(lean_posts) == 2


# --- the answer's size: at most http1.MAX_BODY bytes on both paths (a small cap here) ----------

CAP = 4096


def _padded(size: int) -> bytes:
    """A completion padded with spaces (still valid JSON) to exactly ``size`` bytes."""
    body = _completion_bytes()
    return body + b" " * (size - len(body))


def endless(mode: str) -> Action:
    """A body that never ends (chunked, or read to close) until the client hangs up (20 s at most)."""
    def act(conn: socket.socket) -> str:
        if mode == "chunked":
            conn.sendall(_head(headers={"Transfer-Encoding": "chunked"}))
            piece = b"400\r\n" + b"x" * 1024 + b"\r\n"
        else:
            conn.sendall(_head(headers={"Connection": "close"}))
            piece = b"x" * 1024
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            conn.sendall(piece)  # OSError once the client closed: the server thread ends
        return "close"

    return act


TOO_LARGE: dict[str, Callable[[], tuple[Action, ...]]] = {
    "huge_content_length": lambda: (send(_head(length=10**12) + b'{"id": "x"', then="keep"),),
    "content_length_one_past_the_cap": lambda: (answer(_padded(CAP + 1)),),
    "endless_chunked": lambda: (endless("chunked"),),
    "endless_read_to_close": lambda: (endless("close"),),
    "chunked_one_past_the_cap": lambda: (chunked(_padded(CAP + 1), sizes=1000),),
}


@pytest.mark.parametrize("name", sorted(TOO_LARGE))
def test_an_answer_past_the_cap_is_refused_once_naming_the_server(name: str, lean_posts: list[int],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``MAX_BODY`` (announced or read so far) both paths stop reading: a bad_response that is
    not retried (3 attempts allowed, 1 request made), saying which server sent it."""
    monkeypatch.setattr(http1, "MAX_BODY", CAP)
    full, lean, old, new = both(TOO_LARGE[name], lean_posts, max_attempts=3)
    for outcome, s in ((full, old), (lean, new)):
        kind, retryable, text = outcome[0][1], outcome[0][2], outcome[0][5]
        assert (kind, retryable) == ("bad_response", False), outcome
        assert f"127.0.0.1:{s.port}" in text and f"longer than {CAP:,} bytes" in text
        assert len(s.requests) == 1
    port = re.compile(r"127\.0\.0\.1:\d+")
    assert [port.sub("S", str(o)) for o in full] == [port.sub("S", str(o)) for o in lean]


@pytest.mark.parametrize("make", [lambda: answer(_padded(CAP)), lambda: chunked(_padded(CAP), sizes=1000),
                                  lambda: send(_head() + _padded(CAP), then="close")],
                         ids=["content_length", "chunked", "read_to_close"])
def test_an_answer_of_exactly_the_cap_is_read(make: Callable[[], Action], lean_posts: list[int],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http1, "MAX_BODY", CAP)
    full, lean, _, _ = both(lambda: (make(),), lean_posts)
    assert full == lean and lean[0]["content"] == "ok"
