"""The local server restores an agent's own earlier prompt from its prompt cache (llama.cpp's host
memory cache) after other agents' calls went through its one slot, so an act call evaluates what
changed since the agent's last call, not everything after the population's system prompt.

Needs the `local` extra and the bundled weights (skips without them, unless CI requires them).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from mesa_llm.llm.local_server import LocalLLMServer
from tests.support.local_model import require_local_model

SYSTEM = "You are a trader in a simulated market. Answer briefly."


class _Request:
    purpose = "act"
    response_format = None

    def __init__(self, user: str) -> None:
        self.messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def _agent_prompt(agent: int, step: int) -> str:
    # an agent's own stable part (like its tools), then what changes each step (its observation)
    stable = " ".join(f"Agent {agent} may trade good g{k} at prices {agent}..{agent + k}." for k in range(12))
    return f"{stable}\nStep {step}: the last price was {90 + step * 3 + agent}. What do you do?"


def _call(server: LocalLLMServer, user: str) -> dict[str, Any]:
    request = _Request(user)
    body = {"model": "local", "messages": request.messages, "max_tokens": 1, "temperature": 0, **server.request_fields(request)}
    http = urllib.request.Request(
        f"{server.api_base}/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(http, timeout=300) as response:
        return dict(json.loads(response.read())["timings"])


def test_an_agents_next_call_reuses_its_own_earlier_prompt_after_other_agents_calls():
    require_local_model()
    with LocalLLMServer() as server:
        first = _call(server, _agent_prompt(1, 1))
        other = _call(server, _agent_prompt(2, 1))  # the slot now holds agent 2's prompt
        again = _call(server, _agent_prompt(1, 2))
    stable = first["prompt_n"] - 25  # agent 1's own part (all but the last line), give or take
    assert other["cache_n"] < 60  # agent 2 shares only the system prompt with agent 1
    assert again["cache_n"] >= stable, (first, other, again)  # agent 1's prompt came back from the cache
    assert again["prompt_n"] < 40
