"""What the dashboard's panels show, as plain data: a fold over a recording prefix.

`RunData` reads the events of the recording contract (dicts with ``event_type``, ``step``,
``agent_id``, ``content``) one at a time, from a live run's stream or a recording file alike, and
keeps only what the panels need (bounded: last clearing's orders, last messages). Its methods
return DataFrames and dicts; none of this imports Solara, a chart library or the model, so the
panels' contents are tested without a browser. Texts from agents (messages, plans, reasons) are
kept as data: the panels show them as text, never as HTML or markdown.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# The only import of the negotiation outcome analysis in the dashboard (the module is being
# renamed to negotiation/outcome_space.py: the merge fix is this line).
from mesa_llm.analysis.welfare import agent_welfare, side_totals
from mesa_llm.economics import shifted_units
from mesa_llm.negotiation.outcome_space import nash_point, pareto_frontier, utility_matrix

MESSAGES_KEPT = 200
"""Messages the feed keeps (the newest)."""

GRID_POINTS = 21
"""Values per continuous issue when the utility space of a session is drawn."""


@dataclass
class Session:
    """One negotiation session as far as the prefix goes."""

    session_id: str
    protocol: str | None = None
    parties: list[Any] = field(default_factory=list)
    good: str | None = None
    space: dict[str, Any] | None = None
    opened_step: int | None = None
    offers: list[dict[str, Any]] = field(default_factory=list)
    agreement: dict[str, Any] | None = None
    ended: str | None = None  # the kind of the event that closed it (agreement, disagreement, ...)


class RunData:
    """The panels' state after the events folded so far (see the module docstring)."""

    def __init__(self) -> None:
        self.header: dict[str, Any] = {}
        self.step = 0
        self.complete_step = 0  # the last step whose step_end was seen
        self.status: str | None = None
        self.events_seen = 0
        self._prices: list[dict[str, Any]] = []  # one row per clearing
        self._ce: dict[str, dict[str, Any]] = {}  # current competitive equilibrium per good
        self._ce_rows: list[dict[str, Any]] = []  # (step, good, low, high) as the CE changes
        self.stress: list[dict[str, Any]] = []
        self._step_orders: list[dict[str, Any]] = []
        self._resting: dict[Any, dict[str, Any]] = {}  # orders living beyond their step
        self._last_clearing: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        self.sessions: dict[str, Session] = {}
        self.messages: deque[dict[str, Any]] = deque(maxlen=MESSAGES_KEPT)
        self.messages_total = 0
        self.alliances: dict[str, set[Any]] = {}
        self.reputation: dict[Any, float] = {}
        self._states: dict[Any, dict[str, Any]] = {}  # last agent_state per agent
        self._fills: dict[Any, dict[str, Any]] = {}  # cash/holdings moved by trades per agent
        self._llm: dict[str, Any] = {"calls": 0, "failed": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
        self._plans: dict[Any, tuple[int, str]] = {}
        self._actions: dict[Any, tuple[int, list[str]]] = {}
        self.rejections: deque[dict[str, Any]] = deque(maxlen=MESSAGES_KEPT)
        self._names: dict[Any, str] = {}
        self._population: dict[Any, str] = {}
        self._cache: dict[str, tuple[int, Any]] = {}

    # ------------------------------------------------------------------ folding

    def add_many(self, events: Iterable[Mapping[str, Any]]) -> RunData:
        """Fold events in recording order; returns self."""
        for event in events:
            self.add(event)
        return self

    def add(self, event: Mapping[str, Any]) -> None:
        """Fold one event of the recording contract."""
        kind = event.get("event_type")
        content = event.get("content")
        if not isinstance(content, Mapping):
            content = {}
        raw_step = event.get("step")
        step = raw_step if isinstance(raw_step, int) else self.step
        agent = event.get("agent_id")
        self.events_seen += 1
        self.step = max(self.step, step)
        handler = _HANDLERS.get(str(kind))
        if handler is not None:
            handler(self, content, step, agent)

    def _on_start(self, c: Mapping[str, Any], step: int, agent: Any) -> None:
        self.header = dict(c)
        for a in c.get("agents") or []:
            if isinstance(a, Mapping):
                aid = a.get("agent_id")
                self._names[aid] = str(a.get("name") or aid)
                self._population[aid] = str(a.get("population") or a.get("role") or "")
        ce = c.get("competitive_equilibrium")
        if isinstance(ce, Mapping):
            self._set_ce(ce, 0)

    def _set_ce(self, ce: Mapping[str, Any], step: int) -> None:
        for good, eq in ce.items():
            if isinstance(eq, Mapping):
                self._ce[str(good)] = dict(eq)
                self._ce_rows.append(
                    {"step": step, "good": str(good), "ce_low": _num(eq.get("price_low")), "ce_high": _num(eq.get("price_high"))}
                )

    def _on_step_end(self, c: Mapping[str, Any], step: int, agent: Any) -> None:
        self.complete_step = step

    def _on_end(self, c: Mapping[str, Any], step: int, agent: Any) -> None:
        self.status = str(c.get("status")) if c.get("status") is not None else None

    def _on_order(self, c: Mapping[str, Any], step: int, agent: Any) -> None:
        order = {
            "order_id": c.get("order_id"),
            "agent_id": agent,
            "side": c.get("side"),
            "good": c.get("good"),
            "price": _num(c.get("price")),
            "quantity": c.get("quantity") if isinstance(c.get("quantity"), int) else 0,
            "step": step,
        }
        if self._step_orders and self._step_orders[0]["step"] != step:
            self._step_orders = []
        self._step_orders.append(order)
        if c.get("lifetime") not in (None, "step"):
            self._resting[order["order_id"]] = order

    def _on_order_closed(self, c: Mapping[str, Any], step: int, agent: Any) -> None:
        self._resting.pop(c.get("order_id"), None)

    def _on_clearing(self, c: Mapping[str, Any], step: int, agent: Any) -> None:
        good = str(c.get("good"))
        self._prices.append(
            {
                "step": step,
                "good": good,
                "price": _num(c.get("price")),
                "volume": c.get("volume") if isinstance(c.get("volume"), int) else 0,
                "recorded_fundamental": _num(c.get("fundamental")),
            }
        )
        placed = [o for o in self._step_orders if o["step"] == step and o["good"] == good]
        ids = {o["order_id"] for o in placed}
        resting = [o for o in self._resting.values() if o["good"] == good and o["order_id"] not in ids]
        self._last_clearing[good] = ({**c, "step": step}, placed + resting)

    def _on_trade(self, c: Mapping[str, Any], step: int, agent: Any) -> None:
        price, qty, good = _num(c.get("price")), c.get("quantity"), c.get("good")
        if not isinstance(qty, int) or price is None:
            return
        for side, aid, sign in (("buy", c.get("buyer_id"), 1), ("sell", c.get("seller_id"), -1)):
            fills = self._fills.setdefault(aid, {"cash": 0.0, "holdings": {}})
            fills["cash"] -= sign * price * qty
            fills["holdings"][good] = fills["holdings"].get(good, 0) + sign * qty
            order_id = c.get(f"{side}_order_id")
            order = self._resting.get(order_id)
            if order is not None:
                order["quantity"] -= qty
                if order["quantity"] <= 0:
                    del self._resting[order_id]

    def _on_scheduled(self, c: Mapping[str, Any], step: int, agent: Any) -> None:
        raw = c.get("event")
        event: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        if c.get("phase") == "end":  # a stress event's undo: the span of the event already listed
            for entry in self.stress:
                if not entry["pending"] and entry.get("index") == c.get("index") and entry["end_step"] >= step:
                    entry["end_step"] = step - 1
            self._cache.clear()
            return
        duration = event.get("duration")
        last = step + duration - 1 if isinstance(duration, int) and not isinstance(duration, bool) and duration > 1 else step
        self.stress = [
            e for e in self.stress if not (e["pending"] and e["step"] == step and e["type"] == event.get("type"))
        ]
        self.stress.append(
            {
                "step": step,
                "end_step": last,
                "span": f"steps {step}-{last}" if last > step else f"step {step}",
                "index": c.get("index"),
                "type": str(event.get("type") or "event"),
                "description": str(event.get("description") or ""),
                "good": event.get("good"),
                "pending": False,
                "field": event.get("field"),
                "scale": _num(event.get("scale")) if _num(event.get("scale")) is not None else 1.0,
                "add": _num(event.get("add")) or 0.0,
                "populations": event.get("populations"),
            }
        )
        ce = c.get("competitive_equilibrium")
        if isinstance(ce, Mapping):
            self._set_ce(ce, step)

    def mark_pending(self, step: int, event_type: str, description: str) -> None:
        """Mark an event injected for ``step`` that the model has not applied yet (live mode);
        the recorded ``scheduled_event`` replaces it when the step runs."""
        self._cache.clear()
        self.stress.append(
            {"step": step, "end_step": step, "span": f"step {step}", "index": None, "type": event_type,
             "description": description, "good": None, "pending": True}
        )

    def _on_negotiation(self, c: Mapping[str, Any], step: int, agent: Any) -> None:
        sid = str(c.get("session_id"))
        session = self.sessions.get(sid)
        if session is None:
            session = self.sessions[sid] = Session(sid)
        if c.get("kind") == "opened":
            session.protocol = c.get("protocol")
            session.parties = list(c.get("parties") or [])
            session.good = c.get("good")
            session.space = dict(c["space"]) if isinstance(c.get("space"), Mapping) else None
            session.opened_step = step
        elif c.get("kind") not in (None, "offer"):
            session.ended = session.ended or str(c.get("kind"))

    def _on_offer(self, c: Mapping[str, Any], step: int, agent: Any) -> None:
        session = self.sessions.setdefault(str(c.get("session_id")), Session(str(c.get("session_id"))))
        if isinstance(c.get("terms"), Mapping):
            session.offers.append(
                {"step": step, "round": c.get("round"), "proposer": c.get("proposer", agent), "terms": dict(c["terms"])}
            )

    def _on_agreement(self, c: Mapping[str, Any], step: int, agent: Any) -> None:
        session = self.sessions.setdefault(str(c.get("session_id")), Session(str(c.get("session_id"))))
        session.agreement = {**c, "step": step}
        session.ended = "agreement"

    def _on_message(self, c: Mapping[str, Any], step: int, agent: Any) -> None:
        self.messages_total += 1
        recipients = c.get("recipient_ids") if isinstance(c.get("recipient_ids"), list) else []
        self.messages.append(
            {
                "step": step,
                "sender": self.name(agent),
                "recipients": ", ".join(self.name(r) for r in recipients) if recipients else "everyone",
                "channel": str(c.get("channel") or "direct"),
                "text": str(c.get("text") or ""),
            }
        )

    def _on_alliance(self, c: Mapping[str, Any], step: int, agent: Any) -> None:
        name, action, who = str(c.get("alliance")), c.get("action"), c.get("agent_id", agent)
        members = self.alliances.setdefault(name, set())
        if action in ("created", "joined"):
            members.add(who)
        elif action == "left":
            members.discard(who)
        elif action == "dissolved":
            self.alliances.pop(name, None)

    def _on_reputation(self, c: Mapping[str, Any], step: int, agent: Any) -> None:
        after = _num(c.get("after"))
        if after is not None:
            self.reputation[c.get("agent_id", agent)] = after

    def _on_state(self, c: Mapping[str, Any], step: int, agent: Any) -> None:
        self._states[agent] = {**c, "step": step}

    def _on_llm_call(self, c: Mapping[str, Any], step: int, agent: Any) -> None:
        raw = c.get("usage")
        usage: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        self._llm["calls"] += 1
        self._llm["failed"] += 1 if c.get("error") else 0
        for key in ("prompt_tokens", "completion_tokens"):
            value = usage.get(key)
            self._llm[key] += value if isinstance(value, int) else 0
        cost = _num(c.get("cost_usd"))
        self._llm["cost_usd"] += cost if cost is not None else 0.0

    def _on_plan(self, c: Mapping[str, Any], step: int, agent: Any) -> None:
        self._plans[agent] = (step, str(c.get("text") or ""))

    def _on_action(self, c: Mapping[str, Any], step: int, agent: Any) -> None:
        last = self._actions.get(agent)
        text = f"{c.get('type')} {_short(c.get('arguments'))}"
        if last is None or last[0] != step:
            self._actions[agent] = (step, [text])
        else:
            last[1].append(text)

    def _on_rejected(self, c: Mapping[str, Any], step: int, agent: Any) -> None:
        self.rejections.append(
            {"step": step, "agent": self.name(agent), "action": str(c.get("type")), "reason": str(c.get("reason") or "")}
        )

    # ------------------------------------------------------------------ panels

    def name(self, agent_id: Any) -> str:
        """The agent's name from the header (its id if unknown)."""
        return self._names.get(agent_id, str(agent_id))

    @property
    def goods(self) -> list[str]:
        """Goods of the run (header order, then any seen in clearings)."""
        goods = [str(g) for g in (self.header.get("goods") or {})]
        for row in self._prices:
            if row["good"] not in goods:
                goods.append(row["good"])
        return goods

    def prices(self) -> pd.DataFrame:
        """`price_table`, cached until the next event (every panel of a render asks for it)."""
        cached = self._cache.get("prices")
        if cached is None or cached[0] != self.events_seen:
            cached = self._cache["prices"] = (self.events_seen, self.price_table())
        return cached[1]

    def price_table(self) -> pd.DataFrame:
        """One row per clearing: step, good, price (NaN without trade), volume, ce_low, ce_high
        (the competitive-equilibrium band in force at that step) and fundamental (the mean
        fundamental value of the agents that hold one: the clearing record's, else as of the header
        and the shocks since)."""
        frame = pd.DataFrame(self._prices, columns=["step", "good", "price", "volume", "recorded_fundamental"])
        frame["price"] = pd.to_numeric(frame["price"], errors="coerce").astype(float)
        ce = pd.DataFrame(self._ce_rows, columns=["step", "good", "ce_low", "ce_high"])
        if len(frame) and len(ce):
            frame = pd.merge_asof(
                frame.sort_values("step"), ce.sort_values("step"), on="step", by="good", direction="backward"
            )
        else:
            frame["ce_low"] = np.nan
            frame["ce_high"] = np.nan
        frame["ce_low"] = pd.to_numeric(frame["ce_low"], errors="coerce").astype(float)
        frame["ce_high"] = pd.to_numeric(frame["ce_high"], errors="coerce").astype(float)
        # the clearing record's own value where it has one (exact under stress events), else
        # (older recordings) the header's values and the shift_private shocks since
        recorded = pd.to_numeric(frame.pop("recorded_fundamental"), errors="coerce").astype(float)
        derived = [self._fundamental(g, s) for g, s in zip(frame["good"], frame["step"], strict=True)]
        frame["fundamental"] = recorded.where(recorded.notna(), pd.Series(derived, index=frame.index, dtype=float))
        return frame.reset_index(drop=True)

    def _fundamental(self, good: str, step: int) -> float:
        values: dict[Any, float] = {}
        population: dict[Any, Any] = {}
        for a in self.header.get("agents") or []:
            pv = ((a.get("private") or {}).get(good) or {}) if isinstance(a, Mapping) else {}
            f = _num(pv.get("fundamental")) if isinstance(pv, Mapping) else None
            if f is not None:
                values[a.get("agent_id")] = f
                population[a.get("agent_id")] = a.get("population")
        if not values:
            return math.nan
        tick = _num(self.header.get("tick_size")) or 0.01
        for event in self.stress:  # fundamental shocks recorded so far, in order, per agent as the model does
            if event["step"] <= step and event.get("field") == "fundamental" and event.get("good") == good:
                targets = event.get("populations")
                scale, add = float(event.get("scale", 1.0)), float(event.get("add", 0.0))
                for agent_id, value in values.items():
                    if not targets or population.get(agent_id) in targets:
                        values[agent_id] = shifted_units(value, scale, add, tick)
        return float(np.mean(list(values.values())))

    def stress_events(self) -> pd.DataFrame:
        """Scheduled (stress) events, each once: step (its start), end_step (its last active step),
        span ("steps 20-29"), type, description, good, pending."""
        return pd.DataFrame(self.stress, columns=["step", "end_step", "span", "type", "description", "good", "pending"])

    def supply_demand(self, good: str) -> dict[str, Any] | None:
        """The last clearing of ``good``: its step, price, volume and the step curves of the
        orders it saw: ``demand`` and ``supply`` frames of (quantity, price), cumulative quantity
        against limit price (demand descending, supply ascending). None before any clearing."""
        last = self._last_clearing.get(good)
        if last is None:
            return None
        clearing, orders = last

        def curve(side: str, descending: bool) -> pd.DataFrame:
            rows = sorted(
                ((o["price"], o["quantity"]) for o in orders if o["side"] == side and o["price"] is not None),
                key=lambda r: -r[0] if descending else r[0],
            )
            qty = np.cumsum([q for _, q in rows]) if rows else np.array([], dtype=int)
            # a step curve: each order spans from the quantity before it to the quantity after it
            starts = np.concatenate([[0], qty[:-1]]) if len(qty) else qty
            points = [(float(s), p) for s, (p, _) in zip(starts, rows, strict=True)]
            points += [(float(e), p) for e, (p, _) in zip(qty, rows, strict=True)]
            points.sort(key=lambda r: (r[0], -r[1] if descending else r[1]))
            return pd.DataFrame(points, columns=["quantity", "price"])

        return {
            "step": clearing.get("step"),
            "price": _num(clearing.get("price")),
            "volume": clearing.get("volume"),
            "demand": curve("buy", True),
            "supply": curve("sell", False),
        }

    def session_table(self) -> pd.DataFrame:
        """Negotiation sessions: session_id, protocol, parties (names), good, offers, state."""
        rows = []
        for s in self.sessions.values():
            rows.append(
                {
                    "session_id": s.session_id,
                    "protocol": s.protocol,
                    "parties": " / ".join(self.name(p) for p in s.parties),
                    "good": s.good,
                    "offers": len(s.offers),
                    "state": s.ended or "open",
                }
            )
        return pd.DataFrame(rows, columns=["session_id", "protocol", "parties", "good", "offers", "state"])

    def offers(self, session_id: str) -> pd.DataFrame:
        """Offers of a session over rounds: round, step, proposer (name), issue, value (numeric
        issues; categorical ones as their index in the issue's values) and scaled (the value's
        position in the issue's range, 0 = low, 1 = high: issues of different units on one axis)."""
        s = self.sessions.get(session_id)
        rows = []
        for o in s.offers if s is not None else []:
            for issue, value in o["terms"].items():
                rows.append(
                    {
                        "round": o["round"],
                        "step": o["step"],
                        "proposer": self.name(o["proposer"]),
                        "issue": str(issue),
                        "value": _issue_number(s.space if s else None, str(issue), value),
                        "scaled": _scaled(s.space if s else None, str(issue), value),
                    }
                )
        return pd.DataFrame(rows, columns=["round", "step", "proposer", "issue", "value", "scaled"])

    def utility_space(self, session_id: str) -> dict[str, Any] | None:
        """The session's 2-D utility space (first party on x, second on y): ``outcomes`` (the
        space's grid in utility space), ``pareto`` (its frontier, sorted by x), ``nash`` (x, y or
        None), ``offers`` (each offer's utilities with round and proposer) and ``agreement``
        (x, y or None). None unless both parties' utility functions over the space are in the
        header."""
        from mesa_llm.negotiation import LinearAdditiveUtility, OutcomeError, OutcomeSpace

        s = self.sessions.get(session_id)
        if s is None or s.space is None or len(s.parties) != 2:
            return None
        space_name = self._space_name(s)
        utilities = []
        for party in s.parties:
            data = self._agent(party).get("utilities", {}).get(space_name) if space_name else None
            if not isinstance(data, Mapping):
                return None
            utilities.append(data)
        try:
            space = OutcomeSpace.from_dict(s.space)
            ua, ub = (LinearAdditiveUtility.from_dict(space, u) for u in utilities)
        except (KeyError, TypeError, ValueError):
            return None
        grid = space.grid(GRID_POINTS)
        matrix = utility_matrix([ua, ub], grid)
        frontier = matrix[pareto_frontier([ua, ub], grid)]
        frontier = frontier[np.argsort(frontier[:, 0], kind="stable")]
        nash = nash_point([ua, ub], grid)

        def point(terms: Mapping[str, Any]) -> tuple[float, float] | None:
            try:
                outcome = space.validate(terms)
            except OutcomeError:
                return None
            return float(ua(outcome)), float(ub(outcome))

        offer_rows = []
        for o in s.offers:
            p = point(o["terms"])
            if p is not None:
                offer_rows.append({"x": p[0], "y": p[1], "round": o["round"], "proposer": self.name(o["proposer"])})
        agreement = point(s.agreement["terms"]) if s.agreement and isinstance(s.agreement.get("terms"), Mapping) else None
        return {
            "x_label": f"utility of {self.name(s.parties[0])}",
            "y_label": f"utility of {self.name(s.parties[1])}",
            "outcomes": pd.DataFrame(matrix, columns=["x", "y"]),
            "pareto": pd.DataFrame(frontier, columns=["x", "y"]),
            "nash": tuple(float(v) for v in matrix[nash]) if nash is not None else None,
            "offers": pd.DataFrame(offer_rows, columns=["x", "y", "round", "proposer"]),
            "agreement": agreement,
        }

    def _agent(self, agent_id: Any) -> Mapping[str, Any]:
        for a in self.header.get("agents") or []:
            if isinstance(a, Mapping) and a.get("agent_id") == agent_id:
                return a
        return {}

    def _space_name(self, s: Session) -> str | None:
        spaces = (self.header.get("negotiation") or {}).get("spaces") or {}
        for name, candidate in spaces.items():
            if candidate == s.space:
                return str(name)
        shared = set.intersection(*(set(self._agent(p).get("utilities") or {}) for p in s.parties))
        return next(iter(shared)) if len(shared) == 1 else None

    def message_feed(self) -> pd.DataFrame:
        """The newest messages first: step, sender, recipients (names; "everyone" for a
        broadcast), channel, text (as sent: show it as text)."""
        return pd.DataFrame(list(reversed(self.messages)), columns=["step", "sender", "recipients", "channel", "text"])

    def alliance_table(self) -> pd.DataFrame:
        """Alliances: name and members (names)."""
        rows = [{"alliance": n, "members": ", ".join(self.name(m) for m in sorted(ms, key=str))} for n, ms in self.alliances.items()]
        return pd.DataFrame(rows, columns=["alliance", "members"])

    def reputation_table(self) -> pd.DataFrame:
        """Reputation scores changed so far: agent (name) and score."""
        rows = [{"agent": self.name(a), "reputation": round(v, 3)} for a, v in self.reputation.items()]
        return pd.DataFrame(rows, columns=["agent", "reputation"])

    def agents_table(self) -> pd.DataFrame:
        """One row per agent: population, name, side, cash, holdings, surplus against its own
        private values and what it is measured against, P&L with holdings marked at a stated price
        (the last clearing price, else the reference price), and source ("state" from the last
        ``agent_state`` event; "trades" from the endowment plus trade fills, which leave out fees
        and contracts, when the recording holds no state yet). Surplus and marked P&L come from
        `mesa_llm.analysis.welfare.agent_welfare`, the report's accounting."""
        states: dict[Any, dict[str, Any]] = {}
        sources: dict[Any, str] = {}
        for a in self.header.get("agents") or []:
            if not isinstance(a, Mapping):
                continue
            aid = a.get("agent_id")
            state = self._states.get(aid)
            if state is not None:
                states[aid], sources[aid] = dict(state), "state"
                continue
            endowment = a.get("endowment") or {}
            fills = self._fills.get(aid, {"cash": 0.0, "holdings": {}})
            holdings = dict(endowment.get("holdings") or {})
            for g, q in fills["holdings"].items():
                holdings[g] = holdings.get(g, 0) + q
            states[aid] = {
                "cash": (_num(endowment.get("cash")) or 0.0) + fills["cash"], "holdings": holdings,
                "units_bought": {g: q for g, q in fills["holdings"].items() if q > 0},
                "units_sold": {g: -q for g, q in fills["holdings"].items() if q < 0},
            }  # fmt: skip
            sources[aid] = "trades"
        welfare = agent_welfare(self.header, states, self._marks()).set_index("agent_id")
        rows = []
        for aid, state in states.items():
            cash = _num(state.get("cash"))
            held = state.get("holdings")
            shown: Mapping[str, Any] = held if isinstance(held, Mapping) else {}
            w = welfare.loc[aid] if aid in welfare.index else None
            rows.append(
                {
                    "population": self._population.get(aid, ""), "agent_id": aid, "name": self.name(aid),
                    "side": w["side"] if w is not None else "",
                    "cash": round(cash, 6) if cash is not None else None,
                    "holdings": ", ".join(f"{g}: {q}" for g, q in sorted(shown.items()) if q) or "-",
                    # money to the cent for the page (the report's table formats the same way)
                    "surplus": None if w is None or pd.isna(w["surplus"]) else round(float(w["surplus"]), 2),
                    "measured against": w["surplus_basis"] if w is not None else "",
                    "P&L marked": None if w is None else round(float(w["marked_pnl"]), 2),
                    "marked at": w["marked_at"] if w is not None else "",
                    "source": sources[aid],
                }
            )  # fmt: skip
        columns = ["population", "agent_id", "name", "side", "cash", "holdings", "surplus", "measured against",
                   "P&L marked", "marked at", "source"]  # fmt: skip
        return pd.DataFrame(rows, columns=columns)

    def _marks(self) -> dict[str, float]:
        """Each good's last clearing price so far, else its reference price (as the report marks)."""
        marks: dict[str, float] = {}
        for good, spec in (self.header.get("goods") or {}).items():
            reference = _num(spec.get("reference_price")) if isinstance(spec, Mapping) else None
            if reference is not None:
                marks[str(good)] = reference
        for row in self._prices:
            if row["price"] is not None:
                marks[row["good"]] = row["price"]
        return marks

    def side_totals(self) -> dict[str, dict[str, Any]]:
        """Per side (buyers, sellers, others): agents, surplus against own values, marked P&L."""
        table = self.agents_table().rename(columns={"P&L marked": "marked_pnl"})
        return side_totals(table)

    def side_line(self) -> str:
        """The per-side totals as one line of text ("" without agents)."""
        parts = []
        for side, t in self.side_totals().items():
            surplus = "n/a" if t["surplus"] is None else f"{t['surplus']:,.2f}"
            parts.append(f"{side}: surplus {surplus} / P&L marked {t['marked_pnl']:,.2f}")
        return "   ".join(parts)

    @property
    def llm_agent_ids(self) -> list[Any]:
        """Agents whose policy is an LLM (from the header)."""
        return [
            a.get("agent_id")
            for a in self.header.get("agents") or []
            if isinstance(a, Mapping) and (a.get("policy") == "llm" or a.get("model"))
        ]

    def llm_totals(self) -> dict[str, Any]:
        """LLM calls, failed calls, prompt and completion tokens and cost (USD) so far."""
        return dict(self._llm)

    def llm_agents(self) -> pd.DataFrame:
        """Each LLM agent's last plan (step, text) and its last step's applied actions."""
        rows = []
        for aid in self.llm_agent_ids:
            plan = self._plans.get(aid)
            actions = self._actions.get(aid)
            rows.append(
                {
                    "agent": self.name(aid),
                    "plan_step": plan[0] if plan else None,
                    "plan": plan[1] if plan else "",
                    "actions_step": actions[0] if actions else None,
                    "actions": "; ".join(actions[1]) if actions else "",
                }
            )
        return pd.DataFrame(rows, columns=["agent", "plan_step", "plan", "actions_step", "actions"])

    def rejection_table(self) -> pd.DataFrame:
        """Rejected actions, newest first: step, agent, action, reason."""
        return pd.DataFrame(list(reversed(self.rejections)), columns=["step", "agent", "action", "reason"])

    def panels(self) -> dict[str, bool]:
        """Which panels have something to show in this scenario."""
        has_market = any(row["volume"] or row["price"] is not None for row in self._prices) or any(
            self._last_clearing.get(g, ({}, []))[1] for g in self.goods
        )
        spec = (self.header.get("scenario") or {}).get("spec") or {}
        social = spec.get("social") or {} if isinstance(spec, Mapping) else {}
        return {
            "market": has_market or not self.sessions,
            "supply_demand": any(orders for _, orders in self._last_clearing.values()),
            "negotiation": bool(self.sessions),
            "messages": bool(self.messages_total or self.alliances or self.reputation or social.get("alliances")),
            "agents": bool(self.header.get("agents")),
            "llm": bool(self.llm_agent_ids) or self._llm["calls"] > 0,
        }


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _issue_number(space: Mapping[str, Any] | None, issue: str, value: Any) -> float:
    number = _num(value)
    if number is not None:
        return number
    for spec in (space or {}).get("issues") or []:
        if isinstance(spec, Mapping) and spec.get("name") == issue and isinstance(spec.get("values"), list):
            values = spec["values"]
            return float(values.index(value)) if value in values else math.nan
    return math.nan


def _scaled(space: Mapping[str, Any] | None, issue: str, value: Any) -> float:
    for spec in (space or {}).get("issues") or []:
        if not isinstance(spec, Mapping) or spec.get("name") != issue:
            continue
        values = spec.get("values")
        if isinstance(values, list):
            return values.index(value) / max(len(values) - 1, 1) if value in values else math.nan
        low, high, number = _num(spec.get("low")), _num(spec.get("high")), _num(value)
        if low is not None and high is not None and number is not None and high > low:
            return (number - low) / (high - low)
    return math.nan


def _short(arguments: Any, limit: int = 80) -> str:
    if not isinstance(arguments, Mapping):
        return ""
    text = ", ".join(f"{k}={v}" for k, v in arguments.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_HANDLERS = {
    "simulation_start": RunData._on_start,
    "step_end": RunData._on_step_end,
    "simulation_end": RunData._on_end,
    "order": RunData._on_order,
    "order_cancelled": RunData._on_order_closed,
    "order_expired": RunData._on_order_closed,
    "clearing": RunData._on_clearing,
    "trade": RunData._on_trade,
    "scheduled_event": RunData._on_scheduled,
    "negotiation": RunData._on_negotiation,
    "offer": RunData._on_offer,
    "agreement": RunData._on_agreement,
    "message": RunData._on_message,
    "alliance": RunData._on_alliance,
    "reputation": RunData._on_reputation,
    "agent_state": RunData._on_state,
    "llm_call": RunData._on_llm_call,
    "plan": RunData._on_plan,
    "action": RunData._on_action,
    "action_rejected": RunData._on_rejected,
}
