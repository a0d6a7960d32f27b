"""How a model reaches its LLMs: which model each population uses, their chat models, prompts and
accounting, one event loop per run, and the provider guards (credentials out of the recording, a
wall-clock bound per step, a stop when every call of several steps failed)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from mesa_llm.actions import ActionRegistry
from mesa_llm.agents.llm_policy import LLMContext, LLMPolicy, RunToolLists
from mesa_llm.agents.persona import Persona
from mesa_llm.agents.prompts import PromptLibrary, resolve_overrides
from mesa_llm.agents.roles import Role
from mesa_llm.gc_pause import collector_paused
from mesa_llm.llm import (
    ChatModel,
    ChatRequest,
    ChatResponse,
    ConcurrencyLimiter,
    LLMError,
    UsageTracker,
    eager,
    http1,
)
from mesa_llm.llm.bounds import AnswerLimits
from mesa_llm.llm.consent import api_base_allowed, how_to_allow
from mesa_llm.llm.secrets import public_url, strip_url_credentials
from mesa_llm.llm.tool_mode import (
    ToolModeDecision,
    declared_tool_mode,
    probe_tool_mode,
    run_blocking,
)
from mesa_llm.mechanisms.base import insert_tools
from mesa_llm.run_summary import LLMActivity
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


#: negotiation protocols a scenario's sessions name, as the system prompt groups them
AUCTION_PROTOCOLS = ("first_price", "second_price", "english")


def mechanisms(scenario: ScenarioSpec, population: str | None, role: Role) -> dict[str, Any]:
    """Which of the scenario's mechanisms an agent of ``population`` with ``role`` takes part in,
    for its system prompt: the call market (if it may place orders there), the negotiation
    protocols of the sessions its population is named in (plus those it may open), contracts,
    alliances, gossip and reputation. The prompt describes these and nothing else."""
    negotiation = scenario.negotiation
    protocols: set[str] = set()
    for session in negotiation.sessions:
        named = {session.buyers, session.sellers, session.mediators, session.bidders}
        if population is None or population in named:
            protocols.add(session.protocol)
    trades = role.may_buy or role.may_sell
    if negotiation.default_spaces and trades:
        if negotiation.open_sessions:
            protocols.add("alternating_offers")
        if negotiation.call_for_proposals:
            protocols.add("call_for_proposals")
    social = scenario.social
    regulator = role is Role.REGULATOR
    return {
        "call_market": scenario.market.call_market and role.allows("place_order"),
        # what the regulator watches: trades of the call market and contracts
        "market_exists": scenario.market.call_market,
        "fee_per_unit": scenario.market.fee_per_unit,
        "protocols": sorted(protocols),
        "auctions": sorted(protocols.intersection(AUCTION_PROTOCOLS)),
        "open_sessions": negotiation.open_sessions and trades and bool(negotiation.default_spaces),
        "negotiations": bool(protocols.difference(AUCTION_PROTOCOLS)) and trades,
        "contracts": bool(protocols) and trades,
        "alliances": social.alliances and role.allows("propose_alliance"),
        "gossip": social.gossip and role.allows("forward_message"),
        "reputation": social.reputation_shown > 0 and bool(
            negotiation.sessions or negotiation.open_sessions or social.alliances or regulator
            or any(p.role is Role.REGULATOR for p in scenario.populations)
        ),
        "max_fine": scenario.rules.max_fine,
    }


def rules_view(
    scenario: ScenarioSpec,
    money: Any,
    exchange: Any,
    population: str | None,
    role: Role | None,
    plugin_mechanisms: Sequence[Any] = (),
) -> dict[str, Any]:
    """What an LLM agent's system prompt says of the market rules: tick size, admissible price
    ranges (``exchange.admissible``), the mechanisms an agent of ``population`` with ``role``
    takes part in (see `mechanisms`) and, under ``mechanisms``, what each plugin mechanism it takes
    part in says of its rules (`Mechanism.prompt_rules`)."""
    to_units = money.to_units
    role = role if role is not None else Role.TRADER
    out = {
        "tick_size": money.tick_size,
        "goods": [
            {"name": name, "min_price": to_units(low), "max_price": to_units(high)}
            for name, (low, high) in ((g, exchange.admissible(g)) for g in exchange.goods)
        ],
        **mechanisms(scenario, population, role),
    }
    parts = {m.name: part for m in plugin_mechanisms if (part := m.prompt_rules(population, role)) is not None}
    if parts:
        out["mechanisms"] = parts
    return out


async def _close_connections() -> None:
    """Close our HTTP client's connections on the running loop (one turn: they close in it)."""
    http1.close(asyncio.get_running_loop())
    await asyncio.sleep(0)


class AsyncBridge:
    """Runs the LLM agents' coroutines: one event loop for the whole run (litellm's sessions and
    the limiter's semaphores live on it), in a helper thread when the caller already runs a loop
    (e.g. a Jupyter notebook). Its loop writes request bodies in the sender's turn
    (:mod:`mesa_llm.llm.eager`)."""

    def __init__(self) -> None:
        try:
            asyncio.get_running_loop()
            inside_loop = True
        except RuntimeError:
            inside_loop = False
        self._runner: asyncio.Runner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ran = False
        if inside_loop:
            self._loop = asyncio.new_event_loop()
            eager.install(self._loop)
            http1.install(self._loop)
            self._thread = threading.Thread(target=self._loop.run_forever, name="mesa-llm-async", daemon=True)
            self._thread.start()
        else:
            self._runner = asyncio.Runner()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` (a step's LLM calls) to completion, with the cyclic garbage collector
        paused (:mod:`mesa_llm.gc_pause`; a model pauses it for its whole step)."""
        with collector_paused():
            if self._runner is not None:
                eager.install(self._runner.get_loop())
                http1.install(self._runner.get_loop())
                self._ran = True
                return self._runner.run(coro)
            assert self._loop is not None
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        """Close the loop and the connections of our HTTP client on it."""
        if self._runner is not None:
            # only a runner that ran has a loop (and connections): asking an unused one for its loop
            # would make one, and closing that runs it, which fails inside another loop (the server)
            if self._ran:
                http1.close(self._runner.get_loop())  # the runner's loop runs once more as it closes
            self._runner.close()
        if self._loop is not None and self._thread is not None:
            if self._thread.is_alive():
                with contextlib.suppress(Exception):  # a loop that no longer runs has nothing to close
                    asyncio.run_coroutine_threadsafe(_close_connections(), self._loop).result(timeout=5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

class StepBoundChatModel:
    """A chat model whose calls share their step's wall-clock bound and are counted per step.

    A call still running when the step's time is up is cancelled and fails as a ``timeout``
    :class:`LLMError` (recorded like any failed call); the step goes on without it.
    """

    def __init__(self, inner: ChatModel, wiring: LLMWiring) -> None:
        self.inner = inner
        self.name = inner.name
        self._wiring = wiring

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """``inner.complete(request)``, bounded by what is left of the step's time."""
        return await self._wiring.bounded_call(self.inner, request)


class LLMWiring:
    """The LLM side of one run: chat models (one per model string, sharing a limiter), prompt
    libraries (per role and override set), usage and budget, the per-step guards, and the header
    and summary parts.

    ``trusted_api_base`` is the server the caller itself chose (``--api-base``, ``--local``): only
    it, or one the user allows in ``MESA_LLM_ALLOWED_API_BASES``, receives the provider key; the
    scenario's ``llm.api_base`` otherwise gets calls without it (:mod:`mesa_llm.llm.consent`).
    ``prompt_libraries`` (population -> library) replace the scenario's templates: a replay's,
    built from the recording's own template texts, so no file a recording names is ever read.
    """

    def __init__(
        self,
        scenario: ScenarioSpec,
        resolved_models: dict[str, str | None],
        model_override: str | None,
        injected: ChatModel | None,
        *,
        seed: int,
        trusted_api_base: str | None = None,
        prompt_libraries: dict[str, PromptLibrary] | None = None,
        actions: ActionRegistry | None = None,
    ) -> None:
        self.scenario = scenario
        self.prompt_libraries = dict(prompt_libraries or {})
        self.resolved_models = resolved_models
        self.model_override = model_override
        self.injected = injected
        self.seed = seed
        self.usage = UsageTracker(max_cost_usd=scenario.llm.max_cost_usd, max_tokens=scenario.llm.max_tokens)
        self.limiter = ConcurrencyLimiter(default_limit=scenario.llm.concurrency)
        #: the run's actions: the built-in ones and its plugin mechanisms' own
        self.action_registry = actions if actions is not None else ActionRegistry()
        #: the tools the run's plugin mechanisms give an agent of (population, role), set by the model
        self.mechanism_tools: Callable[[str | None, Role], list[str]] = lambda population, role: []
        settings = scenario.llm
        self.limits = AnswerLimits(
            max_tool_calls=settings.max_tool_calls,
            max_argument_chars=settings.max_argument_chars,
            max_answer_chars=settings.max_answer_chars,
        )
        self._chat_models: dict[str, ChatModel] = {}
        self._prompt_libraries: dict[tuple[str, str], PromptLibrary] = {}
        #: each model's tool mode for ``tool_mode: auto`` populations (recorded in the header)
        self.tool_modes: dict[str, ToolModeDecision] = {}
        #: every agent's id, filled in by the model once all agents exist (contexts share this list)
        self.agent_ids: list[int] = []
        #: the recorder's `SimulationRecorder.keep_encoded` (set by the model), or None
        self.keep_encoded: Callable[[Any], None] | None = None
        #: the policies' tool lists by JSON text (`LLMContext.shared_tools`)
        self.shared_tools: dict[str, tuple[list[dict[str, Any]], str]] = {}
        #: the policies' tool lists by what they are built from (`LLMContext.built_tools`)
        self.built_tools = RunToolLists()
        #: the policies' system prompts by text (`LLMContext.shared_texts`)
        self.shared_texts: dict[str, str] = {}
        settings = scenario.llm
        #: the server URL calls go to: ``user:password@`` never leaves this object
        self.api_base = strip_url_credentials(settings.api_base)
        #: the same URL as records and the terminal show it (query tokens masked too)
        self.shown_api_base = public_url(self.api_base)
        #: whether calls to ``api_base`` carry the provider key (the user chose or allowed the host)
        self.api_base_trusted = self.api_base is None or api_base_allowed(self.api_base, trusted_api_base)
        #: said once at the start (printed by the CLI, kept in the recording header)
        self.notices: list[str] = []
        self.warnings: list[str] = []
        if self.api_base != settings.api_base:
            key = "the provider's API key (e.g. OPENAI_API_KEY)" if self.api_base_trusted else "no API key"
            self.notices.append(
                f"the login in api_base (before '@') is dropped: never sent, shown or recorded; calls go "
                f"to {self.shown_api_base} with {key}"
            )
        if self.api_base is not None and not self.api_base_trusted and any(resolved_models.values()) and injected is None:
            self.notices.append(
                f"llm.api_base {self.shown_api_base} comes from the scenario, not from you: its calls go "
                f"without your API key; {how_to_allow(self.api_base)} to send it"
            )
        self._check_prices()
        self.step_timeout = settings.step_timeout
        self.max_failed_steps = settings.max_failed_steps
        self._deadline: float | None = None  # time.monotonic() at which the step's calls are cut
        self._step_start = 0.0
        self._scopes: set[asyncio.Timeout] = set()  # the step's calls in flight under its deadline
        self._step_calls = 0
        self._step_failures = 0
        self._failed_steps = 0  # consecutive steps whose every LLM call failed
        self._run_calls = 0
        self._run_failures = 0
        self._last_error: str | None = None

    def _check_prices(self) -> None:
        """Warn when a cost budget is set but litellm cannot price a model (its calls count $0)."""
        settings = self.scenario.llm
        if settings.max_cost_usd is None or self.injected is not None:
            return
        if settings.input_cost_per_token is not None or settings.output_cost_per_token is not None:
            return
        names = sorted({name for name in self.resolved_models.values() if name})
        if not names:
            return
        from mesa_llm.llm.litellm_backend import has_price

        unpriced = [name for name in names if not has_price(name)]
        if unpriced:
            self.warnings.append(
                f"the cost budget (--max-cost-usd / llm.max_cost_usd = ${settings.max_cost_usd:g}) cannot "
                f"stop this run: litellm has no price for {', '.join(map(repr, unpriced))}, so its calls "
                "count $0; set llm.input_cost_per_token and llm.output_cost_per_token, or use --max-tokens"
            )

    # -- per-step guards ------------------------------------------------------------------------

    def begin_step(self) -> None:
        """Start the step's clock and counts (call before the agents decide)."""
        self._step_start = time.monotonic()
        self._deadline = self._step_start + self.step_timeout if self.step_timeout else None
        self._step_calls = 0
        self._step_failures = 0

    def _step_limit_s(self) -> float:
        """The step's time limit so far: ``step_timeout`` for every round of ``concurrency`` calls
        made this step (at least one), so that a step with more calls than fit in flight at once,
        or a slow machine, gives a slower step rather than failed calls."""
        assert self.step_timeout is not None
        rounds = max(1.0, self._step_calls / max(1, self.scenario.llm.concurrency))
        return self.step_timeout * rounds

    def _extend_deadline(self) -> None:
        """Move the step's deadline (and that of every call waiting on it) to the current limit."""
        if self._deadline is None:
            return
        deadline = self._step_start + self._step_limit_s()
        if deadline <= self._deadline:
            return
        self._deadline = deadline
        if self._scopes:
            loop_deadline = asyncio.get_running_loop().time() + (deadline - time.monotonic())
            for scope in self._scopes:
                scope.reschedule(loop_deadline)

    async def bounded_call(self, inner: ChatModel, request: ChatRequest) -> ChatResponse:
        """One call, cut when the step's time is up, and counted for the failed-steps guard."""
        self._step_calls += 1
        self._run_calls += 1
        try:
            if self._deadline is None:
                return await inner.complete(request)
            self._extend_deadline()
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise self._step_timeout_error(request)
            try:
                async with asyncio.timeout(remaining) as scope:
                    self._scopes.add(scope)
                    try:
                        return await inner.complete(request)
                    finally:
                        self._scopes.discard(scope)
            except TimeoutError:
                if scope.expired():
                    raise self._step_timeout_error(request) from None
                raise
        except Exception as exc:
            self._step_failures += 1
            self._run_failures += 1
            self._last_error = str(exc) or type(exc).__name__
            raise

    def _step_timeout_error(self, request: ChatRequest) -> LLMError:
        return LLMError(
            f"no answer within the step's time limit ({self._step_limit_s():g} s: llm.step_timeout = "
            f"{self.step_timeout:g} s per {self.scenario.llm.concurrency} calls of the step); the call was cancelled",
            model=request.model,
            kind="timeout",
        )

    def end_step(self, final: bool) -> str | None:
        """Why the run must stop now (every LLM call of ``max_failed_steps`` consecutive steps, or of
        the whole run at its ``final`` step, failed), else None."""
        self._deadline = None
        if self._step_calls:
            failed = self._step_failures == self._step_calls
            self._failed_steps = self._failed_steps + 1 if failed else 0
        last = f" (last error: {self._last_error})" if self._last_error else ""
        if self.max_failed_steps and self._failed_steps >= self.max_failed_steps:
            steps = "step" if self.max_failed_steps == 1 else f"{self.max_failed_steps} consecutive steps"
            return f"every LLM call of {steps} failed{last}"
        if final and self._run_calls and self._run_failures == self._run_calls:
            return f"every LLM call of the run failed{last}"
        return None

    # -- chat models and prompts ----------------------------------------------------------------

    def prompts_for(self, role: str, templates: dict[str, str], population: str | None = None) -> PromptLibrary:
        """The prompt library of an agent of ``role`` with a population's ``templates`` overrides
        (the replay's library of ``population``, when it was given one)."""
        given = self.prompt_libraries.get(population) if population is not None else None
        if given is not None:
            given.preload(role)
            return given
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
        """The chat model answering ``model_name``: the injected one if any, else `live_chat_model_for`."""
        if self.injected is not None:
            return self.injected
        return self.live_chat_model_for(model_name)

    def live_chat_model_for(self, model_name: str) -> ChatModel:
        """The litellm chat model of ``model_name`` (one per model string, sharing the limiter),
        even when a chat model is injected: a fork's injected model asks this one for its live
        calls, and must not be handed back itself (that recursed until Python's limit)."""
        chat = self._chat_models.get(model_name)
        if chat is None:
            from mesa_llm.llm import DiskCache, LiteLLMChatModel, MemoryCache, ResponseCache

            settings = self.scenario.llm
            cache: ResponseCache | None = None
            if settings.cache == "memory":
                cache = MemoryCache()
            elif settings.cache:
                from mesa_llm.llm.cache import confined_cache_folder

                # inside the scenario's folder (the working directory for a spec built in code)
                folder = confined_cache_folder(settings.cache, self.scenario.source_dir or Path.cwd())
                try:
                    cache = DiskCache(folder)
                except OSError as exc:
                    raise ValueError(f"llm.cache: cannot create {folder} ({exc.strerror or exc})") from None
            chat = LiteLLMChatModel(
                model_name,
                api_base=self.api_base,
                api_base_trusted=self.api_base_trusted,
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

    def run_tools(self, role_tools: list[str]) -> list[str]:
        """A role's tools this scenario can ever use (the list offered every step, so it stays the
        same all run): no negotiation tools without negotiations, no alliance tools without
        alliances, no orders without a call market."""
        scenario = self.scenario
        settings = scenario.negotiation
        desk = bool(
            settings.spaces or settings.sessions or settings.open_sessions or any(p.utilities for p in scenario.populations)
        )
        auctions = any(s.protocol in ("first_price", "second_price", "english") for s in settings.sessions)
        usable = {
            "place_order": scenario.market.call_market,
            "cancel_order": scenario.market.call_market,
            "forward_message": scenario.social.gossip,
            "call_for_proposals": desk and settings.call_for_proposals,
            "bid": desk and auctions,
            **{name: desk for name in ("make_offer", "accept_offer", "reject_offer", "end_negotiation", "propose_settlement")},
            **{name: scenario.social.alliances for name in ("propose_alliance", "join_alliance", "leave_alliance", "message_alliance")},
        }
        return [name for name in role_tools if usable.get(name, True)]

    def tool_mode_for(self, model_name: str) -> ToolModeDecision:
        """How ``model_name`` is asked for actions under ``tool_mode: auto``, decided once per model:
        ``llm.structured_output_models`` forces JSON; else what the chat model declares (test
        doubles, replays, litellm for known tool-calling providers); else the probe's answer."""
        decision = self.tool_modes.get(model_name)
        if decision is not None:
            return decision
        if model_name in self.scenario.llm.structured_output_models:
            decision = ToolModeDecision("json", "llm.structured_output_models")
        else:
            chat = self.chat_model_for(model_name)
            declared = declared_tool_mode(chat, model_name)
            if declared is not None:
                decision = ToolModeDecision(declared, "declared by the chat model")
            else:
                decision = run_blocking(probe_tool_mode(chat, model_name))
                if decision.mode == "json":
                    self.notices.append(f"{model_name}: JSON-schema structured output ({decision.detail})")
        self.tool_modes[model_name] = decision
        return decision

    def context(
        self,
        persona: Persona,
        templates: dict[str, str],
        model_name: str,
        market: dict[str, Any],
        tool_mode: str = "auto",
    ) -> LLMContext:
        """What an LLM agent's policy needs: its chat model, prompts, tools and accounting
        (``tool_mode`` is the population's; only ``auto`` needs the model's mode decided)."""
        mode = self.tool_mode_for(model_name).mode if tool_mode == "auto" else "tools"
        return LLMContext(
            chat_model=StepBoundChatModel(self.chat_model_for(model_name), self),
            model=model_name,
            prompts=self.prompts_for(persona.role.value, templates, persona.population),
            persona=persona,
            tool_names=insert_tools(self.run_tools(persona.role.action_names()), self.mechanism_tools(persona.population, persona.role)),
            registry=self.action_registry,
            market=market,
            usage=self.usage,
            seed=self.seed,
            temperature=self.scenario.llm.temperature,
            structured_output=model_name in self.scenario.llm.structured_output_models,
            limits=self.limits,
            tool_mode=mode,
            agent_ids=self.agent_ids,
            keep_encoded=self._keep_encoded,
            shared_tools=self.shared_tools,
            built_tools=self.built_tools,
            shared_texts=self.shared_texts,
        )

    def _keep_encoded(self, value: Any) -> None:
        """Pass a policy's run-long value on to the recorder (`keep_encoded`, set by the model
        once its recorder exists; contexts are made before it)."""
        if self.keep_encoded is not None:
            self.keep_encoded(value)

    def header(self, llm_agents: list[Any]) -> dict[str, Any]:
        """What replay and analysis need about the LLM side: settings, models, and every prompt
        template a population uses: its SHA-256 per population (``prompts``) and its text, once per
        hash (``prompt_texts``), so a replay renders what was rendered without reading any file."""
        prompts: dict[str, dict[str, str]] = {}
        texts: dict[str, str] = {}
        for a in llm_agents:
            assert isinstance(a.policy, LLMPolicy) and a.policy.context is not None
            if a.population not in prompts:
                sources = a.policy.context.prompts.template_sources(a.role.value)
                hashes = {name: hashlib.sha256(text.encode("utf-8")).hexdigest() for name, text in sources.items()}
                prompts[a.population] = hashes
                texts.update({hashes[name]: text for name, text in sources.items()})
        return {
            "settings": self.public_settings(),
            "warnings": list(self.warnings),
            "model_override": self.model_override,
            "models": {label: name for label, name in self.resolved_models.items() if name},
            "prompts": prompts,
            "prompt_texts": dict(sorted(texts.items())),
            # how each model was asked for actions (a replay reuses this instead of probing)
            "tool_modes": {name: decision.to_record() for name, decision in sorted(self.tool_modes.items())},
        }

    def public_settings(self) -> dict[str, Any]:
        """The scenario's LLM settings as recorded: without URL credentials (login, query tokens)."""
        return {**self.scenario.llm.model_dump(mode="json"), "api_base": self.shown_api_base}

    def public_spec(self) -> dict[str, Any]:
        """The resolved scenario as recorded: without URL credentials."""
        spec = self.scenario.model_dump(mode="json")
        spec["llm"] = self.public_settings()
        return spec

    def summary(self, llm_agents: list[Any], activity: LLMActivity | None = None, steps: int = 0) -> dict[str, Any] | None:
        """The run summary's LLM part (None without LLM agents): totals, per population what its
        agents did (``populations``) and a warning per population that applied no action."""
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
            "populations": activity.to_dict() if activity is not None else {},
            "warnings": activity.warnings(steps) if activity is not None else [],
        }
