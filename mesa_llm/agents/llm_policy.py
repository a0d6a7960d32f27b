"""The LLM agent loop: observe -> plan -> act (validated tool calls, one repair round) -> message.

Each step an LLM agent renders its observation (Jinja), optionally asks its model for a short plan
(every k steps when the scenario sets ``plan_every``; never by default), then asks for actions offering its role's tools. Every answer
is first cut to the run's :class:`~mesa_llm.llm.bounds.AnswerLimits` (calls per answer, argument and
text length); every tool call is then validated into a pydantic action; invalid calls are answered
with their errors in one repair round, and what is still invalid is dropped and recorded. What an
answer brought that was rejected is only ever shown back (to the model, in the recording) as a
short preview with its length, so the model cannot grow its own prompts or the recording. Messages are tools too
(``send_message``, ``broadcast``). Memory is bounded, so prompts do not grow with the run. Models
without tool calling get the same actions through JSON-schema structured output.

Nothing here moves money: the Decision goes back to the world, which validates it again against
its rules. Every LLM call becomes an ``llm_call`` event carried in the Decision, so the model records
them in agent order (deterministic however the concurrent calls finish).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from mesa_llm.actions import ActionBase, ActionRegistry, ActionValidationError, Decision
from mesa_llm.agents.action_schemas import (
    example_call,
    json_mode_format,
    peers_shown,
    stable_tool_schemas,
    stable_tools_key,
    state_tool_schemas,
    tool_signatures,
)
from mesa_llm.agents.memory import AgentMemory, trade_note
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.persona import Persona
from mesa_llm.agents.policies.base import DecisionPolicy, PolicyParams
from mesa_llm.agents.prompts import PromptLibrary
from mesa_llm.llm import ChatModel, ChatRequest, ChatResponse, LLMError, UsageTracker, classify
from mesa_llm.llm.bounds import MAX_NAME_CHARS, AnswerLimits, bound_response, bounded, preview
from mesa_llm.llm.errors import one_line
from mesa_llm.llm.types import canonical_json
from mesa_llm.llm.usage import usage_problem


class LLMParams(PolicyParams):
    """Parameters of the LLM agent loop."""

    # no plan call unless the scenario asks: a plan doubles a step's calls (and, on a local model,
    # its time) and most scenarios act well from the observation alone
    plan_every: int = Field(default=0, ge=0, description="plan every k steps; 0 (the default) never plans")
    memory_events: int = Field(default=8, ge=0, le=200, description="recent events remembered")
    max_actions: int = Field(default=5, ge=1, le=50, description="actions kept per step")
    tool_mode: Literal["auto", "tools", "json"] = Field(
        default="auto",
        description="'tools': native tool calls; 'json': JSON-schema structured output (models without "
        "tool calling); 'auto': what the model supports (decided once per model by a probe)",
    )
    temperature: float | None = Field(default=None, ge=0, le=2)
    plan_max_tokens: int = Field(default=160, gt=0, le=100_000, description="completion tokens of a plan call")
    act_max_tokens: int = Field(default=300, gt=0, le=100_000, description="completion tokens of an act call")
    repair_max_tokens: int = Field(default=300, gt=0, le=100_000, description="completion tokens of a repair call")
    max_tokens: int | None = Field(
        default=None, gt=0, description="one cap for every purpose (overrides the three above when set)"
    )
    repair: bool = Field(default=True, description="one repair round for invalid tool calls")
    skip_idle: bool = Field(
        default=True,
        description="no model call in a step where the agent can only talk, wait or walk away and has "
        "no new message (e.g. the other side's turn in a negotiation): the call could change nothing",
    )


class RunToolLists:
    """The run's stable tool lists by `stable_tools_key` (each built once), and the market's ids
    sorted for `peers_shown` (sorted again only when the id list changes)."""

    __slots__ = ("_ids", "_size", "_sorted", "lists")

    def __init__(self) -> None:
        self.lists: dict[tuple[Any, ...], tuple[list[dict[str, Any]], str]] = {}
        self._ids: Sequence[int] | None = None
        self._size = -1
        self._sorted: list[int] = []

    def sorted_ids(self, ids: Sequence[int]) -> list[int]:
        """``ids`` sorted and unique, kept while ``ids`` is the same list of the same length (the
        market's list only grows, once all agents exist)."""
        if ids is not self._ids or len(ids) != self._size:
            self._ids, self._size, self._sorted = ids, len(ids), sorted(set(ids))
        return self._sorted


@dataclass(slots=True)
class LLMContext:
    """What the world gives an LLM policy: its model, prompts, identity, tools and accounting."""

    chat_model: ChatModel
    model: str
    prompts: PromptLibrary
    persona: Persona
    tool_names: list[str]
    registry: ActionRegistry
    market: dict[str, Any]
    usage: UsageTracker | None = None
    seed: int | None = None
    #: sampling temperature when the population sets none (the scenario's ``llm.temperature``)
    temperature: float | None = None
    #: force JSON-schema structured output (the model cannot do tool calls)
    structured_output: bool = False
    #: how much of one answer is taken (tool calls, argument and text lengths)
    limits: AnswerLimits = AnswerLimits()
    #: what the model supports, for policies in ``tool_mode: auto`` (decided once per model)
    tool_mode: Literal["tools", "json"] = "tools"
    #: every agent's id in the market (filled in once all agents exist; the agent's own is skipped)
    agent_ids: Sequence[int] = ()
    #: told of a value the policy keeps unchanged for the run (its tool list), so that the recording
    #: encodes it once rather than in every ``llm_call`` (`SimulationRecorder.keep_encoded`)
    keep_encoded: Callable[[Any], None] | None = None
    #: the run's tool lists by their JSON text, shared by the policies whose lists are the same
    #: (each with its ``canonical_json``), so that what is cached per list serves every agent
    shared_tools: dict[str, tuple[list[dict[str, Any]], str]] | None = None
    #: the run's tool lists by what they are built from (`stable_tools_key`): built once per key
    built_tools: RunToolLists | None = None
    #: the run's system prompts by their text, so that the agents of a population whose system
    #: prompts are equal hold one string: what is kept per system prompt (a request key's hashed
    #: opening, `mesa_llm.llm.types.ChatRequest.cache_key`) is then made once, not once per agent
    shared_texts: dict[str, str] | None = None


@dataclass(slots=True)
class _Call:
    """One tool call as the model sent it, and what validation made of it."""

    call_id: str
    name: str
    raw_arguments: Any
    action: ActionBase | None = None
    error: str | None = None
    #: ``raw_arguments`` is already a preview of arguments too long to keep
    truncated: bool = False

    def shown_arguments(self) -> Any:
        """The arguments as shown back and recorded: validated ones whole, others as a preview."""
        if self.action is not None:
            return self.action.arguments()
        return self.raw_arguments if self.truncated else bounded(self.raw_arguments)

    def record(self) -> dict[str, Any]:
        return {
            "id": self.call_id,
            "name": self.name,
            "arguments": self.shown_arguments(),
            "valid": self.action is not None,
            "error": self.error,
        }


NO_TOOL_CALL = "(no tool call)"
#: the one rejection standing for every call beyond the per-answer cap
TOO_MANY_CALLS = "(too many tool calls)"
#: the one rejection standing for the rest of an answer the token limit cut off
CUT_OFF = "(cut off)"
#: rejections that start no repair round (what they stand for is lost, not wrong)
_NOT_REPAIRED = frozenset({TOO_MANY_CALLS, CUT_OFF})
#: longest rejection reason shown back or recorded (validation messages can quote the input)
MAX_REASON_CHARS = 300


class LLMPolicy(DecisionPolicy):
    """Decides by asking an LLM, through validated tool calls, never trusting its output."""

    name: ClassVar[str] = "llm"
    summary: ClassVar[str] = "an LLM decides through validated tool calls (needs a model)"
    Params: ClassVar[type[PolicyParams]] = LLMParams
    is_llm: ClassVar[bool] = True

    def __init__(self, params: PolicyParams | None = None, context: LLMContext | None = None) -> None:
        super().__init__(params)
        p: LLMParams = self.params  # type: ignore[assignment]
        self.context = context
        self.memory = AgentMemory(max_events=p.memory_events)
        self._system: str | None = None
        #: the run's tool list (native tool calls): built once, the same every step (prompt caching)
        self._stable_tools: list[dict[str, Any]] | None = None
        #: its canonical JSON, for the requests' cache keys (made once, like the list)
        self._stable_tools_json: str | None = None
        self._tool_names: list[str] = []
        #: this step's tools as offered (schemas with this step's enums in JSON mode)
        self._step_tools: list[dict[str, Any]] = []
        self._mode_override: Literal["tools", "json"] | None = None  # render_prompts renders both
        self._peer_cache: tuple[tuple[int, int, int], list[int]] | None = None

    def bind(self, context: LLMContext) -> None:
        """Attach the world's context (model, prompts, tools) before the first step."""
        self.context = context
        self._system = None
        self._stable_tools = None
        if context.structured_output:
            self.params = self.params.model_copy(update={"tool_mode": "json"})

    @property
    def tool_mode(self) -> Literal["tools", "json"]:
        """How this agent asks for actions: native tool calls, or JSON-schema structured output."""
        p: LLMParams = self.params  # type: ignore[assignment]
        if self._mode_override is not None:
            return self._mode_override
        if p.tool_mode != "auto":
            return p.tool_mode
        return self.context.tool_mode if self.context is not None else "tools"

    def max_tokens(self, purpose: str) -> int:
        """The completion-token cap sent with a call of ``purpose`` (plan, act, repair)."""
        p: LLMParams = self.params  # type: ignore[assignment]
        if p.max_tokens is not None:
            return p.max_tokens
        return {"plan": p.plan_max_tokens, "repair": p.repair_max_tokens}.get(purpose, p.act_max_tokens)

    def describe(self) -> dict[str, Any]:
        """Name, parameters and model, as recorded in the recording header."""
        out = super().describe()
        out["model"] = self.context.model if self.context is not None else None
        return out

    # ------------------------------------------------------------------ entry points

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        """Synchronous wrapper over :meth:`adecide` (the one real code path)."""
        return asyncio.run(self.adecide(observation, rng))

    async def adecide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        """Observe, plan, act and repair for one step; never raises for a model's failure."""
        p: LLMParams = self.params  # type: ignore[assignment]
        events: list[tuple[str, dict[str, Any]]] = []
        self._offer_tools(observation)
        if p.skip_idle and self._idle(observation):
            self.memory.update(observation)
            return Decision(events=events)
        try:
            observation_text = self._render(
                "observation.j2", obs=observation.to_dict(), market=self._ctx().market, tool_mode=self.tool_mode
            )
            # memory is what came before this observation: rendered before the observation's
            # messages, trades and rejections are folded in, so the prompt shows them once
            memory_text = self._render("memory.j2", memory=self._memory_context(self.memory, observation))
            self.memory.update(observation)
            plan: str | None = None
            if p.plan_every and (observation.step - 1) % p.plan_every == 0:
                plan = await self._plan(observation, observation_text, memory_text, events)
            return await self._act(observation, observation_text, memory_text, plan, events)
        except LLMError as err:
            return Decision(events=events, failure=str(err), fatal=err.fatal)

    def render_prompts(self, observation: Observation) -> dict[str, str]:
        """Render every prompt this agent can send for ``observation`` without calling the model
        (``validate`` does this once per LLM population, so a template that fails to compile or
        names a variable the context lacks is caught before a run); PromptError on the first failure."""
        p: LLMParams = self.params  # type: ignore[assignment]
        self._offer_tools(observation)
        memory = AgentMemory(max_events=p.memory_events)
        memory.update(observation)
        observation_text = self._render(
            "observation.j2", obs=observation.to_dict(), market=self._ctx().market, tool_mode=self.tool_mode
        )
        memory_text = self._render("memory.j2", memory=self._memory_context(memory, observation))
        sample_error = {"tool": "place_order", "arguments": '{"good": "?"}', "reason": "sample reason"}
        out = {
            "system": self._system_message()["content"],
            "observation": observation_text,
            "memory": memory_text,
            "plan": self._render("plan.j2", **self._act_context(observation, observation_text, memory_text, None)),
        }
        own = self.tool_mode
        try:  # both modes: the templates' branches for either must render (the probe may pick either)
            for mode in ("tools", "json"):
                self._mode_override = mode
                self._stable_tools = None
                self._offer_tools(observation)
                suffix = "" if mode == own else f"_{mode}"
                out["act" + suffix] = self._render(
                    "act.j2", **self._act_context(observation, observation_text, memory_text, "sample plan")
                )
                out["repair" + suffix] = self._render(
                    "repair.j2", errors=[sample_error], accepted=["wait"], tool_mode=mode, example=self._example(observation)
                )
        finally:
            self._mode_override = None
            self._stable_tools = None
        return out

    # ------------------------------------------------------------------ plan

    async def _plan(
        self, observation: Observation, observation_text: str, memory_text: str, events: list[tuple[str, dict[str, Any]]]
    ) -> str | None:
        # the act prompt's context: plan.j2 begins as act.j2 does, so the act call reuses its prefix
        user = self._render("plan.j2", **self._act_context(observation, observation_text, memory_text, None))
        request = self._request([self._system_message(), {"role": "user", "content": user}], "plan", observation)
        response = await self._complete(request, events, [])
        text = (response.content or "").strip()
        if not text:
            return None
        plan = text[:MAX_PLAN_CHARS]
        self.memory.set_plan(plan, observation.step)
        return plan

    # ------------------------------------------------------------------ act

    async def _act(
        self,
        observation: Observation,
        observation_text: str,
        memory_text: str,
        plan: str | None,
        events: list[tuple[str, dict[str, Any]]],
    ) -> Decision:
        p: LLMParams = self.params  # type: ignore[assignment]
        user = self._render(
            "act.j2", **self._act_context(observation, observation_text, memory_text, plan or self.memory.plan)
        )
        messages = [self._system_message(), {"role": "user", "content": user}]
        request = self._request(messages, "act", observation)
        calls: list[_Call] = []
        response = await self._complete(request, events, calls)
        # calls beyond the cap are rejected once, together, and not worth a repair round
        overflow = [c for c in calls if c.name in _NOT_REPAIRED]
        accepted = [c for c in calls if c.action is not None]
        rejected = [c for c in calls if c.action is None and c.name not in _NOT_REPAIRED]
        if rejected and p.repair:
            repair_messages = [*messages, *self._feedback(response, calls)]
            repair_messages.append(
                {
                    "role": "user",
                    "content": self._render(
                        "repair.j2",
                        errors=[
                            {"tool": c.name, "arguments": c.shown_arguments(), "reason": c.error}
                            for c in rejected
                        ],
                        accepted=[c.name for c in accepted],
                        tool_mode=self.tool_mode,
                        example=self._example(observation),
                    ),
                }
            )
            repair_calls: list[_Call] = []
            try:
                await self._complete(
                    self._request(repair_messages, "repair", observation), events, repair_calls
                )
            except LLMError:
                repair_calls = []  # recorded; the first round's valid actions still stand
            if any(c.name != NO_TOOL_CALL for c in repair_calls):
                accepted += [c for c in repair_calls if c.action is not None]
                rejected = [c for c in repair_calls if c.action is None]
            # else the model did not retry (text or nothing): the first round's errors stand
        actions = [c.action for c in accepted if c.action is not None]
        invalid = [
            ActionValidationError(c.name, c.shown_arguments(), c.error or "invalid") for c in [*rejected, *overflow]
        ]
        if len(actions) > p.max_actions:
            for extra in actions[p.max_actions :]:
                invalid.append(
                    ActionValidationError(
                        extra.tool_name, bounded(extra.arguments()), f"more than {p.max_actions} actions in one step"
                    )
                )
            actions = actions[: p.max_actions]
        return Decision(actions=actions, plan=plan, invalid=invalid, events=events)

    def _feedback(self, response: ChatResponse, calls: list[_Call]) -> list[dict[str, Any]]:
        """The assistant's answer and, per tool call, what became of it (for the repair round)."""
        # shown back: validated arguments, previews of the rest, never more text than the cap
        content = response.content
        if content and (len(content) > PREVIEW_TEXT_CHARS or response.content_chars is not None):
            content = preview(content, PREVIEW_TEXT_CHARS, length=response.content_chars)
        if self.tool_mode == "json" or not response.tool_calls:
            return [{"role": "assistant", "content": content or ""}]
        assistant = {
            "role": "assistant",
            # "" rather than None: llama.cpp's chat templates reject an assistant turn without content
            "content": content or "",
            "tool_calls": [
                {"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": _as_text(c.shown_arguments())}}
                for c in calls
                if c.name not in _NOT_REPAIRED
            ],
        }
        results = [
            {
                "role": "tool",
                "tool_call_id": c.call_id,
                "content": "accepted" if c.action is not None else f"error: {c.error}",
            }
            for c in calls
            if c.name not in _NOT_REPAIRED
        ]
        return [assistant, *results]

    # ------------------------------------------------------------------ calls and parsing

    async def _complete(
        self, request: ChatRequest, events: list[tuple[str, dict[str, Any]]], calls: list[_Call]
    ) -> ChatResponse:
        """Call the model, parse and validate its answer into ``calls``, record the call."""
        ctx = self._ctx()
        try:
            response = await ctx.chat_model.complete(request)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded LLMError
            error = exc if isinstance(exc, LLMError) else classify(exc, request.model)
            if ctx.usage is not None:
                ctx.usage.add_failure(request.agent_id, error)
            events.append(("llm_call", self._record(request, None, error, [])))
            raise error from None
        # the trust boundary: nothing of the answer is parsed, shown or recorded beyond the limits
        response = bound_response(response, ctx.limits)
        if ctx.usage is not None:
            ctx.usage.add(request.agent_id, response)
        if request.purpose != "plan":
            calls.extend(self._parse(response))
        events.append(("llm_call", self._record(request, response, None, calls)))
        return response

    def _parse(self, response: ChatResponse) -> list[_Call]:
        if self.tool_mode == "json":
            return self._parse_json(response)
        if not response.tool_calls:
            text = (response.content or "").strip()
            reason = (
                "answered with text instead of calling a tool (call `wait` to do nothing)"
                if text
                else "empty answer: no tool call and no text"
            )
            return [_Call("call_0", NO_TOOL_CALL, preview(text), error=reason)]
        out = []
        for i, tc in enumerate(response.tool_calls):
            call = _Call(tc.id or f"call_{i}", tc.name, tc.arguments, truncated=tc.original_chars is not None)
            if tc.original_chars is not None:
                call.error = self._too_long("arguments", tc.original_chars, self._ctx().limits.max_argument_chars)
            else:
                self._validate(call)
            out.append(call)
        return out + self._overflow(response.dropped_tool_calls)

    def _parse_json(self, response: ChatResponse) -> list[_Call]:
        limits = self._ctx().limits
        text = (response.content or "").strip()
        if response.content_chars is not None:
            reason = self._too_long("the answer", response.content_chars, limits.max_answer_chars)
            shown = preview(text, length=response.content_chars)
            return [_Call("call_0", NO_TOOL_CALL, shown, error=reason, truncated=True)]
        if not text:
            return [_Call("call_0", NO_TOOL_CALL, "", error="empty answer: expected a JSON object")]
        data, problem = _load_json(_strip_fences(text))
        cut: list[_Call] = []
        if problem is not None:
            complete = _complete_actions(text) if response.finish_reason == "length" else None
            if not complete:
                return [_Call("call_0", NO_TOOL_CALL, preview(text), error=f"answer is not valid JSON: {problem}")]
            # the token cap cut the answer inside a later action: the whole actions before it stand,
            # and the rest is not worth a repair round (a long prompt to recover a rambling message)
            data = {"actions": complete}
            cut = [
                _Call(
                    f"call_{len(complete)}",
                    CUT_OFF,
                    preview(text[-200:]),
                    error=f"answer cut off by the token limit after {len(complete)} complete action(s); the rest is dropped",
                )
            ]
        items = data.get("actions") if isinstance(data, dict) else data
        if not isinstance(items, list):
            return [_Call("call_0", NO_TOOL_CALL, preview(text), error='expected {"actions": [...]}')]
        out = []
        for i, item in enumerate(items[: limits.max_tool_calls]):
            if not isinstance(item, dict) or not isinstance(item.get("tool"), str):
                out.append(_Call(f"call_{i}", NO_TOOL_CALL, item, error='each action needs "tool" and "arguments"'))
                continue
            call = _Call(f"call_{i}", preview(item["tool"], MAX_NAME_CHARS), item.get("arguments", {}))
            self._validate(call)
            out.append(call)
        return out + self._overflow(max(0, len(items) - limits.max_tool_calls)) + cut

    def _overflow(self, dropped: int) -> list[_Call]:
        """One rejection standing for all ``dropped`` calls beyond the cap (none when none)."""
        if dropped <= 0:
            return []
        cap = self._ctx().limits.max_tool_calls
        reason = f"{dropped:,} more tool calls ignored: at most {cap} are taken from one answer"
        return [_Call("call_overflow", TOO_MANY_CALLS, f"{dropped:,} calls", error=reason)]

    @staticmethod
    def _too_long(what: str, length: int, limit: int) -> str:
        return f"{what} too long ({length:,} chars; at most {limit:,})"

    def _validate(self, call: _Call) -> None:
        call.error = self._validation_error(call)
        if call.error is not None:
            call.error = one_line(call.error, MAX_REASON_CHARS)

    def _validation_error(self, call: _Call) -> str | None:
        ctx = self._ctx()
        names = self._tool_names or ctx.tool_names
        if call.name not in names:
            if call.name in ctx.tool_names:  # offered for the run (cache-friendly list), not usable now
                return f"{call.name} is not usable now; usable now: {', '.join(names)}"
            shown = repr(call.name) if len(call.name) <= MAX_NAME_CHARS else preview(call.name, MAX_NAME_CHARS)
            return f"unknown tool {shown}; available: {', '.join(names)}"
        arguments = call.raw_arguments
        if isinstance(arguments, str):
            if len(arguments) > ctx.limits.max_argument_chars:  # a backend that did not bound
                return self._too_long("arguments", len(arguments), ctx.limits.max_argument_chars)
            if not arguments.strip():
                arguments = {}
            else:
                arguments, problem = _load_json(arguments)
                if problem is not None:
                    return f"arguments are not valid JSON ({problem})"
        if arguments is None:
            arguments = {}
        try:
            call.action = ctx.registry.parse(call.name, arguments)
        except ActionValidationError as exc:
            return exc.reason
        return None

    def _record(
        self, request: ChatRequest, response: ChatResponse | None, error: LLMError | None, calls: list[_Call]
    ) -> dict[str, Any]:
        invalid_usage = usage_problem(response) if response is not None else None
        return {
            "model": request.model,
            "purpose": request.purpose,
            "request_hash": request.cache_key(),
            "request": request.to_record(),
            "response": response.to_record() if response is not None else None,
            "parsed_tool_calls": [c.record() for c in calls],
            "usage": self._usage_record(response, invalid_usage),
            "cost_usd": response.cost_usd if response and invalid_usage is None else 0.0,
            # over all attempts, failed calls too (per attempt beside it)
            "latency_s": response.latency_s if response else error.latency_s if error else None,
            "attempt_latencies_s": list(getattr(response or error, "attempt_latencies_s", [])),
            "attempts": response.attempts if response else error.attempts if error else 0,
            "cached": response.cached if response else False,
            "error": str(error) if error is not None else None,
            "error_kind": error.kind if error is not None else None,
        }

    @staticmethod
    def _usage_record(response: ChatResponse | None, problem: str | None) -> dict[str, Any]:
        """The call's usage; unbelievable numbers are recorded as 0 with the reason (``problem``:
        ``usage_problem(response)``, found once by the caller)."""
        if response is None:
            return {"prompt_tokens": 0, "completion_tokens": 0}
        if problem is None:
            return response.usage.to_record()
        return {"prompt_tokens": 0, "completion_tokens": 0, "invalid": problem}

    # ------------------------------------------------------------------ tools offered

    def _offer_tools(self, observation: Observation) -> None:
        """This step's usable tools (the world's ``available_actions``) and the schemas offered:
        the run's stable list for native tool calls, this step's narrowed ones in JSON mode."""
        ctx = self._ctx()
        known = set(ctx.registry.names())
        self._tool_names = [n for n in observation.available_actions if n in known] or list(ctx.tool_names)
        me = observation.agent_id
        sides = self._sides()
        if self.tool_mode == "tools":
            if self._stable_tools is None:
                goods = {
                    g["name"]: (float(g["min_price"]), float(g["max_price"]))
                    for g in ctx.market.get("goods") or []
                    if isinstance(g, dict) and "name" in g
                }
                names = [n for n in ctx.tool_names if n in known]
                run = ctx.built_tools
                key = built = None
                if run is not None:  # the peers as the schemas show them, without listing them
                    shown = peers_shown(run.sorted_ids(ctx.agent_ids), me)
                    key = stable_tools_key(ctx.registry, names, goods=goods, sides=sides, shown=shown)
                    built = run.lists.get(key)
                if built is None:
                    peers = self._peers(me)
                    tools = stable_tool_schemas(ctx.registry, names, goods=goods, sides=sides, peers=peers)
                    built = _shared(ctx.shared_tools, tools)
                    if run is not None and key is not None:
                        run.lists[key] = built
                self._stable_tools, self._stable_tools_json = built
                if ctx.keep_encoded is not None:
                    ctx.keep_encoded(self._stable_tools)
            self._step_tools = self._stable_tools
        elif ctx.built_tools is not None:  # the peers as the schemas show them, without listing them
            shown = peers_shown(ctx.built_tools.sorted_ids(ctx.agent_ids), me)
            self._step_tools = state_tool_schemas(ctx.registry, self._tool_names, observation, sides=sides, shown=shown)
        else:
            peers = self._peers(me)
            self._step_tools = state_tool_schemas(ctx.registry, self._tool_names, observation, sides=sides, peers=peers)

    def _peers(self, me: int) -> list[int]:
        """Every other agent's id: O(agents) to build, so built once per agent while the market's
        list stays the same (not once per agent and step: O(agents²) a step at 10,000 agents)."""
        ids = self._ctx().agent_ids
        key = (id(ids), len(ids), me)
        if self._peer_cache is None or self._peer_cache[0] != key:
            self._peer_cache = (key, [i for i in ids if i != me])
        return self._peer_cache[1]

    def _idle(self, observation: Observation) -> bool:
        """Whether this step offers nothing but talk (no move in the market or a negotiation) and
        nobody wrote to the agent: then a model call can only produce chatter."""
        return not observation.messages and all(name in IDLE_TOOLS for name in self._tool_names)

    def _sides(self) -> list[str]:
        role = self._ctx().persona.role
        return [side for side, ok in (("buy", role.may_buy), ("sell", role.may_sell)) if ok]

    def _example(self, observation: Observation) -> str:
        """One example answer for the JSON-mode prompts ("" in tool mode). Its price is the first
        good's reference price, not the last trade's: the example is part of the prompt's stable
        beginning (tools.j2), the same every step, so a prompt cache keeps it."""
        if self.tool_mode != "json":
            return ""
        hint = next(iter(observation.market.goods.values()), None)
        return example_call(self._step_tools, hint.reference_price if hint is not None else None)

    @staticmethod
    def _memory_context(memory: AgentMemory, observation: Observation) -> dict[str, Any]:
        """The memory's template context without the trades the observation lists under "Your
        recent trades" (the same fact twice cost the local model ~15 evaluated tokens a trade)."""
        return memory.to_context(shown={trade_note(t) for t in observation.recent_trades})

    def _act_context(
        self, observation: Observation, observation_text: str, memory_text: str, plan: str | None
    ) -> dict[str, Any]:
        p: LLMParams = self.params  # type: ignore[assignment]
        json_mode = self.tool_mode == "json"
        return {
            "agent_id": observation.agent_id,
            "agent_name": observation.name,
            "observation_text": observation_text,
            "memory_text": memory_text,
            "plan": plan,
            "max_actions": p.max_actions,
            "tool_mode": self.tool_mode,
            "tool_names": self._tool_names,
            # JSON mode: each tool's arguments (types, allowed values, ranges) and one example
            "tool_signatures": tool_signatures(self._step_tools) if json_mode else [],
            "example": self._example(observation) if json_mode else "",
        }

    # ------------------------------------------------------------------ helpers

    def _ctx(self) -> LLMContext:
        if self.context is None:
            raise RuntimeError("LLMPolicy used before bind(): the model gives it a chat model and prompts")
        return self.context

    def _render(self, name: str, **context: Any) -> str:
        ctx = self._ctx()
        return ctx.prompts.render(name, persona=ctx.persona.to_context(), **context)

    def _system_message(self) -> dict[str, Any]:
        if self._system is None:
            ctx = self._ctx()
            text = self._render(f"system/{ctx.persona.role.value}.j2", market=ctx.market)
            if ctx.shared_texts is not None:
                text = ctx.shared_texts.setdefault(text, text)
            self._system = text
        return {"role": "system", "content": self._system}

    def _request(self, messages: list[dict[str, Any]], purpose: str, observation: Observation) -> ChatRequest:
        ctx = self._ctx()
        p: LLMParams = self.params  # type: ignore[assignment]
        tools = None
        response_format = None
        if purpose != "plan":
            if self.tool_mode == "tools":
                tools = self._step_tools
            else:
                response_format = json_mode_format(self._step_tools, p.max_actions)
        return ChatRequest(
            model=ctx.model,
            messages=messages,
            tools=tools,
            tool_choice="auto" if tools else None,
            response_format=response_format,
            temperature=p.temperature if p.temperature is not None else ctx.temperature,
            max_tokens=self.max_tokens(purpose),
            seed=ctx.seed,
            purpose=purpose,
            agent_id=observation.agent_id,
            tools_json=self._stable_tools_json if tools is not None and tools is self._stable_tools else None,
        )


def _shared(
    shared: dict[str, tuple[list[dict[str, Any]], str]] | None, tools: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], str]:
    """``tools`` and its canonical JSON, or the run's list with the same JSON text (same keys in
    the same order, same values: the same bytes in every request and recording) when another
    policy made it first. Past :data:`~mesa_llm.agents.action_schemas.MAX_ENUM_IDS` agents, the
    agents of a population offer one list (their peers are a range of ids): the request body's and
    the recording's encodings of it, kept per list, are then made once, not once per agent."""
    if shared is None:
        return tools, canonical_json(tools)
    try:
        key = json.dumps(tools, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):  # not plain JSON: kept to itself
        return tools, canonical_json(tools)
    found = shared.get(key)
    if found is None:
        found = shared[key] = (tools, canonical_json(tools))
    return found


_FENCED = re.compile(r"```[A-Za-z]*\s*(.*?)\s*```", re.DOTALL)


def _strip_fences(text: str) -> str:
    """The JSON inside a Markdown code fence (small models wrap answers in them), else ``text``."""
    match = _FENCED.search(text)
    if match is not None:
        return match.group(1).strip()
    return text.strip("`").removeprefix("json").strip() if text.startswith("```") else text.strip()


def _as_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


#: tools that move nothing in the market or a negotiation (see :attr:`LLMParams.skip_idle`)
IDLE_TOOLS = frozenset({"wait", "send_message", "broadcast", "forward_message", "message_alliance", "end_negotiation"})

#: longest plan kept and shown in the act prompt (a plan is a few sentences; more is rambling)
MAX_PLAN_CHARS = 500
#: characters of an answer's own text shown back to the model in the repair round
PREVIEW_TEXT_CHARS = 1000


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:20]} is not a finite number")
    return value


_ACTIONS_START = re.compile(r'^\s*\{\s*"actions"\s*:\s*\[')


def _complete_actions(text: str) -> list[Any] | None:
    """The whole items of an ``{"actions": [...`` answer that was cut off mid-way (by the token
    limit), parsed with the same strict rules as :func:`_load_json`; None when nothing whole precedes the cut."""
    match = _ACTIONS_START.match(text)
    if match is None:
        return None
    decoder = json.JSONDecoder(strict=False, parse_constant=_reject_constant, parse_float=_finite_float)
    items: list[Any] = []
    pos = match.end()
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        try:
            item, pos = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            break
        items.append(item)
    return items or None


def _load_json(text: str) -> tuple[Any, str | None]:
    """``(value, None)``, or ``(None, why)`` when ``text`` is not strict JSON: syntax errors, but
    also NaN/Infinity, numbers that overflow to infinity, 5,000-digit integers, deep nesting."""
    try:
        # strict=False: models write raw newlines and tabs inside strings (a message's text)
        return json.loads(text, strict=False, parse_constant=_reject_constant, parse_float=_finite_float), None
    except json.JSONDecodeError as exc:
        return None, f"{exc.msg} at position {exc.pos}"
    except RecursionError:
        return None, "nested too deeply"
    except ValueError as exc:
        return None, one_line(str(exc), 120)
