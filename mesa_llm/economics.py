"""Competitive equilibrium and surplus of induced-value markets (pure numpy, integer ticks).

Used by the model and the analysis to report the equilibrium a market should reach and the
allocative efficiency it actually reaches. The one definition (Smith 1962, "An experimental study of
competitive market behavior", JPE 70; Gode & Sunder 1993, JPE 101, "efficiency = total profit earned
by all traders / maximum total profit"):

    allocative efficiency = realised surplus of the induced-value economy / maximum CE surplus

where the induced-value economy is the agents holding induced values (buyers' redemption values) or
induced costs (sellers' unit costs) for the good, and the maximum pairs the highest values with the
lowest costs. Agents without induced values for a good (market makers, speculators, momentum and
noise traders: *intermediaries*; and any agent for units beyond its schedule) only pass units on: a unit an induced buyer gets counts its value
only if it came, directly or through intermediaries, from an induced seller (whose cost is then
subtracted). Units from intermediaries' own (endowed) inventory add nothing, units sold into
intermediaries' hands and never passed on cost nothing, and intermediaries' trading profits are
transfers, not surplus. Through intermediaries a unit is matched last-in-first-out (the unit an
intermediary bought most recently from an induced seller is the one it passes on: intermediation,
not storage). The realised surplus is then a sum over k values of the value schedule minus k costs
of the cost schedule, so it never exceeds the maximum: efficiency is in [0, 1] whenever realised
surplus is non-negative, else None with the reason (see `efficiency`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

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


def shifted(x: int, scale: float, add: int) -> int:
    """A private value, cost or fundamental (ticks) after a ``shift_private`` shock: scaled, then
    moved by ``add`` ticks, never below 0. The one rule the run, ``analyze`` and the dashboard use."""
    return max(round(x * scale) + add, 0)


def shifted_units(value: float, scale: float, add: float, tick: float) -> float:
    """`shifted` for amounts recorded in currency units with tick size ``tick``: the value the model
    held after the shock, in currency units."""
    ticks = shifted(round(value / tick), scale, math.floor(add / tick + 0.5))
    return round(ticks * tick, 12)


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


@dataclass(frozen=True, slots=True)
class Efficiency:
    """Allocative efficiency in [0, 1], or None with the reason it is undefined."""

    value: float | None
    reason: str | None = None


def efficiency(realised_surplus: int, max_surplus: int, *, induced: bool = True) -> Efficiency:
    """Realised over maximum surplus (see the module docstring), in [0, 1] or None with a reason."""
    if not induced:
        return Efficiency(None, "no induced values or costs (see P&L, wealth and volatility instead)")
    if max_surplus <= 0:
        return Efficiency(None, "no possible gains from trade (the competitive equilibrium trades no unit)")
    ratio = realised_surplus / max_surplus
    if ratio < 0:
        # trades destroyed surplus (units went to buyers valuing them below their sellers' costs)
        return Efficiency(None, f"realised surplus is negative ({realised_surplus} ticks): trades destroyed surplus")
    if ratio > 1:
        # only possible when value/cost shocks re-based the benchmark mid-run
        return Efficiency(None, f"realised surplus {realised_surplus} exceeds the benchmark {max_surplus} (shocks)")
    return Efficiency(ratio)


def allocative_efficiency(realised_surplus: int, max_surplus: int) -> float | None:
    """Realised over maximum surplus in [0, 1]; None when undefined (see `efficiency` for why)."""
    return efficiency(realised_surplus, max_surplus).value


class InducedSurplus:
    """Realised surplus of the induced-value economy, fill by fill (the module docstring's rule).

    `fill` is told the induced values the buyer's units consumed and the induced costs the
    seller's units consumed; a unit beyond either list (an agent without induced values for the
    good, or trading beyond its schedule) is an intermediary's unit on that side.
    """

    __slots__ = ("exported", "imported", "passed", "realised", "_pool")

    def __init__(self) -> None:
        self.realised = 0  # ticks
        self.imported = 0  # units induced buyers got from intermediaries' own inventory
        self.exported = 0  # units induced sellers sold to intermediaries (passed on later or not)
        self.passed = 0  # units that went from an induced seller through intermediaries to a buyer
        self._pool: dict[str, list[int]] = {}  # per good: costs of units waiting with intermediaries

    def fill(self, good: str, quantity: int, values: Sequence[int], costs: Sequence[int]) -> int:
        """Account `quantity` units of `good`; return the surplus (ticks) they realise now."""
        gained = 0
        pool = self._pool.setdefault(good, [])
        for i in range(quantity):
            buyer_induced, seller_induced = i < len(values), i < len(costs)
            if buyer_induced and seller_induced:
                gained += values[i] - costs[i]
            elif buyer_induced:  # from an intermediary: an induced seller's unit it holds, LIFO
                if pool:
                    gained += values[i] - pool.pop()
                    self.passed += 1
                else:
                    self.imported += 1
            elif seller_induced:  # to an intermediary: waits there for an induced buyer
                pool.append(costs[i])
                self.exported += 1
            # else: between intermediaries, a transfer
        self.realised += gained
        return gained


def smiths_alpha_from_moments(count: int, total: int, total_sq: int, ce_price: float | None) -> float | None:
    """Smith's alpha (Smith 1962) from the count, sum and sum of squares of trade prices (ticks):
    100 * RMS(price - P0) / P0, P0 the equilibrium price; None without trades or a positive P0.

    The one implementation: `smiths_alpha` and the model's running `PriceStats` both come here,
    exact in integers (sum((p - P0)^2) = sum(p^2) - 2 P0 sum(p) + n P0^2).
    """
    if not count or ce_price is None or not ce_price > 0:
        return None
    ce = Fraction(ce_price)
    mean_sq = (total_sq - 2 * ce * total + count * ce * ce) / count
    return 100.0 * math.sqrt(mean_sq) / ce_price


def smiths_alpha(prices: Iterable[int], ce_price: float | None) -> float | None:
    """Smith's alpha of trade prices in ticks (see `smiths_alpha_from_moments`)."""
    p = [int(x) for x in prices]
    return smiths_alpha_from_moments(len(p), sum(p), sum(x * x for x in p), ce_price)
