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

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import vcr
from vcr.cassette import Cassette

from mesa_llm.testing.cassettes import make_vcr as make_package_vcr
from tests.fake_openai_server import FakeOpenAIServer, Responder

CASSETTE_DIR = Path(__file__).parent / "cassettes"
CASSETTE_HOST = "127.0.0.1"
CASSETTE_PORT = 18765
CASSETTE_API_BASE = f"http://{CASSETTE_HOST}:{CASSETTE_PORT}/v1"
DUMMY_API_KEY = "sk-test-not-a-real-key"
RECORD_ENV = "MESA_LLM_RECORD_CASSETTES"
# Only these request headers are stored (the SDK's version headers would churn every re-record);
# the retry count shows in the cassette that the SDK itself never retried.
KEPT_REQUEST_HEADERS = ("content-type", "accept", "host", "x-stainless-retry-count")


def recording() -> bool:
    """True when this test run records cassettes (``MESA_LLM_RECORD_CASSETTES=1``)."""
    return os.environ.get(RECORD_ENV, "").strip().lower() in ("1", "true", "yes")


def make_vcr(record_mode: str | None = None) -> vcr.VCR:
    """The project's VCR (the package's, see `mesa_llm.testing.cassettes.make_vcr`), over
    tests/cassettes/, offline by default; the retry-count header is kept as well."""
    return make_package_vcr(
        record_mode or ("once" if recording() else "none"),
        kept_request_headers=KEPT_REQUEST_HEADERS,
        cassette_library_dir=str(CASSETTE_DIR),
    )


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
