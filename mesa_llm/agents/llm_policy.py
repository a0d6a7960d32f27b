"""The LLM agent loop: observe -> plan -> act (validated tool calls, one repair round) -> message.

Each step an LLM agent renders its observation (Jinja), optionally asks its model for a short plan
(every step, every k steps, or never), then asks for actions offering its role's tools. Every tool
call is validated into a pydantic action; invalid calls are answered with their errors in one
repair round, and what is still invalid is dropped and recorded. Messages are tools too
(``send_message``, ``broadcast``). Memory is bounded, so prompts do not grow with the run. Models
without tool calling get the same actions through JSON-schema structured output.

Nothing here moves money: the Decision goes back to the world, which validates it again against
its rules. Every LLM call becomes an ``llm_call`` event carried in the Decision, so the model records
them in agent order (deterministic however the concurrent calls finish).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from mesa_llm.actions import ActionBase, ActionRegistry, ActionValidationError, Decision
from mesa_llm.agents.memory import AgentMemory
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.persona import Persona
from mesa_llm.agents.policies.base import DecisionPolicy, PolicyParams
from mesa_llm.agents.prompts import PromptLibrary
from mesa_llm.llm import ChatModel, ChatRequest, ChatResponse, LLMError, UsageTracker, classify


class LLMParams(PolicyParams):
    """Parameters of the LLM agent loop."""

    plan_every: int = Field(default=1, ge=0, description="plan every k steps; 0 never plans")
    memory_events: int = Field(default=8, ge=0, le=200, description="recent events remembered")
    max_actions: int = Field(default=5, ge=1, le=50, description="actions kept per step")
    tool_mode: Literal["tools", "json"] = Field(
        default="tools", description="'json' for models without tool calling (structured output)"
    )
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    repair: bool = Field(default=True, description="one repair round for invalid tool calls")


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
    #: force JSON-schema structured output (the model cannot do tool calls)
    structured_output: bool = False


@dataclass(slots=True)
class _Call:
    """One tool call as the model sent it, and what validation made of it."""

    call_id: str
    name: str
    raw_arguments: Any
    action: ActionBase | None = None
    error: str | None = None

    def record(self) -> dict[str, Any]:
        return {
            "id": self.call_id,
            "name": self.name,
            "arguments": self.action.arguments() if self.action is not None else self.raw_arguments,
            "valid": self.action is not None,
            "error": self.error,
        }


NO_TOOL_CALL = "(no tool call)"


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
        self._tools: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        self._tool_names: list[str] = []

    def bind(self, context: LLMContext) -> None:
        """Attach the world's context (model, prompts, tools) before the first step."""
        self.context = context
        self._system = None
        self._tools = {}
        if context.structured_output:
            self.params = self.params.model_copy(update={"tool_mode": "json"})

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
        ctx = self._ctx()
        p: LLMParams = self.params  # type: ignore[assignment]
        events: list[tuple[str, dict[str, Any]]] = []
        # the world says which tools make sense now (role and state); fall back to the role's
        self._tool_names = [n for n in observation.available_actions if n in ctx.registry.names()] or list(
            ctx.tool_names
        )
        self.memory.update(observation)
        try:
            observation_text = self._render("observation.j2", obs=observation.to_dict())
            memory_text = self._render("memory.j2", memory=self.memory.to_context())
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
        self._tool_names = [n for n in observation.available_actions if n in self._ctx().registry.names()] or list(
            self._ctx().tool_names
        )
        memory = AgentMemory(max_events=p.memory_events)
        memory.update(observation)
        observation_text = self._render("observation.j2", obs=observation.to_dict())
        memory_text = self._render("memory.j2", memory=memory.to_context())
        sample_error = {"tool": "place_order", "arguments": '{"good": "?"}', "reason": "sample reason"}
        return {
            "system": self._system_message()["content"],
            "observation": observation_text,
            "memory": memory_text,
            "plan": self._render("plan.j2", observation_text=observation_text, memory_text=memory_text),
            "act": self._render(
                "act.j2",
                observation_text=observation_text,
                memory_text=memory_text,
                plan="sample plan",
                max_actions=p.max_actions,
                tool_mode=p.tool_mode,
                tool_names=self._tool_names,
            ),
            "repair": self._render("repair.j2", errors=[sample_error], accepted=["wait"], tool_mode=p.tool_mode),
        }

    # ------------------------------------------------------------------ plan

    async def _plan(
        self, observation: Observation, observation_text: str, memory_text: str, events: list[tuple[str, dict[str, Any]]]
    ) -> str | None:
        user = self._render("plan.j2", observation_text=observation_text, memory_text=memory_text)
        request = self._request([self._system_message(), {"role": "user", "content": user}], "plan", observation)
        response = await self._complete(request, events, [])
        text = (response.content or "").strip()
        if not text:
            return None
        plan = text[:1000]
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
            "act.j2",
            observation_text=observation_text,
            memory_text=memory_text,
            plan=plan or self.memory.plan,
            max_actions=p.max_actions,
            tool_mode=p.tool_mode,
            tool_names=self._tool_names,
        )
        messages = [self._system_message(), {"role": "user", "content": user}]
        request = self._request(messages, "act", observation)
        calls: list[_Call] = []
        response = await self._complete(request, events, calls)
        accepted = [c for c in calls if c.action is not None]
        rejected = [c for c in calls if c.action is None]
        if rejected and p.repair:
            repair_messages = [*messages, *self._feedback(response, calls)]
            repair_messages.append(
                {
                    "role": "user",
                    "content": self._render(
                        "repair.j2",
                        errors=[
                            {"tool": c.name, "arguments": _short(c.raw_arguments), "reason": c.error}
                            for c in rejected
                        ],
                        accepted=[c.name for c in accepted],
                        tool_mode=p.tool_mode,
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
        invalid = [ActionValidationError(c.name, c.raw_arguments, c.error or "invalid") for c in rejected]
        if len(actions) > p.max_actions:
            for extra in actions[p.max_actions :]:
                invalid.append(
                    ActionValidationError(
                        extra.tool_name, extra.arguments(), f"more than {p.max_actions} actions in one step"
                    )
                )
            actions = actions[: p.max_actions]
        return Decision(actions=actions, plan=plan, invalid=invalid, events=events)

    def _feedback(self, response: ChatResponse, calls: list[_Call]) -> list[dict[str, Any]]:
        """The assistant's answer and, per tool call, what became of it (for the repair round)."""
        p: LLMParams = self.params  # type: ignore[assignment]
        if p.tool_mode == "json" or not response.tool_calls:
            return [{"role": "assistant", "content": response.content or ""}]
        assistant = {
            "role": "assistant",
            "content": response.content or None,
            "tool_calls": [
                {"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": _as_text(c.raw_arguments)}}
                for c in calls
            ],
        }
        results = [
            {
                "role": "tool",
                "tool_call_id": c.call_id,
                "content": "accepted" if c.action is not None else f"error: {c.error}",
            }
            for c in calls
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
        if ctx.usage is not None:
            ctx.usage.add(request.agent_id, response)
        if request.purpose != "plan":
            calls.extend(self._parse(response))
        events.append(("llm_call", self._record(request, response, None, calls)))
        return response

    def _parse(self, response: ChatResponse) -> list[_Call]:
        p: LLMParams = self.params  # type: ignore[assignment]
        if p.tool_mode == "json":
            return self._parse_json(response.content)
        if not response.tool_calls:
            text = (response.content or "").strip()
            reason = (
                "answered with text instead of calling a tool (call `wait` to do nothing)"
                if text
                else "empty answer: no tool call and no text"
            )
            return [_Call("call_0", NO_TOOL_CALL, text[:200], error=reason)]
        out = []
        for i, tc in enumerate(response.tool_calls):
            call = _Call(tc.id or f"call_{i}", tc.name, tc.arguments)
            self._validate(call)
            out.append(call)
        return out

    def _parse_json(self, content: str | None) -> list[_Call]:
        text = (content or "").strip()
        if not text:
            return [_Call("call_0", NO_TOOL_CALL, "", error="empty answer: expected a JSON object")]
        try:
            data = json.loads(_strip_fences(text))
        except json.JSONDecodeError as exc:
            return [_Call("call_0", NO_TOOL_CALL, text[:200], error=f"answer is not valid JSON: {exc.msg}")]
        items = data.get("actions") if isinstance(data, dict) else data
        if not isinstance(items, list):
            return [_Call("call_0", NO_TOOL_CALL, text[:200], error='expected {"actions": [...]}')]
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("tool"), str):
                out.append(_Call(f"call_{i}", NO_TOOL_CALL, item, error='each action needs "tool" and "arguments"'))
                continue
            call = _Call(f"call_{i}", item["tool"], item.get("arguments", {}))
            self._validate(call)
            out.append(call)
        return out

    def _validate(self, call: _Call) -> None:
        ctx = self._ctx()
        names = self._tool_names or ctx.tool_names
        if call.name not in names:
            call.error = f"unknown tool {call.name!r}; available: {', '.join(names)}"
            return
        arguments = call.raw_arguments
        if isinstance(arguments, str):
            if not arguments.strip():
                arguments = {}
            else:
                try:
                    arguments = json.loads(arguments)
                except json.JSONDecodeError as exc:
                    call.error = f"arguments are not valid JSON ({exc.msg} at position {exc.pos})"
                    return
        if arguments is None:
            arguments = {}
        try:
            call.action = ctx.registry.parse(call.name, arguments)
        except ActionValidationError as exc:
            call.error = exc.reason

    def _record(
        self, request: ChatRequest, response: ChatResponse | None, error: LLMError | None, calls: list[_Call]
    ) -> dict[str, Any]:
        return {
            "model": request.model,
            "purpose": request.purpose,
            "request_hash": request.cache_key(),
            "request": request.to_record(),
            "response": response.to_record() if response is not None else None,
            "parsed_tool_calls": [c.record() for c in calls],
            "usage": {
                "prompt_tokens": response.usage.prompt_tokens if response else 0,
                "completion_tokens": response.usage.completion_tokens if response else 0,
            },
            "cost_usd": response.cost_usd if response else 0.0,
            "latency_s": response.latency_s if response else None,
            "attempts": response.attempts if response else error.attempts if error else 0,
            "cached": response.cached if response else False,
            "error": str(error) if error is not None else None,
            "error_kind": error.kind if error is not None else None,
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
            self._system = self._render(f"system/{ctx.persona.role.value}.j2", market=ctx.market)
        return {"role": "system", "content": self._system}

    def _request(self, messages: list[dict[str, Any]], purpose: str, observation: Observation) -> ChatRequest:
        ctx = self._ctx()
        p: LLMParams = self.params  # type: ignore[assignment]
        tools = None
        response_format = None
        if purpose != "plan":
            names = tuple(self._tool_names or ctx.tool_names)
            if p.tool_mode == "tools":
                tools = self._tools.get(names)
                if tools is None:
                    tools = self._tools[names] = ctx.registry.tool_schemas(list(names))
            else:
                response_format = _json_mode_format(ctx.registry, list(names))
        return ChatRequest(
            model=ctx.model,
            messages=messages,
            tools=tools,
            tool_choice="auto" if tools else None,
            response_format=response_format,
            temperature=p.temperature,
            max_tokens=p.max_tokens,
            seed=ctx.seed,
            purpose=purpose,
            agent_id=observation.agent_id,
        )


def _json_mode_format(registry: ActionRegistry, names: list[str]) -> dict[str, Any]:
    """The JSON schema of ``{"actions": [{"tool": ..., "arguments": {...}}]}`` for structured output."""
    variants = []
    for schema in registry.tool_schemas(names):
        fn = schema["function"]
        variants.append(
            {
                "type": "object",
                "properties": {"tool": {"const": fn["name"]}, "arguments": fn["parameters"]},
                "required": ["tool", "arguments"],
                "additionalProperties": False,
            }
        )
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "actions",
            "schema": {
                "type": "object",
                "properties": {"actions": {"type": "array", "items": {"anyOf": variants}}},
                "required": ["actions"],
                "additionalProperties": False,
            },
        },
    }


def _strip_fences(text: str) -> str:
    if text.startswith("```"):
        text = text.strip("`")
        if text.startswith("json"):
            text = text[4:]
    return text.strip()


def _as_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _short(arguments: Any, limit: int = 300) -> str:
    text = _as_text(arguments)
    return text if len(text) <= limit else text[: limit - 1] + "…"
