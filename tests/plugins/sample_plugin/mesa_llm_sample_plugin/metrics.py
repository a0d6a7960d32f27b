"""The ``sample_trades_per_step`` metric: trades per step of a run."""

from __future__ import annotations

from typing import Any


def trades_per_step(recording: Any) -> dict[str, float | int | None]:
    """Mean and largest number of trades in a step (None for a run without steps)."""
    steps = recording.final_step
    if not steps:
        return {"mean": None, "max": None}
    trades = recording.trades
    per_step = trades.groupby("step").size() if len(trades) else []
    return {"mean": len(trades) / steps, "max": int(max(per_step, default=0))}
