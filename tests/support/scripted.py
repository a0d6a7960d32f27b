"""Scripted rule-based policies for model tests: a policy that plays a per-step script, one that always fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mesa_llm.actions import ActionValidationError, Decision
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.policies import DecisionPolicy, default_policy_registry
from mesa_llm.model import MarketModel
from mesa_llm.scenario import validate_scenario


def events(model: MarketModel) -> list[dict[str, Any]]:
    """Every recorded event of `model`'s recording, parsed."""
    path = model.recording_path
    assert path is not None
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


class Scripted(DecisionPolicy):
    """Returns the actions a test scripts for it, per step."""

    name: ClassVar[str] = "scripted"
    script: ClassVar[dict[int, list[Any]]] = {}
    seen: ClassVar[list[Observation]] = []

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        type(self).seen.append(observation)
        actions, invalid = [], []
        for item in self.script.get(observation.step, []):
            if isinstance(item, ActionValidationError):
                invalid.append(item)
            else:
                actions.append(item)
        return Decision(actions=actions, invalid=invalid, plan=f"step {observation.step}")


class Exploding(DecisionPolicy):
    """A policy that always fails."""

    name: ClassVar[str] = "exploding"

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        raise RuntimeError("model server fell over")


def scripted_model(small_auction, tmp_path, script: dict[int, list[Any]]) -> MarketModel:
    registry = default_policy_registry()
    registry.register(Scripted)
    registry.register(Exploding)
    Scripted.script = script
    Scripted.seen = []
    small_auction["populations"].append(
        {
            "name": "scripted",
            "role": "buyer",
            "count": 1,
            "policy": "scripted",
            "private": {"widget": {"units": 2, "values": [150.0, 140.0]}},
            "endowment": {"cash": 100.0},
        }
    )
    small_auction["populations"].append(
        {"name": "broken", "role": "trader", "count": 1, "policy": "exploding", "endowment": {"cash": 10.0}}
    )
    spec = validate_scenario(small_auction, registry=registry)
    return MarketModel(spec, output_dir=tmp_path, policy_registry=registry)
