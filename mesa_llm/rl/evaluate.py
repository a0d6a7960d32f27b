"""`evaluate`: a checkpoint against the population's built-in policy and a random policy in the
same seats, on the same seeds (paired): episode reward and profit with 95% confidence intervals.

Three runs per seed: ``trained`` — the learners run the checkpoint as their policy (``policy: rl``
with ``params.checkpoint``, exactly as ``mesa-llm run`` runs it); ``baseline`` — the learners'
populations back on their built-in policy (``fallback``, else the role's default); ``random`` —
actions drawn uniformly from the action space with a generator seeded by the episode's seed.
Profit, averaged over the learners: in a market the change in mark-to-market wealth over the episode
(`mesa_llm.rl.rewards.mark_to_market`); in a negotiation the surplus of its agreements over its
reservation price (`PriceSurplus`: a car bought for 8,000 with a reservation price of 9,000 is
1,000). Reward is the checkpoint's reward summed over the episode.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mesa_llm.agents.observation import Observation
from mesa_llm.rl.checkpoint import Checkpoint, load_checkpoint
from mesa_llm.rl.codecs import ActionDecoder, ObservationEncoder
from mesa_llm.rl.env import baseline_spec
from mesa_llm.rl.rewards import PriceSurplus, Reward, build_reward, mark_to_market
from mesa_llm.scenario import ScenarioSpec, validate_scenario
from mesa_llm.simulation import ExternalAgentError, Simulation, prepare_scenario

ARMS = ("trained", "baseline", "random")
#: seeds evaluation starts at by default: far from the training seeds (seed, seed + 1, ...)
EVAL_SEED_OFFSET = 100_000


def mean_ci(values: Sequence[float]) -> dict[str, float | int | None]:
    """n, mean and the t-based 95% confidence interval of the mean."""
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    n = int(x.size)
    if n == 0:
        return {"n": 0, "mean": None, "ci_low": None, "ci_high": None}
    mean = float(x.mean())
    if n < 2 or float(x.std(ddof=1)) == 0.0:
        return {"n": n, "mean": mean, "ci_low": mean, "ci_high": mean}
    from scipy import stats

    half = float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return {"n": n, "mean": mean, "ci_low": mean - half, "ci_high": mean + half}


def switch_policy(spec: ScenarioSpec, populations: Sequence[str], params: dict[str, Any]) -> ScenarioSpec:
    """``spec`` with ``populations`` on ``policy: rl`` with ``params`` (e.g. a checkpoint), checked."""
    raw = spec.model_dump(mode="json")
    for data in raw["populations"]:
        label = data.get("name") or data.get("role")
        if label in populations:
            data.update(policy="rl", params=dict(params))
    checked = validate_scenario(raw, source=f"<scenario {spec.name}>")
    checked.source_dir = spec.source_dir
    return prepare_scenario(checked)


Actor = Callable[[np.ndarray, Observation], Any]


def run_episode(
    spec: ScenarioSpec, seed: int, populations: Sequence[str], reward: Reward,
    encoder: ObservationEncoder, decoder: ActionDecoder, actor: Actor | None = None, negotiation: bool = False,
) -> dict[str, float]:  # fmt: skip
    """One run of ``spec`` with ``seed``: the mean over the learners' seats (the agents of
    ``populations``) of their summed reward and their profit. ``actor`` (vector, observation) ->
    action drives seats that are external; without it the seats' policies decide."""
    sim = Simulation.from_scenario(spec, seed=seed, record=False)
    try:
        seats = [a["agent_id"] for a in sim.agents() if a["population"] in populations]
        external = set(sim.external_agents)
        observe = {}
        start = {}
        surplus = PriceSurplus() if negotiation else None
        for agent_id in seats:
            observe[agent_id] = _observe(sim, agent_id)
            start[agent_id] = sim.account(agent_id)
            reward.reset(agent_id, start[agent_id], observe[agent_id])
            if surplus is not None:
                surplus.reset(agent_id, start[agent_id], observe[agent_id])
        gained = dict.fromkeys(seats, 0.0)
        totals = dict.fromkeys(seats, 0.0)
        while not sim.done:
            if actor is not None:
                for agent_id in seats:
                    obs = observe[agent_id]
                    if obs is None or agent_id not in external:
                        continue
                    action = decoder.check(actor(encoder.encode(obs), obs), obs.name)
                    mask = decoder.mask(obs)
                    if mask is not None and not mask[action]:
                        continue
                    decoded = decoder.decode(action, obs)
                    if decoded:
                        sim.act(agent_id, decoded)
            sim.step()
            for agent_id in seats:
                observe[agent_id] = None if sim.done else _observe(sim, agent_id)
                account = sim.account(agent_id)
                totals[agent_id] += reward(agent_id, account, observe[agent_id])
                if surplus is not None:
                    gained[agent_id] += surplus(agent_id, account, observe[agent_id])
        if surplus is not None:
            profits = list(gained.values())
        else:
            profits = [mark_to_market(sim.account(a)) - mark_to_market(start[a]) for a in seats]
        return {"reward": float(np.mean(list(totals.values()))), "profit": float(np.mean(profits))}
    finally:
        sim.close()


def _observe(sim: Simulation, agent_id: int) -> Observation | None:
    try:
        return sim.observe(agent_id)
    except ExternalAgentError:
        return None


def evaluate(
    checkpoint: str | Path | Checkpoint,
    *,
    episodes: int = 20,
    seed: int | None = None,
    scenario: str | Path | None = None,
    arms: Sequence[str] = ARMS,
) -> dict[str, Any]:
    """The checkpoint's reward and profit against the baseline and random arms, paired over
    ``episodes`` seeds (``seed``, ``seed + 1``, ...; default the training seed + 100,000).
    ``scenario``: evaluate in another scenario than the one trained on (its spaces must match)."""
    ck = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    if episodes < 1:
        raise ValueError("--episodes must be at least 1")
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"arm {unknown[0]!r}: arms are {', '.join(ARMS)}")
    populations = ck.populations
    spec = prepare_scenario(scenario) if scenario is not None else prepare_scenario(ck.scenario_spec())
    missing = [p for p in populations if p not in {q.label for q in spec.populations}]
    if missing:
        raise ValueError(f"checkpoint {ck.zip_path}: population {missing[0]!r} is not in scenario {spec.name!r}")
    ck.check_scenario(spec, populations)
    first = int(seed) if seed is not None else int(ck.sidecar.get("seed") or 0) + EVAL_SEED_OFFSET
    seeds = list(range(first, first + episodes))
    reward_desc = ck.sidecar.get("reward") or {"name": "pnl"}
    encoder, decoder = ck.encoder, ck.decoder
    specs = {
        "trained": switch_policy(spec, populations, {"checkpoint": str(ck.zip_path)}),
        "baseline": baseline_spec(spec, populations),
        "random": switch_policy(spec, populations, {}),
    }
    results: dict[str, list[dict[str, float]]] = {arm: [] for arm in arms}
    space = decoder.space
    negotiation = encoder.name == "negotiation"
    for s in seeds:
        for arm in arms:
            actor: Actor | None = None
            if arm == "random":
                rng = np.random.default_rng(s)
                space.seed(int(rng.integers(2**31)))
                actor = lambda _vec, _obs: space.sample()  # noqa: E731
            results[arm].append(run_episode(specs[arm], s, populations, build_reward(reward_desc), encoder, decoder, actor, negotiation=negotiation))
    report: dict[str, Any] = {
        "checkpoint": str(ck.zip_path), "scenario": spec.name, "populations": populations, "episodes": episodes,
        "seeds": [seeds[0], seeds[-1]], "reward": reward_desc, "arms": {}, "paired": {},
        "profit": "agreement surplus over the reservation price" if negotiation else "change in mark-to-market wealth",
    }  # fmt: skip
    for arm, rows in results.items():
        report["arms"][arm] = {metric: mean_ci([r[metric] for r in rows]) | {"values": [r[metric] for r in rows]} for metric in ("reward", "profit")}
    if "trained" in results:
        for other in (a for a in arms if a != "trained"):
            report["paired"][f"trained-{other}"] = {
                metric: mean_ci([t[metric] - o[metric] for t, o in zip(results["trained"], results[other], strict=True)])
                for metric in ("reward", "profit")
            }  # fmt: skip
    return report


__all__ = ["ARMS", "evaluate", "mean_ci", "run_episode", "switch_policy"]
