"""The ``sample_cash_grant`` timeline event: cash issued to populations through the ledger."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from mesa_llm.timeline_events import CustomEvent, TimelineContext


class CashGrant(CustomEvent):
    """Give every agent of the targeted populations (all if omitted) ``amount`` of cash."""

    type: Literal["sample_cash_grant"]
    amount: float = Field(gt=0, description="currency units per agent")

    def apply(self, ctx: TimelineContext) -> dict[str, Any]:
        ticks = ctx.money.to_ticks(self.amount)
        agents = ctx.agents(self.populations)
        for agent in agents:
            ctx.ledger.issue(agent.unique_id, cash=ticks, memo="sample_cash_grant")
        return {"agents_affected": len(agents), "cash_per_agent": self.amount}
