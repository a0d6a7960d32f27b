"""Conformance of the learning environments: PettingZoo's parallel API and seed tests, the AEC API
through ``parallel_to_aec``, Gymnasium's and Stable-Baselines3's ``check_env``, the registered ids,
and spaces that are the same object on every call — on a shipped market, a shipped negotiation and
a scenario written here with learners in two populations."""

from __future__ import annotations

import os
from typing import Any

import pytest

if os.environ.get("MESA_LLM_REQUIRE_RL") != "1":
    pytest.importorskip("pettingzoo")
    pytest.importorskip("stable_baselines3")

from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test  # noqa: E402
from pettingzoo.utils.conversions import parallel_to_aec  # noqa: E402

from mesa_llm.rl.env import MarketParallelEnv  # noqa: E402
from mesa_llm.rl.single import MarketEnv, NegotiationEnv  # noqa: E402

#: not shipped: learners in two populations (one buying, one selling) among ZI-C traders
TWO_SIDED: dict[str, Any] = {
    "name": "two_sided_learners",
    "seed": 7,
    "steps": 12,
    "tick_size": 0.01,
    "goods": [{"name": "gadget", "reference_price": 50.0, "min_price": 1.0, "max_price": 100.0}],
    "market": {"check_invariants": True},
    "populations": [
        {"name": "rl_buyers", "role": "buyer", "count": 2, "policy": "rl", "fallback": {"policy": "zi_c"},
         "private": {"gadget": {"units": 3, "values": {"distribution": "uniform", "low": 30, "high": 80}}}, "endowment": {"cash": 400}},
        {"name": "rl_sellers", "role": "seller", "count": 1, "policy": "rl",
         "private": {"gadget": {"units": 3, "costs": {"distribution": "uniform", "low": 20, "high": 70}}}, "endowment": {"holdings": {"gadget": 3}}},
        {"name": "zi_buyers", "role": "buyer", "count": 3, "policy": "zi_c",
         "private": {"gadget": {"units": 3, "values": {"distribution": "uniform", "low": 30, "high": 80}}}, "endowment": {"cash": 400}},
        {"name": "zi_sellers", "role": "seller", "count": 3, "policy": "zi_c",
         "private": {"gadget": {"units": 3, "costs": {"distribution": "uniform", "low": 20, "high": 70}}}, "endowment": {"holdings": {"gadget": 3}}},
    ],
}  # fmt: skip

FACTORIES = {
    "double_auction": lambda: MarketParallelEnv("double_auction", populations=["buyers"]),
    "double_auction_box": lambda: MarketParallelEnv("double_auction", populations=["sellers"], decoder="box"),
    "bilateral_haggle": lambda: MarketParallelEnv("bilateral_haggle", populations=["buyers", "sellers"]),
    "two_sided": lambda: MarketParallelEnv(TWO_SIDED),
    "stress": lambda: MarketParallelEnv("financial_market_stress", populations=["llm_traders"], steps=25),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_parallel_api(name: str) -> None:
    env = FACTORIES[name]()
    parallel_api_test(env, num_cycles=40)
    env.close()


@pytest.mark.parametrize("name", ["double_auction", "bilateral_haggle", "two_sided"])
def test_parallel_seed(name: str) -> None:
    parallel_seed_test(FACTORIES[name])


@pytest.mark.parametrize("name", ["double_auction", "bilateral_haggle", "two_sided"])
def test_aec_api_through_parallel_to_aec(name: str) -> None:
    api_test(parallel_to_aec(FACTORIES[name]()), num_cycles=40)


def test_the_two_population_scenario_has_both_populations_as_learners() -> None:
    env = FACTORIES["two_sided"]()
    assert env.possible_agents == ["rl_buyers_0", "rl_buyers_1", "rl_sellers"]
    assert env.learner_populations == ["rl_buyers", "rl_sellers"]
    # roles one-hot: the shared policy tells a buyer from a seller
    obs, _ = env.reset(seed=3)
    assert obs["rl_buyers_0"][-2:].tolist() == [1.0, 0.0] and obs["rl_sellers"][-2:].tolist() == [0.0, 1.0]


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_spaces_are_the_same_object_every_call(name: str) -> None:
    env = FACTORIES[name]()
    for agent in env.possible_agents:
        assert env.observation_space(agent) is env.observation_space(agent) is env.observation_space(env.possible_agents[0])
        assert env.action_space(agent) is env.action_space(agent)
    env.reset(seed=1)
    assert env.observation_space(env.possible_agents[0]) is env.observation_space(env.possible_agents[-1])


def test_gymnasium_check_env_market_and_negotiation() -> None:
    from gymnasium.utils.env_checker import check_env

    check_env(MarketEnv("double_auction", populations=["buyers"]), skip_render_check=True)
    check_env(MarketEnv("double_auction", populations=["sellers"], decoder="box"), skip_render_check=True)
    check_env(NegotiationEnv(), skip_render_check=True)


def test_stable_baselines3_check_env() -> None:
    from stable_baselines3.common.env_checker import check_env

    check_env(MarketEnv("double_auction", populations=["buyers"]), warn=False)
    check_env(NegotiationEnv(), warn=False)
    check_env(MarketEnv(TWO_SIDED, seat="rl_sellers"), warn=False)


def test_registered_ids_make_working_environments() -> None:
    import gymnasium
    import pettingzoo

    from mesa_llm.rl.registration import register_envs

    assert register_envs() == ["mesa_llm/market-v0", "mesa_llm/negotiation-v0"]
    register_envs()  # idempotent
    env = gymnasium.make("mesa_llm/market-v0", scenario="double_auction", populations=["buyers"])
    obs, _ = env.reset(seed=2)
    assert obs.shape == (14,)
    env.step(0)
    par = pettingzoo.make("parallel", "mesa_llm/market-v0", scenario="double_auction", populations=["sellers"])
    observations, _ = par.reset(seed=2)
    assert sorted(observations) == [f"sellers_{i}" for i in range(6)]
    neg = pettingzoo.make("parallel", "mesa_llm/negotiation-v0")
    assert neg.possible_agents == [f"buyers_{i}" for i in range(4)]
    assert gymnasium.make("mesa_llm/negotiation-v0").action_space.n == 12


def test_importing_mesa_llm_rl_registers_nothing() -> None:
    import subprocess
    import sys

    code = (
        "import gymnasium, mesa_llm.rl, mesa_llm.rl.env, mesa_llm.rl.single;"
        "print('mesa_llm/market-v0' in gymnasium.registry)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ})
    assert out.stdout.strip() == "False"
