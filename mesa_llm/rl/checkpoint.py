"""Checkpoints: a trained policy as Stable-Baselines3's zip plus a JSON sidecar of ours.

``NAME.zip`` is SB3's file (weights in torch's format); ``NAME.json`` beside it says what the
policy was trained on: the scenario (name, hash, the resolved spec), the learning populations and
their roles, the encoder, decoder and reward (names and parameters) and both spaces. Loading reads
the sidecar first and refuses a checkpoint whose spaces do not match the scenario it is used in;
the zip is read with SB3's loader, every cloudpickled entry of its ``data`` replaced by an object
rebuilt from the sidecar (so nothing in the file is ever unpickled) and its tensors loaded with
``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mesa_llm.rl.codecs import ActionDecoder, ObservationEncoder, build_decoder, build_encoder
from mesa_llm.scenario import ScenarioSpec

FORMAT = "mesa_llm.rl.checkpoint/1"
#: the algorithms `train` offers (SB3 class names)
ALGOS = {"ppo": "PPO", "a2c": "A2C", "dqn": "DQN", "sac": "SAC"}
#: largest sidecar read (bytes)
MAX_SIDECAR_BYTES = 8 * 1024 * 1024
#: largest checkpoint zip, its members uncompressed (bytes): a policy of small MLPs is far below
MAX_ZIP_BYTES = 512 * 1024 * 1024
#: largest ``data`` member (SB3's JSON of the model's attributes)
MAX_DATA_BYTES = 16 * 1024 * 1024


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (one line: which file, what is wrong)."""


def spec_hash(spec: ScenarioSpec) -> str:
    """A short hash of a resolved scenario (what a checkpoint was trained on)."""
    text = json.dumps(spec.model_dump(mode="json"), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_space(space: Any) -> dict[str, Any]:
    """A space as plain JSON (type, and n or shape and bounds)."""
    if hasattr(space, "n"):
        return {"type": "Discrete", "n": int(space.n)}
    return {"type": "Box", "shape": list(space.shape), "low": np.asarray(space.low).tolist(), "high": np.asarray(space.high).tolist()}


def _space_text(desc: Mapping[str, Any]) -> str:
    return f"Discrete({desc.get('n')})" if desc.get("type") == "Discrete" else f"Box{tuple(desc.get('shape') or ())}"


@dataclass
class Checkpoint:
    """A checkpoint's sidecar, read and checked, and where its zip is."""

    zip_path: Path
    sidecar: dict[str, Any]
    encoder: ObservationEncoder
    decoder: ActionDecoder

    def act(self, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The actions (tagged dicts) the trained policy takes for ``observation`` (an
        `Observation.to_dict` form, e.g. what `Simulation.observe(...).to_dict()` or the server's
        observation endpoint gives): deterministic, nothing when its mask forbids the action."""
        from mesa_llm.agents.observation import Observation

        obs = Observation.from_dict(observation)
        action, _ = load_model(self).predict(self.encoder.encode(obs), deterministic=True)
        action = self.decoder.check(action, obs.name)
        mask = self.decoder.mask(obs)
        if mask is not None and not mask[action]:
            return []
        return [dict(a) for a in self.decoder.decode(action, obs)]

    @property
    def algo(self) -> str:
        """The SB3 algorithm it was trained with (ppo, a2c, dqn, sac)."""
        return str(self.sidecar["algo"])

    @property
    def populations(self) -> list[str]:
        """The populations it was trained for."""
        return list(self.sidecar.get("populations") or [])

    @property
    def roles(self) -> list[str]:
        """The roles its learners had."""
        return list(self.encoder.roles)

    def scenario_spec(self) -> ScenarioSpec:
        """The resolved scenario it was trained on."""
        from mesa_llm.scenario import validate_scenario

        return validate_scenario(dict(self.sidecar["scenario"]["spec"]), source=f"checkpoint {self.zip_path.name}")

    def check_scenario(self, spec: ScenarioSpec, populations: Sequence[str]) -> None:
        """`CheckpointError` (one line) unless the policy can act for ``populations`` of ``spec``:
        the same kind of encoder for the scenario, its good traded there, its roles."""
        where = f"checkpoint {self.zip_path}"
        negotiating = bool(spec.negotiation.sessions)
        if (self.encoder.name == "negotiation") != negotiating:
            raise CheckpointError(
                f"{where}: its observation space ({self.encoder.name} encoder) does not match scenario {spec.name!r}, a "
                f"{'negotiation' if negotiating else 'market'} scenario"
            )
        good = self.encoder.good
        goods = [g.name for g in spec.goods]
        if good is not None and good not in goods:
            raise CheckpointError(f"{where}: its observation space is for good {good!r}, which scenario {spec.name!r} does not trade (goods: {', '.join(goods)})")
        for pop in spec.populations:
            if pop.label in populations and pop.role.value not in self.encoder.roles:
                raise CheckpointError(
                    f"{where}: its observation space covers roles {self.encoder.roles}; population {pop.label!r} of scenario "
                    f"{spec.name!r} has role {pop.role.value!r}"
                )

    def check_spaces(self, observation_space: Any, action_space: Any) -> None:
        """`CheckpointError` (one line) unless the sidecar's spaces are these."""
        for what, space in (("observation", observation_space), ("action", action_space)):
            want, have = self.sidecar[f"{what}_space"], describe_space(space)
            if _space_text(want) != _space_text(have):
                raise CheckpointError(f"checkpoint {self.zip_path}: its {what} space {_space_text(want)} does not match the scenario's {_space_text(have)}")


def sidecar_path(zip_path: Path) -> Path:
    """``NAME.json`` beside ``NAME.zip``."""
    return zip_path.with_suffix(".json")


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and check a checkpoint's sidecar (``path``: the zip, with or without ``.zip``).
    `CheckpointError` (one line) for a missing file, a corrupt or foreign sidecar, spaces that do
    not match its own encoder and decoder."""
    zip_path = Path(path)
    if zip_path.suffix != ".zip":
        zip_path = zip_path.with_name(zip_path.name + ".zip")
    from mesa_llm.resources import UnreadableFileError, read_regular_file, system_file

    side = sidecar_path(zip_path)
    if system_file(zip_path) or system_file(side):
        raise CheckpointError(f"checkpoint {zip_path}: a system file under /proc, /sys or /dev is not a checkpoint")
    if not zip_path.is_file():
        # a relative path is read from the current directory (not the scenario's folder): say so
        where = "" if zip_path.is_absolute() else f" (relative paths are read from the current directory, {Path.cwd()})"
        raise CheckpointError(f"checkpoint {zip_path}: no such file{where}")
    if not side.is_file():
        raise CheckpointError(f"checkpoint {zip_path}: its sidecar {side.name} is missing (it says what the policy was trained on)")
    try:
        data = json.loads(read_regular_file(side, MAX_SIDECAR_BYTES).decode("utf-8"))
    except UnreadableFileError as exc:
        raise CheckpointError(f"checkpoint {zip_path}: sidecar {side.name}: {exc}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {zip_path}: sidecar {side.name} is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {zip_path}: sidecar {side.name} is not a {FORMAT} sidecar")
    missing = [k for k in ("algo", "scenario", "encoder", "decoder", "observation_space", "action_space") if not isinstance(data.get(k), dict | str)]
    if missing:
        raise CheckpointError(f"checkpoint {zip_path}: sidecar field {missing[0]!r} is missing")
    if data["algo"] not in ALGOS:
        raise CheckpointError(f"checkpoint {zip_path}: algorithm {str(data['algo'])[:40]!r} is not one of {', '.join(ALGOS)}")
    try:
        encoder, decoder = build_encoder(data["encoder"]), build_decoder(data["decoder"])
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {zip_path}: {exc}") from None
    checkpoint = Checkpoint(zip_path, data, encoder, decoder)
    checkpoint.check_spaces(encoder.space, decoder.space)
    _check_zip_spaces(checkpoint)
    return checkpoint


def _check_zip_spaces(checkpoint: Checkpoint) -> None:
    """The zip's own record of its spaces (plain JSON beside SB3's pickled copy) against the sidecar."""
    where = f"checkpoint {checkpoint.zip_path}"
    try:
        with zipfile.ZipFile(checkpoint.zip_path) as archive:
            infos = archive.infolist()
            total = sum(i.file_size for i in infos)
            if total > MAX_ZIP_BYTES:
                raise CheckpointError(f"{where}: {total:,} bytes uncompressed; at most {MAX_ZIP_BYTES:,}")
            info = archive.getinfo("data")
            if info.file_size > MAX_DATA_BYTES:
                raise CheckpointError(f"{where}: its data entry is {info.file_size:,} bytes; at most {MAX_DATA_BYTES:,}")
            data = json.loads(archive.read(info))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{where}: not a Stable-Baselines3 zip ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{where}: not a Stable-Baselines3 zip (its data is not an object)")
    obs, act = data.get("observation_space"), data.get("action_space")
    if not isinstance(obs, dict) or not isinstance(act, dict):
        raise CheckpointError(f"{where}: not a Stable-Baselines3 zip (no record of its spaces)")
    if list(obs.get("_shape") or []) != list(checkpoint.encoder.space.shape):
        raise CheckpointError(f"{where}: the policy's observation shape {obs.get('_shape')} does not match its sidecar's {list(checkpoint.encoder.space.shape)}")
    want = describe_space(checkpoint.decoder.space)
    try:
        have = {"type": "Discrete", "n": int(act["n"])} if "n" in act else {"type": "Box", "shape": list(act.get("_shape") or [])}
    except (TypeError, ValueError):
        raise CheckpointError(f"{where}: its action space record is malformed") from None
    if _space_text(have) != _space_text(want):
        raise CheckpointError(f"{where}: the policy's action space {_space_text(have)} does not match its sidecar's {_space_text(want)}")


def write_sidecar(
    zip_path: Path, *, algo: str, spec: ScenarioSpec, populations: Sequence[str], learners: Sequence[str],
    encoder: ObservationEncoder, decoder: ActionDecoder, reward: Mapping[str, Any], timesteps: int, seed: int,
) -> Path:  # fmt: skip
    """Write ``zip_path``'s sidecar; returns its path."""
    from importlib.metadata import version

    data = {
        "format": FORMAT,
        "algo": algo,
        "scenario": {"name": spec.name, "hash": spec_hash(spec), "spec": spec.model_dump(mode="json")},
        "populations": list(populations),
        "learners": list(learners),
        "encoder": encoder.describe(),
        "decoder": decoder.describe(),
        "reward": dict(reward),
        "observation_space": describe_space(encoder.space),
        "action_space": describe_space(decoder.space),
        "timesteps": int(timesteps),
        "seed": int(seed),
        "versions": {p: version(p) for p in ("mesa_llm", "stable_baselines3", "gymnasium", "pettingzoo", "torch")},
    }
    side = sidecar_path(zip_path)
    side.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
    return side


def _custom_objects(checkpoint: Checkpoint, algo_cls: Any) -> dict[str, Any]:
    """Every entry SB3 would unpickle from the zip's ``data``, rebuilt here instead."""
    import torch
    from stable_baselines3.common.buffers import ReplayBuffer, RolloutBuffer
    from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit

    def constant(value: float) -> Any:
        return lambda _progress: value

    algo = checkpoint.algo
    objects: dict[str, Any] = {
        "observation_space": checkpoint.encoder.space,
        "action_space": checkpoint.decoder.space,
        "policy_class": algo_cls.policy_aliases["MlpPolicy"],
        "lr_schedule": constant(0.0),
        "clip_range": constant(0.2),
        "clip_range_vf": None,
        "exploration_schedule": constant(0.0),
        "train_freq": TrainFreq(1, TrainFrequencyUnit.STEP),
        "rollout_buffer_class": RolloutBuffer,
        "replay_buffer_class": ReplayBuffer,
    }
    if algo == "a2c":  # SB3's A2C defaults (RMSprop), as `train` uses them
        objects["policy_kwargs"] = {"optimizer_class": torch.optim.RMSprop, "optimizer_kwargs": {"alpha": 0.99, "eps": 1e-5, "weight_decay": 0}}
    try:
        with zipfile.ZipFile(checkpoint.zip_path) as archive:
            data = json.loads(archive.read("data"))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {checkpoint.zip_path}: not a Stable-Baselines3 zip ({type(exc).__name__})") from None
    for key, item in data.items():  # anything else pickled: never unpickled
        if isinstance(item, dict) and ":serialized:" in item and key not in objects:
            objects[key] = None
    return objects


_MODELS: dict[tuple[str, int, int], Any] = {}  # loaded policies by (path, mtime, size): rl agents share one


def load_model(checkpoint: Checkpoint) -> Any:
    """The SB3 model of ``checkpoint`` (torch is imported here, on first need), on the CPU.
    Loaded once per file version and process; `CheckpointError` if SB3 cannot read it."""
    from mesa_llm.rl._deps import require

    sb3 = require("stable_baselines3")
    stat = checkpoint.zip_path.stat()
    key = (str(checkpoint.zip_path.resolve()), stat.st_mtime_ns, stat.st_size)
    model = _MODELS.get(key)
    if model is None:
        algo_cls = getattr(sb3, ALGOS[checkpoint.algo])
        try:
            model = algo_cls.load(checkpoint.zip_path, device="cpu", custom_objects=_custom_objects(checkpoint, algo_cls))
        except CheckpointError:
            raise
        except Exception as exc:  # noqa: BLE001 - SB3/torch raise many kinds; the user needs one line
            raise CheckpointError(f"checkpoint {checkpoint.zip_path}: Stable-Baselines3 cannot load it ({type(exc).__name__}: {str(exc)[:200]})") from None
        if len(_MODELS) >= 8:
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[key] = model
    return model


__all__ = [
    "ALGOS",
    "FORMAT",
    "Checkpoint",
    "CheckpointError",
    "describe_space",
    "load_checkpoint",
    "load_model",
    "spec_hash",
    "write_sidecar",
]
