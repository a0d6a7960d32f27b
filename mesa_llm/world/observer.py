"""Observation building: what every agent may see at the start of a step, and nothing more.

Pure with respect to the world: it reads the exchange, ledger, mailbox and rules, and asks every
market mechanism for its part (the desk: sessions and contracts; a plugin mechanism:
``Observation.mechanisms[name]``); it builds one Observation per agent (the public market snapshot
is shared), including the tools the agent may use now (its role's, narrowed by the state and by
what each mechanism offers now: open orders, negotiations, alliances, suspension, plugin tools).
Observations are recorded as they are built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mesa_llm.agents.observation import Encoder, GoodSnapshot, MarketSnapshot, ObservationEncoder
from mesa_llm.agents.observation_batch import ObservationBatch, ObservedAgents
from mesa_llm.agents.roles import Role
from mesa_llm.agents.trader import TraderAgent
from mesa_llm.market import Order
from mesa_llm.mechanisms.base import insert_tools
from mesa_llm.mechanisms.call_market import CALL_MARKET_TOOLS, CallMarketMechanism
from mesa_llm.mechanisms.negotiation import NEGOTIATION_TOOLS
from mesa_llm.social.mailbox import Mailbox
from mesa_llm.text_batch import TextBatch
from mesa_llm.world.state import RecordEncoded, RecordMany, WorldState

#: the tools the built-in mechanisms offer (the call market's and the desk's)
MECHANISM_TOOLS = frozenset(CALL_MARKET_TOOLS) | NEGOTIATION_TOOLS

class Observer:
    """Builds the observations of one world's agents."""

    def __init__(
        self,
        world: WorldState,
        *,
        horizon: int,
        record: RecordEncoded | None = None,
        reputation_shown: int = 0,
        encode: Encoder | None = None,
        record_many: RecordMany | None = None,
    ) -> None:
        """``horizon`` is the run's last step; ``record`` receives every observation built (None:
        observations are not recorded); ``reputation_shown`` is how many agents' reputations an
        observation lists (0: none). With ``encode`` (the recorder's encoder), ``record`` is given
        each observation's JSON text and, instead of its dict, its ``to_dict`` (built only if
        needed): ``record(type, to_dict, agent_id, text)``, the text made with the market part
        encoded once per step and each agent's unchanged parts reused (`ObservationEncoder`).
        ``record_many`` (with ``encode``): records a list of such ``(type, to_dict, agent_id,
        text)`` at once, in order; a plain market's step gives it all its observations."""
        self.world = world
        self.horizon = horizon
        self.record = record
        self.record_many = record_many
        self.encoder = ObservationEncoder(encode) if encode is not None else None
        #: a plain market's observations, built and encoded per step (`observe`)
        self.batch = ObservationBatch(encode if record is not None or record_many is not None else None)
        self.reputation_shown = reputation_shown
        self._plain_tool_cache: dict[Role, tuple[str, ...]] = {}
        #: a plain market's tools by (role, has open orders, has messages to forward)
        self._narrowed: dict[tuple[Role, bool, bool], tuple[str, ...]] = {}
        self._plugins = world.plugin_mechanisms  # a frozen world's: asked once, not per agent
        #: whether a plain population is observed in one pass (`ObservationBatch.observe_step`);
        #: False: agent by agent (the reference it must equal)
        self.columns = True

    def _market_snapshot(self) -> MarketSnapshot:
        to_units = self.world.money.to_units
        goods = {}
        for name, s in self.world.exchange.goods.items():
            low, high = self.admissible(name)
            goods[name] = GoodSnapshot(
                good=name,
                reference_price=to_units(s.reference_price),
                min_price=to_units(low),
                max_price=to_units(high),
                last_price=to_units(s.last_price) if s.last_price is not None else None,
                last_volume=s.last_volume,
                price_low=to_units(s.price_low) if s.price_low is not None else None,
                price_high=to_units(s.price_high) if s.price_high is not None else None,
                excess_demand=s.excess_demand,
                excess_supply=s.excess_supply,
                price_history=[to_units(p) for p in s.history],
                last_trade_step=s.last_trade_step,
                last_clearing_step=s.last_clearing_step,
                best_bid=to_units(s.best_bid) if s.best_bid is not None else None,
                best_ask=to_units(s.best_ask) if s.best_ask is not None else None,
            )
        return MarketSnapshot(goods=goods)

    def admissible(self, good: str) -> tuple[int, int]:
        """The good's admissible price range in ticks, narrowed by any price floor or cap."""
        return self.world.exchange.admissible(good)

    def _order_view(self, order: Order) -> dict[str, Any]:
        return {
            "order_id": order.order_id,
            "good": order.good,
            "side": "buy" if order.side > 0 else "sell",
            "price": self.world.money.to_units(order.price),
            "quantity": order.quantity,
            "remaining": order.remaining,
            "lifetime": order.lifetime.value,
            "step": order.step,
        }

    def available_actions(self, agent: TraderAgent, step: int, open_orders: Sequence[Order] | None = None) -> list[str]:
        """The tools this agent may use now: its role's, narrowed by the state of the world
        (``open_orders``: the agent's open orders, if the caller has looked them up already)."""
        me = agent.unique_id
        suspended = self.world.rules.is_suspended(me, step) if self.world.rules.suspended_until else False
        social = self.world.scenario.social
        plugins = self._plugins
        if self.world.desk is None and not social.alliances and not suspended:
            # the common case of a plain market: only two tools depend on the state (whether the
            # agent has open orders, and messages to forward); one list per role and state
            out = list(self._plain_narrowed(agent, open_orders))
            return self._with_plugin_tools(out, agent, step) if plugins else out
        # what the built-in mechanisms offer now (the call market, the desk)
        offered = {t for m in self.world.mechanisms if m.builtin for t in m.available(agent, step)}
        out = []
        for name in agent.role._names():
            if name in MECHANISM_TOOLS:
                ok = name in offered
            elif name == "forward_message":
                ok = social.gossip and bool(self.world.mailbox.received(me))
            elif name == "propose_alliance":
                ok = social.alliances
            elif name == "join_alliance":
                ok = social.alliances and bool(self.world.alliances.invitations_of(me))
            elif name in ("leave_alliance", "message_alliance"):
                ok = social.alliances and bool(self.world.alliances.alliances_of(me))
            else:
                ok = True
            if ok:
                out.append(name)
        return self._with_plugin_tools(out, agent, step) if plugins else out

    def _plain_narrowed(self, agent: TraderAgent, open_orders: Sequence[Order] | None) -> tuple[str, ...]:
        """A plain market's tools for ``agent`` (no negotiations, alliances, suspension or plugin
        tools): only two depend on the state, whether it has open orders and messages to forward;
        one tuple per role and state, the same object each time."""
        role, me = agent.role, agent.unique_id
        plain = self._plain_tools(role)
        orders = "cancel_order" not in plain or bool(
            open_orders if open_orders is not None else self.world.exchange.open_orders(me)
        )
        received = "forward_message" not in plain or bool(self.world.mailbox.received(me))
        key = (role, orders, received)
        narrowed = self._narrowed.get(key)
        if narrowed is None:
            gone = {n for n, ok in (("cancel_order", orders), ("forward_message", received)) if not ok}
            narrowed = self._narrowed[key] = tuple(n for n in plain if n not in gone)
        return narrowed

    def _with_plugin_tools(self, out: list[str], agent: TraderAgent, step: int) -> list[str]:
        """``out`` with the tools the plugin mechanisms offer ``agent`` now, before its social and
        talk tools (suspended agents get none)."""
        if self.world.rules.suspended_until and self.world.rules.is_suspended(agent.unique_id, step):
            return out
        return insert_tools(out, [t for m in self._plugins for t in m.available(agent, step)])

    def _plain_tools(self, role: Role) -> tuple[str, ...]:
        """A role's tools in a market without negotiations or alliances (cached per role)."""
        cached = self._plain_tool_cache.get(role)
        if cached is None:
            skip = set(NEGOTIATION_TOOLS) | {"propose_alliance", "join_alliance", "leave_alliance", "message_alliance"}
            if not self.world.scenario.market.call_market:
                skip.add("place_order")
            if not self.world.scenario.social.gossip:
                skip.add("forward_message")
            cached = tuple(n for n in role.action_names() if n not in skip)
            self._plain_tool_cache[role] = cached
        return cached

    def observe(
        self,
        step: int,
        recent_messages: Sequence[dict[str, Any]] = (),
        recent_trades: Sequence[dict[str, Any]] = (),
    ) -> Sequence[tuple[TraderAgent, Any]]:
        """Every agent's observation at the start of ``step``, in agent order (and recorded).

        ``recent_messages`` and ``recent_trades`` (last step's) are what a regulator surveils.
        """
        market = self._market_snapshot()
        ledger = self.world.exchange.ledger
        reputation_shown = self.reputation_shown
        reputation_table = (
            {str(k): v for k, v in self.world.reputation.table(limit=reputation_shown).items()} if reputation_shown else {}
        )
        surveillance = {
            "messages": list(recent_messages[-100:]),
            "trades": list(recent_trades[-100:]),
            "rules": self.world.rules.view(),
        }
        encoder = self.encoder
        keyed = encoder is not None
        # looked up once per step, not per agent
        horizon, money, open_orders_of = self.horizon, self.world.money, self.world.exchange.open_orders
        mechanisms, alliances = self.world.mechanisms, self.world.scenario.social.alliances
        # the call market's part is a no-op (its snapshot and open orders are fields of their own)
        mechanisms = tuple(m for m in mechanisms if type(m).fill_observation is not CallMarketMechanism.fill_observation)
        suspended_until = self.world.rules.suspended_until
        record, regulator = self.record, Role.REGULATOR
        if (
            self.world.desk is None and not alliances and not reputation_shown and not self._plugins
            and not mechanisms and not suspended_until
        ):  # fmt: skip
            return self._observe_plain(step, market, surveillance)
        out = []
        for agent in self.world.agents.values():
            me = agent.unique_id
            orders = open_orders_of(me)
            open_orders = [self._order_view(o) for o in orders] if orders else []
            obs = agent.observe(
                step=step, horizon=horizon, market=market, ledger=ledger, money=money, open_orders=open_orders, keyed=keyed
            )  # fmt: skip
            obs.available_actions = self.available_actions(agent, step, orders)
            for mechanism in mechanisms:
                mechanism.fill_observation(obs, agent, step)
            if reputation_shown:
                obs.reputation = reputation_table
            if alliances:
                obs.alliances = self.world.alliances.view(me)
            if agent.role is regulator:
                obs.surveillance = surveillance
            if suspended_until and self.world.rules.is_suspended(me, step):
                obs.suspended_until = suspended_until[me]
            if record is not None:
                if encoder is None:
                    record("observation", obs.to_dict(), me)
                else:
                    record("observation", obs.to_dict, me, encoder.to_json(obs))
            agent.start_step()
            out.append((agent, obs))
        return out

    def _observe_plain(
        self, step: int, market: MarketSnapshot, surveillance: dict[str, Any]
    ) -> Sequence[tuple[TraderAgent, Any]]:
        """`observe` in a plain market (no negotiations, alliances, reputation, suspensions or
        plugin mechanisms): every agent's observation built in one pass (`ObservationBatch`), and
        recorded with its text in one batch (``record_many``), or one by one (``record``)."""
        world, batch, order_view = self.world, self.batch, self._order_view
        batch.begin(step, self.horizon, market, world.exchange.ledger, world.money)
        open_orders_of, narrowed, regulator = world.exchange.open_orders, self._plain_narrowed, Role.REGULATOR
        generic = TraderAgent.observe
        record, record_many = self.record, self.record_many
        # an empty book (day orders expire at each clearing): nobody has open orders to look up
        any_orders = len(world.exchange.book) > 0
        # `_plain_narrowed` inlined: which of a role's two state-dependent tools it has, then the
        # tools kept per (role, has open orders, has messages to forward)
        needs: dict[Role, tuple[bool, bool]] = {}
        kept, received = self._narrowed, world.mailbox.received
        agents = list(world.agents.values())
        if self.columns and not any_orders and (
            (record is None and record_many is None) or (record_many is not None and batch.encode is not None)
        ):
            kinds = {(type(agent), agent.role) for agent in agents}
            if all(cls.observe is generic and cls.start_step is TraderAgent.start_step and role is not regulator
                   for cls, role in kinds):  # fmt: skip
                return self._observe_columns(agents, kinds)
        # the recorded texts, by agent (one `TextBatch`: streamed as one text when it may)
        ids: list[int] = []
        texts: list[str] = []
        observed: list[Any] = []
        out: list[tuple[TraderAgent, Any]] = []
        try:
            for agent in agents:
                me, role = agent.unique_id, agent.role
                orders = open_orders_of(me) if any_orders else ()
                open_orders = [order_view(o) for o in orders] if orders else []
                need = needs.get(role)
                if need is None:
                    plain = self._plain_tools(role)
                    need = needs[role] = ("cancel_order" in plain, "forward_message" in plain)
                tools = kept.get((role, not need[0] or bool(orders), not need[1] or bool(received(me))))
                if tools is None:
                    tools = narrowed(agent, orders)
                if type(agent).observe is generic:
                    obs, text = batch.observe(agent, open_orders, tools, surveillance if role is regulator else None)
                else:  # an agent class of its own: its own observe, encoded as a whole
                    obs = agent.observe(step=step, horizon=self.horizon, market=market, ledger=world.exchange.ledger,
                                        money=world.money, open_orders=open_orders)  # fmt: skip
                    obs.available_actions = list(tools)
                    if role is regulator:
                        obs.surveillance = surveillance
                    text = self.encoder.encode(obs.to_dict()) if self.encoder is not None else None
                if record_many is not None and text is not None:
                    ids.append(me)
                    texts.append(text)
                    observed.append(obs)
                elif record_many is not None:
                    _record_texts(record_many, ids, texts, observed)
                    ids, texts, observed = [], [], []
                    record_many([("observation", obs.to_dict(), me, None)])
                elif record is not None:  # as the per-agent loop records (a 3-argument recorder without text)
                    if text is None:
                        record("observation", obs.to_dict(), me)
                    else:
                        record("observation", obs.to_dict, me, text)
                agent.start_step()
                out.append((agent, obs))
        finally:  # what was observed is recorded, also when an agent's observation failed
            if ids and record_many is not None:
                _record_texts(record_many, ids, texts, observed)
        return out


    def _observe_columns(self, agents: list[TraderAgent], kinds: set[tuple[type, Role]]) -> ObservedAgents:
        """`_observe_plain` for a population of `TraderAgent`'s own observe and no regulator, with
        no open orders: one pass (`ObservationBatch.observe_step`), every observation made only
        when read, the texts recorded as one batch."""
        # each role's tools: without open orders, only messages to forward can change them
        by_role: dict[Role, tuple[str, ...] | None] = {}
        anyone_received = self.world.mailbox.anyone_received()
        for _, role in kinds:
            plain = self._plain_tools(role)
            if "forward_message" not in plain or not anyone_received:
                key = (role, "cancel_order" not in plain, "forward_message" not in plain)
                tools = self._narrowed.get(key)
                if tools is None:
                    gone = {n for n, ok in (("cancel_order", key[1]), ("forward_message", key[2])) if not ok}
                    tools = self._narrowed[key] = tuple(n for n in plain if n not in gone)
                by_role[role] = tools
            else:
                by_role[role] = None
        if all(tools is not None for tools in by_role.values()):
            shown = [by_role[agent.role] for agent in agents]
        else:
            narrowed = self._plain_narrowed
            shown = [by_role[agent.role] or narrowed(agent, ()) for agent in agents]
        # the texts as pieces when recording (the recorder joins them into its lines, each copied once)
        record_many = self.record_many
        observed, pieces = self.batch.observe_step(agents, shown, pieces=record_many is not None)  # type: ignore[arg-type]
        if pieces is not None and record_many is not None and agents:
            record_many(TextBatch("observation", [agent.unique_id for agent in agents], None, observed.observations(),
                                  pieces=pieces))  # fmt: skip
        return observed


def _record_texts(record_many: RecordMany, ids: list[int], texts: list[str], observations: Sequence[Any]) -> None:
    """Record the observations of the agents ``ids``, with their ``texts``, as one `TextBatch`."""
    if ids:
        record_many(TextBatch("observation", ids, texts, observations))


def deliver_messages(mailbox: Mailbox, agents: Mapping[int, TraderAgent]) -> list[dict[str, Any]]:
    """Deliver the messages sent last step to their recipients' inboxes (each sees them in its next
    observation) and return every delivered message once, with all its recipients, in id order
    (what a regulator surveils)."""
    seen: dict[int, dict[str, Any]] = {}
    for recipient_id, messages in mailbox.deliver().items():
        agent = agents.get(recipient_id)
        if agent is None:
            continue
        for message in messages:
            view = message.view()
            agent.inbox.append(view)
            seen.setdefault(message.message_id, {**view, "recipient_ids": list(message.recipient_ids)})
    return [seen[k] for k in sorted(seen)]
