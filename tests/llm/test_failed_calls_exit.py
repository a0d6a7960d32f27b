"""A run whose LLM calls mostly failed does not look like a success (issue 24): from a quarter of
failed calls on, ``mesa-llm run`` prints its summary, then one line saying how many failed, and
exits 1; below that it exits 0 as before."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mesa_llm.cli import app
from mesa_llm.testing.fake_server import FakeOpenAIServer, error_body


class EveryNthFails(FakeOpenAIServer):
    """Answers 400 (not retried) to every ``n``-th chat request, normally otherwise."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self._counter = itertools.count(1)
        self._count_lock = threading.Lock()

    def scripted_reply(self, request: dict[str, Any]) -> tuple[int, Any, dict[str, str]] | None:
        with self._count_lock:
            number = next(self._counter)
        return (400, error_body(400), {}) if number % self.n == 0 else None


def _run(server: FakeOpenAIServer, out: Path) -> Any:
    args = ["run", "llm_double_auction", "--steps", "3", "--model", "openai/fake-model",
            "--api-base", server.base_url, "--out", str(out), "--json",
            "--set", "llm.concurrency=1", "--set", "llm.max_attempts=1"]  # fmt: skip
    return CliRunner().invoke(app, args, env={"OPENAI_API_KEY": "sk-test-not-a-real-key", "COLUMNS": "300"})


@pytest.mark.parametrize(("n", "code"), [(2, 1), (4, 1), (5, 0)])
def test_a_quarter_of_failed_calls_exits_non_zero(tmp_path: Path, n: int, code: int) -> None:
    with EveryNthFails(n) as server:
        result = _run(server, tmp_path)
    summary = json.loads(result.stdout.strip().splitlines()[0])
    calls, failed = summary["llm"]["calls"], summary["llm"]["failed_calls"]
    assert failed >= 1 and (4 * failed >= calls) == bool(code)  # the case is on the intended side
    assert result.exit_code == code, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    if code:
        assert errors == [
            f"error: {failed} of {calls} LLM calls failed ({failed / calls:.0%}, a quarter or more) "
            f"(recording: {summary['recording']})"
        ]
        assert Path(summary["recording"]).is_file()  # what was recorded is kept
    else:
        assert errors == []
