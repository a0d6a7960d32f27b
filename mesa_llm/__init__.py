"""mesa_llm: LLM-driven multi-agent negotiation and markets on Mesa.

The world owns the truth (market core, integer ledger); agents — rule-based or LLM — only
express intent as validated actions; a recorder captures every event for replay and analysis.
Importing this package has no side effects: nothing touches the network or the filesystem.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
