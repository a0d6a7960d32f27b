"""The run summary: the headline numbers of a run, and the helpers that compute them."""

from __future__ import annotations

import platform
from dataclasses import dataclass
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
