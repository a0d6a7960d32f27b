"""Negotiation metrics of a recording: sessions, agreement rate, rounds to agreement, surplus split
and distances to the Pareto frontier and the Nash point.

Pure functions of a `Recording`. Nash point = the outcome maximising the product of gains over
reservation values; Pareto frontier = the outcomes no other outcome dominates
(`mesa_llm.negotiation.outcome_space`, NegMAS's vocabulary).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mesa_llm.analysis.loader import Recording
from mesa_llm.analysis.units import finite

__all__ = [
    "agreement_rate",
    "negotiation_sessions",
    "pareto_nash_distances",
    "rounds_to_agreement",
    "surplus_split",
]

#: protocols where one party (the first: auction seller, buyer calling for proposals) runs the
#: session and the others may leave it without closing it
_ONE_TO_MANY = frozenset({"sealed_bid", "english", "call_for_proposals"})

# ----------------------------------------------------------------------------- negotiations


def negotiation_sessions(rec: Recording) -> pd.DataFrame:
    """One row per negotiation or auction session: session_id, protocol, parties, good, space
    (the outcome space dict), opened_step, closed (bool), closed_step, agreed (bool), agreements
    (count), first_agreement_step, first_agreement_round, outcome (agreed / disagreement /
    ended / open).

    A session is closed by an agreement, a disagreement, or an ``end`` event of the session itself
    or of a party that can end it (any party of a bilateral protocol; the first party, the seller or
    the calling buyer, of an auction or call for proposals: others ending there only withdraw).
    """
    columns = [
        "session_id", "protocol", "parties", "good", "space", "opened_step", "closed", "closed_step",
        "agreed", "agreements", "first_agreement_step", "first_agreement_round", "outcome",
    ]  # fmt: skip
    events = rec.negotiation_events
    sessions: dict[str, dict[str, Any]] = {}
    if len(events):
        cols = events.reindex(
            columns=[
                "session_id",
                "kind",
                "step",
                "agent_id",
                "protocol",
                "parties",
                "good",
                "space",
                "round",
            ]
        )
        for sid, kind, step, agent, protocol, parties, good, space, round_ in cols.itertuples(
            index=False
        ):
            if not isinstance(sid, str):
                continue
            s = sessions.get(sid)
            if s is None:
                s = sessions[sid] = {
                    "session_id": sid, "protocol": protocol, "parties": parties, "good": good,
                    "space": None, "opened_step": int(step), "closed": False, "closed_step": None,
                    "agreed": False, "agreements": 0, "first_agreement_step": None,
                    "first_agreement_round": None, "outcome": "open",
                }  # fmt: skip
            if kind == "opened" and isinstance(space, Mapping):
                s["space"] = dict(space)
                s["opened_step"] = int(step)
            if s["closed"]:
                continue
            if kind == "agreement":
                s["agreements"] += 1
                if not s["agreed"]:
                    s["agreed"] = True
                    s["first_agreement_step"] = int(step)
                    r = finite(round_)
                    s["first_agreement_round"] = int(r) if r is not None else None
                # a call for proposals may go on to more agreements; it closes with an "end"
                if protocol != "call_for_proposals":
                    _close(s, step, "agreed")
            elif kind == "disagreement":
                _close(s, step, "agreed" if s["agreed"] else "disagreement")
            elif kind == "end":
                by_session = pd.isna(agent)
                runs_it = (
                    not by_session
                    and isinstance(parties, list)
                    and bool(parties)
                    and agent == parties[0]
                )
                if by_session or protocol not in _ONE_TO_MANY or runs_it:
                    _close(s, step, "agreed" if s["agreed"] else "ended")
    if not sessions:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    frame = pd.DataFrame(list(sessions.values()), columns=columns)
    for column in ("opened_step", "closed_step", "first_agreement_step", "first_agreement_round"):
        frame[column] = pd.array(frame[column].tolist(), dtype="Int64")
    return frame


def _close(session: dict[str, Any], step: Any, outcome: str) -> None:
    session["closed"] = True
    session["closed_step"] = int(step)
    session["outcome"] = outcome


def agreement_rate(rec: Recording) -> float | None:
    """Agreed sessions / closed sessions (None when no session closed)."""
    sessions = negotiation_sessions(rec)
    if sessions.empty:
        return None
    closed = sessions[sessions["closed"].astype(bool)]
    if closed.empty:
        return None
    return float(closed["agreed"].astype(bool).sum() / len(closed))


def rounds_to_agreement(rec: Recording) -> pd.Series:
    """Per agreed session (index session_id): the rounds it took, counting the round of the
    agreement (its 0-based ``round`` + 1), or the steps from opening to agreement, inclusive, when
    the agreement has no round."""
    sessions = negotiation_sessions(rec)
    values: dict[str, int] = {}
    for row in sessions.itertuples(index=False):
        if not row.agreed:
            continue
        if not pd.isna(row.first_agreement_round):
            values[row.session_id] = int(row.first_agreement_round) + 1
        else:
            values[row.session_id] = int(row.first_agreement_step) - int(row.opened_step) + 1
    series = pd.Series(values, dtype="int64", name="rounds_to_agreement")
    series.index.name = "session_id"
    return series


@dataclass
class _Utilities:
    """The parties' utility functions over a space, rebuilt from the header."""

    space_name: str
    space: Any  # OutcomeSpace
    buyer: Any  # LinearAdditiveUtility
    seller: Any


def _space_name(
    rec: Recording, space: Mapping[str, Any] | None, buyer: Any, seller: Any
) -> str | None:
    spaces = (rec.header.get("negotiation") or {}).get("spaces") or {}
    if space is not None:
        for name, candidate in spaces.items():
            if _same_space(candidate, space):
                return str(name)
    shared = set(_agent_utilities(rec).get(buyer, {})) & set(_agent_utilities(rec).get(seller, {}))
    return next(iter(shared)) if len(shared) == 1 else None


def _same_space(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    def issues(space: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        out = []
        for issue in space.get("issues") or []:
            values = issue.get("values")
            out.append(
                (
                    issue.get("name"),
                    issue.get("type"),
                    finite(issue.get("low")),
                    finite(issue.get("high")),
                    tuple(values) if isinstance(values, list) else None,
                )
            )
        return out

    return issues(a) == issues(b)


def _agent_utilities(rec: Recording) -> dict[Any, dict[str, Any]]:
    return {
        agent.get("agent_id"): dict(agent.get("utilities") or {})
        for agent in rec.header.get("agents") or []
    }


def _utilities(
    rec: Recording,
    cache: dict[Any, _Utilities | None],
    space: Mapping[str, Any] | None,
    buyer: Any,
    seller: Any,
) -> _Utilities | None:
    from mesa_llm.negotiation import LinearAdditiveUtility, OutcomeSpace

    name = _space_name(rec, space, buyer, seller)
    key = (name, buyer, seller)
    if key in cache:
        return cache[key]
    result: _Utilities | None = None
    spaces = (rec.header.get("negotiation") or {}).get("spaces") or {}
    utilities = _agent_utilities(rec)
    ub = utilities.get(buyer, {}).get(name) if name else None
    us = utilities.get(seller, {}).get(name) if name else None
    if name is not None and name in spaces and ub and us:
        try:
            outcome_space = OutcomeSpace.from_dict(spaces[name])
            result = _Utilities(
                name,
                outcome_space,
                LinearAdditiveUtility.from_dict(outcome_space, ub),
                LinearAdditiveUtility.from_dict(outcome_space, us),
            )
        except (KeyError, TypeError, ValueError):
            result = None
    cache[key] = result
    return result


def _agreements_with_utilities(
    rec: Recording,
) -> list[tuple[dict[str, Any], _Utilities | None, dict[str, Any] | None]]:
    """Every agreement with its parties' utilities (None if unknown) and validated terms."""
    from mesa_llm.negotiation import OutcomeError

    agreements = rec.agreements
    sessions = negotiation_sessions(rec).set_index("session_id") if len(agreements) else None
    cache: dict[Any, _Utilities | None] = {}
    out = []
    for row in agreements.to_dict("records"):
        sid = row.get("session_id")
        space = None
        if sessions is not None and sid in sessions.index:
            space = sessions.at[sid, "space"]
        buyer, seller = row.get("buyer_id"), row.get("seller_id")
        utils = _utilities(rec, cache, space if isinstance(space, Mapping) else None, buyer, seller)
        terms = row.get("terms") if isinstance(row.get("terms"), Mapping) else None
        outcome = None
        if utils is not None and terms is not None:
            try:
                outcome = utils.space.validate(terms)
            except OutcomeError:
                outcome = None
        out.append((row, utils, outcome))
    return out


def surplus_split(rec: Recording) -> pd.DataFrame:
    """Per agreement between a buyer and a seller whose utilities the header holds: their
    utilities of the agreed terms, reservation values, gains (utility - reservation), the joint
    gain and each side's share of it (None when the joint gain is not positive).

    Utilities are the agents' `LinearAdditiveUtility` over the session's outcome space (in [0, 1],
    undiscounted). For a single price issue the buyer's share is (value - price) / (value - cost).
    """
    columns = [
        "session_id", "step", "protocol", "buyer_id", "seller_id", "space", "terms",
        "buyer_utility", "seller_utility", "buyer_reservation", "seller_reservation",
        "buyer_gain", "seller_gain", "joint_gain", "buyer_share", "seller_share",
    ]  # fmt: skip
    rows = []
    for row, utils, outcome in _agreements_with_utilities(rec):
        if utils is None or outcome is None:
            continue
        ub, us = float(utils.buyer(outcome)), float(utils.seller(outcome))
        rb, rs = float(utils.buyer.reservation), float(utils.seller.reservation)
        gb, gs = ub - rb, us - rs
        joint = gb + gs
        rows.append(
            {
                "session_id": row.get("session_id"),
                "step": row.get("step"),
                "protocol": row.get("protocol"),
                "buyer_id": row.get("buyer_id"),
                "seller_id": row.get("seller_id"),
                "space": utils.space_name,
                "terms": dict(outcome),
                "buyer_utility": ub,
                "seller_utility": us,
                "buyer_reservation": rb,
                "seller_reservation": rs,
                "buyer_gain": gb,
                "seller_gain": gs,
                "joint_gain": joint,
                "buyer_share": gb / joint if joint > 1e-12 else None,
                "seller_share": gs / joint if joint > 1e-12 else None,
            }
        )
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.DataFrame(rows, columns=columns)


def pareto_nash_distances(rec: Recording, *, points: int | None = None) -> pd.DataFrame:
    """Per agreement with known utilities: the Euclidean distance in utility space (buyer,
    seller) to the Pareto frontier and to the Nash bargaining point, both exact for the
    linear-additive utilities over the whole space (``mesa_llm.negotiation.outcome_space``;
    ``points`` is no longer used: there is no grid).

    Columns: session_id, step, buyer_id, seller_id, space, terms, buyer_utility, seller_utility,
    distance_to_pareto (0 on the frontier), distance_to_nash (NaN when no outcome beats both
    reservation values), nash_terms, nash_buyer_utility, nash_seller_utility.
    """
    from mesa_llm.negotiation import exact_distance_to_pareto, exact_nash_point

    columns = [
        "session_id", "step", "buyer_id", "seller_id", "space", "terms", "buyer_utility",
        "seller_utility", "distance_to_pareto", "distance_to_nash", "nash_terms",
        "nash_buyer_utility", "nash_seller_utility",
    ]  # fmt: skip
    nash_cache: dict[tuple[str, str, str], dict[str, Any] | None] = {}
    rows = []
    for row, utils, outcome in _agreements_with_utilities(rec):
        if utils is None or outcome is None:
            continue
        parties = [utils.buyer, utils.seller]
        key = (utils.space_name, repr(utils.buyer), repr(utils.seller))
        if key not in nash_cache:
            nash_cache[key] = exact_nash_point(parties, utils.space)
        nash_terms = nash_cache[key]
        ub, us = float(utils.buyer(outcome)), float(utils.seller(outcome))
        nb = float(utils.buyer(nash_terms)) if nash_terms else math.nan
        ns = float(utils.seller(nash_terms)) if nash_terms else math.nan
        rows.append(
            {
                "session_id": row.get("session_id"),
                "step": row.get("step"),
                "buyer_id": row.get("buyer_id"),
                "seller_id": row.get("seller_id"),
                "space": utils.space_name,
                "terms": dict(outcome),
                "buyer_utility": ub,
                "seller_utility": us,
                "distance_to_pareto": exact_distance_to_pareto(parties, utils.space, outcome),
                "distance_to_nash": math.hypot(ub - nb, us - ns) if nash_terms else math.nan,
                "nash_terms": dict(nash_terms) if nash_terms is not None else None,
                "nash_buyer_utility": nb,
                "nash_seller_utility": ns,
            }
        )
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.DataFrame(rows, columns=columns)


