"""Surveillance owns what a rule-based regulator looks for: collusive talk, wash trades, trading rings.

Pure functions over messages and trade records (the recording's ``trade`` content: ``buyer_id``,
``seller_id``, ``quantity``, ...). They only point at suspects; what to do about them (flag,
fine) is the regulator's decision, taken in the model.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from mesa_llm.social.mailbox import Message

__all__ = [
    "COLLUSION_PATTERNS",
    "repeated_pair_share",
    "suspicious_messages",
    "wash_trades",
]

_APOS = "['\u2019]"  # straight or typographic apostrophe, as LLMs write both

COLLUSION_PATTERNS: tuple[str, ...] = (
    r"\bfix(?:es|ed|ing)? (?:the |our |a )?prices?\b",
    r"\bprice[- ]fixing\b",
    r"\bkeep(?:s|ing)? (?:the |our )?prices? (?:high|up)\b",
    # an instruction to others; "I don't / won't sell below my cost" is a seller's own limit
    rf"(?<!\bi )\b(?:don{_APOS}?t|do not|never) sell (?:anything |any )?below\b",
    r"\bcartel\b",
    r"\b(?:split|divide|carve) (?:up )?the market\b",
    # bare "agree on a price" is what every bilateral negotiation says; collusion agrees on a
    # common price, or agrees among the sellers
    r"\bagree (?:on|to) (?:a |the |one )?(?:common|same|shared|minimum|fixed|floor) prices?\b",
    r"\b(?:all(?: of us| (?:the )?sellers| (?:the )?suppliers)?|everyone|every seller"
    r"|we (?:all|sellers|suppliers))(?: should| must| will| could| need to)? agree on "
    r"(?:a |the |one )?prices?\b",
    rf"(?:\bnot|n{_APOS}t|\bnever|\bstop) (?:to )?undercut",
    r"\bprice floor (?:between|among|for) (?:us|all of us|everyone)\b",
    r"\bcoordinate (?:our |the )?prices\b",
)

_COMPILED: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), p) for p in COLLUSION_PATTERNS
)


def suspicious_messages(messages: Sequence[Message]) -> list[tuple[Message, str]]:
    """Messages whose text sounds like price fixing, each with the first pattern it matches.

    Forwarded copies are checked too (their text quotes the original).
    """
    found: list[tuple[Message, str]] = []
    for message in messages:
        for compiled, pattern in _COMPILED:
            if compiled.search(message.text):
                found.append((message, pattern))
                break
    return found


def wash_trades(trades: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Trades in which an agent bought from itself (``buyer_id == seller_id``)."""
    return [
        trade
        for trade in trades
        if trade.get("buyer_id") is not None and trade.get("buyer_id") == trade.get("seller_id")
    ]


def repeated_pair_share(
    trades: Sequence[Mapping[str, Any]], min_trades: int = 5, threshold: float = 0.5
) -> list[tuple[int, int, float]]:
    """Pairs of agents that account for more than ``threshold`` of the traded volume.

    A possible collusion ring. Volume is the sum of ``quantity`` (1 per trade when absent),
    over all trades given (filter by good or window first if wanted); a pair is unordered and
    must have traded at least ``min_trades`` times. Wash trades are left out (see
    :func:`wash_trades`). Returns ``(a, b, share)`` with ``a < b``, largest share first.
    """
    volume: Counter[tuple[int, int]] = Counter()
    count: Counter[tuple[int, int]] = Counter()
    total = 0
    for trade in trades:
        buyer, seller = trade.get("buyer_id"), trade.get("seller_id")
        if buyer is None or seller is None or buyer == seller:
            continue
        quantity = int(trade.get("quantity", 1))
        pair = (buyer, seller) if buyer < seller else (seller, buyer)
        volume[pair] += quantity
        count[pair] += 1
        total += quantity
    if total <= 0:
        return []
    rings = [
        (a, b, vol / total)
        for (a, b), vol in volume.items()
        if count[(a, b)] >= min_trades and vol / total > threshold
    ]
    return sorted(rings, key=lambda r: (-r[2], r[0], r[1]))
