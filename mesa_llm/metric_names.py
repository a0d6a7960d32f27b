"""One vocabulary of run metrics: the run summary (``mesa-llm run --json``), ``analyze --json``
(`mesa_llm.analysis.metrics.summary_metrics`), reports, sweep result columns, ``Simulation.metrics()``
and the dashboard call each quantity by one name, listed here with what it measures. Names used
before are still accepted where a user writes a metric name (sweep specs, lookups), with a note.
"""

from __future__ import annotations

import re

#: name -> what it measures (``goods.<good>.`` names are per good; money in currency units)
VOCABULARY: dict[str, str] = {
    "trades": "trades in the call market",
    "volume": "units traded in the call market",
    "allocative_efficiency": "realised surplus of the induced-value economy / the most it could realise (re-based at value shocks)",
    "allocative_efficiency_note": "why allocative_efficiency is undefined, when it is",
    "fees.total": "fees paid to the house by trades",
    "fees.buyers": "fees paid by buyers",
    "fees.sellers": "fees paid by sellers",
    "goods.<good>.trades": "trades of the good",
    "goods.<good>.volume": "units of the good traded",
    "goods.<good>.mean_price": "volume-weighted mean trade price",
    "goods.<good>.last_price": "last clearing price",
    "goods.<good>.ce_price": "competitive-equilibrium price at the start (midpoint of the range)",
    "goods.<good>.ce_quantity": "competitive-equilibrium quantity at the start",
    "goods.<good>.smiths_alpha": "Smith's alpha: RMS gap of trade prices from the CE price, in % of it",
    "goods.<good>.contract_volume": "units of the good moved by fulfilled contracts",
    "sessions": "negotiation and auction sessions opened",
    "closed_sessions": "sessions that ended",
    "agreements": "sessions that ended in an agreement",
    "agreement_rate": "agreements / closed sessions",
    "contracts": "contracts made",
    "contracts_fulfilled": "contracts delivered and paid",
    "contracts_breached": "contracts a party broke",
    "contract_value": "value of the fulfilled contracts",
}

#: old name -> vocabulary name
DEPRECATED: dict[str, str] = {
    "efficiency": "allocative_efficiency",
    "efficiency_note": "allocative_efficiency_note",
    "negotiation.sessions": "sessions",
    "negotiation.closed": "closed_sessions",
    "negotiation.agreed": "agreements",
    "negotiation.agreement_rate": "agreement_rate",
    "negotiation.contracts": "contracts",
    "negotiation.fulfilled": "contracts_fulfilled",
    "negotiation.breached": "contracts_breached",
    "negotiation.contract_value": "contract_value",
    "fees": "fees.total",
    "smith_alpha": "smiths_alpha",
}

_GOOD_ALPHA = re.compile(r"^goods\.(?P<good>.+)\.smith_alpha$")


def canonical(name: str) -> tuple[str, str | None]:
    """``name`` in the vocabulary, and a one-line deprecation note when an old name was given."""
    new = DEPRECATED.get(name)
    if new is None and (match := _GOOD_ALPHA.match(name)):
        new = f"goods.{match['good']}.smiths_alpha"
    if new is None:
        return name, None
    return new, f"metric {name!r} is now called {new!r} (the old name still works, for now)"


__all__ = ["DEPRECATED", "VOCABULARY", "canonical"]
