"""Prompt size per LLM call: tokens of the system prompt and of each plan / act call, per scenario.

Run: ``python benchmarks/bench_prompts.py [--steps 6] [SCENARIO ...]``. Every bundled scenario with
LLM populations runs with an in-process scripted model that behaves plausibly (plans in one
sentence, bids around its value, offers the middle of each issue's range, accepts late), so the
prompts hold offers, trades and messages like a real run's. Tokens are counted with
``litellm.token_counter`` (the gpt-4o tokenizer, offline) over the messages a call sends; the tool
schemas sent alongside are counted separately (``tools``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_MODE", "PRODUCTION")

from mesa_llm.llm import ChatRequest, ChatResponse  # noqa: E402
from mesa_llm.llm.testing import (  # noqa: E402
    ScriptedChatModel,
    text_response,
    tool_call_response,
    tool_calls_response,
)
from mesa_llm.model import MarketModel  # noqa: E402
from mesa_llm.scenario import load_scenario, shipped_scenarios  # noqa: E402

TOKENIZER_MODEL = "gpt-4o-mini"


def _tools_of(request: ChatRequest) -> set[str]:
    if request.tools:
        return {t["function"]["name"] for t in request.tools}
    return set()


def plausible(model_ref: dict[str, MarketModel]) -> Any:
    """A scripted responder that acts like a cautious trader or negotiator (deterministic)."""

    def respond(request: ChatRequest) -> ChatResponse:
        if request.purpose == "plan":
            return text_response("Trade only at a profit; move a little towards the other side each round.")
        model = model_ref["model"]
        tools = _tools_of(request)
        me = request.agent_id
        agent = next(a for a in model.traders if a.unique_id == me)
        if model.desk is not None and tools & {"make_offer", "accept_offer", "propose_settlement", "bid"}:
            for view in model.desk.views(me, model.steps + 1):
                allowed = view.get("allowed") or []
                sid = view["session_id"]
                if "accept_offer" in allowed and view.get("standing") and view["round"] >= 3:
                    return tool_call_response("accept_offer", {"session_id": sid, "offer_id": view["standing"][-1]["offer_id"]})
                terms = {}
                for issue in view["space"]["issues"]:
                    if issue["type"] == "categorical":
                        terms[issue["name"]] = issue["values"][0]
                    else:
                        mid = (issue["low"] + issue["high"]) / 2
                        terms[issue["name"]] = round(mid) if issue["type"] == "integer" else mid
                for name in ("make_offer", "propose_settlement"):
                    if name in allowed:
                        return tool_call_response(name, {"session_id": sid, "terms": terms})
                if "bid" in allowed and view.get("my_value"):
                    return tool_call_response("bid", {"session_id": sid, "price": float(view["my_value"]) * 0.8})
        if "place_order" in tools:
            calls = []
            for good, private in agent.private.items():
                side = "buy" if agent.role.may_buy and (private.values or not agent.role.may_sell) else "sell"
                if side == "buy" and not agent.role.may_buy or side == "sell" and not agent.role.may_sell:
                    continue
                price = model.exchange.goods[good].reference_price * model.money.tick_size
                calls.append(("place_order", {"good": good, "side": side, "price": round(price, 2), "quantity": 1}))
            if calls:
                return tool_calls_response(calls[:2])
            if agent.role.may_buy:
                good = next(iter(model.exchange.goods))
                price = model.exchange.goods[good].reference_price * model.money.tick_size
                return tool_call_response("place_order", {"good": good, "side": "buy", "price": round(price * 0.95, 2), "quantity": 1})
        return tool_call_response("wait", {})

    return respond


def measure(scenario: str, steps: int) -> dict[str, Any] | None:
    """Token counts of every LLM call of ``steps`` steps of ``scenario``."""
    import litellm

    spec = load_scenario(scenario, overrides=[f"steps={steps}", "llm.max_cost_usd=null"])
    if not any(p.wants_llm for p in spec.populations):
        return None
    ref: dict[str, MarketModel] = {}
    chat = ScriptedChatModel(plausible(ref))
    with tempfile.TemporaryDirectory() as out:
        model = MarketModel(spec, output_dir=out, chat_model=chat)
        ref["model"] = model
        model.run()
    roles = {a.unique_id: a.population for a in model.traders}
    system: dict[str, int] = {}
    per_purpose: dict[str, list[int]] = defaultdict(list)
    tools_tokens: list[int] = []
    system_texts: dict[int, set[str]] = defaultdict(set)
    population_texts: dict[str, set[str]] = defaultdict(set)
    for request in chat.requests:
        sys_msg = request.messages[0]["content"]
        system_texts[request.agent_id].add(sys_msg)
        population = roles[request.agent_id]
        population_texts[population].add(sys_msg)
        if population not in system:
            system[population] = litellm.token_counter(model=TOKENIZER_MODEL, text=sys_msg)
        per_purpose[request.purpose].append(litellm.token_counter(model=TOKENIZER_MODEL, messages=request.messages))
        if request.tools:
            tools_tokens.append(litellm.token_counter(model=TOKENIZER_MODEL, text=json.dumps(request.tools)))
    return {
        "scenario": scenario,
        "calls": len(chat.requests),
        "system": system,
        "stable_system": all(len(texts) == 1 for texts in system_texts.values()),
        "shared_system": all(len(texts) == 1 for texts in population_texts.values()),
        "purposes": {k: (statistics.mean(v), max(v), len(v)) for k, v in per_purpose.items()},
        "tools": statistics.mean(tools_tokens) if tools_tokens else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenarios", nargs="*")
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    names = args.scenarios or sorted(shipped_scenarios())
    print(f"tokens per call ({TOKENIZER_MODEL} tokenizer), {args.steps} steps, scripted plausible model")
    for name in names:
        r = measure(name, args.steps)
        if r is None:
            continue
        purposes = ", ".join(
            f"{p} mean {m:.0f} max {mx} (n={n})" for p, (m, mx, n) in sorted(r["purposes"].items())
        )
        systems = ", ".join(f"{pop} {t}" for pop, t in r["system"].items())
        print(f"{name}: {purposes}; tools schema mean {r['tools']:.0f}")
        print(f"    system prompt tokens: {systems}; identical every step: {r['stable_system']}; "
              f"shared by a population: {r['shared_system']}")


if __name__ == "__main__":
    main()
