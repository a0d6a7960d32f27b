"""The interface of timeline event types that come from plugins (the ``mesa_llm.events`` group).

A scenario's ``timeline`` holds the built-in types (``shift_private``, ``endow``, ``set_params`` and
the stress events of :mod:`mesa_llm.stress`) and any type a plugin registers: a subclass of
:class:`CustomEvent` whose ``type`` is a ``Literal`` of its name. The world applies it at the start
of its ``at_step`` by calling :meth:`CustomEvent.apply` with a :class:`TimelineContext` — the only
door it gets into the world, so it changes money and goods through the ledger like everything else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import numpy as np

    from mesa_llm.agents.trader import TraderAgent
    from mesa_llm.market import Ledger, Money


class TimelineContext(Protocol):
    """What a timeline event may read and change when it is applied (handed in by the world)."""

    #: the step being started
    step: int
    #: the run's seeded generator: every random draw of an event comes from it
    rng: np.random.Generator
    #: currency units <-> integer ticks
    money: Money
    #: the ledger: cash and goods move only through ``issue`` / ``retire`` / transfers
    ledger: Ledger

    def agents(self, populations: Sequence[str] | None = None) -> list[TraderAgent]:
        """The agents of ``populations`` (labels; every agent when None), in creation order."""
        ...

    def set_params(self, agent: TraderAgent, updates: Mapping[str, Any]) -> None:
        """Change some of ``agent``'s policy parameters (validated by the policy's Params)."""
        ...

    def record(self, event_type: str, content: dict[str, Any], agent_id: int | None = None) -> None:
        """Record one more event of this step (it reaches the recording and every subscriber)."""
        ...


class CustomEvent(BaseModel):
    """Base of a plugin's timeline event type.

    Subclass it, narrow ``type`` to ``Literal["your_name"]``, add your fields (validated like any
    scenario field: unknown fields and NaN are errors) and implement :meth:`apply`. Register the
    class under the ``mesa_llm.events`` entry-point group with the same name.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    type: str
    at_step: int = Field(ge=1, description="the step at whose start the event is applied")
    populations: list[str] | None = Field(default=None, description="targeted populations (all if omitted)")
    description: str = ""

    def apply(self, ctx: TimelineContext) -> dict[str, Any]:
        """Apply the event to the world at the start of ``ctx.step``; return what the
        ``scheduled_event`` record should say besides the event itself (e.g. ``{"agents_affected": 3}``)."""
        raise NotImplementedError(f"{type(self).__name__}.apply")


__all__ = ["CustomEvent", "TimelineContext"]
