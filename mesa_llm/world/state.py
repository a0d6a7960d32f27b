"""What the world's parts share: the state a step acts on and where they send what happened.

The model builds one `WorldState` and hands it, with its recorder callback and seeded generator,
to the observer and the resolver explicitly. The parts read and change the world through it and
never import or reach back into the model that runs the step pipeline (data flows one way).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # types only: the world's parts import each other, not this module's users
    from mesa_llm.agents.trader import TraderAgent
    from mesa_llm.market import Money
    from mesa_llm.mechanisms.base import Mechanism
    from mesa_llm.scenario import ScenarioSpec
    from mesa_llm.social import AllianceRegistry, Mailbox, Reputation
    from mesa_llm.world.desk import NegotiationDesk
    from mesa_llm.world.exchange import Exchange
    from mesa_llm.world.regulation import MarketRules

Record = Callable[[str, dict[str, Any], int | None], None]
"""Records one event: ``(event_type, content, agent_id)``; agent_id None for the world's own."""


Content = dict[str, Any] | Callable[[], dict[str, Any]]
"""An event's content, or (given with its JSON text) a function making it when it is needed."""


class RecordEncoded(Protocol):
    """Records one event given its content's JSON text (``encoded``, as the recorder's encoder
    makes it) and the content itself or a function making it: the dict is built only if something
    needs more than the text (a subscriber, a recorder that keeps events)."""

    def __call__(
        self, event_type: str, content: Content, agent_id: int | None,
        encoded: str | None = None, /,
    ) -> None: ...  # fmt: skip


RecordItem = tuple[str, Content, int | None, str | None]
"""One event of a batch: ``(event_type, content, agent_id, encoded)``, as `RecordEncoded` takes them."""

RecordMany = Callable[[Iterable[RecordItem]], None]
"""Records a batch of events, in order, as recording each in turn would."""


@dataclass(frozen=True, slots=True)
class WorldState:
    """The parts of one run's world; each is changed only through its own methods."""

    scenario: ScenarioSpec
    money: Money
    rules: MarketRules
    exchange: Exchange
    mailbox: Mailbox
    alliances: AllianceRegistry
    reputation: Reputation
    #: the negotiation desk, None when the scenario has no negotiations, auctions or utilities
    desk: NegotiationDesk | None
    #: every agent by id, in creation order
    agents: Mapping[int, TraderAgent]
    #: the market mechanisms, in clearing order: the call market, the negotiation desk (when the
    #: scenario has one), then the scenario's plugin mechanisms
    mechanisms: tuple[Mechanism, ...] = ()

    @property
    def plugin_mechanisms(self) -> tuple[Mechanism, ...]:
        """The scenario's plugin mechanisms (after the built-in ones)."""
        return tuple(m for m in self.mechanisms if not m.builtin)
