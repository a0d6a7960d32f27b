"""With no terminal (a log file, CI, ``nohup``), ``mesa-llm run`` says each LLM call as it ends
(issue 24: a slow offline run showed nothing at all until it finished)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from mesa_llm.cli import app
from tests.fake_openai_server import FakeOpenAIServer

LINE = re.compile(r"^step (\d+) agent (\d+) (plan|act|repair): \d+\.\d s, \d+ prompt tokens$")


def _run(server: FakeOpenAIServer, out: Path, *extra: str) -> tuple[int, str, str]:
    args = ["run", "llm_double_auction", "--steps", "2", "--model", "openai/fake-model",
            "--api-base", server.base_url, "--out", str(out), *extra]  # fmt: skip
    result = CliRunner().invoke(app, args, env={"OPENAI_API_KEY": "sk-test-not-a-real-key", "COLUMNS": "300"})
    return result.exit_code, result.stdout, result.stderr


def test_one_line_per_finished_call_without_a_terminal(tmp_path: Path) -> None:
    with FakeOpenAIServer() as server:
        code, stdout, stderr = _run(server, tmp_path)
    assert code == 0, stderr
    recording = next(tmp_path.glob("*.jsonl"))
    events = [json.loads(line) for line in recording.read_text().splitlines()]
    calls = [(e["step"], e["agent_id"], e["content"]["purpose"]) for e in events if e["event_type"] == "llm_call"]
    shown = [LINE.match(line) for line in stderr.splitlines() if line.startswith("step ")]
    assert all(shown)
    assert sorted((int(m[1]), int(m[2]), m[3]) for m in shown if m) == sorted(calls)
    assert len(calls) >= 6


def test_json_output_stays_quiet(tmp_path: Path) -> None:
    with FakeOpenAIServer() as server:
        code, stdout, stderr = _run(server, tmp_path, "--json")
    assert code == 0
    assert not [line for line in stderr.splitlines() if line.startswith("step ")]
    assert json.loads(stdout)["llm"]["calls"] >= 6
