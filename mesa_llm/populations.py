"""Populations: turns a scenario's population specs into agents, their private values and
utilities (drawn from the model's seeded generator), their accounts, and their policies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import mesa
import numpy as np

from mesa_llm.agents.llm_policy import LLMPolicy
from mesa_llm.agents.persona import Persona
from mesa_llm.agents.policies import ExternalPolicy, PolicyRegistry
from mesa_llm.agents.roles import Role
from mesa_llm.agents.trader import PrivateValues, TraderAgent
from mesa_llm.llm_wiring import LLMWiring
from mesa_llm.market import Money
from mesa_llm.negotiation import LinearAdditiveUtility, price_utility
from mesa_llm.scenario import Choice, Constant, Normal, PopulationSpec, ScenarioSpec, Uniform
from mesa_llm.social import Reputation
from mesa_llm.world.desk import NegotiationDesk
from mesa_llm.world.exchange import Exchange
from mesa_llm.world.regulation import MarketRules

#: an LLM system prompt's view of the market rules for an agent of (population, role)
RulesView = Callable[[str, Role], dict[str, Any]]


class PopulationBuilder:
    """Creates one run's agents population by population, in the scenario's order.

    What it builds is kept here (``traders``, ``populations``, ``initial_cash``, ``notices``) for
    the model to take; accounts are opened in ``exchange``'s ledger; every draw comes from ``rng``.
    """

    def __init__(
        self,
        model: mesa.Model,
        *,
        scenario: ScenarioSpec,
        money: Money,
        exchange: Exchange,
        rng: np.random.Generator,
        policy_registry: PolicyRegistry,
        llm: LLMWiring,
        resolved_models: Mapping[str, str | None],
        rules_view: RulesView,
    ) -> None:
        """``model`` is the Mesa model the agents belong to (Mesa registers them there); nothing
        else of it is used. ``rules_view`` gives LLM agents' system prompts the market rules."""
        self.model = model
        self.scenario = scenario
        self.money = money
        self.exchange = exchange
        self.rng = rng
        self.policy_registry = policy_registry
        self.llm = llm
        self.resolved_models = resolved_models
        self.rules_view = rules_view
        self.traders: list[TraderAgent] = []
        self.populations: dict[str, list[TraderAgent]] = {}
        self.initial_cash: dict[int, int] = {}
        self.notices: list[str] = []
        self.by_id: dict[int, TraderAgent] = {}
        #: agent ids per population label, filled as populations are added
        self.population_ids: dict[str, list[int]] = {}

    def draw(self, source: Any, n: int) -> list[float]:
        """Draw ``n`` numbers from a scenario value source with the run's generator."""
        rng = self.rng
        if isinstance(source, int | float):
            return [float(source)] * n
        if isinstance(source, list):
            if len(source) != n:
                # an explicit schedule fixes the number of units
                return [float(x) for x in source]
            return [float(x) for x in source]
        if isinstance(source, Constant):
            return [source.value] * n
        if isinstance(source, Uniform):
            return rng.uniform(source.low, source.high, size=n).tolist()
        if isinstance(source, Normal):
            draws = rng.normal(source.mean, source.sd, size=n)
            if source.min is not None or source.max is not None:
                draws = np.clip(draws, source.min, source.max)
            return draws.tolist()
        if isinstance(source, Choice):
            return [float(x) for x in rng.choice(np.asarray(source.options), size=n)]
        raise TypeError(f"unsupported value source {source!r}")

    def _ticks(self, amounts: list[float]) -> list[int]:
        round_to_tick = self.money.round_to_tick
        return [max(round_to_tick(a), 0) for a in amounts]

    def add_population(self, spec: PopulationSpec) -> None:
        label = spec.label
        members: list[TraderAgent] = []
        cash = self.money.round_to_tick(spec.endowment.cash)
        credit = self.money.round_to_tick(spec.credit_limit)
        model_name = self.resolved_models.get(label)
        policy_name = spec.policy_name
        if spec.wants_llm and model_name is None:
            policy_name = spec.fallback_policy
            self.notices.append(
                f"population {label!r}: no LLM model configured (--model, the scenario's llm.model "
                f"or MESA_LLM_MODEL): using the built-in {policy_name!r} policy"
            )
        for i in range(spec.count):
            private: dict[str, PrivateValues] = {}
            for good, ps in spec.private.items():
                pv = PrivateValues()
                if ps.values is not None:
                    pv.values = sorted(self._ticks(self.draw(ps.values, ps.units)), reverse=True)
                if ps.costs is not None:
                    pv.costs = sorted(self._ticks(self.draw(ps.costs, ps.units)))
                if ps.fundamental is not None:
                    pv.fundamental = self._ticks(self.draw(ps.fundamental, 1))[0]
                private[good] = pv
            self._auction_reserves(spec, private)
            persona = Persona(
                name=f"{label}_{i}" if spec.count > 1 else label,
                role=spec.role,
                policy=policy_name,
                population=label,
                goal=spec.goal,
                style=spec.style,
                backstory=spec.backstory,
                model=model_name if policy_name == "llm" else None,
            )
            policy = self.policy_registry.create(
                policy_name, spec.params if policy_name == spec.policy_name else spec.fallback_params
            )
            agent = TraderAgent(
                self.model,
                persona=persona,
                policy=policy,
                private=private,
                recent_trades=self.scenario.market.recent_trades,
                units_shown=self.scenario.market.private_units_shown,
                messages_shown=self.scenario.market.messages_shown,
            )
            holdings = {g: 0 for g in self.exchange.goods}
            holdings.update(spec.endowment.holdings)
            self.exchange.open_account(
                agent.unique_id, cash, holdings, credit_limit=credit, short_limit=spec.short_limit
            )
            self.initial_cash[agent.unique_id] = cash
            if isinstance(policy, ExternalPolicy):
                policy.bind_actions(self.llm.action_registry)  # plugin mechanisms' actions too
            if isinstance(policy, LLMPolicy):
                assert model_name is not None
                policy.bind(
                    self.llm.context(
                        persona,
                        spec.templates,
                        model_name,
                        self.rules_view(label, persona.role),
                        getattr(policy.params, "tool_mode", "auto"),
                    )
                )
            members.append(agent)
            self.traders.append(agent)
            self.by_id[agent.unique_id] = agent
        self.populations[label] = members
        self.population_ids[label] = [a.unique_id for a in members]

    def _auction_reserves(self, spec: PopulationSpec, private: dict[str, PrivateValues]) -> None:
        """An auction seller without induced costs values what it auctions at the reserve price:
        its cost of each unit it holds, so surplus, the competitive equilibrium and allocative
        efficiency count the seller's side (price - reserve) as for any induced-cost seller."""
        for session in self.scenario.negotiation.sessions:
            if session.protocol not in ("first_price", "second_price", "english") or session.sellers != spec.label:
                continue
            good = session.good
            units = int(spec.endowment.holdings.get(good, 0)) if good is not None else 0
            pv = private.setdefault(good, PrivateValues()) if good is not None else None
            if pv is not None and not pv.costs and units > 0:
                pv.costs = [self.money.round_to_tick(session.reserve_price)] * units

    def build_desk(self, rules: MarketRules, reputation: Reputation) -> NegotiationDesk | None:
        """The negotiation desk, when the scenario has negotiations, auctions or utilities."""
        settings = self.scenario.negotiation
        uses_utilities = any(p.utilities for p in self.scenario.populations)
        if not (settings.spaces or settings.sessions or settings.open_sessions or uses_utilities):
            return None
        desk = NegotiationDesk(
            settings,
            self.money,
            self.exchange.ledger,
            rules,
            reputation,
            roles={a.unique_id: a.role for a in self.traders},
            unit_value=self.next_unit_value,
        )
        for spec in self.scenario.populations:
            for space_name, uspec in spec.utilities.items():
                for agent in self.populations[spec.label]:
                    utility = self._utility(desk, space_name, uspec)
                    desk.set_utility(agent.unique_id, space_name, utility)
                    agent.utilities[space_name] = utility
        return desk

    def _utility(self, desk: NegotiationDesk, space_name: str, uspec: Any) -> LinearAdditiveUtility:
        """An agent's private utility over a space; a ``reservation_price`` is drawn per agent."""
        space = desk.spaces[space_name]
        reservation = uspec.reservation if uspec.reservation is not None else 0.0
        utility = LinearAdditiveUtility(
            space, uspec.weights or {n: 1.0 for n in space.names}, uspec.preferences, reservation, uspec.discount
        )
        if uspec.reservation_price is not None and "price" in space.names:
            price = self.draw(uspec.reservation_price, 1)[0]
            buyer = uspec.preferences.get("price") == "decreasing"
            if len(space.names) == 1:
                return price_utility(space, buyer=buyer, reservation_price=price, discount=uspec.discount)
            # several issues: the reservation is the price part of the utility at that price
            issue = space.issue("price")
            span = float(issue.high - issue.low) or 1.0  # type: ignore[union-attr]
            share = (issue.high - price) / span if buyer else (price - issue.low) / span  # type: ignore[union-attr]
            reservation = utility.weights["price"] * min(max(share, 0.0), 1.0)
            utility = LinearAdditiveUtility(
                space, utility.weights, uspec.preferences, reservation, uspec.discount
            )
        return utility

    def next_unit_value(self, agent_id: int, good: str) -> float | None:
        """The agent's value (buyer) or cost (seller) of its next unit of ``good``, in currency units."""
        agent = self.by_id[agent_id]
        pv = agent.private.get(good)
        if pv is None:
            return None
        if pv.values:
            index = agent.units_bought.get(good, 0)
            return self.money.to_units(pv.values[index]) if index < len(pv.values) else None
        if pv.costs:
            index = agent.units_sold.get(good, 0)
            return self.money.to_units(pv.costs[index]) if index < len(pv.costs) else None
        return None
