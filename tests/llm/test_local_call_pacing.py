"""The local model gets one call at a time: two calls in flight share its threads (evaluating a prompt
is compute-bound) and each took twice as long for no more throughput; so one slot, the prompt cache
keeping the prompts it leaves behind. Never more calls in flight than slots (a queued request spends
its timeout)."""

from __future__ import annotations

from pathlib import Path

from mesa_llm.llm.local_server import LocalLLMServer
from mesa_llm.scenario import LLMSettings


def _local(tmp_path: Path, **kwargs: int) -> LocalLLMServer:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    return LocalLLMServer(gguf, port=1, **kwargs)


def test_one_call_in_flight_with_one_slot_and_a_prompt_cache_by_default(tmp_path: Path) -> None:
    local = _local(tmp_path)
    assert local.parallel == 1 and local.cache_ram_mib > 0
    assert local.settings_for("openai/local", LLMSettings())["concurrency"] == 1


def test_calls_in_flight_never_exceed_the_slots(tmp_path: Path) -> None:
    assert _local(tmp_path, parallel=2, concurrency=2).settings_for("openai/local", LLMSettings())["concurrency"] == 2
    assert _local(tmp_path, parallel=2, concurrency=4).settings_for("openai/local", LLMSettings())["concurrency"] == 2
    assert _local(tmp_path, parallel=1, concurrency=0).settings_for("openai/local", LLMSettings())["concurrency"] == 1
