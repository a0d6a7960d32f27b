"""vcrpy cassettes for tests that go through litellm's real HTTP path, offline by default.

``use_cassette(name)`` replays ``tests/cassettes/<name>.yaml`` with record mode "none": no server
runs, the network is never used, and a request the cassette does not hold fails at once (litellm
surfaces it as an error whose chain holds vcrpy's CannotOverwriteExistingCassetteException, which
``classify`` maps to the fatal kind "cache_miss").

To (re-)record, delete the cassette file and run the tests with ``MESA_LLM_RECORD_CASSETTES=1``:
record mode becomes "once" and a :class:`FakeOpenAIServer` is started on the FIXED address
``CASSETTE_API_BASE`` (the cassette stores the URL, so replay must use the same one).

Cassettes never hold secrets: authorization/api-key headers and key query parameters are filtered,
and the tests assert the dummy key ``DUMMY_API_KEY`` appears in no cassette file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import vcr
from vcr.cassette import Cassette
from vcr.request import Request

from tests.fake_openai_server import FakeOpenAIServer, Responder

CASSETTE_DIR = Path(__file__).parent / "cassettes"
CASSETTE_HOST = "127.0.0.1"
CASSETTE_PORT = 18765
CASSETTE_API_BASE = f"http://{CASSETTE_HOST}:{CASSETTE_PORT}/v1"
DUMMY_API_KEY = "sk-test-not-a-real-key"
RECORD_ENV = "MESA_LLM_RECORD_CASSETTES"
FILTERED_HEADERS = ("authorization", "api-key", "x-api-key", "x-goog-api-key")
FILTERED_QUERY = ("key", "api_key")
# Only these request headers are stored (the SDK's version headers would churn every re-record);
# the retry count shows in the cassette that the SDK itself never retried.
KEPT_REQUEST_HEADERS = ("content-type", "accept", "host", "x-stainless-retry-count")
DROPPED_RESPONSE_HEADERS = ("date", "server", "set-cookie")


def recording() -> bool:
    """True when this test run records cassettes (``MESA_LLM_RECORD_CASSETTES=1``)."""
    return os.environ.get(RECORD_ENV, "").strip().lower() in ("1", "true", "yes")


def _parsed_body(request: Request) -> Any:
    body = request.body
    if body is None or body == b"" or body == "":
        return None
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        return json.loads(body)
    except ValueError:
        return body


def json_body_matcher(r1: Request, r2: Request) -> None:
    """vcrpy matcher: bodies equal as parsed JSON (key order and whitespace do not matter)."""
    left, right = _parsed_body(r1), _parsed_body(r2)
    if left != right:
        raise AssertionError(f"bodies differ: {left!r} != {right!r}")


def _scrub_request(request: Request) -> Request:
    for name in list(request.headers):
        if name.lower() not in KEPT_REQUEST_HEADERS:
            del request.headers[name]
    return request


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    headers = response.get("headers") or {}
    for name in list(headers):
        if name.lower() in DROPPED_RESPONSE_HEADERS:
            del headers[name]
    return response


def make_vcr(record_mode: str | None = None) -> vcr.VCR:
    """The project's VCR: method + path + JSON body matching, secrets filtered, offline by default."""
    recorder = vcr.VCR(
        cassette_library_dir=str(CASSETTE_DIR),
        record_mode=record_mode or ("once" if recording() else "none"),
        match_on=("method", "path", "json_body"),
        filter_headers=list(FILTERED_HEADERS),
        filter_query_parameters=list(FILTERED_QUERY),
        decode_compressed_response=True,
        before_record_request=_scrub_request,
        before_record_response=_scrub_response,
    )
    recorder.register_matcher("json_body", json_body_matcher)
    return recorder


@dataclass
class CassetteSession:
    """What a test gets inside :func:`use_cassette`."""

    cassette: Cassette
    api_base: str = CASSETTE_API_BASE
    api_key: str = DUMMY_API_KEY
    server: FakeOpenAIServer | None = None  # only while recording
    path: Path = field(default_factory=Path)

    @property
    def recorded_requests(self) -> int:
        """How many interactions the cassette holds (after recording: how many were made)."""
        return len(self.cassette)


@contextmanager
def use_cassette(
    name: str,
    *,
    responder: Responder | None = None,
    faults: Sequence[dict[str, Any]] = (),
    before_record: Callable[[FakeOpenAIServer], None] | None = None,
) -> Iterator[CassetteSession]:
    """Replay ``tests/cassettes/<name>.yaml`` (or record it against a fake server, see module doc).

    ``responder`` and ``faults`` (``enqueue_fault`` keyword dicts, in order) configure the fake
    server; they only matter while recording, since replay never contacts a server.
    """
    path = CASSETTE_DIR / f"{name}.yaml"
    if not recording() and not path.exists():
        raise FileNotFoundError(
            f"cassette {path} is missing: record it with {RECORD_ENV}=1 (see tests/llm_cassettes.py)"
        )
    CASSETTE_DIR.mkdir(parents=True, exist_ok=True)
    server: FakeOpenAIServer | None = None
    if recording():
        server = FakeOpenAIServer(responder=responder, port=CASSETTE_PORT, host=CASSETTE_HOST)
        for fault in faults:
            server.enqueue_fault(**fault)
        if before_record is not None:
            before_record(server)
        server.start()
    try:
        with make_vcr().use_cassette(path.name) as cassette:
            yield CassetteSession(cassette=cassette, server=server, path=path)
    finally:
        if server is not None:
            server.stop()
