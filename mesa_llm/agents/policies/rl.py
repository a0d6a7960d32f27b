"""``policy: rl``: a learning agent.

Without parameters the agent is driven from outside, like ``policy: external``: a PettingZoo or
Gymnasium environment (`mesa_llm.rl`) submits its actions through ``Simulation.act`` and the world
waits for them. With ``params.checkpoint: PATH`` (a checkpoint written by ``mesa-llm train``) it
decides by itself: its observation goes through the encoder recorded in the checkpoint's sidecar,
the trained policy picks an action deterministically, and the recorded decoder turns it into the
world's actions — so ``mesa-llm run``, sweeps, the dashboard and ``replay --verify`` run it like any
built-in policy. Stable-Baselines3 and torch are imported only when such an agent first decides.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator

from mesa_llm.actions import ActionValidationError, Decision, parse_action
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.policies.base import PolicyParams
from mesa_llm.agents.policies.external import ExternalParams, ExternalPolicy


class RLParams(ExternalParams):
    """Parameters of a learning agent."""

    checkpoint: str | None = Field(
        default=None, max_length=4096,
        description="a trained policy (mesa-llm train's NAME.zip, its NAME.json beside it): the agent decides by itself",
    )  # fmt: skip

    @field_validator("checkpoint")
    @classmethod
    def _readable(cls, path: str | None) -> str | None:
        if path is not None:
            _load(path)
        return path


def _load(path: str) -> Any:
    """The checked checkpoint at ``path`` (ValueError, one line, otherwise)."""
    try:
        from mesa_llm.rl.checkpoint import load_checkpoint

        return load_checkpoint(path)
    except ImportError as exc:
        raise ValueError(str(exc).splitlines()[0]) from None


class RLPolicy(ExternalPolicy):
    """Acts as its environment tells it, or, given a checkpoint, as its trained policy decides."""

    name: ClassVar[str] = "rl"
    summary: ClassVar[str] = "a learning agent: driven by a PettingZoo/Gymnasium env, or a trained checkpoint (params.checkpoint)"
    Params: ClassVar[type[PolicyParams]] = RLParams

    def __init__(self, params: PolicyParams | None = None) -> None:
        super().__init__(params)
        self.checkpoint_path: str | None = getattr(self.params, "checkpoint", None)
        self.is_external = self.checkpoint_path is None
        self._checkpoint: Any = None

    @classmethod
    def check_population(cls, spec: Any, index: int, params: dict[str, Any]) -> list[str]:
        """Problems (one line each) of a population of ``spec`` running this policy: a checkpoint
        whose spaces do not match the scenario (its good, kind of encoder, the population's role)."""
        path = params.get("checkpoint")
        if not path:
            return []
        try:
            _load(str(path)).check_scenario(spec, [spec.populations[index].label])
        except ValueError as exc:
            return [f"populations.{index}.params.checkpoint: {exc}"]
        return []

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        """The submitted actions (env-driven); with a checkpoint, the trained policy's action
        (deterministic: no draw from ``rng``)."""
        if self.checkpoint_path is None:
            return super().decide(observation, rng)
        if self._checkpoint is None:
            self._checkpoint = _load(self.checkpoint_path)
        from mesa_llm.rl.checkpoint import load_model

        checkpoint = self._checkpoint
        model = load_model(checkpoint)
        action, _ = model.predict(checkpoint.encoder.encode(observation), deterministic=True)
        decoder = checkpoint.decoder
        action = decoder.check(action, observation.name)
        mask = decoder.mask(observation)
        if mask is not None and not mask[action]:
            return Decision()
        actions, invalid = [], []
        for data in decoder.decode(action, observation):
            try:
                actions.append(parse_action(data))
            except ActionValidationError as exc:
                invalid.append(exc)
        return Decision(actions=actions, invalid=invalid)

    def describe(self) -> dict[str, Any]:
        """Name and parameters (the checkpoint's path), as recorded in the recording header."""
        return {"policy": self.name, "params": self.params.model_dump()}


__all__ = ["RLParams", "RLPolicy"]
