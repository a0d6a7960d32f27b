"""Populations: turns a scenario's population specs into agents, their private values and
utilities (drawn from the model's seeded generator), their accounts, and their policies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mesa_llm.agents.llm_policy import LLMPolicy
from mesa_llm.agents.persona import Persona
from mesa_llm.agents.trader import PrivateValues, TraderAgent
from mesa_llm.negotiation import LinearAdditiveUtility, price_utility
from mesa_llm.scenario import Choice, Constant, Normal, PopulationSpec, Uniform
from mesa_llm.world.desk import NegotiationDesk

if TYPE_CHECKING:
    from mesa_llm.model import MarketModel


class PopulationBuilder:
    """Creates one model's agents population by population, in the scenario's order."""

    def __init__(self, model: MarketModel) -> None:
        self.model = model

    def draw(self, source: Any, n: int) -> list[float]:
        """Draw ``n`` numbers from a scenario value source with the model's generator."""
        rng = self.model.rng
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
        round_to_tick = self.model.money.round_to_tick
        return [max(round_to_tick(a), 0) for a in amounts]

    def add_population(self, spec: PopulationSpec) -> None:
        label = spec.label
        members: list[TraderAgent] = []
        cash = self.model.money.round_to_tick(spec.endowment.cash)
        credit = self.model.money.round_to_tick(spec.credit_limit)
        model_name = self.model.resolved_models.get(label)
        policy_name = spec.policy_name
        if spec.wants_llm and model_name is None:
            policy_name = spec.fallback_policy
            self.model.notices.append(
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
            policy = self.model.policy_registry.create(
                policy_name, spec.params if policy_name == spec.policy_name else spec.fallback_params
            )
            agent = TraderAgent(
                self.model,
                persona=persona,
                policy=policy,
                private=private,
                recent_trades=self.model.scenario.market.recent_trades,
                units_shown=self.model.scenario.market.private_units_shown,
                messages_shown=self.model.scenario.market.messages_shown,
            )
            holdings = {g: 0 for g in self.model.exchange.goods}
            holdings.update(spec.endowment.holdings)
            self.model.exchange.open_account(
                agent.unique_id, cash, holdings, credit_limit=credit, short_limit=spec.short_limit
            )
            self.model.initial_cash[agent.unique_id] = cash
            if isinstance(policy, LLMPolicy):
                assert model_name is not None
                policy.bind(
                    self.model.llm.context(
                        persona,
                        spec.templates,
                        model_name,
                        self.model._market_rules_view(label, persona.role),
                        getattr(policy.params, "tool_mode", "auto"),
                    )
                )
            members.append(agent)
            self.model.traders.append(agent)
        self.model.populations[label] = members

    def build_desk(self) -> NegotiationDesk | None:
        """The negotiation desk, when the scenario has negotiations, auctions or utilities."""
        settings = self.model.scenario.negotiation
        uses_utilities = any(p.utilities for p in self.model.scenario.populations)
        if not (settings.spaces or settings.sessions or settings.open_sessions or uses_utilities):
            return None
        desk = NegotiationDesk(
            settings,
            self.model.money,
            self.model.exchange.ledger,
            self.model.rules,
            self.model.reputation,
            roles={a.unique_id: a.role for a in self.model.traders},
            unit_value=self.next_unit_value,
        )
        for spec in self.model.scenario.populations:
            for space_name, uspec in spec.utilities.items():
                for agent in self.model.populations[spec.label]:
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
        agent = self.model._by_id[agent_id]
        pv = agent.private.get(good)
        if pv is None:
            return None
        if pv.values:
            index = agent.units_bought.get(good, 0)
            return self.model.money.to_units(pv.values[index]) if index < len(pv.values) else None
        if pv.costs:
            index = agent.units_sold.get(good, 0)
            return self.model.money.to_units(pv.costs[index]) if index < len(pv.costs) else None
        return None
