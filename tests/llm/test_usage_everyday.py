"""The everyday usage report (int token counts in range, a finite non-negative float cost) is judged at once
(`mesa_llm.llm.usage`): the same answers as the full checks, at the edges of every range."""

from __future__ import annotations

import math
from typing import Any

import pytest

from mesa_llm.llm.types import ChatResponse, Usage
from mesa_llm.llm.usage import MAX_TOKENS_PER_CALL, checked_usage, usage_problem

CASES: list[tuple[Any, Any, Any, str | None]] = [
    (0, 0, 0.0, None),
    (12, 3, 0.25, None),
    (MAX_TOKENS_PER_CALL, MAX_TOKENS_PER_CALL, 0.0, None),
    (MAX_TOKENS_PER_CALL + 1, 3, 0.0, "prompt_tokens is absurd"),
    (3, MAX_TOKENS_PER_CALL + 1, 0.0, "completion_tokens is absurd"),
    (-1, 3, 0.0, "prompt_tokens is negative"),
    (3, -1, 0.0, "completion_tokens is negative"),
    (True, 3, 0.0, "prompt_tokens is not a number"),
    (3.0, 3, 0.0, None),
    (3.5, 3, 0.0, "prompt_tokens is not an integer"),
    (3, 3, -0.5, "cost_usd is not a non-negative number"),
    (3, 3, math.nan, "cost_usd is not a non-negative number"),
    (3, 3, math.inf, "cost_usd is not a non-negative number"),
    (3, 3, -0.0, None),
    (3, 3, 0, None),
    (3, 3, "0.1", "cost_usd is not a non-negative number"),
]


@pytest.mark.parametrize(("prompt", "completion", "cost", "expected"), CASES)
def test_usage_problem_at_the_edges(prompt: Any, completion: Any, cost: Any, expected: str | None) -> None:
    """None for a countable report, else the reason naming the first bad number."""
    response = ChatResponse(content="", tool_calls=[], usage=Usage(prompt, completion), model="m", cost_usd=cost)
    found = usage_problem(response)
    if expected is None:
        assert found is None
    else:
        assert found is not None and found.startswith(f"usage not counted: {expected}")


@pytest.mark.parametrize(("prompt", "completion", "cost", "expected"), [c for c in CASES if "cost" not in (c[3] or "")])
def test_checked_usage_at_the_edges(prompt: Any, completion: Any, cost: Any, expected: str | None) -> None:
    """A provider's numbers: kept when countable, else zero tokens flagged invalid with the same reason."""
    usage = checked_usage(prompt, completion)
    if expected is None:
        assert usage.invalid is None and (usage.prompt_tokens, usage.completion_tokens) == (int(prompt), int(completion))
    else:
        assert usage.invalid is not None and usage.invalid.startswith(f"usage not counted: {expected}")
        assert (usage.prompt_tokens, usage.completion_tokens) == (0, 0)
