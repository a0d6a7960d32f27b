"""What the LLM agents of a recording said and did, as samples a reader can judge: plans,
messages, one prompt/answer pair per population, why calls failed (with counts) and which actions
were invalid and why (with counts). A model writing gibberish shows here, not only in counts.

Texts are returned as they were recorded, cut to a length (the report escapes them); nothing here
is sent anywhere or interpreted.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pandas as pd

from mesa_llm.analysis.llm_metrics import llm_agent_ids
from mesa_llm.analysis.loader import Recording

__all__ = ["SAMPLES", "TEXT_LIMIT", "excerpt", "llm_content", "shared_lines", "truncate"]

#: plans and messages sampled
SAMPLES = 5
#: characters of a prompt, answer, plan or message kept
TEXT_LIMIT = 600
#: characters of a failure reason or rejection reason kept
REASON_LIMIT = 200


def truncate(text: Any, limit: int = TEXT_LIMIT) -> str:
    """``text`` as a string of at most ``limit`` characters, saying how much was left out."""
    value = "" if text is None or (isinstance(text, float) and pd.isna(text)) else str(text)
    if len(value) <= limit:
        return value
    return value[:limit] + f" ... ({len(value) - limit:,} more characters)"


def _names(rec: Recording) -> tuple[dict[Any, str], dict[Any, str]]:
    names: dict[Any, str] = {}
    populations: dict[Any, str] = {}
    for a in rec.header.get("agents") or []:
        if isinstance(a, Mapping):
            names[a.get("agent_id")] = str(a.get("name") or a.get("agent_id"))
            populations[a.get("agent_id")] = str(a.get("population") or "")
    return names, populations


def _prompt(request: Any) -> str:
    """The last user message of a recorded request (what the agent was asked this call)."""
    messages = request.get("messages") if isinstance(request, Mapping) else None
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts
                return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
            return str(content or "")
    return ""


def shared_lines(prompts: list[str]) -> frozenset[str]:
    """The lines every one of ``prompts`` has (a population's instructions and tool list, for its
    prompts of one purpose); none with fewer than two different prompts."""
    if len(set(prompts)) < 2:
        return frozenset()
    common = set(prompts[0].split("\n"))
    for prompt in prompts[1:]:
        common.intersection_update(prompt.split("\n"))
    return frozenset(line for line in common if line.strip())


def excerpt(prompt: str, shared: frozenset[str], limit: int = TEXT_LIMIT) -> str:
    """A prompt cut to ``limit`` characters. When it is longer than that, each run of consecutive
    lines that every prompt of its kind has (``shared``) and that holds at least a quarter of
    ``limit`` characters is left out and counted, so what is shown is what this agent was told
    that the others were not (who it is, its observation), not only the common instructions."""
    if len(prompt) <= limit or not shared:
        return truncate(prompt, limit)
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        size = sum(len(line) + 1 for line in run)
        if size >= limit // 4:
            lines = f"{len(run)} line" + ("s" if len(run) > 1 else "")
            out.append(f"[{lines} ({size:,} characters) every such prompt has, left out]")
        else:
            out.extend(run)
        run.clear()

    for line in prompt.split("\n"):
        if line in shared:
            run.append(line)
            continue
        flush()
        out.append(line)
    flush()
    return truncate("\n".join(out), limit)


def _answer(response: Any) -> str:
    """A recorded answer: its text, then each tool call as name(arguments)."""
    if not isinstance(response, Mapping):
        return ""
    parts = [str(response["content"])] if response.get("content") else []
    for call in response.get("tool_calls") or []:
        if isinstance(call, Mapping):
            arguments = call.get("arguments")
            text = arguments if isinstance(arguments, str) else json.dumps(arguments, default=str)
            parts.append(f"{call.get('name')}({text})")
    return "\n".join(parts)


def _first_line(text: Any) -> str:
    value = str(text or "").strip()
    return value.splitlines()[0] if value else ""


def llm_content(rec: Recording, *, samples: int = SAMPLES, limit: int = TEXT_LIMIT) -> dict[str, list[dict[str, Any]]]:
    """Samples of the run's LLM activity (the module docstring), each a list of rows:

    - ``plans``: step, agent, text (the first ``samples`` plans);
    - ``messages``: step, sender, to, text (the first ``samples`` messages);
    - ``exchanges``: population, agent, step, purpose, prompt, answer: one call per population
      that had LLM calls (its first answered ``act`` call, else its first answered call); a long
      prompt leaves out the runs of lines every answered prompt of its population and purpose has
      (`excerpt`);
    - ``failures``: kind, reason, calls (failed calls grouped by kind and first line, most first);
    - ``invalid_actions``: action, reason, count, example (the LLM agents' rejected actions
      grouped by action and reason, most first).
    """
    names, populations = _names(rec)
    out: dict[str, list[dict[str, Any]]] = {"plans": [], "messages": [], "exchanges": [], "failures": [], "invalid_actions": []}
    plans = rec.table("plan")
    if len(plans):
        for step, agent, text in plans[["step", "agent_id", "text"]].head(samples).itertuples(index=False):
            out["plans"].append({"step": int(step), "agent": names.get(agent, str(agent)), "text": truncate(text, limit)})
    messages = rec.messages
    if len(messages):
        for row in messages.head(samples).to_dict("records"):
            to = "everyone" if row.get("broadcast") else ", ".join(names.get(r, str(r)) for r in row.get("recipient_ids") or [])
            out["messages"].append(
                {"step": int(row["step"]), "sender": names.get(row.get("sender_id"), str(row.get("sender_id"))),
                 "to": to or str(row.get("channel") or ""), "text": truncate(row.get("text"), limit)}
            )  # fmt: skip
    calls = rec.table("llm_call")
    if len(calls):
        chosen: dict[str, dict[str, Any]] = {}
        prompts: dict[tuple[str, str], list[str]] = {}  # (population, purpose) -> its prompts
        failures: Counter[tuple[str, str]] = Counter()
        for row in calls.to_dict("records"):
            error = row.get("error")
            if isinstance(error, str) and error:
                kind = str(row.get("error_kind") or "unknown")
                failures[(kind, truncate(_first_line(error), REASON_LIMIT))] += 1
                continue
            population = populations.get(row.get("agent_id"), "")
            prompt = _prompt(row.get("request"))
            prompts.setdefault((population, str(row.get("purpose") or "")), []).append(prompt)
            answer = _answer(row.get("response"))
            if not answer:
                continue
            current = chosen.get(population)
            if current is None or (current["purpose"] != "act" and row.get("purpose") == "act"):
                chosen[population] = {
                    "population": population, "agent": names.get(row.get("agent_id"), str(row.get("agent_id"))),
                    "step": int(row["step"]), "purpose": str(row.get("purpose") or ""),
                    "prompt": prompt, "answer": truncate(answer, limit),
                }  # fmt: skip
        for population, x in chosen.items():
            x["prompt"] = excerpt(x["prompt"], shared_lines(prompts[(population, x["purpose"])]), limit)
        out["exchanges"] = list(chosen.values())
        out["failures"] = [
            {"kind": kind, "reason": reason, "calls": n} for (kind, reason), n in failures.most_common()
        ]
    rejected = rec.rejections
    if len(rejected):  # the LLM agents' own (rule-based agents' rejections are not the model's doing)
        rejected = rejected[rejected["agent_id"].isin(llm_agent_ids(rec))]
    if len(rejected):
        groups: Counter[tuple[str, str]] = Counter()
        example: dict[tuple[str, str], str] = {}
        for action, reason, arguments in rejected[["type", "reason", "arguments"]].itertuples(index=False):
            key = (str(action), truncate(_first_line(reason), REASON_LIMIT))
            groups[key] += 1
            example.setdefault(key, truncate(arguments if isinstance(arguments, str) else json.dumps(arguments, default=str), 160))
        out["invalid_actions"] = [
            {"action": a, "reason": r, "count": n, "example": example[(a, r)]} for (a, r), n in groups.most_common()
        ]
    return out
