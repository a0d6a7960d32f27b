"""The theory the consumer markets are checked against: logit price competition and Bass diffusion.

Logit demand (Calvano, Calzolari, Denicolò and Pastorello, AER 2020): with prices ``p``, qualities
``a``, the outside good's quality ``a0`` and horizontal differentiation ``mu`` > 0, firm i's share of
the consumers is ``q_i = exp((a_i - p_i)/mu) / (sum_j exp((a_j - p_j)/mu) + exp(a0/mu))`` and its
profit per consumer ``(p_i - c_i) q_i``. The one-shot Bertrand-Nash prices solve the first-order
conditions ``p_i = c_i + mu / (1 - q_i(p))`` (scipy's root finder, checked as mutual best
responses); the joint-profit (monopoly) prices maximise the sum of profits (scipy's minimiser on
the joint profit, with its gradient). The profit gain ``Delta = (pi - pi_N) / (pi_M - pi_N)`` reads a
profit on the scale Nash = 0, monopoly = 1.

Bass diffusion (Bass 1969), discrete: ``N_t = N_{t-1} + (p + q N_{t-1}/M)(M - N_{t-1})``; its
coefficients are fitted by least squares on the new adopters per step (linear in p and q when M is
known).

Everything here is pure numpy/scipy: no model, no recording, no randomness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ArrayLike = Sequence[float] | np.ndarray


class EquilibriumError(ValueError):
    """No equilibrium was found for these demand parameters (one line, naming them)."""


@dataclass(frozen=True)
class LogitDemand:
    """Logit demand with an outside option: qualities ``quality`` (one per firm), ``outside_quality``,
    ``mu`` (> 0) and marginal costs ``cost`` (one per firm)."""

    quality: tuple[float, ...]
    outside_quality: float
    mu: float
    cost: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.quality) != len(self.cost) or not self.quality:
            raise ValueError("give one quality and one cost per firm")
        if not self.mu > 0:
            raise ValueError(f"mu must be > 0, got {self.mu}")

    @classmethod
    def of(cls, quality: ArrayLike, outside_quality: float, mu: float, cost: ArrayLike) -> LogitDemand:
        """From any sequences (numbers converted to floats)."""
        return cls(tuple(float(x) for x in quality), float(outside_quality), float(mu), tuple(float(x) for x in cost))

    @property
    def firms(self) -> int:
        """The number of firms."""
        return len(self.quality)

    def shares(self, prices: ArrayLike) -> np.ndarray:
        """Each firm's share of the consumers at ``prices`` (the outside option has the rest);
        computed with the largest exponent factored out, so no overflow for small ``mu``."""
        p = np.asarray(prices, dtype=float)
        z = (np.asarray(self.quality) - p) / self.mu
        z0 = self.outside_quality / self.mu
        top = max(float(z.max()), z0)
        e = np.exp(z - top)
        return e / (e.sum() + math.exp(z0 - top))

    def shares_many(self, prices: np.ndarray) -> np.ndarray:
        """`shares` for many price vectors at once (rows of ``prices``, shape (k, firms))."""
        z = (np.asarray(self.quality)[None, :] - prices) / self.mu
        z0 = np.full((prices.shape[0], 1), self.outside_quality / self.mu)
        top = np.maximum(z.max(axis=1, keepdims=True), z0)
        e = np.exp(z - top)
        return e / (e.sum(axis=1, keepdims=True) + np.exp(z0 - top))

    def outside_share(self, prices: ArrayLike) -> float:
        """The outside option's share at ``prices``."""
        return float(1.0 - self.shares(prices).sum())

    def profits(self, prices: ArrayLike) -> np.ndarray:
        """Each firm's profit per consumer ``(p_i - c_i) q_i`` at ``prices``."""
        p = np.asarray(prices, dtype=float)
        return (p - np.asarray(self.cost)) * self.shares(p)

    def profits_many(self, prices: np.ndarray) -> np.ndarray:
        """`profits` for many price vectors at once (shape (k, firms))."""
        return (prices - np.asarray(self.cost)[None, :]) * self.shares_many(prices)

    # ------------------------------------------------------------------ best responses

    def _others(self, i: int, prices: np.ndarray) -> float:
        """log of the other firms' and the outside option's logit weight (i's excluded)."""
        z = (np.asarray(self.quality) - prices) / self.mu
        terms = np.append(np.delete(z, i), self.outside_quality / self.mu)
        top = float(terms.max())
        return top + math.log(float(np.exp(terms - top).sum()))

    def best_response(self, i: int, prices: ArrayLike) -> float:
        """Firm ``i``'s profit-maximising price against the others' ``prices`` (its own entry is
        ignored): the unique root of ``p - c_i - mu / (1 - q_i(p))``, increasing in p."""
        from scipy.optimize import brentq

        p = np.asarray(prices, dtype=float).copy()
        log_others = self._others(i, p)
        a, c, mu = self.quality[i], self.cost[i], self.mu

        def gap(price: float) -> float:
            # 1 - q_i = 1 / (1 + exp(z_i - log_others)), written without overflow
            x = (a - price) / mu - log_others
            return price - c - mu * (1.0 + math.exp(x)) if x < 700 else -math.inf

        low = c
        high = c + mu * (1.0 + math.exp(min((a - c) / mu - log_others, 700.0))) + mu
        if not math.isfinite(high) or high - low > 1e12:
            raise EquilibriumError(f"firm {i}'s best response is unbounded (it takes the whole market at any price)")
        return float(brentq(gap, low, high, xtol=1e-14, rtol=1e-14, maxiter=500))

    def best_responses(self, prices: ArrayLike) -> np.ndarray:
        """Every firm's best response to ``prices``."""
        p = np.asarray(prices, dtype=float)
        return np.array([self.best_response(i, p) for i in range(self.firms)])

    # ------------------------------------------------------------------ equilibria

    def nash_prices(self) -> np.ndarray:
        """The one-shot Bertrand-Nash prices: the first-order conditions solved by scipy's root
        finder (from the best-response fixed point's neighbourhood) and checked as mutual best
        responses; `EquilibriumError` when no solution passes the check."""
        from scipy.optimize import root

        cost = np.asarray(self.cost)

        def foc(p: np.ndarray) -> np.ndarray:
            return p - cost - self.mu / (1.0 - self.shares(p))

        start = cost + self.mu
        try:
            # a few damped best-response rounds give the solver a start inside the basin
            for _ in range(20):
                start = 0.5 * start + 0.5 * self.best_responses(start)
            with np.errstate(all="ignore"):
                solution = root(foc, start, method="hybr", tol=1e-14)
            prices = np.asarray(solution.x, dtype=float)
            ok = bool(np.all(np.isfinite(prices))) and float(np.max(np.abs(foc(prices)))) < 1e-9 * (1 + float(np.max(np.abs(prices))))
            if ok:
                ok = float(np.max(np.abs(self.best_responses(prices) - prices))) < 1e-7 * (1 + float(np.max(np.abs(prices))))
        except (EquilibriumError, ValueError, FloatingPointError, ZeroDivisionError, OverflowError) as exc:
            raise EquilibriumError(f"no Bertrand-Nash equilibrium found ({' '.join(str(exc).split())[:120]})") from None
        if not ok:
            raise EquilibriumError("no Bertrand-Nash equilibrium found (the first-order conditions have no solution the solver reaches)")
        return prices

    def joint_profit(self, prices: ArrayLike) -> float:
        """The firms' total profit per consumer at ``prices``."""
        return float(self.profits(prices).sum())

    def monopoly_prices(self) -> np.ndarray:
        """The prices maximising the joint profit (scipy's minimiser with the analytic gradient,
        from cost plus mu); `EquilibriumError` when it does not converge to a stationary point."""
        from scipy.optimize import minimize

        cost = np.asarray(self.cost)
        mu = self.mu

        def negative(p: np.ndarray) -> tuple[float, np.ndarray]:
            q = self.shares(p)
            margin = p - cost
            total = float((margin * q).sum())
            # d/dp_i sum_j m_j q_j = q_i - q_i (m_i - sum_j m_j q_j) / mu
            gradient = q - q * (margin - total) / mu
            return -total, -gradient

        try:
            with np.errstate(all="ignore"):
                result = minimize(negative, cost + mu, jac=True, method="BFGS", options={"gtol": 1e-13, "maxiter": 10_000})
            prices = np.asarray(result.x, dtype=float)
            _, gradient = negative(prices)
        except (ValueError, FloatingPointError, OverflowError) as exc:
            raise EquilibriumError(f"no joint-profit maximum found ({' '.join(str(exc).split())[:120]})") from None
        scale = 1 + float(np.max(np.abs(prices))) if np.all(np.isfinite(prices)) else math.inf
        if not np.all(np.isfinite(prices)) or float(np.max(np.abs(gradient))) > 1e-8 * scale:
            raise EquilibriumError("no joint-profit maximum found (the optimiser did not reach a stationary point)")
        return prices


def profit_gain(profit: float, nash_profit: float, monopoly_profit: float) -> float | None:
    """Calvano et al.'s profit gain ``(pi - pi_N) / (pi_M - pi_N)``: 0 at Nash, 1 at monopoly
    (None when the two coincide, e.g. one firm)."""
    span = monopoly_profit - nash_profit
    if abs(span) < 1e-12:
        return None
    return (profit - nash_profit) / span


def calvano_grid(nash: float, monopoly: float, points: int = 15, xi: float = 0.1) -> np.ndarray:
    """Calvano et al.'s price grid: ``points`` equally spaced prices on
    ``[p_N - xi (p_M - p_N), p_M + xi (p_M - p_N)]``."""
    span = monopoly - nash
    return np.linspace(nash - xi * span, monopoly + xi * span, points)


# ---------------------------------------------------------------------- Bass diffusion


def bass_recursion(p: float | ArrayLike, q: float, market: int, steps: int, start: float = 0.0) -> np.ndarray:
    """The discrete Bass curve ``N_0 = start, N_t = N_{t-1} + (p_t + q N_{t-1}/M)(M - N_{t-1})``
    for t = 1..steps (``p`` a number or one per step); returns N_0..N_steps."""
    innovation = np.broadcast_to(np.asarray(p, dtype=float), (steps,))
    out = np.empty(steps + 1)
    out[0] = start
    for t in range(1, steps + 1):
        n = out[t - 1]
        out[t] = n + min(max(innovation[t - 1] + q * n / market, 0.0), 1.0) * (market - n)
    return out


def fit_bass(cumulative: ArrayLike, market: int) -> tuple[float, float] | None:
    """Least-squares (p, q) of a discrete Bass curve (cumulative adopters N_0..N_T, market size M):
    new adopters ``n_t = p (M - N_{t-1}) + q N_{t-1} (M - N_{t-1}) / M`` is linear in p and q.
    None with fewer than two steps or a degenerate curve."""
    n = np.asarray(cumulative, dtype=float)
    if n.size < 3 or market <= 0:
        return None
    before = n[:-1]
    new = np.diff(n)
    left = market - before
    design = np.column_stack([left, before * left / market])
    if np.linalg.matrix_rank(design) < 2:
        return None
    (p, q), *_ = np.linalg.lstsq(design, new, rcond=None)
    return float(p), float(q)


def bass_peak_time(p: float, q: float) -> float | None:
    """The continuous Bass model's peak of new adoptions, ``ln(q/p)/(p+q)`` (None if q <= p)."""
    if p <= 0 or q <= p:
        return None
    return math.log(q / p) / (p + q)


__all__ = [
    "EquilibriumError",
    "LogitDemand",
    "bass_peak_time",
    "bass_recursion",
    "calvano_grid",
    "fit_bass",
    "profit_gain",
]
