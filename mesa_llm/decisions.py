"""The decide stage of a step: rule-based agents decide in agent order (drawing from the run's
generator), LLM agents concurrently; what they produced while deciding is recorded afterwards in
agent order, so the recording does not depend on which LLM call finished first. A failing policy
loses only its own step."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import attrgetter, contains
from typing import Any

import numpy as np

from mesa_llm.actions import Decision
from mesa_llm.agents.llm_policy import LLMPolicy
from mesa_llm.agents.observation_batch import ObservedAgents
from mesa_llm.agents.policies.base import ColumnDecision, DecisionPolicy, OrderColumns
from mesa_llm.agents.trader import TraderAgent

#: a step's (agent, observation) pairs: a list, or an `ObservedAgents` (observations made when read)
Observations = Sequence[tuple[TraderAgent, Any]]
Decided = list[tuple[TraderAgent, Decision | None]]
Record = Callable[[str, dict[str, Any], int | None], None]
_POLICY, _IS_LLM = attrgetter("policy"), attrgetter("is_llm")
#: the classes of a step's decisions that `collect` records nothing of (`ColumnDecision`: its
#: events, plan and failure are class constants its instances cannot set)
_ORDERS_ONLY = frozenset({ColumnDecision, type(None)})


def decide_rule_based(observations: Observations, rng: np.random.Generator) -> tuple[list[Decision | None], list[int], dict[int, str]]:
    """Every rule-based agent's decision (in agent order), the indexes of the LLM agents still to
    ask, and the agents whose policy raised (index -> one line).

    Consecutive rule-based agents (LLM agents in between draw nothing here) whose policies are of
    one class that decides a batch (`DecisionPolicy.decide_batch`) are decided together, with the
    same draws in the same order as one by one; a batch the class declines is decided one by one."""
    decisions: list[Decision | None] = [None] * len(observations)
    columns = OrderColumns()  # the batches' orders, shared by this step's `ColumnDecision`s
    crashes: dict[int, str] = {}
    llm_jobs: list[int] = []
    agents = _agents(observations)
    cls = _population_class(agents)
    if cls is not None:  # one batch of every agent: what the loop below makes of them, without it
        _decide_run(cls, range(len(agents)), observations, rng, decisions, crashes, columns)
        return decisions, llm_jobs, crashes
    run: list[int] = []  # the consecutive rule-based agents of `run_class` not decided yet
    run_class: type[DecisionPolicy] | None = None
    for index, agent in enumerate(agents):
        policy = agent.policy
        if policy.is_llm:
            llm_jobs.append(index)
            continue
        cls = _batch_class(agent, policy)
        if cls is not run_class and run:
            _decide_run(run_class, run, observations, rng, decisions, crashes, columns)
            run = []
        run_class = cls
        if cls is None:
            _decide_one(index, agent, observations[index][1], rng, decisions, crashes)
        else:
            run.append(index)
    if run:
        _decide_run(run_class, run, observations, rng, decisions, crashes, columns)
    return decisions, llm_jobs, crashes


def _agents(observations: Observations) -> Sequence[TraderAgent]:
    """The observing agents, in order (an `ObservedAgents`' without making its observations)."""
    if isinstance(observations, ObservedAgents):
        return observations.agents
    return [agent for agent, _ in observations]


def _population_class(agents: Sequence[TraderAgent]) -> type[DecisionPolicy] | None:
    """The batch class (`_batch_class`) of every agent when it is one for all of them (a
    population of one agent class and one rule-based policy class, nothing replaced), else None."""
    # each check one pass in C over the population (map, set, any): a population of 1,000 is
    # checked once per step
    policies = list(map(_POLICY, agents))
    if len(set(map(type, agents))) != 1 or len(set(map(type, policies))) != 1 or any(map(_IS_LLM, policies)):
        return None
    cls = _batch_class(agents[0], policies[0])
    if cls is None or any(map(contains, map(vars, agents), repeat("decide"))):
        return None
    try:
        replaced = any(map(contains, map(vars, policies), repeat("decide")))
    except TypeError:  # a policy class without instance dicts (slots)
        replaced = any("decide" in getattr(policy, "__dict__", ()) for policy in policies)
    return None if replaced else cls


#: per policy class: the class if it decides batches (overrides `DecisionPolicy.decide_batch`), else None
_BATCHES: dict[type, type[DecisionPolicy] | None] = {}
_UNKNOWN = object()


def _batch_class(agent: TraderAgent, policy: DecisionPolicy) -> type[DecisionPolicy] | None:
    """The policy's class when its batch would decide as ``agent.decide`` does: the class decides
    batches and neither the agent's nor the policy's ``decide`` is replaced (a subclass, a patch)."""
    cls = type(policy)
    batch: Any = _BATCHES.get(cls, _UNKNOWN)
    if batch is _UNKNOWN:
        overrides = getattr(cls.decide_batch, "__func__", None) is not DecisionPolicy.decide_batch.__func__  # type: ignore[attr-defined]
        batch = _BATCHES[cls] = cls if overrides else None
    if batch is None or type(agent).decide is not TraderAgent.decide or "decide" in agent.__dict__ \
            or "decide" in getattr(policy, "__dict__", ()):  # fmt: skip
        return None
    return batch


def _decide_one(index: int, agent: TraderAgent, obs: Any, rng: np.random.Generator, decisions: list[Decision | None],
                crashes: dict[int, str]) -> None:  # fmt: skip
    try:
        decisions[index] = agent.decide(obs, rng)
    except Exception as exc:  # noqa: BLE001 - one agent's failure must not stop the others
        crashes[index] = f"{type(exc).__name__}: {exc}"


def _decide_run(cls: type[DecisionPolicy] | None, run: Sequence[int], observations: Observations, rng: np.random.Generator,
                decisions: list[Decision | None], crashes: dict[int, str], columns: OrderColumns) -> None:  # fmt: skip
    """Decide ``run`` (indexes of agents whose policies are of ``cls``) as a batch (its orders in
    ``columns`` when the class decides columns), or one by one when it is a single agent or the
    class declines (or raises: a batch draws nothing before it knows it can decide every agent)."""
    batch: list[Decision] | None = None
    if cls is not None and len(run) > 1:
        agents = _agents(observations)
        owners = list(agents) if run == range(len(agents)) else [agents[i] for i in run]
        policies = list(map(_POLICY, owners))
        # an `ObservedAgents`' observations are made only when read (a batch may read its numbers only)
        seen: Sequence[Any] = (
            observations.observations_of(run) if isinstance(observations, ObservedAgents)
            else [observations[i][1] for i in run]
        )  # fmt: skip
        try:
            batch = cls.decide_columns(policies, seen, rng, owners, columns)
            if batch is None:
                batch = cls.decide_batch(policies, seen, rng)
        except Exception:  # noqa: BLE001 - decided one by one: the agent that fails loses only its own step
            batch = None  # (orders it appended before raising are no decision's: never read)
    if batch is None:
        for index in run:
            agent, obs = observations[index]
            _decide_one(index, agent, obs, rng, decisions, crashes)
        return
    if len(batch) != len(run):
        raise ValueError("a batch decides every agent of its run")
    if run == range(len(decisions)):  # the whole population (`decide_rule_based`'s shortcut)
        decisions[:] = batch
        return
    for index, decision in zip(run, batch, strict=True):
        decisions[index] = decision


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
    agents = _agents(observations)
    if not crashes and set(map(type, decisions)) <= _ORDERS_ONLY:
        # orders only (batched populations' column decisions: no events, plan or failure, by their
        # class's read-only fields) or none: nothing to record, each agent paired with its decision
        return list(zip(agents, decisions, strict=True)), None
    out: Decided = []
    for index, agent in enumerate(agents):
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
