"""`SharedPolicyVecEnv`: Stable-Baselines3's ``VecEnv`` over one or more `MarketParallelEnv`s, one
slot per learner, so one shared SB3 policy acts for every learner (the role one-hot in the
observation tells roles apart). Every learner of a parallel env ends its episode at the same step;
the env is then reset (auto-reset: the last observation is in ``infos[i]["terminal_observation"]``)
and each finished learner's return, length and action counts are logged (`episodes`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mesa_llm.rl._deps import require
from mesa_llm.rl.env import MarketParallelEnv

_VecEnv: Any = require("stable_baselines3.common.vec_env").VecEnv


class SharedPolicyVecEnv(_VecEnv):
    """One VecEnv slot per learner of ``envs`` (all with the same spaces)."""

    def __init__(self, envs: Sequence[MarketParallelEnv]) -> None:
        if not envs:
            raise ValueError("SharedPolicyVecEnv needs at least one environment")
        self.envs = list(envs)
        first = self.envs[0]
        self.slots: list[tuple[int, str]] = [(k, name) for k, env in enumerate(self.envs) for name in env.possible_agents]
        obs_space, act_space = first.observation_space(first.possible_agents[0]), first.action_space(first.possible_agents[0])
        for env in self.envs[1:]:
            if env.possible_agents and (env.observation_space(env.possible_agents[0]) != obs_space or env.action_space(env.possible_agents[0]) != act_space):
                raise ValueError("every environment of a SharedPolicyVecEnv needs the same spaces")
        super().__init__(len(self.slots), obs_space, act_space)
        self._discrete = hasattr(act_space, "n")
        self._actions: np.ndarray | None = None
        self._returns = np.zeros(self.num_envs)
        self._lengths = np.zeros(self.num_envs, dtype=np.int64)
        self._counts = np.zeros((self.num_envs, int(act_space.n) if self._discrete else 1), dtype=np.int64)
        #: one row per finished learner-episode: env, agent, seed, reward, length, action counts
        self.episodes: list[dict[str, Any]] = []

    def _reset_env(self, k: int, obs_out: np.ndarray) -> None:
        seed = self._seeds[k] if k < len(self._seeds) else None
        observations, _ = self.envs[k].reset(seed=seed)
        for i, (kk, name) in enumerate(self.slots):
            if kk == k:
                obs_out[i] = observations[name]

    def reset(self) -> np.ndarray:
        obs = np.zeros((self.num_envs, *self.observation_space.shape), dtype=np.float32)
        for k in range(len(self.envs)):
            self._reset_env(k, obs)
        self._seeds: list[int] = []
        self._returns[:] = 0
        self._lengths[:] = 0
        self._counts[:] = 0
        return obs

    def seed(self, seed: int | None = None) -> Sequence[None | int]:
        """Seed each parallel env's next reset (env k: ``seed + 1_000_003 k``)."""
        if seed is None:
            return [None] * self.num_envs
        self._seeds = [int(seed) + 1_000_003 * k for k in range(len(self.envs))]
        return self._seeds

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        assert self._actions is not None, "step_async first"
        actions = self._actions
        obs = np.zeros((self.num_envs, *self.observation_space.shape), dtype=np.float32)
        rewards = np.zeros(self.num_envs, dtype=np.float32)
        dones = np.zeros(self.num_envs, dtype=bool)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        by_env: dict[int, dict[str, Any]] = {}
        for i, (k, name) in enumerate(self.slots):
            action = actions[i]
            by_env.setdefault(k, {})[name] = int(action) if self._discrete else np.asarray(action)
            if self._discrete:
                self._counts[i, int(action)] += 1
        for k, env in enumerate(self.envs):
            observations, rew, term, trunc, info = env.step(by_env.get(k, {}))
            finished = False
            for i, (kk, name) in enumerate(self.slots):
                if kk != k:
                    continue
                obs[i] = observations[name]
                rewards[i] = rew[name]
                dones[i] = term[name] or trunc[name]
                infos[i] = dict(info[name])
                self._returns[i] += rew[name]
                self._lengths[i] += 1
                if dones[i]:
                    finished = True
                    infos[i]["terminal_observation"] = observations[name]
                    infos[i]["TimeLimit.truncated"] = bool(trunc[name] and not term[name])
                    infos[i]["episode"] = {"r": float(self._returns[i]), "l": int(self._lengths[i])}
                    row: dict[str, Any] = {"env": k, "agent": name, "seed": env.episode_seed, "reward": float(self._returns[i]), "length": int(self._lengths[i])}
                    if self._discrete:
                        row.update({f"action_{a}": int(c) for a, c in enumerate(self._counts[i])})
                    self.episodes.append(row)
                    self._returns[i], self._lengths[i] = 0.0, 0
                    self._counts[i] = 0
            if finished:
                self._reset_env(k, obs)
        return obs, rewards, dones, infos

    def close(self) -> None:
        for env in self.envs:
            env.close()

    # the rest of VecEnv's interface, per slot (a slot's parallel env answers)
    def _targets(self, indices: Any) -> list[MarketParallelEnv]:
        return [self.envs[self.slots[i][0]] for i in self._get_indices(indices)]

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(env, attr_name) for env in self._targets(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        for env in self._targets(indices):
            setattr(env, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        return [getattr(env, method_name)(*method_args, **method_kwargs) for env in self._targets(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


__all__ = ["SharedPolicyVecEnv"]
