"""LLM agent benchmarks: concurrency against a slow server, and the framework's own overhead.

Run: ``python benchmarks/bench_llm.py``. Two numbers:

1. One step of 100 LLM agents (plan + act = 200 calls) through the real litellm HTTP path against
   the fake OpenAI-compatible server of ``tests/`` adding 200 ms per call, at concurrency 32.
   Ideal: ceil(200 / 32) x 0.2 s = 1.4 s (target: at most 1.3x that). The existing mesa-llm
   steps agents one after another: 100 x 2 x 0.2 s = 40 s.
2. Framework overhead per LLM agent-step with an instant in-process chat model: observation,
   Jinja rendering, parsing, validation, resolution and recording (target: at most 1 ms).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mesa_llm.llm import ChatRequest, ChatResponse  # noqa: E402
from mesa_llm.llm.testing import ScriptedChatModel, text_response, tool_call_response  # noqa: E402
from mesa_llm.model import MarketModel  # noqa: E402
from mesa_llm.scenario import ScenarioSpec, load_scenario  # noqa: E402


def _spec(agents: int, steps: int, concurrency: int, api_base: str | None = None) -> ScenarioSpec:
    half = agents // 2
    spec = load_scenario(
        "llm_double_auction",
        overrides=[
            f"steps={steps}",
            f"populations.0.count={half}",
            f"populations.1.count={agents - half}",
            "populations.2.count=0",
            "populations.3.count=0",
            "populations.0.params.plan_every=1",
            "populations.1.params.plan_every=1",
            f"llm.concurrency={concurrency}",
            "llm.max_cost_usd=null",
        ],
    )
    if api_base is not None:
        spec.llm = spec.llm.model_copy(update={"api_base": api_base, "timeout": 30.0})
    return spec


def instant(request: ChatRequest) -> ChatResponse:
    """An instant model that plans and bids (so orders, clearing and trades happen too)."""
    if request.purpose == "plan":
        return text_response("Bid under value, ask over cost.")
    text = "\n".join(m["content"] for m in request.messages if m["role"] == "user")
    side = "buy" if "values of your next units" in text else "sell"
    price = 99.0 if side == "buy" else 101.0
    if side == "buy" and "no units left" in text:
        return tool_call_response("wait", {})
    return tool_call_response("place_order", {"good": "widget", "side": side, "price": price, "quantity": 1})


def overhead(agents: int = 100, steps: int = 20) -> dict[str, Any]:
    """Seconds per LLM agent-step with an instant in-process model, recording on."""
    with tempfile.TemporaryDirectory() as out:
        model = MarketModel(_spec(agents, steps, 32), output_dir=out, chat_model=ScriptedChatModel(instant))
        start = time.perf_counter()
        model.run()
        elapsed = time.perf_counter() - start
    calls = model.usage.run.calls
    return {"agents": agents, "steps": steps, "calls": calls, "seconds": elapsed,
            "ms_per_agent_step": 1000 * elapsed / (agents * steps)}


def latency(agents: int = 100, latency_s: float = 0.2, concurrency: int = 32) -> dict[str, Any]:
    """Wall time of one step of ``agents`` LLM agents (plan + act) against a slow fake server."""
    import os

    from tests.fake_openai_server import FakeOpenAIServer

    os.environ.setdefault("OPENAI_API_KEY", "sk-fake-benchmark-key")
    with FakeOpenAIServer(latency_s=latency_s) as server, tempfile.TemporaryDirectory() as out:
        spec = _spec(agents, 2, concurrency, api_base=server.base_url)
        # building the model imports litellm and warms up its client code (not timed)
        model = MarketModel(spec, output_dir=out, llm_model="openai/fake-model")
        marks = [time.perf_counter()]
        counts = [server.request_count]

        def tick(step: int) -> None:
            marks.append(time.perf_counter())
            counts.append(server.request_count)

        model.run(progress=tick)  # the real code path, as `mesa-llm run` uses it
        times = [(marks[i + 1] - marks[i], counts[i + 1] - counts[i]) for i in range(2)]
        max_in_flight = server.max_in_flight
    (first, calls), (second, calls2) = times
    ideal = math.ceil(calls2 / concurrency) * latency_s
    return {"agents": agents, "calls": calls2, "first_step_s": first, "seconds": second, "ideal": ideal,
            "ratio": second / ideal, "max_in_flight": max_in_flight}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    o = overhead(args.agents)
    print(f"framework overhead: {o['ms_per_agent_step']:.3f} ms per LLM agent-step "
          f"({o['agents']} agents x {o['steps']} steps, {o['calls']} calls, {o['seconds']:.2f} s, recording on)")
    if not args.skip_latency:
        r = latency(args.agents)
        print(f"one step, {r['agents']} LLM agents, {r['calls']} calls at 200 ms, concurrency 32: "
              f"{r['seconds']:.2f} s (ideal {r['ideal']:.2f} s, ratio {r['ratio']:.2f}; sequential would be "
              f"{r['calls'] * 0.2:.0f} s); first step incl. connection set-up {r['first_step_s']:.2f} s; "
              f"most calls in flight {r['max_in_flight']}")


if __name__ == "__main__":
    main()
