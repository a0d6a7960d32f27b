"""Single-learner Gymnasium environments: `MarketEnv` and `NegotiationEnv` drive one seat of a
`MarketParallelEnv`; the other learners of the scenario (if any) take ``others``' actions (default:
they wait), everyone else is the environment as in the parallel one."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mesa_llm.rl._deps import require
from mesa_llm.rl.env import MarketParallelEnv
from mesa_llm.scenario import ScenarioSpec

_Env: Any = require("gymnasium").Env

#: the action another learner takes: (its name, its observation vector) -> action
OtherPolicy = Callable[[str, np.ndarray], Any]


class MarketEnv(_Env):
    """``gymnasium.Env`` for one learner (``seat``: its name, default the first learner) of a
    scenario; the keyword arguments are `MarketParallelEnv`'s."""

    metadata: dict[str, Any] = {"render_modes": []}
    default_scenario = "double_auction"
    default_populations: Sequence[str] | None = ("buyers",)

    def __init__(
        self,
        scenario: str | Path | ScenarioSpec | Mapping[str, Any] | None = None,
        *,
        populations: Sequence[str] | None = None,
        seat: str | None = None,
        others: OtherPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        if scenario is None:
            scenario = self.default_scenario
            populations = populations if populations is not None else self.default_populations
        self.parallel = MarketParallelEnv(scenario, populations=populations, **kwargs)
        learners = self.parallel.possible_agents
        if seat is not None and seat not in learners:
            raise ValueError(f"seat {seat!r} is not a learner of scenario {self.parallel.spec.name!r} (learners: {', '.join(learners)})")
        self.seat = seat or learners[0]
        self.others = others
        self.observation_space = self.parallel.observation_space(self.seat)
        self.action_space = self.parallel.action_space(self.seat)
        self._last: dict[str, np.ndarray] = {}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode (a new run with ``seed``, else the next seed)."""
        super().reset(seed=seed)
        observations, infos = self.parallel.reset(seed=seed, options=options)
        self._last = observations
        return observations[self.seat], infos[self.seat]

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """The seat's action for one step of the world."""
        actions = {self.seat: action}
        idle = self.parallel.decoder.idle_action
        for name in self.parallel.agents:
            if name != self.seat:
                actions[name] = self.others(name, self._last[name]) if self.others is not None else idle
        observations, rewards, terminations, truncations, infos = self.parallel.step(actions)
        self._last = observations
        s = self.seat
        return observations[s], rewards[s], terminations[s], truncations[s], infos[s]

    def close(self) -> None:
        """End the current run."""
        self.parallel.close()


class NegotiationEnv(MarketEnv):
    """`MarketEnv` over a negotiation (default: a buyer in ``bilateral_haggle``): the
    negotiation encoder, the utility-level decoder and the agreement-utility reward."""

    default_scenario = "bilateral_haggle"
    default_populations = ("buyers",)

    def __init__(self, scenario: str | Path | ScenarioSpec | Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("kind", "negotiation")
        super().__init__(scenario, **kwargs)


__all__ = ["MarketEnv", "NegotiationEnv"]
