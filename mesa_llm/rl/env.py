"""`MarketParallelEnv`: a PettingZoo ``ParallelEnv`` over any scenario, built on `mesa_llm.Simulation`.

The environment's agents are the agents of the populations with ``policy: rl`` (or of the
populations named in ``populations``, switched to ``rl`` — their former policy becomes their
``fallback``, the baseline `mesa_llm.rl.evaluate` compares with). Every other agent — rule-based,
LLM, answers replayed from a recording (``chat_model``), or an ``rl`` population with a
``checkpoint`` — is part of the environment. A learner's action goes through an action decoder into
`Simulation.act`, so the world validates, resolves, records and replays it like any agent's action;
its observation is `Simulation.observe` through an observation encoder.

Episodes: ``reset(seed=s)`` builds a new run with seed ``s``; a later ``reset()`` without a seed
takes ``s + 1``, ``s + 2``, ... (the scenario's seed before any was given), so the same seeds and
actions give the same observations, rewards, infos and recordings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mesa_llm.agents.observation import Observation
from mesa_llm.rl._deps import require
from mesa_llm.rl.codecs import (
    ActionDecoder,
    ActionError,
    MarketFeatures,
    NegotiationFeatures,
    ObservationEncoder,
    QuoteDecoder,
    UtilityLevelDecoder,
    build_decoder,
    build_encoder,
)
from mesa_llm.rl.rewards import Reward, build_reward
from mesa_llm.scenario import ScenarioError, ScenarioSpec, validate_scenario
from mesa_llm.simulation import ExternalAgentError, Simulation, prepare_scenario

_ParallelEnv: Any = require("pettingzoo").ParallelEnv


class NoLearnersError(ValueError):
    """A scenario has no agent a learner could drive (no ``policy: rl`` population)."""


def learner_spec(
    scenario: str | Path | ScenarioSpec | Mapping[str, Any],
    populations: Sequence[str] | None = None,
    overrides: Sequence[str] | None = None,
) -> tuple[ScenarioSpec, list[str]]:
    """The scenario, checked as ``mesa-llm validate`` checks it, with the ``populations`` named
    switched to ``policy: rl`` (their policy kept as ``fallback``: the baseline), and the labels
    of its learning populations (``policy: rl`` without a checkpoint). `NoLearnersError` (one line)
    when there are none; ValueError for a population the scenario does not have."""
    spec = prepare_scenario(scenario, overrides)
    if populations:
        labels = [p.label for p in spec.populations]
        for name in populations:
            if name not in labels:
                raise ValueError(f"population {name!r} is not in scenario {spec.name!r} (populations: {', '.join(labels)})")
        raw = spec.model_dump(mode="json")
        for pop, data in zip(spec.populations, raw["populations"], strict=True):
            if pop.label not in populations or pop.policy == "rl":
                continue
            baseline = (pop.fallback_policy, pop.fallback_params) if pop.wants_llm or pop.policy is None else (pop.policy, pop.params)
            data.update(policy="rl", params={}, model=None, templates={}, fallback={"policy": baseline[0], "params": baseline[1]})
        checked = validate_scenario(raw, source=f"<scenario {spec.name}>")
        checked.source_dir = spec.source_dir
        spec = prepare_scenario(checked)
    learning = [p.label for p in spec.populations if p.policy == "rl" and not p.params.get("checkpoint") and p.count > 0]
    if not learning:
        names = ", ".join(p.label for p in spec.populations)
        raise NoLearnersError(
            f"scenario {spec.name!r} has no population with policy: rl to learn (name one with --population; populations: {names})"
        )
    return spec, learning


def baseline_spec(spec: ScenarioSpec, populations: Sequence[str]) -> ScenarioSpec:
    """``spec`` with the learning ``populations`` back on their built-in policy (``fallback``,
    else the role's default): the baseline a learner is compared with, seat for seat."""
    raw = spec.model_dump(mode="json")
    for pop, data in zip(spec.populations, raw["populations"], strict=True):
        if pop.label in populations:
            data.update(policy=pop.fallback_policy, params=pop.fallback_params, fallback=None)
    checked = validate_scenario(raw, source=f"<scenario {spec.name}>")
    checked.source_dir = spec.source_dir
    return prepare_scenario(checked)


def scenario_kind(spec: ScenarioSpec) -> str:
    """``negotiation`` when the scenario opens negotiation sessions, else ``market``."""
    return "negotiation" if spec.negotiation.sessions else "market"


class MarketParallelEnv(_ParallelEnv):
    """PettingZoo ``ParallelEnv`` whose agents are the learners of a scenario (see the module).

    ``encoder`` / ``decoder`` / ``reward``: objects, names or `describe()` dicts (defaults by
    ``kind``: market — `MarketFeatures`, `QuoteDecoder`, ``pnl``; negotiation —
    `NegotiationFeatures`, `UtilityLevelDecoder`, ``utility``). ``record``: write a recording per
    episode into ``out``. ``chat_model``: answers the LLM agents' calls (e.g. a replay).
    """

    metadata: dict[str, Any] = {"name": "mesa_llm/market-v0", "render_modes": [], "is_parallelizable": True}
    render_mode: str | None = None

    def __init__(
        self,
        scenario: str | Path | ScenarioSpec | Mapping[str, Any] = "double_auction",
        *,
        populations: Sequence[str] | None = None,
        overrides: Sequence[str] | None = None,
        encoder: ObservationEncoder | Mapping[str, Any] | str | None = None,
        decoder: ActionDecoder | Mapping[str, Any] | str | None = None,
        reward: Reward | Mapping[str, Any] | str | None = None,
        kind: str | None = None,
        seed: int | None = None,
        steps: int | None = None,
        record: bool = False,
        out: str | Path | None = None,
        chat_model: Any = None,
        good: str | None = None,
    ) -> None:
        self.spec, self.learner_populations = learner_spec(scenario, populations, overrides)
        self.kind = kind or scenario_kind(self.spec)
        if self.kind not in ("market", "negotiation"):
            raise ValueError(f"kind {self.kind!r}: market or negotiation")
        self.steps_override = steps
        self.record = record
        self.out = out if out is not None else "recordings"
        self.chat_model = chat_model
        probe = Simulation.from_scenario(self.spec, record=False, steps=1, chat_model=chat_model)
        try:
            external = set(probe.external_agents)
            seats = [a for a in probe.agents() if a["population"] in self.learner_populations and a["agent_id"] in external]
        finally:
            probe.close()
        self._ids: dict[str, int] = {a["name"]: a["agent_id"] for a in seats}
        self.roles: dict[str, str] = {a["name"]: a["role"] for a in seats}
        self.populations_of: dict[str, str] = {a["name"]: a["population"] for a in seats}
        self.possible_agents: list[str] = list(self._ids)
        self.agents: list[str] = []
        goods = [g.name for g in self.spec.goods]
        if good is not None and good not in goods:
            raise ValueError(f"good {good!r} is not traded in scenario {self.spec.name!r} (goods: {', '.join(goods)})")
        self.good = good or (goods[0] if goods else None)
        roles = sorted(set(self.roles.values()))
        self.encoder = self._encoder(encoder, roles)
        self.decoder = self._decoder(decoder)
        self.reward_fn = build_reward(reward if reward is not None else ("utility" if self.kind == "negotiation" else "pnl")) if not isinstance(reward, Reward) else reward
        self._obs_space = self.encoder.space
        self._act_space = self.decoder.space
        self.simulation: Simulation | None = None
        self._observations: dict[int, Observation | None] = {}
        self._masks: dict[int, np.ndarray | None] = {}  # each learner's admissible actions now
        self._vectors: dict[str, np.ndarray] = {}
        self._next_seed: int = self.spec.seed if seed is None else int(seed)
        self.episode = 0
        self.episode_seed: int | None = None

    # ------------------------------------------------------------------ building parts

    def _encoder(self, given: Any, roles: list[str]) -> ObservationEncoder:
        if isinstance(given, ObservationEncoder):
            return given
        default = "negotiation" if self.kind == "negotiation" else "market"
        desc = {"name": given} if isinstance(given, str) else dict(given or {"name": default})
        desc.setdefault("roles", roles)
        desc.setdefault("good", self.good if desc.get("name") == MarketFeatures.name else None)
        if desc.get("name") == NegotiationFeatures.name:
            desc["good"] = None
        return build_encoder(desc)

    def _decoder(self, given: Any) -> ActionDecoder:
        if isinstance(given, ActionDecoder):
            return given
        default = UtilityLevelDecoder.name if self.kind == "negotiation" else QuoteDecoder.name
        desc = {"name": given} if isinstance(given, str) else dict(given or {"name": default})
        desc.setdefault("good", None if desc.get("name") == UtilityLevelDecoder.name else self.good)
        return build_decoder(desc)

    # ------------------------------------------------------------------ the PettingZoo API

    def observation_space(self, agent: str) -> Any:
        """The observation space (the same object for every agent and call)."""
        return self._obs_space

    def action_space(self, agent: str) -> Any:
        """The action space (the same object for every agent and call)."""
        return self._act_space

    def agent_id(self, agent: str) -> int:
        """The world's id of learner ``agent``."""
        return self._ids[agent]

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start an episode: a new run of the scenario with ``seed`` (else the next seed)."""
        self._close_run()
        if seed is not None:
            self._next_seed = int(seed)
        self.episode_seed = episode_seed = self._next_seed
        self._next_seed += 1
        self.episode += 1
        run_name = None
        if self.record:
            from datetime import UTC, datetime

            run_name = f"{self.spec.name}_rl_seed{episode_seed}_{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
        sim = self.simulation = Simulation.from_scenario(
            self.spec, seed=episode_seed, steps=self.steps_override, record=self.record, out=self.out,
            chat_model=self.chat_model, run_name=run_name,
        )  # fmt: skip
        self.agents = list(self.possible_agents)
        observations: dict[str, np.ndarray] = {}
        infos: dict[str, dict[str, Any]] = {}
        for name in self.agents:
            agent_id = self._ids[name]
            obs = self._observe(sim, agent_id)
            self.reward_fn.reset(agent_id, sim.account(agent_id), obs)
            observations[name] = self._vectors[name] = self.encoder.encode(obs) if obs is not None else self.encoder.zeros()
            infos[name] = self._info(agent_id, obs, [], [])
        return observations, infos

    def step(self, actions: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict[str, Any]]]:
        """Apply every learner's action (a learner left out waits), run one step of the world,
        and return each learner's next observation, reward, termination, truncation and info.
        `ActionError` (one line) for an action outside the space or for an unknown agent."""
        sim = self.simulation
        if sim is None or not self.agents:
            raise RuntimeError("the episode is over (or not started): call reset() first")
        for name in actions:
            if name not in self._ids:
                raise ActionError(f"action for unknown agent {str(name)[:64]!r}; agents: {', '.join(self.possible_agents[:8])}")
        checked = {name: self.decoder.check(action, name) for name, action in actions.items() if name in self.agents}
        refused: dict[str, list[dict[str, Any]]] = {}
        for name, action in checked.items():
            agent_id = self._ids[name]
            obs = self._observations.get(agent_id)
            if obs is None:
                continue
            mask = self._masks.get(agent_id)
            if mask is not None and not mask[action]:
                refused[name] = [{"type": "masked", "reason": f"action {action} is not admissible now"}]
                continue
            decoded = self.decoder.decode(action, obs)
            if decoded:
                refused[name] = sim.act(agent_id, decoded)
        report = sim.step()
        done = sim.done
        terminated = sim.steps >= sim.max_steps
        observations: dict[str, np.ndarray] = {}
        rewards: dict[str, float] = {}
        infos: dict[str, dict[str, Any]] = {}
        for name in self.agents:
            agent_id = self._ids[name]
            obs = None if done else self._observe(sim, agent_id)
            if done:
                self._observations[agent_id] = None
            rewards[name] = self.reward_fn(agent_id, sim.account(agent_id), obs)
            if obs is not None:
                self._vectors[name] = self.encoder.encode(obs)
            elif not done:
                self._vectors[name] = self.encoder.zeros()
            observations[name] = self._vectors[name]
            infos[name] = self._info(agent_id, obs, refused.get(name, []), report.rejections.get(agent_id, []))
        terminations = dict.fromkeys(self.agents, bool(done and terminated))
        truncations = dict.fromkeys(self.agents, bool(done and not terminated))
        if done:
            self.agents = []
            self._close_run()
        return observations, rewards, terminations, truncations, infos

    def render(self) -> None:
        """Nothing to draw: the recording and the dashboard show a run."""
        return None

    def close(self) -> None:
        """End the current run (its recording is closed)."""
        self._close_run()

    # ------------------------------------------------------------------ helpers

    def _observe(self, sim: Simulation, agent_id: int) -> Observation | None:
        try:
            obs = sim.observe(agent_id)
        except ExternalAgentError:  # withdrawn this step (a liquidity shock): it sees nothing
            obs = None
        self._observations[agent_id] = obs
        return obs

    def _info(self, agent_id: int, obs: Observation | None, refused: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> dict[str, Any]:
        info: dict[str, Any] = {"agent_id": agent_id, "step": self.simulation.steps if self.simulation is not None else 0}
        mask = self._masks[agent_id] = self.decoder.mask(obs)
        if mask is not None:
            info["action_mask"] = mask
        if refused:
            info["refused"] = [{"type": r.get("type"), "reason": r.get("reason")} for r in refused]
        if rejected:
            info["rejected"] = [{"type": r.get("type"), "reason": r.get("reason")} for r in rejected]
        return info

    def _close_run(self) -> None:
        if self.simulation is not None:
            self.simulation.close()
        self._observations = {}
        self._masks = {}


def make_parallel_env(**kwargs: Any) -> MarketParallelEnv:
    """`MarketParallelEnv` (the registered ``mesa_llm/market-v0`` entry point)."""
    return MarketParallelEnv(**kwargs)


def negotiation_parallel_env(**kwargs: Any) -> MarketParallelEnv:
    """A `MarketParallelEnv` over ``bilateral_haggle`` by default (``mesa_llm/negotiation-v0``)."""
    kwargs.setdefault("scenario", "bilateral_haggle")
    kwargs.setdefault("populations", None if kwargs.get("scenario") != "bilateral_haggle" else ["buyers"])
    return MarketParallelEnv(**kwargs)


__all__ = [
    "MarketParallelEnv",
    "NoLearnersError",
    "ScenarioError",
    "baseline_spec",
    "learner_spec",
    "make_parallel_env",
    "negotiation_parallel_env",
    "scenario_kind",
]
