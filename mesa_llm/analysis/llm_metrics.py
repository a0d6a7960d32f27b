"""LLM metrics of a recording: calls, failures, tokens and cost, valid and invalid tool calls and
actions per LLM population, and what the LLM agents' decisions cost per agreement and per surplus.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from mesa_llm.analysis.loader import Recording
from mesa_llm.analysis.market_metrics import _replay
from mesa_llm.analysis.units import finite, to_units

__all__ = ["invalid_action_rate", "llm_agent_ids", "llm_costs", "llm_populations"]

def invalid_action_rate(rec: Recording) -> float | None:
    """Rejected actions / (applied actions + rejected actions); None when there were none."""
    rejected = rec.count("action_rejected")
    total = rec.count("action") + rejected
    return rejected / total if total else None


# ----------------------------------------------------------------------------- LLM costs


def llm_agent_ids(rec: Recording) -> set[int]:
    """Agents whose decisions came from an LLM: the header's ``llm`` policies, and any agent
    with a recorded LLM call."""
    ids: set[int] = set()
    agents = rec.agents
    if len(agents):
        ids.update(int(a) for a, policy in zip(agents["agent_id"], agents["policy"], strict=True) if policy == "llm")
    calls = rec.llm_calls
    if len(calls) and "agent_id" in calls:
        ids.update(int(a) for a in calls["agent_id"].dropna())
    return ids


def llm_populations(rec: Recording) -> dict[str, dict[str, int]]:
    """Per LLM population (the header's population labels): agents, calls, failed_calls,
    valid / invalid / repaired tool calls (repaired: valid calls of a repair round),
    actions_applied (other than wait), waits and rejected actions of its agents."""
    ids = llm_agent_ids(rec)
    agents = rec.agents
    population_of: dict[int, str] = {}
    if len(agents):
        for a, label in zip(agents["agent_id"], agents["population"], strict=True):
            if int(a) in ids:
                population_of[int(a)] = str(label)
    for a in ids - set(population_of):
        population_of[a] = "(unknown)"
    keys = ("agents", "calls", "failed_calls", "valid_tool_calls", "invalid_tool_calls",
            "repaired_tool_calls", "actions_applied", "waits", "rejected_actions")  # fmt: skip
    out: dict[str, dict[str, int]] = {}
    for label in population_of.values():
        out.setdefault(label, dict.fromkeys(keys, 0))["agents"] += 1
    calls = rec.llm_calls
    if len(calls):
        parsed = calls["parsed_tool_calls"] if "parsed_tool_calls" in calls else [None] * len(calls)
        for agent_id, purpose, error, tool_calls in zip(
            calls["agent_id"], calls["purpose"] if "purpose" in calls else [None] * len(calls), calls["error"], parsed,
            strict=True,
        ):
            label = population_of.get(int(agent_id)) if finite(agent_id) is not None else None
            if label is None:
                continue
            tally = out[label]
            tally["calls"] += 1
            tally["failed_calls"] += int(isinstance(error, str))
            for call in tool_calls if isinstance(tool_calls, list) else []:
                if isinstance(call, Mapping) and call.get("valid") is True:
                    tally["valid_tool_calls"] += 1
                    tally["repaired_tool_calls"] += int(purpose == "repair")
                else:
                    tally["invalid_tool_calls"] += 1
    for table, applied in ((rec.actions, True), (rec.rejections, False)):
        if not len(table):
            continue
        kinds = table["type"] if "type" in table else [None] * len(table)
        for agent_id, kind in zip(table["agent_id"], kinds, strict=True):
            label = population_of.get(int(agent_id)) if finite(agent_id) is not None else None
            if label is None:
                continue
            if not applied:
                out[label]["rejected_actions"] += 1
            elif kind == "wait":
                out[label]["waits"] += 1
            else:
                out[label]["actions_applied"] += 1
    return out


def llm_costs(rec: Recording) -> dict[str, Any]:
    """LLM usage of the run: calls, failed_calls, cached_calls, prompt/completion/total tokens,
    cost_usd, mean latency_s, models; cost and tokens per agreement and per currency unit of the
    LLM agents' own surplus (``realised_surplus``: their gains on induced values, value - price
    bought and price - cost sold; None without induced values); the LLM agents' tool calls
    (valid, invalid, repaired; ``invalid_tool_call_rate``) and ``invalid_action_rate`` over their
    actions only (None when they had none, e.g. every call failed); ``populations`` (see
    ``llm_populations``) and a warning per LLM population that applied no action."""
    calls = rec.llm_calls
    n = len(calls)
    prompt = int(pd.to_numeric(calls["prompt_tokens"], errors="coerce").fillna(0).sum()) if n else 0
    completion = (
        int(pd.to_numeric(calls["completion_tokens"], errors="coerce").fillna(0).sum()) if n else 0
    )
    cost = float(pd.to_numeric(calls["cost_usd"], errors="coerce").fillna(0).sum()) if n else 0.0
    failed = int(calls["error"].notna().sum()) if n else 0
    cached = int(calls["cached"].fillna(False).astype(bool).sum()) if n and "cached" in calls else 0
    latency = (
        pd.to_numeric(calls["latency_s"], errors="coerce").dropna() if n else pd.Series(dtype=float)
    )
    agreements = rec.count("agreement")
    ids = llm_agent_ids(rec)
    replay = _replay(rec)
    own = [replay.by_agent[a] for a in ids if a in replay.by_agent]
    # only the LLM agents' surplus: a ZI trader's gains must not make the LLM look cheap
    surplus = to_units(sum(own), rec.tick_size) if own else None
    tokens = prompt + completion
    populations = llm_populations(rec)
    valid = sum(p["valid_tool_calls"] for p in populations.values())
    invalid = sum(p["invalid_tool_calls"] for p in populations.values())
    applied = sum(p["actions_applied"] + p["waits"] for p in populations.values())
    rejected = sum(p["rejected_actions"] for p in populations.values())
    steps = rec.final_step
    warnings = [
        f"LLM population {label!r} ({p['agents']} agents) applied no action in {steps} steps "
        f"({p['calls']} calls, {p['failed_calls']} failed, {p['invalid_tool_calls']} invalid tool calls)"
        for label, p in populations.items()
        if not p["actions_applied"] and steps
    ]
    return {
        "calls": n,
        "failed_calls": failed,
        "cached_calls": cached,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": tokens,
        "cost_usd": round(cost, 6),
        "mean_latency_s": float(latency.mean()) if len(latency) else None,
        "models": sorted({str(m) for m in calls["model"].dropna()}) if n else [],
        "agents": len(ids),
        "agreements": agreements,
        "cost_per_agreement": cost / agreements if agreements and n else None,
        "tokens_per_agreement": tokens / agreements if agreements and n else None,
        "realised_surplus": surplus,
        "cost_per_surplus": cost / surplus if n and surplus is not None and surplus > 0 else None,
        "tokens_per_surplus": tokens / surplus
        if n and surplus is not None and surplus > 0
        else None,
        "valid_tool_calls": valid,
        "invalid_tool_calls": invalid,
        "repaired_tool_calls": sum(p["repaired_tool_calls"] for p in populations.values()),
        "invalid_tool_call_rate": invalid / (valid + invalid) if valid + invalid else None,
        "actions_applied": sum(p["actions_applied"] for p in populations.values()),
        "invalid_action_rate": rejected / (applied + rejected) if applied + rejected else None,
        "populations": populations,
        "warnings": warnings,
    }


