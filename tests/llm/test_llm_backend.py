"""LiteLLMChatModel against a live fake server, and classify, retries, limits, caches, usage, checks."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mesa_llm.llm import (
    ChatRequest,
    ChatResponse,
    ConcurrencyLimiter,
    DiskCache,
    LiteLLMChatModel,
    LLMError,
    MemoryCache,
    ToolCall,
    Usage,
    UsageTracker,
    call_with_retries,
    check_server,
    classify,
    missing_credentials,
)
from mesa_llm.llm.litellm_backend import _litellm
from mesa_llm.llm.testing import text_response
from tests.fake_openai_server import FakeOpenAIServer

MODEL = "openai/fake-model"
KEY = "sk-test-not-a-real-key"


@pytest.fixture(scope="module")
def live_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def server(live_server: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    live_server.reset()
    live_server.latency_s = 0.0
    yield live_server
    live_server.reset()


def make_model(server: FakeOpenAIServer, **kwargs: Any) -> LiteLLMChatModel:
    options: dict[str, Any] = {"api_base": server.base_url, "api_key": KEY, "initial_wait": 0.01}
    options.update(kwargs)
    return LiteLLMChatModel(MODEL, **options)


def ask(text: str = "Say ok.", **kwargs: Any) -> ChatRequest:
    return ChatRequest(model=MODEL, messages=[{"role": "user", "content": text}], **kwargs)


# --- the live call path ----------------------------------------------------------------------


def test_answer_usage_and_metadata_not_sent(server: FakeOpenAIServer) -> None:
    tools = [{"type": "function", "function": {"name": "wait", "parameters": {"type": "object"}}}]
    response = asyncio.run(
        make_model(server).complete(ask(tools=tools, seed=3, purpose="plan", agent_id=9))
    )
    assert response.tool_calls == [ToolCall(response.tool_calls[0].id, "wait", "{}")]
    assert response.usage.prompt_tokens > 0 and response.attempts == 1
    assert response.model == "fake-model" and response.cost_usd == 0.0
    (sent,) = server.requests
    assert sent["seed"] == 3 and "purpose" not in sent and "agent_id" not in sent
    assert "temperature" not in sent  # None parameters are not sent
    assert server.request_headers[0]["authorization"] == f"Bearer {KEY}"


def test_timeout_then_success(server: FakeOpenAIServer) -> None:
    server.enqueue_fault(status=None, delay_s=1.5)  # the first request answers too late
    model = make_model(server, timeout=0.3, max_attempts=3)
    started = time.perf_counter()
    response = asyncio.run(model.complete(ask()))
    assert time.perf_counter() - started < 1.4
    assert response.attempts == 2 and response.content == "ok"
    assert server.request_count == 2


def test_a_500_is_requested_exactly_once_per_attempt(server: FakeOpenAIServer) -> None:
    server.enqueue_fault(500)
    with pytest.raises(LLMError) as caught:
        asyncio.run(make_model(server, max_attempts=1).complete(ask()))
    assert caught.value.kind == "server" and caught.value.retryable
    assert server.request_count == 1  # neither litellm nor the OpenAI SDK retried on its own

    server.reset()
    for _ in range(3):
        server.enqueue_fault(503)
    with pytest.raises(LLMError) as caught:
        asyncio.run(make_model(server, max_attempts=3).complete(ask()))
    assert caught.value.attempts == 3 and server.request_count == 3
    assert str(caught.value).endswith("(after 3 attempts)")


def test_non_transient_errors_are_not_retried(server: FakeOpenAIServer) -> None:
    server.enqueue_fault(400)
    with pytest.raises(LLMError) as caught:
        asyncio.run(make_model(server, max_attempts=4).complete(ask()))
    assert caught.value.kind == "bad_request" and not caught.value.fatal
    assert caught.value.attempts == 1 and server.request_count == 1


#: what llama.cpp-style servers answer with a 500 when they refuse the request itself
REFUSED_500_BODIES = [
    {"error": {"code": 500, "message": "Unsupported response_format type: json_schema", "type": "server_error"}},
    {"error": {"code": 500, "message": "JSON schema conversion failed: unrecognized keyword", "type": "server_error"}},
    {"error": {"code": 500, "message": "failed to parse grammar", "type": "server_error"}},
    {"error": {"code": 500, "message": "Invalid request: 'messages' must be a list", "type": "server_error"}},
]


@pytest.mark.parametrize("status", [400, 409, 413, 422])
def test_deterministic_4xx_are_attempted_once(server: FakeOpenAIServer, status: int) -> None:
    server.fail_always(status)
    with pytest.raises(LLMError) as caught:
        asyncio.run(make_model(server, max_attempts=4).complete(ask()))
    assert not caught.value.retryable and caught.value.attempts == 1
    assert server.request_count == 1


@pytest.mark.parametrize("body", REFUSED_500_BODIES)
def test_a_500_refusing_the_request_is_attempted_once(server: FakeOpenAIServer, body: dict[str, Any]) -> None:
    server.fail_always(500, body=body)
    with pytest.raises(LLMError) as caught:
        asyncio.run(make_model(server, max_attempts=4).complete(ask()))
    err = caught.value
    assert (err.kind, err.retryable, err.attempts, err.status_code) == ("bad_request", False, 1, 500)
    assert "HTTP 500" in str(err) and server.request_count == 1


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_transient_statuses_are_retried(server: FakeOpenAIServer, status: int) -> None:
    server.enqueue_fault(status)  # the default bodies say nothing about the request being invalid
    response = asyncio.run(make_model(server, max_attempts=3).complete(ask()))
    assert response.attempts == 2 and server.request_count == 2


def test_latency_covers_every_attempt(server: FakeOpenAIServer) -> None:
    server.latency_s = 0.1  # per request, faulted ones too
    server.enqueue_fault(503)
    server.enqueue_fault(503)
    response = asyncio.run(make_model(server, max_attempts=3, initial_wait=0.05).complete(ask()))
    assert response.attempts == 3 and len(response.attempt_latencies_s) == 3
    assert all(t >= 0.1 for t in response.attempt_latencies_s)
    # the waits between attempts count too: the caller waited for all of it
    assert response.latency_s >= sum(response.attempt_latencies_s) + 0.05

    server.reset()
    server.fail_always(503)
    with pytest.raises(LLMError) as caught:
        asyncio.run(make_model(server, max_attempts=2, initial_wait=0.05).complete(ask()))
    err = caught.value
    assert err.attempts == 2 and len(err.attempt_latencies_s) == 2
    assert err.latency_s is not None and err.latency_s >= sum(err.attempt_latencies_s) >= 0.2


def test_recorded_llm_calls_time_all_attempts_failed_ones_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mesa_llm.model import MarketModel
    from mesa_llm.recording import load_events
    from mesa_llm.scenario import load_scenario

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    spec = load_scenario(
        "llm_double_auction",
        overrides=[
            "steps=2",
            "populations.0.count=1",
            "populations.1.count=0",
            "populations.0.params.plan_every=0",
            "populations.0.params.tool_mode=tools",  # no probe: the faults below are for the agent
        ],
    )
    with FakeOpenAIServer(latency_s=0.05) as server:
        spec.llm = spec.llm.model_copy(update={"api_base": server.base_url})
        for _ in range(5):  # step 1: all four attempts fail; step 2: one fails, then the answer
            server.enqueue_fault(503)
        model = MarketModel(spec, output_dir=tmp_path, llm_model="openai/fake-model")
        model.run()
    calls = [e["content"] for e in load_events(model.recording_path).events if e["event_type"] == "llm_call"]
    failed, answered = calls
    assert answered["error"] is None and answered["attempts"] == 2
    assert failed["error"] is not None and failed["attempts"] == 4
    for call in (answered, failed):
        times = call["attempt_latencies_s"]
        assert len(times) == call["attempts"] and all(t >= 0.05 for t in times)
        assert call["latency_s"] >= sum(times)


def test_retry_after_is_honoured(server: FakeOpenAIServer) -> None:
    server.enqueue_fault(429, headers={"Retry-After": "0.3"})
    started = time.perf_counter()
    response = asyncio.run(make_model(server).complete(ask()))
    assert response.attempts == 2
    assert time.perf_counter() - started >= 0.3


def test_connection_refused_is_a_transient_connection_error() -> None:
    model = LiteLLMChatModel(
        MODEL, api_base="http://127.0.0.1:9/v1", api_key=KEY, max_attempts=2, initial_wait=0.01
    )
    with pytest.raises(LLMError) as caught:
        asyncio.run(model.complete(ask()))
    err = caught.value
    assert err.kind == "connection" and err.retryable and err.attempts == 2
    assert err.status_code is None and KEY not in str(err)
    assert "could not reach the provider" in str(err) and "127.0.0.1" in str(err)


def test_a_key_never_configured_is_a_fatal_authentication_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the OpenAI SDK refuses before any network access when it has no key at all
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = LiteLLMChatModel("openai/gpt-4o-mini", max_attempts=3, initial_wait=0.01)
    with pytest.raises(LLMError) as caught:
        asyncio.run(model.complete(ask()))
    err = caught.value
    assert err.kind == "authentication" and err.fatal and err.attempts == 1
    assert err.status_code is None and "no API key configured" in str(err)


def test_explicit_prices_give_cost(server: FakeOpenAIServer) -> None:
    model = make_model(server, input_cost_per_token=1e-6, output_cost_per_token=2e-6)
    response = asyncio.run(model.complete(ask()))
    expected = response.usage.prompt_tokens * 1e-6 + response.usage.completion_tokens * 2e-6
    assert response.cost_usd == pytest.approx(expected)


def test_local_server_needs_no_key(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = LiteLLMChatModel(MODEL, api_base=server.base_url)
    assert asyncio.run(model.complete(ask())).content == "ok"


def test_backend_limiter_bounds_in_flight_requests() -> None:
    # its own server: a request another test left sleeping would count as in flight
    with FakeOpenAIServer(latency_s=0.05) as server:
        model = make_model(server, limiter=ConcurrencyLimiter(default_limit=3))

        async def run() -> list[ChatResponse]:
            return await asyncio.gather(*(model.complete(ask(f"n{i}")) for i in range(9)))

        responses = asyncio.run(run())
        assert len(responses) == 9 and server.request_count == 9
        assert server.max_in_flight == 3


# --- classify --------------------------------------------------------------------------------


def _litellm_cases() -> list[tuple[BaseException, str, bool, bool]]:
    litellm = _litellm()
    req = httpx.Request("POST", "https://example.invalid/v1/chat/completions")

    def resp(status: int) -> httpx.Response:
        return httpx.Response(status, request=req)

    common = {"model": "m", "llm_provider": "openai"}
    cases: list[tuple[BaseException, str, bool, bool]] = [
        (litellm.AuthenticationError(message="bad key", **common), "authentication", False, True),
        (
            litellm.PermissionDeniedError(message="no", response=resp(403), **common),
            "permission",
            False,
            True,
        ),
        (litellm.NotFoundError(message="no model", **common), "not_found", False, True),
        (litellm.BadRequestError(message="bad", **common), "bad_request", False, False),
        (
            litellm.ContextWindowExceededError(message="too long", **common),
            "context_window",
            False,
            False,
        ),
        (
            litellm.ContentPolicyViolationError(message="unsafe", **common),
            "content_policy",
            False,
            False,
        ),
        (litellm.UnsupportedParamsError(message="seed", **common), "bad_request", False, False),
        (
            litellm.UnprocessableEntityError(message="422", response=resp(422), **common),
            "bad_request",
            False,
            False,
        ),
        (litellm.RateLimitError(message="slow", **common), "rate_limit", True, False),
        (litellm.Timeout(message="slow", **common), "timeout", True, False),
        (litellm.APIConnectionError(message="down", **common), "connection", True, False),
        (litellm.ServiceUnavailableError(message="busy", **common), "server", True, False),
        (litellm.InternalServerError(message="oops", **common), "server", True, False),
        (litellm.BadGatewayError(message="gw", **common), "server", True, False),
        (litellm.APIError(status_code=408, message="slow", **common), "timeout", True, False),
        (
            litellm.APIError(status_code=418, message="teapot", **common),
            "bad_request",
            False,
            False,
        ),
        (TimeoutError(), "timeout", True, False),
        (ConnectionRefusedError(111, "Connection refused"), "connection", True, False),
        (httpx.ConnectError("refused"), "connection", True, False),
        (httpx.ReadTimeout("slow"), "timeout", True, False),
        (ValueError("odd"), "unknown", False, False),
    ]
    return cases


def test_classify_table() -> None:
    for exc, kind, retryable, fatal in _litellm_cases():
        err = classify(exc, "openai/m")
        assert (err.kind, err.retryable, err.fatal) == (kind, retryable, fatal), repr(exc)
        assert "\n" not in str(err) and str(err).startswith("openai/m: ")


def test_classify_cassette_miss_anywhere_in_the_chain() -> None:
    from vcr.errors import CannotOverwriteExistingCassetteException

    litellm = _litellm()
    # its constructor needs a real cassette; only its class (name) matters here
    miss = Exception.__new__(CannotOverwriteExistingCassetteException)
    Exception.__init__(miss, "Can't overwrite existing cassette")
    try:
        try:
            raise miss
        except Exception as caught:
            raise litellm.InternalServerError(
                message="Connection error.", model="m", llm_provider="openai"
            ) from caught
    except Exception as exc:
        err = classify(exc, "openai/m")
    assert err.kind == "cache_miss" and err.fatal and not err.retryable


def test_classify_works_by_class_name_without_litellm() -> None:
    class RateLimitError(Exception):
        status_code = 429

    class ContextWindowExceededError(Exception):
        pass

    class BadRequestError(ContextWindowExceededError):  # even with a strange hierarchy
        pass

    assert classify(RateLimitError(), "x").kind == "rate_limit"
    assert classify(BadRequestError(), "x").kind == "context_window"
    status_only = Exception("gateway")
    status_only.status_code = 502  # type: ignore[attr-defined]
    assert classify(status_only, "x").kind == "server"
    existing = LLMError("x", model="x", kind="budget")
    assert classify(existing, "x") is existing


# --- retries ---------------------------------------------------------------------------------


def test_call_with_retries_counts_and_stops() -> None:
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TimeoutError()
        return "done"

    result, attempts = asyncio.run(call_with_retries(flaky, model="m", initial_wait=0.001))
    assert (result, attempts, len(calls)) == ("done", 3, 3)

    async def always() -> str:
        raise ConnectionResetError()

    with pytest.raises(LLMError) as caught:
        asyncio.run(call_with_retries(always, model="m", max_attempts=2, initial_wait=0.001))
    assert caught.value.attempts == 2 and caught.value.kind == "connection"


# --- ConcurrencyLimiter ----------------------------------------------------------------------


def _max_holders(limiter: ConcurrencyLimiter, model: str, tasks: int) -> int:
    holders = 0
    peak = 0

    async def one() -> None:
        nonlocal holders, peak
        async with limiter.slot(model):
            holders += 1
            peak = max(peak, holders)
            await asyncio.sleep(0.005)
            holders -= 1

    async def run() -> None:
        await asyncio.gather(*(one() for _ in range(tasks)))

    asyncio.run(run())
    return peak


def test_limiter_never_exceeds_its_limit_across_loops() -> None:
    limiter = ConcurrencyLimiter(default_limit=3, per_model={"big": 5})
    assert _max_holders(limiter, "small", 20) == 3
    assert _max_holders(limiter, "big", 20) == 5  # a second event loop: fresh semaphores
    with asyncio.Runner() as runner:  # and a long-lived runner, as a model run uses
        for _ in range(2):

            async def burst() -> None:
                async with limiter.slot("small"):
                    await asyncio.sleep(0)

            runner.run(asyncio.wait_for(asyncio.gather(*(burst() for _ in range(5))), 5))


def test_limiter_rate_limit() -> None:
    limiter = ConcurrencyLimiter(default_limit=100, requests_per_second=50)

    async def run() -> float:
        started = time.perf_counter()

        async def one() -> None:
            async with limiter.slot("m"):
                pass

        await asyncio.gather(*(one() for _ in range(60)))  # a burst of 50, then 10 at 50/s
        return time.perf_counter() - started

    assert asyncio.run(run()) >= 0.15
    with pytest.raises(ValueError):
        ConcurrencyLimiter(default_limit=0)


# --- caches ----------------------------------------------------------------------------------


def _sample() -> ChatResponse:
    return ChatResponse(
        content=None,
        tool_calls=[ToolCall("c", "wait", "{}")],
        usage=Usage(11, 3),
        model="fake-model",
        cost_usd=0.01,
        latency_s=0.4,
        attempts=2,
        finish_reason="tool_calls",
    )


@pytest.mark.parametrize("kind", ["memory", "disk"])
def test_cache_round_trip_and_hit_semantics(kind: str, tmp_path: Path) -> None:
    cache = MemoryCache() if kind == "memory" else DiskCache(tmp_path / "cache")
    key = ask().cache_key()
    assert cache.get(key) is None
    stored = _sample()
    cache.put(key, stored)
    stored.tool_calls.append(ToolCall("x", "y", "{}"))  # the cache holds a copy
    hit = cache.get(key)
    assert hit is not None
    assert hit.cached and hit.latency_s == 0.0 and hit.cost_usd == 0.0 and hit.attempts == 0
    assert hit.usage == Usage(11, 3) and hit.tool_calls == [ToolCall("c", "wait", "{}")]


def test_disk_cache_files_are_json_atomic_and_corruption_is_a_miss(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = DiskCache(tmp_path)
    key = ask().cache_key()
    cache.put(key, _sample())
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == [f"{key}.json"]  # no temporary file left behind
    assert json.loads(files[0].read_text())["response"]["model"] == "fake-model"
    files[0].write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="mesa_llm.llm.cache"):
        assert cache.get(key) is None
    assert "corrupt" in caplog.text
    assert DiskCache(tmp_path).path_for("../../etc/passwd").parent == tmp_path


@pytest.mark.parametrize("kind", ["memory", "disk"])
def test_second_identical_request_makes_no_http_call(
    kind: str, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    cache = MemoryCache() if kind == "memory" else DiskCache(tmp_path)
    model = make_model(server, cache=cache)
    first = asyncio.run(model.complete(ask()))
    second = asyncio.run(model.complete(ask(purpose="repair", agent_id=2)))  # metadata: same key
    assert server.request_count == 1
    assert not first.cached and second.cached and second.attempts == 0
    assert second.content == first.content and second.usage == first.usage
    asyncio.run(model.complete(ask("something else")))
    assert server.request_count == 2


# --- usage -----------------------------------------------------------------------------------


def test_usage_tracker_totals_and_budgets() -> None:
    tracker = UsageTracker(max_cost_usd=0.01, max_tokens=100)
    paid = text_response("a", prompt_tokens=30, completion_tokens=10)
    paid.cost_usd, paid.latency_s = 0.004, 0.5
    tracker.add(1, paid)
    tracker.add(2, paid)
    hit = text_response("a", prompt_tokens=30, completion_tokens=10)
    hit.cached = True
    tracker.add(1, hit)
    tracker.add_failure(2, LLMError("x", model="m", kind="timeout"))
    tracker.add(None, paid)  # a model-level call: run totals only
    run = tracker.run
    assert (run.calls, run.failed_calls, run.cached_calls) == (5, 1, 1)
    assert (run.prompt_tokens, run.completion_tokens) == (90, 30)
    assert run.cost_usd == pytest.approx(0.012) and run.latency_s == pytest.approx(1.5)
    assert tracker.agent(1).calls == 2 and tracker.agent(1).cached_calls == 1
    assert tracker.agent(2).failed_calls == 1 and tracker.agent(99).calls == 0
    assert set(tracker.per_agent) == {1, 2}
    assert tracker.budget_exceeded() == "cost budget exceeded: $0.0120 spent, max $0.0100"
    data = json.loads(json.dumps(tracker.to_dict()))
    assert data["run"]["total_tokens"] == 120 and set(data["per_agent"]) == {"1", "2"}

    tokens_only = UsageTracker(max_tokens=100)
    assert tokens_only.budget_exceeded() is None
    tokens_only.add(1, paid)
    tokens_only.add(1, paid)
    assert tokens_only.budget_exceeded() is None  # 80 of 100
    tokens_only.add(1, paid)
    assert tokens_only.budget_exceeded() == "token budget exceeded: 120 tokens used, max 100"


# --- configuration checks --------------------------------------------------------------------


def test_missing_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert "OPENAI_API_KEY" in missing_credentials("openai/gpt-4o-mini", None)
    assert missing_credentials("openai/local", "http://127.0.0.1:8080/v1") == []
    assert missing_credentials("openai/gpt-4o-mini", None, api_key="sk-given") == []
    monkeypatch.setenv("OPENAI_API_KEY", "sk-set-for-test")
    assert missing_credentials("openai/gpt-4o-mini", None) == []
    assert isinstance(missing_credentials("no-such-provider/x", None), list)


def test_check_server(server: FakeOpenAIServer) -> None:
    assert asyncio.run(check_server(server.base_url)) is None
    reason = asyncio.run(check_server("http://127.0.0.1:9/v1", timeout=1.0))
    assert reason == "no server answers at http://127.0.0.1:9/v1: connection refused"
    assert asyncio.run(check_server("not a url")) is not None


def test_importing_the_package_does_not_import_litellm() -> None:
    code = (
        "import sys, mesa_llm.llm, mesa_llm.llm.testing; "
        "bad = [m for m in ('litellm', 'openai', 'aiohttp', 'vcr') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_token_bucket_makes_callers_wait_beyond_its_burst() -> None:
    """rate 20/s with a burst of 1: the first acquisition is free, the second waits ~1/20 s."""
    from mesa_llm.llm.limits import TokenBucket

    async def two() -> float:
        bucket = TokenBucket(rate=20.0, capacity=1.0)
        start = time.perf_counter()
        for _ in range(2):
            await bucket.acquire()
        return time.perf_counter() - start

    # a lower bound only: a loaded machine can make it slower, never faster
    assert asyncio.run(two()) >= 0.045
