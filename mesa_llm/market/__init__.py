"""Market core: integer money, limit orders, the numpy call auction and the double-entry ledger.

This layer imports numpy and the standard library only; everything above it (agents,
negotiation, the model) moves money exclusively through :class:`Ledger`.
"""

from mesa_llm.market.clearing import ClearingResult, clear_call_auction, pair_fills
from mesa_llm.market.ledger import (
    HOUSE,
    Account,
    ConservationError,
    InsufficientFunds,
    InsufficientGoods,
    JournalEntry,
    Ledger,
    LedgerError,
    UnknownAccount,
)
from mesa_llm.market.money import Money, OffTickError
from mesa_llm.market.orders import Lifetime, Order, OrderBook, Side, StepOrders

__all__ = [
    "HOUSE",
    "Account",
    "ClearingResult",
    "ConservationError",
    "InsufficientFunds",
    "InsufficientGoods",
    "JournalEntry",
    "Ledger",
    "LedgerError",
    "Lifetime",
    "Money",
    "OffTickError",
    "Order",
    "OrderBook",
    "Side",
    "StepOrders",
    "UnknownAccount",
    "clear_call_auction",
    "pair_fills",
]
