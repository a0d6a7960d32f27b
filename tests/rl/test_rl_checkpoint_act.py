"""A checkpoint answers an observation as a JSON object (seed 001's ``/agent/action``): the same
actions the trained policy takes inside a run, directly and through the server's endpoint."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

if os.environ.get("MESA_LLM_REQUIRE_RL") != "1":
    pytest.importorskip("pettingzoo")
    pytest.importorskip("stable_baselines3")

from mesa_llm import Simulation
from mesa_llm.actions import parse_action
from mesa_llm.agents.policies.rl import RLParams, RLPolicy

ROOT = Path(__file__).resolve().parents[2]
LEARNER_SCENARIO = ROOT / "examples" / "rl" / "double_auction_learner.yaml"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mesa_llm.rl.train import train

    out = tmp_path_factory.mktemp("act")
    return Path(train(LEARNER_SCENARIO, algo="ppo", timesteps=256, seed=5, out=out).checkpoint)


def _live(steps: int = 6) -> list:
    """The learner's observations (objects) over a few steps of the learner scenario (it holds still)."""
    seen = []
    with Simulation.from_scenario(LEARNER_SCENARIO, seed=7, record=False) as sim:
        [me] = sim.external_agents
        for _ in range(steps):
            seen.append(sim.observe(me))
            sim.step()
    return seen


def _observations(steps: int = 6) -> list[dict]:
    return [o.to_dict() for o in _live(steps)]


def test_act_on_a_json_observation_is_what_the_policy_does_in_a_run(checkpoint: Path) -> None:
    from mesa_llm.rl import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    in_run = RLPolicy(RLParams(checkpoint=str(checkpoint)))
    answers = []
    for live in _live():
        actions = loaded.act(live.to_dict())  # through JSON's form, as a client sends it
        decided = in_run.decide(live, np.random.default_rng(0))  # the object the run decides on
        assert [parse_action(a).model_dump() for a in actions] == [a.model_dump() for a in decided.actions]
        answers.append(actions)
    assert all(isinstance(a, list) for a in answers)


def test_an_observation_that_is_not_one_is_a_clear_error(checkpoint: Path) -> None:
    from mesa_llm.rl import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    with pytest.raises(KeyError, match="market"):
        loaded.act({"step": 1})
    with pytest.raises(TypeError):
        loaded.act({**_observations(1)[0], "account": "lots"})


def test_the_servers_checkpoint_endpoint_answers_with_the_policys_actions(checkpoint: Path, tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from mesa_llm.rl import load_checkpoint
    from mesa_llm.server.app import create_app
    from mesa_llm.server.settings import ServerSettings

    app = create_app(ServerSettings(recordings=tmp_path / "rec", checkpoints=checkpoint.parent, extra_hosts=("testserver",)))
    loaded = load_checkpoint(checkpoint)
    with TestClient(app) as client:
        for obs in _observations(3):
            answer = client.post("/api/checkpoints/action", json={"checkpoint": checkpoint.name, "observation": obs})
            assert answer.status_code == 200, answer.text
            assert answer.json()["actions"] == loaded.act(obs)
        bad = client.post("/api/checkpoints/action", json={"checkpoint": checkpoint.name, "observation": {"step": 1}})
        assert bad.status_code == 422 and "market" in bad.json()["error"]
