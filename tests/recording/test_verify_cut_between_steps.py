"""A run interrupted between two steps closes with its balances after the last ``step_end``: a
verify compares them at the cut, not as events of that step (this made Ctrl-C'd runs fail to
verify when the signal landed between steps)."""

from __future__ import annotations

import json
from pathlib import Path

from mesa_llm import Simulation
from mesa_llm.replay import replay


def test_a_run_closed_between_steps_verifies(tmp_path: Path) -> None:
    with Simulation.from_scenario("double_auction", seed=4, out=tmp_path / "runs", steps=40) as sim:
        for _ in range(7):
            sim.step()
        sim.close("interrupted")
    path = Path(sim.recording_path)
    events = [json.loads(line) for line in path.read_text().splitlines()]
    kinds = [(e["event_type"], e["step"]) for e in events]
    last_end = max(i for i, k in enumerate(kinds) if k == ("step_end", 7))
    assert ("agent_state", 7) in kinds[last_end + 1 :]  # the closing balances come after step 7 ended
    result = replay(path, verify=True, output_dir=tmp_path / "replay")
    assert result.divergence is None, result.divergence
    assert result.steps == 7 and result.final_state_matches is True


def test_a_changed_closing_balance_is_still_caught(tmp_path: Path) -> None:
    with Simulation.from_scenario("double_auction", seed=4, out=tmp_path / "runs", steps=40) as sim:
        for _ in range(5):
            sim.step()
        sim.close("interrupted")
    path = Path(sim.recording_path)
    lines = path.read_text().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        event = json.loads(lines[i])
        if event["event_type"] == "agent_state":
            event["content"]["cash"] = event["content"]["cash"] + 1
            lines[i] = json.dumps(event, separators=(",", ":"))
            break
    path.write_text("\n".join(lines) + "\n")
    result = replay(path, verify=True, output_dir=tmp_path / "replay")
    assert result.final_state_matches is False
