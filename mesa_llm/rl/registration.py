"""Registers the environments with Gymnasium and PettingZoo — when called, never at import."""

from __future__ import annotations

from mesa_llm.rl._deps import require

#: Gymnasium ids (single learner) and PettingZoo ids (parallel), with their entry points
GYMNASIUM_IDS = {
    "mesa_llm/market-v0": "mesa_llm.rl.single:MarketEnv",
    "mesa_llm/negotiation-v0": "mesa_llm.rl.single:NegotiationEnv",
}
PETTINGZOO_IDS = {
    "mesa_llm/market-v0": "mesa_llm.rl.env:make_parallel_env",
    "mesa_llm/negotiation-v0": "mesa_llm.rl.env:negotiation_parallel_env",
}


def register_envs() -> list[str]:
    """Register ``mesa_llm/market-v0`` and ``mesa_llm/negotiation-v0`` with ``gymnasium.register``
    and ``pettingzoo.register("parallel", ...)`` (idempotent); returns the ids. Then
    ``gymnasium.make("mesa_llm/market-v0", scenario=..., populations=[...])`` and
    ``pettingzoo.make("parallel", "mesa_llm/market-v0", ...)`` build them."""
    gymnasium = require("gymnasium")
    pettingzoo = require("pettingzoo")
    for env_id, entry in GYMNASIUM_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry)
    from pettingzoo.env_registry.registration import parallel_registry

    for env_id, entry in PETTINGZOO_IDS.items():
        if env_id not in parallel_registry:
            pettingzoo.register("parallel", env_id, entry_point=entry)
    return sorted(GYMNASIUM_IDS)


__all__ = ["GYMNASIUM_IDS", "PETTINGZOO_IDS", "register_envs"]
