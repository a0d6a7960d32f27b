"""Learning agents: PettingZoo and Gymnasium environments over any scenario (the agents of
``policy: rl`` populations learn; everyone else is the environment), observation encoders, action
decoders and rewards as objects, training with Stable-Baselines3 (or RLlib) and paired evaluation.

Needs the ``rl`` extra (``pip install 'mesa_llm[rl]'``); importing this package imports none of
its libraries — each module does when it is first used. ``register_envs()`` registers
``mesa_llm/market-v0`` and ``mesa_llm/negotiation-v0`` with Gymnasium and PettingZoo (explicitly:
nothing is registered at import).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MarketParallelEnv": "mesa_llm.rl.env",
    "NoLearnersError": "mesa_llm.rl.env",
    "learner_spec": "mesa_llm.rl.env",
    "MarketEnv": "mesa_llm.rl.single",
    "NegotiationEnv": "mesa_llm.rl.single",
    "SharedPolicyVecEnv": "mesa_llm.rl.vec",
    "register_envs": "mesa_llm.rl.registration",
    "train": "mesa_llm.rl.train",
    "evaluate": "mesa_llm.rl.evaluate",
    "ActionError": "mesa_llm.rl.codecs",
    "ObservationEncoder": "mesa_llm.rl.codecs",
    "ActionDecoder": "mesa_llm.rl.codecs",
    "MarketFeatures": "mesa_llm.rl.codecs",
    "NegotiationFeatures": "mesa_llm.rl.codecs",
    "QuoteDecoder": "mesa_llm.rl.codecs",
    "BoxOrderDecoder": "mesa_llm.rl.codecs",
    "UtilityLevelDecoder": "mesa_llm.rl.codecs",
    "Reward": "mesa_llm.rl.rewards",
    "REWARDS": "mesa_llm.rl.rewards",
    "CheckpointError": "mesa_llm.rl.checkpoint",
    "load_checkpoint": "mesa_llm.rl.checkpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mesa_llm.rl' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
