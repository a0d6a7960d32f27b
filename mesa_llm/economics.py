"""Competitive equilibrium and surplus of induced-value markets (pure numpy, integer ticks).

Used by the model to report the equilibrium a market should reach and the allocative efficiency it
actually reaches (Smith 1962; Gode & Sunder 1993): efficiency = realised gains from trade / the
maximum gains, where the maximum pairs the highest values with the lowest costs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class CompetitiveEquilibrium:
    """The competitive equilibrium of one good: quantity, price range (ticks) and maximum surplus."""

    quantity: int
    price_low: int | None
    price_high: int | None
    max_surplus: int

    @property
    def price(self) -> float | None:
        """Midpoint of the equilibrium price range (ticks, may be fractional)."""
        if self.price_low is None or self.price_high is None:
            return None
        return (self.price_low + self.price_high) / 2


def competitive_equilibrium(values: Iterable[int], costs: Iterable[int]) -> CompetitiveEquilibrium:
    """Equilibrium of unit values (demand) against unit costs (supply).

    Q = the number of units with value_j >= cost_j (values sorted high to low, costs low to high);
    any price in [max(c_Q, v_{Q+1}), min(v_Q, c_{Q+1})] clears Q units; the maximum surplus is the
    sum of v_j - c_j over those Q units.
    """
    v = np.sort(np.fromiter(values, dtype=np.int64))[::-1]
    c = np.sort(np.fromiter(costs, dtype=np.int64))
    n = min(len(v), len(c))
    if n == 0:
        return CompetitiveEquilibrium(0, None, None, 0)
    gains = v[:n] - c[:n]
    q = int(np.count_nonzero(gains >= 0))
    if q == 0:
        return CompetitiveEquilibrium(0, None, None, 0)
    low = int(c[q - 1])
    high = int(v[q - 1])
    if q < len(v):
        low = max(low, int(v[q]))
    if q < len(c):
        high = min(high, int(c[q]))
    return CompetitiveEquilibrium(q, low, high, int(gains[:q].sum()))


def allocative_efficiency(realised_surplus: int, max_surplus: int) -> float | None:
    """Realised over maximum surplus; None when the market has no possible gains from trade."""
    if max_surplus <= 0:
        return None
    return realised_surplus / max_surplus
