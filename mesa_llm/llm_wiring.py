"""How a model reaches its LLMs: which model each population uses, their chat models, prompts and
accounting, and one event loop per run."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from mesa_llm.actions import ActionRegistry
from mesa_llm.agents.llm_policy import LLMContext, LLMPolicy
from mesa_llm.agents.persona import Persona
from mesa_llm.agents.prompts import PromptLibrary, resolve_overrides
from mesa_llm.llm import ChatModel, ConcurrencyLimiter, UsageTracker
from mesa_llm.llm.bounds import AnswerLimits
from mesa_llm.scenario import ScenarioSpec


def resolve_llm_models(
    scenario: ScenarioSpec, override: str | None = None, chat_model: ChatModel | None = None
) -> dict[str, str | None]:
    """The model of every LLM population: ``override`` (``--model``) > the population's ``model``
    > the scenario's ``llm.model`` > env ``MESA_LLM_MODEL`` (> an injected chat model's name);
    None means no model, so the population falls back to its role's rule-based policy."""
    env = os.environ.get("MESA_LLM_MODEL") or None
    out: dict[str, str | None] = {}
    for pop in scenario.populations:
        if pop.wants_llm:
            name = override or pop.model or scenario.llm.model or env
            if name is None and chat_model is not None:
                name = chat_model.name
            out[pop.label] = name
    return out


class AsyncBridge:
    """Runs the LLM agents' coroutines: one event loop for the whole run (litellm's sessions and
    the limiter's semaphores live on it), in a helper thread when the caller already runs a loop
    (e.g. a Jupyter notebook)."""

    def __init__(self) -> None:
        try:
            asyncio.get_running_loop()
            inside_loop = True
        except RuntimeError:
            inside_loop = False
        self._runner: asyncio.Runner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        if inside_loop:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="mesa-llm-async", daemon=True)
            self._thread.start()
        else:
            self._runner = asyncio.Runner()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        if self._runner is not None:
            return self._runner.run(coro)
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

class LLMWiring:
    """The LLM side of one run: chat models (one per model string, sharing a limiter), prompt
    libraries (per role and override set), usage and budget, and the header and summary parts."""

    def __init__(
        self,
        scenario: ScenarioSpec,
        resolved_models: dict[str, str | None],
        model_override: str | None,
        injected: ChatModel | None,
        *,
        seed: int,
    ) -> None:
        self.scenario = scenario
        self.resolved_models = resolved_models
        self.model_override = model_override
        self.injected = injected
        self.seed = seed
        self.usage = UsageTracker(max_cost_usd=scenario.llm.max_cost_usd, max_tokens=scenario.llm.max_tokens)
        self.limiter = ConcurrencyLimiter(default_limit=scenario.llm.concurrency)
        self.action_registry = ActionRegistry()
        settings = scenario.llm
        self.limits = AnswerLimits(
            max_tool_calls=settings.max_tool_calls,
            max_argument_chars=settings.max_argument_chars,
            max_answer_chars=settings.max_answer_chars,
        )
        self._chat_models: dict[str, ChatModel] = {}
        self._prompt_libraries: dict[tuple[str, str], PromptLibrary] = {}

    def prompts_for(self, role: str, templates: dict[str, str]) -> PromptLibrary:
        key = (role, json.dumps(templates, sort_keys=True))
        library = self._prompt_libraries.get(key)
        if library is None:
            overrides = resolve_overrides(
                {**self.scenario.llm.templates, **templates}, self.scenario.source_dir, role
            )
            library = PromptLibrary(overrides)
            library.preload(role)
            self._prompt_libraries[key] = library
        return library

    def chat_model_for(self, model_name: str) -> ChatModel:
        """The chat model answering ``model_name`` (one per model string, sharing the limiter)."""
        if self.injected is not None:
            return self.injected
        chat = self._chat_models.get(model_name)
        if chat is None:
            from mesa_llm.llm import DiskCache, LiteLLMChatModel, MemoryCache, ResponseCache

            settings = self.scenario.llm
            cache: ResponseCache | None = None
            if settings.cache == "memory":
                cache = MemoryCache()
            elif settings.cache:
                cache = DiskCache(Path(settings.cache))
            chat = LiteLLMChatModel(
                model_name,
                api_base=settings.api_base,
                timeout=settings.timeout,
                max_attempts=settings.max_attempts,
                limiter=self.limiter,
                cache=cache,
                input_cost_per_token=settings.input_cost_per_token,
                output_cost_per_token=settings.output_cost_per_token,
            )
            chat.warm_up()  # at model construction, not inside the first step
            self._chat_models[model_name] = chat
        return chat

    def context(self, persona: Persona, templates: dict[str, str], model_name: str, market: dict[str, Any]) -> LLMContext:
        """What an LLM agent's policy needs: its chat model, prompts, tools and accounting."""
        return LLMContext(
            chat_model=self.chat_model_for(model_name),
            model=model_name,
            prompts=self.prompts_for(persona.role.value, templates),
            persona=persona,
            tool_names=persona.role.action_names(),
            registry=self.action_registry,
            market=market,
            usage=self.usage,
            seed=self.seed,
            structured_output=model_name in self.scenario.llm.structured_output_models,
            limits=self.limits,
        )

    def header(self, llm_agents: list[Any]) -> dict[str, Any]:
        """What replay and analysis need about the LLM side: settings, models, template hashes."""
        prompts: dict[str, dict[str, str]] = {}
        for a in llm_agents:
            assert isinstance(a.policy, LLMPolicy) and a.policy.context is not None
            if a.population not in prompts:
                prompts[a.population] = a.policy.context.prompts.template_hashes(a.role.value)
        return {
            "settings": self.scenario.llm.model_dump(mode="json"),
            "model_override": self.model_override,
            "models": {label: name for label, name in self.resolved_models.items() if name},
            "prompts": prompts,
        }

    def summary(self, llm_agents: list[Any]) -> dict[str, Any] | None:
        """The run summary's LLM part (None without LLM agents)."""
        if not llm_agents:
            return None
        run = self.usage.run
        return {
            "agents": len(llm_agents),
            "models": sorted({name for name in self.resolved_models.values() if name}),
            "calls": run.calls,
            "failed_calls": run.failed_calls,
            "prompt_tokens": run.prompt_tokens,
            "completion_tokens": run.completion_tokens,
            "cost_usd": round(run.cost_usd, 6),
        }
