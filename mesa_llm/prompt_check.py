"""Checks a scenario's prompt templates before anything runs: resolve, compile and render once.

A template override that is missing, leaves the scenario's folder, does not compile, names a
variable the context lacks, or trips the sandbox must be reported by ``validate`` and ``run`` —
whether or not a model is configured (without one, LLM populations fall back to rule-based
policies and would never render their templates). The check builds a small copy of the scenario
(at most two agents per population) whose LLM agents are wired to a chat model that is never
called, and renders every prompt of one agent per LLM population against its first observation,
enriched with a sample message, trade and rejection so every branch of the templates is reached.
The renders run within the same budget as in a run (size, operations, time, nesting: see
:mod:`mesa_llm.agents.template_sandbox`), so a template that passes renders in the run too (for
data like the sample's). A failing render can take up to its time budget, so populations sharing
templates that already failed are not rendered again, and the check stops after
:data:`MAX_TEMPLATE_PROBLEMS` problems.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from mesa_llm.agents.llm_policy import LLMPolicy
from mesa_llm.agents.prompts import PromptError
from mesa_llm.agents.trader import TraderAgent
from mesa_llm.llm import ChatModel, ChatRequest, ChatResponse, LLMError
from mesa_llm.mechanisms.base import mechanism_classes
from mesa_llm.scenario import ScenarioSpec


class PreviewModel(Protocol):
    """What the check needs of a built (never run) model."""

    def preview_observations(self) -> list[tuple[TraderAgent, Any]]:
        """Every agent's first observation, every scheduled session open."""
        ...

    def finish(self, status: str = "completed") -> None:
        """Release what the model holds."""
        ...


#: problems after which the check stops (each may have taken a render's whole time budget)
MAX_TEMPLATE_PROBLEMS = 5

#: builds a model of a scenario whose LLM agents are answered by the given chat model, not recording
ModelFactory = Callable[[ScenarioSpec, ChatModel], PreviewModel]


class _NeverCalled:
    """A chat model for the check: rendering prompts must not reach any model."""

    name = "template-check"

    def declared_tool_mode(self, model: str) -> str:
        """No probe: the check renders the prompts of both tool modes anyway."""
        return "tools"

    async def complete(self, request: ChatRequest) -> ChatResponse:
        raise LLMError("the template check calls no model", model=self.name, kind="unknown")


def needs_template_check(spec: ScenarioSpec) -> bool:
    """Whether the scenario has LLM populations or prompt overrides to check."""
    return bool(spec.llm.templates) or any(p.wants_llm or p.templates for p in spec.populations)


def check_prompt_templates(spec: ScenarioSpec, build_model: ModelFactory) -> list[str]:
    """Problems with the scenario's prompt templates, one line each (empty when they all render).

    ``build_model`` builds the small copy of the scenario (the CLI passes ``MarketModel``'s
    constructor: this module stays below the model in the layers)."""
    if not needs_template_check(spec):
        return []

    # a plugin mechanism's parameters may be per agent of some populations (e.g. one cost per firm):
    # those keep their size
    whole = {
        label for cls, entry in zip(mechanism_classes(spec), spec.mechanisms, strict=True)
        for label in cls.sized_populations(entry)
    }  # fmt: skip
    small = spec.model_copy(
        update={
            "populations": [
                p if p.label in whole else
                p.model_copy(update={"count": min(max(p.count, 1), 2)}) if (p.wants_llm or p.templates) else
                p.model_copy(update={"count": min(p.count, 2)})
                for p in spec.populations
            ]
        }
    )
    small.source_dir = spec.source_dir
    problems: list[str] = []
    try:
        model = build_model(small, _NeverCalled())
    except PromptError as exc:
        return [str(exc)]
    try:
        checked: set[str] = set()
        failed: set[int] = set()  # prompt libraries (role and templates) that failed already
        for agent, observation in model.preview_observations():
            if agent.population in checked or not isinstance(agent.policy, LLMPolicy):
                continue
            checked.add(agent.population)
            library = id(agent.policy.context.prompts) if agent.policy.context is not None else None
            if library in failed:
                continue  # the same templates fail the same way: reported once
            _add_samples(observation, agent.unique_id)
            try:
                agent.policy.render_prompts(observation)
            except PromptError as exc:
                if library is not None:
                    failed.add(library)
                if not any(str(exc) in p for p in problems):  # the same template fails once
                    problems.append(f"population {agent.population!r}: {exc}")
                if len(problems) >= MAX_TEMPLATE_PROBLEMS:
                    problems.append(f"(the check stopped after {MAX_TEMPLATE_PROBLEMS} problems)")
                    break
    finally:
        model.finish()
    return problems


def _add_samples(observation: Any, agent_id: int) -> None:
    """A message, a trade and a rejection, so the templates' optional parts render too."""
    good = next(iter(observation.market.to_dict()), "good")
    observation.messages = [
        {
            "message_id": 0,
            "sender_id": agent_id + 1,
            "sender": "sample_sender",
            "text": "a sample message\nwith a second line",
            "channel": "direct",
            "step": 0,
        }
    ]
    observation.recent_trades = [{"step": 0, "good": good, "side": "buy", "price": 1.0, "quantity": 1}]
    observation.rejections = [
        {"type": "place_order", "arguments": {"good": good}, "reason": "a sample reason", "step": 0}
    ]
