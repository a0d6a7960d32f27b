"""How a step of LLM agents uses the interpreter (issue 24): the cyclic collector is paused for the
whole step, and the agents start a few per turn of the event loop, so a request written by a task
of its own (aiohttp's body writer) leaves before the other agents build their prompts."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from mesa_llm.decisions import START_BATCH
from mesa_llm.llm import ChatRequest, ChatResponse
from mesa_llm.llm.testing import ScriptedChatModel, tool_call_response
from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario


def _model(chat: ScriptedChatModel, agents_per_side: int = 2) -> MarketModel:
    spec = load_scenario("llm_double_auction", overrides=[
        "steps=2", f"populations.0.count={agents_per_side}", f"populations.1.count={agents_per_side}",
        "populations.0.params.plan_every=0", "populations.1.params.plan_every=0"])
    return MarketModel(spec, record=False, chat_model=chat)


class _Watching(ScriptedChatModel):
    """Answers ``wait`` and notes, per call, whether the collector was on."""

    def __init__(self) -> None:
        super().__init__(lambda r: tool_call_response("wait", {}))
        self.collector_on: list[bool] = []

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.collector_on.append(gc.isenabled())
        return await super().complete(request)


def test_a_step_of_llm_agents_runs_with_the_collector_paused_to_its_end(monkeypatch: pytest.MonkeyPatch) -> None:
    chat = _Watching()
    model = _model(chat)
    during_resolution: list[bool] = []
    resolve = model.resolver.resolve

    def watched(*args: Any, **kwargs: Any) -> Any:  # after the calls, while the step resolves and records
        during_resolution.append(gc.isenabled())
        return resolve(*args, **kwargs)

    monkeypatch.setattr(model.resolver, "resolve", watched)
    assert gc.isenabled()
    model.step()
    assert chat.collector_on and not any(chat.collector_on)
    assert during_resolution == [False]
    assert gc.isenabled()  # back on once the step is done


def test_a_step_leaves_the_collector_off_when_the_caller_turned_it_off() -> None:
    model = _model(_Watching())
    gc.disable()
    try:
        model.step()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_collector_is_back_on_after_a_step_that_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model(_Watching())

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("resolution failed")

    monkeypatch.setattr(model.resolver, "resolve", broken)
    with pytest.raises(RuntimeError):
        model.step()
    assert gc.isenabled()


class _Writer(ScriptedChatModel):
    """Sends like aiohttp on Python 3.11: the request is written by a callback of the loop's next
    turn; notes when each call is made and when its request is written."""

    def __init__(self, log: list[tuple[str, int]]) -> None:
        super().__init__(lambda r: tool_call_response("wait", {}))
        self.log = log

    async def complete(self, request: ChatRequest) -> ChatResponse:
        assert request.agent_id is not None
        self.log.append(("call", request.agent_id))
        asyncio.get_running_loop().call_soon(self.log.append, ("written", request.agent_id))
        await asyncio.sleep(0.01)
        return await super().complete(request)


def test_the_first_request_is_written_before_later_agents_start() -> None:
    log: list[tuple[str, int]] = []
    model = _model(_Writer(log), agents_per_side=START_BATCH)
    model.step()
    calls = [agent for kind, agent in log if kind == "call"]
    assert len(calls) == 2 * START_BATCH  # every agent called once
    first_written = log.index(("written", calls[0]))
    # written before the second batch of agents made their calls (all agents started at once:
    # every call came first, then every write)
    assert first_written < log.index(("call", calls[START_BATCH]))


def test_an_async_step_of_llm_agents_runs_with_the_collector_paused_to_its_end(monkeypatch: pytest.MonkeyPatch) -> None:
    chat = _Watching()
    model = _model(chat)
    during_resolution: list[bool] = []
    resolve = model.resolver.resolve

    def watched(*args: Any, **kwargs: Any) -> Any:
        during_resolution.append(gc.isenabled())
        return resolve(*args, **kwargs)

    monkeypatch.setattr(model.resolver, "resolve", watched)
    asyncio.run(model.astep())
    assert chat.collector_on and not any(chat.collector_on)
    assert during_resolution == [False]
    assert gc.isenabled()


def test_arun_freezes_what_building_left_alive_and_unfreezes_after() -> None:
    from mesa_llm.simulation import Simulation

    frozen: list[int] = []

    async def main() -> None:
        with Simulation.from_scenario("double_auction", seed=2, record=False) as sim:
            sim.subscribe("step_end", lambda e: frozen.append(gc.get_freeze_count()))
            await sim.arun(2)

    before = gc.get_freeze_count()
    asyncio.run(main())
    assert len(frozen) == 2 and all(count > before for count in frozen)
    assert gc.get_freeze_count() == before
