"""Auction outcomes of a recording: bids against private values, the winner, surplus, efficiency
and revenue against theory.

One row per auction session (sealed bid, first or second price, and English). Values are the
bidders' private values of the good (the header's ``private[good].values``, the first unit's); the
seller's reserve and the pricing rule come from the scenario spec in the header. Surplus, in money:
the winner's value - price for the winner, price - reserve for the seller; the maximum is the
highest value - reserve when that is positive (Vickrey 1961; Krishna, *Auction Theory*, ch. 2).

Expected revenue: with independent private values uniform on [a, b], n bidders and a reserve r,
every standard auction (first price, second price, English) earns the same in expectation
(revenue equivalence): a P(sale) + (b - a) [2n/(n+1) (1 - p^(n+1)) - (1 - p^n)], p = (r - a)/(b - a)
clipped to [0, 1]; with r <= a that is a + (b - a)(n - 1)/(n + 1). When the values' distribution is
not known, revenue is set against the realised second-highest value (the price of a second-price or
English auction with truthful bidders).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from mesa_llm.analysis.loader import Recording
from mesa_llm.analysis.negotiation_metrics import negotiation_sessions
from mesa_llm.analysis.units import finite

__all__ = ["AUCTION_PROTOCOLS", "auction_bids", "auction_results", "auction_rows", "expected_revenue_uniform"]

#: recorded protocols of auction sessions
AUCTION_PROTOCOLS = frozenset({"sealed_bid", "english"})
# the scenario spec's protocol names of each recorded auction protocol
_SPEC_PROTOCOLS = {"sealed_bid": ("first_price", "second_price"), "english": ("english",)}


def expected_revenue_uniform(n: int, low: float, high: float, reserve: float = 0.0) -> float:
    """Expected revenue of a standard auction of one unit to ``n`` bidders with independent private
    values uniform on [low, high] and a reserve price (revenue equivalence; the module docstring)."""
    if n < 1 or high <= low:
        raise ValueError(f"expected_revenue_uniform: needs n >= 1 and high > low, got n={n}, [{low}, {high}]")
    p = min(max((reserve - low) / (high - low), 0.0), 1.0)
    sale = 1.0 - p**n
    return low * sale + (high - low) * (2.0 * n / (n + 1) * (1.0 - p ** (n + 1)) - sale)


def _values(rec: Recording, good: str) -> dict[int, float]:
    """agent id -> its private value of its first unit of ``good`` (agents with one)."""
    out: dict[int, float] = {}
    for agent in rec.header.get("agents") or []:
        private = (agent.get("private") or {}).get(good) if isinstance(agent, Mapping) else None
        values = private.get("values") if isinstance(private, Mapping) else None
        if isinstance(values, list) and values and finite(values[0]) is not None and isinstance(agent.get("agent_id"), int):
            out[agent["agent_id"]] = float(values[0])
    return out


def _spec_session(rec: Recording, protocol: str, good: Any, opened_step: int) -> Mapping[str, Any]:
    """The scenario's session spec this auction came from ({} when none matches)."""
    spec = (rec.header.get("scenario") or {}).get("spec") or {}
    sessions = ((spec.get("negotiation") or {}).get("sessions") or []) if isinstance(spec, Mapping) else []
    for s in sessions:
        if (
            isinstance(s, Mapping)
            and s.get("protocol") in _SPEC_PROTOCOLS.get(protocol, ())
            and s.get("good") == good
            and int(s.get("at_step") or 0) == opened_step
        ):
            return s
    return {}


def _distribution(rec: Recording, good: Any, bidders: list[int]) -> tuple[float, float] | None:
    """(low, high) when every bidder's value of ``good`` was drawn from one uniform distribution."""
    spec = (rec.header.get("scenario") or {}).get("spec") or {}
    populations = {str(p.get("name")): p for p in spec.get("populations") or [] if isinstance(p, Mapping)}
    of_agent = {a.get("agent_id"): a.get("population") for a in rec.header.get("agents") or [] if isinstance(a, Mapping)}
    found: set[tuple[float, float]] = set()
    for bidder in bidders:
        population = populations.get(str(of_agent.get(bidder)))
        private = ((population or {}).get("private") or {}).get(good) if population else None
        values = private.get("values") if isinstance(private, Mapping) else None
        if not isinstance(values, Mapping) or values.get("distribution") != "uniform":
            return None
        low, high = finite(values.get("low")), finite(values.get("high"))
        if low is None or high is None or high <= low:
            return None
        found.add((low, high))
    return found.pop() if len(found) == 1 else None


def auction_bids(rec: Recording, session_id: str) -> pd.DataFrame:
    """One row per bidder of an auction session: bidder (id), name, value, bid (its last sealed
    bid, or its highest bid in an English auction; NaN if it never bid), shading (1 - bid/value)
    and won (bool), highest value first."""
    columns = ["bidder", "name", "value", "bid", "shading", "won"]
    sessions = negotiation_sessions(rec)
    row = sessions[sessions["session_id"] == session_id]
    if row.empty or row["protocol"].iloc[0] not in AUCTION_PROTOCOLS:
        return pd.DataFrame(columns=columns)
    parties = row["parties"].iloc[0] if isinstance(row["parties"].iloc[0], list) else []
    good = row["good"].iloc[0]
    values = _values(rec, str(good))
    offers = rec.offers
    mine = offers[(offers["session_id"] == session_id) & (offers["kind"] == "bid")] if len(offers) else offers
    bids: dict[int, float] = {}
    english = row["protocol"].iloc[0] == "english"
    for proposer, terms in zip(mine.get("proposer", []), mine.get("terms", []), strict=False):
        price = finite(terms.get("price")) if isinstance(terms, Mapping) else None
        if price is None or pd.isna(proposer):
            continue
        b = int(proposer)
        # a sealed bid replaces the bidder's earlier one; an English bidder's bid is its highest
        bids[b] = max(bids.get(b, price), price) if english else price
    winner = _winner(rec, session_id)
    names = {a.get("agent_id"): str(a.get("name") or a.get("agent_id")) for a in rec.header.get("agents") or []}
    rows = []
    for bidder in [int(p) for p in parties[1:]]:
        value, bid = values.get(bidder), bids.get(bidder)
        shading = 1.0 - bid / value if value and bid is not None else None
        rows.append(
            {
                "bidder": bidder, "name": names.get(bidder, str(bidder)), "value": value,
                "bid": bid, "shading": shading, "won": bidder == winner,
            }
        )  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("value", ascending=False, kind="stable", na_position="last").reset_index(drop=True)


def _winner(rec: Recording, session_id: str) -> int | None:
    """The buyer of the session's fulfilled contract (None: no sale, or the sale was not settled)."""
    contracts = rec.contracts
    if not len(contracts):
        return None
    done = contracts[(contracts["session_id"] == session_id) & (contracts["status"] == "fulfilled")]
    return int(done["buyer_id"].iloc[0]) if len(done) else None


def auction_results(rec: Recording) -> list[dict[str, Any]]:
    """One dict per auction session (the module docstring): session_id, protocol, pricing, good,
    seller, bidders (n), reserve, closed_step, sold, winner (name), winner_value, price, highest
    value, second_value, highest_value_won, winner_surplus, seller_surplus, realised_surplus,
    max_surplus, efficiency (None when no gain was possible), revenue, expected_revenue (None when
    the values' distribution is not known), revenue_benchmark (what revenue is set against, in
    words) and bids (the rows of `auction_bids`)."""
    sessions = negotiation_sessions(rec)
    if sessions.empty:
        return []
    agreements = rec.table("agreement")
    contracts = rec.contracts
    names = {a.get("agent_id"): str(a.get("name") or a.get("agent_id")) for a in rec.header.get("agents") or []}
    out = []
    for s in sessions.itertuples(index=False):
        if s.protocol not in AUCTION_PROTOCOLS:
            continue
        parties = [int(p) for p in s.parties] if isinstance(s.parties, list) else []
        spec = _spec_session(rec, str(s.protocol), s.good, int(s.opened_step))
        reserve = finite(spec.get("reserve_price")) or 0.0
        pricing = spec.get("protocol") if s.protocol == "sealed_bid" else "english"
        agreed = agreements[agreements["session_id"] == s.session_id] if len(agreements) else agreements
        if s.protocol == "sealed_bid" and len(agreed) and "pricing" in agreed and isinstance(agreed["pricing"].iloc[0], str):
            pricing = agreed["pricing"].iloc[0]
        bids = auction_bids(rec, s.session_id)
        values = sorted((v for v in bids["value"] if finite(v) is not None), reverse=True)
        highest = values[0] if values else None
        second = values[1] if len(values) > 1 else None
        winner = _winner(rec, s.session_id)
        price = None
        if winner is not None:
            done = contracts[(contracts["session_id"] == s.session_id) & (contracts["status"] == "fulfilled")]
            price = finite(done["price"].iloc[0])
        winner_value = next((v for b, v in zip(bids["bidder"], bids["value"], strict=True) if b == winner), None)
        sold = winner is not None and price is not None
        winner_surplus = winner_value - price if sold and winner_value is not None and price is not None else None
        seller_surplus = price - reserve if sold and price is not None else None
        realised = (winner_surplus or 0.0) + (seller_surplus or 0.0) if sold else 0.0
        max_surplus = max(highest - reserve, 0.0) if highest is not None else None
        efficiency = realised / max_surplus if max_surplus else None
        bounds = _distribution(rec, s.good, parties[1:])
        expected = (
            expected_revenue_uniform(len(parties) - 1, bounds[0], bounds[1], reserve) if bounds else None
        )
        if bounds:
            benchmark = (
                "independent private values uniform on "
                f"[{bounds[0]:,.2f}, {bounds[1]:,.2f}], {len(parties) - 1} bidders, reserve {reserve:,.2f} "
                "(revenue equivalence: first price, second price and English alike)"
            )
        else:
            benchmark = "values' distribution not known: revenue against the second-highest value"
        out.append(
            {
                "session_id": s.session_id, "protocol": s.protocol, "pricing": pricing, "good": s.good,
                "seller": names.get(parties[0], str(parties[0])) if parties else None,
                "bidders": len(parties) - 1 if parties else 0, "reserve": reserve,
                "closed_step": None if pd.isna(s.closed_step) else int(s.closed_step),
                "sold": sold, "winner": names.get(winner, str(winner)) if winner is not None else None,
                "winner_value": winner_value, "price": price, "highest_value": highest, "second_value": second,
                "highest_value_won": (winner_value == highest) if sold and highest is not None else None,
                "winner_surplus": winner_surplus, "seller_surplus": seller_surplus,
                "realised_surplus": realised, "max_surplus": max_surplus, "efficiency": efficiency,
                "revenue": price if sold else 0.0, "expected_revenue": expected,
                "revenue_benchmark": benchmark, "bids": bids.to_dict("records"),
            }
        )  # fmt: skip
    return out


def _money(v: Any) -> str:
    return "-" if v is None else f"{float(v):,.2f}"


def auction_rows(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) rows of one `auction_results` entry, for the terminal table and the report."""
    eff = result.get("efficiency")
    won = result.get("highest_value_won")
    rows = [
        ("auction", f"{result['session_id']} ({result.get('pricing') or result['protocol']}, {result.get('good')}), "
                    f"{result.get('bidders')} bidders, reserve {_money(result.get('reserve'))}"),
        ("closed at step", "-" if result.get("closed_step") is None else str(result["closed_step"])),
        ("winner", f"{result['winner']} (value {_money(result.get('winner_value'))}) at {_money(result.get('price'))}"
                   if result.get("sold") else "no sale"),
        ("highest value won", "-" if won is None else ("yes" if won else "no")),
        ("highest / second-highest value", f"{_money(result.get('highest_value'))} / {_money(result.get('second_value'))}"),
        ("surplus: winner (value - price)", _money(result.get("winner_surplus"))),
        ("surplus: seller (price - reserve)", _money(result.get("seller_surplus"))),
        ("surplus: realised / maximum", f"{_money(result.get('realised_surplus'))} / {_money(result.get('max_surplus'))}"),
        ("allocative efficiency", "n/a (no value above the reserve)" if eff is None else f"{100 * eff:.1f}%"),
        ("revenue", _money(result.get("revenue"))),
    ]  # fmt: skip
    expected = result.get("expected_revenue")
    if expected is not None:
        rows.append(("revenue in theory (expected)", f"{_money(expected)} ({result.get('revenue_benchmark')})"))
    else:
        rows.append(("revenue against", f"second-highest value {_money(result.get('second_value'))}; "
                                        f"{result.get('revenue_benchmark')}"))  # fmt: skip
    return rows
