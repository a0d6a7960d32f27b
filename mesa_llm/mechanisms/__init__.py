"""Market mechanisms: the interface every mechanism gives the world (:mod:`.base`), and the
built-in ones as adapters over the world's parts: the call market (:mod:`.call_market`) and the
negotiation desk with its auctions (:mod:`.negotiation`). Plugin mechanisms come from the
``mesa_llm.mechanisms`` entry points (see ``mesa-llm plugins``)."""

from mesa_llm.mechanisms.base import (
    BUILTIN_MECHANISMS,
    Mechanism,
    MechanismContext,
    MechanismParams,
    Recorded,
    RejectedAction,
)

__all__ = ["BUILTIN_MECHANISMS", "Mechanism", "MechanismContext", "MechanismParams", "Recorded", "RejectedAction"]
