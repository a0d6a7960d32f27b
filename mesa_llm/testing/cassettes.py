"""Cassette tests of your own LLM agents: :func:`use_cassette` records the HTTP calls litellm
makes to a file you choose and replays them offline (vcrpy, from the ``test`` extra; imported only
when a cassette is used). Credentials never reach the file: ``Authorization``, ``api-key``,
``x-api-key`` and ``x-goog-api-key`` headers and ``key``/``api_key`` query parameters are filtered
out, and only a few request headers are kept at all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: vcrpy's record modes: ``none`` replays only (a request the cassette lacks fails at once),
#: ``once`` records when the file does not exist yet, else replays; ``new_episodes`` replays what
#: it holds and records the rest; ``all`` records every request again
RECORD_MODES = ("none", "once", "new_episodes", "all")
FILTERED_HEADERS = ("authorization", "api-key", "x-api-key", "x-goog-api-key")
FILTERED_QUERY = ("key", "api_key")
#: the only request headers stored (SDK version headers would change the file on every re-record)
KEPT_REQUEST_HEADERS = ("content-type", "accept", "host")
DROPPED_RESPONSE_HEADERS = ("date", "server", "set-cookie")


def _parsed_body(request: Any) -> Any:
    body = request.body
    if body in (None, b"", ""):
        return None
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        return json.loads(body)
    except ValueError:
        return body


def _json_body(r1: Any, r2: Any) -> None:
    """vcrpy matcher: bodies equal as parsed JSON (key order and whitespace do not matter)."""
    if _parsed_body(r1) != _parsed_body(r2):
        raise AssertionError("request bodies differ")




def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    headers = response.get("headers") or {}
    for name in list(headers):
        if name.lower() in DROPPED_RESPONSE_HEADERS:
            del headers[name]
    return response


def make_vcr(mode: str, *, kept_request_headers: tuple[str, ...] = KEPT_REQUEST_HEADERS, **options: Any) -> Any:
    """A vcrpy ``VCR`` configured as `use_cassette` uses it: matching on method, path and JSON
    body, credentials filtered, only ``kept_request_headers`` stored; ``options`` go to ``VCR``
    (e.g. ``cassette_library_dir``)."""
    try:
        import vcr  # the test extra; never imported with the package
    except ImportError:
        raise ImportError("use_cassette needs vcrpy: pip install 'mesa-llm[test]'") from None

    def scrub_request(request: Any) -> Any:
        for name in list(request.headers):
            if name.lower() not in kept_request_headers:
                del request.headers[name]
        return request

    recorder = vcr.VCR(
        record_mode=mode,
        match_on=("method", "path", "json_body"),
        filter_headers=list(FILTERED_HEADERS),
        filter_query_parameters=list(FILTERED_QUERY),
        decode_compressed_response=True,
        before_record_request=scrub_request,
        before_record_response=_scrub_response,
        **options,
    )
    recorder.register_matcher("json_body", _json_body)
    return recorder


@contextmanager
def use_cassette(path: str | Path, mode: str = "once") -> Iterator[Any]:
    """Record the LLM calls made inside the block to the cassette file ``path`` (YAML), or replay
    them from it, per ``mode`` (`RECORD_MODES`; ``none`` for CI: offline, a new request fails).
    Requests match on method, path and JSON body. Yields vcrpy's ``Cassette`` (``len()`` is the
    number of recorded calls, ``play_count`` how many were replayed)."""
    if mode not in RECORD_MODES:
        raise ValueError(f"use_cassette mode {mode!r}: expected one of {', '.join(RECORD_MODES)}")
    file = Path(path)
    if mode == "none" and not file.is_file():
        raise FileNotFoundError(f"cassette {file} does not exist: record it first with mode='once'")
    recorder = make_vcr(mode)
    file.parent.mkdir(parents=True, exist_ok=True)
    with recorder.use_cassette(str(file)) as cassette:
        yield cassette


__all__ = ["RECORD_MODES", "make_vcr", "use_cassette"]
