"""Action resolution: applies each agent's validated actions to the world, in a seeded order.

Every action either changes the world through its owner (a market mechanism's actions through that
mechanism: orders through the call market, negotiation moves through the desk, a plugin
mechanism's through it; messages through the mailbox, alliances, the regulator's powers through
the rules, ledger and reputation) and is recorded, or is refused with a reason that is recorded and
shown to the agent at its next step. Nothing here decides anything.
"""

from __future__ import annotations

from functools import partial
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np

from mesa_llm.actions import (
    ActionBase,
    Broadcast,
    Decision,
    FlagViolation,
    ForwardMessage,
    ImposeFine,
    JoinAlliance,
    LeaveAlliance,
    MessageAlliance,
    PlaceOrder,
    ProposeAlliance,
    RejectedAction,
    SendMessage,
    SuspendTrader,
    Wait,
)
from mesa_llm.agents.policies.base import ColumnDecision, OrderColumns
from mesa_llm.agents.roles import Role
from mesa_llm.agents.trader import TraderAgent
from mesa_llm.mechanisms.base import Mechanism, emit
from mesa_llm.social import AllianceError
from mesa_llm.world.state import RecordEncoded, RecordMany, WorldState

#: why a message to nobody but its sender is refused
_TO_YOURSELF = "you cannot send a message to yourself: name another agent"


class ActionResolver:
    """Applies decisions to one world and records what became of every action."""

    def __init__(
        self, world: WorldState, *, rng: np.random.Generator, record: RecordEncoded, encoded: bool = False,
        record_many: RecordMany | None = None,
    ) -> None:  # fmt: skip
        """``rng`` (the run's seeded generator) orders the agents; ``record`` receives every event.
        ``encoded``: a recorder will write the events, so orders are resolved in batches and their
        contents given with their JSON text (without one, one by one and no text is made).
        ``record_many`` (the model's `_record_many`): a batch's events in one call, in effect
        ``record`` for each in order."""
        self.world = world
        self.rng = rng
        self.record = self._record = record
        self.encoded = encoded
        self._record_many = record_many
        #: per agent: the plugin mechanisms' tools it may use (beyond its role's), built on first need
        self._mechanism_tools: dict[int, frozenset[str]] = {}
        #: per (role, tool): whether the role may ever use the tool (`Role.allows`, fixed per role)
        self._allowed: dict[tuple[Role, str], bool] = {}
        #: per action class: the mechanism that handles it, when that follows from the class alone
        self._handlers: dict[type[ActionBase], Mechanism | None] = {}
        #: per role: whether its orders go to a mechanism that places batches (`_batches_orders`)
        self._plain_roles: dict[Role, bool] = {}

    def resolve(self, decisions: list[tuple[TraderAgent, Decision | None]], step: int) -> None:
        """Apply every agent's actions, agents in a seeded random order, each agent's in its order.

        With a recorder (``encoded``), consecutive agents (in that order) whose actions are all
        orders the call market takes are resolved as a batch (`_apply_orders`): the same checks,
        order ids and events, in the same order, as applying them one by one."""
        order = self.rng.permutation(len(decisions)).tolist()
        if self._resolve_columns(decisions, order, step):
            return
        run: list[tuple[TraderAgent, PlaceOrder]] = []  # plain orders not applied yet, in order
        batch = self.encoded  # without a recorder's texts a batch saves nothing (measured: a little slower)
        plain_roles = self._plain_roles
        for index in order:
            agent, decision = decisions[index]
            if decision is None:
                continue
            actions = decision.actions
            if batch and not decision.invalid:
                # the usual agent (one order, a role known to batch) decided here, any other by `_plain_orders`
                if len(actions) == 1 and type(actions[0]) is PlaceOrder and plain_roles.get(agent.role):
                    run.append((agent, actions[0]))
                    continue
                if self._plain_orders(agent, actions):
                    for action in actions:
                        run.append((agent, action))
                    continue
            if run:
                self._apply_orders(run, step)
                run = []
            for invalid in decision.invalid:
                self.reject(agent, invalid.tool_name, invalid.arguments, invalid.reason, step)
            for action in actions:
                self.apply(agent, action, step)
        if run:
            self._apply_orders(run, step)

    def _resolve_columns(self, decisions: list[tuple[TraderAgent, Decision | None]], order: list[int], step: int) -> bool:
        """`resolve`'s loop for a step whose every decision is None or a `ColumnDecision` of one
        `OrderColumns` whose agents' roles batch their orders: the call market places the orders
        in the agents' seeded ``order`` from the columns (`CallMarketMechanism.place_columns`),
        with the same checks, order ids and events as the loop. False, having applied nothing,
        for any other step (the loop resolves it)."""
        columns: OrderColumns | None = None
        positions: list[int] = []  # the orders' places in the columns, in the order they are placed
        add, extend = positions.append, positions.extend
        usual = _one_order_each(decisions, order)
        if usual is not None:  # the usual step: the loop's result read off the decisions as columns
            columns, positions = usual
            order = []
        for index in order:
            decision = decisions[index][1]
            if decision is None:
                continue
            if decision.__class__ is not ColumnDecision:
                return False
            assert isinstance(decision, ColumnDecision)
            if decision.columns is not columns:
                if columns is not None:
                    return False
                columns = decision.columns
            count = decision.count
            if count == 1:
                add(decision.first)
            elif count:
                extend(range(decision.first, decision.first + count))
        if columns is None:
            return False
        if not positions:
            return True  # orders only, and none: nothing to apply or record
        plain_roles = self._plain_roles
        for role in {agent.role for agent in columns.agents}:
            plain = plain_roles.get(role)
            if plain is None:
                plain = plain_roles[role] = self._batches_orders(role, columns.order(positions[0]))
            if not plain:
                return False
        mechanism: Any = self._handlers[PlaceOrder]
        if not hasattr(mechanism, "place_columns"):
            return False
        events: list[tuple[str, Any, int | None, str | None]] = []
        batch = None  # the events as one `TextBatch` (then ``events`` stays empty)
        try:
            batch = mechanism.place_columns(columns, positions, step, events, partial(self._refused, step), self.encoded)
        finally:
            emit(events if batch is None else batch, self._record, self._record_many)
        return True

    def _plain_orders(self, agent: TraderAgent, actions: list[ActionBase]) -> bool:
        """Whether ``actions`` are orders only, each of which `apply` would hand to a mechanism
        that places a batch (the call market's `place_orders`): the role may place orders and
        the handler follows from the class."""
        if len(actions) == 1:
            if type(actions[0]) is not PlaceOrder:
                return False
        else:
            for action in actions:
                if type(action) is not PlaceOrder:
                    return False
            if not actions:
                return True  # nothing to apply
        plain = self._plain_roles.get(agent.role)
        if plain is None:
            plain = self._plain_roles[agent.role] = self._batches_orders(agent.role, actions[0])
        return plain

    def _batches_orders(self, role: Role, order: ActionBase) -> bool:
        """Whether ``role`` may place orders and their handler (the same for every order) places batches."""
        allowed = self._allowed.get((role, "place_order"))
        if allowed is None:
            allowed = self._allowed[role, "place_order"] = role.allows("place_order")
        if not allowed or PlaceOrder not in self._handlers and self.handler(order) is None:
            return False
        return hasattr(self._handlers.get(PlaceOrder), "place_orders")

    def _apply_orders(self, run: list[tuple[TraderAgent, PlaceOrder]], step: int) -> None:
        """`apply` for each ``(agent, order)`` of ``run`` in turn: the mechanism places the orders
        in one pass and gives their events in the order `apply` records them (``action`` and
        ``order``, or ``action_rejected``), each with its content's JSON text; they are recorded
        together, also when something raised (what was placed before, as `apply` had recorded it)."""
        mechanism: Any = self._handlers[PlaceOrder]
        events: list[tuple[str, Any, int | None, str | None]] = []
        try:
            mechanism.place_orders(run, step, events, self.encoded, partial(self._refused, step))
        finally:
            emit(events, self._record, self._record_many)

    @staticmethod
    def _refused(step: int, agent: TraderAgent, action: PlaceOrder, reason: str) -> tuple[str, Any, int, None]:
        """The ``action_rejected`` event of a refused order in a batch (the agent shown it next step)."""
        arguments = {"good": action.good, "side": action.side, "price": action.price,
                     "quantity": action.quantity, "lifetime": action.lifetime}  # fmt: skip
        entry = {"type": "place_order", "arguments": arguments, "reason": reason}
        agent.rejections.append({**entry, "step": step})
        return ("action_rejected", entry, agent.unique_id, None)

    def reject(self, agent: TraderAgent, kind: str, arguments: Any, reason: str, step: int) -> None:
        entry = {"type": kind, "arguments": arguments, "reason": reason}
        self._record("action_rejected", entry, agent.unique_id)
        agent.rejections.append({**entry, "step": step})

    def apply(self, agent: TraderAgent, action: ActionBase, step: int) -> None:
        kind = action.tool_name
        if type(action) is PlaceOrder:  # every agent's order: the dict of `arguments()`, built directly
            arguments = {"good": action.good, "side": action.side, "price": action.price,
                         "quantity": action.quantity, "lifetime": action.lifetime}  # fmt: skip
        else:
            arguments = action.arguments()
        role = agent.role
        allowed = self._allowed.get((role, kind))
        if allowed is None:
            allowed = self._allowed[role, kind] = role.allows(kind)
        if not allowed and kind not in self.mechanism_tools(agent):
            self.reject(agent, kind, arguments, f"role {agent.role.value!r} may not {kind}", step)
            return
        try:
            # an order goes to its mechanism at once: it is none of the world's own actions
            if type(action) is PlaceOrder or not self._apply_own(agent, action, step, kind, arguments):
                mechanism = self.handler(action)
                if mechanism is None:
                    raise RejectedAction(f"action {kind!r} is not available in this scenario")
                events = mechanism.act(agent, action, step)
                self._record("action", {"type": kind, "arguments": arguments}, agent.unique_id)
                for event_type, content, agent_id in events:
                    self._record(event_type, content, agent_id)
        except RejectedAction as exc:
            self.reject(agent, kind, arguments, exc.reason, step)

    def _apply_own(self, agent: TraderAgent, action: ActionBase, step: int, kind: str, arguments: Any) -> bool:
        """Apply one of the world's own actions (messages, waiting, alliances, the regulator's);
        False if ``action`` is none of them (a mechanism's)."""
        if isinstance(action, SendMessage):
            if action.recipient_id == agent.unique_id:
                raise RejectedAction(_TO_YOURSELF)
            recipient = self.world.agents.get(action.recipient_id)
            if recipient is None:
                raise RejectedAction(f"no other agent with id {action.recipient_id}")
            self.send(agent, [recipient], action.text, "direct", step, (kind, arguments))
        elif isinstance(action, Broadcast):
            others = [a for a in self.world.agents.values() if a is not agent]
            self.send(agent, others, action.text, "broadcast", step, (kind, arguments))
        elif isinstance(action, Wait):
            self._record("action", {"type": kind, "arguments": arguments}, agent.unique_id)
        elif isinstance(action, ForwardMessage):
            self._forward(agent, action, step)
        elif isinstance(action, ProposeAlliance | JoinAlliance | LeaveAlliance | MessageAlliance):
            self._alliance_action(agent, action, step)
        elif isinstance(action, FlagViolation | ImposeFine | SuspendTrader):
            self._regulate(agent, action, step)
        else:
            return False
        return True

    def handler(self, action: ActionBase) -> Mechanism | None:
        """The first mechanism that handles ``action`` (None: none does), found once per action
        class while the mechanisms asked decide by class (`Mechanism.handles`, not overridden)."""
        kind = type(action)
        if kind in self._handlers:
            return self._handlers[kind]
        by_class = True
        found = None
        for mechanism in self.world.mechanisms:
            by_class = by_class and getattr(mechanism.handles, "__func__", None) is Mechanism.handles
            if mechanism.handles(action):
                found = mechanism
                break
        if by_class:
            self._handlers[kind] = found
        return found

    def mechanism_tools(self, agent: TraderAgent) -> frozenset[str]:
        """The tools the scenario's plugin mechanisms let ``agent`` use (its role's aside)."""
        tools = self._mechanism_tools.get(agent.unique_id)
        if tools is None:
            tools = frozenset(
                t for m in self.world.mechanisms if not m.builtin for t in m.tools(agent.population, agent.role)
            )
            self._mechanism_tools[agent.unique_id] = tools
        return tools

    def _forward(self, agent: TraderAgent, action: ForwardMessage, step: int) -> None:
        if not self.world.scenario.social.gossip:
            raise RejectedAction("forwarding messages is not allowed in this scenario")
        if agent.unique_id in action.recipient_ids:
            raise RejectedAction(_TO_YOURSELF)
        unknown = [r for r in action.recipient_ids if r not in self.world.agents or r == agent.unique_id]
        if unknown:
            raise RejectedAction(f"no other agent with id {unknown[0]}")
        try:
            message = self.world.mailbox.forward(
                agent.unique_id, agent.name, action.message_id, action.recipient_ids, step, comment=action.comment
            )
        except (KeyError, ValueError) as exc:
            raise RejectedAction(str(exc).strip("'\"")) from None
        self._record("action", {"type": action.tool_name, "arguments": action.arguments()}, agent.unique_id)
        self._record("message", message.record(), agent.unique_id)

    def _alliance_action(self, agent: TraderAgent, action: ActionBase, step: int) -> None:
        if not self.world.scenario.social.alliances:
            raise RejectedAction("alliances are not allowed in this scenario")
        me = agent.unique_id
        try:
            if isinstance(action, ProposeAlliance):
                unknown = [i for i in action.invitee_ids if i not in self.world.agents or i == me]
                if unknown:
                    raise RejectedAction(f"no other agent with id {unknown[0]}")
                events = self.world.alliances.propose(me, action.name, action.invitee_ids, step)
            elif isinstance(action, JoinAlliance):
                events = self.world.alliances.join(me, action.name, step)
            elif isinstance(action, LeaveAlliance):
                events = self.world.alliances.leave(me, action.name, step)
            else:
                assert isinstance(action, MessageAlliance)
                if me not in self.world.alliances.members(action.name):
                    raise RejectedAction(f"you are not a member of {action.name!r}")
                members = [self.world.agents[i] for i in sorted(self.world.alliances.members(action.name)) if i != me]
                if not members:
                    raise RejectedAction(f"you are the only member of {action.name!r}: {_TO_YOURSELF}")
                channel = self.world.alliances.channel(action.name)
                self.send(agent, members, action.text, channel, step, (action.tool_name, action.arguments()))
                return
        except AllianceError as exc:
            raise RejectedAction(str(exc)) from None
        self._record("action", {"type": action.tool_name, "arguments": action.arguments()}, me)
        for event in events:
            self._record("alliance", event, event.get("agent_id"))

    def _regulate(self, agent: TraderAgent, action: ActionBase, step: int) -> None:
        target_id = getattr(action, "agent_id", None)
        target = self.world.agents.get(target_id) if target_id is not None else None
        if target is None:
            raise RejectedAction(f"no agent with id {target_id}")
        reason = getattr(action, "reason", "")
        content: dict[str, Any] = {"type": action.tool_name, "target_id": target.unique_id, "reason": reason}
        if isinstance(action, FlagViolation):
            content["reputation"] = self.world.reputation.flagged(target.unique_id, step)
        elif isinstance(action, ImposeFine):
            paid = self.world.rules.fine(self.world.exchange.ledger, target.unique_id, self.world.money.round_to_tick(action.amount))
            if paid <= 0:
                raise RejectedAction(f"agent {target.unique_id} has no free cash to pay a fine")
            content["amount"] = self.world.money.to_units(paid)
            content["requested"] = action.amount
            content["reputation"] = self.world.reputation.fined(target.unique_id, step)
        else:
            assert isinstance(action, SuspendTrader)
            until = step + action.steps
            self.world.rules.suspend(target.unique_id, until)
            cancelled = self.world.exchange.cancel_all(target.unique_id)
            content["until_step"] = until
            content["orders_cancelled"] = [o.order_id for o in cancelled]
        self._record("action", {"type": action.tool_name, "arguments": action.arguments()}, agent.unique_id)
        self._record("regulator_action", content, agent.unique_id)

    def send(
        self,
        sender: TraderAgent,
        recipients: list[TraderAgent],
        text: str,
        channel: str,
        step: int,
        action: tuple[str, Any] | None = None,
    ) -> None:
        """Queue a message and record it (after ``action``, the sender's ``(type, arguments)``).

        Raises ``RejectedAction`` when the mailbox refuses it (no recipient but the sender, an
        empty text): an agent's bad message is its rejected action, never a crash of the step.
        """
        ids = [r.unique_id for r in recipients]
        try:
            if channel == "broadcast":
                message = self.world.mailbox.broadcast(sender.unique_id, sender.name, ids, text, step)
            else:
                message = self.world.mailbox.send(sender.unique_id, sender.name, ids, text, channel, step)
        except ValueError as exc:
            raise RejectedAction(str(exc)) from None
        if action is not None:
            self._record("action", {"type": action[0], "arguments": action[1]}, sender.unique_id)
        self._record("message", message.record(), sender.unique_id)


_DECISION = itemgetter(1)
_COLUMNS, _COUNT, _FIRST = attrgetter("columns"), attrgetter("count"), attrgetter("first")


def _one_order_each(decisions: list[tuple[TraderAgent, Decision | None]], order: list[int]) -> tuple[OrderColumns, list[int]] | None:
    """What `ActionResolver._resolve_columns`' loop finds, the columns and the orders' places in
    them, when every decision (taken in ``order``) is a `ColumnDecision` of one order of the same
    `OrderColumns`: read with a few passes over the decisions instead of a step of that loop per
    agent. None for any other step (a decision that is None, of no order or of several, another
    class, other columns): the loop then finds it."""
    if len(order) < 2:
        return None
    ordered = list(map(_DECISION, itemgetter(*order)(decisions)))
    if set(map(type, ordered)) != {ColumnDecision} or set(map(_COUNT, ordered)) != {1}:
        return None
    columns = ordered[0].columns
    if set(map(id, map(_COLUMNS, ordered))) != {id(columns)}:
        return None
    return columns, list(map(_FIRST, ordered))
