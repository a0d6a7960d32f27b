"""Calvano et al.'s (AER 2020) Q-learning pricing experiment, vectorised across sessions (numpy).

Each session is one market of n Q-learning firms on Calvano's grid of m prices; the state is last
period's prices (m^n states); each firm keeps its own Q-table, initialised to the discounted profit
of each price against uniformly random rivals, and plays epsilon-greedy with ``epsilon_t =
exp(-beta t)``. A session has converged when no firm's greedy strategy (argmax Q in every state)
has changed for ``convergence`` consecutive periods; its outcome is then the limit cycle the greedy
strategies play from the last state, and its profit gain ``(pi - pi_N) / (pi_M - pi_N)`` is the
firms' mean profit over that cycle on the Nash (0) to monopoly (1) scale.

All sessions advance together, one period per numpy pass (a converged session is frozen), so the
cost of a period barely depends on the number of sessions. Random numbers come from one seeded
``numpy.random.Generator``. The in-run policy (`mesa_llm_consumer_markets.policies.QLearningPricer`)
is the same algorithm for one agent inside a mesa_llm run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mesa_llm_consumer_markets.economics import LogitDemand, calvano_grid, profit_gain


@dataclass
class SessionsResult:
    """What a batch of sessions reached."""

    #: the price grid and the theory it was built from
    grid: np.ndarray
    nash_price: float
    monopoly_price: float
    #: per session: converged, the period it converged at (or the last period run), the profit
    #: gain and mean price of its limit cycle, and the cycle's length
    converged: np.ndarray
    steps: np.ndarray
    profit_gain: np.ndarray
    mean_price: np.ndarray
    cycle_length: np.ndarray
    #: periods run in all (the slowest session's)
    periods: int

    def summary(self) -> dict[str, float]:
        """Mean profit gain and its 95% confidence interval (Student t), steps to convergence."""
        from scipy import stats

        gains = self.profit_gain
        n = len(gains)
        mean = float(gains.mean())
        half = float(stats.t.ppf(0.975, n - 1) * gains.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        return {
            "sessions": n,
            "converged": int(self.converged.sum()),
            "profit_gain_mean": mean,
            "profit_gain_ci_low": mean - half,
            "profit_gain_ci_high": mean + half,
            "steps_mean": float(self.steps.mean()),
            "steps_median": float(np.median(self.steps)),
            "steps_min": float(self.steps.min()),
            "steps_max": float(self.steps.max()),
            "mean_price": float(self.mean_price.mean()),
        }


def joint_profits(demand: LogitDemand, grid: np.ndarray) -> np.ndarray:
    """Every joint price vector's profits on the grid, shape (m^n, n), firm 0's price the slowest."""
    n = demand.firms
    mesh = np.stack(np.meshgrid(*([grid] * n), indexing="ij"), axis=-1).reshape(-1, n)
    return demand.profits_many(mesh)


def run_sessions(
    demand: LogitDemand,
    sessions: int,
    *,
    m: int = 15,
    xi: float = 0.1,
    alpha: float = 0.15,
    beta: float = 4e-6,
    delta: float = 0.95,
    convergence: int = 100_000,
    max_periods: int = 10_000_000,
    seed: int = 0,
    chunk: int = 4096,
    progress: Callable[[int, int], None] | None = None,
) -> SessionsResult:
    """Run ``sessions`` independent Q-learning sessions to convergence (or ``max_periods``);
    ``progress(period, converged sessions)`` is called after every ``chunk`` periods."""
    rng = np.random.default_rng(seed)
    n = demand.firms
    nash = float(demand.nash_prices().mean())
    monopoly = float(demand.monopoly_prices().mean())
    grid = calvano_grid(nash, monopoly, m, xi)
    profits = joint_profits(demand, grid)  # (A, n)
    states = m**n
    powers = m ** np.arange(n - 1, -1, -1)
    # Q[(session, firm, state), price]: initialised as Calvano et al. (the same in every state)
    q0 = np.stack([profits[:, i].reshape((m,) * n).mean(axis=tuple(j for j in range(n) if j != i)) for i in range(n)])
    q0 = q0 / (1.0 - delta)  # (n, m)
    q = np.broadcast_to(q0[None, :, None, :], (sessions, n, states, m)).reshape(-1, m).copy()
    greedy = q.argmax(axis=1)  # (S * n * A,)
    base = (np.arange(sessions)[:, None] * n + np.arange(n)[None, :]) * states  # (S, n) row offsets
    state = rng.integers(states, size=sessions)
    stable = np.zeros(sessions, dtype=np.int64)
    converged_at = np.full(sessions, -1, dtype=np.int64)
    active = np.ones(sessions, dtype=bool)
    period = 0
    while period < max_periods and active.any():
        size = min(chunk, max_periods - period)
        uniforms = rng.random((size, sessions, n))
        randoms = rng.integers(m, size=(size, sessions, n))
        epsilons = np.exp(-beta * np.arange(period, period + size))
        for k in range(size):
            rows = base + state[:, None]  # (S, n): each firm's row for the current state
            action = np.where(uniforms[k] < epsilons[k], randoms[k], greedy[rows])
            following = action @ powers
            reward = profits[following]  # (S, n)
            best_next = q[base + following[:, None]].max(axis=2)
            current = q[rows, action]
            updated = current + alpha * (reward + delta * best_next - current)
            q[rows, action] = np.where(active[:, None], updated, current)
            new_greedy = q[rows].argmax(axis=2)
            changed = (new_greedy != greedy[rows]).any(axis=1)
            greedy[rows] = new_greedy
            stable = np.where(changed, 0, stable + 1)
            done = active & (stable >= convergence)
            if done.any():
                converged_at[done] = period + k + 1
                active &= ~done
            state = following
        period += size
        if progress is not None:
            progress(period, int((~active).sum()))
    steps = np.where(converged_at >= 0, converged_at, period)
    gains = np.empty(sessions)
    prices = np.empty(sessions)
    lengths = np.empty(sessions, dtype=np.int64)
    nash_profit = float(demand.profits(demand.nash_prices()).mean())
    monopoly_profit = float(demand.profits(demand.monopoly_prices()).mean())
    for s in range(sessions):
        cycle = _limit_cycle(greedy, int(s * n * states), n, states, powers, int(state[s]))
        cycle_profits = profits[cycle].mean()
        gains[s] = profit_gain(float(cycle_profits), nash_profit, monopoly_profit) or 0.0
        prices[s] = float(grid[np.stack([(np.asarray(cycle) // p) % m for p in powers], axis=1)].mean())
        lengths[s] = len(cycle)
    return SessionsResult(grid, nash, monopoly, converged_at >= 0, steps, gains, prices, lengths, period)


def _limit_cycle(greedy: np.ndarray, offset: int, n: int, states: int, powers: np.ndarray, start: int) -> list[int]:
    """The states of the cycle the greedy strategies reach from ``start`` (each state visited once)."""
    seen: dict[int, int] = {}
    path: list[int] = []
    s = start
    while s not in seen:
        seen[s] = len(path)
        path.append(s)
        actions = np.array([greedy[offset + i * states + s] for i in range(n)])
        s = int(actions @ powers)
    return path[seen[s] :]


__all__ = ["SessionsResult", "joint_profits", "run_sessions"]
