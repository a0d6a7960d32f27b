"""What a hostile LLM costs a run: prompt and recording sizes, requests, usage, per server mode.

Run: ``python benchmarks/bench_hostile_llm.py [MODE ...]``. For each mode of
``tests/adversarial_llm_server.py`` it runs ``python -m mesa_llm run llm_double_auction --steps 3``
through litellm against that server (in a subprocess, with a wall-clock limit) and prints: the exit
code, seconds, HTTP requests the server got, the largest prompt (the JSON of one ``llm_call``
request's messages), the recording's size, and the run's token totals. Target: the largest prompt
stays under 64 KB and the recording small whatever the model answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.adversarial_llm_server import MODES, AdversarialLLMServer  # noqa: E402

#: the answer modes (the failing-provider modes and the rarer malformed ones are for the tests)
DEFAULT_MODES = tuple(
    m for m in MODES if m not in ("fractional_usage", "unconvertible_200", "unauthorized", "forbidden", "server_error", "hang")
)


def largest_prompt(recording: Path) -> int:
    """The size in characters of the largest ``llm_call`` request's messages in a JSONL recording."""
    largest = 0
    with recording.open(encoding="utf-8") as fh:
        for line in fh:
            if '"llm_call"' not in line:
                continue
            event = json.loads(line)
            if event.get("event_type") == "llm_call":
                messages = event["content"]["request"]["messages"]
                largest = max(largest, len(json.dumps(messages, ensure_ascii=False)))
    return largest


def run_mode(mode: str, steps: int = 3, limit_s: float = 600.0) -> dict[str, Any]:
    """Run the scenario against a server in ``mode``; the numbers of that run."""
    with tempfile.TemporaryDirectory() as tmp, AdversarialLLMServer(mode) as server:
        started = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable, "-m", "mesa_llm", "run", "llm_double_auction", "--steps", str(steps),
                "--model", "openai/fake-model", "--api-base", server.base_url, "--out", tmp, "--json",
                "--check-invariants",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=limit_s,
            env={**os.environ, "OPENAI_API_KEY": "sk-test-not-a-real-key"},
        )
        seconds = time.perf_counter() - started
        files = sorted(Path(tmp).glob("*.jsonl"))
        summary: dict[str, Any] = {}
        if proc.stdout.strip().startswith("{"):
            summary = json.loads(proc.stdout)
        llm = summary.get("llm") or {}
        return {
            "mode": mode,
            "exit": proc.returncode,
            "seconds": round(seconds, 1),
            "requests": server.request_count,
            "largest_prompt_chars": largest_prompt(files[0]) if files else None,
            "recording_bytes": files[0].stat().st_size if files else None,
            "prompt_tokens": llm.get("prompt_tokens"),
            "completion_tokens": llm.get("completion_tokens"),
            "stderr_tail": proc.stderr.strip().splitlines()[-1:] if proc.stderr.strip() else [],
        }


def main(argv: list[str]) -> None:
    modes = argv or list(DEFAULT_MODES)
    for mode in modes:
        print(json.dumps(run_mode(mode)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
