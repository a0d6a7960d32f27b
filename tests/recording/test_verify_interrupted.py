"""``replay --verify`` on a run cut short: Ctrl-C (SIGINT) verifies like ``kill -9``, the balances
compared like with like (both at the last complete step), and a verify writes nothing unless
``--out`` is given (never a ``recordings/`` folder under the current directory)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mesa_llm.replay import replay
from mesa_llm.simulation import Simulation

ROOT = Path(__file__).resolve().parents[2]


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}


def _interrupted_run(tmp_path: Path, sig: int) -> Path:
    """A real ``mesa-llm run`` in a subprocess, sent ``sig`` once its recording holds 20 steps."""
    out = tmp_path / "runs"
    # `python -m mesa_llm`, with Python's own Ctrl-C handler installed first: when pytest itself
    # runs as a background job of a non-interactive shell (`.ci/run ... &`, as a CI harness may
    # start it), POSIX shells start it with SIGINT ignored, every child inherits that and Python
    # keeps an inherited SIG_IGN; a user's foreground run has the default handler
    start = (
        "import signal, runpy; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "runpy.run_module('mesa_llm', run_name='__main__', alter_sys=True)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", start, "run", "double_auction", "--steps", "100000", "--out", str(out)],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            files = list(out.glob("*.jsonl")) if out.is_dir() else []
            if files and files[0].read_text().count('"event_type":"step_end"') >= 20:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        else:
            pytest.fail("the run wrote no 20 steps in 240 s")
        proc.send_signal(sig)
        _stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL), stderr
    [recording] = out.glob("*.jsonl")
    return recording


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl_c", "kill_9"])
def test_a_cut_run_verifies_from_the_cli_and_the_verify_writes_nothing(tmp_path: Path, sig: int) -> None:
    recording = _interrupted_run(tmp_path, sig)
    if sig == signal.SIGINT:
        end = _events(recording)[-1]
        assert end["event_type"] == "simulation_end" and end["content"]["status"] == "interrupted"
        assert any(e["event_type"] == "agent_state" for e in _events(recording))  # closing balances
    here = tmp_path / "elsewhere"
    here.mkdir()
    before = sorted(p.name for p in tmp_path.rglob("*"))
    done = subprocess.run(
        [sys.executable, "-m", "mesa_llm", "replay", "--verify", str(recording)],
        cwd=here, env=_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "DIFFERENT" not in done.stdout and "differ" not in done.stderr
    assert list(here.iterdir()) == []  # no ./recordings/replays/ copy
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert "recording:" not in done.stdout


def test_verify_with_out_keeps_the_replay_there(tmp_path: Path) -> None:
    with Simulation.from_scenario("double_auction", seed=3, out=tmp_path / "runs", steps=6) as sim:
        sim.run()
    assert sim.recording_path is not None
    result = replay(sim.recording_path, verify=True, output_dir=tmp_path / "kept")
    assert result.recording is not None and result.recording.is_file()
    assert result.recording.parent == tmp_path / "kept" / "replays"
    assert result.final_state_matches is True
    gone = replay(sim.recording_path, verify=True)
    assert gone.recording is None and gone.final_state_matches is True and gone.divergence is None


def _cut(tmp_path: Path, at: str, step: int) -> Path:
    """A double-auction run stopped by Ctrl-C at the first ``at`` event of ``step`` (in-process)."""

    def interrupt(event: Any) -> None:
        if event.step == step:
            raise KeyboardInterrupt

    sim = Simulation.from_scenario("double_auction", seed=5, out=tmp_path / "runs", steps=40)
    sim.subscribe(at, interrupt)
    with pytest.raises(KeyboardInterrupt), sim:
        sim.run()
    assert sim.recording_path is not None
    return sim.recording_path


def test_ctrl_c_between_steps_compares_the_balances_at_the_cut(tmp_path: Path) -> None:
    recording = _cut(tmp_path, "step_start", 7)
    events = _events(recording)
    assert events[-1]["content"]["status"] == "interrupted"
    assert max(e["step"] for e in events if e["event_type"] == "step_end") == 6
    assert {e["step"] for e in events if e["event_type"] == "agent_state"} == {7}  # the closing balances
    result = replay(recording, verify=True)
    assert result.steps == 6 and result.divergence is None
    assert result.final_state_matches is True
    # the comparison is real: a closing balance off by one cent fails the verify
    tampered = [dict(e) for e in events]
    last_state = max(i for i, e in enumerate(tampered) if e["event_type"] == "agent_state")
    tampered[last_state] = {**tampered[last_state], "content": {**tampered[last_state]["content"]}}
    tampered[last_state]["content"]["cash"] = round(tampered[last_state]["content"]["cash"] + 0.01, 2)
    bad = replay(_write(tmp_path / "tampered.jsonl", tampered), verify=True)
    assert bad.final_state_matches is False
    assert bad.divergence is not None and "final balances differ" in str(bad.divergence)


def test_ctrl_c_after_a_trade_of_the_cut_step_is_not_a_difference(tmp_path: Path) -> None:
    recording = _cut(tmp_path, "trade", 2)
    events = _events(recording)
    assert [e["step"] for e in events if e["event_type"] == "trade"][-1] == 2
    assert max(e["step"] for e in events if e["event_type"] == "step_end") == 1
    result = replay(recording, verify=True)
    assert result.steps == 1 and result.divergence is None
    assert result.final_state_matches is None  # a mid-step state no replay reaches: not compared
    assert any("cut during step 2" in note and "trade" in note for note in result.notes)


def test_the_replay_of_a_cut_run_closes_with_the_balances_of_its_last_step(tmp_path: Path) -> None:
    recording = _cut(tmp_path, "step_start", 4)
    result = replay(recording, output_dir=tmp_path / "out")
    assert result.recording is not None
    replayed = _events(result.recording)
    states = [e for e in replayed if e["event_type"] == "agent_state"]
    original = [e for e in _events(recording) if e["event_type"] == "agent_state"]
    assert len(states) == len(original) and {e["step"] for e in states} == {3}
    assert [(e["agent_id"], e["content"]["cash"], e["content"]["holdings"]) for e in states] == [
        (e["agent_id"], e["content"]["cash"], e["content"]["holdings"]) for e in original
    ]
