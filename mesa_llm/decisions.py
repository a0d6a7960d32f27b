"""The decide stage of a step: rule-based agents decide in agent order (drawing from the run's
generator), LLM agents concurrently; what they produced while deciding is recorded afterwards in
agent order, so the recording does not depend on which LLM call finished first. A failing policy
loses only its own step."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np

from mesa_llm.actions import Decision
from mesa_llm.agents.llm_policy import LLMPolicy
from mesa_llm.agents.trader import TraderAgent

Observations = list[tuple[TraderAgent, Any]]
Decided = list[tuple[TraderAgent, Decision | None]]
Record = Callable[[str, dict[str, Any], int | None], None]


def decide_rule_based(observations: Observations, rng: np.random.Generator) -> tuple[list[Decision | None], list[int], dict[int, str]]:
    """Every rule-based agent's decision (in agent order), the indexes of the LLM agents still to
    ask, and the agents whose policy raised (index -> one line)."""
    decisions: list[Decision | None] = [None] * len(observations)
    crashes: dict[int, str] = {}
    llm_jobs: list[int] = []
    for index, (agent, obs) in enumerate(observations):
        if agent.policy.is_llm:
            llm_jobs.append(index)
            continue
        try:
            decisions[index] = agent.decide(obs, rng)
        except Exception as exc:  # noqa: BLE001 - one agent's failure must not stop the others
            crashes[index] = f"{type(exc).__name__}: {exc}"
    return decisions, llm_jobs, crashes


#: LLM agents started per turn of the event loop (see `decide_llm`): few enough that a request
#: leaves within milliseconds of its prompt, enough to keep a long queue of calls waiting for slots
START_BATCH = 16


async def decide_llm(jobs: Observations, rng: np.random.Generator) -> list[Decision | BaseException]:
    """The LLM agents' decisions, all calls in flight at once (bounded by the per-model limiter).

    The agents start ``START_BATCH`` per turn of the event loop, not all in one turn: aiohttp
    (on Python 3.11) writes a request's body from a task of its own, which runs only in the loop's
    next turn, so agents started together sent nothing until every one of them had built its prompt
    (100 agents: the first request left ~80 ms late; 10,000 agents: none for seconds), and the
    answers then came back together, so the next round's prompts were built in one burst again.
    Started a few per turn, their requests leave as soon as their prompts are built, and the answers
    come back as spread as the requests went. (The run's own loop now writes each body in its
    sender's turn, ``mesa_llm.llm.eager``; the batches still spread the prompts' building, and
    keep a caller's loop, which writes a turn later, from sending in one burst.)"""
    tasks: list[asyncio.Task[Decision]] = []
    try:
        for n, (agent, obs) in enumerate(jobs, 1):
            policy = agent.policy
            assert isinstance(policy, LLMPolicy)
            tasks.append(asyncio.ensure_future(policy.adecide(obs, rng)))
            if n % START_BATCH == 0:
                await asyncio.sleep(0)  # these build and send their requests before more start
    except BaseException:  # cancelled while starting them: none is left running
        for task in tasks:
            task.cancel()
        raise
    return list(await asyncio.gather(*tasks, return_exceptions=True))


def collect(
    observations: Observations,
    decisions: list[Decision | None],
    llm_jobs: list[int],
    results: list[Decision | BaseException],
    crashes: dict[int, str],
    record: Record,
) -> tuple[Decided, str | None]:
    """Each agent with its decision (None when it has none), its deciding events recorded in agent
    order; and the first fatal failure (a provider that rejected the key: the run must stop)."""
    for index, result in zip(llm_jobs, results, strict=True):
        if isinstance(result, BaseException):
            crashes[index] = f"{type(result).__name__}: {result}"
        else:
            decisions[index] = result
    fatal: str | None = None
    out: Decided = []
    for index, (agent, _) in enumerate(observations):
        decision = decisions[index]
        if index in crashes:
            record("agent_error", {"stage": "decide", "error": crashes[index]}, agent.unique_id)
        elif decision is not None:
            for event_type, content in decision.events:
                record(event_type, content, agent.unique_id)
            if decision.plan:
                record("plan", {"text": decision.plan}, agent.unique_id)
            if decision.failure:
                record(
                    "agent_error",
                    {"stage": "decide", "error": decision.failure, "fatal": decision.fatal},
                    agent.unique_id,
                )
                if decision.fatal and fatal is None:
                    fatal = decision.failure
                decision = None
        out.append((agent, decision))
    return out, fatal


__all__ = ["collect", "decide_llm", "decide_rule_based"]
