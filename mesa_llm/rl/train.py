"""`train`: one shared Stable-Baselines3 policy over every learner of a scenario (through
`SharedPolicyVecEnv`), with a progress bar, periodic checkpoints and a training log; or, with
``executor="ray"``, RLlib on the same environment (`mesa_llm.rl.rllib`).

Writes into ``out``: ``policy.zip`` + ``policy.json`` (the checkpoint, `mesa_llm.rl.checkpoint`),
``checkpoints/step_N.zip`` + ``.json`` every ``checkpoint_every`` timesteps, ``training_log.csv``
and ``training_log.parquet`` (one row per learner-episode: reward, length, action counts) and
``train.json`` (what was run and how long it took).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mesa_llm.rl._deps import require
from mesa_llm.rl.checkpoint import ALGOS, write_sidecar
from mesa_llm.rl.env import MarketParallelEnv
from mesa_llm.scenario import ScenarioSpec

#: hyperparameters per algorithm, scaled for short runs on a few CPU cores (SB3 defaults otherwise)
_HYPER: dict[str, dict[str, Any]] = {
    "ppo": {"n_steps": 256, "batch_size": 256, "n_epochs": 5, "learning_rate": 3e-4, "gamma": 0.99, "ent_coef": 0.01},
    "a2c": {"n_steps": 16, "gamma": 0.99, "ent_coef": 0.01},
    "dqn": {"learning_starts": 500, "buffer_size": 50_000, "train_freq": 4, "target_update_interval": 500, "exploration_fraction": 0.3},
    "sac": {"learning_starts": 500, "buffer_size": 50_000, "batch_size": 128},
}


@dataclass
class TrainResult:
    """What `train` did: the checkpoint, the timesteps, episodes and seconds it took."""

    checkpoint: str
    scenario: str
    populations: list[str]
    learners: int
    algo: str
    timesteps: int
    seed: int
    envs: int
    seconds: float
    episodes: int
    mean_episode_reward_last: float | None
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


def build_envs(
    scenario: str | Path | ScenarioSpec | Mapping[str, Any], *, populations: Sequence[str] | None, envs: int, seed: int,
    overrides: Sequence[str] | None = None, encoder: Any = None, decoder: Any = None, reward: Any = None,
) -> list[MarketParallelEnv]:  # fmt: skip
    """``envs`` parallel environments of the scenario, the k-th seeded ``seed + 1_000_003 k``."""
    out = []
    for k in range(envs):
        out.append(MarketParallelEnv(scenario, populations=populations, overrides=overrides, encoder=encoder, decoder=decoder,
                                     reward=reward, seed=seed + 1_000_003 * k))  # fmt: skip
    return out


def train(
    scenario: str | Path | ScenarioSpec | Mapping[str, Any],
    *,
    populations: Sequence[str] | None = None,
    algo: str = "ppo",
    timesteps: int = 20_000,
    seed: int = 0,
    out: str | Path = "rl_runs",
    envs: int = 1,
    overrides: Sequence[str] | None = None,
    encoder: Any = None,
    decoder: Any = None,
    reward: Any = None,
    checkpoint_every: int | None = None,
    progress: bool = False,
    executor: str = "local",
    threads: int | None = 1,
) -> TrainResult:
    """Train one policy shared by every learner (see the module). ValueError (one line) for an
    unknown algorithm, an algorithm that does not fit the action space, or bad counts."""
    algo = algo.lower()
    if algo not in ALGOS:
        raise ValueError(f"--algo {algo!r}: one of {', '.join(ALGOS)}")
    if timesteps < 1 or envs < 1:
        raise ValueError("--timesteps and --envs must be at least 1")
    if executor == "ray":
        from mesa_llm.rl.rllib import train_rllib

        return train_rllib(scenario, populations=populations, algo=algo, timesteps=timesteps, seed=seed, out=out,
                           envs=envs, overrides=overrides, encoder=encoder, decoder=decoder, reward=reward)  # fmt: skip
    if executor != "local":
        raise ValueError(f"--executor {executor!r}: local or ray")
    sb3 = require("stable_baselines3")
    torch = require("torch")
    from mesa_llm.rl.vec import SharedPolicyVecEnv

    parallel = build_envs(scenario, populations=populations, envs=envs, seed=seed, overrides=overrides,
                          encoder=encoder, decoder=decoder, reward=reward)  # fmt: skip
    first = parallel[0]
    discrete = hasattr(first.decoder.space, "n")
    if algo == "dqn" and not discrete:
        raise ValueError("--algo dqn needs a discrete action space (the quote or utility_level decoder)")
    if algo == "sac" and discrete:
        raise ValueError("--algo sac needs a Box action space: use --decoder box")
    out_dir = Path(out)
    (out_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    venv = SharedPolicyVecEnv(parallel)
    venv.seed(seed)
    from stable_baselines3.common.vec_env import VecNormalize

    # returns scaled to unit variance for the learner only (rewards run from utilities in [0, 1] to
    # money in the hundreds); observations are not normalised, so the saved policy needs no statistics
    learning_env = VecNormalize(venv, norm_obs=False, norm_reward=True, gamma=_HYPER[algo].get("gamma", 0.99))
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)  # a small MLP: one thread is faster than contending for shared cores
    hyper = dict(_HYPER[algo])
    if algo in ("ppo", "a2c"):
        hyper["n_steps"] = max(8, hyper["n_steps"] // max(1, venv.num_envs // 4))
        if algo == "ppo":
            hyper["batch_size"] = min(hyper["batch_size"], hyper["n_steps"] * venv.num_envs)
    model = getattr(sb3, ALGOS[algo])("MlpPolicy", learning_env, seed=seed, device="cpu", verbose=0, **hyper)

    def save(path: Path, steps: int) -> Path:
        model.save(path)
        write_sidecar(path, algo=algo, spec=first.spec, populations=first.learner_populations, learners=first.possible_agents,
                      encoder=first.encoder, decoder=first.decoder, reward=first.reward_fn.describe(), timesteps=steps, seed=seed)  # fmt: skip
        return path

    from stable_baselines3.common.callbacks import BaseCallback

    every = checkpoint_every if checkpoint_every is not None else max(timesteps // 4, 1)

    class _Checkpoints(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.next_at = every

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_at:
                save(out_dir / "checkpoints" / f"step_{self.num_timesteps}.zip", self.num_timesteps)
                self.next_at += every
            return True

    started = time.perf_counter()
    try:
        model.learn(total_timesteps=timesteps, callback=_Checkpoints(), progress_bar=progress)
    finally:
        torch.set_num_threads(previous_threads)
    seconds = time.perf_counter() - started
    final = save(out_dir / "policy.zip", int(model.num_timesteps))
    venv.close()
    files = {"checkpoint": str(final), "sidecar": str(final.with_suffix(".json"))}
    files.update(_write_log(venv.episodes, out_dir))
    rewards = [row["reward"] for row in venv.episodes][-100:]
    result = TrainResult(
        checkpoint=str(final), scenario=first.spec.name, populations=list(first.learner_populations),
        learners=len(first.possible_agents), algo=algo, timesteps=int(model.num_timesteps), seed=seed, envs=envs,
        seconds=round(seconds, 3), episodes=len(venv.episodes),
        mean_episode_reward_last=(sum(rewards) / len(rewards)) if rewards else None, files=files,
    )  # fmt: skip
    (out_dir / "train.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
    return result


def _write_log(rows: list[dict[str, Any]], out_dir: Path) -> dict[str, str]:
    """The training log as CSV and Parquet (one row per learner-episode)."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=None if rows else ["env", "agent", "seed", "reward", "length"])
    frame.insert(0, "episode", range(len(frame)))
    csv, parquet = out_dir / "training_log.csv", out_dir / "training_log.parquet"
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet, index=False)
    return {"log_csv": str(csv), "log_parquet": str(parquet)}


__all__ = ["TrainResult", "build_envs", "train"]
