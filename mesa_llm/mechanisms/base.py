"""The mechanism interface: what a market mechanism gives the world, and what the world hands it.

A mechanism is one way agents trade: the call market, the negotiation desk (negotiations and
auctions), or a plugin's own (``mesa_llm.mechanisms`` entry points; e.g. a posted-price consumer
market). The world (resolver, observer, the step pipeline) talks to every mechanism through this
interface only, in this order each step:

1. ``begin_step(step)`` — before observations (open scheduled sessions, reset counters);
2. ``available(agent, step)`` and ``observe(agent, step)`` — the tools the agent may use now and
   the mechanism's part of its observation (``Observation.mechanisms[name]``);
3. ``act(agent, action, step)`` — validate one action against the rules and resolve it, returning
   the events to record after the agent's ``action`` event, or raising `RejectedAction` (reason
   shown to the agent next step);
4. ``clear(step)`` — clearing and settlement through the ledger (`MechanismContext.ledger`, integer
   ticks and units), recording what happened (`MechanismContext.record`).

Around the steps: ``scenario_problems`` checks a scenario's entry before anything is built (one line
per problem, naming the field), ``start()`` runs once the agents exist (accounts, a header event),
``tools(population, role)`` names the tools an agent may ever use (its LLM tool list, the role
permission), ``prompt_rules`` is the mechanism's part of an LLM agent's system prompt,
``metrics()`` its part of the run summary, and, on the analysis side (a recording, never the model),
``report_figures(recording)`` its plots in the HTML report.

A plugin mechanism subclasses :class:`Mechanism` with ``name`` (the entry point's name and the
``type`` of a scenario's ``mechanisms`` entry), ``Params`` (a :class:`MechanismParams` subclass whose
``type`` is ``Literal`` of the name) and ``actions`` (its :class:`~mesa_llm.actions.ActionBase`
classes: they reach LLM tool schemas, ``Simulation.act`` and replays like the built-in ones).
Every random draw comes from ``context.rng``, the run's seeded generator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from mesa_llm.actions import ActionBase, RejectedAction

if TYPE_CHECKING:
    import numpy as np

    from mesa_llm.agents.observation import Observation
    from mesa_llm.agents.roles import Role
    from mesa_llm.agents.trader import TraderAgent
    from mesa_llm.market import Ledger, Money

Recorded = tuple[str, dict[str, Any], int | None]
"""One event to record: ``(event_type, content, agent_id)``; agent_id None for the world's own."""
Record = Callable[[str, dict[str, Any], int | None], None]
"""Records one event (it reaches the recording, the tallies and every subscriber)."""


def emit(events: Iterable[tuple[str, Any, int | None, str | None]], record: Any, record_many: Any = None) -> None:
    """Record a batch of ``(event_type, content, agent_id, text)`` in order: all at once through
    ``record_many`` (the model's `_record_many`) when given, else one by one through ``record``,
    its JSON ``text`` passed only when there is one (recorders of three arguments keep working)."""
    if record_many is not None:
        record_many(events)
        return
    for event_type, content, agent_id, text in events:
        if text is None:
            record(event_type, content, agent_id)
        else:
            record(event_type, content, agent_id, text)


#: names the built-in mechanisms take (a plugin mechanism may not)
BUILTIN_MECHANISMS = frozenset({"call_market", "negotiation"})


#: the social and talk tools: a plugin mechanism's tools are listed before them
_SOCIAL_AND_TALK = frozenset(
    {"forward_message", "propose_alliance", "join_alliance", "leave_alliance", "message_alliance",
     "send_message", "broadcast", "wait"}
)  # fmt: skip


def insert_tools(tools: list[str], extra: list[str]) -> list[str]:
    """``tools`` (a role's, in its order) with ``extra`` (a plugin mechanism's) inserted before the
    social and talk tools; ``tools`` itself when there is nothing to add."""
    extra = [t for t in extra if t not in tools]
    if not extra:
        return tools
    at = next((i for i, name in enumerate(tools) if name in _SOCIAL_AND_TALK), len(tools))
    return [*tools[:at], *extra, *tools[at:]]


class MechanismParams(BaseModel):
    """Base of a mechanism's parameters, as one entry of a scenario's ``mechanisms`` list: unknown
    fields, NaN and infinities are errors. A subclass narrows ``type`` to ``Literal["its_name"]``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: str


@dataclass(frozen=True, slots=True)
class MechanismContext:
    """What the world hands a mechanism: the only doors it gets into the run."""

    #: the resolved scenario (read only)
    scenario: Any
    #: currency units <-> integer ticks
    money: Money
    #: cash and goods move only through the ledger (integer ticks and units, conservation checked)
    ledger: Ledger
    #: the run's seeded generator: every random draw comes from it
    rng: np.random.Generator
    #: records one event of the current step
    record: Record
    #: every agent by id (filled as the populations are built; complete from ``start`` on)
    agents: Mapping[int, TraderAgent]
    #: agent ids per population label (complete from ``start`` on)
    populations: Mapping[str, Sequence[int]]
    #: the run's last step
    horizon: int
    #: where the entry sits in the scenario (``mechanisms.0``), for messages; None for a built-in
    index: int | None = None


class Mechanism:
    """A market mechanism as the world sees it (see the module's docstring for the call order).

    Every method has a neutral default, so a mechanism implements what it needs; a plugin
    mechanism is built with its validated ``params`` and a :class:`MechanismContext`.
    """

    #: the mechanism's name: the entry point's, and the ``type`` of its scenario entry
    name: ClassVar[str] = ""
    #: one line shown by ``mesa-llm plugins`` and docs
    summary: ClassVar[str] = ""
    #: the pydantic model of its scenario entry
    Params: ClassVar[type[MechanismParams]] = MechanismParams
    #: its own actions (tool schemas, parsing, resolution)
    actions: ClassVar[tuple[type[ActionBase], ...]] = ()
    #: the call market and the negotiation desk (configured by the scenario's own sections)
    builtin: ClassVar[bool] = False

    def __init__(self, params: MechanismParams | None = None, context: MechanismContext | None = None) -> None:
        self.params = params
        self._context = context

    @property
    def context(self) -> MechanismContext:
        """What the world handed this mechanism (RuntimeError before it was handed any)."""
        if self._context is None:
            raise RuntimeError(f"mechanism {self.name!r} used without a MechanismContext")
        return self._context

    # ---------------------------------------------------------------- before the run

    @classmethod
    def scenario_problems(cls, params: MechanismParams, scenario: Any) -> list[str]:
        """What is wrong with this entry given the rest of the (validated) ``scenario``: one line
        per problem starting with the field it is about (relative to the entry, e.g. ``firms: no
        population 'x'``). Empty when it can run."""
        return []

    @classmethod
    def sized_populations(cls, params: MechanismParams) -> list[str]:
        """The populations whose size the parameters depend on (e.g. one cost per firm): checks
        that build a small copy of the scenario keep these at their full size."""
        return []

    def start(self) -> None:
        """Once the agents exist, before step 1 (open accounts, record a header event)."""

    # ---------------------------------------------------------------- tools

    def tools(self, population: str | None, role: Role) -> list[str]:
        """The tools an agent of ``population`` with ``role`` may ever use here (its LLM tool list,
        and the permission the resolver checks); none by default."""
        return []

    def available(self, agent: TraderAgent, step: int) -> list[str]:
        """The tools ``agent`` may use now (a subset of `tools`)."""
        return self.tools(agent.population, agent.role)

    def handles(self, action: ActionBase) -> bool:
        """Whether ``action`` is one of this mechanism's."""
        return isinstance(action, self.actions)

    # ---------------------------------------------------------------- the step

    def begin_step(self, step: int) -> None:
        """Before the observations of ``step``."""

    def observe(self, agent: TraderAgent, step: int) -> dict[str, Any] | None:
        """This mechanism's part of ``agent``'s observation (JSON-ready), or None for no part."""
        return None

    def fill_observation(self, observation: Observation, agent: TraderAgent, step: int) -> None:
        """Put this mechanism's part into ``observation``: ``observation.mechanisms[name]`` (the
        built-in mechanisms fill their own fields: ``negotiations``, ``contracts``)."""
        part = self.observe(agent, step)
        if part is not None:
            observation.mechanisms[self.name] = part

    def act(self, agent: TraderAgent, action: ActionBase, step: int) -> list[Recorded]:
        """Validate ``action`` against the rules and resolve it; return the events to record after
        the agent's ``action`` event. Raise `RejectedAction` (with a reason) to refuse it."""
        raise RejectedAction(f"action {action.tool_name!r} is not available in this scenario")

    def clear(self, step: int) -> None:
        """Clearing and settlement at the end of ``step`` (through the ledger; recorded)."""

    # ---------------------------------------------------------------- views

    def prompt_rules(self, population: str | None, role: Role) -> dict[str, Any] | None:
        """What an LLM agent's system prompt says of this mechanism (``market.mechanisms[name]``),
        or None when the agent takes no part."""
        return None

    def metrics(self) -> dict[str, Any]:
        """This mechanism's part of the run summary (JSON-ready)."""
        return {}

    @classmethod
    def report_figures(cls, recording: Any) -> list[tuple[str, str, Any]]:
        """``(title, caption, matplotlib figure)`` panels for the HTML report of a recording that
        used this mechanism (analysis side: reads the recording, never the model)."""
        return []


def mechanism_classes(scenario: Any) -> list[type[Mechanism]]:
    """The class of every entry of the scenario's ``mechanisms`` list, in order (each a plugin's:
    `mesa_llm.plugins.PluginError`, one line, when it is not available)."""
    if not getattr(scenario, "mechanisms", None):
        return []
    from mesa_llm.plugins import current_plugins

    plugins = current_plugins()
    return [plugins.require("mechanisms", entry.type, BUILTIN_MECHANISMS) for entry in scenario.mechanisms]


__all__ = [
    "BUILTIN_MECHANISMS",
    "Mechanism",
    "MechanismContext",
    "MechanismParams",
    "Record",
    "Recorded",
    "emit",
    "RejectedAction",
    "insert_tools",
    "mechanism_classes",
]
