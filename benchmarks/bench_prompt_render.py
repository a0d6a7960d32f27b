"""Render time of the shipped prompt templates, to see what the sandbox's budget checks cost.

Run: ``python benchmarks/bench_prompt_render.py [--repeat 40] [SCENARIO ...]``. Each bundled
scenario with LLM populations is built (no model is called); one agent per LLM population renders
all its prompts (system, observation, memory, plan, act and repair in both tool modes) against its
first observation with a sample message, trade and rejection, as ``validate`` does. Every one of
those template renders is then timed ``--repeat`` times and its fastest time kept (the machine is
shared: the minimum is the render's own cost, without the waits for other processes); the report
is the mean of those minima per render, and per full set of an agent's prompts, both for the renders as
they run (the package's own templates outside the sandbox) and all in the sandbox (the reference,
timed alternately in the same run; the texts must be the same).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mesa_llm.agents.llm_policy import LLMPolicy  # noqa: E402
from mesa_llm.agents.prompts import PromptLibrary  # noqa: E402
from mesa_llm.model import MarketModel  # noqa: E402
from mesa_llm.prompt_check import _add_samples, _NeverCalled  # noqa: E402
from mesa_llm.scenario import load_scenario, shipped_scenarios  # noqa: E402


def _renders(names: list[str]) -> tuple[list[tuple[PromptLibrary, str, dict[str, Any]]], int]:
    """Every template render of one agent per LLM population (library, template, context), and
    the number of agents."""
    renders: list[tuple[PromptLibrary, str, dict[str, Any]]] = []
    agents = 0
    for name in names:
        spec = load_scenario(name)
        if not any(p.wants_llm for p in spec.populations):
            continue
        model = MarketModel(spec, record=False, chat_model=_NeverCalled())
        seen: set[str] = set()
        for agent, observation in model.preview_observations():
            policy = agent.policy
            if agent.population in seen or not isinstance(policy, LLMPolicy) or policy.context is None:
                continue
            seen.add(agent.population)
            _add_samples(observation, agent.unique_id)
            library = policy.context.prompts
            render = library.render

            def record(template: str, _library: PromptLibrary = library, _render: Any = render, **context: Any) -> str:
                renders.append((_library, template, context))
                return _render(template, **context)

            library.render = record  # type: ignore[method-assign,assignment]
            try:
                policy.render_prompts(observation)
            finally:
                del library.render  # back to the class's method
            agents += 1
        model.finish()
    return renders, agents


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help="scenario names (default: every bundled one with LLM agents)")
    parser.add_argument("--repeat", type=int, default=40, help="timings of each render (the fastest is kept)")
    args = parser.parse_args()
    renders, agents = _renders(args.scenarios or sorted(shipped_scenarios()))
    if not renders:
        raise SystemExit("no scenario with LLM populations")
    # each render timed both ways, alternately: the shipped templates outside the sandbox (the
    # fast path) and everything in the sandbox (the reference, as before it existed)
    fastest: dict[bool, list[float]] = {True: [], False: []}
    for library, template, context in renders:
        texts = {}
        best = {True: float("inf"), False: float("inf")}
        for _ in range(args.repeat):
            for fast in (True, False):
                library.packaged_fast_path = fast
                started = time.perf_counter()
                texts[fast] = library.render(template, **context)
                best[fast] = min(best[fast], time.perf_counter() - started)
        library.packaged_fast_path = True
        if texts[True] != texts[False]:
            raise SystemExit(f"{template}: the fast path rendered another text than the sandbox")
        for fast in (True, False):
            fastest[fast].append(best[fast])
    for fast, label in ((True, "as run (shipped ones outside the sandbox)"), (False, "all in the sandbox (reference)")):
        mean = statistics.fmean(fastest[fast])
        print(
            f"{label}: {len(renders)} template renders ({agents} agents): {1e6 * mean:.1f} us per render "
            f"(fastest of {args.repeat}), {1e3 * sum(fastest[fast]) / agents:.2f} ms per agent's full set of prompts"
        )
    print(f"fast path / reference: {sum(fastest[True]) / sum(fastest[False]):.2f}x (same texts)")


if __name__ == "__main__":
    main()
