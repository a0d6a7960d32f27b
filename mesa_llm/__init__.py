"""mesa_llm: LLM-driven multi-agent negotiation and markets on Mesa.

The world owns the truth (market core, integer ledger); agents — rule-based or LLM — only
express intent as validated actions; a recorder captures every event for replay and analysis.
Importing this package has no side effects: nothing touches the network or the filesystem.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["Simulation", "__version__"]


def __getattr__(name: str) -> Any:
    # `mesa_llm.Simulation` on first use: importing the package stays cheap and side-effect free
    if name == "Simulation":
        from mesa_llm.simulation import Simulation

        return Simulation
    raise AttributeError(f"module 'mesa_llm' has no attribute {name!r}")
