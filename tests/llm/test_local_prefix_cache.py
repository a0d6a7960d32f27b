"""llama.cpp prompt-prefix reuse for the local model, and only for it.

Requests to a local server this process started carry ``cache_prompt: true`` and an ``id_slot``
per system text (one population's prompts share their system prompt, the stable prefix), so the
slot still holds that prefix; requests to any other server (a provider, a server a scenario names)
carry neither field.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from mesa_llm import Simulation
from mesa_llm.llm import local_server
from mesa_llm.llm.local_server import LocalLLMServer
from mesa_llm.testing.fake_server import FakeOpenAIServer
from tests.support.chat_scripts import trader
from tests.support.local_model import refused_start_command

OVERRIDES = ["steps=2", "populations.2.count=0", "populations.3.count=0", "llm.concurrency=2"]


@pytest.fixture()
def server():
    with FakeOpenAIServer(trader) as fake:
        yield fake


def _run(api_base: str, out: Path) -> None:
    with Simulation.from_scenario(
        "llm_double_auction", overrides=OVERRIDES, model="openai/local", api_base=api_base, out=out
    ) as sim:
        sim.run(2)


def _chat_requests(server: FakeOpenAIServer) -> list[dict[str, Any]]:
    # the run's calls: the tool-mode probe has no system message
    return [r for r in server.requests if r["messages"][0]["role"] == "system"]


def test_a_local_server_gets_cache_prompt_and_one_slot_per_population(server, tmp_path, monkeypatch):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    local = LocalLLMServer(gguf, port=server.port, parallel=2)
    assert local.api_base == server.base_url
    monkeypatch.setitem(local_server._RUNNING, local.api_base, local)  # as start() registers it
    _run(server.base_url, tmp_path)
    requests = _chat_requests(server)
    assert len(requests) == 6 + 2 * 6  # six plans (step 1 of plan_every 3), six acts per step
    assert all(r.get("cache_prompt") is True for r in requests)
    slots: dict[str, set[int]] = defaultdict(set)
    for r in requests:
        slots[r["messages"][0]["content"]].add(r["id_slot"])
    assert len(slots) == 2  # buyers' and sellers' system prompts
    assert sorted(next(iter(s)) for s in slots.values()) == [0, 1]  # each population its own slot
    assert all(len(s) == 1 for s in slots.values())  # and always the same one


def test_any_other_server_gets_no_llama_cpp_fields(server, tmp_path):
    _run(server.base_url, tmp_path)
    requests = _chat_requests(server)
    assert requests
    assert not any("cache_prompt" in r or "id_slot" in r for r in requests)


def test_a_stopped_server_is_forgotten(tmp_path):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    local = LocalLLMServer(gguf, port=1)
    local_server._RUNNING[local.api_base] = local
    try:
        assert local_server.request_fields_for(local.api_base) is not None
    finally:
        local.stop()
    assert local_server.request_fields_for(local.api_base) is None
    assert local_server.request_fields_for(None) is None


def test_slots_are_handed_out_round_robin_by_system_text(tmp_path):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    local = LocalLLMServer(gguf, port=1, parallel=2)

    class Req:
        def __init__(self, system: str | None) -> None:
            self.messages = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": "x"}
            ]

    assert [local.request_fields(Req(s)).get("id_slot") for s in ("a", "b", "a", "c", "b", None)] == [
        0, 1, 0, 0, 1, None,
    ]  # fmt: skip
    assert local.request_fields(Req(None)) == {"cache_prompt": True}


@pytest.mark.parametrize(("cores", "threads"), [(1, 1), (2, 1), (3, 2), (4, 3), (16, 4)])
def test_the_server_leaves_a_core_free(tmp_path, monkeypatch, cores, threads):
    # llama.cpp's threads wait for each other every token: on 2 busy cores 2 threads decoded ~10x
    # slower than 1 (measured at load 12), so the default leaves a core to the simulation
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(local_server.os, "cpu_count", lambda: cores)
    assert LocalLLMServer(gguf, port=1).threads == threads
    assert LocalLLMServer(gguf, port=1, threads=3).threads == 3


@pytest.mark.parametrize(
    ("cores", "load", "batch"),
    [(2, 0.2, 2), (2, 1.49, 2), (2, 1.5, 1), (2, 6.0, 1), (4, 3.49, 4), (4, 3.5, 3), (16, 0.0, 4), (1, 0.0, 1)],
)
def test_prompts_are_evaluated_on_every_core_the_machine_has_to_spare(tmp_path, monkeypatch, cores, load, batch):
    # a prompt's evaluation splits across cores (3-step run at load ~1 on 2 cores: 74 s vs 114 s),
    # but on busy cores the threads' barrier stalls it: a busy machine keeps the decoding threads
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(local_server.os, "cpu_count", lambda: cores)
    monkeypatch.setattr(local_server.os, "getloadavg", lambda: (load, load, load))
    server = LocalLLMServer(gguf, port=1)
    assert server.batch_threads == batch
    assert LocalLLMServer(gguf, port=1, batch_threads=3).batch_threads == 3


def test_no_load_average_keeps_the_decoding_threads(tmp_path, monkeypatch):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(local_server.os, "cpu_count", lambda: 4)

    def unavailable() -> tuple[float, float, float]:
        raise OSError("no load average")

    monkeypatch.setattr(local_server.os, "getloadavg", unavailable)
    assert LocalLLMServer(gguf, port=1).batch_threads == 3


def test_the_server_is_started_with_its_prompt_threads(tmp_path, monkeypatch):
    command = refused_start_command(tmp_path, monkeypatch, threads=1, batch_threads=2)
    assert command[command.index("--threads") + 1] == "1" and command[command.index("--threads-batch") + 1] == "2"
