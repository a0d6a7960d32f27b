"""``mesa-llm train --executor ray``: RLlib's PPO on the same environment (`MarketParallelEnv`
through RLlib's ``ParallelPettingZooEnv``), one policy shared by every learner, on a local Ray
cluster (``ray.init(num_cpus=2)``) or the one already initialised.

The trained policy network (two tanh layers of 64, as Stable-Baselines3's ``MlpPolicy``) is copied
into an SB3 PPO policy and written as a mesa_llm checkpoint (``policy.zip`` + ``policy.json``), so
``evaluate``, ``policy: rl`` and replays use it like any other; RLlib's own checkpoint (pickles) is
not kept. Needs the ``rllib`` extra.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mesa_llm.rl._deps import require
from mesa_llm.rl.checkpoint import write_sidecar
from mesa_llm.rl.env import MarketParallelEnv
from mesa_llm.scenario import ScenarioSpec

_ENV_NAME = "mesa_llm_rl_parallel"


def _make_env(config: Mapping[str, Any]) -> Any:
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

    return ParallelPettingZooEnv(MarketParallelEnv(**dict(config)))


def train_rllib(
    scenario: str | Path | ScenarioSpec | Mapping[str, Any], *, populations: Sequence[str] | None, algo: str, timesteps: int,
    seed: int, out: str | Path, envs: int = 1, overrides: Sequence[str] | None = None, encoder: Any = None,
    decoder: Any = None, reward: Any = None,
) -> Any:  # fmt: skip
    """Train with RLlib PPO for about ``timesteps`` learner steps; returns a `TrainResult`."""
    from mesa_llm.rl.train import TrainResult

    if algo != "ppo":
        raise ValueError(f"--executor ray trains ppo only (not {algo!r})")
    ray = require("ray", "rllib")
    require("ray.rllib.algorithms.ppo", "rllib")
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.tune.registry import register_env

    probe = MarketParallelEnv(scenario, populations=populations, overrides=overrides, encoder=encoder, decoder=decoder, reward=reward, seed=seed)
    if not hasattr(probe.decoder.space, "n"):
        raise ValueError("--executor ray trains a discrete action space (the quote or utility_level decoder)")
    env_config = {
        "scenario": probe.spec.model_dump(mode="json"), "encoder": probe.encoder.describe(), "decoder": probe.decoder.describe(),
        "reward": probe.reward_fn.describe(), "seed": seed,
    }  # fmt: skip
    learners = len(probe.possible_agents)
    register_env(_ENV_NAME, _make_env)
    started_ray = False
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        started_ray = True
    batch = max(64, min(2000, timesteps // max(learners, 1)))
    config = (
        PPOConfig()
        .environment(_ENV_NAME, env_config=env_config)
        .multi_agent(policies={"shared"}, policy_mapping_fn=_shared)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=envs)
        .training(train_batch_size_per_learner=batch, minibatch_size=max(32, batch // 4), num_epochs=4, lr=3e-4)
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[64, 64], fcnet_activation="tanh", vf_share_layers=False, head_fcnet_hiddens=[]))
        .debugging(seed=seed)
    )
    started = time.perf_counter()
    trainer = config.build_algo()
    episodes, agent_steps, rewards = 0, 0, []
    try:
        while agent_steps < timesteps:
            result = trainer.train()
            runners = result.get("env_runners", {})
            agent_steps = int(runners.get("num_env_steps_sampled_lifetime", 0)) * learners
            episodes = int(runners.get("num_episodes_lifetime", episodes) or episodes)
            if runners.get("episode_return_mean") is not None:
                rewards.append(float(runners["episode_return_mean"]) / max(learners, 1))
        module: Any = trainer.get_module("shared")
        state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    finally:
        trainer.stop()
        if started_ray:
            ray.shutdown()
    seconds = time.perf_counter() - started
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = _export(state, probe, out_dir / "policy.zip", seed)
    write_sidecar(final, algo="ppo", spec=probe.spec, populations=probe.learner_populations, learners=probe.possible_agents,
                  encoder=probe.encoder, decoder=probe.decoder, reward=probe.reward_fn.describe(), timesteps=agent_steps, seed=seed)  # fmt: skip
    probe.close()
    result_obj = TrainResult(
        checkpoint=str(final), scenario=probe.spec.name, populations=list(probe.learner_populations), learners=learners,
        algo="ppo", timesteps=agent_steps, seed=seed, envs=envs, seconds=round(seconds, 3), episodes=episodes,
        mean_episode_reward_last=rewards[-1] if rewards else None,
        files={"checkpoint": str(final), "sidecar": str(final.with_suffix(".json")), "executor": "ray"},
    )  # fmt: skip
    (out_dir / "train.json").write_text(json.dumps(result_obj.to_dict(), indent=1) + "\n", encoding="utf-8")
    return result_obj


def _shared(agent_id: Any, *args: Any, **kwargs: Any) -> str:
    return "shared"


def _export(state: Mapping[str, Any], env: MarketParallelEnv, path: Path, seed: int) -> Path:
    """RLlib's actor network copied into an SB3 PPO ``MlpPolicy`` of the same shape, saved."""
    import torch
    from stable_baselines3 import PPO

    from mesa_llm.rl.vec import SharedPolicyVecEnv

    venv = SharedPolicyVecEnv([env])
    model = PPO("MlpPolicy", venv, seed=seed, device="cpu", n_steps=8, batch_size=8)
    actor = [k for k in state if k.startswith("encoder.actor_encoder.") and k.endswith(".weight")]
    pi = [k for k in state if k.startswith("pi.") and k.endswith(".weight")]
    if len(actor) != 2 or len(pi) != 1:
        raise ValueError(f"RLlib's policy network has an unexpected shape ({len(actor)} hidden layers, {len(pi)} heads)")
    policy: Any = model.policy
    with torch.no_grad():
        targets: list[Any] = [policy.mlp_extractor.policy_net[0], policy.mlp_extractor.policy_net[2], policy.action_net]
        for key, layer in zip([*sorted(actor, key=_layer_index), pi[0]], targets, strict=True):
            layer.weight.copy_(state[key])
            layer.bias.copy_(state[key.removesuffix("weight") + "bias"])
    model.save(path)
    return path


def _layer_index(key: str) -> int:
    parts = key.split(".")
    return int(parts[-2]) if parts[-2].isdigit() else 0


__all__ = ["train_rllib"]
