"""A plan call to the local model is held to what its prompt asks, at most two short sentences
(`PLAN_GRAMMAR`, an llguidance grammar): unbounded, the 135M model repeated one sentence to the
160-token cap on every plan. Acts and repairs keep their JSON grammar; other servers get no grammar."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mesa_llm.agents.action_schemas import json_mode_format
from mesa_llm.llm.local_server import PLAN_GRAMMAR, LocalLLMServer
from mesa_llm.llm.types import ChatRequest

MESSAGES = [{"role": "system", "content": "rules"}, {"role": "user", "content": "step 1"}]
TOOLS = [{"type": "function", "function": {"name": "wait", "parameters": {"type": "object", "properties": {}}}}]

# the grammar is one regular expression; Python's re reads this subset the same way
PLAN = re.compile(PLAN_GRAMMAR.split("start: /", 1)[1].removesuffix("/"))


def _local(tmp_path: Path) -> LocalLLMServer:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    return LocalLLMServer(gguf, port=1, parallel=2)


@pytest.mark.requires("xllamacpp", extra="local")
def test_a_plan_request_carries_the_plan_grammar(tmp_path: Path) -> None:
    local = _local(tmp_path)
    plan = local.request_fields(ChatRequest(model="openai/local", messages=MESSAGES, purpose="plan"))
    assert plan["grammar"] == PLAN_GRAMMAR
    assert "response_format" not in plan  # a plan is text: nothing else changes
    for purpose in ("act", "repair"):
        fields = local.request_fields(
            ChatRequest(model="openai/local", messages=MESSAGES, response_format=json_mode_format(TOOLS, 2), purpose=purpose)
        )
        assert fields["grammar"] != PLAN_GRAMMAR and "%json" in fields["grammar"]
    # a free-text call that is no plan is left alone
    assert "grammar" not in local.request_fields(ChatRequest(model="openai/local", messages=MESSAGES, purpose="act"))


@pytest.mark.parametrize(
    "plan",
    [
        "Bid 145.86 for the first unit.",
        "I am agent 1 (llm_buyers_0). I will bid 103.5 now!",
        "Sell at 120. Lower the ask to 110 if nothing trades.",
    ],
)
def test_up_to_two_sentences_with_prices_are_a_plan(plan: str) -> None:
    assert PLAN.fullmatch(plan)


@pytest.mark.parametrize(
    "plan",
    [
        "One. Two. Three.",  # a third sentence
        "I will bid 103.5 now! Why wait? Prices fall.",
        "I will sell you 145.86 widgets tomorrow.137.4.1.1.1.1.1.1",  # what the model wrote with "." before any digit
        "I will not make any decisions." + " I will wait" * 10 + ".",  # a sentence past 100 characters
        "Bid 100",  # unfinished
        "",
    ],
)
def test_what_is_not_a_short_plan_is_refused(plan: str) -> None:
    assert not PLAN.fullmatch(plan)
