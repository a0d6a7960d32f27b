"""Prompt-lookup drafting on the local server (``local_server.DRAFT_NGRAM``): an answer's next tokens
are drafted from the prompt (an act's answer mostly repeats the prompt's example) and checked in one
batch; greedy decoding keeps only what the model would have chosen, so the answer is the same.

The real-model test needs the `local` extra and the bundled weights (skips without them, unless CI
requires them).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from mesa_llm.agents.action_schemas import example_call
from mesa_llm.llm import local_server
from mesa_llm.llm.local_server import DRAFT_NGRAM, LocalLLMServer
from tests.support.extras import missing_reason, required
from tests.support.local_model import refused_start_command, require_local_model


def test_the_server_drafts_from_the_prompt_unless_told_not_to(tmp_path, monkeypatch):
    command = refused_start_command(tmp_path, monkeypatch, threads=1, batch_threads=1)
    at = command.index("--draft-ngram")
    assert command[at + 1 : at + 3] == [str(DRAFT_NGRAM[0]), str(DRAFT_NGRAM[1])]
    assert "--draft-ngram" not in refused_start_command(tmp_path, monkeypatch, threads=1, batch_threads=1, draft_ngram=None)


def test_the_child_turns_on_ngram_drafting_with_its_sizes():
    reason = missing_reason("local", "xllamacpp")
    if reason is not None:
        if required("local"):
            pytest.fail(reason)
        pytest.skip(reason)
    import xllamacpp

    params = xllamacpp.CommonParams()
    assert local_server._draft_from_prompt(params, 3, 11)
    assert list(params.speculative.types) == [xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE]
    assert (params.speculative.ngram_simple.size_n, params.speculative.ngram_simple.size_m) == (3, 11)


def test_the_example_is_compact_json_as_the_local_grammar_answers():
    tool = {
        "type": "function",
        "function": {
            "name": "place_order",
            "parameters": {
                "type": "object",
                "properties": {"good": {"enum": ["widget"]}, "price": {"type": "number", "minimum": 1, "maximum": 200}},
                "required": ["good", "price"],
            },
        },
    }
    text = example_call([tool], 100.0)
    assert text == '{"actions":[{"tool":"place_order","arguments":{"good":"widget","price":100.0}}]}'
    assert text == json.dumps(json.loads(text), separators=(",", ":"))


SCHEMA = {
    "type": "object",
    "properties": {
        "actions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "tool": {"const": "place_order"},
                    "arguments": {
                        "type": "object",
                        "properties": {
                            "good": {"type": "string", "enum": ["widget"]},
                            "side": {"type": "string", "enum": ["buy"]},
                            "price": {"type": "number", "minimum": 1, "maximum": 200},
                        },
                        "required": ["good", "side", "price"],
                        "additionalProperties": False,
                    },
                },
                "required": ["tool", "arguments"],
                "additionalProperties": False,
            },
            "minItems": 1,
            "maxItems": 1,
        }
    },
    "required": ["actions"],
    "additionalProperties": False,
}
EXAMPLE = '{"actions":[{"tool":"place_order","arguments":{"good":"widget","side":"buy","price":100.0}}]}'


class _Request:
    purpose = "act"
    response_format = {"type": "json_schema", "json_schema": {"name": "actions", "schema": SCHEMA}}
    messages = [
        {"role": "system", "content": "You are a buyer in a simulated market. Answer with JSON only."},
        {"role": "user", "content": f"Answer with one JSON object, e.g. {EXAMPLE}\nYour value is 120. Place your order."},
    ]


def _answer(server: LocalLLMServer) -> tuple[str, dict[str, Any]]:
    request = _Request()
    body = {
        "model": "local",
        "messages": request.messages,
        "response_format": request.response_format,
        "max_tokens": 60,
        "temperature": 0,
        **server.request_fields(request),
    }
    http = urllib.request.Request(
        f"{server.api_base}/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(http, timeout=300) as response:
        answer = json.loads(response.read())
    return answer["choices"][0]["message"]["content"], dict(answer.get("timings") or {})


def test_a_drafted_answer_is_the_answer_decoded_token_by_token():
    require_local_model()
    with LocalLLMServer(draft_ngram=None) as plain:
        expected, plain_timings = _answer(plain)
    with LocalLLMServer() as drafting:
        drafted, timings = _answer(drafting)
    assert drafted == expected and json.loads(drafted)["actions"][0]["tool"] == "place_order"
    assert not plain_timings.get("draft_n")
    # the answer's skeleton came from the prompt's example: drafted, and most of it accepted
    assert timings.get("draft_n_accepted", 0) >= 10, timings
