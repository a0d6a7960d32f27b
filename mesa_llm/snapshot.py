"""``Simulation.state()``: a JSON-ready snapshot of a run between steps (plain dicts and lists,
typed with TypedDicts), cheap enough to take every step: O(agents + resting orders + sessions)."""

from __future__ import annotations

from typing import Any, TypedDict

from mesa_llm.market.orders import Side
from mesa_llm.run_summary import NO_NEGOTIATIONS


class AgentSnapshot(TypedDict):
    """One agent: who it is and what it holds (currency units)."""

    agent_id: int
    name: str
    population: str
    role: str
    policy: str
    cash: float
    reserved_cash: float
    holdings: dict[str, int]


class GoodSnapshot(TypedDict):
    """One good's market: best resting quotes, resting depth and the last clearing."""

    best_bid: float | None
    best_ask: float | None
    bid_depth: int
    ask_depth: int
    last_price: float | None
    last_volume: int
    reference_price: float


class SessionSnapshot(TypedDict):
    """One open negotiation or auction."""

    session_id: str
    protocol: str
    parties: list[int]
    good: str | None
    round: int
    max_rounds: int


class SimulationState(TypedDict):
    """The whole snapshot (``json.dumps`` takes it as it is)."""

    step: int
    max_steps: int
    running: bool
    status: str | None
    agents: list[AgentSnapshot]
    goods: dict[str, GoodSnapshot]
    negotiations: list[SessionSnapshot]
    alliances: dict[str, list[int]]
    reputation: dict[str, float]
    metrics: dict[str, Any]


def snapshot(model: Any, status: str | None) -> SimulationState:
    """The state of ``model`` (a `mesa_llm.model.MarketModel`) now."""
    money = model.money
    to_units = money.to_units
    ledger = model.exchange.ledger
    agents: list[AgentSnapshot] = []
    for a in model.traders:
        account = ledger.account(a.unique_id)
        agents.append(
            {
                "agent_id": a.unique_id,
                "name": a.name,
                "population": a.population,
                "role": a.role.value,
                "policy": a.policy.name,
                "cash": to_units(account.cash),
                "reserved_cash": to_units(account.reserved_cash),
                "holdings": {g: int(q) for g, q in account.holdings.items()},
            }
        )
    book = model.exchange.book
    goods: dict[str, GoodSnapshot] = {}
    for name, s in model.exchange.goods.items():
        bids = book.orders(name, Side.BUY)
        asks = book.orders(name, Side.SELL)
        goods[name] = {
            "best_bid": to_units(max(o.price for o in bids)) if bids else None,
            "best_ask": to_units(min(o.price for o in asks)) if asks else None,
            "bid_depth": sum(o.remaining for o in bids),
            "ask_depth": sum(o.remaining for o in asks),
            "last_price": to_units(s.last_price) if s.last_price is not None else None,
            "last_volume": int(s.last_volume),
            "reference_price": to_units(s.reference_price),
        }
    sessions: list[SessionSnapshot] = []
    if model.desk is not None:
        for session in model.desk.sessions.values():
            if session.status != "open":
                continue
            sessions.append(
                {
                    "session_id": str(session.session_id),
                    "protocol": str(session.protocol),
                    "parties": [int(p) for p in session.parties],
                    "good": session.good,
                    "round": int(session.round),
                    "max_rounds": int(session.max_rounds),
                }
            )
    alliances = {name: sorted(int(m) for m in model.alliances.members(name)) for name in model.alliances.names()}
    reputation = {str(k): float(v) for k, v in model.reputation.scores().items()}
    return {
        "step": int(model.steps),
        "max_steps": int(model.max_steps),
        "running": bool(model.running and model.steps < model.max_steps),
        "status": status,
        "agents": agents,
        "goods": goods,
        "negotiations": sessions,
        "alliances": alliances,
        "reputation": reputation,
        "metrics": metrics(model),
    }


def metrics(model: Any) -> dict[str, Any]:
    """The run's headline metrics so far (the run summary's vocabulary, currency units)."""
    tallies = model.tallies
    report = tallies.efficiency_report()
    out: dict[str, Any] = {
        "trades": tallies.trades,
        "volume": tallies.volume,
        "allocative_efficiency": report.value,
        "allocative_efficiency_note": report.reason,
        "fees": tallies.fees(),
        **(model.desk.stats() if model.desk is not None else NO_NEGOTIATIONS),
    }
    if model.llm_agents:
        run = model.usage.run
        out["llm"] = {"calls": run.calls, "failed_calls": run.failed_calls, "cost_usd": round(run.cost_usd, 6)}
    return out


__all__ = ["AgentSnapshot", "GoodSnapshot", "SessionSnapshot", "SimulationState", "metrics", "snapshot"]
