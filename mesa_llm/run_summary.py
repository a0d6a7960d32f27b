"""The run summary: the headline numbers of a run, and the helpers that compute them."""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import mesa
import numpy as np

from mesa_llm import __version__


def smith_alpha(prices: list[int], ce_price: float | None) -> float | None:
    """Smith's alpha: 100 * RMS deviation of trade prices from the equilibrium price / that price."""
    if not prices or ce_price is None or ce_price <= 0:
        return None
    arr = np.asarray(prices, dtype=np.float64)
    return float(100.0 * np.sqrt(np.mean((arr - ce_price) ** 2)) / ce_price)


@dataclass(slots=True)
class PriceStats:
    """Running aggregates of one good's trade prices (ticks), enough for the run summary.

    Exact integer sums instead of the list of prices, so a run's memory does not grow with its
    trades; `smith_alpha` gives what `smith_alpha` of the full list gives.
    """

    count: int = 0
    total: int = 0  # sum of prices
    total_sq: int = 0  # sum of squared prices

    def add(self, price: int) -> None:
        """Count one trade at `price` (ticks)."""
        p = int(price)
        self.count += 1
        self.total += p
        self.total_sq += p * p

    def smith_alpha(self, ce_price: float | None) -> float | None:
        """Smith's alpha of the prices added so far (see `smith_alpha`)."""
        if not self.count or ce_price is None or ce_price <= 0:
            return None
        ce = Fraction(ce_price)  # exact: sum((p - ce)^2) = sum(p^2) - 2 ce sum(p) + n ce^2
        mean_sq = (self.total_sq - 2 * ce * self.total + self.count * ce * ce) / self.count
        return 100.0 * math.sqrt(mean_sq) / ce_price


@dataclass(slots=True)
class RunSummary:
    """The headline numbers of a run (currency units)."""

    scenario: str
    seed: int
    steps: int
    trades: int
    volume: int
    efficiency: float | None
    goods: dict[str, dict[str, Any]]
    recording: str | None
    stop_reason: str | None = None
    llm: dict[str, Any] | None = None
    negotiation: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (the CLI's ``--json`` output)."""
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "steps": self.steps,
            "trades": self.trades,
            "volume": self.volume,
            "efficiency": self.efficiency,
            "goods": self.goods,
            "recording": self.recording,
            "stop_reason": self.stop_reason,
            "llm": self.llm,
            "negotiation": self.negotiation,
        }


def versions() -> dict[str, str]:
    import pydantic

    return {
        "mesa_llm": __version__,
        "mesa": mesa.__version__,
        "numpy": np.__version__,
        "pydantic": pydantic.__version__,
        "python": platform.python_version(),
    }
