"""JSON-mode answers of the local model come compact: a request to a local server this process
started carries its JSON schema as an llguidance grammar with ``whitespace_flexible: false``
(llama.cpp's own ``response_format`` conversion keeps the indentation a small model pretty-prints,
40% of an act's tokens, and ignores numbers' bounds); other requests are left as they are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesa_llm.agents.action_schemas import json_mode_format
from mesa_llm.llm.local_server import LocalLLMServer
from mesa_llm.llm.types import ChatRequest

pytestmark = pytest.mark.requires("xllamacpp", extra="local")

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "place_order",
            "parameters": {
                "type": "object",
                "properties": {"price": {"type": "number", "minimum": 1, "maximum": 200}},
                "required": ["price"],
                "additionalProperties": False,
            },
        },
    }
]


def _local(tmp_path: Path) -> LocalLLMServer:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    return LocalLLMServer(gguf, port=1, parallel=2)


def _request(response_format: dict | None, tools: list | None = None) -> ChatRequest:
    messages = [{"role": "system", "content": "rules"}, {"role": "user", "content": "step 1"}]
    return ChatRequest(model="openai/local", messages=messages, response_format=response_format, tools=tools)


def test_a_json_schema_goes_as_a_compact_llguidance_grammar(tmp_path: Path) -> None:
    fmt = json_mode_format(TOOLS, 2)
    fields = _local(tmp_path).request_fields(_request(fmt))
    assert fields["response_format"] == {"type": "text"}  # the server takes the grammar, not both
    grammar = fields["grammar"]
    assert grammar.startswith("%llguidance")
    schema = json.loads(grammar.split("%json", 1)[1])
    assert schema.pop("x-guidance") == {"whitespace_flexible": False}
    assert schema == fmt["json_schema"]["schema"]  # the same schema otherwise: the same answers allowed
    assert fields["cache_prompt"] is True and fields["id_slot"] == 0


@pytest.mark.parametrize(
    "response_format",
    [None, {"type": "json_object"}, {"type": "json_schema", "json_schema": {"name": "x"}}, {"type": "text"}],
)
def test_no_json_schema_no_grammar(tmp_path: Path, response_format: dict | None) -> None:
    fields = _local(tmp_path).request_fields(_request(response_format, tools=TOOLS))
    assert "grammar" not in fields and "response_format" not in fields
    assert fields["cache_prompt"] is True


def test_a_converter_without_llguidance_leaves_the_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import xllamacpp

    monkeypatch.setattr(xllamacpp, "json_schema_to_grammar", lambda text: 'root ::= "{}"')
    fields = _local(tmp_path).request_fields(_request(json_mode_format(TOOLS, 2)))
    assert "grammar" not in fields and "response_format" not in fields
