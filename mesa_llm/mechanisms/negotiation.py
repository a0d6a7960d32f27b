"""The negotiation desk as a mechanism: negotiations, calls for proposals and auctions.

An adapter over :class:`mesa_llm.world.desk.NegotiationDesk` (which keeps the protocols, outcome
spaces, contracts and their settlement through the ledger): the sessions a scenario schedules open
at the start of their step, negotiation moves are resolved here, contracts are formed and settled
when the step clears, and the agent's sessions and contracts are its part of the observation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from mesa_llm.actions import (
    AcceptOffer,
    ActionBase,
    Bid,
    CallForProposals,
    EndNegotiation,
    MakeOffer,
    ProposeSettlement,
    RejectOffer,
)
from mesa_llm.mechanisms.base import Mechanism, Record, Recorded

if TYPE_CHECKING:
    from mesa_llm.agents.observation import Observation
    from mesa_llm.agents.roles import Role
    from mesa_llm.agents.trader import TraderAgent
    from mesa_llm.world.desk import NegotiationDesk

#: tools that only make sense inside (or to open) a negotiation or auction
NEGOTIATION_TOOLS = frozenset(
    {"make_offer", "accept_offer", "reject_offer", "end_negotiation", "call_for_proposals", "bid", "propose_settlement"}
)


class NegotiationMechanism(Mechanism):
    """Bilateral and one-to-many negotiations, mediation and auctions, settled as contracts."""

    name: ClassVar[str] = "negotiation"
    summary: ClassVar[str] = "negotiation sessions and auctions; agreements become contracts settled in the ledger"
    builtin: ClassVar[bool] = True
    actions: ClassVar[tuple[type[ActionBase], ...]] = (
        MakeOffer, AcceptOffer, RejectOffer, EndNegotiation, CallForProposals, ProposeSettlement, Bid,
    )  # fmt: skip

    def __init__(
        self, desk: NegotiationDesk, *, sessions: Sequence[Any], populations: Mapping[str, Sequence[Any]], record: Record
    ) -> None:
        """``sessions`` are the scenario's scheduled ones, ``populations`` its agents by label."""
        super().__init__()
        self.desk = desk
        self.sessions = sessions
        self.populations = populations
        self.record = record

    def tools(self, population: str | None, role: Role) -> list[str]:
        return [name for name in role.action_names() if name in NEGOTIATION_TOOLS]

    def available(self, agent: TraderAgent, step: int) -> list[str]:
        """The negotiation tools of the agent's open sessions, and those opening new ones."""
        if self.desk.rules.is_suspended(agent.unique_id, step):
            return []
        return sorted(self.desk.available(agent.unique_id, agent.role))

    def open_scheduled(self, step: int) -> None:
        """Open (and record) the sessions the scenario schedules for ``step``."""
        populations = {label: [a.unique_id for a in members] for label, members in self.populations.items()}
        for spec in self.sessions:
            if spec.at_step == step:
                for event_type, content, agent_id in self.desk.open_scheduled(spec, populations, step):
                    self.record(event_type, content, agent_id)

    def begin_step(self, step: int) -> None:
        self.open_scheduled(step)

    def act(self, agent: TraderAgent, action: ActionBase, step: int) -> list[Recorded]:
        # the desk's own "action" entry stands for the agent's action event, recorded by the resolver
        return [event for event in self.desk.act(agent.unique_id, action, step) if event[0] != "action"]

    def clear(self, step: int) -> None:
        """Advance every session, turn agreements into contracts, settle what is due (recorded)."""
        events, _fulfilled = self.desk.advance(step)  # fulfilled contracts are counted from their events
        for event_type, content, agent_id in events:
            self.record(event_type, content, agent_id)

    def fill_observation(self, observation: Observation, agent: TraderAgent, step: int) -> None:
        observation.negotiations = self.desk.views(agent.unique_id, step)
        observation.contracts = self.desk.contract_views(agent.unique_id)

    def metrics(self) -> dict[str, Any]:
        return self.desk.stats()


__all__ = ["NEGOTIATION_TOOLS", "NegotiationMechanism"]
