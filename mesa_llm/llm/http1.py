"""A lean HTTP/1.1 client on asyncio for the direct OpenAI-compatible path (plain ``http://``).

Why: posting a chat completion through aiohttp's ``ClientSession`` cost ~0.2-0.25 ms of client CPU
per call (its request and response objects, the connector's bookkeeping, a body-writer task, the
stream reader), a fifth of the whole client's CPU per LLM call. An LLM agent's request is always
the same shape: a POST of a JSON body to one URL, with the same headers, over a keep-alive
connection. Here each connection is an :class:`asyncio.Protocol` that parses the answer as its bytes
arrive; the request line and headers are made once per route (:meth:`Pool.post` adds only the
length), and the body is written in the caller's turn.

What it does as aiohttp did on that path: keep-alive connections, reused last-in first-out and
dropped after :data:`KEEPALIVE_S` idle (litellm's connector setting) or when the server closes them;
``Content-Length``, chunked and read-to-close bodies; 1xx answers skipped; a connect timeout and a
read timeout between two reads (aiohttp's ``sock_read``); the answer's body left as sent (no
decoding: httpx decodes a ``Content-Encoding`` later, as with aiohttp's ``auto_decompress=False``).
Failures are httpx's exceptions, as litellm's aiohttp transport maps aiohttp's: a timeout is a
``httpx.TimeoutException``, anything else a ``httpx.TransportError`` (the caller makes them the SDK's
timeout and connection errors). A cancelled call closes its connection (never reused mid-answer).

Only loops that own their pools use it (:func:`install`, :func:`close`: the run's
:class:`mesa_llm.llm_wiring.AsyncBridge`); anything unusual (https, a proxy, aiohttp patched by a
recorder such as vcrpy, a session that trusts the environment) stays on aiohttp: see
:mod:`mesa_llm.llm.direct`.
"""

from __future__ import annotations

import asyncio
import collections
import weakref

#: seconds an idle connection is kept (litellm's ``AIOHTTP_KEEPALIVE_TIMEOUT`` default)
KEEPALIVE_S = 120.0
#: idle connections kept per pool at most (a step's calls are bounded by the concurrency)
MAX_IDLE = 1024
#: exchanges at once per pool unless told (litellm's ``AIOHTTP_CONNECTOR_LIMIT`` default)
DEFAULT_LIMIT = 1000
#: the longest answer head accepted (status line and headers)
MAX_HEAD = 256 * 1024
#: the longest answer body accepted (bytes, as sent: before any decoding), here and on the aiohttp
#: path (:mod:`mesa_llm.llm.direct`): a chat completion is kilobytes; a server streaming without end
#: would otherwise fill the memory
MAX_BODY = 64 * 1024 * 1024

#: the pools of each loop that installed them, by (host, port)
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, int], Pool]] = (
    weakref.WeakKeyDictionary()
)

Answer = tuple[int, list[tuple[str, str]], bytes]


class _Malformed(ValueError):
    """An answer that is not HTTP/1.x as we read it (becomes ``httpx.RemoteProtocolError``)."""


class AnswerTooLarge(Exception):
    """An answer whose body is longer than :data:`MAX_BODY` (said by its ``Content-Length``, or
    found while reading it): not read further, its connection closed. Not transient: the same server
    would send the same answer again (:func:`mesa_llm.llm.errors.classify` makes it a
    ``bad_response`` attempted once)."""


def answer_too_large(server: str, size: int | None = None) -> AnswerTooLarge:
    """The error for an answer from ``server`` (``host:port``) past :data:`MAX_BODY`; ``size``: the
    length it announced, when it did."""
    said = f" (Content-Length {size:,})" if size is not None else ""
    return AnswerTooLarge(f"the answer from {server} is longer than {MAX_BODY:,} bytes{said}: not read")


def install(loop: asyncio.AbstractEventLoop) -> None:
    """Let calls on ``loop`` post through this client (its owner calls :func:`close` before closing it)."""
    if loop not in _pools:
        _pools[loop] = {}


def close(loop: asyncio.AbstractEventLoop) -> None:
    """Close every connection of ``loop``'s pools (from the loop's thread, or with the loop stopped)
    and stop using this client on it."""
    for pool in (_pools.pop(loop, None) or {}).values():
        pool.close()


def pool_for(loop: asyncio.AbstractEventLoop, host: str, port: int, limit: int = DEFAULT_LIMIT) -> Pool | None:
    """The pool of ``loop`` for ``host:port`` (at most ``limit`` exchanges at once, when made);
    None when ``loop`` did not :func:`install` this client."""
    pools = _pools.get(loop)
    if pools is None:
        return None
    pool = pools.get((host, port))
    if pool is None:
        pool = pools[(host, port)] = Pool(loop, host, port, limit)
    return pool


class Pool:
    """Keep-alive connections to one ``host:port`` on one loop, at most ``limit`` of them busy at
    once (as aiohttp's connector limit: a call beyond it waits for a turn, within its connect
    timeout). A connection is opened only when none is idle, so at most ``limit`` are ever open:
    a run with a concurrency above it does not run out of file descriptors."""

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, port: int, limit: int = DEFAULT_LIMIT) -> None:
        self.loop = loop
        self.host = host
        self.port = port
        self.limit = max(1, limit)
        self.busy = 0
        self.waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self.idle: list[_Connection] = []
        self.closed = False

    async def _turn(self, timeout: float) -> None:
        """Wait until an exchange ends and hands its turn over (``busy`` stays counted for us)."""
        turn = self.loop.create_future()
        self.waiting.append(turn)
        try:
            async with asyncio.timeout(timeout):
                await turn
        except BaseException as exc:
            if turn.done() and not turn.cancelled():  # handed a turn as we gave up: pass it on
                self._release()
            else:
                turn.cancel()
            if isinstance(exc, TimeoutError):
                import httpx

                raise httpx.ConnectTimeout(f"Connection timeout to host {self.host}:{self.port}") from exc
            raise

    def _release(self) -> None:
        """An exchange ended: its turn goes to the first caller still waiting, else it is freed."""
        waiting = self.waiting
        while waiting:
            turn = waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.busy -= 1

    def close(self) -> None:
        self.closed = True
        idle, self.idle = self.idle, []
        for conn in idle:
            conn.shut()

    def _take(self) -> _Connection | None:
        """The most recently used live idle connection, if any (stale ones are closed and dropped)."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.lost and self.loop.time() - conn.idle_since < KEEPALIVE_S:
                return conn
            conn.shut()
        return None

    async def _connect(self, timeout: float) -> _Connection:
        import httpx  # loaded by then (litellm's transport): imported here, not with the wiring

        try:
            async with asyncio.timeout(timeout):
                _, conn = await self.loop.create_connection(_Connection, self.host, self.port)
            conn.server = f"{self.host}:{self.port}"
        except TimeoutError as err:
            raise httpx.ConnectTimeout(f"Connection timeout to host {self.host}:{self.port}") from err
        except OSError as err:
            raise httpx.ConnectError(f"Cannot connect to host {self.host}:{self.port} [{err.strerror or err}]") from err
        return conn

    async def post(self, head: bytes, body: bytes, connect_timeout: float, read_timeout: float) -> Answer:
        """Send ``head`` (request line and headers up to, not including, ``Content-Length``) and
        ``body``; return the answer's status, headers (as sent, in order) and body (undecoded)."""
        if self.busy >= self.limit:
            await self._turn(connect_timeout)
        else:
            self.busy += 1
        try:
            return await self._exchange(head, body, connect_timeout, read_timeout)
        finally:
            self._release()

    async def _exchange(self, head: bytes, body: bytes, connect_timeout: float, read_timeout: float) -> Answer:
        conn = self._take()
        if conn is None:
            conn = await self._connect(connect_timeout)
        waiter = self.loop.create_future()
        conn.start(waiter, read_timeout)
        assert conn.transport is not None
        conn.transport.write(b"%b%d\r\n\r\n%b" % (head, len(body), body))
        try:
            answer: Answer = await waiter
        except BaseException:  # a failure or a cancellation: the connection is mid-exchange
            conn.shut()
            raise
        finally:
            conn.stop_timer()
        if conn.reusable and not self.closed and len(self.idle) < MAX_IDLE:
            conn.idle_since = self.loop.time()
            self.idle.append(conn)
        else:
            conn.shut()
        return answer


class _Connection(asyncio.Protocol):
    """One keep-alive connection: parses each answer as its bytes arrive and hands it to the waiter."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        #: ``host:port``, as errors name it
        self.server = "the server"
        self.waiter: asyncio.Future[Answer] | None = None
        self.buffer = bytearray()
        self.lost = False
        self.reusable = False
        self.idle_since = 0.0
        # the answer being read
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.mode = ""  # "" (head), "length", "chunked", "close"
        self.remaining = 0  # bytes of the body (length) or of the current chunk (chunked; -1: at a size line)
        self.expected = 0  # the Content-Length
        self.body = bytearray()
        self.keep_alive = True
        # read timeout between reads
        self.read_timeout = 0.0
        self.last_read = 0.0
        self.timer: asyncio.TimerHandle | None = None

    # -- the exchange ---------------------------------------------------------------------------

    def start(self, waiter: asyncio.Future[Answer], read_timeout: float) -> None:
        self.waiter = waiter
        self.reusable = False
        self.mode = ""
        self.read_timeout = read_timeout
        loop = waiter.get_loop()
        self.last_read = loop.time()
        self.timer = loop.call_at(self.last_read + read_timeout, self._check_timeout)

    def stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.waiter = None

    def _check_timeout(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        loop = waiter.get_loop()
        due = self.last_read + self.read_timeout
        if loop.time() < due:  # bytes came meanwhile: wait from the last read
            self.timer = loop.call_at(due, self._check_timeout)
            return
        self.timer = None
        import httpx

        self._fail(httpx.ReadTimeout("Timeout on reading data from socket"))

    def _fail(self, exc: BaseException) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.shut()

    def shut(self) -> None:
        """Close the connection now (it is never used again)."""
        self.lost = True
        if self.transport is not None:
            self.transport.abort()

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        import httpx

        # the errors and words of aiohttp (litellm's transport mapped them to httpx.ReadError)
        if self.mode == "close":  # the body ends with the connection
            self._finish(bytes(self.body))
        elif self.mode:  # mid-body
            if self.mode == "length":
                problem = (
                    "<ContentLengthError: 400, message='Not enough data to satisfy content length header "
                    f"(received {len(self.buffer)} of {self.expected} bytes).'>"
                )
            else:
                problem = "<TransferEncodingError: 400, message='Not enough data to satisfy transfer length header.'>"
            text = f"Response payload is not completed: {problem}"
            waiter.set_exception(httpx.ReadError(text if exc is None else f"{text}. {exc!r}"))
        elif exc is not None:
            waiter.set_exception(httpx.ReadError(str(exc)))
        else:
            waiter.set_exception(httpx.ReadError("Server disconnected"))

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost follows

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():  # bytes nobody asked for: the connection is unusable
            self.shut()
            return
        self.last_read = waiter.get_loop().time()
        buffer = self.buffer
        buffer += data
        try:
            self._parse()
        except AnswerTooLarge as exc:
            self._fail(exc)
        except (ValueError, UnicodeError) as exc:  # _Malformed, or a number that is none
            import httpx

            # a RequestError, as aiohttp's parser errors were mapped: "Connection error." to the user
            self._fail(httpx.RequestError(f"malformed answer: {exc}"))

    # -- parsing --------------------------------------------------------------------------------

    def _parse(self) -> None:
        buffer = self.buffer
        if not self.mode and not self._head():
            return
        if self.mode == "length":
            if len(buffer) < self.remaining:
                return
            body = bytes(buffer[: self.remaining])
            del buffer[: self.remaining]
            self._finish(body)
        elif self.mode == "chunked":
            self._chunks()
        else:  # "close": the body is everything until the server closes
            self.body += buffer
            buffer.clear()
            if len(self.body) > MAX_BODY:
                raise answer_too_large(self.server)

    def _head(self) -> bool:
        """Parse the status line and headers once they are all here; False while they are not."""
        buffer = self.buffer
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    raise _Malformed("the answer's head is too long")
                return False
            lines = bytes(buffer[:end]).split(b"\r\n")
            del buffer[: end + 4]
            version, _, rest = lines[0].partition(b" ")
            if version not in (b"HTTP/1.1", b"HTTP/1.0"):
                raise _Malformed(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
            status = int(rest[:3])
            if not 100 <= status <= 999 or (len(rest) > 3 and rest[3:4] != b" "):
                raise _Malformed(f"bad status line: {lines[0][:80]!r}")
            if 100 <= status < 200 and status != 101:
                continue  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            headers: list[tuple[str, str]] = []
            length: int | None = None
            chunked = False
            keep_alive = version == b"HTTP/1.1"
            for line in lines[1:]:
                name, colon, value = line.partition(b":")
                if not colon or not name or name != name.strip():
                    raise _Malformed(f"bad header line: {line[:80]!r}")
                # as aiohttp decodes them (and as the headers of the httpx answer it made held them)
                text_name = name.decode("utf-8", "surrogateescape")
                text_value = value.strip(b" \t").decode("utf-8", "surrogateescape")
                headers.append((text_name, text_value))
                lower = text_name.lower()
                if lower == "content-length":
                    if not text_value.isdigit() or (length is not None and length != int(text_value)):
                        raise _Malformed(f"bad Content-Length: {text_value[:40]!r}")
                    length = int(text_value)
                elif lower == "transfer-encoding":
                    chunked = text_value.lower().split(",")[-1].strip() == "chunked"
                elif lower == "connection":
                    tokens = {t.strip() for t in text_value.lower().split(",")}
                    if "close" in tokens:
                        keep_alive = False
                    elif "keep-alive" in tokens:
                        keep_alive = True
            self.status, self.headers, self.keep_alive = status, headers, keep_alive
            self.body = bytearray()
            if status in (204, 304) or status == 101:
                self.mode, self.remaining = "length", 0
            elif chunked:
                self.mode, self.remaining = "chunked", -1
            elif length is not None:
                if length > MAX_BODY:
                    raise answer_too_large(self.server, length)
                self.mode, self.remaining, self.expected = "length", length, length
            else:
                self.mode, self.keep_alive = "close", False
            return True

    def _chunks(self) -> None:
        buffer = self.buffer
        while True:
            if self.remaining < 0:  # at a chunk's size line
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > 4096:
                        raise _Malformed("bad chunk size line")
                    return
                size_text = bytes(buffer[:end]).split(b";", 1)[0].strip()
                size = int(size_text, 16)
                if size < 0:
                    raise _Malformed("bad chunk size")
                if size == 0:  # the last chunk: then trailers, up to an empty line
                    if buffer[end + 2 : end + 4] == b"\r\n":
                        del buffer[: end + 4]
                    else:
                        tail = buffer.find(b"\r\n\r\n", end)
                        if tail < 0:
                            if len(buffer) > MAX_HEAD:
                                raise _Malformed("the answer's trailers are too long")
                            return
                        del buffer[: tail + 4]
                    self._finish(bytes(self.body))
                    return
                if len(self.body) + size > MAX_BODY:
                    raise answer_too_large(self.server)
                del buffer[: end + 2]
                self.remaining = size
            if len(buffer) < self.remaining + 2:
                return
            if buffer[self.remaining : self.remaining + 2] != b"\r\n":
                raise _Malformed("a chunk does not end with CRLF")
            self.body += buffer[: self.remaining]
            del buffer[: self.remaining + 2]
            self.remaining = -1

    def _finish(self, body: bytes) -> None:
        waiter = self.waiter
        # reusable: a keep-alive answer read to its end with nothing after it
        self.reusable = self.keep_alive and self.mode != "close" and not self.buffer and not self.lost
        self.mode = ""
        if waiter is not None and not waiter.done():
            waiter.set_result((self.status, self.headers, body))


__all__ = ["KEEPALIVE_S", "MAX_BODY", "MAX_IDLE", "AnswerTooLarge", "Pool", "answer_too_large", "close", "install", "pool_for"]
