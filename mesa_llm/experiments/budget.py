"""What a sweep's LLM calls may cost, before it runs: from the scenario's LLM populations and the
models' prices (the scenario's own, else litellm's bundled price map), refined by a pilot run.

The up-front figure is an estimate with stated assumptions (calls per agent and step, tokens per
call), not a promise: the sweep's ``--max-cost-usd`` is what bounds spending, run by run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

#: assumed tokens of one call (a system prompt with the rules and tools, a bounded memory)
PROMPT_TOKENS_PER_CALL = 1_500
COMPLETION_TOKENS_PER_CALL = 200


@dataclass(slots=True)
class RunEstimate:
    """Expected LLM use of one run."""

    llm_agents: int
    calls: float
    cost_usd: float | None  # None: some model's price is unknown

    @property
    def uses_llm(self) -> bool:
        """Whether any population of the run calls a model."""
        return self.llm_agents > 0


def model_prices(model: str, spec: Any) -> tuple[float, float] | None:
    """(input, output) USD per token of ``model``: the scenario's prices, else litellm's price map
    (bundled, never downloaded), else None."""
    llm = spec.llm
    if llm.input_cost_per_token is not None or llm.output_cost_per_token is not None:
        return float(llm.input_cost_per_token or 0.0), float(llm.output_cost_per_token or 0.0)
    from mesa_llm.llm.litellm_backend import LITELLM_ENV_DEFAULTS

    for key, value in LITELLM_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    try:
        import litellm
    except ImportError:
        return None
    table = getattr(litellm, "model_cost", {}) or {}
    for name in (model, model.split("/", 1)[-1]):
        info = table.get(name)
        if info and info.get("input_cost_per_token") is not None:
            return float(info["input_cost_per_token"]), float(info.get("output_cost_per_token") or 0.0)
    return None


def estimate_run(spec: Any, steps: int | None, llm_model: str | None = None) -> RunEstimate:
    """Expected calls and cost of one run of a resolved scenario (no model: 0 calls, $0 exactly);
    ``llm_model`` replaces every LLM population's model (``--local``)."""
    # resolve_llm_models' rule, inlined: importing llm_wiring would import Mesa into the parent
    env = os.environ.get("MESA_LLM_MODEL") or None
    models = {p.label: llm_model or p.model or spec.llm.model or env for p in spec.populations if p.wants_llm}
    horizon = steps or spec.steps
    agents = 0
    calls = 0.0
    cost: float | None = 0.0
    for pop in spec.populations:
        model = models.get(pop.label)
        if not pop.wants_llm or not model:
            continue
        agents += pop.count
        plan_every = int((pop.params or {}).get("plan_every", 0) or 0)
        per_step = 1.0 + (1.0 / plan_every if plan_every > 0 else 0.0)  # an act call, plus a plan call now and then
        pop_calls = pop.count * horizon * per_step
        calls += pop_calls
        prices = model_prices(model, spec)
        if prices is None or cost is None:
            cost = None
            continue
        cost += pop_calls * (PROMPT_TOKENS_PER_CALL * prices[0] + COMPLETION_TOKENS_PER_CALL * prices[1])
    return RunEstimate(llm_agents=agents, calls=calls, cost_usd=cost)


def describe_estimate(estimates: list[RunEstimate], runs_to_go: int) -> str:
    """One line: the expected cost of the runs still to do."""
    llm_runs = [e for e in estimates if e.uses_llm]
    if not llm_runs:
        return f"estimate: $0 for {runs_to_go} runs (no LLM population has a model)"
    calls = sum(e.calls for e in llm_runs)
    if any(e.cost_usd is None for e in llm_runs):
        return (
            f"estimate: ~{calls:,.0f} LLM calls in {len(llm_runs)} runs; price unknown for a model "
            "(set llm.input_cost_per_token / output_cost_per_token): the first run is a pilot"
        )
    total = sum(e.cost_usd or 0.0 for e in llm_runs)
    return (
        f"estimate: ~${total:,.4f} for {len(llm_runs)} LLM runs (~{calls:,.0f} calls at ~{PROMPT_TOKENS_PER_CALL:,}"
        f"+{COMPLETION_TOKENS_PER_CALL} tokens each)"
    )
