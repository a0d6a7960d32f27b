"""The client's hot path at scale: no collector passes during a step's calls, no retry machinery
for an answer on the first attempt, no per-step O(agents) work per agent."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from mesa_llm.llm import LLMError
from mesa_llm.llm import retry as retry_module
from mesa_llm.llm.retry import call_with_retries
from mesa_llm.llm_wiring import AsyncBridge


def test_a_steps_calls_run_with_the_collector_paused_and_it_resumes_after() -> None:
    seen: list[bool] = []

    async def calls() -> str:
        seen.append(gc.isenabled())
        await asyncio.sleep(0)
        return "done"

    async def failing() -> None:
        seen.append(gc.isenabled())
        raise RuntimeError("a call failed")

    assert gc.isenabled()
    bridge = AsyncBridge()
    try:
        assert bridge.run(calls()) == "done"
        assert gc.isenabled()
        with pytest.raises(RuntimeError):
            bridge.run(failing())
        assert gc.isenabled()  # resumed however the step's calls ended
    finally:
        bridge.close()
    assert seen == [False, False]


def test_the_collector_stays_off_when_the_caller_turned_it_off() -> None:
    async def calls() -> bool:
        return gc.isenabled()

    gc.disable()
    bridge = AsyncBridge()
    try:
        assert bridge.run(calls()) is False
        assert not gc.isenabled()  # not turned on behind the caller's back
    finally:
        bridge.close()
        gc.enable()


def test_an_answer_on_the_first_attempt_builds_no_retry_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """tenacity's per-call setup cost more than the request's headers: not used for the answer."""
    import tenacity

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("retry machinery built for a call that needed no retry")

    monkeypatch.setattr(tenacity.AsyncRetrying, "__init__", refuse)

    async def answer() -> str:
        return "ok"

    assert asyncio.run(call_with_retries(answer, model="m")) == ("ok", 1)


def test_a_classified_failure_keeps_its_cause_and_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    original = TimeoutError("read timed out")

    async def times_out() -> str:
        raise original

    with pytest.raises(LLMError) as info:
        asyncio.run(call_with_retries(times_out, model="m", max_attempts=3, initial_wait=0.25, max_wait=0.3))
    assert info.value.attempts == 3 and info.value.retryable
    assert info.value.__cause__ is original
    assert len(waits) == 2 and 0.25 <= waits[0] <= 0.3 and waits[1] == pytest.approx(0.3)


@pytest.mark.parametrize("retryable_first", [False, True])
def test_a_non_retryable_failure_ends_the_call_where_it_happens(monkeypatch: pytest.MonkeyPatch, retryable_first: bool) -> None:
    """A refused request (401) is not retried, as the first failure or after a retried timeout;
    the error says how many calls were made."""
    monkeypatch.setattr(asyncio, "sleep", lambda seconds: _no_wait())
    failures = [LLMError("read timed out", model="m", kind="timeout", retryable=True)] if retryable_first else []
    failures.append(LLMError("401 no such key", model="m", kind="authentication", retryable=False, attempts=9))
    calls = 0

    async def fails() -> str:
        nonlocal calls
        calls += 1
        raise failures[min(calls, len(failures)) - 1]

    with pytest.raises(LLMError) as info:
        asyncio.run(call_with_retries(fails, model="m", max_attempts=4, initial_wait=0.01, max_wait=0.01))
    assert calls == len(failures) and info.value.attempts == len(failures)
    assert info.value.kind == "authentication"


async def _no_wait() -> None:
    return None


def test_backoff_doubles_from_initial_with_jitter_below_initial(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry_module.random, "uniform", lambda low, high: high)  # the most jitter
    error = LLMError("x", model="m", kind="timeout", retryable=True)
    assert [retry_module.backoff_wait(n, error, 0.5, 100.0) for n in (1, 2, 3)] == [1.0, 1.5, 2.5]
    assert retry_module.backoff_wait(50, error, 0.5, 20.0) == 20.0


class _CountingIds(list[int]):
    """The market's agent ids, counting how often the whole list is walked."""

    walks = 0

    def __iter__(self) -> Any:
        type(self).walks += 1
        return super().__iter__()


@pytest.mark.parametrize("tool_mode", ["tools", "json"])
def test_each_agent_walks_the_market_s_agent_list_once_not_every_step(tool_mode: str) -> None:
    """Building an agent's peers is O(agents): at most once per agent (and once for the run's
    sorted ids, `RunToolLists`), else O(agents²) a step."""
    from mesa_llm.agents.llm_policy import LLMPolicy
    from mesa_llm.llm.testing import ScriptedChatModel, tool_call_response
    from mesa_llm.model import MarketModel
    from mesa_llm.scenario import load_scenario

    overrides = ["steps=4", "populations.0.params.plan_every=0", "populations.1.params.plan_every=0",
                 f"populations.0.params.tool_mode={tool_mode}", f"populations.1.params.tool_mode={tool_mode}"]
    spec = load_scenario("llm_double_auction", overrides=overrides)
    model = MarketModel(spec, record=False, chat_model=ScriptedChatModel(lambda r: tool_call_response("wait", {})))
    policies = [a.policy for a in model.traders if isinstance(a.policy, LLMPolicy)]
    assert len(policies) >= 2
    _CountingIds.walks = 0
    ids = _CountingIds(policies[0]._ctx().agent_ids)
    for policy in policies:
        policy._ctx().agent_ids = ids
    model.run()
    assert _CountingIds.walks <= len(policies) + 1


# --- the attempt's layers: a plain semaphore for the limiter's slot, no per-call closures -------


def test_the_plain_semaphore_is_the_one_a_slot_holds() -> None:
    from mesa_llm.llm.limits import ConcurrencyLimiter

    limiter = ConcurrencyLimiter(default_limit=2)

    async def run() -> None:
        semaphore = limiter.semaphore("m")
        assert semaphore is not None and semaphore is limiter.semaphore("m")
        async with limiter.slot("m"), semaphore:
            assert semaphore.locked()  # two holders, one through each door: the limit is shared
        assert not semaphore.locked()

    asyncio.run(run())


def test_no_plain_semaphore_where_a_slot_does_more() -> None:
    from collections.abc import AsyncIterator
    from contextlib import AbstractAsyncContextManager, asynccontextmanager

    from mesa_llm.llm.limits import ConcurrencyLimiter

    class Counting(ConcurrencyLimiter):
        def slot(self, model: str) -> AbstractAsyncContextManager[None]:
            return self._counted()

        @asynccontextmanager
        async def _counted(self) -> AsyncIterator[None]:
            yield

    async def run() -> None:
        assert ConcurrencyLimiter(4, requests_per_second=10).semaphore("m") is None  # the token bucket
        assert Counting(4).semaphore("m") is None  # an overridden slot is used as it is

    asyncio.run(run())


def _fake_backend(limiter: Any, seen: list[Any]) -> Any:
    from mesa_llm.llm.litellm_backend import LiteLLMChatModel

    answer = {"id": "x", "model": "m", "choices": [{"message": {"role": "assistant", "content": "hi"}}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
    chat = LiteLLMChatModel("openai/m", api_base="http://127.0.0.1:9/v1", limiter=limiter,
                            input_cost_per_token=0.0, output_cost_per_token=0.0)

    async def send(**kwargs: Any) -> Any:
        seen.append(limiter.semaphore("openai/m"))
        await asyncio.sleep(0.01)
        return answer

    chat._sender = lambda litellm, model, kwargs: send  # type: ignore[method-assign]
    return chat


def test_an_attempt_holds_the_limiters_slot_while_it_sends() -> None:
    from mesa_llm.llm import ChatRequest
    from mesa_llm.llm.limits import ConcurrencyLimiter

    limiter = ConcurrencyLimiter(default_limit=2)
    seen: list[Any] = []
    chat = _fake_backend(limiter, seen)
    in_flight: list[int] = []

    async def run() -> None:
        request = ChatRequest(model="openai/m", messages=[{"role": "user", "content": "x"}])
        calls = [asyncio.ensure_future(chat.complete(request)) for _ in range(5)]
        await asyncio.sleep(0.005)
        in_flight.append(2 - seen[0]._value)  # slots taken while the first two send
        responses = await asyncio.gather(*calls)
        assert [r.content for r in responses] == ["hi"] * 5
        assert all(len(r.attempt_latencies_s) == 1 and r.latency_s > 0 for r in responses)

    asyncio.run(run())
    assert len(seen) == 5 and in_flight == [2]


# --- a population's system prompt: one string, its request-key opening hashed once ----------------


def test_a_populations_agents_share_one_system_prompt_string_and_its_key_opening(monkeypatch: pytest.MonkeyPatch) -> None:
    """Equal system prompts are one object across a population's agents, so the request key's
    opening (keyed by that object) is hashed once per population and purpose, not once per agent
    (with a distinct string per agent the 256-entry table was refilled every call at 1,000 agents)."""
    from mesa_llm.agents.llm_policy import LLMPolicy
    from mesa_llm.llm import types as types_module
    from mesa_llm.llm.testing import ScriptedChatModel, tool_call_response
    from mesa_llm.model import MarketModel
    from mesa_llm.scenario import load_scenario

    made: list[str] = []
    original = types_module.canonical_json

    def counting(value: Any) -> str:
        if isinstance(value, dict) and value.get("role") == "system":
            made.append(value["content"])
        return original(value)

    monkeypatch.setattr(types_module, "canonical_json", counting)
    monkeypatch.setattr(types_module, "_PREFIXES", {})
    spec = load_scenario("llm_double_auction", overrides=["steps=2", "populations.0.count=6", "populations.1.count=6",
                                                          "populations.0.params.plan_every=1",
                                                          "populations.1.params.plan_every=1"])
    model = MarketModel(spec, record=False, chat_model=ScriptedChatModel(lambda r: tool_call_response("wait", {})))
    model.run()
    policies = [a.policy for a in model.traders if isinstance(a.policy, LLMPolicy)]
    by_text: dict[str, set[int]] = {}
    for policy in policies:
        text = policy._system_message()["content"]
        by_text.setdefault(text, set()).add(id(text))
    assert len(policies) >= 12 and len(by_text) < len(policies)
    assert all(len(ids) == 1 for ids in by_text.values()), "equal system prompts are separate strings"
    # one opening per (system prompt, max_tokens of plan and act): not one per agent and call
    assert len(made) <= 2 * len(by_text), f"{len(made)} key openings for {len(by_text)} system prompts"
